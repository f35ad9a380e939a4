package main

import (
	"context"
	"errors"
	"html"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// authenticatorApp is a user's authenticator app in the tests: its secret
// and the last TOTP time step it gave. The console takes each step once,
// and one step either side of its clock.
type authenticatorApp struct {
	secret string
	last   int64
}

type appKey struct {
	con   *console
	email string
}

var (
	appsMu sync.Mutex
	apps   = map[appKey]*authenticatorApp{}
)

// app returns the authenticator app that signInAdmin set up for email on
// this client's console, or nil.
func (c *client) app(email string) *authenticatorApp {
	appsMu.Lock()
	defer appsMu.Unlock()
	return apps[appKey{c.con, email}]
}

func (c *client) keepApp(email string, a *authenticatorApp) {
	appsMu.Lock()
	apps[appKey{c.con, email}] = a
	appsMu.Unlock()
	c.t.Cleanup(func() {
		appsMu.Lock()
		delete(apps, appKey{c.con, email})
		appsMu.Unlock()
	})
}

// totp returns a code of the app at a time step it has not given yet: the
// console's current one, or the next (within the console's window); when
// even that was given, it moves the console's clock on (or waits, when
// the client does not know the clock) to the step after.
func (c *client) totp(a *authenticatorApp) string {
	c.t.Helper()
	now := c.con.app.now()
	cur := now.Unix() / 30
	step := max(a.last+1, cur)
	if step > cur+1 {
		wait := time.Unix((step-1)*30, 0).Sub(now) + time.Millisecond
		if c.clock != nil {
			c.clock.Advance(wait)
		} else {
			time.Sleep(wait)
		}
	}
	code, err := totp.GenerateCode(a.secret, time.Unix(step*30, 0))
	if err != nil {
		c.t.Fatal(err)
	}
	a.last = step
	return code
}

var totpSecretRE = regexp.MustCompile(`id="totp-secret"[^>]*>([A-Z2-7]+)<`)

// setUpApp sets up an authenticator app for the signed-in user in My
// account, as a person does (the code from the QR code's key), and
// returns it. next is the Administration page waiting for it ("" none).
func (c *client) setUpApp(email, next string) (*authenticatorApp, *http.Response, string) {
	c.t.Helper()
	form := url.Values{}
	if next != "" {
		form.Set("next", next)
	}
	resp, page := c.post("/account/mfa/totp", form)
	m := totpSecretRE.FindStringSubmatch(page)
	factor := regexp.MustCompile(`name="factor" value="([^"]+)"`).FindStringSubmatch(page)
	if resp.StatusCode != 200 || m == nil || factor == nil {
		c.t.Fatalf("set up an authenticator app: %d, no key or factor in the page", resp.StatusCode)
	}
	a := &authenticatorApp{secret: m[1]}
	form = url.Values{"factor": {factor[1]}, "code": {c.totp(a)}}
	if next != "" {
		form.Set("next", next)
	}
	resp, page = c.post("/account/mfa/confirm", form)
	if resp.StatusCode != 200 && resp.StatusCode != http.StatusSeeOther {
		c.t.Fatalf("confirm the authenticator app: %d", resp.StatusCode)
	}
	c.keepApp(email, a)
	return a, resp, page
}

// stepUp confirms the signed-in user's identity with their password and
// authenticator app (/reauth), which makes the session one that passed a
// second factor, and returns the answer.
func (c *client) stepUp(password string, a *authenticatorApp, next string) *http.Response {
	c.t.Helper()
	resp, _ := c.post("/reauth", url.Values{"password": {password}, "totp": {c.totp(a)}, "next": {next}, "mfa": {"1"}})
	return resp
}

// signInAdmin signs in with a password, as signIn does, and then
// completes two-step verification, as the Administration pages need
// (SECURITY-CHECKLIST RB-11): with the authenticator app when the sign-in
// asks for it; otherwise, the first time, it sets one up in My account
// and confirms the user's identity with it (the step-up). It returns
// signIn's answer.
func (c *client) signInAdmin(email, password string) *http.Response {
	c.t.Helper()
	resp := c.signIn(email, password)
	if resp.StatusCode != http.StatusSeeOther {
		return resp
	}
	a := c.app(email)
	switch loc := resp.Header.Get("Location"); loc {
	case "/login/mfa":
		if a == nil {
			c.t.Fatalf("%s has a second factor the test does not know", email)
		}
		if r, _ := c.post("/login/mfa", url.Values{"method": {"totp"}, "code": {c.totp(a)}}); r.StatusCode != http.StatusSeeOther {
			c.t.Fatalf("second step of %s: %d", email, r.StatusCode)
		}
	case "/login/enrol":
		c.t.Fatalf("%s must enrol at sign-in: signInAdmin does not do that", email)
	default:
		if a == nil {
			a, _, _ = c.setUpApp(email, "")
		}
		if r := c.stepUp(password, a, "/"); r.StatusCode != http.StatusSeeOther || r.Header.Get("Location") != "/" {
			c.t.Fatalf("step-up of %s: %d to %q", email, r.StatusCode, r.Header.Get("Location"))
		}
	}
	return resp
}

// mfaDenials counts the access.denied events with reason mfa_required.
func mfaDenials(t *testing.T, con *console) int {
	t.Helper()
	page, err := con.g.QueryAudit(context.Background(), guard.System("test"), demoTenant, audit.Query{Action: string(audit.AccessDenied), Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range page.Events {
		if e.Reason == "mfa_required" {
			n++
		}
	}
	return n
}

// SECURITY-CHECKLIST RB-11 (and SE-16): an admin whose session was signed
// in with a password only does not get the Administration pages: GET
// /users sends them to set up an authenticator app (they have none), with
// the reason, and back; a form posted to an Administration page changes
// nothing. Enrolling is not yet passing the factor: the step-up with it
// is, and then the pages open. Pages that are not Administration stay
// open all along.
func TestAdminPagesNeedMFA(t *testing.T) {
	c, password := newClient(t)
	if resp := c.signIn(ownerEmail, password); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("sign-in: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	resp, page := c.get("/users")
	const enrol = "/account?mfa=1&next=%2Fusers#mfa"
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != enrol || strings.Contains(page, ownerEmail) {
		t.Fatalf("GET /users with a password-only session: %d to %q, want %s", resp.StatusCode, resp.Header.Get("Location"), enrol)
	}
	if got := resp.Header.Get("Guard-Step-Up"); got != "mfa" {
		t.Errorf("Guard-Step-Up %q, want mfa", got)
	}
	if n := mfaDenials(t, c.con); n != 1 {
		t.Errorf("%d access.denied events with reason mfa_required, want 1", n)
	}
	resp, page = c.get(strings.TrimSuffix(enrol, "#mfa"))
	if resp.StatusCode != 200 || !strings.Contains(page, "Administration needs two-step verification.") ||
		!strings.Contains(page, `<input type="hidden" name="next" value="/users"><button class="primary" id="add-totp">`) {
		t.Fatalf("the page to set up an authenticator app: %d\n%s", resp.StatusCode, page)
	}

	// Every Administration page, and nothing else.
	for _, p := range []string{"/users/" + whoID(t, c), "/roles", "/security", "/security/sso", "/ip", "/keys", "/audit", "/audit/export?format=csv", "/approvals", "/review"} {
		if resp, _ := c.get(p); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/account?mfa=1&next=") {
			t.Errorf("GET %s with a password-only session: %d to %q, want the set-up page", p, resp.StatusCode, resp.Header.Get("Location"))
		}
	}
	for _, p := range []string{"/", "/account", "/campaigns", "/reauth?next=%2F", "/api/whoami"} {
		if resp, _ := c.get(p); resp.StatusCode != 200 {
			t.Errorf("GET %s with a password-only session: %d, want 200", p, resp.StatusCode)
		}
	}

	// A form posted with a password-only session changes nothing, and
	// leads to the same step-up, back to the section's page.
	resp, _ = c.post("/users", url.Values{"email": {"eve@demo.example"}, "name": {"Eve"}, "role": {"owner"}, "password": {"eve's own long passphrase"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != enrol {
		t.Errorf("POST /users with a password-only session: %d to %q, want %s", resp.StatusCode, resp.Header.Get("Location"), enrol)
	}
	if _, page := c.get(strings.TrimSuffix(enrol, "#mfa")); !strings.Contains(page, "Nothing was changed: administration needs two-step verification.") {
		t.Errorf("the page after the refused POST does not say nothing was changed")
	}
	resp, _ = c.post("/keys", url.Values{"name": {"export"}, "role": {"owner"}, "days": {"30"}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/account?mfa=1&next=%2Fkeys#mfa" {
		t.Errorf("POST /keys with a password-only session: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	sys := guard.System("test")
	if _, err := c.con.g.UserByEmail(context.Background(), sys, demoTenant, "eve@demo.example"); !errors.Is(err, guard.ErrUserNotFound) {
		t.Errorf("the user posted with a password-only session: %v, want ErrUserNotFound", err)
	}
	if keys, err := c.con.g.ListAPIKeys(context.Background(), sys, demoTenant); err != nil || len(keys) != 0 {
		t.Errorf("API keys after a POST with a password-only session: %v, %v; want none", keys, err)
	}

	// Set up the app, with a real code: the next step is the step-up,
	// still needed, back to /users.
	_, resp, page = c.setUpApp(ownerEmail, "/users")
	if resp.StatusCode != 200 || !strings.Contains(page, `href="/reauth?mfa=1&amp;next=%2Fusers" id="continue"`) {
		t.Fatalf("after setting up the app: %d, the recovery codes page does not go on to the step-up\n%s", resp.StatusCode, page)
	}
	a := c.app(ownerEmail)
	if resp, _ := c.get("/users"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/reauth?mfa=1&next=%2Fusers" {
		t.Fatalf("GET /users after enrolling, before the step-up: %d to %q, want the step-up", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, page = c.get("/reauth?mfa=1&next=%2Fusers")
	if resp.StatusCode != 200 || !strings.Contains(page, "Administration needs two-step verification.") || !strings.Contains(page, `id="reauth-totp"`) ||
		!strings.Contains(page, `name="mfa" value="1"`) {
		t.Fatalf("the step-up page: %d\n%s", resp.StatusCode, page)
	}
	// The password alone, or a wrong code, is not enough.
	if resp, _ := c.post("/reauth", url.Values{"password": {password}, "next": {"/users"}, "mfa": {"1"}}); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("step-up without a code: %d, want 400", resp.StatusCode)
	}
	if resp, _ := c.get("/users"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("GET /users after a failed step-up: %d, want a redirect", resp.StatusCode)
	}
	resp = c.stepUp(password, a, "/users")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/users" {
		t.Fatalf("step-up: %d to %q, want /users", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, page = c.get("/users")
	if resp.StatusCode != 200 || !strings.Contains(page, ownerEmail) || !strings.Contains(page, "Administration is open for this session") {
		t.Fatalf("GET /users after the step-up: %d\n%s", resp.StatusCode, page)
	}
	resp, _ = c.post("/users", url.Values{"email": {"sam@demo.example"}, "name": {"Sam Staff"}, "role": {"member"}, "password": {"plum tree on the hill 42"}})
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(resp.Header.Get("Location"), "/users/") {
		t.Fatalf("create a user after the step-up: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}

	// A member, whose role does not allow the page, is refused as before:
	// no second factor would change that.
	sam := newClientOf(t, c.srv, c.con)
	sam.signIn("sam@demo.example", "plum tree on the hill 42")
	if resp, page := sam.get("/users"); resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "Access denied") {
		t.Errorf("a member on /users: %d, want the refusal", resp.StatusCode)
	}

	// The next sign-in asks for the app at once, and the pages open.
	c.post("/logout", url.Values{})
	if resp := c.signInAdmin(ownerEmail, password); resp.Header.Get("Location") != "/login/mfa" {
		t.Fatalf("sign-in with the app: to %q, want /login/mfa", resp.Header.Get("Location"))
	}
	if resp, _ := c.get("/security"); resp.StatusCode != 200 {
		t.Errorf("GET /security after a sign-in with the app: %d", resp.StatusCode)
	}
}

// whoID returns the signed-in user's ID.
func whoID(t *testing.T, c *client) string {
	t.Helper()
	code, w := c.whoami()
	if code != 200 {
		t.Fatalf("whoami: %d", code)
	}
	return w.UserID
}

// SECURITY-CHECKLIST RB-11 with an email code: a sign-in completed with a
// code sent by email is not two-step verification (NIST SP 800-63B
// §5.1.3.1; the checklist's note on email one-time codes). The admin, who
// has an authenticator app too, is sent to the step-up with it.
func TestAdminPagesEmailCodeNotEnough(t *testing.T) {
	c, password := newClient(t)
	c.signInAdmin(ownerEmail, password) // sets up the app
	const addr = "olivia.codes@demo.example"
	resp, body := c.post("/account/mfa/oob", url.Values{"kind": {"email"}, "destination": {addr}})
	if resp.StatusCode != 200 {
		t.Fatalf("begin an email factor: %d", resp.StatusCode)
	}
	factor := field(t, body, "factor")
	if resp, _ := c.post("/account/mfa/confirm", url.Values{"factor": {factor}, "code": {emailCode(t, c.con, addr)}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("confirm the email factor: %d", resp.StatusCode)
	}
	c.post("/logout", url.Values{})

	if resp := c.signIn(ownerEmail, password); resp.Header.Get("Location") != "/login/mfa" {
		t.Fatalf("sign-in went to %q", resp.Header.Get("Location"))
	}
	c.clock.Advance(time.Minute) // past the resend cool-down
	if resp, _ := c.post("/login/mfa/send", url.Values{"factor": {factor}}); resp.StatusCode != 200 {
		t.Fatalf("send: %d", resp.StatusCode)
	}
	resp, _ = c.post("/login/mfa", url.Values{"method": {"code"}, "code": {emailCode(t, c.con, addr)}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("sign-in with the email code: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	resp, _ = c.get("/audit")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/reauth?mfa=1&next=%2Faudit" {
		t.Fatalf("GET /audit signed in with an email code: %d to %q, want the step-up", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp := c.stepUp(password, c.app(ownerEmail), "/audit"); resp.Header.Get("Location") != "/audit" {
		t.Fatalf("step-up: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if resp, _ := c.get("/audit"); resp.StatusCode != 200 {
		t.Errorf("GET /audit after the step-up: %d", resp.StatusCode)
	}
}

// emailCode returns the code of the last email the console printed to
// addr.
func emailCode(t *testing.T, c *console, addr string) string {
	t.Helper()
	m, ok := c.app.mail.last(addr)
	code := regexp.MustCompile(`\b\d{6}\b`).FindString(m.Text)
	if !ok || code == "" {
		t.Fatalf("no code emailed to %s", addr)
	}
	return code
}

// -admin-mfa=false: a quick look, without two-step verification.
func TestAdminMFAFlag(t *testing.T) {
	for _, tc := range []struct {
		args []string
		off  bool
	}{{nil, false}, {[]string{"-admin-mfa=false"}, true}, {[]string{"-admin-mfa"}, false}} {
		o, err := parseFlags(tc.args)
		if err != nil || o.noAdminMFA != tc.off {
			t.Errorf("parseFlags(%q): noAdminMFA %v, %v; want %v", tc.args, o.noAdminMFA, err, tc.off)
		}
	}
	srv := httptest.NewUnstartedServer(nil)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	o := testOptions(t, srv.URL, nil, "")
	o.noAdminMFA = true
	con := newTestConsoleWith(t, o, nil)
	srv.Config.Handler = con.app.routes()
	c := newClientOf(t, srv, con)
	c.signIn(ownerEmail, con.password)
	for _, p := range []string{"/users", "/security", "/audit"} {
		if resp, _ := c.get(p); resp.StatusCode != 200 {
			t.Errorf("GET %s with a password-only session and -admin-mfa=false: %d, want 200", p, resp.StatusCode)
		}
	}
}

// SECURITY-CHECKLIST RB-11 for single sign-on: Guard does not count an
// SSO sign-in as one that passed a second factor (the IdP's methods are
// its own), and a user without a password cannot confirm with an
// authenticator app here. An SSO admin gets a page that says so: no
// redirect, and no loop.
func TestAdminPagesSSOWithoutPassword(t *testing.T) {
	c, idp, _ := newSSOClient(t, nil)
	idp.addUser("alice", "alice@example.com", "correct horse battery", "admins")
	alice := newClientOf(t, c.srv, c.con)
	acs, answer := alice.ssoAnswer(idp, "alice", "correct horse battery", "/security/sso")
	if resp, _ := alice.postFrom(idp.url, "cross-site", acs, answer); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("ACS: %d", resp.StatusCode)
	}
	resp, page := alice.get("/security/sso")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "Administration needs two-step verification.") ||
		!strings.Contains(page, html.EscapeString("no password")) {
		t.Errorf("an SSO admin without a password on /security/sso: %d\n%s", resp.StatusCode, page)
	}
	if resp, _ := alice.get("/account"); resp.StatusCode != 200 {
		t.Errorf("My account of the SSO admin: %d", resp.StatusCode)
	}
}

// newSSOClientAdminMFAOff is newSSOClient with -admin-mfa=false, for a
// test where two-step verification is beside the point: TestRequireSSO
// needs an owner without a second factor (the break-glass owner must
// enrol one at sign-in) and shows an SSO admin, who has no password, the
// SSO page.
func newSSOClientAdminMFAOff(t *testing.T, clock *testClock) (*client, *testIdP, string) {
	t.Helper()
	idp := newTestIdP(t)
	srv := httptest.NewUnstartedServer(nil)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	o := testOptions(t, srv.URL, clock, idp.url+"/metadata")
	o.noAdminMFA = true
	con := newTestConsoleWith(t, o, &testLog{t})
	srv.Config.Handler = con.app.routes()
	c := newClientOf(t, srv, con)
	idp.trust(c)
	return c, idp, con.password
}
