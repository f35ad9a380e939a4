package guard_test

import (
	"errors"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// A session that the tenant's policy has already ended (idle past a
// lowered IdleTimeout, or short of MFA required since its sign-in), still
// stored because no request has presented it since, is gone for a
// sign-out with its token as for any request: LogoutToken removes it,
// records the end the policy made as the session check records it
// (session.expired, or session.revoked by the system with its reason),
// never as its user's sign-out (audit.Logout from whoever presents the
// token), and returns ErrUnauthenticated.
func TestLogoutTokenOfSessionThePolicyEnded(t *testing.T) {
	t.Run("IdleTimeoutLowered", func(t *testing.T) {
		f := newMFAFixture(t)
		f.createUser(t, adaEmail, ownerPW)
		res, _ := f.signIn(t, adaEmail, ownerPW)
		setPolicyAsSystem(t, f, guard.Policy{IdleTimeout: time.Hour})
		f.clock.Advance(2 * time.Hour) // idle 2 h: live by its own 24 h, not by the policy's 1 h
		if err := f.g.LogoutToken(f.ctx, res.Token, "198.51.100.9", "Stale/1.0"); !errors.Is(err, guard.ErrUnauthenticated) {
			t.Errorf("LogoutToken = %v, want ErrUnauthenticated", err)
		}
		if evs := f.events(t, audit.Logout); len(evs) != 0 {
			t.Errorf("%d audit.Logout recorded for a session the policy had ended", len(evs))
		}
		if r := reasons(f.events(t, audit.SessionExpired)); len(r) != 1 || r["idle_timeout"] != 1 {
			t.Errorf("session.expired reasons %v, want one idle_timeout", r)
		}
		if _, err := f.g.Authenticate(f.ctx, res.Token); !errors.Is(err, guard.ErrUnauthenticated) {
			t.Errorf("Authenticate afterwards = %v, want ErrUnauthenticated", err)
		}
	})
	t.Run("MFARequired", func(t *testing.T) {
		f := newMFAFixture(t)
		f.createUser(t, adaEmail, ownerPW)
		res, _ := f.signIn(t, adaEmail, ownerPW) // a password alone
		f.clock.Advance(time.Second)             // opened before the switch
		setPolicyAsSystem(t, f, guard.Policy{RequireMFA: true})
		if err := f.g.LogoutToken(f.ctx, res.Token, "198.51.100.9", "Stale/1.0"); !errors.Is(err, guard.ErrUnauthenticated) {
			t.Errorf("LogoutToken = %v, want ErrUnauthenticated", err)
		}
		if evs := f.events(t, audit.Logout); len(evs) != 0 {
			t.Errorf("%d audit.Logout recorded for a session the policy had ended", len(evs))
		}
		if r := reasons(f.events(t, audit.SessionRevoked)); len(r) != 1 || r["mfa_required"] != 1 {
			t.Errorf("session.revoked reasons %v, want one mfa_required", r)
		}
	})
	t.Run("Live", func(t *testing.T) {
		f := newMFAFixture(t)
		f.createUser(t, adaEmail, ownerPW)
		res, _ := f.signIn(t, adaEmail, ownerPW)
		setPolicyAsSystem(t, f, guard.Policy{IdleTimeout: time.Hour})
		f.clock.Advance(50 * time.Minute)
		if err := f.g.LogoutToken(f.ctx, res.Token, "198.51.100.9", "Tab/1.0"); err != nil {
			t.Fatalf("LogoutToken of a live session = %v", err)
		}
		if evs := f.events(t, audit.Logout); len(evs) != 1 || evs[0].IP != "198.51.100.9" {
			t.Errorf("audit.Logout records %+v, want one from 198.51.100.9", evs)
		}
		if evs := f.events(t, audit.SessionExpired); len(evs) != 0 {
			t.Errorf("session.expired records %+v for a live session signed out", evs)
		}
	})
}

// A session an SSO sign-in replaces that the tenant's policy ended while
// the user was at the IdP (idle past a lowered IdleTimeout, live by its
// own) is recorded as the session check records that end
// (session.expired), not as its user signing out (audit.Logout) from the
// sign-in's client address.
func TestSSOReplacesSessionThePolicyEnded(t *testing.T) {
	c := &clock{t: time.Now()}
	s := newSSOSiteOn(t, newMem(), func(cfg *guard.Config) {
		cfg.Now = c.Now
		cfg.Defaults = guard.Policy{IdleTimeout: 10 * time.Minute}
	})
	_, sam := s.passwordUser(t, "sam@corp.example")
	s.idpUser(t, "bob", "bob@corp.example", `"Staff"`)
	acs, f := s.startAnswer(t, guard.SSOStart{Binding: "b-pol", Replaces: sam.SessionID()}, "bob")
	tn, err := s.g.Tenant(t.Context(), tenantID)
	if err != nil {
		t.Fatal(err)
	}
	pol := tn.Policy
	pol.IdleTimeout = time.Minute
	if _, err := s.g.SetPolicy(t.Context(), guard.System("test"), tenantID, pol, tn.Version); err != nil {
		t.Fatal(err)
	}
	c.Advance(90 * time.Second) // idle 90 s: live by its own 10 min, not by the policy's minute
	if _, err := s.complete(t, acs, f, "b-pol", sam.SessionID()); err != nil {
		t.Fatal(err)
	}
	s.checkReplacedIdle(t, sam.SessionID())
}
