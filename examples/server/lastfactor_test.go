package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	guard "github.com/guardhq/guard"
)

// Under "require MFA", My account refuses to remove the user's own last
// second factor and says why (guard.ErrFactorRequired), instead of the
// page for a refused request; the factor stays.
func TestOwnLastFactorRefused(t *testing.T) {
	c, password := newClient(t)
	c.signInAdmin(ownerEmail, password)
	setPolicy(t, c.con, func(p *guard.Policy) { p.RequireMFA = true })
	g, ctx, sys := c.con.g, t.Context(), guard.System("test")
	owner, err := g.UserByEmail(ctx, sys, demoTenant, ownerEmail)
	if err != nil {
		t.Fatal(err)
	}
	fs, err := g.Factors(ctx, sys, demoTenant, owner.ID)
	if err != nil || len(fs) != 1 {
		t.Fatalf("the owner's factors: %v, %v", fs, err)
	}
	resp, _ := c.post("/account/mfa/remove", url.Values{"factor": {fs[0].ID}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("removing the last factor: %d, want a redirect with the reason", resp.StatusCode)
	}
	if _, page := c.get(resp.Header.Get("Location")); !strings.Contains(page, "add another second factor before you remove your last one") {
		t.Errorf("after the refused removal:\n%.2000s", page)
	}
	if fs, _ := g.Factors(ctx, sys, demoTenant, owner.ID); len(fs) != 1 {
		t.Errorf("the owner's factors after the refusal: %v", fs)
	}
}
