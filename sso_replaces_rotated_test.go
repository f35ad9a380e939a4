package guard_test

import (
	"net/url"
	"testing"

	guard "github.com/guardhq/guard"
)

// The session an SSO sign-in replaces (SSOResponse.Replaces) is ended
// through its rotations: rotated meanwhile (a step-up in another tab,
// RotateSession), its successor, the same session under a new token,
// ends with the sign-in, as LogoutToken follows a rotation.
func TestSSOReplacesFollowsRotation(t *testing.T) {
	s := newSSOSiteOn(t, newMem())
	s.passwordUser(t, "sam@corp.example")
	res, err := s.g.Login(t.Context(), guard.LoginRequest{Tenant: tenantID, Email: "sam@corp.example", Password: ownerPW,
		IP: "203.0.113.9", UserAgent: "test"})
	if err != nil || res.Token == "" {
		t.Fatalf("sign-in: %+v, %v", res, err)
	}
	sam, err := s.g.Authenticate(t.Context(), res.Token)
	if err != nil {
		t.Fatal(err)
	}
	s.idpUser(t, "bob", "bob@corp.example", `"Staff"`)
	// The browser, signed in as sam, starts an SSO login that replaces
	// sam's session.
	acs, f := s.startAnswer(t, guard.SSOStart{Binding: "b-rot", Replaces: sam.SessionID()}, "bob")
	// Meanwhile the browser's session is rotated (another tab's step-up).
	rotated, _, err := s.g.RotateSession(t.Context(), res.Token, sam.Flags)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.complete(t, acs, f, "b-rot", sam.SessionID()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.g.Authenticate(t.Context(), rotated); err == nil {
		t.Error("the browser's session, rotated while the SSO login ran, still authenticates after the sign-in that replaces it")
	}
}

// The same under SessionLimit 1 with RefuseNewSession: an SSO step-up
// replacing the browser's session, rotated while the user was at the IdP,
// is not refused for that session.
func TestSSOReplacesStepUpAfterRotation(t *testing.T) {
	s := newSSOSiteOn(t, newMem(), func(c *guard.Config) {
		c.Defaults = guard.Policy{SessionLimit: 1, OnSessionLimit: guard.RefuseNewSession}
	})
	b, alice := s.ssoUser(t, "alice", "alice@corp.example")
	u, _ := url.Parse(s.srv.URL)
	token := ""
	for _, c := range b.Jar.Cookies(u) {
		if p, err := s.g.Authenticate(t.Context(), c.Value); err == nil && p.Session == alice.Session {
			token = c.Value
		}
	}
	if token == "" {
		t.Fatal("setup: no session token in the browser")
	}
	acs, f := s.startAnswer(t, guard.SSOStart{Binding: "b-step-rot", ForceAuthn: true, Replaces: alice.SessionID()}, "alice")
	if _, _, err := s.g.RotateSession(t.Context(), token, alice.Flags); err != nil {
		t.Fatal(err)
	}
	if _, err := s.complete(t, acs, f, "b-step-rot", alice.SessionID()); err != nil {
		t.Errorf("the step-up replacing the browser's (rotated) session: %v; want a new session", err)
	}
}
