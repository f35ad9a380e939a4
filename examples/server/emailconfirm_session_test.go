package main

import (
	"net/http"
	"net/url"
	"testing"

	guard "github.com/guardhq/guard"
)

// Confirming an email change signs out the browser only when its session
// is the changed user's (Guard has ended every session of that user): a
// browser signed in as someone else, where the link was opened, keeps its
// session and its cookie, rather than losing the cookie of a session that
// stays live on the server. The changed user's own browser is signed out.
func TestEmailConfirmKeepsAnotherUsersSession(t *testing.T) {
	owner, password := newClient(t)
	if resp := owner.signIn(ownerEmail, password); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("owner sign-in: %d", resp.StatusCode)
	}
	const deeEmail, deePW, newEmail = "dee@demo.example", "plum tree on the hill 42", "dee.new@demo.example"
	if _, err := owner.con.g.CreateUser(t.Context(), guard.System("test"), guard.NewUser{Tenant: demoTenant, Email: deeEmail, Name: "Dee", Password: deePW}); err != nil {
		t.Fatal(err)
	}
	dee := newClientOf(t, owner.srv, owner.con)
	if resp := dee.signIn(deeEmail, deePW); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("dee sign-in: %d", resp.StatusCode)
	}
	if resp, _ := dee.post("/account/email", url.Values{"email": {newEmail}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("email change: %d", resp.StatusCode)
	}
	// Dee's link, opened in the owner's browser.
	u, _ := url.Parse(waitLinkTo(t, owner.con, newEmail, "/email/confirm"))
	if resp, _ := owner.get(u.RequestURI()); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("email change link: %d", resp.StatusCode)
	}
	token := owner.cookie(sessionCookie)
	if resp, _ := owner.post("/email/confirm", url.Values{}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("confirm email change: %d", resp.StatusCode)
	}
	if code, _ := dee.whoami(); code != http.StatusUnauthorized {
		t.Errorf("Dee's session after the change: whoami %d, want 401", code)
	}
	if got := owner.cookie(sessionCookie); got != token {
		t.Errorf("the owner's browser lost its session cookie to Dee's email change")
	}
	if code, w := owner.whoami(); code != http.StatusOK || w.Email != ownerEmail {
		t.Errorf("the owner's session after Dee's email change: whoami %d as %q, want 200 as %s", code, w.Email, ownerEmail)
	}

	// The owner's own change, confirmed in their browser: signed out.
	const ownerNew = "owner.new@demo.example"
	if resp, _ := owner.post("/account/email", url.Values{"email": {ownerNew}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("owner's email change: %d", resp.StatusCode)
	}
	u, _ = url.Parse(waitLinkTo(t, owner.con, ownerNew, "/email/confirm"))
	owner.get(u.RequestURI())
	if resp, _ := owner.post("/email/confirm", url.Values{}); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("confirm the owner's email change: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if owner.cookie(sessionCookie) != "" {
		t.Errorf("the owner's browser kept the cookie of the session their email change ended")
	}
}
