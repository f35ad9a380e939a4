package main

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// startLinkRE is the confirmation page's link that starts a sign-in with
// SSO.
var startLinkRE = regexp.MustCompile(`<a class="button primary" href="([^"]+)" id="sso-continue">`)

// A sign-in with SSO starts only when the browser says the navigation is
// from the console's own pages (Sec-Fetch-Site same-origin). From another
// site, a sibling of the same site, a typed address, a bookmark or a link
// opened from a mail application (none), or a browser that does not say,
// the GET starts nothing: it asks first, on a page whose link starts it
// from the console, and says that the current session will end. An IdP
// portal's link works with one more click.
func TestSSOStartFromElsewhereAsksFirst(t *testing.T) {
	c, idp, password := newSSOClient(t, nil)
	if resp := c.signIn(ownerEmail, password); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("owner's sign-in: %d", resp.StatusCode)
	}
	path := "/saml/demo/login?next=%2Faccount"
	for _, site := range []string{"cross-site", "same-site", "none", ""} {
		resp, page := c.do("GET", path, nil, site)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" || cookieNamed(resp, bindingCookie) != nil {
			t.Errorf("GET %s, Sec-Fetch-Site %q: %d to %q, binding cookie %v; want the confirmation page, nothing started",
				path, site, resp.StatusCode, resp.Header.Get("Location"), cookieNamed(resp, bindingCookie))
			continue
		}
		m := startLinkRE.FindStringSubmatch(page)
		if m == nil || html.UnescapeString(m[1]) != "/saml/demo/login?next=%2Faccount" || !strings.Contains(page, "Sign in to <b>demo</b> with single sign-on?") ||
			!strings.Contains(page, "ends your current session") {
			t.Errorf("GET %s, Sec-Fetch-Site %q: the confirmation page\n%s", path, site, page)
		}
	}
	if resp, _ := c.do("HEAD", path, nil, "cross-site"); resp.Header.Get("Location") != "" || cookieNamed(resp, bindingCookie) != nil {
		t.Errorf("HEAD %s from another site: %d to %q; want nothing started", path, resp.StatusCode, resp.Header.Get("Location"))
	}
	if code, who := c.whoami(); code != http.StatusOK || who.Email != ownerEmail {
		t.Fatalf("whoami after the confirmation pages: %d %+v", code, who)
	}

	// The console's own link: started at once.
	resp, _ := c.do("GET", path, nil, "same-origin")
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, idp.url+"/sso?") ||
		cookieNamed(resp, bindingCookie) == nil {
		t.Errorf("GET %s from the console: %d to %q; want the sign-in started", path, resp.StatusCode, loc)
	}
	// No POST starts it.
	if resp, _ := c.post("/saml/demo/login", url.Values{"next": {"/account"}}); resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /saml/demo/login: %d, want 405", resp.StatusCode)
	}

	// The confirmation's link, followed from the page: the sign-in starts,
	// and comes back to the page asked for.
	idp.addUser("alice", "alice@example.com", "correct horse battery", "staff")
	alice := newClientOf(t, c.srv, c.con)
	_, page := alice.do("GET", path, nil, "cross-site")
	m := startLinkRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no confirmation link:\n%s", page)
	}
	if strings.Contains(page, "ends your current session") {
		t.Error("the confirmation page of a browser without a session speaks of ending one")
	}
	resp, _ = alice.do("GET", html.UnescapeString(m[1]), nil, "same-origin")
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, idp.url+"/sso?") || cookieNamed(resp, bindingCookie) == nil {
		t.Fatalf("the confirmation's link: %d to %q; want the sign-in started", resp.StatusCode, loc)
	}
	_, idpPage := alice.visit("GET", loc, nil)
	action, f := formOf(t, idpPage)
	f.Set("user", "alice")
	f.Set("password", "correct horse battery")
	_, idpPage = alice.visit("POST", action, f)
	acs, answer := formOf(t, idpPage)
	resp, _ = alice.postFrom(idp.url, "cross-site", acs, answer)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/account" {
		t.Errorf("ACS after the confirmed start: %d to %q, want /account", resp.StatusCode, resp.Header.Get("Location"))
	}
	if code, who := alice.whoami(); code != http.StatusOK || who.Email != "alice@example.com" {
		t.Errorf("whoami after the confirmed start: %d %+v", code, who)
	}
}
