package main

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/guardhq/guard/internal/sqlitetest"
)

// testClock is the console's clock in tests: real time plus an offset the
// test can move forward (TOTP steps, dormancy, step-up windows).
type testClock struct {
	mu  sync.Mutex
	off time.Duration
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.off)
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.off += d
	c.mu.Unlock()
}

// newTestConsole starts a console on a fresh SQLite file (the default
// backend) with cheap password hashing, and returns it with its owner's
// password. base is the console's public address.
func newTestConsole(t testing.TB, base string, clock *testClock, out io.Writer) *console {
	t.Helper()
	return newTestConsoleWith(t, testOptions(t, base, clock, ""), out)
}

// testOptions are the options of a test console on a fresh SQLite file
// (a copy of one migrated once: sqlitetest; the console's Migrate finds
// nothing to do), connected to the IdP whose metadata is at idpMetadata
// (if not "").
func testOptions(t testing.TB, base string, clock *testClock, idpMetadata string) options {
	db := filepath.Join(t.TempDir(), "guard.db")
	sqlitetest.WriteFile(t, db)
	o := options{db: db, baseURL: base, seed: true, hasher: 1, hasherMemory: 1024,
		newSPKey: testSPKey, idpMetadata: idpMetadata}
	if clock != nil {
		o.now = clock.Now
	}
	return o
}

func newTestConsoleWith(t testing.TB, o options, out io.Writer) *console {
	t.Helper()
	if out == nil {
		out = io.Discard
	}
	c, err := newConsole(context.Background(), o, out)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// client is a browser-like HTTP client of a console served over TLS (so
// __Host- cookies work): it keeps cookies and sends Sec-Fetch-Site like a
// browser submitting the site's own forms.
type client struct {
	t   testing.TB
	srv *httptest.Server
	c   *http.Client
	con *console
	// clock is the console's clock when the client knows it (newClient):
	// signInAdmin moves it on to the next TOTP step instead of waiting.
	clock *testClock
}

func newClient(t testing.TB) (*client, string) {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	clock := &testClock{}
	con := newTestConsole(t, srv.URL, clock, nil)
	srv.Config.Handler = con.app.routes()
	c := newClientOf(t, srv, con)
	c.clock = clock
	return c, con.password
}

func newClientOf(t testing.TB, srv *httptest.Server, con *console) *client {
	jar, _ := cookiejar.New(nil)
	c := *srv.Client() // a client of its own: its own cookies
	c.Jar = jar
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &client{t: t, srv: srv, c: &c, con: con}
}

// do sends a request and returns the response with its body read. A
// site is sent as a browser's Sec-Fetch-Site, and a GET with one as a
// navigation (Sec-Fetch-Mode navigate), as a browser following a link.
func (c *client) do(method, path string, form url.Values, site string) (*http.Response, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, c.srv.URL+path, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if site != "" {
		req.Header.Set("Sec-Fetch-Site", site)
		if method == http.MethodGet {
			req.Header.Set("Sec-Fetch-Mode", "navigate")
		}
	}
	resp, err := c.c.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func (c *client) post(path string, form url.Values) (*http.Response, string) {
	c.t.Helper()
	return c.do("POST", path, form, "same-origin")
}

func (c *client) get(path string) (*http.Response, string) {
	c.t.Helper()
	return c.do("GET", path, nil, "")
}

func (c *client) signIn(email, password string) *http.Response {
	c.t.Helper()
	resp, _ := c.post("/login", url.Values{"tenant": {demoTenant}, "email": {email}, "password": {password}})
	return resp
}

func (c *client) whoami() (int, whoamiAnswer) {
	c.t.Helper()
	resp, body := c.get("/api/whoami")
	var w whoamiAnswer
	if resp.StatusCode == 200 {
		json.Unmarshal([]byte(body), &w)
	}
	return resp.StatusCode, w
}

func TestSignInWhoamiSignOut(t *testing.T) {
	c, password := newClient(t)
	if code, _ := c.whoami(); code != http.StatusUnauthorized {
		t.Fatalf("whoami before sign-in: %d", code)
	}
	if resp := c.signIn(ownerEmail, "nope nope nope"); resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("wrong password: %d", resp.StatusCode)
	}
	if resp := c.signIn(ownerEmail, password); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	code, w := c.whoami()
	if code != 200 || w.Email != ownerEmail || w.Tenant != demoTenant {
		t.Fatalf("whoami: %d %+v", code, w)
	}
	if resp, _ := c.post("/logout", url.Values{}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-out: %d", resp.StatusCode)
	}
	if code, _ := c.whoami(); code != http.StatusUnauthorized {
		t.Fatalf("whoami after sign-out: %d", code)
	}
}

// SECURITY-CHECKLIST LG-17.
func TestNoDefaultCredentials(t *testing.T) {
	c, _ := newClient(t)
	for _, pw := range []string{"admin", "password", "owner"} {
		if resp := c.signIn(ownerEmail, pw); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("password %q: %d", pw, resp.StatusCode)
		}
	}
}

// Every state-changing route refuses a cross-site POST before doing
// anything, and answers GET with 405.
// SECURITY-CHECKLIST WEB-4, WEB-5, WEB-6.
func TestCrossSiteRefused(t *testing.T) {
	c, password := newClient(t)
	resp, _ := c.do("POST", "/login", url.Values{"tenant": {demoTenant}, "email": {ownerEmail}, "password": {password}}, "cross-site")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site sign-in: %d, want 403", resp.StatusCode)
	}
	if code, _ := c.whoami(); code != http.StatusUnauthorized {
		t.Fatal("a cross-site sign-in created a session")
	}
	c.signInAdmin(ownerEmail, password)
	for _, path := range []string{"/logout", "/account/password", "/account/mfa/totp", "/users", "/users/x/deactivate", "/roles",
		"/security", "/security/sso", "/security/sso/delete", "/security/sso/require", "/ip", "/keys", "/keys/revoke", "/review", "/approvals/x/approve",
		"/campaigns/send", "/audit/verify"} {
		resp, _ := c.do("POST", path, url.Values{"x": {"1"}}, "cross-site")
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("cross-site POST %s: %d, want 403", path, resp.StatusCode)
		}
		if path == "/audit/verify" || path == "/users" || path == "/security" || path == "/security/sso" || path == "/ip" || path == "/keys" || path == "/roles" || path == "/review" {
			continue // these have a GET page
		}
		if resp, _ := c.get(path); resp.StatusCode != http.StatusMethodNotAllowed {
			t.Errorf("GET %s: %d, want 405", path, resp.StatusCode)
		}
	}
	if code, _ := c.whoami(); code != 200 {
		t.Error("the cross-site sign-out went through")
	}
}

// SECURITY-CHECKLIST WEB-12.
func TestSecurityHeaders(t *testing.T) {
	c, password := newClient(t)
	check := func(path string) {
		resp, body := c.get(path)
		if resp.StatusCode != 200 {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
		for h, want := range map[string]string{
			"X-Content-Type-Options":    "nosniff",
			"Referrer-Policy":           "no-referrer",
			"Cache-Control":             "no-store",
			"X-Frame-Options":           "DENY",
			"Strict-Transport-Security": "max-age=31536000",
		} {
			if got := resp.Header.Get(h); got != want {
				t.Errorf("%s: %s = %q, want %q", path, h, got, want)
			}
		}
		if ct := resp.Header.Get("Content-Type"); ct != "text/html; charset=utf-8" {
			t.Errorf("%s: Content-Type %q", path, ct)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		for _, d := range []string{"frame-ancestors 'none'", "object-src 'none'", "base-uri 'none'", "script-src 'none'", "form-action 'self'"} {
			if !strings.Contains(csp, d) {
				t.Errorf("%s: CSP %q lacks %s", path, csp, d)
			}
		}
		if strings.Contains(body, "<script") || strings.Contains(body, " style=") || strings.Contains(body, " on") && regexp.MustCompile(` on[a-z]+=`).MatchString(body) {
			t.Errorf("%s: inline script or style in the page", path)
		}
	}
	check("/login")
	c.signInAdmin(ownerEmail, password)
	for _, p := range []string{"/", "/account", "/users", "/roles", "/security", "/security/sso", "/ip", "/keys", "/audit", "/approvals", "/review", "/campaigns"} {
		check(p)
	}
}

// With a real CAPTCHA provider (-captcha-provider), its script loads,
// and the Content-Security-Policy allows it, only on the pages whose forms
// carry its widget (captchaPages): never on the pages that show a new
// authenticator key, recovery codes or a new API key, which third-party
// code could otherwise read (SECURITY-CHECKLIST WEB-12).
func TestCaptchaScriptOnlyOnCaptchaPages(t *testing.T) {
	srv := httptest.NewUnstartedServer(nil)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	clock := &testClock{}
	o := testOptions(t, srv.URL, clock, "")
	o.captchaProvider, o.captchaSecret, o.captchaSiteKey = "turnstile", "test-secret", "test-sitekey"
	con := newTestConsoleWith(t, o, nil)
	srv.Config.Handler = con.app.routes()
	const script, origin = `<script src="https://challenges.cloudflare.com`, "https://challenges.cloudflare.com"
	check := func(name string, resp *http.Response, body, marker string, captcha bool) {
		t.Helper()
		if !strings.Contains(body, marker) {
			t.Fatalf("%s: not the page expected (%d):\n%.1500s", name, resp.StatusCode, body)
		}
		csp := resp.Header.Get("Content-Security-Policy")
		if got := strings.Contains(body, script); got != captcha {
			t.Errorf("%s: loads the CAPTCHA provider's script: %v, want %v", name, got, captcha)
		}
		if got := strings.Contains(csp, "script-src "+origin); got != captcha || !captcha && !strings.Contains(csp, "script-src 'none'") {
			t.Errorf("%s: CSP %q", name, csp)
		}
	}

	anon := newClientOf(t, srv, con)
	resp, body := anon.get("/login")
	check("sign-in (GET /login)", resp, body, `action="/login"`, true)
	resp, body = anon.get("/forgot")
	check("forgotten password (GET /forgot)", resp, body, `action="/forgot"`, true)

	c := newClientOf(t, srv, con)
	c.clock = clock
	c.signInAdmin(ownerEmail, con.password)
	resp, body = c.get("/account")
	check("My account (GET /account)", resp, body, `action="/account/password"`, true)
	resp, body = c.post("/account/mfa/totp", url.Values{})
	check("new authenticator key (POST /account/mfa/totp)", resp, body, `id="totp-secret"`, false)
	resp, body = c.post("/account/recovery", url.Values{})
	check("recovery codes (POST /account/recovery)", resp, body, `id="recovery-codes"`, false)
	resp, body = c.post("/keys", url.Values{"name": {"x"}, "role": {"reports-only"}, "days": {"30"}})
	check("new API key (POST /keys)", resp, body, `id="api-key"`, false)
}

// captchaPages lists exactly the page templates that show the CAPTCHA
// widget.
func TestCaptchaPagesList(t *testing.T) {
	names, err := templateNames()
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range names {
		b, err := templateFS.ReadFile("templates/" + n)
		if err != nil {
			t.Fatal(err)
		}
		if uses := strings.Contains(string(b), ".Captcha.Widget"); uses != captchaPages[n] {
			t.Errorf("%s: shows the CAPTCHA widget: %v; in captchaPages: %v", n, uses, captchaPages[n])
		}
	}
}

// The request body is bounded: a larger form gets 413 (SECURITY-CHECKLIST
// RL-3), and nothing is done.
// SECURITY-CHECKLIST PW-12.
func TestBodyLimit(t *testing.T) {
	c, _ := newClient(t)
	for _, path := range []string{"/login", "/forgot"} {
		resp, _ := c.post(path, url.Values{"tenant": {demoTenant}, "email": {ownerEmail}, "password": {strings.Repeat("x", 100<<10)}})
		if resp.StatusCode != http.StatusRequestEntityTooLarge {
			t.Errorf("a 100 KB form to %s: %d, want 413", path, resp.StatusCode)
		}
	}
}

// A reset link's token leaves the URL at once, into a short-lived cookie.
// SECURITY-CHECKLIST RS-3.
func TestResetTokenLeavesTheURL(t *testing.T) {
	c, _ := newClient(t)
	resp, _ := c.post("/forgot", url.Values{"tenant": {demoTenant}, "email": {ownerEmail}, "captcha": {standinToken}})
	if resp.StatusCode != 200 {
		t.Fatalf("forgot: %d", resp.StatusCode)
	}
	link := waitLink(t, c.con, ownerEmail)
	u, _ := url.Parse(link)
	resp, _ = c.get(u.RequestURI())
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/reset" {
		t.Fatalf("reset link: %d to %q, want a redirect to /reset", resp.StatusCode, resp.Header.Get("Location"))
	}
	if rp := resp.Header.Get("Referrer-Policy"); rp != "no-referrer" {
		t.Errorf("Referrer-Policy %q", rp)
	}
	var ck *http.Cookie
	for _, k := range resp.Cookies() {
		if k.Name == resetCookie {
			ck = k
		}
	}
	if ck == nil || !ck.Secure || !ck.HttpOnly || ck.MaxAge <= 0 || ck.MaxAge > 3600 {
		t.Fatalf("reset cookie %+v", ck)
	}
	// Without the CAPTCHA, nothing changes.
	if resp, body := c.post("/reset", url.Values{"password": {"a brand new passphrase"}, "confirm": {"a brand new passphrase"}}); resp.StatusCode != 400 || !strings.Contains(body, "CAPTCHA") {
		t.Fatalf("reset without CAPTCHA: %d", resp.StatusCode)
	}
	resp, _ = c.post("/reset", url.Values{"password": {"a brand new passphrase"}, "confirm": {"a brand new passphrase"}, "captcha": {standinToken}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("reset: %d", resp.StatusCode)
	}
	if resp := c.signIn(ownerEmail, "a brand new passphrase"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in with the new password: %d", resp.StatusCode)
	}
	// The link works once.
	c2 := newClientOf(t, c.srv, c.con)
	c2.get(u.RequestURI())
	if resp, _ := c2.post("/reset", url.Values{"password": {"another new passphrase"}, "confirm": {"another new passphrase"}, "captcha": {standinToken}}); resp.StatusCode != 400 {
		t.Errorf("second use of the link: %d, want 400", resp.StatusCode)
	}
}

// waitLink waits for the reset email (sent in the background) and returns
// its link.
func waitLink(t testing.TB, c *console, to string) string {
	t.Helper()
	return waitLinkTo(t, c, to, "/reset")
}

// waitLinkTo waits for the latest email to to hold a link to path, and
// returns the link.
func waitLinkTo(t testing.TB, c *console, to, path string) string {
	t.Helper()
	re := regexp.MustCompile(`https?://\S+` + regexp.QuoteMeta(path) + `\?\S+`)
	for range 200 {
		if m, ok := c.app.mail.last(to); ok {
			if l := re.FindString(m.Text); l != "" {
				return l
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("no email to %s with a link to %s", to, path)
	return ""
}

func TestLocalPath(t *testing.T) {
	for in, want := range map[string]string{
		"/users": "/users", "/audit?action=login.failed": "/audit?action=login.failed", "": "/", "//evil.test": "/",
		"/\\evil.test": "/", "https://evil.test/": "/", "/%0d%0aSet-Cookie:x=y": "/%0d%0aSet-Cookie:x=y", "/a\r\nb": "/",
		"javascript:alert(1)": "/", "/ok\\x": "/",
	} {
		if got := localPath(in); got != want {
			t.Errorf("localPath(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestSignInRedirectStaysOnSite(t *testing.T) {
	c, password := newClient(t)
	resp, _ := c.post("/login", url.Values{"tenant": {demoTenant}, "email": {ownerEmail}, "password": {password}, "next": {"https://evil.test/"}})
	if loc := resp.Header.Get("Location"); loc != "/" {
		t.Errorf("redirect after sign-in with an off-site next: %q", loc)
	}
}

// A store failure gives a generic page with a reference, and nothing of
// the failure itself; the request is refused, never let through.
func TestStoreFailurePage(t *testing.T) {
	c, password := newClient(t)
	c.signInAdmin(ownerEmail, password)
	c.con.backend.Close() // the SQLite file is closed under the console
	for _, path := range []string{"/users", "/account", "/api/whoami"} {
		resp, body := c.get(path)
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("GET %s with the store down: %d, want 503", path, resp.StatusCode)
		}
		for _, leak := range []string{"sqlite", "closed", "guard:", ".go"} {
			if strings.Contains(strings.ToLower(body), leak) {
				t.Errorf("GET %s: the page shows %q", path, leak)
			}
		}
	}
}

// An SMS factor: enrolled from My account with the code the console
// prints, then used at sign-in; a recovery code works once instead.
func TestSMSFactorAndRecoveryCode(t *testing.T) {
	c, password := newClient(t)
	c.signIn(ownerEmail, password)
	const phone = "+447700900123"
	resp, body := c.post("/account/mfa/oob", url.Values{"kind": {"sms"}, "destination": {phone}})
	if resp.StatusCode != 200 {
		t.Fatalf("begin SMS factor: %d", resp.StatusCode)
	}
	factor := field(t, body, "factor")
	code := smsCode(t, c.con, phone)
	resp, body = c.post("/account/mfa/confirm", url.Values{"factor": {factor}, "code": {code}})
	if resp.StatusCode != 200 || !strings.Contains(body, `id="recovery-codes"`) {
		t.Fatalf("confirm: %d", resp.StatusCode)
	}
	recovery := regexp.MustCompile(`<li><code>([^<]+)</code></li>`).FindAllStringSubmatch(body, -1)
	if len(recovery) != 10 {
		t.Fatalf("%d recovery codes", len(recovery))
	}
	c.post("/logout", url.Values{})

	// Sign in: password, then a code sent by SMS.
	if resp := c.signIn(ownerEmail, password); resp.Header.Get("Location") != "/login/mfa" {
		t.Fatalf("sign-in went to %q", resp.Header.Get("Location"))
	}
	// The button names the factor by its masked label: the page is shown
	// to whoever has the password, and must not give them the number.
	_, body = c.get("/login/mfa")
	if !strings.Contains(body, "Send a code to Phone ending 0123") || strings.Contains(body, "7700900123") {
		t.Fatal("no send button for the SMS factor, or the whole number on the second-step page")
	}
	if resp, _ := c.post("/login/mfa/send", url.Values{"factor": {field(t, body, "factor")}}); resp.StatusCode != 200 {
		t.Fatalf("send: %d", resp.StatusCode)
	}
	resp, _ = c.post("/login/mfa", url.Values{"method": {"code"}, "code": {smsCode(t, c.con, phone)}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("second step: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if code, _ := c.whoami(); code != 200 {
		t.Fatalf("whoami after the SMS code: %d", code)
	}
	c.post("/logout", url.Values{})

	// A recovery code, once.
	for i, want := range []int{http.StatusSeeOther, http.StatusBadRequest} {
		c.signIn(ownerEmail, password)
		resp, _ := c.post("/login/mfa", url.Values{"method": {"recovery"}, "code": {recovery[0][1]}})
		if resp.StatusCode != want {
			t.Fatalf("recovery code, use %d: %d, want %d", i+1, resp.StatusCode, want)
		}
		c.post("/logout", url.Values{})
	}
}

// field returns the value of the first hidden input with that name.
func field(t *testing.T, body, name string) string {
	t.Helper()
	m := regexp.MustCompile(`name="` + name + `" value="([^"]+)"`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no %s field", name)
	}
	return m[1]
}

// smsCode returns the code of the last SMS the console printed to phone.
func smsCode(t *testing.T, c *console, phone string) string {
	t.Helper()
	m, ok := c.app.mail.last(phone)
	code := regexp.MustCompile(`\b\d{6}\b`).FindString(m.Text)
	if !ok || code == "" {
		t.Fatalf("no SMS code to %s", phone)
	}
	// Bound to the console's host (mfa.Config.SMSOrigin).
	if u := c.app.base; !strings.HasSuffix(m.Text, "\n@"+u.Hostname()+" #"+code) {
		t.Errorf("SMS %q does not end with the origin-bound line for %s", m.Text, u.Hostname())
	}
	return code
}

// The buttons of a user's page and of the roles and keys pages.
func TestAdminActions(t *testing.T) {
	owner, password := newClient(t)
	owner.signInAdmin(ownerEmail, password)
	resp, _ := owner.post("/users", url.Values{"email": {"sam@demo.example"}, "name": {"Sam Staff"}, "role": {"member"}, "password": {"plum tree on the hill 42"}})
	user := resp.Header.Get("Location")
	sam := newClientOf(t, owner.srv, owner.con)
	// Six wrong passwords; from the fourth the CAPTCHA is due, and only
	// an attempt that answers it counts (one without a token is not a
	// guess).
	for range 6 {
		sam.post("/login", url.Values{"tenant": {demoTenant}, "email": {"sam@demo.example"}, "password": {"wrong wrong wrong"}, "captcha": {standinToken}})
	}
	if _, body := owner.get(user); !strings.Contains(body, "locked until") {
		t.Fatal("the user's page does not show the lock")
	}
	ok := func(path string, form url.Values, want string) {
		t.Helper()
		resp, _ := owner.post(path, form)
		_, body := owner.get(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusSeeOther || !strings.Contains(body, want) {
			t.Fatalf("POST %s: %d, page without %q", path, resp.StatusCode, want)
		}
	}
	// Locked: even the right password fails (this address has failed
	// often too, so the CAPTCHA is due as well).
	samIn := func() int {
		resp, _ := sam.post("/login", url.Values{"tenant": {demoTenant}, "email": {"sam@demo.example"}, "password": {"plum tree on the hill 42"}, "captcha": {standinToken}})
		return resp.StatusCode
	}
	if code := samIn(); code != http.StatusBadRequest {
		t.Fatalf("sign-in while locked: %d", code)
	}
	ok(user+"/unlock", url.Values{}, "Sign-in lock lifted")
	if code := samIn(); code != http.StatusSeeOther {
		t.Fatalf("sign-in after the unlock: %d", code)
	}
	// A role change ends the user's sessions (SECURITY-CHECKLIST SE-3).
	ok(user+"/grant", url.Values{"role": {"manager"}}, "Granted the role manager")
	if code, _ := sam.whoami(); code != http.StatusUnauthorized {
		t.Fatalf("Sam's session after a grant: %d, want 401", code)
	}
	if code := samIn(); code != http.StatusSeeOther {
		t.Fatalf("sign-in after the grant: %d", code)
	}
	ok(user+"/revoke", url.Values{"role": {"member"}}, "Took away the role member")
	if code, _ := sam.whoami(); code != http.StatusUnauthorized {
		t.Fatalf("Sam's session after a revocation: %d, want 401", code)
	}
	if _, body := owner.get(user); !strings.Contains(body, `<span class="badge">manager</span>`) || strings.Contains(body, `<span class="badge">member</span>`) {
		t.Fatal("roles not shown as changed")
	}
	if code := samIn(); code != http.StatusSeeOther {
		t.Fatalf("sign-in after the revocation: %d", code)
	}
	ok(user+"/sessions", url.Values{}, "Ended 1 session(s)")
	if code, _ := sam.whoami(); code != http.StatusUnauthorized {
		t.Fatalf("Sam's session after End all sessions: %d", code)
	}
	ok(user+"/deactivate", url.Values{}, "Deactivated")
	ok(user+"/reactivate", url.Values{}, "Reactivated")
	if code := samIn(); code != http.StatusSeeOther {
		t.Fatalf("sign-in after reactivation: %d", code)
	}
	// Require password change (SECURITY-CHECKLIST PW-9): Sam's session
	// ends, and the next sign-in goes to My account to choose a new one.
	ok(user+"/expire-password", url.Values{}, "must choose a new password at their next sign-in")
	if code, _ := sam.whoami(); code != http.StatusUnauthorized {
		t.Fatalf("Sam's session after Require password change: %d, want 401", code)
	}
	if _, body := owner.get(user); !strings.Contains(body, "must be changed at next sign-in") || !regexp.MustCompile(`id="expire-password"[^>]*disabled`).MatchString(body) {
		t.Fatal("the user's page does not show the password to change")
	}
	samForm := url.Values{"tenant": {demoTenant}, "email": {"sam@demo.example"}, "password": {"plum tree on the hill 42"}, "captcha": {standinToken}}
	if resp, _ := sam.post("/login", samForm); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/account" {
		t.Fatalf("sign-in with a password to change: %d to %q, want /account", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, body := sam.get("/account"); !strings.Contains(body, "Your password has expired") {
		t.Fatal("My account does not ask for a new password")
	}
	const samPW = "a fresh passphrase 2027"
	if resp, _ := sam.post("/account/password", url.Values{"current": {"plum tree on the hill 42"}, "new": {samPW}, "confirm": {samPW}, "captcha": {standinToken}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("change password: %d", resp.StatusCode)
	}
	samForm.Set("password", samPW)
	if resp, _ := sam.post("/login", samForm); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") == "/account" {
		t.Fatalf("sign-in after the change: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, body := owner.get(user); strings.Contains(body, "must be changed at next sign-in") {
		t.Fatal("the password still shown as to change after the change")
	}
	// A manager cannot manage users (Require users:manage refuses).
	me := strings.TrimPrefix(user, "/users/")
	resp, _ = sam.post("/users/"+me+"/deactivate", url.Values{})
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("a manager deactivating (no users:manage): %d", resp.StatusCode)
	}

	ok("/roles", url.Values{"name": {"campaign-editor"}, "perm": {"campaigns:read", "campaigns:write"}}, "Saved the role campaign-editor")
	if _, body := owner.get("/roles"); !strings.Contains(body, "campaign-editor") {
		t.Fatal("custom role not listed")
	}
	ok("/roles/delete", url.Values{"name": {"campaign-editor"}}, "Deleted the role campaign-editor")
	ok("/roles/delete", url.Values{"name": {"owner"}}, "Built-in roles cannot be changed")

	resp, body := owner.post("/keys", url.Values{"name": {"export"}, "role": {"reports-only"}, "days": {"30"}})
	key := regexp.MustCompile(`id="api-key">(gk_[^<]+)<`).FindStringSubmatch(body)
	if resp.StatusCode != 200 || key == nil {
		t.Fatalf("create key: %d", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", owner.srv.URL+"/api/reports", nil)
	req.Header.Set("Authorization", "Bearer "+key[1])
	if r, err := owner.c.Do(req); err != nil || r.StatusCode != 200 {
		t.Fatalf("the key on the API: %v %v", r, err)
	}
	if _, body := owner.get("/keys"); strings.Contains(body, key[1]) {
		t.Fatal("the key is shown again")
	} else {
		ok("/keys/revoke", url.Values{"id": {field(t, body, "id")}}, "Key revoked")
	}
	if r, err := owner.c.Do(req); err != nil || r.StatusCode != http.StatusUnauthorized {
		t.Fatalf("the revoked key on the API: %v %v", r, err)
	}
}

// The JSON API's 401s carry the challenge Guard sends (RFC 9110 §11.6.1:
// an API key is accepted as a Bearer token); a console page sends the
// browser to sign in instead, a redirect that carries none.
func TestAPIUnauthorizedCarriesAChallenge(t *testing.T) {
	c, _ := newClient(t)
	for _, path := range []string{"/api/whoami", "/api/reports"} {
		resp, _ := c.get(path)
		if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("WWW-Authenticate") != `Bearer realm="api"` {
			t.Errorf("anonymous %s: %d, WWW-Authenticate %q", path, resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
	}
	resp, _ := c.get("/users")
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("WWW-Authenticate") != "" {
		t.Errorf("anonymous /users: %d, WWW-Authenticate %q; want a redirect without one", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	}
	// whoami refuses a good key (not a user) with 403: TestWhoamiRefusesAPIKey.
}

// The console binds SMS codes to its base URL's host, and starts with an
// IPv6 base URL too, whose host the origin-bound line cannot name.
func TestSMSOriginOfBaseURL(t *testing.T) {
	for base, want := range map[string]string{
		"https://console.example.com:8443/": "console.example.com",
		"https://localhost:8443":            "localhost",
		"https://[::1]:8443":                "",
	} {
		u, err := url.Parse(base)
		if err != nil {
			t.Fatal(err)
		}
		if got := smsOrigin(u); got != want {
			t.Errorf("smsOrigin(%s) = %q, want %q", base, got, want)
		}
	}
}
