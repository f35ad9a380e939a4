package main

import (
	"net/http"
	"strings"
	"testing"

	guard "github.com/guardhq/guard"
)

// Under a session limit that refuses new sessions (Policy.OnSessionLimit
// "refuse_new"; limit 1 here), a user signed in by SSO can take the
// step-up the console offers them ("Sign in again with SSO",
// /saml/{tenant}/login?force=1): the session the browser had when the
// step-up started is the one the new sign-in replaces, so it does not
// fill the limit. For an SSO user without a password (and for everyone
// while the tenant requires SSO) this is the only step-up. The IdP's
// answer comes cross-site, without the SameSite=Lax session cookie.
func TestSSOStepUpAtRefusingSessionLimit(t *testing.T) {
	c, idp, _ := newSSOClient(t, nil)
	idp.addUser("alice", "alice@example.com", "correct horse battery", "staff")
	alice := newClientOf(t, c.srv, c.con)
	if to := alice.ssoSignIn(idp, "/saml/demo/login?next=%2Faccount", "alice", "correct horse battery", false); to != "/account" {
		t.Fatalf("SSO sign-in goes to %q", to)
	}
	setPolicy(t, c.con, func(p *guard.Policy) { p.SessionLimit, p.OnSessionLimit = 1, guard.RefuseNewSession })

	// The step-up page offers Alice (no password) a new sign-in at the IdP.
	_, page := alice.get("/reauth?next=%2Faccount")
	link := href(page, "reauth-sso")
	if !strings.HasPrefix(link, "/saml/demo/login?force=1") {
		t.Fatalf("the step-up page offers no SSO sign-in:\n%.2000s", page)
	}
	resp, _ := alice.startSSO(link)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, idp.url+"/sso?") {
		t.Fatalf("GET %s: %d to %q, want the IdP", link, resp.StatusCode, loc)
	}
	_, idpPage := alice.visit("GET", loc, nil)
	action, f := formOf(t, idpPage)
	if !f.Has("SAMLResponse") {
		f.Set("user", "alice")
		f.Set("password", "correct horse battery")
		_, idpPage = alice.visit("POST", action, f)
		action, f = formOf(t, idpPage)
	}
	resp, body := alice.postFrom(idp.url, "cross-site", action, f)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the SSO step-up of a user whose only session is this browser's: %d, want 303 (signed in again)\n%.600s",
			resp.StatusCode, body[max(0, strings.Index(body, "<main")):])
	}
}
