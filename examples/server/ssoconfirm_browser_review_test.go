package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// A sign-in with SSO reached from another site (an IdP portal's link)
// asks first; the confirmation's button must then take a real browser on
// to the IdP. The button posts to the console, which answers with a
// redirect to the IdP's site: the page's CSP form-action 'self' applies
// to that redirect too (as logout's doc says), so Chromium must not be
// left on the confirmation page.
func TestBrowserSSOConfirmationReachesIdP(t *testing.T) {
	b := newChrome(t)
	idp := newTestIdP(t)
	clock := &testClock{}
	_, base := serveConsoleIdP(t, clock, idp.url+"/metadata")
	resp, err := http.Get(base + "/saml/demo/metadata")
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("SP metadata: %v %v", resp, err)
	}
	var md strings.Builder
	buf := make([]byte, 4096)
	for {
		n, err := resp.Body.Read(buf)
		md.Write(buf[:n])
		if err != nil {
			break
		}
	}
	resp.Body.Close()
	idp.put("/services/demo", md.String())

	// Another site (an IdP portal) links to the console's start route.
	portal := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><html><body><a id="go" href="%s/saml/demo/login">Console</a></body></html>`, base)
	}))
	t.Cleanup(portal.Close)

	alice := b.user(base)
	alice.step("open the portal", chromedp.Navigate(portal.URL), chromedp.WaitReady(chromedp.CSS("body")))
	alice.submit("#go")
	if alice.count("#sso-continue") != 1 {
		t.Fatalf("the portal's link did not ask first: at %s", alice.location())
	}
	alice.step("click continue", chromedp.Click(chromedp.CSS("#sso-continue"), chromedp.NodeVisible))
	for range 50 {
		if strings.HasPrefix(alice.location(), idp.url+"/sso?") {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	body := alice.text("body")
	t.Fatalf("the confirmation's button left the browser at %s, want the IdP (%s/sso?...); page: %q", alice.location(), idp.url, body)
}
