package main

import (
	"net/http"
	"net/url"
	"testing"
)

// The reset link's token is moved out of the URL and the history into
// the browser's __Host-reset cookie (15 minutes), so that it cannot be
// found in the browser afterwards. But the cookie outlives what the user
// does next in that browser: they remember their password, sign in with
// it and sign out (a shared computer), and the next person at the browser
// still holds a working reset of their account: POST /reset sets a
// password of their choosing. Signing in or out must end a reset left
// half-way in the browser (as it ends a sign-in left half-way: the
// pending cookie).
func TestSignOutEndsResetLeftInBrowser(t *testing.T) {
	c, password := newClient(t)
	resp, _ := c.post("/forgot", url.Values{"tenant": {demoTenant}, "email": {ownerEmail}, "captcha": {standinToken}})
	if resp.StatusCode != 200 {
		t.Fatalf("forgot: %d", resp.StatusCode)
	}
	u, _ := url.Parse(waitLink(t, c.con, ownerEmail))
	if resp, _ := c.get(u.RequestURI()); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("reset link: %d", resp.StatusCode)
	}
	// The owner remembers the password after all: signs in, then out.
	if resp := c.signIn(ownerEmail, password); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	if c.cookie(resetCookie) != "" {
		t.Error("the reset left in the browser outlives the sign-in")
	}
	// Signed in, the owner opens a reset link again (an old mail), and
	// signs out.
	if resp, _ := c.get(u.RequestURI()); resp.StatusCode != http.StatusSeeOther || c.cookie(resetCookie) == "" {
		t.Fatalf("reset link while signed in: %d", resp.StatusCode)
	}
	if resp, _ := c.post("/logout", url.Values{}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", resp.StatusCode)
	}
	// The next person at the browser.
	resp, _ = c.post("/reset", url.Values{"password": {"the next person's choice"}, "confirm": {"the next person's choice"}, "captcha": {standinToken}})
	if resp.StatusCode == http.StatusSeeOther {
		t.Errorf("POST /reset after the owner signed in and out in this browser: %d to %q: the reset left in the browser still works",
			resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp := c.signIn(ownerEmail, "the next person's choice"); resp.StatusCode == http.StatusSeeOther {
		t.Error("the next person at the browser signs in as the owner with a password of their choosing")
	}
}
