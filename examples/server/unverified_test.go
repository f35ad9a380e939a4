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
	ctx := t.Context()
	g := owner.con.g
	res, err := g.Login(ctx, guard.LoginRequest{Tenant: demoTenant, Email: "sam@demo.example", Password: "plum tree on the hill 42",
		IP: "203.0.113.9", UserAgent: "test"})
	if err != nil || res.Token == "" {
		t.Fatalf("Sam's sign-in: %+v, %v", res, err)
	}
	p, err := g.Authenticate(ctx, res.Token)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.ChangeEmail(ctx, p, "sam.new@demo.example"); err != nil {
		t.Fatal(err)
	}
	if _, list := owner.get("/users"); !strings.Contains(list, "sam.new@demo.example</span> <span class=\"badge warn\"") || strings.Count(list, badge) != 1 {
		t.Error("the users list does not show Sam's address unverified")
	}
	if _, page := owner.get(user); !strings.Contains(page, badge) {
		t.Error("Sam's page does not show the address unverified")
	}
}
