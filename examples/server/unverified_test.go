package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	guard "github.com/guardhq/guard"
)

// A user who set their address with guard's ChangeEmail (the console
// itself asks for a link) shows it "unverified" in the users list and on
// their page: single sign-on does not match it.
func TestUsersShowUnverifiedEmail(t *testing.T) {
	owner, password := newClient(t)
	owner.signInAdmin(ownerEmail, password)
	resp, _ := owner.post("/users", url.Values{"email": {"sam@demo.example"}, "name": {"Sam Staff"}, "role": {"member"},
		"password": {"plum tree on the hill 42"}})
	user := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || user == "" {
		t.Fatalf("creating a user: %d", resp.StatusCode)
	}
	const badge = `>unverified</span>`
	if _, list := owner.get("/users"); strings.Contains(list, badge) {
		t.Fatal("an administrator's user shown unverified")
	}
	changeOwnEmail(t, owner.con.g, "sam@demo.example", "plum tree on the hill 42", "sam.new@demo.example")
	if _, list := owner.get("/users"); !strings.Contains(list, "sam.new@demo.example</span> <span class=\"badge warn\"") || strings.Count(list, badge) != 1 {
		t.Error("the users list does not show Sam's address unverified")
	}
	if _, page := owner.get(user); !strings.Contains(page, badge) {
		t.Error("Sam's page does not show the address unverified")
	}
}

// changeOwnEmail signs in as email with password and changes the user's
// own address to newEmail with guard's ChangeEmail: it is stored
// unverified.
func changeOwnEmail(t *testing.T, g *guard.Guard, email, password, newEmail string) {
	t.Helper()
	ctx := t.Context()
	res, err := g.Login(ctx, guard.LoginRequest{Tenant: demoTenant, Email: email, Password: password, IP: "203.0.113.9", UserAgent: "test"})
	if err != nil || res.Token == "" {
		t.Fatalf("sign-in as %s: %+v, %v", email, res, err)
	}
	p, err := g.Authenticate(ctx, res.Token)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.ChangeEmail(ctx, p, newEmail); err != nil {
		t.Fatal(err)
	}
}
