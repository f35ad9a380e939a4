package guard_test

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/session"
)

// A change of IdP whose end of sessions failed (the session store down
// while it swept) ends the old IdP's sessions all the same: the change's
// time is kept with the tenant (Tenant.IdPChangedAt) before the sweep,
// and Authenticate refuses a single sign-on session created at or before
// it (ErrPolicyChanged, recorded as session.revoked by the system, reason
// idp_changed), with no retry of the sweep. A sign-in through the new IdP
// after the change goes on, as do password sessions. A removal of the
// IdP whose sweep fails likewise.
func TestIdPChangeEnforcedWhenTheSweepFails(t *testing.T) {
	for name, stores := range idpStoreKinds() {
		t.Run(name, func(t *testing.T) {
			s, fail := newListFailingSite(t, stores(t))
			ctx, sys := t.Context(), guard.System("test")
			aliceB, alice := s.ssoUser(t, "alice", "alice@corp.example")
			bob, _ := s.passwordUser(t, "bob@corp.example")
			res, err := s.g.Login(ctx, guard.LoginRequest{Tenant: tenantID, Email: bob.Email, Password: ownerPW, IP: "203.0.113.9", UserAgent: "test"})
			if err != nil {
				t.Fatal(err)
			}
			passwordOK := func(step string) {
				t.Helper()
				if p, err := s.g.Authenticate(ctx, res.Token); err != nil || p.UserID != bob.ID {
					t.Errorf("password session %s: %+v, %v", step, p, err)
				}
			}

			fail.Store(true)
			s.serveNewIdP(t)
			if err := s.connectErr(t); !errors.Is(err, guard.ErrUnavailable) {
				t.Fatalf("SetSSOConnection replacing the IdP with the session store down: %v, want ErrUnavailable", err)
			}
			fail.Store(false)
			if !s.hasSession(t, alice) {
				t.Fatal("the failed sweep ended the old IdP's session: nothing left to test")
			}
			if _, err := s.principalOf(t, aliceB); !errors.Is(err, guard.ErrPolicyChanged) {
				t.Errorf("session of the old IdP after a replacement whose sweep failed: %v, want ErrPolicyChanged", err)
			}
			if s.hasSession(t, alice) {
				t.Error("the session check refused the old IdP's session but did not end it")
			}
			passwordOK("after the replacement")

			// A sign-in through the new IdP after the change stays.
			s.idpPut(t, "/services/acme", s.get(t, http.DefaultClient, s.srv.URL+"/saml/acme/metadata"))
			carolB, carol := s.ssoUser(t, "carol", "carol@corp.example")
			if _, err := s.principalOf(t, carolB); err != nil {
				t.Errorf("session of the new IdP after the change: %v", err)
			}

			fail.Store(true)
			if err := s.g.DeleteSSOConnection(ctx, sys, tenantID); !errors.Is(err, guard.ErrUnavailable) {
				t.Fatalf("DeleteSSOConnection with the session store down: %v, want ErrUnavailable", err)
			}
			fail.Store(false)
			if _, err := s.principalOf(t, carolB); !errors.Is(err, guard.ErrPolicyChanged) {
				t.Errorf("SSO session after a removal of the IdP whose sweep failed: %v, want ErrPolicyChanged", err)
			}
			passwordOK("after the removal")

			page, err := s.g.QueryAudit(ctx, sys, tenantID, audit.Query{Action: string(audit.SessionRevoked), Limit: 100})
			if err != nil {
				t.Fatal(err)
			}
			ended := map[string]bool{}
			for _, e := range page.Events {
				if e.Reason == guard.ReasonIdPChanged && e.Actor.Kind == audit.ActorSystem {
					ended[e.Meta["user"]] = true
				}
			}
			if len(ended) != 2 || !ended[alice.UserID] || !ended[carol.UserID] {
				t.Errorf("session.revoked (idp_changed) of users %v, want Alice's and Carol's", ended)
			}
		})
	}
}

// markFailingTenants fails MarkIdPChanged while fail is set.
type markFailingTenants struct {
	guard.TenantStore
	fail *atomic.Bool
}

func (m markFailingTenants) MarkIdPChanged(ctx context.Context, id string, at time.Time) error {
	if m.fail.Load() {
		return errDown
	}
	return m.TenantStore.MarkIdPChanged(ctx, id, at)
}

// A change of IdP whose time cannot be kept with the tenant stands (it is
// on record) and returns ErrUnavailable, and the old IdP's sessions are
// ended all the same by the sweep; so for a removal.
func TestIdPChangeMarkFailsClosed(t *testing.T) {
	st := newMem()
	fail := &atomic.Bool{}
	st.Tenants = markFailingTenants{TenantStore: st.Tenants, fail: fail}
	s := newSSOSiteOn(t, st)
	ctx, sys := t.Context(), guard.System("test")
	_, alice := s.ssoUser(t, "alice", "alice@corp.example")

	fail.Store(true)
	s.serveNewIdP(t)
	if err := s.connectErr(t); !errors.Is(err, guard.ErrUnavailable) {
		t.Fatalf("SetSSOConnection replacing the IdP, its change not kept: %v, want ErrUnavailable", err)
	}
	if c, err := s.g.SSOConnection(ctx, sys, tenantID); err != nil || c.MetadataURL != s.idpURL+"/metadata" {
		t.Errorf("connection after the failed mark = %+v, %v; want the new IdP's to stand", c, err)
	}
	if s.hasSession(t, alice) {
		t.Error("the old IdP's session outlived a replacement whose mark failed")
	}
	s.idpPut(t, "/services/acme", s.get(t, http.DefaultClient, s.srv.URL+"/saml/acme/metadata"))
	_, carol := s.ssoUser(t, "carol", "carol@corp.example")
	if err := s.g.DeleteSSOConnection(ctx, sys, tenantID); !errors.Is(err, guard.ErrUnavailable) {
		t.Fatalf("DeleteSSOConnection, its change not kept: %v, want ErrUnavailable", err)
	}
	if s.hasSession(t, carol) {
		t.Error("the IdP's session outlived a removal whose mark failed")
	}
}

// A step-up racing a change of IdP: the request was authenticated before
// the change (its principal in hand), the step-up comes after it, and the
// change's sweep failed. The step-up renews the session's authentication
// time past the change, out of the session check's reach, so it checks
// the change itself: the old IdP's session ends (ErrPolicyChanged)
// instead of getting a new token.
func TestStepUpOfOldIdPSessionAfterChangeRefused(t *testing.T) {
	for name, stores := range idpStoreKinds() {
		t.Run(name, func(t *testing.T) {
			s, fail := newListFailingSite(t, stores(t))
			ctx := t.Context()
			s.passwordUser(t, "bob@corp.example")
			bobB, bob := s.ssoUser(t, "bob", "bob@corp.example")
			if bob.Flags&guard.FlagSSO == 0 {
				t.Fatalf("Bob's sign-in through the IdP: flags %b, want FlagSSO", bob.Flags)
			}
			token := ""
			u, _ := url.Parse(s.srv.URL)
			for _, c := range bobB.Jar.Cookies(u) {
				if h, err := session.ParseToken(c.Value); err == nil && h == bob.Session {
					token = c.Value
				}
			}
			if token == "" {
				t.Fatal("no session cookie for Bob's principal")
			}

			fail.Store(true)
			s.serveNewIdP(t)
			if err := s.connectErr(t); !errors.Is(err, guard.ErrUnavailable) {
				t.Fatalf("SetSSOConnection replacing the IdP with the session store down: %v, want ErrUnavailable", err)
			}
			fail.Store(false)
			nt, _, err := s.g.Reauthenticate(ctx, bob, token, guard.Proof{Password: ownerPW})
			if !errors.Is(err, guard.ErrPolicyChanged) {
				t.Errorf("step-up of the old IdP's session after the change: %v, want ErrPolicyChanged", err)
			}
			if nt != "" {
				if p, err := s.g.Authenticate(ctx, nt); err == nil {
					t.Errorf("the old IdP's session, stepped up after the change, authenticates: %+v", p)
				}
			}
			if s.hasSession(t, bob) {
				t.Error("the old IdP's session outlived a step-up after the change")
			}
		})
	}
}
