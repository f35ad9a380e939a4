package guard_test

import (
	"bytes"
	"compress/flate"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlidp"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/internal/ssosite"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/sso"
)

// tenantsSite is one Guard serving two tenants, each connected to an IdP
// of its own (crewjam's samlidp, each with its own key), with the host's
// SAML routes.
type tenantsSite struct {
	g      *guard.Guard
	srv    *httptest.Server
	stores guard.Stores
	idps   map[string]*tenantIdP
}

// tenantIdP is a tenant's IdP.
type tenantIdP struct {
	url      string // its address
	entityID string // the Issuer of what it signs
	key      *rsa.PrivateKey
	cert     *x509.Certificate
}

// newTenantsSite connects tenant acme to its IdP and tenant globex to
// another, with another key, whose entity ID is a copy of acme's IdP's:
// entity IDs are public, and whoever runs globex's IdP may choose any.
// Both tenants provision users just in time from corp.example.
func newTenantsSite(t *testing.T) *tenantsSite {
	t.Helper()
	s := &tenantsSite{stores: newMem(), idps: map[string]*tenantIdP{}}
	spKey, spCert := keyPair(t, "sp")
	s.srv = httptest.NewServer(nil)
	t.Cleanup(s.srv.Close)
	var err error
	s.g, err = guard.New(guard.Config{Stores: s.stores, AuditKey: auditKey, Hasher: fastHasher,
		SSO: &sso.Config{BaseURL: s.srv.URL, Key: spKey, Certificate: spCert, AllowInsecureMetadata: true}})
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	ssosite.Routes(mux, s.g, "/", nil)
	s.srv.Config.Handler = s.g.Middleware(mux)

	ctx := t.Context()
	sys := guard.System("test")
	for _, tn := range []struct{ id, name, keyName string }{{"acme", "Acme", "idp"}, {"globex", "Globex", "idp-globex"}} {
		idp := &tenantIdP{}
		idp.key, idp.cert = keyPair(t, tn.keyName)
		srv := httptest.NewUnstartedServer(nil)
		idp.url = "http://" + srv.Listener.Addr().String()
		u, _ := url.Parse(idp.url)
		server, err := samlidp.New(samlidp.Options{URL: *u, Key: idp.key, Certificate: idp.cert, Store: &samlidp.MemoryStore{}, Logger: log.New(io.Discard, "", 0)})
		if err != nil {
			t.Fatal(err)
		}
		if a := s.idps["acme"]; a != nil {
			m, _ := url.Parse(a.entityID)
			server.IDP.MetadataURL = *m
		}
		idp.entityID = server.IDP.MetadataURL.String()
		srv.Config.Handler = server
		srv.Start()
		t.Cleanup(srv.Close)
		s.idps[tn.id] = idp

		if _, err := s.g.CreateTenant(ctx, sys, tn.id, tn.name, guard.Policy{}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.g.SetSSOConnection(ctx, sys, sso.Connection{Tenant: tn.id, MetadataURL: idp.url + "/metadata",
			JIT: true, AllowedDomains: []string{"corp.example"}, GroupRoles: map[string]string{"Staff": rbac.Member}}); err != nil {
			t.Fatal(err)
		}
		s.idpPut(t, tn.id, "/services/"+tn.id, s.get(t, http.DefaultClient, s.srv.URL+"/saml/"+tn.id+"/metadata"))
	}
	if s.idps["acme"].entityID != s.idps["globex"].entityID {
		t.Fatal("globex's IdP does not copy acme's entity ID")
	}
	return s
}

func (s *tenantsSite) idpPut(t *testing.T, tenant, path, body string) {
	t.Helper()
	ssosite.IdPPut(t, s.idps[tenant].url, path, body)
}

// get returns the body of a GET of u by client c.
func (s *tenantsSite) get(t *testing.T, c *http.Client, u string) string {
	t.Helper()
	resp, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	return s.read(t, resp)
}

// read returns resp's body.
func (s *tenantsSite) read(t *testing.T, resp *http.Response) string {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// addUser creates user, with email, at tenant's IdP.
func (s *tenantsSite) addUser(t *testing.T, tenant, user, email string) {
	t.Helper()
	s.idpPut(t, tenant, "/users/"+user, `{"name":"`+user+`","password":"correct horse","email":"`+email+`","groups":["Staff"]}`)
}

// answer signs user in at the IdP that loginURL (an AuthnRequest
// redirect) leads to, in a new browser, and returns the browser and the
// ACS form the IdP gave it (not posted).
func (s *tenantsSite) answer(t *testing.T, loginURL, user string) (*http.Client, string, url.Values) {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	b := &http.Client{Jar: jar}
	action, fields := ssosite.FormOf(t, s.get(t, b, loginURL))
	fields.Set("user", user)
	fields.Set("password", "correct horse")
	resp, err := b.PostForm(action, fields)
	if err != nil {
		t.Fatal(err)
	}
	acs, acsFields := ssosite.FormOf(t, s.read(t, resp))
	return b, acs, acsFields
}

// startLogin starts a login at tenant and returns the redirect to its IdP.
func (s *tenantsSite) startLogin(t *testing.T, tenant string) string {
	t.Helper()
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(s.srv.URL + "/saml/" + tenant + "/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("login at %s: %s", tenant, resp.Status)
	}
	return resp.Header.Get("Location")
}

// postACS posts an ACS form with browser b (which follows no redirect) and
// returns the status and body.
func postACS(t *testing.T, b *http.Client, action string, fields url.Values) (int, string) {
	t.Helper()
	c := *b
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	resp, err := c.PostForm(action, fields)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body)
}

// principal returns the principal of browser b's session.
func (s *tenantsSite) principal(t *testing.T, b *http.Client) (guard.Principal, error) {
	return ssosite.Principal(t.Context(), s.g, s.srv.URL, b)
}

// signIn signs user in to tenant through the tenant's own IdP and returns
// the browser and its principal.
func (s *tenantsSite) signIn(t *testing.T, tenant, user string) (*http.Client, guard.Principal) {
	t.Helper()
	b, acs, fields := s.answer(t, s.startLogin(t, tenant), user)
	if status, body := postACS(t, b, acs, fields); status != http.StatusSeeOther {
		t.Fatalf("sign-in of %s to %s: %d %s", user, tenant, status, body)
	}
	p, err := s.principal(t, b)
	if err != nil {
		t.Fatalf("session of %s at %s: %v", user, tenant, err)
	}
	return b, p
}

// ssoFailures returns the reasons of tenant's sso.failed events, oldest
// first.
func (s *tenantsSite) ssoFailures(t *testing.T, tenant string) []string {
	t.Helper()
	page, err := s.g.QueryAudit(t.Context(), guard.System("test"), tenant, audit.Query{Action: string(audit.SSOFailed), Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var r []string
	for _, e := range page.Events {
		r = append(r, e.Reason)
	}
	return r
}

// users returns the emails of tenant's users by ID.
func (s *tenantsSite) users(t *testing.T, tenant string) map[string]string {
	t.Helper()
	us, err := s.g.ListUsers(t.Context(), guard.System("test"), tenant, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, u := range us {
		m[u.ID] = u.Email
	}
	return m
}

// redirectTo moves an AuthnRequest redirect (from startLogin) to another
// IdP, as whoever runs that IdP can: the request's Destination names the
// other IdP's SSO URL (so that it accepts it), nothing else changes.
func redirectTo(t *testing.T, loginURL string, from, to *tenantIdP) string {
	t.Helper()
	u, err := url.Parse(loginURL)
	if err != nil {
		t.Fatal(err)
	}
	q := u.Query()
	raw, err := base64.StdEncoding.DecodeString(q.Get("SAMLRequest"))
	if err != nil {
		t.Fatal(err)
	}
	xml, err := io.ReadAll(flate.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	xml = bytes.Replace(xml, []byte(`Destination="`+from.url+`/sso"`), []byte(`Destination="`+to.url+`/sso"`), 1)
	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.DefaultCompression)
	w.Write(xml)
	w.Close()
	q.Set("SAMLRequest", base64.StdEncoding.EncodeToString(b.Bytes()))
	q.Del("Signature")
	q.Del("SigAlg")
	return to.url + "/sso?" + q.Encode()
}

// logoutRequest returns a POST to tenant's single logout URL carrying a
// LogoutRequest signed by idp, naming nameID and sessionIndex.
func (s *tenantsSite) logoutRequest(t *testing.T, tenant string, idp *tenantIdP, id, nameID, sessionIndex string) *http.Request {
	t.Helper()
	sp, err := s.g.SSOServiceProvider(tenant)
	if err != nil {
		t.Fatal(err)
	}
	lr := &saml.LogoutRequest{ID: id, Version: "2.0", IssueInstant: time.Now().UTC(), Destination: sp.SLOURL,
		Issuer:       &saml.Issuer{Value: idp.entityID},
		NameID:       &saml.NameID{Value: nameID, Format: "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"},
		SessionIndex: &saml.SessionIndex{Value: sessionIndex}}
	return signedLogoutPost(t, lr, idp.key, idp.cert)
}

// TestSSOTenantsKeepTheirIdPs: with several tenants, each with its own
// IdP, an identity is the tenant's IdP's and the subject it names
// (SECURITY-CHECKLIST SAML-44), even when the other tenant's IdP copies
// the entity ID and the NameID: a response from globex's IdP is refused
// at acme's ACS (403, sso.failed in acme), whether it was made for
// globex or for a login acme started; the same NameID is two users, one
// per tenant; and a LogoutRequest from globex's IdP ends no acme session.
func TestSSOTenantsKeepTheirIdPs(t *testing.T) {
	s := newTenantsSite(t)
	ctx := t.Context()
	acme, globex := s.idps["acme"], s.idps["globex"]
	s.addUser(t, "acme", "alice", "alice@corp.example")
	s.addUser(t, "globex", "alice", "alice@corp.example")
	s.addUser(t, "globex", "bob", "bob@corp.example")
	forbidden := guard.ErrSSOFailed.Error()

	// Globex's IdP answers a globex login for bob, and the answer is
	// posted to acme's ACS: refused, nothing created in acme.
	b, acs, fields := s.answer(t, s.startLogin(t, "globex"), "bob")
	if !strings.HasSuffix(acs, "/saml/globex/acs") {
		t.Fatalf("globex's IdP posts to %s", acs)
	}
	status, body := postACS(t, b, s.srv.URL+"/saml/acme/acs", fields)
	if status != http.StatusForbidden || strings.TrimSpace(body) != forbidden {
		t.Errorf("globex's response at acme's ACS: %d %q, want 403 %q", status, body, forbidden)
	}
	failures := []string{string(sso.ReasonDestination)}
	if r := s.ssoFailures(t, "acme"); !slices.Equal(r, failures) {
		t.Errorf("acme's sso.failed reasons %v, want %v", r, failures)
	}
	// The response itself was good: globex accepts it.
	if status, body := postACS(t, b, acs, fields); status != http.StatusSeeOther {
		t.Fatalf("globex's response at globex's ACS: %d %s", status, body)
	}

	// Whoever runs globex's IdP registers acme's SP (its metadata is
	// public) and answers a login acme started: Destination, Audience,
	// Recipient, InResponseTo and Issuer are all what acme expects; only
	// the key is not acme's IdP's.
	s.idpPut(t, "globex", "/services/acme", s.get(t, http.DefaultClient, s.srv.URL+"/saml/acme/metadata"))
	b, acs, fields = s.answer(t, redirectTo(t, s.startLogin(t, "acme"), acme, globex), "bob")
	if acs != s.srv.URL+"/saml/acme/acs" {
		t.Fatalf("globex's IdP posts acme's login to %s", acs)
	}
	status, body = postACS(t, b, acs, fields)
	if status != http.StatusForbidden || strings.TrimSpace(body) != forbidden {
		t.Errorf("globex's IdP answering acme's login: %d %q, want 403 %q", status, body, forbidden)
	}
	failures = append(failures, string(sso.ReasonUntrustedCert))
	if r := s.ssoFailures(t, "acme"); !slices.Equal(r, failures) {
		t.Errorf("acme's sso.failed reasons %v, want %v", r, failures)
	}
	if _, err := s.principal(t, b); err == nil {
		t.Error("a session after a refused response")
	}
	for id, email := range s.users(t, "acme") {
		t.Errorf("acme has user %s (%s) before anyone signed in through its IdP", id, email)
	}

	// Alice at each IdP, with the same NameID: two users, one per tenant,
	// each kept with her own IdP session.
	aliceA, pA := s.signIn(t, "acme", "alice")
	aliceG, pG := s.signIn(t, "globex", "alice")
	if pA.Tenant != "acme" || pG.Tenant != "globex" || pA.UserID == pG.UserID {
		t.Fatalf("principals %s/%s and %s/%s, want one user in each tenant", pA.Tenant, pA.UserID, pG.Tenant, pG.UserID)
	}
	if got := s.users(t, "acme"); len(got) != 1 || got[pA.UserID] != "alice@corp.example" {
		t.Errorf("acme's users %v", got)
	}
	subA, err := s.stores.SSO.Subjects.Subject(ctx, "acme", pA.UserID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	subG, err := s.stores.SSO.Subjects.Subject(ctx, "globex", pG.UserID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if subA.NameID != "alice@corp.example" || subG.NameID != subA.NameID {
		t.Fatalf("kept subjects %+v and %+v, want the same NameID", subA, subG)
	}
	if subs, err := s.stores.SSO.Subjects.SubjectsByNameID(ctx, "acme", subA.IdP, subA.NameID, time.Now()); err != nil || len(subs) != 1 || subs[0].UserID != pA.UserID {
		t.Errorf("acme's subjects of %s: %+v, %v", subA.NameID, subs, err)
	}

	// Globex's IdP asks acme to log Alice out, naming her NameID and
	// acme's IdP session: refused, and her acme session lives.
	if _, err := s.g.HandleSLO(ctx, "acme", s.logoutRequest(t, "acme", globex, "id-lo-cross", subA.NameID, subA.SessionIndex)); !errors.Is(err, guard.ErrSSOFailed) {
		t.Errorf("acme given a LogoutRequest signed by globex's IdP: %v, want ErrSSOFailed", err)
	}
	if _, err := s.principal(t, aliceA); err != nil {
		t.Errorf("Alice's acme session after globex's IdP asked acme to end it: %v", err)
	}
	failures = append(failures, string(sso.ReasonUntrustedCert))
	if r := s.ssoFailures(t, "acme"); !slices.Equal(r, failures) {
		t.Errorf("acme's sso.failed reasons %v, want %v", r, failures)
	}
	if r := s.ssoFailures(t, "globex"); len(r) != 0 {
		t.Errorf("globex's sso.failed reasons %v, want none", r)
	}
	// At globex, where it comes from its own IdP, it ends globex's Alice
	// only.
	if _, err := s.g.HandleSLO(ctx, "globex", s.logoutRequest(t, "globex", globex, "id-lo-own", subG.NameID, subA.SessionIndex)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.principal(t, aliceG); err == nil {
		t.Error("globex's Alice still signed in after her IdP logged her out")
	}
	if p, err := s.principal(t, aliceA); err != nil || p.Tenant != "acme" || p.UserID != pA.UserID {
		t.Errorf("Alice's acme session after globex's logout: %+v, %v", p, err)
	}
}
