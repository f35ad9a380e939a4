package main

import (
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/rbac"
)

// sessionCookie is the name of Guard's session cookie: the default of
// guard.Config.CookieName, which the console does not change.
const sessionCookie = "__Host-guard"

// roundTripFunc is an http.RoundTripper made of a function: the tests wrap
// a client's transport with it to change or watch its requests.
type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// Absolute URLs the console emits use its configured base URL, whatever
// the Host and X-Forwarded-Host headers of the request say (SECURITY-
// CHECKLIST WEB-15): the link of a reset email, and the SAML metadata.
func TestForgedHostIgnored(t *testing.T) {
	c, _ := newClient(t)
	const evil = "evil.example"
	var forged atomic.Int32 // requests the console received under the forged host
	h := c.srv.Config.Handler
	c.srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Host == evil && r.Header.Get("X-Forwarded-Host") == evil {
			forged.Add(1)
		}
		h.ServeHTTP(w, r)
	})
	inner := c.c.Transport
	c.c.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.Host = evil
		r.Header.Set("X-Forwarded-Host", evil)
		return inner.RoundTrip(r)
	})

	resp, _ := c.post("/forgot", url.Values{"tenant": {demoTenant}, "email": {ownerEmail}, "captcha": {standinToken}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("forgot: %d", resp.StatusCode)
	}
	link := waitLink(t, c.con, ownerEmail)
	if !strings.HasPrefix(link, c.srv.URL+"/reset?") || strings.Contains(link, evil) {
		t.Errorf("reset link %q, want one on %s", link, c.srv.URL)
	}

	resp, md := c.get("/saml/" + demoTenant + "/metadata")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("SAML metadata: %d", resp.StatusCode)
	}
	for _, want := range []string{`entityID="` + c.srv.URL + "/saml/" + demoTenant + `/metadata"`, `Location="` + c.srv.URL + "/saml/" + demoTenant + `/acs"`} {
		if !strings.Contains(md, want) {
			t.Errorf("the SAML metadata lacks %s", want)
		}
	}
	if strings.Contains(md, evil) {
		t.Errorf("the SAML metadata names %s", evil)
	}
	if n := forged.Load(); n != 2 {
		t.Fatalf("%d of 2 requests reached the console with the forged host", n)
	}
}

// A session cookie the server never issued is not adopted (SECURITY-
// CHECKLIST SE-1, SE-2): signing in with it gives a new value, and the
// planted value is no session afterwards.
func TestPlantedSessionCookieNotAdopted(t *testing.T) {
	c, password := newClient(t)
	var raw [32]byte
	rand.Read(raw[:])
	planted := base64.RawURLEncoding.EncodeToString(raw[:]) // well-formed: 32 random bytes, base64url
	u, _ := url.Parse(c.srv.URL)
	plant := func(cl *client) {
		cl.c.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: planted, Path: "/", Secure: true, HttpOnly: true}})
	}
	plant(c)
	resp := c.signIn(ownerEmail, password)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	var issued string
	for _, k := range resp.Cookies() {
		if k.Name == sessionCookie && k.Value != "" {
			issued = k.Value
		}
	}
	if issued == "" || issued == planted {
		t.Fatalf("session cookie after sign-in %q; want a new value (planted %q)", issued, planted)
	}
	if code, w := c.whoami(); code != http.StatusOK || w.Email != ownerEmail {
		t.Fatalf("whoami with the issued cookie: %d %+v", code, w)
	}

	other := newClientOf(t, c.srv, c.con)
	plant(other)
	if code, _ := other.whoami(); code != http.StatusUnauthorized {
		t.Errorf("whoami with the planted cookie after the sign-in: %d, want 401", code)
	}
	plant(other)
	resp, _ = other.get("/account")
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/login") {
		t.Errorf("GET /account with the planted cookie: %d to %q, want a redirect to /login", resp.StatusCode, loc)
	}
}

// A sign-in in a browser that already holds a live session (perhaps
// someone else's: a shared computer, or a login form posted over it)
// ends that session, however the sign-in completes: with a password,
// with a second factor, by enrolling one at sign-in, or through the IdP.
// The replaced cookie value is then no session (SECURITY-CHECKLIST SE-1).
func TestSignInEndsPreviousSession(t *testing.T) {
	const samEmail, samPW = "sam@demo.example", "plum tree on the hill 42"
	// site is a console with an IdP, the owner's password, and Sam (a
	// member, password only).
	type site struct {
		idp     *testIdP
		ownerPW string
	}
	// sibling is another browser of c's console, which knows its clock.
	sibling := func(t *testing.T, c *client) *client {
		o := newClientOf(t, c.srv, c.con)
		o.clock = c.clock
		return o
	}
	asSam := func(t *testing.T, c *client, _ site) {
		if resp := c.signIn(samEmail, samPW); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("Sam's sign-in: %d", resp.StatusCode)
		}
	}
	for _, tc := range []struct {
		name string
		// first signs the browser in; again signs it in again, through
		// the completion tested.
		first func(t *testing.T, c *client, s site)
		again func(t *testing.T, c *client, s site) *http.Response
	}{
		{"password", asSam, func(t *testing.T, c *client, s site) *http.Response {
			return c.signIn(ownerEmail, s.ownerPW)
		}},
		{"second factor", func(t *testing.T, c *client, s site) {
			sibling(t, c).signInAdmin(ownerEmail, s.ownerPW) // the owner sets up an app
			asSam(t, c, s)
		}, func(t *testing.T, c *client, s site) *http.Response {
			if resp := c.signIn(ownerEmail, s.ownerPW); resp.Header.Get("Location") != "/login/mfa" {
				t.Fatalf("owner's sign-in: %d to %q, want /login/mfa", resp.StatusCode, resp.Header.Get("Location"))
			}
			resp, _ := c.post("/login/mfa", url.Values{"method": {"totp"}, "code": {c.totp(c.app(ownerEmail))}})
			return resp
		}},
		{"enrolment at sign-in", func(t *testing.T, c *client, s site) {
			sibling(t, c).signInAdmin(ownerEmail, s.ownerPW)
			setPolicy(t, c.con, func(p *guard.Policy) { p.RequireMFA = true })
			c.signInAdmin(ownerEmail, s.ownerPW) // a session that meets the policy
		}, func(t *testing.T, c *client, _ site) *http.Response {
			if resp := c.signIn(samEmail, samPW); resp.Header.Get("Location") != "/login/enrol" {
				t.Fatalf("Sam's sign-in: %d to %q, want /login/enrol", resp.StatusCode, resp.Header.Get("Location"))
			}
			_, page := c.post("/login/enrol/begin", url.Values{})
			m := totpSecretRE.FindStringSubmatch(page)
			if m == nil {
				t.Fatalf("no key on the enrolment page:\n%s", page)
			}
			resp, _ := c.post("/login/enrol/confirm", url.Values{"factor": {field(t, page, "factor")},
				"code": {c.totp(&authenticatorApp{secret: m[1]})}})
			return resp
		}},
		{"single sign-on", asSam, func(t *testing.T, c *client, s site) *http.Response {
			s.idp.addUser("bob", "bob@example.com", "correct horse battery", "staff")
			acs, answer := c.ssoAnswer(s.idp, "bob", "correct horse battery", "")
			resp, _ := c.postFrom(s.idp.url, "same-site", acs, answer)
			return resp
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := &testClock{}
			c, idp, password := newSSOClient(t, clock)
			c.clock = clock
			if _, err := c.con.g.CreateUser(t.Context(), guard.System("test"), guard.NewUser{Tenant: demoTenant, Email: samEmail,
				Name: "Sam Staff", Password: samPW, Roles: []string{rbac.Member}}); err != nil {
				t.Fatal(err)
			}
			s := site{idp, password}
			tc.first(t, c, s)
			old := c.cookie(sessionCookie)
			if code, _ := c.whoami(); code != http.StatusOK || old == "" {
				t.Fatalf("the first session: whoami %d", code)
			}
			if resp := tc.again(t, c, s); resp.StatusCode != http.StatusSeeOther && resp.StatusCode != http.StatusOK {
				t.Fatalf("the second sign-in: %d", resp.StatusCode)
			}
			if v := c.cookie(sessionCookie); v == old || v == "" {
				t.Fatalf("the session cookie was not replaced")
			}
			if code, _ := c.whoami(); code != http.StatusOK {
				t.Fatalf("the new session: whoami %d", code)
			}
			o := sibling(t, c)
			u, _ := url.Parse(c.srv.URL)
			o.c.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: old, Path: "/", Secure: true, HttpOnly: true}})
			if code, w := o.whoami(); code != http.StatusUnauthorized {
				t.Errorf("the session the sign-in replaced still works: whoami %d as %s, want 401", code, w.Email)
			}
		})
	}
}

// newLoggedConsole starts a console whose log is kept, and a client of it.
func newLoggedConsole(t *testing.T) (*console, *client, *syncBuffer) {
	t.Helper()
	srv := httptest.NewUnstartedServer(nil)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	out := &syncBuffer{}
	con := newTestConsole(t, srv.URL, nil, out)
	srv.Config.Handler = con.app.routes()
	return con, newClientOf(t, srv, con), out
}

// A store failure met by Guard's Middleware on a signed-in page also shows
// a reference, logged with the error (handed on by Config.OnRefuse); on
// the JSON API the answer carries the reference.
func TestStoreFailureReferenceSignedIn(t *testing.T) {
	con, c, out := newLoggedConsole(t)
	if resp := c.signIn(ownerEmail, con.password); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	con.backend.Close()
	resp, body := c.get("/account")
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("GET /account with the store down: %d, want 503", resp.StatusCode)
	}
	m := regexp.MustCompile(`Reference: <code>([0-9a-f]{8,})</code>`).FindStringSubmatch(body)
	if m == nil {
		t.Fatalf("no reference on the page")
	}
	checkLogged(t, out, "GET /account", m[1], body)
	resp, body = c.get("/api/whoami")
	m = regexp.MustCompile(`reference ([0-9a-f]{8,})`).FindStringSubmatch(body)
	if resp.StatusCode != http.StatusServiceUnavailable || m == nil {
		t.Fatalf("GET /api/whoami with the store down: %d %q, want 503 with a reference", resp.StatusCode, body)
	}
	checkLogged(t, out, "GET /api/whoami", m[1], body)
}

// checkLogged checks that the console's log has a line with reference ref
// that holds the store's error, and that the answer body shows nothing of
// it.
func checkLogged(t *testing.T, out *syncBuffer, req, ref, body string) {
	t.Helper()
	line := regexp.MustCompile(`(?m)^.*\b` + ref + `\b.*$`).FindString(out.String())
	if line == "" {
		t.Errorf("%s: reference %s is not in the console's log", req, ref)
		return
	}
	if !strings.Contains(line, "store closed") {
		t.Errorf("%s: the log line of reference %s does not hold the error: %q", req, ref, line)
	}
	for _, leak := range []string{"sqlite", "closed", "guard:", "unavailable:", ".go"} {
		if strings.Contains(strings.ToLower(body), leak) {
			t.Errorf("%s: the answer shows %q", req, leak)
		}
	}
}

// The 503 page of a store failure shows a reference, the same one the
// console logs with the error, and nothing of the error itself
// (SECURITY-CHECKLIST WEB-14). The requests are anonymous, so that they
// reach the page's handler.

func TestStoreFailureReference(t *testing.T) {
	con, c, out := newLoggedConsole(t)
	con.backend.Close()
	refRE := regexp.MustCompile(`Reference: <code>([0-9a-f]{8,})</code>`)
	// (Not the SP metadata: it reads no store, and is served for any
	// well-formed tenant ID; see samlMetadata.)
	for _, path := range []string{"/saml/" + demoTenant + "/login", "/saml/" + demoTenant + "/slo"} {
		resp, body := c.do("GET", path, nil, "same-origin") // the sign-in page's link starts at once
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("GET %s with the store down: %d, want 503", path, resp.StatusCode)
			continue
		}
		m := refRE.FindStringSubmatch(body)
		if m == nil {
			t.Errorf("GET %s: no reference on the page", path)
			continue
		}
		checkLogged(t, out, "GET "+path, m[1], body)
	}
}

// Every cookie the console sets along sign-in, MFA, flash messages,
// password reset and email change is Secure, HttpOnly and carries a
// __Host- prefix (Path=/, no Domain) or a __Secure- one (SECURITY-
// CHECKLIST WEB-1, WEB-2).
func TestCookieAttributes(t *testing.T) {
	c, password := newClient(t)
	var (
		mu  sync.Mutex
		set []string // every Set-Cookie line received
	)
	inner := c.c.Transport
	c.c.Transport = roundTripFunc(func(r *http.Request) (*http.Response, error) {
		resp, err := inner.RoundTrip(r)
		if err == nil {
			mu.Lock()
			set = append(set, resp.Header.Values("Set-Cookie")...)
			mu.Unlock()
		}
		return resp, err
	})
	step := func(resp *http.Response, want int, what string) {
		t.Helper()
		if resp.StatusCode != want {
			t.Fatalf("%s: %d, want %d", what, resp.StatusCode, want)
		}
	}

	// Sign-in, and a flash message (taken by the next page).
	step(c.signIn(ownerEmail, password), http.StatusSeeOther, "sign-in")
	resp, _ := c.post("/account/password", url.Values{"current": {password}, "new": {"one new passphrase"}, "confirm": {"another passphrase"}})
	step(resp, http.StatusSeeOther, "change password with differing passwords")
	resp, _ = c.get("/account")
	step(resp, http.StatusOK, "account")

	// An SMS factor, then a sign-in pending its code.
	const phone = "+447700900124"
	resp, body := c.post("/account/mfa/oob", url.Values{"kind": {"sms"}, "destination": {phone}})
	step(resp, http.StatusOK, "begin SMS factor")
	resp, _ = c.post("/account/mfa/confirm", url.Values{"factor": {field(t, body, "factor")}, "code": {smsCode(t, c.con, phone)}})
	step(resp, http.StatusOK, "confirm SMS factor")
	resp, _ = c.post("/logout", url.Values{})
	step(resp, http.StatusSeeOther, "sign-out")
	step(c.signIn(ownerEmail, password), http.StatusSeeOther, "sign-in with MFA")
	resp, body = c.get("/login/mfa")
	step(resp, http.StatusOK, "MFA page")
	resp, _ = c.post("/login/mfa/send", url.Values{"factor": {field(t, body, "factor")}})
	step(resp, http.StatusOK, "send SMS code")
	resp, _ = c.post("/login/mfa", url.Values{"method": {"code"}, "code": {smsCode(t, c.con, phone)}})
	step(resp, http.StatusSeeOther, "SMS code")

	// An email change, confirmed from its link.
	const newEmail = "olivia@demo.example"
	resp, _ = c.post("/account/email", url.Values{"email": {newEmail}})
	step(resp, http.StatusSeeOther, "request email change")
	u, _ := url.Parse(waitLinkTo(t, c.con, newEmail, "/email/confirm"))
	resp, _ = c.get(u.RequestURI())
	step(resp, http.StatusSeeOther, "email change link")
	resp, _ = c.post("/email/confirm", url.Values{})
	step(resp, http.StatusSeeOther, "confirm email change")

	// A password reset, from its link.
	resp, _ = c.post("/forgot", url.Values{"tenant": {demoTenant}, "email": {newEmail}, "captcha": {standinToken}})
	step(resp, http.StatusOK, "forgot")
	u, _ = url.Parse(waitLink(t, c.con, newEmail))
	resp, _ = c.get(u.RequestURI())
	step(resp, http.StatusSeeOther, "reset link")
	resp, _ = c.post("/reset", url.Values{"password": {"a brand new passphrase"}, "confirm": {"a brand new passphrase"}, "captcha": {standinToken}})
	step(resp, http.StatusSeeOther, "reset")

	mu.Lock()
	defer mu.Unlock()
	seen := map[string]bool{}
	for _, line := range set {
		k, err := http.ParseSetCookie(line)
		if err != nil {
			t.Errorf("Set-Cookie %q: %v", line, err)
			continue
		}
		seen[k.Name] = true
		host := strings.HasPrefix(k.Name, "__Host-")
		switch {
		case !k.Secure || !k.HttpOnly:
			t.Errorf("cookie %s is not Secure and HttpOnly: %q", k.Name, line)
		case !host && !strings.HasPrefix(k.Name, "__Secure-"):
			t.Errorf("cookie %s has neither a __Host- nor a __Secure- prefix", k.Name)
		case host && (k.Path != "/" || k.Domain != ""):
			t.Errorf("__Host- cookie with a Domain or a Path other than /: %q", line)
		}
	}
	for _, name := range []string{sessionCookie, pendingCookie, flashCookie, resetCookie, emailCookie} {
		if !seen[name] {
			t.Errorf("the flow set no cookie %s: it checked nothing about it", name)
		}
	}
}

// -breach-api: a new password known from breaches is refused with a
// sentence that says so, and the old one still signs in.
func TestBreachAPIFlag(t *testing.T) {
	const leaked = "Summer-2019-password"
	sum := sha1.Sum([]byte(leaked))
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	api := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/range/"+h[:5] {
			fmt.Fprintf(w, "%s:4200\r\n", h[5:])
		}
		// Padding (Add-Padding: true): the service never answers a
		// prefix with nothing, and an empty answer is a broken one.
		fmt.Fprintf(w, "%035X:0\r\n", 0)
	}))
	t.Cleanup(api.Close)
	srv := httptest.NewUnstartedServer(nil)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	o := testOptions(t, srv.URL, nil, "")
	o.breachAPI = api.URL
	con := newTestConsoleWith(t, o, nil)
	srv.Config.Handler = con.app.routes()
	c := newClientOf(t, srv, con)
	if resp := c.signIn(ownerEmail, con.password); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	resp, body := c.post("/account/password", url.Values{"current": {con.password}, "new": {leaked}, "confirm": {leaked}, "captcha": {standinToken}})
	if _, page := c.get("/account"); !strings.Contains(body+page, "The password was refused: found in a data breach.") {
		t.Errorf("changing to a breached password: %d to %q, the pages do not say why:\n%s", resp.StatusCode, resp.Header.Get("Location"), body)
	}
	c.post("/logout", url.Values{})
	if resp := c.signIn(ownerEmail, con.password); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the old password after the refusal: %d", resp.StatusCode)
	}
	// With the check on, the reset page says breached passwords are
	// refused (without it, TestTextsMatchBehaviour: it does not).
	c.post("/logout", url.Values{})
	c.post("/forgot", url.Values{"tenant": {demoTenant}, "email": {ownerEmail}, "captcha": {standinToken}})
	u, _ := url.Parse(waitLink(t, con, ownerEmail))
	resp, _ = c.get(u.RequestURI())
	if _, page := c.get(resp.Header.Get("Location")); !strings.Contains(page, "common and breached passwords are refused") {
		t.Error("with -breach-api, the reset page does not say breached passwords are refused")
	}
}

// One session per user (SECURITY-CHECKLIST SE-7): signing in on a second
// client ends the first one's session, whose next request is refused with
// the reason: "Guard-Reason: signed_in_elsewhere" for the API, and for a
// page the sign-in page saying why, whether the page was opened (GET) or
// a form was sent (POST).
func TestSignedInElsewhere(t *testing.T) {
	a, password := newClient(t)
	b := newClientOf(t, a.srv, a.con)
	const notice = "You were signed out because your account signed in elsewhere."
	signIn := func(c *client) {
		t.Helper()
		if resp := c.signIn(ownerEmail, password); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("sign-in: %d", resp.StatusCode)
		}
	}
	// follow takes c through the console's redirects from resp and
	// returns the address and body of the page it ends on.
	follow := func(c *client, resp *http.Response, body string) (string, string) {
		t.Helper()
		for range 5 {
			if resp.StatusCode != http.StatusSeeOther {
				return resp.Request.URL.RequestURI(), body
			}
			resp, body = c.get(resp.Header.Get("Location"))
		}
		t.Fatalf("too many redirects, at %s", resp.Request.URL)
		return "", ""
	}

	signIn(a)
	signIn(b)
	resp, _ := a.get("/api/whoami")
	if resp.StatusCode != http.StatusUnauthorized || resp.Header.Get("Guard-Reason") != "signed_in_elsewhere" {
		t.Errorf("A's API request: %d, Guard-Reason %q; want 401, signed_in_elsewhere", resp.StatusCode, resp.Header.Get("Guard-Reason"))
	}

	signIn(a) // now B's session is the one ended
	resp, body := b.get("/account")
	at, page := follow(b, resp, body)
	if !strings.HasPrefix(at, "/login?next=") || !strings.Contains(page, notice) {
		t.Errorf("B opening /account ends on %s without the notice %q", at, notice)
	}
	if _, page := b.get("/login"); strings.Contains(page, notice) {
		t.Error("the notice is shown again on the next page")
	}

	signIn(b) // and now A's
	resp, body = a.post("/account/password", url.Values{"current": {password}, "new": {"x"}, "confirm": {"x"}})
	if at, page := follow(a, resp, body); !strings.HasPrefix(at, "/login") || !strings.Contains(page, notice) {
		t.Errorf("A sending a form ends on %s without the notice", at)
	}

	// Exactly one session is valid: B's.
	if code, _ := b.whoami(); code != http.StatusOK {
		t.Errorf("B's whoami: %d, want 200", code)
	}
	if code, _ := a.whoami(); code != http.StatusUnauthorized {
		t.Errorf("A's whoami: %d, want 401", code)
	}
}

// The page a browser is sent back to when Guard ended its session with a
// reason is the address it asked for, taken before the mux cleans the
// path: it stays on the site, so a link to https://console//evil.test/x
// does not become a scheme-relative redirect off-site (SECURITY-CHECKLIST
// WEB-9, ASVS5 3.7.2).
func TestSignedOutNoticeRedirectStaysOnSite(t *testing.T) {
	a, password := newClient(t)
	b := newClientOf(t, a.srv, a.con)
	if resp := a.signIn(ownerEmail, password); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in A: %d", resp.StatusCode)
	}
	if resp := b.signIn(ownerEmail, password); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in B: %d", resp.StatusCode)
	}
	// A's browser still holds its ended session cookie.
	resp, _ := a.get("//evil.test/x")
	checkSameSite(t, resp, "/")
}

// Ending one of your sessions by an ID that names none of yours (ended
// already, or another user's) says that nothing was ended (it said
// "Session ended."), and the current session lives on.
func TestEndingAnUnknownSessionSaysSo(t *testing.T) {
	c, password := newClient(t)
	c.signInAdmin(ownerEmail, password)
	resp, _ := c.post("/account/sessions/revoke", url.Values{"session": {"0123456789abcdef0123456789abcdef"}})
	_, body := c.get(resp.Header.Get("Location"))
	if resp.StatusCode != http.StatusSeeOther || !strings.Contains(body, "That session had already ended.") || strings.Contains(body, "Session ended.") {
		t.Errorf("ending an unknown session: %d, page %q", resp.StatusCode, between(body, "<main", "</main>"))
	}
	if code, _ := c.whoami(); code != http.StatusOK {
		t.Errorf("the current session after the refusal: %d, want 200", code)
	}
}

// A form that cannot be read is answered once, with the page that says
// so: the reset page used to append its "invalid link" page to it (and
// the second-step pages wrote a second status).
func TestUnreadableFormAnsweredOnce(t *testing.T) {
	c, _ := newClient(t)
	c.get("/reset?" + url.Values{"tenant": {demoTenant}, "user": {"0123456789abcdef0123456789abcdef"}, "token": {strings.Repeat("A", 43)}}.Encode())
	req, _ := http.NewRequest("POST", c.srv.URL+"/reset", strings.NewReader("password=%zz"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	resp, err := c.c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	body := string(b)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, "The form could not be read.") ||
		strings.Contains(body, "invalid or has expired") || strings.Count(body, "</html>") != 1 {
		t.Errorf("unreadable reset form: %d, %d pages, %q", resp.StatusCode, strings.Count(body, "</html>"), pageError(body))
	}
}
