package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	guard "github.com/guardhq/guard"
)

// Audit of account enumeration on the console's pages: each test fails on
// the code as it stands because of the defect it names.

// The sign-in page answers a made-up organisation like a wrong password
// (400, "Incorrect email or password."), but a malformed address or an
// over-long password only so in an organisation that does not exist: in
// a real one it is a 400 naming the input problem. One request per
// guess tells which organisation IDs exist.
func TestAuditEnum_ConsoleLoginRevealsTenant(t *testing.T) {
	c, _ := newClient(t)
	for _, tc := range []struct{ name, email, password string }{
		{"MalformedEmail", "not an address", "whatever password"},
		{"OverlongPassword", "nobody@demo.example", strings.Repeat("x", guard.MaxPasswordBytes+1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status := map[string]int{}
			for _, tenant := range []string{demoTenant, "no-such-org"} {
				resp, _ := c.post("/login", url.Values{"tenant": {tenant}, "email": {tc.email}, "password": {tc.password}})
				status[tenant] = resp.StatusCode
			}
			if status[demoTenant] != status["no-such-org"] {
				t.Errorf("sign-in answers %d in the existing organisation and %d in a made-up one", status[demoTenant], status["no-such-org"])
			}
		})
	}
}

// The reset page answers a made-up link "invalid or has expired", but
// when the link names a real, active user (user IDs travel in every
// reset link) and the new password is over-long, it answers "That
// password is too long." before the token is checked: whoever holds a
// user ID learns that the account exists and is active.
func TestAuditEnum_ConsoleResetPageRevealsUser(t *testing.T) {
	c, _ := newClient(t)
	owner, err := c.con.g.UserByEmail(t.Context(), guard.System("test"), demoTenant, ownerEmail)
	if err != nil {
		t.Fatal(err)
	}
	token := strings.Repeat("A", 43)
	over := strings.Repeat("x", guard.MaxPasswordBytes+1)
	for _, id := range []string{owner.ID, "0123456789abcdef0123456789abcdef"} {
		b := newClientOf(t, c.srv, c.con)
		b.get("/reset?" + url.Values{"tenant": {demoTenant}, "user": {id}, "token": {token}}.Encode())
		resp, body := b.post("/reset", url.Values{"password": {over}, "confirm": {over}, "captcha": {standinToken}})
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "invalid or has expired") {
			t.Errorf("made-up reset link for user %s (owner: %v): %d, %q; want 400 \"invalid or has expired\" as for any made-up link",
				id, id == owner.ID, resp.StatusCode, pageError(body))
		}
	}
}

// pageError returns the first line of body that mentions an error, for
// a message.
func pageError(body string) string {
	for _, l := range strings.Split(body, "\n") {
		if strings.Contains(l, "class=\"error") || strings.Contains(l, "role=\"alert\"") {
			return strings.TrimSpace(l)
		}
	}
	return ""
}
