package main

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// client is a browser-like client of the example server: it keeps
// cookies (the test server is https, so __Host- cookies work) and sends
// Sec-Fetch-Site like a browser submitting the site's own forms.
type client struct {
	t   *testing.T
	srv *httptest.Server
	c   *http.Client
}

func newClient(t *testing.T) (*client, string) {
	app, password, err := newApp(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewTLSServer(app.routes())
	t.Cleanup(srv.Close)
	jar, _ := cookiejar.New(nil)
	c := srv.Client()
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &client{t: t, srv: srv, c: c}, password
}

func (c *client) do(method, path string, form url.Values, site string) *http.Response {
	c.t.Helper()
	var body *strings.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	} else {
		body = strings.NewReader("")
	}
	req, _ := http.NewRequest(method, c.srv.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if site != "" {
		req.Header.Set("Sec-Fetch-Site", site)
	}
	resp, err := c.c.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	resp.Body.Close()
	return resp
}

func (c *client) whoami() (int, whoami) {
	c.t.Helper()
	resp, err := c.c.Get(c.srv.URL + "/api/whoami")
	if err != nil {
		c.t.Fatal(err)
	}
	defer resp.Body.Close()
	var w whoami
	if resp.StatusCode == 200 {
		json.NewDecoder(resp.Body).Decode(&w)
	}
	return resp.StatusCode, w
}

func TestSignInWhoamiSignOut(t *testing.T) {
	c, password := newClient(t)
	if code, _ := c.whoami(); code != http.StatusUnauthorized {
		t.Fatalf("whoami before sign-in: %d", code)
	}
	wrong := c.do("POST", "/login", url.Values{"tenant": {demoTenant}, "email": {ownerEmail}, "password": {"nope nope nope"}}, "same-origin")
	if wrong.StatusCode != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", wrong.StatusCode)
	}
	resp := c.do("POST", "/login", url.Values{"tenant": {demoTenant}, "email": {ownerEmail}, "password": {password}}, "same-origin")
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	code, w := c.whoami()
	if code != 200 || w.Email != ownerEmail || w.Tenant != demoTenant {
		t.Fatalf("whoami: %d %+v", code, w)
	}
	if out := c.do("POST", "/logout", url.Values{}, "same-origin"); out.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", out.StatusCode)
	}
	if code, _ := c.whoami(); code != http.StatusUnauthorized {
		t.Fatalf("whoami after sign-out: %d", code)
	}
}

func TestNoDefaultCredentials(t *testing.T) {
	c, _ := newClient(t)
	for _, pw := range []string{"admin", "password", "owner"} {
		resp := c.do("POST", "/login", url.Values{"tenant": {demoTenant}, "email": {ownerEmail}, "password": {pw}}, "same-origin")
		if resp.StatusCode != http.StatusUnauthorized {
			t.Fatalf("password %q: %d", pw, resp.StatusCode)
		}
	}
}

func TestCrossSiteLoginRefused(t *testing.T) {
	c, password := newClient(t)
	resp := c.do("POST", "/login", url.Values{"tenant": {demoTenant}, "email": {ownerEmail}, "password": {password}}, "cross-site")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site sign-in: %d, want 403", resp.StatusCode)
	}
	if code, _ := c.whoami(); code != http.StatusUnauthorized {
		t.Fatal("a cross-site sign-in created a session")
	}
}

func TestSecurityHeaders(t *testing.T) {
	c, _ := newClient(t)
	resp := c.do("GET", "/login", nil, "")
	for h, want := range map[string]string{
		"X-Content-Type-Options": "nosniff",
		"Referrer-Policy":        "no-referrer",
		"Cache-Control":          "no-store",
		"Content-Type":           "text/html; charset=utf-8",
	} {
		if got := resp.Header.Get(h); got != want {
			t.Errorf("%s = %q, want %q", h, got, want)
		}
	}
	if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || strings.Contains(csp, "script-src") {
		t.Errorf("CSP %q", csp)
	}
}
