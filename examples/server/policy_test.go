package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
)

// A session whose sign-in no longer meets the tenant's policy (MFA
// required since) is ended at its next request, and the sign-in page
// says why; signing in again sends the user to enrol.
func TestPolicyChangeSignsOut(t *testing.T) {
	owner, password := newClient(t)
	owner.signInAdmin(ownerEmail, password)
	owner.post("/users", url.Values{"email": {"sam@demo.example"}, "name": {"Sam Staff"}, "role": {"member"}, "password": {"plum tree on the hill 42"}})
	sam := newClientOf(t, owner.srv, owner.con)
	if resp := sam.signIn("sam@demo.example", "plum tree on the hill 42"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("Sam's sign-in: %d", resp.StatusCode)
	}
	if code, _ := sam.whoami(); code != http.StatusOK {
		t.Fatalf("Sam's session: %d", code)
	}
	g, ctx, sys := owner.con.g, t.Context(), guard.System("test")
	tn, err := g.Tenant(ctx, demoTenant)
	if err != nil {
		t.Fatal(err)
	}
	pol := tn.Policy
	pol.RequireMFA = true
	if _, err := g.SetPolicy(ctx, sys, demoTenant, pol, tn.Version); err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond) // past the policy cache (500 ms)
	resp, body := sam.get("/account")
	for range 5 {
		if resp.StatusCode != http.StatusSeeOther {
			break
		}
		resp, body = sam.get(resp.Header.Get("Location"))
	}
	const notice = "You were signed out because your organisation&#39;s security policy changed: sign in again."
	if !strings.HasPrefix(resp.Request.URL.Path, "/login") || !strings.Contains(body, notice) {
		t.Fatalf("Sam opening /account after MFA became required ends on %s without the notice:\n%s", resp.Request.URL, body)
	}
	// Signing in again meets the policy: Sam is sent to enrol a factor.
	if resp := sam.signIn("sam@demo.example", "plum tree on the hill 42"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login/enrol" {
		t.Errorf("signing in again: %d to %q, want /login/enrol", resp.StatusCode, resp.Header.Get("Location"))
	}
}
