package main

import (
	"net/http"
	"strings"
	"testing"
)

// The console's own SSO links (the re-authentication page's "Sign in
// again with SSO", with force=1 and a next) start SSO at once, even when
// the browser's session was ended meanwhile with a reason (signed in
// elsewhere): signedOutNotice sends the browser back to the address it
// asked for with the notice, a same-origin redirect, and that address is
// the SSO start, which must then start (with its force and next), not be
// dropped for the home page and the sign-in form.
func TestSSOStartOwnLinkAfterSignedOutNoticeStillStarts(t *testing.T) {
	c, idp, password := newSSOClient(t, nil)
	other := newClientOf(t, c.srv, c.con)
	if resp := c.signIn(ownerEmail, password); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	if resp := other.signIn(ownerEmail, password); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("second sign-in: %d", resp.StatusCode)
	}
	loc := "/saml/demo/login?force=1&next=%2Faccount"
	for range 3 {
		resp, _ := c.do("GET", loc, nil, "same-origin")
		if resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("GET %s from the console's page: %d, want the SSO start", loc, resp.StatusCode)
		}
		loc = resp.Header.Get("Location")
		if strings.HasPrefix(loc, idp.url) {
			return
		}
		if !strings.HasPrefix(loc, "/saml/") {
			t.Fatalf("the console's own SSO link (force=1, next=/account) was sent to %q after the signed-out notice: SSO did not start", loc)
		}
	}
	t.Fatalf("too many redirects, at %s", loc)
}
