package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/rbac"
)

// An SSO sign-in ends the session the browser had when the login
// started (perhaps someone else's: SECURITY-CHECKLIST SE-1), though the
// IdP's answer reaches the ACS as a cross-site POST, with the
// SameSite=None binding cookie but without the SameSite=Lax session
// cookie: the earlier session stops working on the server, not only in
// this browser (TestSignInEndsPreviousSession's cookie jar ignores
// SameSite and sends both).
func TestSSOSignInEndsSessionWithoutLaxCookie(t *testing.T) {
	const samEmail, samPW = "sam@demo.example", "plum tree on the hill 42"
	c, idp, _ := newSSOClient(t, nil)
	if _, err := c.con.g.CreateUser(t.Context(), guard.System("test"), guard.NewUser{Tenant: demoTenant, Email: samEmail,
		Name: "Sam Staff", Password: samPW, Roles: []string{rbac.Member}}); err != nil {
		t.Fatal(err)
	}
	br := newClientOf(t, c.srv, c.con)
	if resp := br.signIn(samEmail, samPW); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("Sam's sign-in: %d", resp.StatusCode)
	}
	samToken := br.cookie(sessionCookie)
	if samToken == "" {
		t.Fatal("no session cookie after Sam's sign-in")
	}

	idp.addUser("bob", "bob@example.com", "correct horse battery", "staff")
	acs, answer := br.ssoAnswer(idp, "bob", "correct horse battery", "")
	// The IdP's page posts the answer cross-site, as a browser does: with
	// the SameSite=None binding cookie, without the SameSite=Lax session
	// cookie.
	req, _ := http.NewRequest("POST", acs, strings.NewReader(answer.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", idp.url)
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	req.AddCookie(&http.Cookie{Name: bindingCookie, Value: br.cookie(bindingCookie)})
	hc := &http.Client{Transport: br.c.Transport, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("ACS: %d, want 303", resp.StatusCode)
	}
	if k := cookieNamed(resp, sessionCookie); k == nil || k.Value == "" {
		t.Fatal("the ACS set no session cookie")
	}

	// Sam's session, which the browser held when Bob signed in, must be
	// over.
	other := newClientOf(t, c.srv, c.con)
	u, _ := url.Parse(c.srv.URL)
	other.c.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: samToken, Path: "/", Secure: true, HttpOnly: true}})
	if code, w := other.whoami(); code != http.StatusUnauthorized {
		t.Errorf("the session the SSO sign-in replaced in this browser still works: whoami %d as %s, want 401", code, w.Email)
	}
}
