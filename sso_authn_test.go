package guard_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/crewjam/saml"

	"github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// SECURITY-CHECKLIST SAML-50: an SSO sign-in counts as a recent
// authentication only if the IdP's AuthnInstant is recent, and the session
// does not outlive the IdP's SessionNotOnOrAfter.
func TestSSOAuthnInstantAndSessionNotOnOrAfter(t *testing.T) {
	s := newSSOSite(t)
	ctx := t.Context()

	t.Run("fresh", func(t *testing.T) {
		_, p := s.ssoUser(t, "fresh", "fresh@corp.example")
		if p.Flags&guard.FlagStaleAuthn != 0 {
			t.Fatal("a sign-in the IdP authenticated just now is marked stale")
		}
		if _, err := s.g.BeginTOTP(ctx, p, "fresh"); err != nil {
			t.Fatalf("BeginTOTP right after a fresh SSO sign-in: %v", err)
		}
	})

	t.Run("IdP session reused", func(t *testing.T) {
		s.edit.set(func(a *saml.Assertion) { a.AuthnStatements[0].AuthnInstant = time.Now().Add(-time.Hour) })
		t.Cleanup(func() { s.edit.set(nil) })
		_, p := s.ssoUser(t, "reused", "reused@corp.example")
		if p.Flags&guard.FlagStaleAuthn == 0 {
			t.Error("an SSO session whose AuthnInstant is an hour old is not marked stale")
		}
		if _, err := s.g.BeginTOTP(ctx, p, "reused"); !errors.Is(err, guard.ErrStepUpRequired) {
			t.Errorf("BeginTOTP on an SSO sign-in with an hour-old AuthnInstant: %v, want ErrStepUpRequired", err)
		}
		pg, err := s.g.QueryAudit(ctx, guard.System("test"), tenantID, audit.Query{Action: string(audit.LoginSucceeded), Actor: p.UserID})
		if err != nil || len(pg.Events) != 1 || pg.Events[0].Meta["authn_stale"] != "true" {
			t.Errorf("login.succeeded of the stale sign-in = %+v, %v; want authn_stale=true", pg.Events, err)
		}
	})

	t.Run("AuthnInstant in the future", func(t *testing.T) {
		s.edit.set(func(a *saml.Assertion) { a.AuthnStatements[0].AuthnInstant = time.Now().Add(time.Hour) })
		t.Cleanup(func() { s.edit.set(nil) })
		_, p := s.ssoUser(t, "future", "future@corp.example")
		if _, err := s.g.BeginTOTP(ctx, p, "future"); !errors.Is(err, guard.ErrStepUpRequired) {
			t.Errorf("BeginTOTP with an AuthnInstant an hour ahead: %v, want ErrStepUpRequired", err)
		}
	})

	t.Run("SessionNotOnOrAfter caps the session", func(t *testing.T) {
		end := time.Now().Add(10 * time.Minute).Truncate(time.Second)
		s.edit.set(func(a *saml.Assertion) { a.AuthnStatements[0].SessionNotOnOrAfter = &end })
		t.Cleanup(func() { s.edit.set(nil) })
		_, p := s.ssoUser(t, "capped", "capped@corp.example")
		ss, err := s.g.UserSessions(ctx, guard.System("test"), tenantID, p.UserID)
		if err != nil || len(ss) != 1 {
			t.Fatalf("UserSessions = %v, %v", ss, err)
		}
		if !ss[0].ExpiresAt.Before(end) || ss[0].ExpiresAt.Before(end.Add(-time.Minute)) {
			t.Errorf("session ends at %v; the IdP said not on or after %v", ss[0].ExpiresAt, end)
		}
	})

	t.Run("SessionNotOnOrAfter too close", func(t *testing.T) {
		end := time.Now().Add(20 * time.Second)
		s.edit.set(func(a *saml.Assertion) { a.AuthnStatements[0].SessionNotOnOrAfter = &end })
		t.Cleanup(func() { s.edit.set(nil) })
		s.idpPut(t, "/users/brief", `{"name":"brief","password":"correct horse","email":"brief@corp.example","groups":["Staff"]}`)
		b, _, _, resp := s.signIn(t, "brief", "correct horse")
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("a sign-in whose session must end in 20 s: %s, want 403", resp.Status)
		}
		if _, err := s.principalOf(t, b); !errors.Is(err, guard.ErrUnauthenticated) {
			t.Errorf("the refused sign-in left a session: %v", err)
		}
	})
}

// Policy.RequireSSO refuses password sign-in to all but the break-glass
// owner, so Reauthenticate refuses a password step-up too: otherwise an SSO
// session the IdP answered from a stale sign-in of its own
// (FlagStaleAuthn, refused by step-up checks) would become a recent
// authentication on the strength of a password the tenant no longer
// accepts, never asking the IdP. The refusal is ErrSSORequired, recorded
// as Login records it (reason sso_required); the session is left as it
// was, still stale: the user steps up with SSOStart.ForceAuthn.
func TestReauthenticateRefusesPasswordUnderRequireSSO(t *testing.T) {
	s := newSSOSite(t)
	ctx := t.Context()
	sys := guard.System("test")
	owner, _ := s.userWithTOTP(t, "owner@corp.example", rbac.Owner)
	// Bob had a password before the tenant moved to SSO.
	if _, err := s.g.CreateUser(ctx, sys, guard.NewUser{Tenant: tenantID, Email: "bob@corp.example", Password: ownerPW}); err != nil {
		t.Fatal(err)
	}
	tn, _ := s.g.Tenant(ctx, tenantID)
	if _, err := s.g.SetPolicy(ctx, sys, tenantID, guard.Policy{RequireSSO: true, BreakGlassUser: owner.ID}, tn.Version); err != nil {
		t.Fatal(err)
	}
	if _, err := s.g.Login(ctx, guard.LoginRequest{Tenant: tenantID, Email: "bob@corp.example", Password: ownerPW, IP: "203.0.113.5", UserAgent: "test"}); !errors.Is(err, guard.ErrSSORequired) {
		t.Fatalf("bob's password login under RequireSSO: %v, want ErrSSORequired", err)
	}
	// The IdP answers from an old session of its own: a stale sign-in.
	s.edit.set(func(a *saml.Assertion) { a.AuthnStatements[0].AuthnInstant = time.Now().Add(-time.Hour) })
	t.Cleanup(func() { s.edit.set(nil) })
	b, p := s.ssoUser(t, "bob", "bob@corp.example")
	if p.Flags&guard.FlagStaleAuthn == 0 {
		t.Fatalf("flags %b, want FlagStaleAuthn", p.Flags)
	}
	p.IP, p.UserAgent = "203.0.113.5", "test"
	tok := s.tokenOf(t, b)
	before := len(s.events(t, audit.Reauthenticated))
	if _, _, err := s.g.Reauthenticate(ctx, p, tok, guard.Proof{Password: ownerPW}); !errors.Is(err, guard.ErrSSORequired) {
		t.Fatalf("Reauthenticate with the password under RequireSSO: %v, want ErrSSORequired", err)
	}
	evs := s.events(t, audit.Reauthenticated)
	if len(evs) != before+1 || evs[0].Outcome != audit.Failure || evs[0].Reason != guard.ReasonSSORequired {
		t.Fatalf("session.reauthenticated events %+v; want one more, a failure with reason %q", evs, guard.ReasonSSORequired)
	}
	// The session is untouched: same token, still stale.
	np, err := s.g.Authenticate(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	np.IP, np.UserAgent = "203.0.113.5", "test"
	if _, err := s.g.BeginTOTP(ctx, np, "x"); !errors.Is(err, guard.ErrStepUpRequired) {
		t.Fatalf("BeginTOTP after the refused step-up: %v, want ErrStepUpRequired", err)
	}
}
