package main

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"html"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlidp"
	dsig "github.com/russellhaering/goxmldsig"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/internal/ssosite"
	"github.com/guardhq/guard/rbac"
)

// Key pairs are made once per test binary: RSA key generation is slow
// under the race detector.
var testKeys struct {
	once          sync.Once
	spKey, spCert []byte
	idpKey        *rsa.PrivateKey
	idpCert       *x509.Certificate
	err           error
}

func makeTestKeys() {
	k := &testKeys
	if k.spKey, k.spCert, k.err = newSPKey(); k.err != nil {
		return
	}
	if k.idpKey, k.err = rsa.GenerateKey(rand.Reader, 2048); k.err != nil {
		return
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test IdP"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.idpKey.PublicKey, k.idpKey)
	if err != nil {
		k.err = err
		return
	}
	k.idpCert, k.err = x509.ParseCertificate(der)
}

// testSPKey is the console's SAML key and certificate in tests.
func testSPKey() ([]byte, []byte, error) {
	testKeys.once.Do(makeTestKeys)
	return testKeys.spKey, testKeys.spCert, testKeys.err
}

// testIdP is crewjam's samlidp in process, on plain HTTP on loopback, as
// the demo IdP (examples/idp) runs, with its administrative API open to
// register the console and users.
type testIdP struct {
	t   testing.TB
	url string
}

func newTestIdP(t testing.TB) *testIdP {
	t.Helper()
	testKeys.once.Do(makeTestKeys)
	if testKeys.err != nil {
		t.Fatal(testKeys.err)
	}
	srv := httptest.NewUnstartedServer(nil)
	i := &testIdP{t: t, url: "http://" + srv.Listener.Addr().String()}
	u, _ := url.Parse(i.url)
	idp, err := samlidp.New(samlidp.Options{URL: *u, Key: testKeys.idpKey, Certificate: testKeys.idpCert,
		Store: &samlidp.MemoryStore{}, Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = idp
	srv.Start()
	t.Cleanup(srv.Close)
	return i
}

// put PUTs body to the IdP's admin API at path (a user's password goes
// hashed at bcrypt's lowest cost: ssosite.IdPPut).
func (i *testIdP) put(path, body string) {
	i.t.Helper()
	ssosite.IdPPut(i.t, i.url, path, body)
}

// trust registers the console's demo tenant at the IdP, from the SP
// metadata the console serves.
func (i *testIdP) trust(c *client) {
	i.t.Helper()
	resp, md := c.get("/saml/" + demoTenant + "/metadata")
	if resp.StatusCode != 200 {
		i.t.Fatalf("SP metadata: %d", resp.StatusCode)
	}
	i.put("/services/"+demoTenant, md)
}

func (i *testIdP) addUser(name, email, password string, groups ...string) {
	i.t.Helper()
	i.put("/users/"+name, `{"name":"`+name+`","password":"`+password+`","email":"`+email+`","common_name":"`+name+` Example","groups":["`+strings.Join(groups, `","`)+`"]}`)
}

func (i *testIdP) metadata() string {
	i.t.Helper()
	resp, err := http.Get(i.url + "/metadata")
	if err != nil {
		i.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// newSSOClient starts a console over TLS whose demo tenant is connected
// to a test IdP with -idp-metadata, and returns a client of it, the IdP
// (which trusts the console) and the owner's password.
func newSSOClient(t *testing.T, clock *testClock) (*client, *testIdP, string) {
	t.Helper()
	idp := newTestIdP(t)
	srv := httptest.NewUnstartedServer(nil)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	con := newTestConsoleWith(t, testOptions(t, srv.URL, clock, idp.url+"/metadata"), &testLog{t})
	srv.Config.Handler = con.app.routes()
	c := newClientOf(t, srv, con)
	idp.trust(c)
	return c, idp, con.password
}

var (
	inputRE  = regexp.MustCompile(`<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"`)
	actionRE = regexp.MustCompile(`<form[^>]*action="([^"]+)"`)
)

// formOf returns a page's form action and fields.
func formOf(t testing.TB, page string) (string, url.Values) {
	t.Helper()
	m := actionRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no form in the page:\n%.2000s", page)
	}
	v := url.Values{}
	for _, in := range inputRE.FindAllStringSubmatch(page, -1) {
		v.Set(in[1], html.UnescapeString(in[2]))
	}
	return html.UnescapeString(m[1]), v
}

// visit sends a request to any site (the IdP) with the browser's cookies.
func (c *client) visit(method, target string, form url.Values) (*http.Response, string) {
	c.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, target, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.c.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

// ssoAnswer starts a sign-in with SSO at the console, signs in at the
// IdP's form (unless the browser is signed in there), and returns the IdP's answer: the ACS URL and the form the
// browser would post there.
func (c *client) ssoAnswer(idp *testIdP, user, password, next string) (string, url.Values) {
	c.t.Helper()
	path := "/saml/" + demoTenant + "/login"
	if next != "" {
		path += "?next=" + url.QueryEscape(next)
	}
	resp, _ := c.startSSO(path)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, idp.url+"/sso?") {
		c.t.Fatalf("GET %s: %d to %q, want a redirect to the IdP", path, resp.StatusCode, loc)
	}
	resp, page := c.visit("GET", loc, nil)
	if resp.StatusCode != 200 {
		c.t.Fatalf("the IdP's sign-in form: %d", resp.StatusCode)
	}
	action, f := formOf(c.t, page)
	if f.Has("SAMLResponse") {
		return action, f // signed in at the IdP already
	}
	f.Set("user", user)
	f.Set("password", password)
	_, page = c.visit("POST", action, f)
	return formOf(c.t, page)
}

// startSSO sends the GET of a link to the SSO start on the console's own
// pages (Sec-Fetch-Site same-origin), which starts the sign-in at once
// (from elsewhere, the GET asks first: ssoConfirm).
func (c *client) startSSO(path string) (*http.Response, string) {
	c.t.Helper()
	return c.do("GET", path, nil, "same-origin")
}

// postFrom posts a form as a browser does from a page of origin: with
// Origin and, unless site is "", Sec-Fetch-Site.
func (c *client) postFrom(origin, site, target string, form url.Values) (*http.Response, string) {
	c.t.Helper()
	req, _ := http.NewRequest("POST", target, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", origin)
	if site != "" {
		req.Header.Set("Sec-Fetch-Site", site)
	}
	resp, err := c.c.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

func cookieNamed(resp *http.Response, name string) *http.Cookie {
	for _, k := range resp.Cookies() {
		if k.Name == name {
			return k
		}
	}
	return nil
}

func ssoFailures(t *testing.T, c *console) []string {
	t.Helper()
	pg, err := c.g.QueryAudit(context.Background(), guard.System("test"), demoTenant, audit.Query{Action: string(audit.SSOFailed)})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range pg.Events {
		out = append(out, e.Reason)
	}
	return out
}

// A user of the IdP signs in to the console by SSO: created just in
// time with the role their group maps to; the IdP's answer is accepted
// once, from the browser that asked, though it comes from the IdP's site.
// SECURITY-CHECKLIST SAML-1 (a session for the NameID, the redirect to
// the tracked return path, and the tracked request consumed: the same
// answer again, from the same browser, is refused) and WEB-3 (the
// binding cookie, which ties the tracked request to the browser, is
// SameSite=None, Secure, HttpOnly, with a Max-Age of at most 180 s, and
// the IdP's cross-site POST completes the sign-in; the cookie jar does
// not enforce SameSite, so that a browser sends the cookie rests on the
// attribute checked here).
func TestSSOSignIn(t *testing.T) {
	c, idp, _ := newSSOClient(t, nil)
	idp.addUser("alice", "Alice@Example.com", "correct horse battery", "admins")

	// The SP metadata, for the IdP.
	resp, md := c.get("/saml/demo/metadata")
	if ct := resp.Header.Get("Content-Type"); ct != "application/samlmetadata+xml" ||
		!strings.Contains(md, `entityID="`+c.srv.URL+`/saml/demo/metadata"`) || !strings.Contains(md, `Location="`+c.srv.URL+`/saml/demo/acs"`) {
		t.Fatalf("SP metadata (%s):\n%s", ct, md)
	}
	// Served for any well-formed tenant ID, so that it tells no one which
	// organisations exist (TestAuditConsole_SAMLMetadataRevealsTenant);
	// a malformed one is not found.
	if resp, md := c.get("/saml/nobody/metadata"); resp.StatusCode != http.StatusOK || !strings.Contains(md, `entityID="`+c.srv.URL+`/saml/nobody/metadata"`) {
		t.Errorf("metadata of a tenant that does not exist: %d", resp.StatusCode)
	}
	if resp, _ := c.get("/saml/" + strings.Repeat("x", 64) + "/metadata"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("metadata of a malformed tenant ID: %d", resp.StatusCode)
	}

	alice := newClientOf(t, c.srv, c.con)
	resp, _ = alice.startSSO("/saml/demo/login?next=%2Faccount")
	b := cookieNamed(resp, bindingCookie)
	if b == nil || !b.Secure || !b.HttpOnly || b.SameSite != http.SameSiteNoneMode || b.Path != "/" || b.MaxAge <= 0 || b.MaxAge > 180 || !validBinding(b.Value) {
		t.Fatalf("binding cookie %+v", b)
	}
	acs, answer := alice.ssoAnswer(idp, "alice", "correct horse battery", "/account")
	if acs != c.srv.URL+"/saml/demo/acs" {
		t.Fatalf("the IdP answers at %q", acs)
	}
	// The IdP's page posts from the IdP's site: accepted.
	resp, _ = alice.postFrom(idp.url, "cross-site", acs, answer)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/account" {
		t.Fatalf("ACS: %d to %q, want a redirect to /account", resp.StatusCode, resp.Header.Get("Location"))
	}
	if k := cookieNamed(resp, bindingCookie); k == nil || k.MaxAge >= 0 {
		t.Errorf("the binding cookie is not cleared after the sign-in: %+v", k)
	}
	code, who := alice.whoami()
	if code != 200 || who.Email != "alice@example.com" || !who.SSO || who.Tenant != demoTenant {
		t.Fatalf("whoami after SSO: %d %+v", code, who)
	}
	if roles, _ := c.con.g.RolesOf(context.Background(), guard.System("test"), demoTenant, "user:"+who.UserID); len(roles) != 1 || roles[0] != rbac.Admin {
		t.Errorf("Alice's roles %v, want admin (group admins)", roles)
	}
	if _, body := alice.get("/account"); !strings.Contains(body, "alice@example.com") {
		t.Error("the account page does not show Alice")
	}

	// The captured answer, posted again, by another browser or the same:
	// refused, with a generic page.
	mallory := newClientOf(t, c.srv, c.con)
	for name, cl := range map[string]*client{"another browser": mallory, "the same browser": alice} {
		resp, body := cl.postFrom(idp.url, "cross-site", acs, answer)
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Single sign-on failed") || strings.Contains(body, "replayed") {
			t.Errorf("replayed answer from %s: %d", name, resp.StatusCode)
		}
	}
	if code, _ := mallory.whoami(); code != http.StatusUnauthorized {
		t.Fatalf("the replayed answer signed another browser in: %d", code)
	}

	// An answer to a login started by another browser (login CSRF) is
	// refused: the binding cookie is not there.
	acs, answer = alice.ssoAnswer(idp, "alice", "correct horse battery", "")
	if resp, _ := mallory.postFrom(idp.url, "cross-site", acs, answer); resp.StatusCode != http.StatusForbidden {
		t.Errorf("an answer delivered to another browser: %d", resp.StatusCode)
	}
	if code, _ := mallory.whoami(); code != http.StatusUnauthorized {
		t.Fatal("login CSRF: another browser was signed in")
	}
	reasons := strings.Join(ssoFailures(t, c.con), ",")
	for _, want := range []string{"binding_mismatch", "request_unknown"} {
		if !strings.Contains(reasons, want) {
			t.Errorf("sso.failed reasons %q lack %s", reasons, want)
		}
	}

	// A user of a domain the connection does not allow is refused.
	idp.addUser("eve", "eve@evil.example", "correct horse battery", "admins")
	eve := newClientOf(t, c.srv, c.con)
	acs, answer = eve.ssoAnswer(idp, "eve", "correct horse battery", "")
	if resp, _ := eve.postFrom(idp.url, "cross-site", acs, answer); resp.StatusCode != http.StatusForbidden {
		t.Errorf("a user of another domain: %d", resp.StatusCode)
	}
}

// validBinding reports whether s has the form newBinding gives.
func validBinding(s string) bool {
	b, err := base64.RawURLEncoding.DecodeString(s)
	return err == nil && len(b) == 32
}

// The binding cookie cannot be planted by another site (SAML login
// CSRF): it is a __Host- cookie, which browsers accept only from the
// console's own host (Path=/, no Domain), so a sibling subdomain cannot
// set it; and a login started in a browser always binds a new value,
// never one the browser presents. Here the victim's browser holds the
// attacker's binding value (as a sibling could plant a cookie without
// the prefix, or a browser blind to prefixes would keep it), starts a
// sign-in with SSO, and is then sent the attacker's own IdP answer
// cross-site: it is refused. SECURITY-CHECKLIST WEB-2, WEB-7.
func TestSSOBindingCookieNotPlantable(t *testing.T) {
	c, idp, _ := newSSOClient(t, nil)
	idp.addUser("mallory", "mallory@example.com", "correct horse battery", "staff")
	mal := newClientOf(t, c.srv, c.con)
	resp, _ := mal.startSSO("/saml/demo/login")
	b := cookieNamed(resp, bindingCookie)
	if b == nil || !strings.HasPrefix(b.Name, "__Host-") || b.Path != "/" || b.Domain != "" || !b.Secure {
		t.Fatalf("binding cookie %+v: want __Host-, Path=/, no Domain, Secure", b)
	}
	acs, answer := mal.ssoAnswer(idp, "mallory", "correct horse battery", "")
	planted := mal.cookie(bindingCookie)

	vic := newClientOf(t, c.srv, c.con)
	u, _ := url.Parse(c.srv.URL)
	vic.c.Jar.SetCookies(u, []*http.Cookie{{Name: bindingCookie, Value: planted, Path: "/", Secure: true, HttpOnly: true}})
	resp, _ = vic.startSSO("/saml/demo/login")
	if k := cookieNamed(resp, bindingCookie); k == nil || k.Value == planted || !validBinding(k.Value) {
		t.Errorf("a login started with a binding value presented keeps it: %+v", k)
	}
	resp, _ = vic.postFrom("https://evil.test", "cross-site", acs, answer)
	if code, w := vic.whoami(); code == http.StatusOK || resp.StatusCode != http.StatusForbidden {
		t.Errorf("the attacker's answer to the victim's ACS: %d; the victim is signed in as %q", resp.StatusCode, w.Email)
	}
}

// Signing out of an SSO session ends it here, then at the IdP, which
// comes back to the console's single logout URL.
func TestSSOSignOut(t *testing.T) {
	c, idp, _ := newSSOClient(t, nil)
	idp.addUser("bob", "bob@example.com", "correct horse battery", "staff")
	bob := newClientOf(t, c.srv, c.con)
	acs, answer := bob.ssoAnswer(idp, "bob", "correct horse battery", "")
	if resp, _ := bob.postFrom(idp.url, "same-site", acs, answer); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("ACS: %d", resp.StatusCode)
	}
	resp, page := bob.post("/logout", url.Values{})
	m := regexp.MustCompile(`<meta http-equiv="refresh" content="0; url=([^"]+)">`).FindStringSubmatch(page)
	if resp.StatusCode != 200 || m == nil || !strings.Contains(page, `id="continue-logout"`) || strings.Contains(page, `id="sign-out"`) {
		t.Fatalf("sign-out of an SSO session: %d\n%.3000s", resp.StatusCode, page)
	}
	if code, _ := bob.whoami(); code != http.StatusUnauthorized {
		t.Fatalf("the session outlived the sign-out: %d", code)
	}
	logout := html.UnescapeString(m[1])
	if !strings.HasPrefix(logout, idp.url+"/slo?SAMLRequest=") {
		t.Fatalf("sent to %q, want the IdP's single logout URL", logout)
	}
	resp, _ = bob.visit("GET", logout, nil)
	back := resp.Header.Get("Location")
	if resp.StatusCode/100 != 3 || !strings.HasPrefix(back, c.srv.URL+"/saml/demo/slo?") {
		t.Fatalf("the IdP's answer: %d to %q", resp.StatusCode, back)
	}
	resp, _ = bob.visit("GET", back, nil)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Fatalf("the console's single logout URL: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if _, body := bob.get("/login"); !strings.Contains(body, "Signed out, at your identity provider too.") {
		t.Error("no message after the single logout")
	}
	// The answer is accepted once.
	if resp, _ := bob.visit("GET", back, nil); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("the IdP's logout answer again: %d", resp.StatusCode)
	}
}

// The IdP's answer to a sign-out (its LogoutResponse, a GET of
// /saml/{tenant}/slo) is bound to the browser that signed out: a user who
// signs out of their own SSO session and sends the IdP's answer to
// someone else, as a link opened cross-site, does not sign that browser
// out (logout CSRF; SECURITY-CHECKLIST WEB-5, WEB-6).
func TestSSOSignOutAnswerBoundToBrowser(t *testing.T) {
	c, _, bob := ownerAndSSOBob(t)
	_, page := bob.post("/logout", url.Values{})
	m := regexp.MustCompile(`<meta http-equiv="refresh" content="0; url=([^"]+)">`).FindStringSubmatch(page)
	if m == nil {
		t.Fatal("no step to the IdP after signing out")
	}
	resp, _ := bob.visit("GET", html.UnescapeString(m[1]), nil)
	back := resp.Header.Get("Location")
	if !strings.HasPrefix(back, c.srv.URL+"/saml/demo/slo?") {
		t.Fatalf("the IdP's answer goes to %q", back)
	}
	// Bob sends it to the owner, whose browser opens it.
	resp, _ = c.do("GET", strings.TrimPrefix(back, c.srv.URL), nil, "cross-site")
	if k := cookieNamed(resp, sessionCookie); k != nil {
		t.Errorf("the answer to Bob's sign-out, opened by the owner's browser, sets its session cookie: %v", k)
	}
	if code, _ := c.whoami(); code != http.StatusOK {
		t.Errorf("the answer to Bob's sign-out, opened by the owner's browser (%d to %q), signed the owner out: whoami %d",
			resp.StatusCode, resp.Header.Get("Location"), code)
	}
	if f := flashAfter(c, resp); strings.Contains(f, "Signed out") {
		t.Errorf("the owner's browser is told %q", f)
	}
}

// The ACS takes the IdP's cross-site POST; every other POST, the SAML
// routes included, still refuses one.
// SECURITY-CHECKLIST WEB-7.
func TestSSOCrossOrigin(t *testing.T) {
	c, idp, password := newSSOClient(t, nil)
	c.signInAdmin(ownerEmail, password)
	for _, site := range []string{"cross-site", "same-site", ""} { // "": a browser that sends Origin only
		resp, body := c.postFrom(idp.url, site, c.srv.URL+"/saml/demo/acs", url.Values{"SAMLResponse": {"x"}})
		if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Single sign-on failed") {
			t.Errorf("ACS, Sec-Fetch-Site %q: %d, want Guard's refusal, not the cross-origin one", site, resp.StatusCode)
		}
		for _, path := range []string{"/login", "/logout", "/saml/demo/slo", "/saml/demo/login", "/saml/demo/acs/", "/saml/demo/metadata",
			"/security", "/security/sso", "/security/sso/delete", "/security/sso/require", "/users", "/keys", "/reauth"} {
			resp, body := c.postFrom(idp.url, site, c.srv.URL+path, url.Values{"x": {"1"}})
			if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "Request refused") {
				t.Errorf("POST %s from the IdP's site (Sec-Fetch-Site %q): %d, want the cross-origin refusal", path, site, resp.StatusCode)
			}
		}
	}
	if code, _ := c.whoami(); code != 200 {
		t.Fatal("a cross-site POST signed the owner out")
	}
}

// Require SSO, as an owner: the counts first, then password sign-in is
// refused to everyone but the break-glass owner; the connection form
// and its refusals.
func TestRequireSSO(t *testing.T) {
	clock := &testClock{}
	c, idp, password := newSSOClientAdminMFAOff(t, clock)
	c.signIn(ownerEmail, password)
	_, who := c.whoami()
	resp, _ := c.post("/users", url.Values{"email": {"sam@demo.example"}, "name": {"Sam Staff"}, "role": {"member"}, "password": {"plum tree on the hill 42"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("create user: %d", resp.StatusCode)
	}

	_, page := c.get("/security/sso")
	for _, want := range []string{
		`id="sp-entity-id">` + c.srv.URL + `/saml/demo/metadata<`, `id="sp-acs">` + c.srv.URL + `/saml/demo/acs<`,
		`id="idp-entity-id">` + idp.url + `/metadata<`, `<code>admins</code></td><td>→ <span class="badge">admin</span>`,
		`id="allowed-domains">example.com<`, `id="jit"><span class="badge ok">`, `id="connection-form"`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("the SSO page lacks %s", want)
		}
	}
	if _, sec := c.get("/security"); !strings.Contains(sec, `id="sso-idp">`+idp.url+`/metadata<`) {
		t.Error("the security page does not name the IdP")
	}
	version := field(t, page, "version")

	// Turning it on shows who signs in with a password first.
	form := url.Values{"version": {version}, "require_sso": {"on"}, "break_glass": {who.UserID}}
	resp, page = c.post("/security/sso/require", form)
	if resp.StatusCode != 200 || !strings.Contains(page, `id="confirm-sso"`) {
		t.Fatalf("require SSO: %d, no confirmation step", resp.StatusCode)
	}
	// The owner is the break-glass owner. Sam, who has a password, and the
	// demo's invited users (no password, but they never signed in through
	// the IdP, so they are not on SSO) would lose access.
	if !strings.Contains(page, `id="password-users">4<`) || !strings.Contains(page, "sam@demo.example") ||
		!strings.Contains(page, "max@demo.example") || strings.Contains(page, ownerEmail+"</span></li>") || !strings.Contains(page, `id="break-glass-named"`) {
		t.Errorf("confirmation step:\n%s", page)
	}
	form.Set("confirm", "yes")
	// Break-glass sign-in takes a second factor the owner already has:
	// none yet, so the switch is refused, and the page says why.
	resp, _ = c.post("/security/sso/require", form)
	if _, page = c.get(resp.Header.Get("Location")); !strings.Contains(page, "The break-glass owner has no second factor yet") {
		t.Fatalf("require SSO with a break-glass owner without a second factor: the page does not say why:\n%s", page)
	}
	const phone = "+447700900123"
	_, body := c.post("/account/mfa/oob", url.Values{"kind": {"sms"}, "destination": {phone}})
	if resp, _ := c.post("/account/mfa/confirm", url.Values{"factor": {field(t, body, "factor")}, "code": {smsCode(t, c.con, phone)}}); resp.StatusCode != 200 {
		t.Fatalf("the owner's SMS factor: %d", resp.StatusCode)
	}
	// A sign-in waiting for its second factor when SSO becomes required
	// (started before, so not as the break-glass owner) ends there.
	early := newClientOf(t, c.srv, c.con)
	if resp := early.signIn(ownerEmail, password); resp.Header.Get("Location") != "/login/mfa" {
		t.Fatalf("a sign-in before SSO is required went to %q", resp.Header.Get("Location"))
	}
	smsFactor := field(t, body, "factor")
	clock.Advance(time.Minute) // past the resend cool-down
	if resp, _ := early.post("/login/mfa/send", url.Values{"factor": {smsFactor}}); resp.StatusCode != 200 {
		t.Fatalf("send: %d", resp.StatusCode)
	}
	resp, _ = c.post("/security/sso/require", form)
	if _, page = c.get(resp.Header.Get("Location")); !strings.Contains(page, "Single sign-on is required") {
		t.Fatal("require SSO not confirmed")
	}
	resp, page = early.post("/login/mfa", url.Values{"method": {"code"}, "code": {smsCode(t, c.con, phone)}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, html.EscapeString(`requires single sign-on: use "Sign in with SSO"`)) {
		t.Errorf("the second factor of a sign-in started before SSO was required: %d\n%s", resp.StatusCode, page)
	}
	if code, _ := early.whoami(); code != http.StatusUnauthorized {
		t.Error("the sign-in started before SSO was required got a session")
	}
	if k := cookieNamed(resp, pendingCookie); k == nil || k.MaxAge >= 0 {
		t.Error("the pending sign-in's cookie was not cleared")
	}

	sam := newClientOf(t, c.srv, c.con)
	resp, page = sam.post("/login", url.Values{"tenant": {demoTenant}, "email": {"sam@demo.example"}, "password": {"plum tree on the hill 42"}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "requires single sign-on") {
		t.Errorf("password sign-in with SSO required: %d", resp.StatusCode)
	}
	if code, _ := sam.whoami(); code != http.StatusUnauthorized {
		t.Fatal("Sam signed in with a password")
	}
	// A wrong password gets the same answer: it confirms no guess.
	if resp, page := sam.post("/login", url.Values{"tenant": {demoTenant}, "email": {"sam@demo.example"}, "password": {"wrong wrong wrong"}}); resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "requires single sign-on") {
		t.Errorf("a wrong password with SSO required: %d, not answered as the right one", resp.StatusCode)
	}
	// The break-glass owner signs in with a password and the second
	// factor they have.
	owner2 := newClientOf(t, c.srv, c.con)
	if resp := owner2.signIn(ownerEmail, password); resp.Header.Get("Location") != "/login/mfa" {
		t.Errorf("break-glass sign-in went to %q, want /login/mfa", resp.Header.Get("Location"))
	}

	ok := func(path string, form url.Values, want string) {
		t.Helper()
		resp, _ := c.post(path, form)
		_, body := c.get(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusSeeOther || !strings.Contains(body, html.EscapeString(want)) {
			t.Errorf("POST %s: %d, the page lacks %q", path, resp.StatusCode, want)
		}
	}
	ok("/security/sso/delete", url.Values{}, "Require SSO is on: turn it off before removing the IdP.")
	_, page = c.get("/security/sso")
	ok("/security/sso/require", url.Values{"version": {field(t, page, "version")}, "break_glass": {who.UserID}}, "no longer required")
	if resp := sam.signIn("sam@demo.example", "plum tree on the hill 42"); resp.StatusCode != http.StatusSeeOther {
		t.Errorf("password sign-in once SSO is no longer required: %d", resp.StatusCode)
	}

	// The connection form: pasted XML, the mapping and its refusals.
	md := idp.metadata()
	ok("/security/sso", url.Values{"metadata_xml": {md}, "group_roles": {"admins = manager\nCN=Staff,OU=Groups = member"}, "domains": {"Example.com, demo.example"},
		"default_role": {"reports-only"}, "jit": {"on"}}, "Connected to "+idp.url+"/metadata.")
	_, page = c.get("/security/sso")
	for _, want := range []string{"uploaded as XML", `<code>CN=Staff,OU=Groups</code></td><td>→ <span class="badge">member</span>`,
		`id="allowed-domains">example.com, demo.example<`, `id="default-role"><span class="badge">reports-only</span>`} {
		if !strings.Contains(page, want) {
			t.Errorf("after the change, the SSO page lacks %s", want)
		}
	}
	refusedForm(t, c, url.Values{"group_roles": {"admins = nosuchrole"}}, `There is no role "nosuchrole"`)
	refusedForm(t, c, url.Values{"group_roles": {"admins = owner"}}, "No group may be mapped to owner")
	refusedForm(t, c, url.Values{"group_roles": {"admins = admin\nstaff = member\n admins= member"}}, `The group "admins" is on more than one line`)
	refusedForm(t, c, url.Values{"metadata_xml": {"<nope"}}, "The metadata is not well-formed XML.")
	refusedForm(t, c, url.Values{"metadata_url": {"https://idp.example/md"}, "metadata_xml": {md}}, "not both")
	refusedForm(t, c, url.Values{"metadata_url": {"ftp://idp.example/md"}}, "The metadata URL must be an absolute https URL.")
	refusedForm(t, c, url.Values{"metadata_url": {idp.url + "/nothing-here"}}, "could not be fetched from that URL (it answered with status 404)")
	refusedForm(t, c, url.Values{"domains": {"not a domain!"}}, "The list of allowed domains has an entry that is not a domain name.")

	// An SSO admin sees the page but may not change it: owners only.
	idp.addUser("alice", "alice@example.com", "correct horse battery", "admins")
	alice := newClientOf(t, c.srv, c.con)
	acs, answer := alice.ssoAnswer(idp, "alice", "correct horse battery", "")
	alice.postFrom(idp.url, "cross-site", acs, answer)
	if resp, page := alice.get("/security/sso"); resp.StatusCode != 200 || !strings.Contains(page, "Only an owner can connect") || strings.Contains(page, `id="connection-form"`) {
		t.Errorf("an admin on the SSO page: %d", resp.StatusCode)
	}
	if resp, _ := alice.post("/security/sso", url.Values{"metadata_xml": {md}}); resp.StatusCode != http.StatusForbidden {
		t.Errorf("an admin changing the IdP: %d, want 403", resp.StatusCode)
	}
	// Without a password, Alice confirms her identity at the IdP.
	if _, page := alice.get("/reauth?next=%2Fsecurity"); !strings.Contains(page, `href="/saml/demo/login?force=1&amp;next=%2fsecurity" id="reauth-sso"`) || strings.Contains(page, `id="reauth-password"`) {
		t.Errorf("the step-up page of an SSO user:\n%s", page)
	}

	// An old sign-in must be confirmed first.
	clock.Advance(16 * time.Minute)
	resp, stepUp := c.post("/security/sso", url.Values{"jit": {"on"}})
	if resp.StatusCode != http.StatusOK || !strings.Contains(stepUp, `id="reauth-password"`) || !strings.Contains(stepUp, `name="next" value="/security/sso"`) {
		t.Errorf("an old sign-in changing the IdP: %d to %q, want the step-up page", resp.StatusCode, resp.Header.Get("Location"))
	}
	ok("/reauth", url.Values{"password": {password}, "next": {"/security/sso"}}, "Identity confirmed")
	ok("/security/sso/delete", url.Values{}, "disconnected")
	if _, page := c.get("/security/sso"); !strings.Contains(page, `id="no-idp"`) {
		t.Error("the IdP is still shown")
	}
	ok("/security/sso/require", url.Values{"version": {field(t, page, "version")}, "require_sso": {"on"}}, "Connect your identity provider before requiring single sign-on.")
	resp, page = c.startSSO("/saml/demo/login")
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(page, "not set up") {
		t.Errorf("sign in with SSO without an IdP: %d", resp.StatusCode)
	}
}

// syncBuffer is the output of a console running in the background.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// waitFor waits until the output matches re and returns the first group.
func (s *syncBuffer) waitFor(t *testing.T, re string, done <-chan error) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) {
		if m := rx.FindStringSubmatch(s.String()); m != nil {
			return m[len(m)-1]
		}
		select {
		case err := <-done:
			t.Fatalf("the console stopped: %v\n%s", err, s)
		case <-time.After(20 * time.Millisecond):
		}
	}
	t.Fatalf("no %q in the output:\n%s", re, s)
	return ""
}

// The command as `go run ./examples/server -memory -idp-metadata FILE`
// starts it: the demo tenant signs in through the IdP of the file.
func TestStartWithIdPMetadataFile(t *testing.T) {
	idp := newTestIdP(t)
	file := filepath.Join(t.TempDir(), "idp.xml")
	if err := os.WriteFile(file, []byte(idp.metadata()), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-memory", "-addr", "127.0.0.1:0", "-idp-metadata", file}, out) }()
	base := out.waitFor(t, `Guard evaluation console: (http://127\.0\.0\.1:\d+)/`, done)
	if !strings.Contains(out.String(), `tenant "demo" signs in through the IdP `+idp.url+`/metadata (metadata from `+file+`)`) {
		t.Errorf("the IdP is not announced:\n%s", out)
	}
	if strings.Contains(out.String(), "AllowInsecureMetadata") {
		t.Error("metadata from a file allowed insecure metadata URLs")
	}
	resp, err := http.Get(base + "/saml/demo/metadata")
	if err != nil {
		t.Fatal(err)
	}
	md, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(md), `entityID="`+base+`/saml/demo/metadata"`) {
		t.Fatalf("SP metadata: %s\n%s", resp.Status, md)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	req, _ := http.NewRequest("GET", base+"/saml/demo/login", nil)
	req.Header.Set("Sec-Fetch-Site", "same-origin") // the sign-in page's link
	req.Header.Set("Sec-Fetch-Mode", "navigate")
	resp, err = noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !strings.HasPrefix(resp.Header.Get("Location"), idp.url+"/sso?SAMLRequest=") {
		t.Errorf("sign in with SSO goes to %q", resp.Header.Get("Location"))
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := run(context.Background(), []string{"-idp-metadata", filepath.Join(t.TempDir(), "missing.xml"), "-memory", "-addr", "127.0.0.1:0"}, io.Discard); err == nil ||
		!strings.Contains(err.Error(), "-idp-metadata") {
		t.Errorf("a missing metadata file: %v", err)
	}
}

// The IdP may start after the console: its metadata URL is tried again
// until it answers. A loopback URL allows plain-HTTP metadata, and says so.
func TestIdPStartsLater(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there yet
	out := &syncBuffer{}
	con := newTestConsoleWith(t, testOptions(t, "https://console.test", nil, "http://"+addr+"/metadata"), out)
	if !strings.Contains(out.String(), "AllowInsecureMetadata") || !strings.Contains(out.String(), "cannot be fetched yet") {
		t.Fatalf("start-up log:\n%s", out)
	}
	ln, err = net.Listen("tcp", addr)
	if err != nil {
		t.Skipf("the port was taken meanwhile: %v", err)
	}
	srv := httptest.NewUnstartedServer(nil)
	srv.Listener.Close()
	srv.Listener = ln
	u, _ := url.Parse("http://" + addr)
	testKeys.once.Do(makeTestKeys)
	idp, err := samlidp.New(samlidp.Options{URL: *u, Key: testKeys.idpKey, Certificate: testKeys.idpCert, Store: &samlidp.MemoryStore{}, Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	srv.Config.Handler = idp
	srv.Start()
	defer srv.Close()
	out.waitFor(t, `(signs in through the IdP http://`+regexp.QuoteMeta(addr)+`/metadata)`, nil)
	// An IdP that answers, but not with metadata, stops the start.
	if _, err := newConsole(context.Background(), testOptions(t, "https://console.test", nil, "http://"+addr+"/nothing-here"), io.Discard); err == nil ||
		!strings.Contains(err.Error(), "status 404") {
		t.Errorf("metadata URL answering 404: %v", err)
	}
	c, err := con.g.SSOConnection(context.Background(), guard.System("test"), demoTenant)
	if err != nil || !c.JIT || c.GroupRoles["admins"] != rbac.Admin || c.DefaultRole != rbac.Member || strings.Join(c.AllowedDomains, ",") != "example.com" {
		t.Fatalf("connection %+v, %v", c, err)
	}
}

// The SP key is made once and kept in the key file: a restarted console
// publishes the certificate the IdP already trusts; a key file from
// before SSO gets one, its other keys unchanged.
func TestSPKeyKept(t *testing.T) {
	dir := t.TempDir()
	o := testOptions(t, "https://console.test", nil, "")
	o.db = filepath.Join(dir, "guard.db")
	calls := 0
	o.newSPKey = func() ([]byte, []byte, error) { calls++; return testSPKey() }
	first, err := newConsole(context.Background(), o, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	md1, _ := first.g.SSOMetadata(demoTenant)
	first.Close()
	second := newTestConsoleWith(t, o, nil)
	md2, _ := second.g.SSOMetadata(demoTenant)
	if calls != 1 || !bytes.Equal(md1, md2) {
		t.Errorf("the SP key was made %d times; metadata unchanged: %v", calls, bytes.Equal(md1, md2))
	}
	if fi, err := os.Stat(o.db + ".keys"); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v %v", fi, err)
	}

	old := filepath.Join(dir, "old.keys")
	os.WriteFile(old, []byte(`{"audit":"`+strings.Repeat("A", 43)+`=","mfa":"`+strings.Repeat("B", 43)+`="}`), 0o600)
	s, created, err := loadSecrets(old, holdsData, testSPKey)
	if err != nil || len(created) != 1 || !strings.Contains(created[0], "SAML") || s.Audit[0] != 0 || s.MFA[0] != 4 {
		t.Fatalf("upgrade: %v %v %v", s.Audit[:1], created, err)
	}
	again, created, err := loadSecrets(old, holdsData, func() ([]byte, []byte, error) { return nil, nil, errors.New("made again") })
	if err != nil || len(created) != 0 || !bytes.Equal(again.SAMLCert, s.SAMLCert) || !bytes.Equal(again.Audit, s.Audit) {
		t.Fatalf("after the upgrade: %v %v", created, err)
	}
	if _, _, err := again.serviceProvider(); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(old, []byte(`{"audit":"`+strings.Repeat("A", 43)+`=","mfa":"`+strings.Repeat("B", 43)+`=","saml_key":"AAAA"}`), 0o600)
	if _, _, err := loadSecrets(old, holdsData, testSPKey); err == nil {
		t.Error("a key file with a key and no certificate was accepted")
	}
}

// holdsData is loadSecrets's fresh for a database that holds data: the
// key file must exist.
func holdsData() (bool, error) { return false, nil }

// The SAML routes without an IdP connection, and the sign-in page's link.
func TestSSOWithoutIdP(t *testing.T) {
	c, _ := newClient(t)
	_, page := c.get("/login?next=%2Fusers")
	if !strings.Contains(page, `href="/saml/demo/login?next=%2fusers" id="sso"`) {
		t.Errorf("the sign-in page's SSO link:\n%s", page)
	}
	resp, page := c.startSSO("/saml/demo/login")
	if resp.StatusCode != http.StatusNotFound || !strings.Contains(page, "Single sign-on is not set up") {
		t.Errorf("sign in with SSO without an IdP: %d", resp.StatusCode)
	}
	if resp, _ := c.startSSO("/saml/nobody/login"); resp.StatusCode != http.StatusNotFound {
		t.Errorf("sign in with SSO to no tenant: %d", resp.StatusCode)
	}
	if resp, _ := c.get("/saml/demo/slo?SAMLResponse=x"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("single logout without an IdP: %d", resp.StatusCode)
	}
	// No such organisation: answered as one without an IdP (not a 503,
	// nor anything that tells which organisations exist).
	if resp, _ := c.get("/saml/nobody/slo?SAMLResponse=x"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("single logout of no tenant: %d", resp.StatusCode)
	}
}

// An IdP that takes AuthnRequests by HTTP-POST only: the console serves
// the page that posts the request there, with a policy of its own that
// lets it (and only it) post to the IdP.
func TestSSOPostBindingIdP(t *testing.T) {
	c, idp, password := newSSOClient(t, nil)
	c.signInAdmin(ownerEmail, password)
	md := regexp.MustCompile(`<SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"[^>]*>(</SingleSignOnService>)?`).ReplaceAllString(idp.metadata(), "")
	if !strings.Contains(md, "HTTP-POST") || strings.Contains(md, `SingleSignOnService Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect"`) {
		t.Fatalf("metadata:\n%s", md)
	}
	if resp, _ := c.post("/security/sso", url.Values{"metadata_xml": {md}, "jit": {"on"}, "group_roles": {"staff = member"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("connection: %d", resp.StatusCode)
	}
	anon := newClientOf(t, c.srv, c.con)
	resp, page := anon.startSSO("/saml/demo/login?next=//evil.test")
	csp := resp.Header.Get("Content-Security-Policy")
	nonce := regexp.MustCompile(`script-src 'nonce-([A-Za-z0-9_-]+)'`).FindStringSubmatch(csp)
	if resp.StatusCode != 200 || nonce == nil || !strings.Contains(csp, "form-action "+idp.url+";") || !strings.Contains(csp, "frame-ancestors 'none'") {
		t.Fatalf("POST binding: %d, CSP %q", resp.StatusCode, csp)
	}
	action, f := formOf(t, page)
	if action != idp.url+"/sso" || f.Get("SAMLRequest") == "" || !strings.Contains(page, `<script nonce="`+nonce[1]+`">`) || cookieNamed(resp, bindingCookie) == nil {
		t.Fatalf("the page that posts the request:\n%s", page)
	}
	idp.addUser("bob", "bob@example.com", "correct horse battery", "staff")
	_, page = anon.visit("POST", action, f)
	action, f = formOf(t, page)
	f.Set("user", "bob")
	f.Set("password", "correct horse battery")
	_, page = anon.visit("POST", action, f)
	acs, answer := formOf(t, page)
	resp, _ = anon.postFrom(idp.url, "cross-site", acs, answer)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("ACS: %d to %q (an unsafe next must become /)", resp.StatusCode, resp.Header.Get("Location"))
	}
	if code, who := anon.whoami(); code != 200 || who.Email != "bob@example.com" {
		t.Fatalf("whoami: %d %+v", code, who)
	}
}

// SAML-48: the connection form takes the certificate the IdP's metadata
// must be signed with. Unsigned metadata, pasted or fetched, is then
// refused with a sentence the owner can act on; signed metadata is
// accepted and the page says signatures are required; emptying the field
// turns the check off again. The audit event records the choice.
func TestSSOMetadataSigningCertificate(t *testing.T) {
	clock := &testClock{}
	c, idp, password := newSSOClient(t, clock)
	c.signInAdmin(ownerEmail, password)
	_, page := c.get("/security/sso")
	if !strings.Contains(page, `id="metadata-signing-certs"`) || !strings.Contains(page, `id="metadata-signature"><span class="badge off">not checked`) {
		t.Fatalf("the SSO page lacks the metadata signing certificate field or state:\n%.3000s", page)
	}

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(3), Subject: pkix.Name{CommonName: "federation metadata signer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	certPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
	md := idp.metadata()
	doc := etree.NewDocument()
	if err := doc.ReadFromString(md); err != nil {
		t.Fatal(err)
	}
	sc := dsig.NewDefaultSigningContext(dsig.TLSCertKeyStore(tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: cert}))
	sc.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	root, err := sc.SignEnveloped(doc.Root())
	if err != nil {
		t.Fatal(err)
	}
	doc.SetRoot(root)
	signed, _ := doc.WriteToString()

	ok := func(form url.Values, want string) string {
		t.Helper()
		resp, _ := c.post("/security/sso", form)
		_, body := c.get(resp.Header.Get("Location"))
		if resp.StatusCode != http.StatusSeeOther || !strings.Contains(body, html.EscapeString(want)) {
			t.Errorf("POST /security/sso: %d, the page lacks %q", resp.StatusCode, want)
		}
		return body
	}
	refusedForm(t, c, url.Values{"metadata_xml": {md}, "metadata_signing_certs": {certPEM}, "jit": {"on"}},
		"The metadata is not signed, and the connection requires signed metadata.")
	refusedForm(t, c, url.Values{"metadata_url": {idp.url + "/metadata"}, "metadata_signing_certs": {certPEM}, "jit": {"on"}},
		"The metadata is not signed, and the connection requires signed metadata.")
	refusedForm(t, c, url.Values{"metadata_xml": {signed}, "metadata_signing_certs": {"not a certificate"}}, "Paste the metadata signing certificate as PEM")
	refusedForm(t, c, url.Values{"metadata_xml": {signed}, "metadata_signing_certs": {strings.Replace(certPEM, "MII", "MIX", 1)}},
		"The metadata signing certificate has a certificate that cannot be parsed.")
	tampered := strings.Replace(signed, idp.url+"/sso", "https://evil.example/sso", 1)
	refusedForm(t, c, url.Values{"metadata_xml": {tampered}, "metadata_signing_certs": {certPEM}}, "The metadata has a signature that does not verify")

	page = ok(url.Values{"metadata_xml": {signed}, "metadata_signing_certs": {"\r\n" + certPEM + "\n"}, "jit": {"on"}}, "Connected to "+idp.url+"/metadata.")
	if !strings.Contains(page, `id="metadata-signature"><span class="badge ok">required`) || !strings.Contains(page, certPEM[:60]) ||
		!strings.Contains(page, `id="idp-entity-id">`+idp.url+`/metadata<`) {
		t.Errorf("after requiring signed metadata, the SSO page:\n%.4000s", page)
	}
	conn, err := c.con.g.SSOConnection(t.Context(), guard.System("test"), demoTenant)
	if err != nil || len(conn.MetadataSigningCertificates) != 1 || conn.MetadataSigningCertificates[0] != certPEM {
		t.Errorf("stored MetadataSigningCertificates = %q, %v", conn.MetadataSigningCertificates, err)
	}
	// Saving the form as shown (the certificate field prefilled) keeps
	// the requirement and the metadata.
	_, page = c.get("/security/sso")
	prefilled := html.UnescapeString(regexp.MustCompile(`(?s)id="metadata-signing-certs"[^>]*>(.*?)</textarea>`).FindStringSubmatch(page)[1])
	ok(url.Values{"metadata_signing_certs": {prefilled}, "jit": {"on"}}, "Connected to "+idp.url+"/metadata.")
	if conn, _ := c.con.g.SSOConnection(t.Context(), guard.System("test"), demoTenant); len(conn.MetadataSigningCertificates) != 1 || conn.Metadata != signed {
		t.Errorf("saving the form as shown changed the connection: %d certificates", len(conn.MetadataSigningCertificates))
	}

	// Emptied, the check is off: unsigned metadata is accepted again.
	page = ok(url.Values{"metadata_xml": {md}, "jit": {"on"}}, "Connected to "+idp.url+"/metadata.")
	if !strings.Contains(page, `id="metadata-signature"><span class="badge off">not checked`) {
		t.Error("after emptying the certificate field, signatures are still shown as required")
	}

	ev, err := c.con.g.QueryAudit(t.Context(), guard.System("test"), demoTenant, audit.Query{Action: string(audit.SSOConfigured)})
	if err != nil {
		t.Fatal(err)
	}
	var signedEvents, unsignedEvents int
	for _, e := range ev.Events {
		switch e.Meta["metadata_signed"] {
		case "true":
			signedEvents++
		case "false":
			unsignedEvents++
		}
	}
	if signedEvents != 2 || unsignedEvents < 1 {
		t.Errorf("sso.configured events: %d with metadata_signed=true, %d false", signedEvents, unsignedEvents)
	}
}

// ownerAndSSOBob returns the owner's browser, signed in with the password,
// the IdP, and Bob's browser, signed in through the IdP.
func ownerAndSSOBob(t *testing.T) (c *client, idp *testIdP, bob *client) {
	t.Helper()
	c, idp, password := newSSOClient(t, nil)
	if resp := c.signIn(ownerEmail, password); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("owner's sign-in: %d", resp.StatusCode)
	}
	idp.addUser("bob", "bob@example.com", "correct horse battery", "staff")
	bob = newClientOf(t, c.srv, c.con)
	acs, answer := bob.ssoAnswer(idp, "bob", "correct horse battery", "")
	if resp, _ := bob.postFrom(idp.url, "same-site", acs, answer); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("ACS: %d", resp.StatusCode)
	}
	return c, idp, bob
}

// signedRedirectLogout returns the URL of an IdP's LogoutRequest for
// nameID to the console's single-logout route, in the HTTP-Redirect
// binding, signed with the test IdP's key.
func signedRedirectLogout(t *testing.T, c *client, idp *testIdP, nameID string) string {
	t.Helper()
	lr := &saml.LogoutRequest{ID: "id-" + strings.Repeat("a", 32), Version: "2.0", IssueInstant: time.Now().UTC(),
		Destination: c.srv.URL + "/saml/demo/slo", Issuer: &saml.Issuer{Value: idp.url + "/metadata"},
		NameID: &saml.NameID{Value: nameID, Format: "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"}}
	doc := etree.NewDocument()
	doc.SetRoot(lr.Element())
	raw, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.DefaultCompression)
	w.Write(raw)
	w.Close()
	signed := "SAMLRequest=" + url.QueryEscape(base64.StdEncoding.EncodeToString(b.Bytes())) +
		"&SigAlg=" + url.QueryEscape("http://www.w3.org/2001/04/xmldsig-more#rsa-sha256")
	sum := sha256.Sum256([]byte(signed))
	sig, err := rsa.SignPKCS1v15(rand.Reader, testKeys.idpKey, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return "/saml/demo/slo?" + signed + "&Signature=" + url.QueryEscape(base64.StdEncoding.EncodeToString(sig))
}

// The IdP's own LogoutRequest ends the sessions of the user it names; a
// browser that brings one naming another user (anyone may forward a
// signed request they received) keeps its session and its cookie.
// SECURITY-CHECKLIST WEB-6.
func TestIdPLogoutRequestLeavesOtherBrowsers(t *testing.T) {
	c, idp, bob := ownerAndSSOBob(t)
	resp, body := c.do("GET", signedRedirectLogout(t, c, idp, "bob@example.com"), nil, "cross-site")
	if resp.StatusCode/100 != 3 {
		t.Fatalf("the IdP's LogoutRequest: %d\n%.500s", resp.StatusCode, body)
	}
	if k := cookieNamed(resp, sessionCookie); k != nil {
		t.Errorf("a LogoutRequest naming Bob, brought by the owner's browser, sets its session cookie: %v", k)
	}
	if code, _ := c.whoami(); code != http.StatusOK {
		t.Errorf("the owner's browser, bringing a LogoutRequest naming Bob: whoami %d", code)
	}
	if code, _ := bob.whoami(); code != http.StatusUnauthorized {
		t.Errorf("Bob's browser after the IdP's LogoutRequest naming him: whoami %d, want 401", code)
	}
}

// refusedForm posts the SSO connection form, which Guard or the console
// refuses: the page shows it again (400) with the reason want.
func refusedForm(t *testing.T, c *client, form url.Values, want string) {
	t.Helper()
	resp, body := c.post("/security/sso", form)
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, html.EscapeString(want)) {
		t.Errorf("POST /security/sso: %d, the page lacks %q", resp.StatusCode, want)
	}
}
