package sso

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"encoding/xml"
	"errors"
	"flag"
	"math/big"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	"github.com/crewjam/saml/xmlenc"
	dsig "github.com/russellhaering/goxmldsig"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/ (and create missing test keys)")

// t0 is the fixed "now" of the fixtures: the IdP issues at t0 and the SP
// checks at t0 plus a few seconds.
var t0 = time.Date(2030, 6, 1, 12, 0, 0, 0, time.UTC)

const (
	tenant      = "acme"
	baseURL     = "https://app.example.test"
	idpEntityID = "https://idp.example.test/metadata"
	idpSSOURL   = "https://idp.example.test/sso"
	idpSLOURL   = "https://idp.example.test/slo"
)

var (
	spEntityID = baseURL + "/saml/" + tenant + "/metadata"
	spACSURL   = baseURL + "/saml/" + tenant + "/acs"
	spSLOURL   = baseURL + "/saml/" + tenant + "/slo"
)

// keyPair is a test key and its self-signed certificate.
type keyPair struct {
	key  *rsa.PrivateKey
	cert *x509.Certificate
}

// testKeys are the keys of the fixtures, kept in testdata/keys so that
// the golden documents stay verifiable. The attacker's certificate copies
// the IdP's subject (certificate cloning).
type testKeys struct {
	idp, attacker, sp, idp2 keyPair
}

var (
	keysOnce sync.Once
	keys     testKeys
	keysErr  error
)

func loadKeys(t testing.TB) testKeys {
	t.Helper()
	keysOnce.Do(func() {
		for _, k := range []struct {
			name, cn string
			kp       *keyPair
		}{
			{"idp", "idp.example.test", &keys.idp},
			{"attacker", "idp.example.test", &keys.attacker},
			{"sp", "app.example.test", &keys.sp},
			{"idp2", "idp.example.test rollover", &keys.idp2},
		} {
			if keysErr = loadOrCreate(k.name, k.cn, k.kp); keysErr != nil {
				return
			}
		}
	})
	if keysErr != nil {
		t.Fatalf("test keys: %v (run go test ./sso -run TestGolden -update to create them)", keysErr)
	}
	return keys
}

func loadOrCreate(name, cn string, kp *keyPair) error {
	keyPath := filepath.Join("testdata", "keys", name+".key.pem")
	certPath := filepath.Join("testdata", "keys", name+".crt.pem")
	kb, err1 := os.ReadFile(keyPath)
	cb, err2 := os.ReadFile(certPath)
	if err1 == nil && err2 == nil {
		kblock, _ := pem.Decode(kb)
		cblock, _ := pem.Decode(cb)
		if kblock == nil || cblock == nil {
			return errors.New("bad PEM in " + keyPath)
		}
		k, err := x509.ParsePKCS8PrivateKey(kblock.Bytes)
		if err != nil {
			return err
		}
		c, err := x509.ParseCertificate(cblock.Bytes)
		if err != nil {
			return err
		}
		kp.key, kp.cert = k.(*rsa.PrivateKey), c
		return nil
	}
	if !*update {
		return errors.Join(err1, err2)
	}
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: cn, Organization: []string{"Guard test fixtures"}},
		NotBefore:             time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC),
		NotAfter:              time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return err
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	p8, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(keyPath), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(keyPath, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}), 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(certPath, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		return err
	}
	kp.key, kp.cert = k, c
	return nil
}

func certPEM(c *x509.Certificate) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
}

// idpMetadata returns metadata for an IdP with the given signing
// certificates, valid until the given time (zero: no validUntil).
func idpMetadata(validUntil time.Time, certs ...*x509.Certificate) string {
	var kds []saml.KeyDescriptor
	for _, c := range certs {
		kds = append(kds, saml.KeyDescriptor{Use: "signing", KeyInfo: saml.KeyInfo{X509Data: saml.X509Data{
			X509Certificates: []saml.X509Certificate{{Data: base64.StdEncoding.EncodeToString(c.Raw)}}}}})
	}
	d := saml.IDPSSODescriptor{}
	d.ProtocolSupportEnumeration = protoSAML2
	d.KeyDescriptors = kds
	d.SingleSignOnServices = []saml.Endpoint{{Binding: saml.HTTPRedirectBinding, Location: idpSSOURL}, {Binding: saml.HTTPPostBinding, Location: idpSSOURL}}
	d.SingleLogoutServices = []saml.Endpoint{{Binding: saml.HTTPRedirectBinding, Location: idpSLOURL}}
	ed := saml.EntityDescriptor{EntityID: idpEntityID, ValidUntil: validUntil, IDPSSODescriptors: []saml.IDPSSODescriptor{d}}
	b, err := xml.MarshalIndent(ed, "", "  ")
	if err != nil {
		panic(err)
	}
	return string(b)
}

// ---------------------------------------------------------------------------
// In-memory stores for the package's own tests (store/memstore cannot be
// imported here: it imports this package). store/memstore runs ssotest.

type memStores struct {
	mu     sync.Mutex
	conns  map[string]Connection
	reqs   map[[2]string]Request
	replay map[[2]string]time.Time
	fail   error // returned by every method when set
}

func newMemStores() *memStores {
	return &memStores{conns: map[string]Connection{}, reqs: map[[2]string]Request{}, replay: map[[2]string]time.Time{}}
}

func (m *memStores) stores() Stores { return Stores{Connections: m, Requests: m, Replay: m} }

func (m *memStores) PutConnection(_ context.Context, c Connection) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	m.conns[c.Tenant] = c.clone()
	return nil
}

func (m *memStores) Connection(_ context.Context, tenant string) (Connection, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return Connection{}, m.fail
	}
	c, ok := m.conns[tenant]
	if !ok {
		return Connection{}, ErrNotFound
	}
	return c.clone(), nil
}

func (m *memStores) DeleteConnection(_ context.Context, tenant string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if _, ok := m.conns[tenant]; !ok {
		return ErrNotFound
	}
	delete(m.conns, tenant)
	return nil
}

func (m *memStores) UpdateMetadata(_ context.Context, tenant, u, md string, at time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return false, m.fail
	}
	c, ok := m.conns[tenant]
	if !ok {
		return false, ErrNotFound
	}
	if c.MetadataURL != u || !c.MetadataFetchedAt.Before(at) {
		return false, nil
	}
	c.Metadata, c.MetadataFetchedAt = md, at
	m.conns[tenant] = c
	return true, nil
}

func (m *memStores) RememberRequest(_ context.Context, r Request) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	k := [2]string{r.Tenant, r.ID}
	if _, ok := m.reqs[k]; ok {
		return ErrDuplicate
	}
	m.reqs[k] = r
	return nil
}

func (m *memStores) ConsumeRequest(_ context.Context, tenant, id string, now time.Time) (Request, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return Request{}, m.fail
	}
	k := [2]string{tenant, id}
	r, ok := m.reqs[k]
	delete(m.reqs, k)
	if !ok || !now.Before(r.Expires) {
		return Request{}, ErrNotFound
	}
	return r, nil
}

func (m *memStores) InsertID(_ context.Context, tenant, id string, until, now time.Time) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return false, m.fail
	}
	k := [2]string{tenant, id}
	if u, ok := m.replay[k]; ok && now.Before(u) {
		return false, nil
	}
	m.replay[k] = until
	return true, nil
}

// ---------------------------------------------------------------------------
// The SP under test.

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Set(t time.Time) { c.mu.Lock(); c.now = t; c.mu.Unlock() }

// env is a Provider with in-memory stores, a settable clock and a
// connection for tenant "acme" to the fixture IdP.
type env struct {
	t     testing.TB
	k     testKeys
	p     *Provider
	st    *memStores
	clock *clock
	conn  Connection
}

// newEnv builds an env; edit, if not nil, changes the connection before
// it is stored.
func newEnv(t testing.TB, edit func(*Connection)) *env {
	t.Helper()
	k := loadKeys(t)
	e := &env{t: t, k: k, st: newMemStores(), clock: &clock{now: t0.Add(2 * time.Second)}}
	p, err := New(Config{
		BaseURL:     baseURL,
		Key:         k.sp.key,
		Certificate: k.sp.cert,
		Stores:      e.st.stores(),
		Now:         e.clock.Now,
	})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.p = p
	e.conn = Connection{
		Tenant:     tenant,
		Metadata:   idpMetadata(time.Time{}, k.idp.cert),
		GroupRoles: map[string]string{"Admins": "admin", "Staff": "member"},
	}
	if edit != nil {
		edit(&e.conn)
	}
	if err := e.st.PutConnection(context.Background(), e.conn); err != nil {
		t.Fatal(err)
	}
	return e
}

// track remembers a login request with the given ID and RelayState, as
// StartLogin would have.
func (e *env) track(id, relay string) {
	e.t.Helper()
	r := Request{Tenant: tenant, ID: id, Kind: KindLogin, RelayState: relay, ReturnTo: "/reports",
		CreatedAt: t0.Add(-time.Minute), Expires: t0.Add(9 * time.Minute)}
	if err := e.st.RememberRequest(context.Background(), r); err != nil {
		e.t.Fatal(err)
	}
}

// post runs a decoded response document through ParseResponse.
func (e *env) post(doc []byte, relay string) (*Result, error) {
	return e.p.ParseResponse(context.Background(), tenant, base64.StdEncoding.EncodeToString(doc), relay, "")
}

// wantReason checks that err is a rejection with reason want.
func wantReason(t testing.TB, err error, want Reason) {
	t.Helper()
	var rej *RejectError
	switch {
	case err == nil:
		t.Errorf("accepted; want rejection %q", want)
	case !errors.As(err, &rej):
		t.Errorf("error %v is not a *RejectError; want reason %q", err, want)
	case !errors.Is(err, ErrRejected):
		t.Errorf("error %v does not match ErrRejected", err)
	case rej.Reason != want:
		t.Errorf("rejected with %q (%s); want %q", rej.Reason, rej.Detail, want)
	}
}

// ---------------------------------------------------------------------------
// The fixture IdP: builds and signs responses.

const (
	requestID  = "id-golden-request-0001"
	relayState = "golden-relay-handle"
)

// spec describes a response. The zero value of a field means the valid
// default; the fields are edited by each case before build.
type spec struct {
	responseID, assertionID       string
	issuer, responseIssuer        string
	nameID, nameIDFormat          string
	audiences                     []string // nil: the SP; empty non-nil: none
	noAudienceRestriction         bool
	recipient, destination        string
	noDestination                 bool
	inResponseTo                  string // Response and SubjectConfirmationData
	noInResponseTo                bool
	issueInstant                  time.Time
	notBefore, notOnOrAfter       time.Time
	scdNotOnOrAfter               time.Time
	method                        string
	status                        string
	attributes                    []saml.Attribute
	signAssertion, signResponse   bool
	sigMethod                     string
	signer                        *keyPair
	encrypt                       bool
	cipher                        xmlenc.BlockCipher  // with encrypt; nil: AES-256-GCM
	editPlain                     func([]byte) []byte // with encrypt: changes the plaintext after signing
	extraConfirmation             *saml.SubjectConfirmation
	noAssertionID, emptySubjectCD bool
	classRef                      string // the AuthnContextClassRef; "": PasswordProtectedTransport
	noClassRef                    bool   // an AuthnContext without AuthnContextClassRef
	// editAssertion, if set, changes the assertion element before it is
	// signed (and encrypted), so that the signature covers the change.
	editAssertion func(*etree.Element)
}

// valid returns the spec of a valid SP-initiated response with a signed
// assertion.
func valid() spec {
	return spec{signAssertion: true}
}

func (s *spec) defaults(k testKeys) {
	def := func(v *string, d string) {
		if *v == "" {
			*v = d
		}
	}
	def(&s.responseID, "id-response-0001")
	def(&s.assertionID, "id-assertion-0001")
	def(&s.issuer, idpEntityID)
	def(&s.responseIssuer, idpEntityID)
	def(&s.nameID, "alice@corp.example")
	def(&s.nameIDFormat, string(saml.EmailAddressNameIDFormat))
	def(&s.recipient, spACSURL)
	def(&s.destination, spACSURL)
	def(&s.inResponseTo, requestID)
	def(&s.method, "urn:oasis:names:tc:SAML:2.0:cm:bearer")
	def(&s.status, saml.StatusSuccess)
	def(&s.sigMethod, dsig.RSASHA256SignatureMethod)
	if s.issueInstant.IsZero() {
		s.issueInstant = t0
	}
	if s.notBefore.IsZero() {
		s.notBefore = t0.Add(-30 * time.Second)
	}
	if s.notOnOrAfter.IsZero() {
		s.notOnOrAfter = t0.Add(5 * time.Minute)
	}
	if s.scdNotOnOrAfter.IsZero() {
		s.scdNotOnOrAfter = t0.Add(5 * time.Minute)
	}
	if s.audiences == nil {
		s.audiences = []string{spEntityID}
	}
	if s.signer == nil {
		s.signer = &k.idp
	}
	if s.attributes == nil {
		s.attributes = []saml.Attribute{
			attr("urn:oid:0.9.2342.19200300.100.1.3", "mail", "alice@corp.example"),
			attr("urn:oid:2.16.840.1.113730.3.1.241", "displayName", "Alice Example"),
			attr("groups", "", "Staff", "Admins", "Other"),
		}
	}
}

func attr(name, friendly string, values ...string) saml.Attribute {
	a := saml.Attribute{Name: name, FriendlyName: friendly, NameFormat: "urn:oasis:names:tc:SAML:2.0:attrname-format:uri"}
	for _, v := range values {
		a.Values = append(a.Values, saml.AttributeValue{Type: "xs:string", Value: v})
	}
	return a
}

// signingContext signs with kp by method, like crewjam's IdP.
func signingContext(kp *keyPair, method string) *dsig.SigningContext {
	ctx := dsig.NewDefaultSigningContext(dsig.TLSCertKeyStore(tls.Certificate{
		Certificate: [][]byte{kp.cert.Raw}, PrivateKey: kp.key, Leaf: kp.cert,
	}))
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := ctx.SetSignatureMethod(method); err != nil {
		panic(err)
	}
	return ctx
}

// sign returns el with an enveloped signature placed right after its
// Issuer child, as the SAML schema wants it.
func sign(el *etree.Element, kp *keyPair, method string) *etree.Element {
	signed, err := signingContext(kp, method).SignEnveloped(el)
	if err != nil {
		panic(err)
	}
	// goxmldsig appends the Signature without making it a proper child
	// (etree's RemoveChild would not find it), so cut it off the slice.
	sig := signed.Child[len(signed.Child)-1].(*etree.Element)
	signed.Child = signed.Child[:len(signed.Child)-1]
	idx := 0
	for i, c := range signed.Child {
		if e, ok := c.(*etree.Element); ok && e.Tag == "Issuer" {
			idx = i + 1
			break
		}
	}
	signed.InsertChildAt(idx, sig)
	return signed
}

// assertion returns the assertion element of s, signed if asked.
func (s spec) assertion(k testKeys) *etree.Element {
	s.defaults(k)
	scd := &saml.SubjectConfirmationData{
		InResponseTo: s.inResponseTo,
		NotOnOrAfter: s.scdNotOnOrAfter,
		Recipient:    s.recipient,
	}
	if s.noInResponseTo {
		scd.InResponseTo = ""
	}
	if s.emptySubjectCD {
		scd = nil
	}
	a := &saml.Assertion{
		ID:           s.assertionID,
		IssueInstant: s.issueInstant,
		Version:      "2.0",
		Issuer:       saml.Issuer{Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity", Value: s.issuer},
		Subject: &saml.Subject{
			NameID:               &saml.NameID{Format: s.nameIDFormat, Value: s.nameID},
			SubjectConfirmations: []saml.SubjectConfirmation{{Method: s.method, SubjectConfirmationData: scd}},
		},
		Conditions: &saml.Conditions{NotBefore: s.notBefore, NotOnOrAfter: s.notOnOrAfter},
		AuthnStatements: []saml.AuthnStatement{{
			AuthnInstant: s.issueInstant.Add(-time.Minute),
			SessionIndex: "session-index-0001",
			AuthnContext: saml.AuthnContext{AuthnContextClassRef: &saml.AuthnContextClassRef{
				Value: "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"}},
		}},
		AttributeStatements: []saml.AttributeStatement{{Attributes: s.attributes}},
	}
	if s.classRef != "" {
		a.AuthnStatements[0].AuthnContext.AuthnContextClassRef.Value = s.classRef
	}
	if s.noClassRef {
		a.AuthnStatements[0].AuthnContext.AuthnContextClassRef = nil
	}
	if s.extraConfirmation != nil {
		a.Subject.SubjectConfirmations = append(a.Subject.SubjectConfirmations, *s.extraConfirmation)
	}
	if !s.noAudienceRestriction {
		r := saml.AudienceRestriction{}
		for i, v := range s.audiences {
			if i == 0 {
				r.Audience = saml.Audience{Value: v}
			} else {
				r.AdditionalAudiences = append(r.AdditionalAudiences, saml.Audience{Value: v})
			}
		}
		if len(s.audiences) > 0 {
			a.Conditions.AudienceRestrictions = []saml.AudienceRestriction{r}
		}
	}
	el := a.Element()
	if s.editAssertion != nil {
		s.editAssertion(el)
	}
	if s.noAssertionID {
		el.RemoveAttr("ID")
	}
	if s.signAssertion {
		el = sign(el, s.signer, s.sigMethod)
	}
	if s.encrypt {
		plain := serialize(el)
		if s.editPlain != nil {
			plain = s.editPlain(plain)
		}
		el = encryptAssertion(k, plain, s.cipher)
	}
	return el
}

// encryptAssertion returns a saml:EncryptedAssertion holding plain,
// encrypted to the SP's certificate as crewjam's IdP does: RSA-OAEP key
// transport and cipher (nil: AES-256-GCM).
func encryptAssertion(k testKeys, plain []byte, cipher xmlenc.BlockCipher) *etree.Element {
	enc := xmlenc.OAEP()
	enc.BlockCipher = xmlenc.AES256GCM
	if cipher != nil {
		enc.BlockCipher = cipher
	}
	data, err := enc.Encrypt(k.sp.cert, plain, nil)
	if err != nil {
		panic(err)
	}
	data.CreateAttr("Type", "http://www.w3.org/2001/04/xmlenc#Element")
	ea := etree.NewElement("saml:EncryptedAssertion")
	ea.CreateAttr("xmlns:saml", nsAssertion)
	ea.AddChild(data)
	return ea
}

// response returns the response element of s around the given assertion
// elements (default: the assertion of s).
func (s spec) response(k testKeys, assertions ...*etree.Element) *etree.Element {
	if assertions == nil {
		assertions = []*etree.Element{s.assertion(k)}
	}
	s.defaults(k)
	r := &saml.Response{
		ID:           s.responseID,
		InResponseTo: s.inResponseTo,
		Version:      "2.0",
		IssueInstant: s.issueInstant,
		Destination:  s.destination,
		Issuer:       &saml.Issuer{Format: "urn:oasis:names:tc:SAML:2.0:nameid-format:entity", Value: s.responseIssuer},
		Status:       saml.Status{StatusCode: saml.StatusCode{Value: s.status}},
	}
	if s.noInResponseTo {
		r.InResponseTo = ""
	}
	if s.noDestination {
		r.Destination = ""
	}
	el := r.Element()
	for _, a := range assertions {
		el.AddChild(a)
	}
	if s.signResponse {
		el = sign(el, s.signer, s.sigMethod)
	}
	return el
}

// build returns the serialized response document of s.
func (s spec) build(k testKeys) []byte { return serialize(s.response(k)) }

func serialize(el *etree.Element) []byte {
	doc := etree.NewDocument()
	doc.SetRoot(el)
	b, err := doc.WriteToBytes()
	if err != nil {
		panic(err)
	}
	return b
}

// parse reads a document for mutation.
func parse(b []byte) *etree.Element {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(b); err != nil {
		panic(err)
	}
	return doc.Root()
}

// child returns the first child element of el with the given tag.
func child(el *etree.Element, tag string) *etree.Element {
	for _, c := range el.ChildElements() {
		if c.Tag == tag {
			return c
		}
	}
	panic("no " + tag + " in " + el.Tag)
}

// replaceOnce replaces the first old in b by new, and panics if absent.
func replaceOnce(b []byte, old, new string) []byte {
	if !bytes.Contains(b, []byte(old)) {
		panic("replaceOnce: " + old + " not found")
	}
	return bytes.Replace(b, []byte(old), []byte(new), 1)
}

// formPost is an application/x-www-form-urlencoded body.
func formPost(fields ...string) string {
	v := url.Values{}
	for i := 0; i+1 < len(fields); i += 2 {
		v.Add(fields[i], fields[i+1])
	}
	return v.Encode()
}
