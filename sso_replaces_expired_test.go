package guard_test

import (
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// A session an SSO sign-in replaces that expired while the user was at
// the IdP is recorded as expired (session.expired, once), not as its user
// signing out (audit.Logout) from the sign-in's client address, perhaps
// another person's on a shared computer.
func TestSSOReplacesExpiredSessionRecordedExpired(t *testing.T) {
	c := &clock{t: time.Now()}
	s := newSSOSiteOn(t, newMem(), func(cfg *guard.Config) {
		cfg.Now = c.Now
		cfg.Defaults = guard.Policy{IdleTimeout: time.Minute}
	})
	_, sam := s.passwordUser(t, "sam@corp.example")
	s.idpUser(t, "bob", "bob@corp.example", `"Staff"`)
	acs, f := s.startAnswer(t, guard.SSOStart{Binding: "b-exp", Replaces: sam.SessionID()}, "bob")
	// The user takes 90 s at the IdP: sam's session is past its idle
	// timeout, ended, when the answer arrives.
	c.Advance(90 * time.Second)
	ss, err := s.stores.SessionIndex.ListByUser(t.Context(), sam.Tenant, sam.UserID)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, x := range ss {
		if x.Hash == sam.Session {
			found = true
			if x.LiveAt(c.Now()) {
				t.Fatal("setup: the replaced session is still live")
			}
		}
	}
	if !found {
		t.Fatal("setup: the replaced session is not stored")
	}
	if _, err := s.complete(t, acs, f, "b-exp", sam.SessionID()); err != nil {
		t.Fatal(err)
	}
	s.checkReplacedIdle(t, sam.SessionID())
}

// checkReplacedIdle checks the records of the session id an SSO sign-in
// replaced, found past its idle timeout: one session.expired, reason
// idle_timeout, and no audit.Logout.
func (s *ssoSite) checkReplacedIdle(t *testing.T, id string) {
	t.Helper()
	for _, e := range s.events(t, audit.Logout) {
		if e.Target == id {
			t.Errorf("an expired replaced session is recorded as signed out by its user (audit.Logout, IP %s)", e.IP)
		}
	}
	var got []string
	for _, e := range s.events(t, audit.SessionExpired) {
		if e.Target == id {
			got = append(got, e.Reason)
		}
	}
	if len(got) != 1 || got[0] != "idle_timeout" {
		t.Errorf("session.expired records of the replaced session = %q, want one with reason idle_timeout", got)
	}
}
