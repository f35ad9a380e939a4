package main

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	guard "github.com/guardhq/guard"
)

// A step-up form submitted twice: both requests carry the session's token
// and pass the session check before either renews the session, the first
// gets a new token (its answer sets the new cookie), and the second finds
// its token replaced (ErrUnauthenticated). The second's answer must not
// clear the cookie, which by then holds the first's new token: it sends
// the browser on to where it was going, whose session check decides.
// It used to clear the cookie and send the user to sign in again.
func TestStepUpSubmittedTwiceKeepsTheSession(t *testing.T) {
	c, password := newClient(t)
	c.signIn(ownerEmail, password)
	g, ctx := c.con.app.g, t.Context()
	base, _ := url.Parse(c.srv.URL)
	cookies := c.c.Jar.Cookies(base)
	probe := httptest.NewRequest(http.MethodGet, "/", nil)
	for _, ck := range cookies {
		probe.AddCookie(ck)
	}
	tok, ok := g.SessionToken(probe)
	if !ok {
		t.Fatal("no session cookie after signing in")
	}
	p, err := g.Authenticate(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	// The first submission's step-up renews the session.
	if _, _, err := g.Reauthenticate(ctx, p, tok, guard.Proof{Password: password}); err != nil {
		t.Fatalf("the first step-up: %v", err)
	}
	// The second, let in with the token before the first renewed it.
	form := url.Values{"password": {password}, "next": {"/account"}}
	req := httptest.NewRequest(http.MethodPost, "/reauth", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for _, ck := range cookies {
		req.AddCookie(ck)
	}
	req = req.WithContext(guard.WithPrincipal(req.Context(), p))
	rec := httptest.NewRecorder()
	c.con.app.reauth(rec, req)
	if rec.Code != http.StatusSeeOther || rec.Header().Get("Location") != "/account" {
		t.Errorf("the second submission: %d to %q, want 303 to /account", rec.Code, rec.Header().Get("Location"))
	}
	for _, ck := range rec.Result().Cookies() {
		if ck.Value == "" || ck.MaxAge < 0 {
			t.Errorf("the second submission clears cookie %q", ck.Name)
		}
	}
}
