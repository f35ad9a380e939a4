package sso

import (
	"bytes"
	"compress/flate"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
)

// inflate decodes a message of the HTTP-Redirect binding.
func inflate(t *testing.T, v string) []byte {
	t.Helper()
	raw, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(flate.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// verifyQuerySignature checks the HTTP-Redirect binding signature of u
// (saml-bindings §3.4.4.1) with the SP's key.
func verifyQuerySignature(t *testing.T, u *url.URL, msgParam string, pub *rsa.PublicKey) {
	t.Helper()
	raw := map[string]string{}
	for _, kv := range strings.Split(u.RawQuery, "&") {
		k, v, _ := strings.Cut(kv, "=")
		raw[k] = v
	}
	signed := msgParam + "=" + raw[msgParam]
	if rs, ok := raw["RelayState"]; ok {
		signed += "&RelayState=" + rs
	}
	signed += "&SigAlg=" + raw["SigAlg"]
	if alg, _ := url.QueryUnescape(raw["SigAlg"]); alg != dsig.RSASHA256SignatureMethod {
		t.Errorf("SigAlg = %q", alg)
	}
	sig, err := base64.StdEncoding.DecodeString(u.Query().Get("Signature"))
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256([]byte(signed))
	if err := rsa.VerifyPKCS1v15(pub, crypto.SHA256, h[:], sig); err != nil {
		t.Errorf("query signature does not verify: %v", err)
	}
}

// wantSigned edits a connection's metadata to ask for signed
// AuthnRequests.
func wantSigned(c *Connection) {
	c.Metadata = strings.Replace(c.Metadata, "<IDPSSODescriptor ", `<IDPSSODescriptor WantAuthnRequestsSigned="true" `, 1)
}

func TestStartLoginUnsigned(t *testing.T) {
	// An SSO location with its own query (as some IdPs publish) keeps it.
	e := newEnv(t, func(c *Connection) {
		c.Metadata = strings.Replace(c.Metadata, `Location="`+idpSSOURL+`"`, `Location="`+idpSSOURL+`?app=42&amp;x=%2F"`, 1)
	})
	login, err := e.p.StartLogin(t.Context(), tenant, LoginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(login.RedirectURL)
	q := u.Query()
	if q.Has("SigAlg") || q.Has("Signature") {
		t.Errorf("AuthnRequest signed for an IdP that does not want it: %s", login.RedirectURL)
	}
	if u.Scheme+"://"+u.Host+u.Path != idpSSOURL || q.Get("app") != "42" || q.Get("x") != "/" || q.Get("RelayState") != login.RelayState {
		t.Errorf("redirect = %s", login.RedirectURL)
	}
	var req saml.AuthnRequest
	if err := xml.Unmarshal(inflate(t, q.Get("SAMLRequest")), &req); err != nil {
		t.Fatal(err)
	}
	if req.ID != login.RequestID || req.AssertionConsumerServiceURL != spACSURL || req.Destination != idpSSOURL+"?app=42&x=%2F" {
		t.Errorf("AuthnRequest = %+v", req)
	}
}

// TestStartLogin checks the AuthnRequest and what is tracked for it.
// SECURITY-CHECKLIST SAML-49: an ID of 40 hex digits, 160 bits from
// Config.Rand (never repeated: TestStartLoginIDs), the IdP's Destination, the fixed ACS
// URL, and a RelayState that is an opaque 22-character handle, the return
// path kept server-side in the tracked request.
func TestStartLogin(t *testing.T) {
	e := newEnv(t, wantSigned)
	login, err := e.p.StartLogin(t.Context(), tenant, LoginOptions{ReturnTo: "/reports?q=1#top", Binding: "cookie-value", ForceAuthn: true})
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^id-[0-9a-f]{40}$`).MatchString(login.RequestID) || len(login.RelayState) != 22 || login.Form != nil {
		t.Errorf("login = %+v", login)
	}
	u, err := url.Parse(login.RedirectURL)
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Scheme + "://" + u.Host + u.Path; got != idpSSOURL {
		t.Errorf("redirect to %s, want %s", got, idpSSOURL)
	}
	if u.Query().Get("RelayState") != login.RelayState {
		t.Errorf("RelayState = %q, want the handle %q", u.Query().Get("RelayState"), login.RelayState)
	}
	verifyQuerySignature(t, u, "SAMLRequest", &e.k.sp.key.PublicKey)
	var req saml.AuthnRequest
	if err := xml.Unmarshal(inflate(t, u.Query().Get("SAMLRequest")), &req); err != nil {
		t.Fatal(err)
	}
	if req.ID != login.RequestID || req.Destination != idpSSOURL || req.AssertionConsumerServiceURL != spACSURL ||
		req.Issuer == nil || req.Issuer.Value != spEntityID || req.ForceAuthn == nil || !*req.ForceAuthn ||
		!req.IssueInstant.Equal(t0.Add(2*time.Second)) || req.ProtocolBinding != saml.HTTPPostBinding {
		t.Errorf("AuthnRequest = %+v", req)
	}
	tracked := e.st.reqs[[2]string{tenant, login.RequestID}]
	want := Request{Tenant: tenant, ID: login.RequestID, Kind: KindLogin, RelayState: login.RelayState, ReturnTo: "/reports?q=1#top",
		Binding: bindingHash("cookie-value"), CreatedAt: t0.Add(2 * time.Second), Expires: t0.Add(2*time.Second + DefaultRequestTTL)}
	if tracked != want {
		t.Errorf("tracked %+v\nwant    %+v", tracked, want)
	}

	// The IdP answers that request.
	k := e.k
	doc := spec{signAssertion: true, inResponseTo: login.RequestID}.build(k)
	res, err := e.p.ParseResponse(t.Context(), tenant, base64.StdEncoding.EncodeToString(doc), login.RelayState, "cookie-value")
	if err != nil {
		t.Fatal(err)
	}
	if res.ReturnTo != "/reports?q=1#top" || res.RequestID != login.RequestID {
		t.Errorf("result = %+v", res)
	}
}

// TestStartLoginIDs: request IDs and RelayState handles are never
// repeated (SECURITY-CHECKLIST SAML-49).
func TestStartLoginIDs(t *testing.T) {
	e := newEnv(t, nil)
	seen := map[string]bool{}
	for range 100 {
		login, err := e.p.StartLogin(t.Context(), tenant, LoginOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if seen[login.RequestID] || seen[login.RelayState] {
			t.Fatalf("repeated ID or handle")
		}
		seen[login.RequestID], seen[login.RelayState] = true, true
		if r := e.st.reqs[[2]string{tenant, login.RequestID}]; r.ReturnTo != "/" || r.Binding != "" {
			t.Errorf("default ReturnTo/Binding: %+v", r)
		}
	}
}

func TestStartLoginPostBinding(t *testing.T) {
	e := newEnv(t, func(c *Connection) {
		c.Metadata = strings.Replace(idpMetadata(time.Time{}, keys.idp.cert),
			`Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="`+idpSSOURL+`"`, `Binding="urn:x" Location="`+idpSSOURL+`"`, 1)
		wantSigned(c)
	})
	login, err := e.p.StartLogin(t.Context(), tenant, LoginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if login.RedirectURL != "" || login.Form == nil || login.Form.Action != idpSSOURL || login.Form.RelayState != login.RelayState {
		t.Fatalf("login = %+v", login)
	}
	raw, _ := base64.StdEncoding.DecodeString(login.Form.SAMLRequest)
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		t.Fatal(err)
	}
	if doc.Root().SelectAttrValue("ID", "") != login.RequestID {
		t.Errorf("ID = %q", doc.Root().SelectAttrValue("ID", ""))
	}
	// The XML signature covers the request with its final ID.
	ctx := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{e.k.sp.cert}})
	if _, err := ctx.Validate(doc.Root()); err != nil {
		t.Errorf("AuthnRequest signature: %v", err)
	}
	html := string(login.Form.HTML("n0nce"))
	for _, want := range []string{`action="` + idpSSOURL + `"`, `name="SAMLRequest"`, `value="` + login.RelayState + `"`, `nonce="n0nce"`} {
		if !strings.Contains(html, want) {
			t.Errorf("form HTML lacks %s", want)
		}
	}
}

func TestStartLoginErrors(t *testing.T) {
	e := newEnv(t, nil)
	var in *InputError
	for _, rt := range []string{"https://evil.test/", "//evil.test", "/\\evil", "reports", "/a\nb"} {
		if _, err := e.p.StartLogin(t.Context(), tenant, LoginOptions{ReturnTo: rt}); !errors.As(err, &in) || in.Field != "ReturnTo" {
			t.Errorf("ReturnTo %q: %v", rt, err)
		}
	}
	if _, err := e.p.StartLogin(t.Context(), "a/b", LoginOptions{}); !errors.As(err, &in) || in.Field != "tenant" {
		t.Errorf("bad tenant: %v", err)
	}
	if _, err := e.p.StartLogin(t.Context(), "other", LoginOptions{}); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown tenant: %v", err)
	}
	e.st.fail = errors.New("down")
	if _, err := e.p.StartLogin(t.Context(), tenant, LoginOptions{}); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("store failure: %v", err)
	}
}

func TestMetadataSP(t *testing.T) {
	e := newEnv(t, nil)
	b, err := e.p.Metadata(tenant)
	if err != nil {
		t.Fatal(err)
	}
	var ed saml.EntityDescriptor
	if err := xml.Unmarshal(b, &ed); err != nil {
		t.Fatal(err)
	}
	if ed.EntityID != spEntityID || len(ed.SPSSODescriptors) != 1 {
		t.Fatalf("metadata = %s", b)
	}
	d := ed.SPSSODescriptors[0]
	if len(d.AssertionConsumerServices) != 1 || d.AssertionConsumerServices[0].Location != spACSURL ||
		d.AssertionConsumerServices[0].Binding != saml.HTTPPostBinding {
		t.Errorf("ACS = %+v", d.AssertionConsumerServices)
	}
	if len(d.SingleLogoutServices) != 1 || d.SingleLogoutServices[0].Location != spSLOURL {
		t.Errorf("SLO = %+v", d.SingleLogoutServices)
	}
	// AuthnRequests are signed only for IdPs that want it (the metadata
	// is the same for every IdP); assertions must always be signed.
	if d.AuthnRequestsSigned == nil || *d.AuthnRequestsSigned || d.WantAssertionsSigned == nil || !*d.WantAssertionsSigned {
		t.Errorf("AuthnRequestsSigned = %v, WantAssertionsSigned = %v; want false, true", d.AuthnRequestsSigned, d.WantAssertionsSigned)
	}
	uses := map[string]bool{}
	for _, kd := range d.KeyDescriptors {
		uses[kd.Use] = true
	}
	if !uses["signing"] || !uses["encryption"] {
		t.Errorf("key descriptors %v", uses)
	}
	if !ed.ValidUntil.IsZero() || bytes.Contains(b, []byte("validUntil")) {
		t.Errorf("SP metadata has a validUntil; it should use cacheDuration only")
	}
	if _, err := e.p.Metadata("../x"); err == nil {
		t.Errorf("Metadata of a bad tenant succeeded")
	}
}

func TestNewConfig(t *testing.T) {
	k := loadKeys(t)
	st := newMemStores().stores()
	ok := Config{BaseURL: baseURL, Key: k.sp.key, Certificate: k.sp.cert, Stores: st}
	for _, tc := range []struct {
		field string
		edit  func(*Config)
	}{
		{"BaseURL", func(c *Config) { c.BaseURL = "app.example.test" }},
		{"BaseURL", func(c *Config) { c.BaseURL = "ftp://app.example.test" }},
		{"BaseURL", func(c *Config) { c.BaseURL = "https://app.example.test/?x=1" }},
		{"PathPrefix", func(c *Config) { c.PathPrefix = "saml" }},
		{"PathPrefix", func(c *Config) { c.PathPrefix = "/saml/" }},
		{"Key", func(c *Config) { c.Key = nil }},
		{"Certificate", func(c *Config) { c.Certificate = k.idp.cert }},
		{"EncryptionKey", func(c *Config) { c.EncryptionKey = k.idp.key }},
		{"EncryptionCertificate", func(c *Config) { c.EncryptionKey, c.EncryptionCertificate = k.idp.key, k.sp.cert }},
		{"Stores.Connections", func(c *Config) { c.Stores.Connections = nil }},
		{"Stores.Requests", func(c *Config) { c.Stores.Requests = nil }},
		{"Stores.Replay", func(c *Config) { c.Stores.Replay = nil }},
		{"RequestTTL", func(c *Config) { c.RequestTTL = 2 * time.Hour }},
		{"MaxBodyBytes", func(c *Config) { c.MaxBodyBytes = 100 }},
		{"MaxMetadataBytes", func(c *Config) { c.MaxMetadataBytes = 1 << 30 }},
		{"DefaultReturnTo", func(c *Config) { c.DefaultReturnTo = "https://evil.test" }},
		{"MetadataTimeout", func(c *Config) { c.MetadataTimeout = -1 }},
	} {
		c := ok
		tc.edit(&c)
		var ce *ConfigError
		if _, err := New(c); !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("%s: New = %v", tc.field, err)
		}
	}
	p, err := New(ok)
	if err != nil {
		t.Fatal(err)
	}
	sp, err := p.SP("acme")
	if err != nil || sp.ACSURL != spACSURL || sp.EntityID != spEntityID || sp.SLOURL != spSLOURL {
		t.Errorf("SP = %+v, %v", sp, err)
	}
	ok.BaseURL, ok.PathPrefix = "https://app.example.test/base/", "/sso"
	p, _ = New(ok)
	if sp, _ := p.SP("t"); sp.ACSURL != "https://app.example.test/base/sso/t/acs" {
		t.Errorf("ACS with a base path = %s", sp.ACSURL)
	}
	_ = http.MethodGet
}
