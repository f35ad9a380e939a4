package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"

	guard "github.com/guardhq/guard"
)

// Black-box tests of SECURITY-CHECKLIST items no test covered fully:
// LG-1, PW-14, RB-7, RS-11, SE-13, WEB-4, WEB-6, WEB-7, WEB-9, WEB-10, WEB-11, WEB-13.

// traffic is what a client received: every response's headers and body.
type traffic struct {
	mu     sync.Mutex
	header []http.Header
	bodies []string
}

// watch makes c record every response into the returned traffic.
func watch(c *client) *traffic {
	tr := &traffic{}
	inner := c.c.Transport
	c.c.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := inner.RoundTrip(r)
		if err != nil {
			return resp, err
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(b))
		tr.mu.Lock()
		tr.header = append(tr.header, resp.Header.Clone())
		tr.bodies = append(tr.bodies, string(b))
		tr.mu.Unlock()
		return resp, nil
	})
	return tr
}

// holding returns what of the traffic holds s: header lines and bodies.
func (tr *traffic) holding(s string) []string {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	var out []string
	for i, h := range tr.header {
		for k, vs := range h {
			if k == "Set-Cookie" {
				continue // where the session cookie belongs
			}
			for _, v := range vs {
				if strings.Contains(v, s) {
					out = append(out, k+": "+v)
				}
			}
		}
		if strings.Contains(tr.bodies[i], s) {
			out = append(out, "a response body")
		}
	}
	return out
}

// messageRE matches a message the console prints instead of sending it
// (its stand-in for email and SMS, consoleSender).
var messageRE = regexp.MustCompile(`(?s)\n----- message to .*?----- end of message -----\n`)

// logOnly returns the console's output without the messages it printed
// in place of sending them: what is left is its log.
func logOnly(out string) string { return messageRE.ReplaceAllString(out, "") }

// cookie returns the value of the client's cookie name, or "".
func (c *client) cookie(name string) string {
	u, _ := url.Parse(c.srv.URL)
	for _, k := range c.c.Jar.Cookies(u) {
		if k.Name == name {
			return k.Value
		}
	}
	return ""
}

// LG-1: an unknown email, a wrong password and a deactivated account with
// its right password get the same answer: status, body and cookies.
func TestSignInFailuresLookAlike(t *testing.T) {
	c, password := newClient(t)
	const pw = "a passphrase of her own"
	ctx, sys := context.Background(), guard.System("test")
	u, err := c.con.app.g.CreateUser(ctx, sys, guard.NewUser{Tenant: demoTenant, Email: "dee@demo.example", Name: "Dee", Password: pw})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.con.app.g.DeactivateUser(ctx, sys, demoTenant, u.ID); err != nil {
		t.Fatal(err)
	}
	type answer struct {
		code    int
		body    string
		cookies string
	}
	try := func(email, pw string) answer {
		other := newClientOf(t, c.srv, c.con)
		tr := watch(other)
		resp := other.signIn(email, pw)
		tr.mu.Lock()
		defer tr.mu.Unlock()
		var names []string
		for _, k := range resp.Cookies() {
			names = append(names, k.Name)
		}
		return answer{resp.StatusCode, tr.bodies[len(tr.bodies)-1], strings.Join(names, ",")}
	}
	want := try(ownerEmail, "not the password at all")
	if want.code != http.StatusBadRequest {
		t.Fatalf("wrong password: %d", want.code)
	}
	for name, got := range map[string]answer{
		"unknown email":               try("nobody@demo.example", password),
		"deactivated, right password": try("dee@demo.example", pw),
	} {
		// The form echoes the email typed; compare the rest.
		got.body = strings.ReplaceAll(got.body, "nobody@demo.example", ownerEmail)
		got.body = strings.ReplaceAll(got.body, "dee@demo.example", ownerEmail)
		if got != want {
			t.Errorf("%s: %d, cookies %q, body differs %v; want the wrong password's %d, cookies %q", name, got.code, got.cookies, got.body != want.body, want.code, want.cookies)
		}
	}
}

// PW-14: the password fields of the sign-in, change and re-authentication
// forms are type=password with the right autocomplete, and the pages run
// no script that could block pasting.
func TestPasswordFields(t *testing.T) {
	c, password := newClient(t)
	input := regexp.MustCompile(`<input[^>]*>`)
	check := func(page string, want map[string]string) {
		t.Helper()
		resp, body := c.get(page)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %d", page, resp.StatusCode)
		}
		found := 0
		for _, in := range input.FindAllString(body, -1) {
			for name, ac := range want {
				if !strings.Contains(in, `name="`+name+`"`) {
					continue
				}
				found++
				if !strings.Contains(in, `type="password"`) || !strings.Contains(in, `autocomplete="`+ac+`"`) {
					t.Errorf("%s: field %s is %s, want type=password autocomplete=%s", page, name, in, ac)
				}
			}
		}
		if found != len(want) {
			t.Errorf("%s: %d of the password fields %v found", page, found, want)
		}
		if regexp.MustCompile(`(?i)onpaste|oncopy|<script`).MatchString(body) {
			t.Errorf("%s: the page has a script or a paste handler", page)
		}
		if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'none'") {
			t.Errorf("%s: CSP %q allows scripts", page, csp)
		}
	}
	check("/login", map[string]string{"password": "current-password"})
	c.signIn(ownerEmail, password)
	check("/account", map[string]string{"current": "current-password", "new": "new-password", "confirm": "new-password"})
}

// RS-11: the reset link's landing page and the reset page send
// Referrer-Policy: no-referrer, and the token is neither in the audit log
// nor in the console's log, once the reset is done.
func TestResetTokenNotLogged(t *testing.T) {
	con, c, out := newLoggedConsole(t)
	tr := watch(c)
	resp, _ := c.post("/forgot", url.Values{"tenant": {demoTenant}, "email": {ownerEmail}, "captcha": {standinToken}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("forgot: %d", resp.StatusCode)
	}
	link, _ := url.Parse(waitLink(t, con, ownerEmail))
	token := link.Query().Get("token")
	if len(token) < 22 {
		t.Fatalf("link %s: no token", link)
	}
	for _, step := range []func() *http.Response{
		func() *http.Response { r, _ := c.get(link.RequestURI()); return r },
		func() *http.Response { r, _ := c.get("/reset"); return r },
	} {
		if r := step(); r.Header.Get("Referrer-Policy") != "no-referrer" {
			t.Errorf("%s: %d, Referrer-Policy %q", r.Request.URL.Path, r.StatusCode, r.Header.Get("Referrer-Policy"))
		}
	}
	resp, _ = c.post("/reset", url.Values{"password": {"a brand new passphrase"}, "confirm": {"a brand new passphrase"}, "captcha": {standinToken}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("reset: %d", resp.StatusCode)
	}
	if resp := c.signInAdmin(ownerEmail, "a brand new passphrase"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	resp, export := c.get("/audit/export?format=jsonl")
	if resp.StatusCode != http.StatusOK || !strings.Contains(export, "password.reset") {
		t.Fatalf("audit export: %d, without the reset events", resp.StatusCode)
	}
	if strings.Contains(export, token) {
		t.Error("the audit log holds the reset token")
	}
	if strings.Contains(logOnly(out.String()), token) {
		t.Error("the console's log holds the reset token")
	}
	if where := tr.holding(token); len(where) > 1 || len(where) == 1 && !strings.HasPrefix(where[0], "Location") && where[0] != "a response body" {
		t.Errorf("the token came back in %v", where)
	}
}

// SE-13: the session cookie's value never comes back in a Location
// header, a page, the audit log or the console's log.
func TestSessionTokenNotEchoed(t *testing.T) {
	con, c, out := newLoggedConsole(t)
	tr := watch(c)
	c.signInAdmin(ownerEmail, con.password)
	tok := c.cookie(sessionCookie)
	if tok == "" {
		t.Fatal("no session cookie after sign-in")
	}
	for _, p := range []string{"/", "/account", "/users", "/security", "/keys", "/audit", "/api/whoami", "/login?next=/account", "/nosuch"} {
		c.get(p)
	}
	c.post("/account/password", url.Values{"current": {"wrong"}, "new": {"x"}, "confirm": {"y"}})
	_, export := c.get("/audit/export?format=jsonl")
	if where := tr.holding(tok); len(where) != 0 {
		t.Errorf("the session token came back in %v", where)
	}
	if strings.Contains(export, tok) || strings.Contains(logOnly(out.String()), tok) {
		t.Error("the session token is in the audit log or the console's log")
	}
}

// WEB-4, WEB-6, WEB-7: a sign-in POST with a foreign Origin (and no
// Sec-Fetch-Site) is refused before any authentication, so is one to a
// path that only resembles the ACS; HEAD on a state-changing route, or a
// GET with a method-override header (RB-7), is 405.
func TestForeignOriginAndHeadRefused(t *testing.T) {
	c, password := newClient(t)
	foreign := func(path string, form url.Values) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", c.srv.URL+path, strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Origin", "https://evil.test")
		resp, err := c.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return resp, string(b)
	}
	form := url.Values{"tenant": {demoTenant}, "email": {ownerEmail}, "password": {password}}
	if resp, _ := foreign("/login", form); resp.StatusCode != http.StatusForbidden {
		t.Errorf("sign-in POST with Origin https://evil.test: %d, want 403", resp.StatusCode)
	}
	// WEB-7: the ACS's exemption covers the ACS only.
	for _, path := range []string{"/saml/" + demoTenant + "/acsx", "/saml/" + demoTenant + "/acs/../../../login", "/saml/" + demoTenant + "/acs/x"} {
		if resp, body := foreign(path, form); resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Request refused") {
			t.Errorf("POST %s with Origin https://evil.test: %d, want the cross-origin refusal", path, resp.StatusCode)
		}
	}
	if code, _ := c.whoami(); code != http.StatusUnauthorized {
		t.Error("the foreign-origin sign-in created a session")
	}
	if resp := c.signIn(ownerEmail, password); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("same-origin sign-in: %d", resp.StatusCode)
	}
	for _, path := range []string{"/login", "/logout", "/account/password", "/keys/revoke", "/users/x/deactivate", "/forgot", "/reset"} {
		if resp, _ := c.do("HEAD", path, nil, ""); resp.StatusCode != http.StatusMethodNotAllowed && path != "/login" && path != "/forgot" && path != "/reset" {
			t.Errorf("HEAD %s: %d, want 405", path, resp.StatusCode)
		}
	}
	// RB-7: a method-override header changes nothing: a GET stays a GET.
	for _, m := range []string{"POST", "DELETE", "post"} {
		req, _ := http.NewRequest("GET", c.srv.URL+"/logout", nil)
		req.Header.Set("X-HTTP-Method-Override", m)
		resp, err := c.c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET /logout with X-HTTP-Method-Override %s: %d, want 405", m, resp.StatusCode)
		}
	}
	if code, _ := c.whoami(); code != http.StatusOK {
		t.Error("a HEAD request, or an overridden GET, signed the user out")
	}
}

// WEB-9, WEB-10, WEB-11: the return address after sign-in, and after
// sign-out, stays on the site: a CRLF in it injects no header, a doubled
// parameter gives the first one, checked, and sign-out ignores any.
func TestReturnAddressStaysOnSite(t *testing.T) {
	c, password := newClient(t)
	for _, tc := range []struct {
		name string
		next []string
		want string // "" for any same-site path
	}{
		{"CRLF Set-Cookie", []string{"/\r\nSet-Cookie: x=y"}, ""},
		{"encoded CRLF Location", []string{"/%0d%0aLocation:%20https://evil.test"}, ""},
		{"first of two", []string{"/ok", "https://evil.test"}, "/ok"},
		{"off-site first", []string{"https://evil.test", "/ok"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			other := newClientOf(t, c.srv, c.con)
			resp, _ := other.post("/login", url.Values{"tenant": {demoTenant}, "email": {ownerEmail}, "password": {password}, "next": tc.next})
			checkSameSite(t, resp, tc.want)
			// Already signed in, GET /login?next=… redirects at once.
			q := url.Values{"next": tc.next}
			resp, _ = other.get("/login?" + q.Encode())
			checkSameSite(t, resp, tc.want)
			resp, _ = other.post("/logout?"+q.Encode(), url.Values{"next": tc.next})
			checkSameSite(t, resp, "/login")
		})
	}
}

// checkSameSite fails unless resp is a redirect to a path on the site
// (want, if given) and carries no injected header.
func checkSameSite(t *testing.T, resp *http.Response, want string) {
	t.Helper()
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/") || strings.HasPrefix(loc, "//") ||
		strings.HasPrefix(loc, "/\\") || strings.ContainsAny(loc, "\r\n") || want != "" && loc != want {
		t.Errorf("%s %s: %d to %q, want a redirect to %q on the site", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, loc, want)
	}
	for _, k := range resp.Cookies() {
		if k.Name == "x" {
			t.Errorf("an injected cookie x was set")
		}
	}
}

// WEB-13: signed-in pages are not cached, and after sign-out, going back
// (the page fetched again with the old cookie) leads to the sign-in page.
func TestBackAfterSignOut(t *testing.T) {
	c, password := newClient(t)
	c.signInAdmin(ownerEmail, password)
	old := c.cookie(sessionCookie)
	for _, p := range []string{"/", "/account", "/users", "/api/whoami"} {
		if resp, _ := c.get(p); resp.StatusCode != http.StatusOK || resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("GET %s: %d, Cache-Control %q; want 200, no-store", p, resp.StatusCode, resp.Header.Get("Cache-Control"))
		}
	}
	if resp, _ := c.post("/logout", url.Values{}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", resp.StatusCode)
	}
	back := newClientOf(t, c.srv, c.con)
	u, _ := url.Parse(c.srv.URL)
	back.c.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: old, Path: "/", Secure: true}})
	for _, p := range []string{"/account", "/users"} {
		resp, _ := back.get(p)
		if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/login") {
			t.Errorf("GET %s with the signed-out cookie: %d to %q, want the sign-in page", p, resp.StatusCode, loc)
		}
	}
	if code, _ := back.whoami(); code != http.StatusUnauthorized {
		t.Errorf("whoami with the signed-out cookie: %d, want 401", code)
	}
}
