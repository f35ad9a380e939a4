package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/rbac"
)

// The step-up page offers the password only where it is a proof: not to
// a user who has one while the organisation requires single sign-on (but
// its break-glass owner), who confirms at the IdP instead, and a refused
// or wrong password shows the same page again, the IdP still offered.
func TestStepUpOffersPasswordOnlyWhenUsable(t *testing.T) {
	clock := &testClock{}
	c, idp, password := newSSOClientAdminMFAOff(t, clock)
	c.clock = clock
	c.signIn(ownerEmail, password)
	_, who := c.whoami()
	g, ctx, sys := c.con.app.g, t.Context(), guard.System("test")
	const bobPW = "plum tree on the hill 42"
	if _, err := g.CreateUser(ctx, sys, guard.NewUser{Tenant: demoTenant, Email: "bob@example.com", Name: "Bob",
		Password: bobPW, Roles: []string{rbac.Member}}); err != nil {
		t.Fatal(err)
	}
	// Bob has a password and signs in through the IdP.
	idp.addUser("bob", "bob@example.com", "correct horse battery", "staff")
	bob := newClientOf(t, c.srv, c.con)
	acs, answer := bob.ssoAnswer(idp, "bob", "correct horse battery", "")
	bob.postFrom(idp.url, "cross-site", acs, answer)
	if code, w := bob.whoami(); code != http.StatusOK || !w.SSO {
		t.Fatalf("Bob's SSO sign-in: %d %+v", code, w)
	}
	offers := func(t *testing.T, page string, password, sso bool) {
		t.Helper()
		if got := strings.Contains(page, `id="reauth-password"`); got != password {
			t.Errorf("the step-up page offers the password: %v, want %v", got, password)
		}
		if got := strings.Contains(page, `id="reauth-sso"`); got != sso {
			t.Errorf("the step-up page offers SSO: %v, want %v", got, sso)
		}
	}

	t.Run("a wrong password", func(t *testing.T) {
		_, page := bob.get("/reauth?next=%2Faccount")
		offers(t, page, true, true)
		resp, page := bob.post("/reauth", url.Values{"password": {"a wrong guess"}, "next": {"/account"}})
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("a wrong password: %d, want 400", resp.StatusCode)
		}
		offers(t, page, true, true)
	})

	// The owner sets up a second factor and becomes the break-glass
	// owner; single sign-on is required.
	_, body := c.post("/account/mfa/oob", url.Values{"kind": {"sms"}, "destination": {"+447700900123"}})
	if resp, _ := c.post("/account/mfa/confirm", url.Values{"factor": {field(t, body, "factor")}, "code": {smsCode(t, c.con, "+447700900123")}}); resp.StatusCode != http.StatusOK {
		t.Fatalf("the owner's SMS factor: %d", resp.StatusCode)
	}
	setPolicy(t, c.con, func(p *guard.Policy) { p.RequireSSO, p.BreakGlassUser = true, who.UserID })

	t.Run("SSO required", func(t *testing.T) {
		resp, page := bob.get("/reauth?next=%2Faccount")
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("the step-up page: %d", resp.StatusCode)
		}
		offers(t, page, false, true)
		// A form from before: refused, and the page says where to go.
		resp, page = bob.post("/reauth", url.Values{"password": {bobPW}, "next": {"/account"}})
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "single sign-on") {
			t.Errorf("a password step-up under require SSO: %d", resp.StatusCode)
		}
		offers(t, page, false, true)
		if code, _ := bob.whoami(); code != http.StatusOK {
			t.Errorf("Bob's session after the refused step-up: %d", code)
		}
	})
	t.Run("break-glass owner", func(t *testing.T) {
		_, page := c.get("/reauth?next=%2Faccount")
		offers(t, page, true, false)
	})
}
