package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// Adding a user without a password mails them an invitation, which sets
// their password; "Send invitation again" voids the older link; "Delete
// user" needs its confirmation box and then removes the sign-in.
func TestInviteAndDeleteUser(t *testing.T) {
	owner, password := newClient(t)
	owner.signInAdmin(ownerEmail, password)
	resp, _ := owner.post("/users", url.Values{"email": {"ivy@demo.example"}, "name": {"Ivy New"}, "role": {"member"}})
	user := resp.Header.Get("Location")
	if _, page := owner.get(user); !strings.Contains(page, "a link to set their password was mailed") || !strings.Contains(page, "3 days") {
		t.Fatalf("after adding a user without a password:\n%.2000s", page)
	}
	first := waitLink(t, owner.con, "ivy@demo.example")
	owner.post(user+"/invite", url.Values{})
	second := waitLink(t, owner.con, "ivy@demo.example")
	if second == first {
		t.Fatal("sending the invitation again mailed the same link")
	}
	ivy := newClientOf(t, owner.srv, owner.con)
	setPassword := func(link string) int {
		u, _ := url.Parse(link)
		ivy.get(u.RequestURI())
		resp, _ := ivy.post("/reset", url.Values{"password": {"lantern harbour quiet steps"}, "confirm": {"lantern harbour quiet steps"}, "captcha": {standinToken}})
		return resp.StatusCode
	}
	if code := setPassword(first); code != http.StatusBadRequest {
		t.Errorf("the first invitation, after a newer one: %d, want 400", code)
	}
	if code := setPassword(second); code != http.StatusSeeOther {
		t.Fatalf("the newer invitation: %d, want 303", code)
	}
	if resp := ivy.signIn("ivy@demo.example", "lantern harbour quiet steps"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("Ivy's sign-in: %d", resp.StatusCode)
	}

	// Deleting: not without the box ticked, then gone.
	owner.post(user+"/delete", url.Values{})
	if resp, _ := owner.get(user); resp.StatusCode != http.StatusOK {
		t.Fatalf("deleted without the confirmation: %d", resp.StatusCode)
	}
	resp, _ = owner.post(user+"/delete", url.Values{"confirm": {"yes"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/users" {
		t.Fatalf("delete: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := owner.get(user); resp.StatusCode == http.StatusOK {
		t.Error("the deleted user's page still answers 200")
	}
	if code, _ := ivy.whoami(); code != http.StatusUnauthorized {
		t.Errorf("Ivy's session after the delete: %d, want 401", code)
	}
	if resp := ivy.signIn("ivy@demo.example", "lantern harbour quiet steps"); resp.StatusCode == http.StatusSeeOther {
		t.Error("the deleted user signed in")
	}
}

// The invitation works for as long as the page says it does (the console
// sets Recovery.InviteTTL from the same constant), and not after.
func TestInvitationLivesAsSaid(t *testing.T) {
	owner, password := newClient(t)
	owner.signInAdmin(ownerEmail, password)
	invite := func(email string) string {
		resp, _ := owner.post("/users", url.Values{"email": {email}, "role": {"member"}})
		if _, page := owner.get(resp.Header.Get("Location")); !strings.Contains(page, "it works once, for "+inviteTTLText) {
			t.Fatalf("after inviting %s:\n%.2000s", email, page)
		}
		return waitLink(t, owner.con, email)
	}
	early, late := invite("una@demo.example"), invite("vic@demo.example")
	use := func(link string) int {
		c := newClientOf(t, owner.srv, owner.con)
		u, _ := url.Parse(link)
		c.get(u.RequestURI())
		resp, _ := c.post("/reset", url.Values{"password": {"lantern harbour quiet steps"}, "confirm": {"lantern harbour quiet steps"}, "captcha": {standinToken}})
		return resp.StatusCode
	}
	owner.clock.Advance(inviteTTL - time.Minute)
	if code := use(early); code != http.StatusSeeOther {
		t.Fatalf("an invitation a minute before it ends: %d, want 303", code)
	}
	owner.clock.Advance(2 * time.Minute)
	if code := use(late); code != http.StatusBadRequest {
		t.Fatalf("an invitation a minute after it ended: %d, want 400", code)
	}
}
