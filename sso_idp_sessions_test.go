package guard_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/session"
	"github.com/guardhq/guard/sso"
)

// idpStoreKinds are the backends the IdP-sessions tests run on: the
// in-memory stores and SQLite.
func idpStoreKinds() map[string]func(t *testing.T) guard.Stores {
	return map[string]func(t *testing.T) guard.Stores{
		"memstore":    func(*testing.T) guard.Stores { return newMem() },
		"sqlitestore": newSQLite,
	}
}

// idpRevocations returns the session.revoked events with reason in Meta,
// by target (the user).
func (s *ssoSite) idpRevocations(t *testing.T, reason string) map[string]string {
	t.Helper()
	page, err := s.g.QueryAudit(t.Context(), guard.System("test"), tenantID, audit.Query{Action: string(audit.SessionRevoked), Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, e := range page.Events {
		if e.Meta["reason"] == reason {
			out[e.Target] = e.Meta["sessions_ended"]
		}
	}
	return out
}

// Replacing the tenant's IdP by another ends the single sign-on sessions
// the old one vouched for, not the password sessions of the tenant, nor
// sign-ins through the new IdP after the change; a change of the new
// IdP's settings ends nothing; removing the IdP ends the SSO sessions
// left, and the password session still stays.
func TestReplacingOrRemovingIdPEndsItsSessions(t *testing.T) {
	for name, stores := range idpStoreKinds() {
		t.Run(name, func(t *testing.T) {
			s := newSSOSiteOn(t, stores(t))
			ctx := t.Context()
			aliceB, alice := s.ssoUser(t, "alice", "alice@corp.example")
			_, bobP := s.passwordUser(t, "bob@corp.example")

			s.replaceIdP(t)
			if _, err := s.principalOf(t, aliceB); !errors.Is(err, guard.ErrUnauthenticated) {
				t.Errorf("session of the old IdP after it was replaced: %v", err)
			}
			if !s.hasSession(t, bobP) {
				t.Error("the password session ended when the IdP was replaced")
			}
			if got := s.idpRevocations(t, "idp_replaced"); len(got) != 1 || got[alice.UserID] != "1" {
				t.Errorf("session.revoked (idp_replaced) = %v, want one of Alice's", got)
			}

			// A sign-in through the new IdP after the change stays, and so
			// it does when the new IdP's settings change.
			carolB, carol := s.ssoUser(t, "carol", "carol@corp.example")
			c, err := s.g.SSOConnection(ctx, guard.System("test"), tenantID)
			if err != nil {
				t.Fatal(err)
			}
			c.JIT = false
			if _, err := s.g.SetSSOConnection(ctx, guard.System("test"), c); err != nil {
				t.Fatal(err)
			}
			if _, err := s.principalOf(t, carolB); err != nil {
				t.Errorf("session of the new IdP after a change of its settings: %v", err)
			}

			s.disconnect(t)
			if _, err := s.principalOf(t, carolB); !errors.Is(err, guard.ErrUnauthenticated) {
				t.Errorf("SSO session after the IdP was removed: %v", err)
			}
			if !s.hasSession(t, bobP) {
				t.Error("the password session ended when the IdP was removed")
			}
			if got := s.idpRevocations(t, "idp_removed"); len(got) != 1 || got[carol.UserID] != "1" {
				t.Errorf("session.revoked (idp_removed) = %v, want one of Carol's", got)
			}
		})
	}
}

// hasSession reports whether p's session is still stored (not ended),
// live by its own limits. It reads the session store, not UserSessions,
// which leaves out a session the tenant's policy no longer allows (one an
// IdP change ended, among others) whether or not it was ended yet.
func (s *ssoSite) hasSession(t *testing.T, p guard.Principal) bool {
	t.Helper()
	ss, err := s.stores.SessionIndex.ListByUser(t.Context(), p.Tenant, p.UserID)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range ss {
		if x.Hash == p.Session && x.LiveAt(time.Now()) {
			return true
		}
	}
	return false
}

// listFailingIndex fails ListByUser while fail is set.
type listFailingIndex struct {
	session.UserIndex
	fail *atomic.Bool
}

func (f listFailingIndex) ListByUser(ctx context.Context, tenant, userID string) ([]session.Session, error) {
	if f.fail.Load() {
		return nil, errDown
	}
	return f.UserIndex.ListByUser(ctx, tenant, userID)
}

// newListFailingSite returns an SSO site on st whose session index fails
// ListByUser (the end of an IdP's sessions) while the flag returned is
// set.
func newListFailingSite(t *testing.T, st guard.Stores) (*ssoSite, *atomic.Bool) {
	fail := &atomic.Bool{}
	st.SessionIndex = listFailingIndex{UserIndex: st.SessionIndex, fail: fail}
	return newSSOSiteOn(t, st), fail
}

// A session store that fails while the IdP's sessions are ended: the
// change of IdP stands (it is a revocation: no sign-in through the old
// IdP from then on), and ErrUnavailable says the sessions did not all
// end. Removing the IdP again finishes the job.
func TestIdPSessionsEndFailsClosed(t *testing.T) {
	for name, stores := range idpStoreKinds() {
		t.Run(name, func(t *testing.T) {
			s, fail := newListFailingSite(t, stores(t))
			ctx, sys := t.Context(), guard.System("test")
			aliceB, _ := s.ssoUser(t, "alice", "alice@corp.example")
			_, bobP := s.passwordUser(t, "bob@corp.example")
			oldIdP := s.idpURL

			fail.Store(true)
			s.idpURL = s.idpURL + "/other" // not served: the metadata comes from a copy below
			md := s.get(t, http.DefaultClient, oldIdP+"/metadata")
			c, err := s.g.SSOConnection(ctx, sys, tenantID)
			if err != nil {
				t.Fatal(err)
			}
			c.MetadataURL, c.Metadata = "", replaceEntityID(md, oldIdP+"/metadata", "https://idp-b.example/metadata")
			if _, err := s.g.SetSSOConnection(ctx, sys, c); !errors.Is(err, guard.ErrUnavailable) {
				t.Errorf("SetSSOConnection replacing the IdP with the session store down: %v, want ErrUnavailable", err)
			}
			if got, err := s.g.SSOConnection(ctx, sys, tenantID); err != nil || got.Metadata != c.Metadata {
				t.Errorf("connection after the failed end of sessions = %v; want the new IdP's to stand", err)
			}
			if err := s.g.DeleteSSOConnection(ctx, sys, tenantID); !errors.Is(err, guard.ErrUnavailable) {
				t.Errorf("DeleteSSOConnection with the session store down: %v, want ErrUnavailable", err)
			}
			if _, err := s.g.SSOConnection(ctx, sys, tenantID); !errors.Is(err, sso.ErrNotFound) {
				t.Errorf("connection after the failed end of sessions: %v, want it removed", err)
			}
			fail.Store(false)
			if err := s.g.DeleteSSOConnection(ctx, sys, tenantID); !errors.Is(err, sso.ErrNotFound) {
				t.Errorf("DeleteSSOConnection again = %v, want sso.ErrNotFound", err)
			}
			if _, err := s.principalOf(t, aliceB); !errors.Is(err, guard.ErrUnauthenticated) {
				t.Errorf("SSO session once the IdP's removal was called again: %v", err)
			}
			if !s.hasSession(t, bobP) {
				t.Error("the password session ended with the IdP")
			}
		})
	}
}

// replacingLogins removes the tenant's connection from the store (as an
// owner on another replica does, whose end of sessions has passed) when
// RecordSSOLogin is called while armed: between the session's creation
// and the end of a sign-in.
type replacingLogins struct {
	auth.UserUpdater
	conns sso.ConnectionStore
	armed *atomic.Bool
}

func (r replacingLogins) RecordSSOLogin(ctx context.Context, tenant, id string, at time.Time) (auth.User, error) {
	if r.armed.CompareAndSwap(true, false) {
		if err := r.conns.DeleteConnection(ctx, tenant); err != nil {
			return auth.User{}, err
		}
	}
	return r.UserUpdater.RecordSSOLogin(ctx, tenant, id, at)
}

// A sign-in through an IdP that is removed (or replaced) while the
// sign-in is under way gets no session: the sweep of the IdP's sessions
// may have passed its user already.
func TestSignInRacingIdPRemovalRefused(t *testing.T) {
	st := newMem()
	armed := &atomic.Bool{}
	st.UserUpdates = replacingLogins{UserUpdater: st.UserUpdates, conns: st.SSO.Connections, armed: armed}
	s := newSSOSiteOn(t, st)
	s.idpPut(t, "/users/alice", `{"name":"alice","password":"correct horse","email":"alice@corp.example","groups":["Staff"]}`)
	armed.Store(true)
	b, _, _, resp := s.signIn(t, "alice", "correct horse")
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Error("SSO sign-in completed through an IdP removed meanwhile")
	}
	if _, err := s.principalOf(t, b); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("session of a sign-in through an IdP removed meanwhile: %v", err)
	}
	page, err := s.g.QueryAudit(t.Context(), guard.System("test"), tenantID, audit.Query{Action: string(audit.LoginFailed)})
	if err != nil {
		t.Fatal(err)
	}
	if r := reasons(page.Events); r[guard.ReasonIdPChanged] != 1 {
		t.Errorf("login.failed reasons %v, want one %s", r, guard.ReasonIdPChanged)
	}
}

// replaceEntityID returns IdP metadata md naming the entity ID to instead
// of from (an unsigned document: its other content stays valid).
func replaceEntityID(md, from, to string) string {
	return strings.Replace(md, `entityID="`+from+`"`, `entityID="`+to+`"`, 1)
}
