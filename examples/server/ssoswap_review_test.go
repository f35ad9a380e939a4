package main

import (
	"context"
	"net/http"
	"strings"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/sso"
)

// Login CSRF across tenants: the SSO start is a GET, which any site may
// send a signed-in browser to (a link, a redirect, a top-level
// navigation), for any tenant of the Guard. A tenant whose owner controls
// its IdP (every tenant of a multi-tenant host) has that IdP answer at
// once for the owner's own account: the binding cookie is the victim
// browser's own, since its browser started the login, so the answer is
// accepted, the victim's session is ended (SSOStart.Replaces) and the
// browser is signed in to the attacker's account ("no login CSRF" is what
// the binding cookie is said to give). A sign-in started by another site
// must not swap the browser's session for someone else's.
func TestCrossSiteSSOStartDoesNotSwapSession(t *testing.T) {
	c, idp, password := newSSOClient(t, nil)
	if resp := c.signIn(ownerEmail, password); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("owner's sign-in: %d", resp.StatusCode)
	}
	if code, who := c.whoami(); code != http.StatusOK || who.Email != ownerEmail {
		t.Fatalf("whoami before: %d %+v", code, who)
	}

	// Another organisation of the same Guard, whose owner connected an
	// IdP they control (the test IdP plays it).
	ctx := context.Background()
	sys := guard.System("test")
	if _, err := c.con.g.CreateTenant(ctx, sys, "other", "Other Ltd", guard.Policy{}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.con.g.SetSSOConnection(ctx, sys, sso.Connection{Tenant: "other", Metadata: idp.metadata(), JIT: true,
		DefaultRole: rbac.Member, AllowedDomains: []string{"example.com"}}); err != nil {
		t.Fatal(err)
	}
	_, md := c.get("/saml/other/metadata")
	idp.put("/services/other", md)
	idp.addUser("mallory", "mallory@example.com", "correct horse battery")

	// The attacker's page sends the owner's browser to start a sign-in
	// into the other organisation.
	resp, _ := c.do("GET", "/saml/other/login", nil, "cross-site")
	if loc := resp.Header.Get("Location"); resp.StatusCode == http.StatusSeeOther && strings.HasPrefix(loc, idp.url+"/sso?") {
		// The attacker's IdP answers for the attacker's account at once
		// (here its sign-in form is filled in as the attacker's IdP
		// would skip it).
		_, page := c.visit("GET", loc, nil)
		action, f := formOf(t, page)
		if !f.Has("SAMLResponse") {
			f.Set("user", "mallory")
			f.Set("password", "correct horse battery")
			_, page = c.visit("POST", action, f)
			action, f = formOf(t, page)
		}
		resp, _ = c.postFrom(idp.url, "cross-site", action, f)
		t.Logf("ACS: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	code, who := c.whoami()
	if code != http.StatusOK || who.Tenant != demoTenant || who.Email != ownerEmail {
		t.Errorf("after a sign-in started by another site: whoami %d %+v; want the owner's session of %q, untouched", code, who, demoTenant)
	}
}
