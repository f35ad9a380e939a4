package guard_test

import (
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/sso"
)

// startAnswer starts an SP-initiated login with start (its Tenant set
// here), signs user in at the IdP in a fresh browser and returns the ACS
// form the IdP gave it, not yet posted.
func (s *ssoSite) startAnswer(t *testing.T, start guard.SSOStart, user string) (string, url.Values) {
	t.Helper()
	start.Tenant = tenantID
	l, err := s.g.StartSSO(t.Context(), start)
	if err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	b := &http.Client{Jar: jar}
	action, fields := formOf(t, s.get(t, b, l.RedirectURL))
	fields.Set("user", user)
	fields.Set("password", "correct horse")
	resp, err := b.PostForm(action, fields)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return formOf(t, string(body))
}

// complete posts an ACS form to CompleteSSO with the binding and the
// replaced session the browser kept.
func (s *ssoSite) complete(t *testing.T, acs string, fields url.Values, binding, replaces string) (guard.LoginResult, error) {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, acs, strings.NewReader(fields.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, _, err := s.g.CompleteSSO(t.Context(), guard.SSOResponse{Tenant: tenantID, Request: r, Binding: binding, Replaces: replaces,
		IP: "203.0.113.9", UserAgent: "test"})
	return res, err
}

// An SSO sign-in ends the session the browser was signed in with when the
// login started (SSOStart.Replaces, kept by the host with the binding
// since the session cookie does not come with the IdP's cross-site POST),
// before it creates the new one: under a session limit of one that
// refuses new sessions, the step-up of an SSO user is not refused for the
// very session it replaces; and a session of another user left in the
// browser ends (SE-1). Only the session committed at the start with the
// binding can be named: another ID at the ACS refuses the answer and ends
// nothing, and an answer that checked no binding ends nothing.
func TestSSOSignInReplacesTheBrowsersSession(t *testing.T) {
	s := newSSOSiteOn(t, newMem(), func(c *guard.Config) {
		c.Defaults = guard.Policy{SessionLimit: 1, OnSessionLimit: guard.RefuseNewSession}
	})
	_, alice := s.ssoUser(t, "alice", "alice@corp.example")

	t.Run("step-up at the limit", func(t *testing.T) {
		acs, f := s.startAnswer(t, guard.SSOStart{Binding: "b-plain", ForceAuthn: true}, "alice")
		if _, err := s.complete(t, acs, f, "b-plain", ""); !errors.Is(err, guard.ErrSessionLimit) {
			t.Fatalf("a step-up that names no replaced session: %v; want ErrSessionLimit (the browser's own session fills the limit)", err)
		}
		acs, f = s.startAnswer(t, guard.SSOStart{Binding: "b-step", ForceAuthn: true, Replaces: alice.SessionID()}, "alice")
		res, err := s.complete(t, acs, f, "b-step", alice.SessionID())
		if err != nil || res.Token == "" {
			t.Fatalf("the step-up replacing the browser's session: %+v, %v", res, err)
		}
		if s.hasSession(t, alice) {
			t.Error("the replaced session still lives")
		}
		if _, err := s.g.Authenticate(t.Context(), res.Token); err != nil {
			t.Errorf("the new session: %v", err)
		}
		var ended bool
		for _, e := range s.events(t, audit.Logout) {
			ended = ended || e.Target == alice.SessionID() && e.Actor.ID == alice.UserID
		}
		if !ended {
			t.Error("no logout recorded for the replaced session")
		}
		alice, _ = s.g.Authenticate(t.Context(), res.Token)
	})

	t.Run("another user's session", func(t *testing.T) {
		_, sam := s.passwordUser(t, "sam@corp.example")
		s.idpUser(t, "bob", "bob@corp.example", `"Staff"`)
		acs, f := s.startAnswer(t, guard.SSOStart{Binding: "b-bob", Replaces: sam.SessionID()}, "bob")
		if _, err := s.complete(t, acs, f, "b-bob", sam.SessionID()); err != nil {
			t.Fatal(err)
		}
		if s.hasSession(t, sam) {
			t.Error("the session of the user who used the browser before still lives")
		}
	})

	t.Run("only the start's session", func(t *testing.T) {
		_, victim := s.passwordUser(t, "victim@corp.example")
		s.idpUser(t, "mallory", "mallory@corp.example", `"Staff"`)
		// Named at the ACS only, or instead of the start's: refused.
		acs, f := s.startAnswer(t, guard.SSOStart{Binding: "b-m1"}, "mallory")
		if _, err := s.complete(t, acs, f, "b-m1", victim.SessionID()); !errors.Is(err, guard.ErrSSOFailed) {
			t.Errorf("a replaced session named at the ACS only: %v; want ErrSSOFailed", err)
		}
		_, mallory := s.ssoUser(t, "mallory", "mallory@corp.example")
		acs, f = s.startAnswer(t, guard.SSOStart{Binding: "b-m2", Replaces: mallory.SessionID()}, "mallory")
		if _, err := s.complete(t, acs, f, "b-m2", victim.SessionID()); !errors.Is(err, guard.ErrSSOFailed) {
			t.Errorf("another session named at the ACS than at the start: %v; want ErrSSOFailed", err)
		}
		var mismatch int
		for _, e := range s.events(t, audit.SSOFailed) {
			if e.Reason == string(sso.ReasonBindingMismatch) {
				mismatch++
			}
		}
		if mismatch != 2 {
			t.Errorf("%d sso.failed binding_mismatch events, want 2", mismatch)
		}
		// A login started without a binding checks none: the name is
		// taken from nobody.
		s.idpUser(t, "carol", "carol@corp.example", `"Staff"`)
		acs, f = s.startAnswer(t, guard.SSOStart{}, "carol")
		if _, err := s.complete(t, acs, f, "", victim.SessionID()); err != nil {
			t.Errorf("an unbound answer naming a session: %v", err)
		}
		if !s.hasSession(t, victim) {
			t.Error("a session named by another browser than its own was ended")
		}
	})

	t.Run("bad input", func(t *testing.T) {
		var ie *guard.InputError
		for name, start := range map[string]guard.SSOStart{
			"not a session ID":   {Tenant: tenantID, Binding: "b", Replaces: "nope"},
			"without binding":    {Tenant: tenantID, Replaces: alice.SessionID()},
			"binding with a NUL": {Tenant: tenantID, Binding: "b\x00" + alice.SessionID()},
		} {
			if _, err := s.g.StartSSO(t.Context(), start); !errors.As(err, &ie) {
				t.Errorf("StartSSO, replaced session %s: %v; want an *InputError", name, err)
			}
		}
		acs, f := s.startAnswer(t, guard.SSOStart{Binding: "b-bad", Replaces: alice.SessionID()}, "alice")
		if _, err := s.complete(t, acs, f, "b-bad", "nope"); !errors.As(err, &ie) {
			t.Errorf("CompleteSSO with a replaced session that is no ID: %v; want an *InputError", err)
		}
		if !s.hasSession(t, alice) {
			t.Error("a refused answer ended the session")
		}
	})
}

// A binding with a NUL byte is refused at the ACS as at the start
// (*InputError, nothing ended): "b\x00<id>" with no Replaces would match
// the commitment of a login started with binding b replacing session id,
// and complete it without ending that session.
func TestSSOBindingWithNULRefusedAtACS(t *testing.T) {
	s := newSSOSiteOn(t, newMem())
	_, sam := s.passwordUser(t, "sam@corp.example")
	s.idpUser(t, "bob", "bob@corp.example", `"Staff"`)
	acs, f := s.startAnswer(t, guard.SSOStart{Binding: "b-nul", Replaces: sam.SessionID()}, "bob")
	res, err := s.complete(t, acs, f, "b-nul\x00"+sam.SessionID(), "")
	var ie *guard.InputError
	if !errors.As(err, &ie) || res.Token != "" {
		t.Fatalf("CompleteSSO with a NUL in the binding = %+v, %v; want an *InputError", res, err)
	}
	ss, err := s.stores.SessionIndex.ListByUser(t.Context(), sam.Tenant, sam.UserID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 1 || ss[0].Hash != sam.Session {
		t.Errorf("sam's sessions after a refused answer: %d, want the one it had", len(ss))
	}
}
