package guard_test

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"

	"github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/internal/ssosite"
	"github.com/guardhq/guard/sso"
)

// principalOf returns the principal of browser b's Guard session on s.
func (s *ssoSite) principalOf(t *testing.T, b *http.Client) (guard.Principal, error) {
	return ssosite.Principal(t.Context(), s.g, s.srv.URL, b)
}

// ssoUser signs user (created at the IdP with email) in by SSO in a new
// browser and returns the browser and its principal.
func (s *ssoSite) ssoUser(t *testing.T, user, email string) (*http.Client, guard.Principal) {
	t.Helper()
	s.idpPut(t, "/users/"+user, `{"name":"`+user+`","password":"correct horse","email":"`+email+`","groups":["Staff"]}`)
	b, _, _, resp := s.signIn(t, user, "correct horse")
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("SSO sign-in of %s: %s", user, resp.Status)
	}
	p, err := s.principalOf(t, b)
	if err != nil {
		t.Fatalf("session of %s: %v", user, err)
	}
	return b, p
}

// idpLogout returns a POST to the tenant's single logout URL carrying a
// LogoutRequest from the test IdP, signed with its key, naming nameID.
func (s *ssoSite) idpLogout(t *testing.T, id, nameID, format string) *http.Request {
	t.Helper()
	sp, err := s.g.SSOServiceProvider(tenantID)
	if err != nil {
		t.Fatal(err)
	}
	lr := &saml.LogoutRequest{ID: id, Version: "2.0", IssueInstant: time.Now().UTC(), Destination: sp.SLOURL,
		Issuer: &saml.Issuer{Value: s.idpURL + "/metadata"}, NameID: &saml.NameID{Value: nameID, Format: format}}
	key, cert := keyPair(t, "idp")
	return signedLogoutPost(t, lr, key, cert)
}

// signedLogoutPost returns a POST of lr, signed (enveloped, RSA-SHA256,
// exclusive C14N) with key and cert, to its Destination, as an IdP's
// HTTP-POST binding sends it.
func signedLogoutPost(t *testing.T, lr *saml.LogoutRequest, key *rsa.PrivateKey, cert *x509.Certificate) *http.Request {
	t.Helper()
	sc := dsig.NewDefaultSigningContext(dsig.TLSCertKeyStore(tls.Certificate{Certificate: [][]byte{cert.Raw}, PrivateKey: key, Leaf: cert}))
	sc.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := sc.SetSignatureMethod(dsig.RSASHA256SignatureMethod); err != nil {
		t.Fatal(err)
	}
	el, err := sc.SignEnveloped(lr.Element())
	if err != nil {
		t.Fatal(err)
	}
	// The schema wants the Signature right after the Issuer.
	sig := el.Child[len(el.Child)-1].(*etree.Element)
	el.Child = el.Child[:len(el.Child)-1]
	el.InsertChildAt(1, sig)
	doc := etree.NewDocument()
	doc.SetRoot(el)
	raw, err := doc.WriteToBytes()
	if err != nil {
		t.Fatal(err)
	}
	body := url.Values{"SAMLRequest": {base64.StdEncoding.EncodeToString(raw)}, "RelayState": {"idp-relay"}}.Encode()
	r := httptest.NewRequest(http.MethodPost, lr.Destination, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

// logoutRequestOf decodes the LogoutRequest of an HTTP-Redirect URL.
func logoutRequestOf(t *testing.T, redirect string) saml.LogoutRequest {
	t.Helper()
	u, err := url.Parse(redirect)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(u.Query().Get("SAMLRequest"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(flate.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	var lr saml.LogoutRequest
	if err := xml.Unmarshal(b, &lr); err != nil {
		t.Fatal(err)
	}
	return lr
}

const persistentFormat = "urn:oasis:names:tc:SAML:2.0:nameid-format:persistent"

func TestSingleLogoutNamesTheIdPSubject(t *testing.T) {
	s := newSSOSite(t)
	ctx := t.Context()
	b, p := s.ssoUser(t, "alice", "Alice@Corp.Example")

	// The sign-in kept who Alice is at the IdP, exactly as it said, and
	// which IdP said it.
	sub, err := s.stores.SSO.Subjects.Subject(ctx, tenantID, p.UserID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if sub.NameID != "Alice@Corp.Example" || sub.NameIDFormat == "" || sub.SessionIndex == "" || sub.IdP != s.idpURL+"/metadata" {
		t.Fatalf("kept subject %+v", sub)
	}

	// Logging out from Guard asks the IdP to end that session: the
	// LogoutRequest names the NameID as sent (not Guard's lower-cased
	// email), its format and the IdP's SessionIndex.
	to, err := s.g.LogoutSSO(ctx, p, "/bye")
	if err != nil || to == "" {
		t.Fatalf("LogoutSSO = %q, %v", to, err)
	}
	lr := logoutRequestOf(t, to)
	if lr.NameID == nil || lr.NameID.Value != sub.NameID || lr.NameID.Format != sub.NameIDFormat ||
		lr.SessionIndex == nil || lr.SessionIndex.Value != sub.SessionIndex {
		t.Errorf("LogoutRequest names %+v (session %+v), want %+v", lr.NameID, lr.SessionIndex, sub)
	}
	if _, err := s.principalOf(t, b); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("session after LogoutSSO: %v", err)
	}
}

func TestIdPLogoutByOpaqueNameID(t *testing.T) {
	s := newSSOSite(t)
	ctx := t.Context()
	aliceB, _ := s.ssoUser(t, "alice", "alice@corp.example")
	carolB, carol := s.ssoUser(t, "carol", "carol@corp.example")
	// Carol's IdP identifies her by an opaque persistent NameID, which no
	// email lookup can match.
	if err := s.stores.SSO.Subjects.PutSubject(ctx, sso.Subject{Tenant: tenantID, UserID: carol.UserID, IdP: s.idpURL + "/metadata", NameID: "00u8f3kq2ZCAROL",
		NameIDFormat: persistentFormat, SessionIndex: "_s1", Expires: time.Now().Add(time.Hour)}, time.Now()); err != nil {
		t.Fatal(err)
	}

	answer, err := s.g.HandleSLO(ctx, tenantID, s.idpLogout(t, "id-lo-carol", "00u8f3kq2ZCAROL", persistentFormat))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(answer, "SAMLResponse=") {
		t.Errorf("HandleSLO answers the IdP at %q, want a LogoutResponse", answer)
	}
	if _, err := s.principalOf(t, carolB); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("Carol's session after the IdP logged her out: %v", err)
	}
	if _, err := s.principalOf(t, aliceB); err != nil {
		t.Errorf("Alice's session after the IdP logged Carol out: %v", err)
	}
	evs, err := s.g.QueryAudit(ctx, guard.System("test"), tenantID, audit.Query{Action: string(audit.SessionRevoked)})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs.Events) != 1 || evs.Events[0].Target != carol.UserID || evs.Events[0].Reason != "idp_logout" ||
		evs.Events[0].Meta["sessions_ended"] != "1" {
		t.Errorf("session.revoked events %+v", evs.Events)
	}

	// A NameID nobody signed in with ends nothing; Alice's, as the IdP
	// sent it, ends hers.
	if _, err := s.g.HandleSLO(ctx, tenantID, s.idpLogout(t, "id-lo-nobody", "00uNOBODY", persistentFormat)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.principalOf(t, aliceB); err != nil {
		t.Errorf("Alice's session after a logout of an unknown NameID: %v", err)
	}
	if _, err := s.g.HandleSLO(ctx, tenantID, s.idpLogout(t, "id-lo-alice", "alice@corp.example", "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.principalOf(t, aliceB); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("Alice's session after the IdP logged her out: %v", err)
	}
}

func TestIdPLogoutWithoutSubjectStoreMatchesEmail(t *testing.T) {
	st := newMem()
	st.SSO.Subjects = nil
	s := newSSOSiteOn(t, st)
	b, _ := s.ssoUser(t, "alice", "Alice@Corp.Example")
	if _, err := s.g.HandleSLO(t.Context(), tenantID, s.idpLogout(t, "id-lo-1", "Alice@Corp.Example", "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.principalOf(t, b); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("session after the IdP logged the user out by email: %v", err)
	}
}

// failingSubjects is a SubjectStore whose every call fails while down.
type failingSubjects struct {
	sso.SubjectStore
	mu   sync.Mutex
	fail bool
}

var errSubjectsDown = errors.New("subjects store down")

func (f *failingSubjects) set(v bool) { f.mu.Lock(); f.fail = v; f.mu.Unlock() }
func (f *failingSubjects) down() bool { f.mu.Lock(); defer f.mu.Unlock(); return f.fail }

func (f *failingSubjects) PutSubject(ctx context.Context, s sso.Subject, now time.Time) error {
	if f.down() {
		return errSubjectsDown
	}
	return f.SubjectStore.PutSubject(ctx, s, now)
}

func (f *failingSubjects) SubjectsByNameID(ctx context.Context, tenant, idp, nameID string, now time.Time) ([]sso.Subject, error) {
	if f.down() {
		return nil, errSubjectsDown
	}
	return f.SubjectStore.SubjectsByNameID(ctx, tenant, idp, nameID, now)
}

func TestSubjectStoreFailuresDeny(t *testing.T) {
	st := newMem()
	fs := &failingSubjects{SubjectStore: st.SSO.Subjects}
	st.SSO.Subjects = fs
	s := newSSOSiteOn(t, st)
	ctx := t.Context()
	sys := guard.System("test")

	// A sign-in whose subject cannot be kept gets no session: a logout
	// from the IdP could not find it.
	fs.set(true)
	s.idpPut(t, "/users/alice", `{"name":"alice","password":"correct horse","email":"alice@corp.example","groups":["Staff"]}`)
	b, _, _, resp := s.signIn(t, "alice", "correct horse")
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("SSO sign-in with the subject store down: %s", resp.Status)
	}
	if _, err := s.principalOf(t, b); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("session after a sign-in whose subject was not kept: %v", err)
	}
	failed, _ := s.g.QueryAudit(ctx, sys, tenantID, audit.Query{Action: string(audit.LoginFailed)})
	if len(failed.Events) != 1 || failed.Events[0].Reason != guard.ReasonUnavailable {
		t.Errorf("login.failed events %+v", failed.Events)
	}
	if ok, _ := s.g.QueryAudit(ctx, sys, tenantID, audit.Query{Action: string(audit.LoginSucceeded)}); len(ok.Events) != 0 {
		t.Errorf("login.succeeded events %+v", ok.Events)
	}

	// A logout from the IdP that cannot be matched is not answered as done.
	fs.set(false)
	b, _ = s.ssoUser(t, "alice", "alice@corp.example")
	fs.set(true)
	_, err := s.g.HandleSLO(ctx, tenantID, s.idpLogout(t, "id-lo-1", "alice@corp.example", "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"))
	if !errors.Is(err, guard.ErrUnavailable) {
		t.Errorf("HandleSLO with the subject store down = %v, want ErrUnavailable", err)
	}
	fs.set(false)
	if _, err := s.g.HandleSLO(ctx, tenantID, s.idpLogout(t, "id-lo-2", "alice@corp.example", "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.principalOf(t, b); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("session after the IdP logged the user out: %v", err)
	}
}
