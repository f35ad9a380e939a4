package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/rbac"
)

// A form a person sent with a wrong password or code comes back as the
// same form, with the error and what was typed, as 400: the status of
// every other refused form of the console. Not 401: a 401 must carry a
// WWW-Authenticate challenge (RFC 9110 §15.5.2), and Guard's (Bearer,
// for API keys) does not apply to a form.
func TestFormRefusalsAre400(t *testing.T) {
	c, password := newClient(t)
	refused := func(what string, resp *http.Response, body, msg, form string) {
		t.Helper()
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("WWW-Authenticate") != "" {
			t.Errorf("%s: %d, WWW-Authenticate %q; want 400 without a challenge", what, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		if !strings.Contains(body, msg) || !strings.Contains(body, `<form method="post" action="`+form+`"`) {
			t.Errorf("%s: the page lacks %q or its form to %s: %q", what, msg, form, pageError(body))
		}
	}

	resp, body := c.post("/login", url.Values{"tenant": {demoTenant}, "email": {ownerEmail}, "password": {"not the password at all"}})
	refused("a wrong password at sign-in", resp, body, "Incorrect email or password.", "/login")

	if resp := c.signIn(ownerEmail, password); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	resp, body = c.post("/reauth", url.Values{"password": {"not the password at all"}, "next": {"/account"}})
	refused("a wrong password at the step-up", resp, body, "That was not right.", "/reauth")

	// The owner's authenticator app makes their next sign-in ask for it.
	c.setUpApp(ownerEmail, "")
	o := pendingOwner(t, c, password)
	resp, body = o.post("/login/mfa", url.Values{"method": {"totp"}, "code": {"000000"}})
	refused("a wrong code at the second step", resp, body, "That code was not accepted.", "/login/mfa")

	// A user the organisation's "require MFA" sends to set up an app at
	// sign-in, who types a wrong code.
	const samEmail, samPW = "sam@demo.example", "plum tree on the hill 42"
	if _, err := c.con.g.CreateUser(t.Context(), guard.System("test"), guard.NewUser{Tenant: demoTenant, Email: samEmail, Password: samPW}); err != nil {
		t.Fatal(err)
	}
	setPolicy(t, c.con, func(p *guard.Policy) { p.RequireMFA = true })
	sam := newClientOf(t, c.srv, c.con)
	if resp := sam.signIn(samEmail, samPW); resp.Header.Get("Location") != "/login/enrol" {
		t.Fatalf("Sam's sign-in went to %q, want /login/enrol", resp.Header.Get("Location"))
	}
	_, page := sam.post("/login/enrol/begin", url.Values{})
	resp, body = sam.post("/login/enrol/confirm", url.Values{"factor": {field(t, page, "factor")}, "code": {"000000"}})
	refused("a wrong code setting up an app at sign-in", resp, body, "That code was not accepted: start again", "/login/enrol/begin")

	// A second step sent after the sign-in expired: the sign-in form again.
	c.clock.Advance(time.Hour)
	resp, body = o.post("/login/mfa", url.Values{"method": {"totp"}, "code": {"000000"}})
	refused("a second step after the sign-in expired", resp, body, "Your sign-in expired", "/login")
}

// /api/whoami says which signed-in user (and session) is asking: an API
// key, authenticated but no user, is refused with 403, not 401 (its
// credential is good, so a challenge asks for nothing it could send).
func TestWhoamiRefusesAPIKey(t *testing.T) {
	c, _ := newClient(t)
	key, _, err := c.con.g.CreateAPIKey(t.Context(), guard.System("test"),
		guard.NewAPIKey{Tenant: demoTenant, Name: "ci", Roles: []string{rbac.ReportsOnly}})
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest("GET", c.srv.URL+"/api/whoami", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := c.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden || resp.Header.Get("WWW-Authenticate") != "" {
		t.Errorf("whoami by a key: %d, WWW-Authenticate %q; want 403 without a challenge", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
}

// A page request whose session Guard ended with a reason is sent on by a
// redirect, with the reason in a flash: the redirect does not carry
// Guard's Guard-Reason header, which is for API clients (they still get
// it with their 401, see TestSignedInElsewhere). Nor does the redirect
// of a form that needs no session, sent with the ended session's cookie
// (a sign-in from a page opened before).
func TestRedirectsCarryNoGuardReason(t *testing.T) {
	a, password := newClient(t)
	b := newClientOf(t, a.srv, a.con)
	for _, c := range []*client{a, b} {
		if resp := c.signIn(ownerEmail, password); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-in: %d", resp.StatusCode)
		}
	}
	// A's session was ended by B's sign-in; each request below still
	// sends A's cookie, which Guard ends with the reason every time.
	keep := a.c.Jar.Cookies(mustURL(t, a.srv.URL))
	for _, tc := range []struct {
		method, path string
		form         url.Values
	}{
		// guarded's 401, made a redirect to sign in
		{"POST", "/account/password", url.Values{"current": {password}, "new": {"x"}, "confirm": {"x"}}},
		// signedOutNotice's redirect to the page itself
		{"GET", "/account", nil},
		// the sign-in's redirect to the page after it (which ends B's session)
		{"POST", "/login", url.Values{"tenant": {demoTenant}, "email": {ownerEmail}, "password": {password}}},
	} {
		a.c.Jar.SetCookies(mustURL(t, a.srv.URL), keep)
		resp, _ := a.do(tc.method, tc.path, tc.form, "same-origin")
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Guard-Reason") != "" {
			t.Errorf("%s %s with the ended session: %d, Guard-Reason %q; want a redirect without it",
				tc.method, tc.path, resp.StatusCode, resp.Header.Get("Guard-Reason"))
		}
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
