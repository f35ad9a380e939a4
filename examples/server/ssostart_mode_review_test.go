package main

import (
	"net/http"
	"strings"
	"testing"
)

// samlLogin says it starts only on a navigation from the console's own
// pages. A same-origin request that is not a navigation (an <img src>, a
// <link rel=prefetch>, a CSS url() on a console page that ever shows
// another's content; Sec-Fetch-Mode no-cors, Sec-Fetch-Dest image) or a
// HEAD must not start a sign-in: no tracked request, no new binding
// cookie (which would also replace the one of a sign-in in progress in
// this browser), no redirect to the IdP.
func TestSSOStartNeedsANavigation(t *testing.T) {
	c, idp, _ := newSSOClient(t, nil)
	for _, tc := range []struct{ method, mode, dest string }{
		{"GET", "no-cors", "image"},
		{"GET", "cors", "empty"},
		{"HEAD", "navigate", "document"},
	} {
		req, _ := http.NewRequest(tc.method, c.srv.URL+"/saml/demo/login?next=%2Faccount", nil)
		req.Header.Set("Sec-Fetch-Site", "same-origin")
		req.Header.Set("Sec-Fetch-Mode", tc.mode)
		req.Header.Set("Sec-Fetch-Dest", tc.dest)
		resp, err := c.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); strings.HasPrefix(loc, idp.url) || cookieNamed(resp, bindingCookie) != nil {
			t.Errorf("%s of the SSO start, same-origin, Sec-Fetch-Mode %s, Dest %s: %d to %q, binding cookie set: a sign-in started without a navigation",
				tc.method, tc.mode, tc.dest, resp.StatusCode, loc)
		}
	}
}
