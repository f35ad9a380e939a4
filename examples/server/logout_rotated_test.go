package main

import (
	"net/http"
	"net/url"
	"testing"
)

// Signing out in a tab whose cookie another tab's rotation has replaced
// (here a password change, which gives the session a new token) ends the
// session: the button works whatever the other tab did.
func TestSignOutAfterAnotherTabRotated(t *testing.T) {
	c, password := newClient(t)
	if resp := c.signIn(ownerEmail, password); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	other := newClientOf(t, c.srv, c.con)
	u, _ := url.Parse(c.srv.URL + "/")
	other.c.Jar.SetCookies(u, c.c.Jar.Cookies(u))
	if code, _ := other.whoami(); code != http.StatusOK {
		t.Fatalf("whoami in the other tab: %d", code)
	}
	resp, _ := other.post("/account/password", url.Values{"current": {password}, "new": {"a fresh and rather long passphrase 42"}, "confirm": {"a fresh and rather long passphrase 42"},
		"captcha": {standinToken}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/account" {
		t.Fatalf("password change in the other tab: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if code, _ := other.whoami(); code != http.StatusOK {
		t.Fatalf("whoami in the other tab after its rotation: %d", code)
	}
	if before, after := sessionCookieOf(c, u), sessionCookieOf(other, u); before == "" || after == before {
		t.Fatalf("the other tab's password change gave it no new session cookie")
	}
	resp, _ = c.post("/logout", url.Values{})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("sign-out with the old cookie: %d to %q, want a sign-out to /login", resp.StatusCode, resp.Header.Get("Location"))
	}
	if code, _ := other.whoami(); code != http.StatusUnauthorized {
		t.Fatalf("whoami in the other tab after signing out in the first: %d, want 401", code)
	}
}

// sessionCookieOf returns the value of c's session cookie for u, or "".
func sessionCookieOf(c *client, u *url.URL) string {
	for _, k := range c.c.Jar.Cookies(u) {
		if k.Name == sessionCookie {
			return k.Value
		}
	}
	return ""
}
