package main

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// startFormRE is the confirmation page's form that starts a sign-in with
// SSO.
var startFormRE = regexp.MustCompile(`(?s)<form method="post" action="([^"]+)" id="sso-start">(.*?)</form>`)

// A sign-in with SSO starts from a GET only when the browser says the
// navigation is the user's own (typed, a bookmark: Sec-Fetch-Site none)
// or the console's (same-origin). From another site, a sibling of the
// same site, or a browser that does not say, the GET starts nothing: it
// asks first, on a page whose button posts the start (under the
// cross-origin protection), and says that the current session will end.
// An IdP portal's link works with one more click.
func TestSSOStartFromElsewhereAsksFirst(t *testing.T) {
	c, idp, password := newSSOClient(t, nil)
	if resp := c.signIn(ownerEmail, password); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("owner's sign-in: %d", resp.StatusCode)
	}
	path := "/saml/demo/login?next=%2Faccount"
	for _, site := range []string{"cross-site", "same-site", ""} {
		resp, page := c.do("GET", path, nil, site)
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Location") != "" || cookieNamed(resp, bindingCookie) != nil {
			t.Errorf("GET %s, Sec-Fetch-Site %q: %d to %q, binding cookie %v; want the confirmation page, nothing started",
				path, site, resp.StatusCode, resp.Header.Get("Location"), cookieNamed(resp, bindingCookie))
			continue
		}
		m := startFormRE.FindStringSubmatch(page)
		if m == nil || html.UnescapeString(m[1]) != "/saml/demo/login" || !strings.Contains(page, "Sign in to <b>demo</b> with single sign-on?") ||
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

	// The user's own navigation, or the console's link: started at once.
	for _, site := range []string{"same-origin", "none"} {
		resp, _ := c.do("GET", path, nil, site)
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, idp.url+"/sso?") ||
			cookieNamed(resp, bindingCookie) == nil {
			t.Errorf("GET %s, Sec-Fetch-Site %q: %d to %q; want the sign-in started", path, site, resp.StatusCode, loc)
		}
	}

	// The confirmation's button: the sign-in starts, and comes back to
	// the page asked for.
	idp.addUser("alice", "alice@example.com", "correct horse battery", "staff")
	alice := newClientOf(t, c.srv, c.con)
	_, page := alice.do("GET", path, nil, "cross-site")
	m := startFormRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no confirmation form:\n%s", page)
	}
	if strings.Contains(page, "ends your current session") {
		t.Error("the confirmation page of a browser without a session speaks of ending one")
	}
	form := url.Values{}
	for _, in := range inputRE.FindAllStringSubmatch(m[2], -1) {
		form.Set(in[1], html.UnescapeString(in[2]))
	}
	resp, _ := alice.post(html.UnescapeString(m[1]), form)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, idp.url+"/sso?") || cookieNamed(resp, bindingCookie) == nil {
		t.Fatalf("the confirmation's POST: %d to %q; want the sign-in started", resp.StatusCode, loc)
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
