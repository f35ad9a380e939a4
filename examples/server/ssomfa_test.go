package main

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"encoding/xml"
	"html"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlidp"

	guard "github.com/guardhq/guard"
)

// classMFA is the AuthnContextClassRef with which the test IdP reports a
// sign-in with two steps.
const classMFA = "urn:oasis:names:tc:SAML:2.0:ac:classes:MultiFactor"

// mfaOnRequest is an IdP that signs the user in with two steps when the
// AuthnRequest asks for classMFA (as an IdP that then prompts for its
// second factor does), and with a password otherwise.
type mfaOnRequest struct{}

func (mfaOnRequest) MakeAssertion(req *saml.IdpAuthnRequest, s *saml.Session) error {
	if rac := req.Request.RequestedAuthnContext; rac != nil && slices.Contains(rac.ClassRefs(), classMFA) {
		two := *s
		two.AuthnContextClassRef = classMFA
		s = &two
	}
	return saml.DefaultAssertionMaker{}.MakeAssertion(req, s)
}

// newSSOMFAClient is newSSOClient with an IdP that does two steps when
// asked (mfaOnRequest).
func newSSOMFAClient(t *testing.T) (*client, *testIdP) {
	t.Helper()
	testKeys.once.Do(makeTestKeys)
	if testKeys.err != nil {
		t.Fatal(testKeys.err)
	}
	isrv := httptest.NewUnstartedServer(nil)
	idp := &testIdP{t: t, url: "http://" + isrv.Listener.Addr().String()}
	u, _ := url.Parse(idp.url)
	sidp, err := samlidp.New(samlidp.Options{URL: *u, Key: testKeys.idpKey, Certificate: testKeys.idpCert,
		Store: &samlidp.MemoryStore{}, Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	sidp.IDP.AssertionMaker = mfaOnRequest{}
	isrv.Config.Handler = sidp
	isrv.Start()
	t.Cleanup(isrv.Close)

	srv := httptest.NewUnstartedServer(nil)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	con := newTestConsoleWith(t, testOptions(t, srv.URL, nil, idp.url+"/metadata"), &testLog{t})
	srv.Config.Handler = con.app.routes()
	c := newClientOf(t, srv, con)
	idp.trust(c)
	return c, idp
}

// setMFAContexts sets the demo tenant's trusted multi-factor contexts, as
// the host.
func setMFAContexts(t *testing.T, c *client, refs ...string) {
	t.Helper()
	sys := guard.System("test")
	conn, err := c.con.g.SSOConnection(t.Context(), sys, demoTenant)
	if err != nil {
		t.Fatal(err)
	}
	conn.MFAAuthnContexts = refs
	if _, err := c.con.g.SetSSOConnection(t.Context(), sys, conn); err != nil {
		t.Fatal(err)
	}
}

// ssoSignIn signs the browser in through the IdP from the console's login
// path and returns where the ACS sends it. It fails the test unless the
// AuthnRequest asks for two steps exactly when mfa is set.
func (c *client) ssoSignIn(idp *testIdP, path, user, password string, mfa bool) string {
	c.t.Helper()
	resp, _ := c.startSSO(path)
	loc := resp.Header.Get("Location")
	if resp.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, idp.url+"/sso?") {
		c.t.Fatalf("GET %s: %d to %q, want a redirect to the IdP", path, resp.StatusCode, loc)
	}
	lu, _ := url.Parse(loc)
	raw, _ := base64.StdEncoding.DecodeString(lu.Query().Get("SAMLRequest"))
	doc, err := io.ReadAll(flate.NewReader(bytes.NewReader(raw)))
	if err != nil {
		c.t.Fatal(err)
	}
	var req saml.AuthnRequest
	if err := xml.Unmarshal(doc, &req); err != nil {
		c.t.Fatal(err)
	}
	asked := req.RequestedAuthnContext != nil && slices.Equal(req.RequestedAuthnContext.ClassRefs(), []string{classMFA}) &&
		req.RequestedAuthnContext.Comparison == "exact" && req.ForceAuthn != nil && *req.ForceAuthn
	if asked != mfa || (!mfa && req.RequestedAuthnContext != nil) {
		c.t.Fatalf("GET %s: AuthnRequest asks for %+v, ForceAuthn %v; want two steps asked: %v", path, req.RequestedAuthnContext, req.ForceAuthn, mfa)
	}
	resp, page := c.visit("GET", loc, nil)
	if resp.StatusCode != 200 {
		c.t.Fatalf("the IdP: %d", resp.StatusCode)
	}
	action, f := formOf(c.t, page)
	if !f.Has("SAMLResponse") {
		f.Set("user", user)
		f.Set("password", password)
		_, page = c.visit("POST", action, f)
		action, f = formOf(c.t, page)
	}
	resp, _ = c.postFrom(idp.url, "cross-site", action, f)
	if resp.StatusCode != http.StatusSeeOther {
		c.t.Fatalf("ACS: %d", resp.StatusCode)
	}
	return resp.Header.Get("Location")
}

// An SSO admin without a password, refused by the Administration pages,
// is offered a new sign-in at the IdP with two steps when the tenant's
// connection trusts the IdP's multi-factor context; it opens them.
func TestAdminPagesSSOStepUpWithIdPMFA(t *testing.T) {
	c, idp := newSSOMFAClient(t)
	idp.addUser("alice", "alice@example.com", "correct horse battery", "admins")
	alice := newClientOf(t, c.srv, c.con)
	if to := alice.ssoSignIn(idp, "/saml/demo/login?next=%2F", "alice", "correct horse battery", false); to != "/" {
		t.Fatalf("SSO sign-in goes to %q", to)
	}

	// Without trusted contexts: the page that says why, and asking the
	// IdP for two steps is refused.
	resp, page := alice.get("/users")
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "Administration needs two-step verification.") {
		t.Fatalf("/users for an SSO admin, no trusted contexts: %d\n%.2000s", resp.StatusCode, page)
	}
	resp, page = alice.startSSO("/saml/demo/login?force=1&mfa=1&next=%2Fusers")
	if resp.StatusCode != http.StatusConflict || !strings.Contains(page, "Two-step sign-in is not set up") {
		t.Errorf("asking for two steps without trusted contexts: %d\n%.2000s", resp.StatusCode, page)
	}

	// With them: the step-up page offers the SSO sign-in with two steps.
	setMFAContexts(t, c, classMFA)
	resp, _ = alice.get("/users")
	if loc := resp.Header.Get("Location"); resp.StatusCode != http.StatusSeeOther || loc != stepUpURL("/users") {
		t.Fatalf("/users for an SSO admin, trusted contexts: %d to %q; want the step-up", resp.StatusCode, loc)
	}
	resp, page = alice.get(stepUpURL("/users"))
	offer := `href="/saml/demo/login?force=1&amp;mfa=1&amp;next=%2fusers"`
	if resp.StatusCode != 200 || !strings.Contains(page, `id="reauth-sso-mfa"`) || !strings.Contains(page, offer) ||
		strings.Contains(page, `id="reauth-password"`) {
		t.Fatalf("the step-up page: %d; want the SSO offer %s and no password form\n%.3000s", resp.StatusCode, offer, page)
	}
	link := html.UnescapeString(offer[len(`href="`) : len(offer)-1])
	if to := alice.ssoSignIn(idp, link, "alice", "correct horse battery", true); to != "/users" {
		t.Fatalf("the step-up sign-in goes to %q, want /users", to)
	}
	if resp, _ := alice.get("/users"); resp.StatusCode != 200 {
		t.Errorf("/users after the sign-in with two steps: %d", resp.StatusCode)
	}
}

// The SSO settings form sets the trusted multi-factor contexts, one per
// line, and shows Guard's refusals in its words.
func TestSSOFormMFAContexts(t *testing.T) {
	c, _, password := newSSOClient(t, nil)
	c.signInAdmin(ownerEmail, password)
	save := func(contexts string) (int, string) {
		t.Helper()
		resp, page := c.post("/security/sso", url.Values{"mfa_contexts": {contexts}, "jit": {"on"}, "default_role": {"member"}})
		if resp.StatusCode == http.StatusSeeOther { // saved; a refusal shows the form again
			_, page = c.get("/security/sso")
		}
		return resp.StatusCode, page
	}
	stored := func() []string {
		t.Helper()
		conn, err := c.con.g.SSOConnection(t.Context(), guard.System("test"), demoTenant)
		if err != nil {
			t.Fatal(err)
		}
		return conn.MFAAuthnContexts
	}
	_, page := c.get("/security/sso")
	if !strings.Contains(page, `id="mfa-contexts-input"`) || !strings.Contains(page, `id="mfa-contexts"><span class="badge off">`) {
		t.Fatalf("the SSO page lacks the two-step contexts field or state:\n%.4000s", page)
	}

	code, page := save("\r\n  " + classMFA + "  \r\nhttp://schemas.microsoft.com/claims/multipleauthn\n\n")
	want := []string{classMFA, "http://schemas.microsoft.com/claims/multipleauthn"}
	if code != http.StatusSeeOther || !slices.Equal(stored(), want) {
		t.Fatalf("saving two contexts: %d, stored %q; want %q", code, stored(), want)
	}
	if !strings.Contains(page, `id="mfa-contexts"><span class="badge ok">`) || !strings.Contains(page, "<code>"+classMFA+"</code>") ||
		!strings.Contains(page, ">"+classMFA+"\nhttp://schemas.microsoft.com/claims/multipleauthn\n</textarea>") {
		t.Errorf("the SSO page after saving two contexts:\n%.6000s", page)
	}

	code, page = save(classMFA + "\n" + classMFA)
	if code != http.StatusBadRequest || !strings.Contains(page, "The list of two-step sign-in contexts has a duplicate entry.") || !slices.Equal(stored(), want) {
		t.Errorf("a duplicate context: %d, stored %q; the page:\n%.3000s", code, stored(), page)
	}
	code, page = save(strings.Repeat("x", 300))
	if code != http.StatusBadRequest || !strings.Contains(page, "The list of two-step sign-in contexts has an entry that is too long.") {
		t.Errorf("a context of 300 bytes: %d; the page:\n%.3000s", code, page)
	}

	if save(""); len(stored()) != 0 {
		t.Errorf("an empty field kept %q", stored())
	}
}
