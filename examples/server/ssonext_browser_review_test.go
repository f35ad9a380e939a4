package main

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// Another site must not start a sign-in with SSO in the victim's browser
// (login CSRF: an IdP it controls answers at once and the browser is
// signed in to the attacker's account). A link to the console's own
// sign-in page with next naming the SSO start does it all the same: the
// user signs in with their password on the console's page, its POST
// redirects to next, and that redirect is a same-origin navigation, which
// samlLogin takes for the console's own. The sign-in there must not go
// on to the IdP: a next naming the SSO start is no next (localPath).
func TestBrowserSSOStartViaSignInNextAsksFirst(t *testing.T) {
	b := newChrome(t)
	idp := newTestIdP(t)
	clock := &testClock{}
	// The attacker's IdP takes AuthnRequests by HTTP-POST only (its
	// metadata says so): the start is then a page of the console's own.
	postOnly := regexp.MustCompile(`<SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"[^>]*>(</SingleSignOnService>)?`).ReplaceAllString(idp.metadata(), "")
	mdSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/samlmetadata+xml")
		io.WriteString(w, postOnly)
	}))
	t.Cleanup(mdSrv.Close)
	c, base := serveConsoleIdP(t, clock, mdSrv.URL+"/metadata")
	resp, err := http.Get(base + "/saml/demo/metadata")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("SP metadata: %v %v", resp, err)
	}
	md, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	idp.put("/services/demo", string(md))

	// The attacker's page links to the console's sign-in page, with next
	// the SSO start of a tenant whose IdP the attacker controls (here the
	// demo tenant's, which stands in for it).
	portal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html><body><a id="go" href="%s/login?next=%s">Sign in</a></body></html>`,
			base, url.QueryEscape("/saml/demo/login"))
	}))
	t.Cleanup(portal.Close)

	owner := b.user(base)
	owner.step("open the attacker's page", chromedp.Navigate(portal.URL), chromedp.WaitReady(chromedp.CSS("body")))
	owner.submit("#go")
	owner.fill("input[name=email]", ownerEmail, "input[name=password]", c.password)
	owner.submit("#sign-in")
	for range 30 {
		if strings.HasPrefix(owner.location(), idp.url) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if loc := owner.location(); strings.HasPrefix(loc, idp.url) {
		t.Fatalf("the password sign-in went on to the IdP at once (%s): another site started a sign-in with SSO without the confirmation", loc)
	}
	if loc := owner.location(); loc != base+"/" {
		t.Fatalf("after the sign-in at %s, want the console's home page (a next naming the SSO start is dropped)", loc)
	}
}
