package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// A password an owner marks compromised (SECURITY-CHECKLIST PW-9): the
// user's next sign-in lands on My account, and every page that needs a
// permission sends them back to its change-password form with the
// reason, until they change it; then the same pages open.
func TestExpiredPasswordSendsToChange(t *testing.T) {
	owner, password := newClient(t)
	if resp := owner.signInAdmin(ownerEmail, password); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("owner sign-in: %d", resp.StatusCode)
	}
	const samEmail, samPW = "sam@demo.example", "plum tree on the hill 42"
	resp, _ := owner.post("/users", url.Values{"email": {samEmail}, "name": {"Sam Staff"}, "role": {"admin"}, "password": {samPW}})
	user := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(user, "/users/") {
		t.Fatalf("create user: %d to %q", resp.StatusCode, user)
	}
	if resp, _ := owner.post(user+"/expire-password", url.Values{}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("expire password: %d", resp.StatusCode)
	}

	sam := newClientOf(t, owner.srv, owner.con)
	if resp := sam.signIn(samEmail, samPW); resp.Header.Get("Location") != "/account" {
		t.Fatalf("sign-in with an expired password went to %q, want /account", resp.Header.Get("Location"))
	}
	const why = "Your password must be changed before you can do anything else"
	for _, path := range []string{"/campaigns", "/users", "/approvals"} {
		resp, _ := sam.get(path)
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/account#change-password" {
			t.Errorf("GET %s with an expired password: %d to %q, want the change-password form", path, resp.StatusCode, resp.Header.Get("Location"))
		}
		if got := resp.Header.Get("Guard-Reason"); got != "" {
			t.Errorf("GET %s with an expired password: the redirect carries Guard-Reason %q", path, got)
		}
		if resp, page := sam.get("/account"); resp.StatusCode != 200 || !strings.Contains(page, why) || !strings.Contains(page, `id="change-password"`) {
			t.Errorf("after GET %s, My account: %d, without the reason or the form", path, resp.StatusCode)
		}
	}
	if resp, _ := sam.post("/campaigns/send", url.Values{"campaign": {"x"}}); resp.Header.Get("Location") != "/account#change-password" {
		t.Errorf("POST /campaigns/send with an expired password: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	const next = "an entirely new passphrase"
	resp, _ = sam.post("/account/password", url.Values{"current": {samPW}, "new": {next}, "confirm": {next}, "captcha": {standinToken}})
	if _, page := sam.get("/account"); resp.StatusCode != http.StatusSeeOther || !strings.Contains(page, "Password changed.") {
		t.Fatalf("change password: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := sam.get("/campaigns"); resp.StatusCode != 200 {
		t.Errorf("GET /campaigns after the change: %d, want 200", resp.StatusCode)
	}
}
