package sso

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func selfSigned(t testing.TB, pub, priv any) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(9), Subject: pkix.Name{CommonName: "x"},
		NotBefore: time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), NotAfter: time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func TestParseMetadata(t *testing.T) {
	k := loadKeys(t)
	good := idpMetadata(time.Time{}, k.idp.cert, k.idp2.cert)
	idp, err := ParseMetadata([]byte(good), t0)
	if err != nil {
		t.Fatal(err)
	}
	if idp.EntityID != idpEntityID || idp.SSORedirectURL != idpSSOURL || idp.SSOPostURL != idpSSOURL ||
		idp.SLORedirectURL != idpSLOURL || len(idp.Certificates) != 2 || !idp.ValidUntil.IsZero() {
		t.Errorf("ParseMetadata = %+v", idp)
	}

	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	ecCert := selfSigned(t, &ec.PublicKey, ec)
	if _, err := ParseMetadata([]byte(idpMetadata(time.Time{}, ecCert)), t0); err != nil {
		t.Errorf("ECDSA certificate: %v", err)
	}
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	smallCert := selfSigned(t, &small.PublicKey, small)

	entities := func(n int) string {
		one := strings.Replace(good, `<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata"`, `<EntityDescriptor`, 1)
		return `<EntitiesDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" validUntil="2030-06-02T00:00:00Z">` +
			strings.Repeat(one, n) + `<EntityDescriptor entityID="https://sp.example/"><SPSSODescriptor protocolSupportEnumeration="urn:oasis:names:tc:SAML:2.0:protocol"/></EntityDescriptor></EntitiesDescriptor>`
	}
	if idp, err := ParseMetadata([]byte(entities(1)), t0); err != nil || idp.ValidUntil.IsZero() {
		t.Errorf("EntitiesDescriptor with one IdP = %+v, %v", idp, err)
	}
	if _, err := ParseMetadata([]byte(entities(1)), time.Date(2030, 6, 2, 0, 0, 0, 0, time.UTC)); err == nil {
		t.Errorf("an expired EntitiesDescriptor was accepted")
	}

	for _, tc := range []struct{ name, doc string }{
		{"empty", ""},
		{"not XML", "hello"},
		{"not metadata", `<html/>`},
		{"wrong namespace", strings.Replace(good, "urn:oasis:names:tc:SAML:2.0:metadata", "urn:x", -1)},
		{"doctype", `<!DOCTYPE x [<!ENTITY e "x">]>` + good},
		{"no entity ID", strings.Replace(good, `entityID="`+idpEntityID+`"`, `entityID=""`, 1)},
		{"SAML 1.1 only", strings.Replace(good, "urn:oasis:names:tc:SAML:2.0:protocol", "urn:oasis:names:tc:SAML:1.1:protocol", 1)},
		{"javascript SSO", strings.Replace(good, `Location="`+idpSSOURL+`"`, `Location="javascript:alert(1)"`, -1)},
		{"relative SSO", strings.Replace(good, `Location="`+idpSSOURL+`"`, `Location="/sso"`, -1)},
		{"no SSO", strings.Replace(good, "SingleSignOnService", "ManageNameIDService", -1)},
		{"no signing certificate", strings.Replace(good, `use="signing"`, `use="encryption"`, -1)},
		{"bad certificate", strings.Replace(good, "MII", "!!!", 1)},
		{"short RSA key", idpMetadata(time.Time{}, smallCert)},
		{"expired", idpMetadata(t0, k.idp.cert)},
		{"two IdPs", entities(2)},
		{"too large", good + strings.Repeat(" ", MaxMetadataBytes)},
	} {
		var in *InputError
		if _, err := ParseMetadata([]byte(tc.doc), t0); !errors.As(err, &in) || in.Field != "Metadata" {
			t.Errorf("%s: ParseMetadata = %v, want an *InputError for Metadata", tc.name, err)
		}
	}
}

func FuzzParseMetadata(f *testing.F) {
	k := loadKeys(f)
	f.Add([]byte(idpMetadata(time.Time{}, k.idp.cert)))
	f.Add([]byte(`<EntitiesDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata"><EntitiesDescriptor/></EntitiesDescriptor>`))
	f.Add([]byte(`<!DOCTYPE a><a/>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		idp, err := ParseMetadata(b, t0)
		if err == nil && (idp.EntityID == "" || len(idp.Certificates) == 0 || (idp.SSORedirectURL == "" && idp.SSOPostURL == "")) {
			t.Errorf("accepted unusable metadata: %+v", idp)
		}
	})
}

func TestConnectionValidate(t *testing.T) {
	k := loadKeys(t)
	ok := Connection{Tenant: "acme", Metadata: idpMetadata(time.Time{}, k.idp.cert)}
	if err := ok.Validate(t0); err != nil {
		t.Fatal(err)
	}
	long := strings.Repeat("x", 300)
	for _, tc := range []struct {
		field string
		edit  func(*Connection)
	}{
		{"tenant", func(c *Connection) { c.Tenant = "" }},
		{"tenant", func(c *Connection) { c.Tenant = "a/b" }},
		{"tenant", func(c *Connection) { c.Tenant = ".." }},
		{"tenant", func(c *Connection) { c.Tenant = strings.Repeat("a", 64) }},
		{"Metadata", func(c *Connection) { c.Metadata = "" }},
		{"Metadata", func(c *Connection) { c.Metadata = "<x/>" }},
		{"MetadataURL", func(c *Connection) { c.MetadataURL = "ftp://idp.example/metadata" }},
		{"MetadataURL", func(c *Connection) { c.MetadataURL = "/metadata" }},
		{"ExtraCertificates", func(c *Connection) { c.ExtraCertificates = []string{"not PEM"} }},
		{"ExtraCertificates", func(c *Connection) { c.ExtraCertificates = make([]string, 11) }},
		{"ClockSkew", func(c *Connection) { c.ClockSkew = -time.Second }},
		{"ClockSkew", func(c *Connection) { c.ClockSkew = 4 * time.Minute }},
		{"EmailAttribute", func(c *Connection) { c.EmailAttribute = long }},
		{"NameAttribute", func(c *Connection) { c.NameAttribute = "a\nb" }},
		{"GroupsAttribute", func(c *Connection) { c.GroupsAttribute = " groups" }},
		{"GroupRoles", func(c *Connection) { c.GroupRoles = map[string]string{"": "admin"} }},
		{"GroupRoles", func(c *Connection) { c.GroupRoles = map[string]string{"g": ""} }},
		{"GroupRoles", func(c *Connection) { c.GroupRoles = map[string]string{"g": strings.Repeat("r", 65)} }},
		{"DefaultRole", func(c *Connection) { c.DefaultRole = "a\x00" }},
		{"AllowedDomains", func(c *Connection) { c.AllowedDomains = []string{"localhost"} }},
		{"AllowedDomains", func(c *Connection) { c.AllowedDomains = []string{"exa mple.com"} }},
		{"AllowedDomains", func(c *Connection) { c.AllowedDomains = []string{"-x.com"} }},
	} {
		c := ok.clone()
		tc.edit(&c)
		var in *InputError
		if err := c.Validate(t0); !errors.As(err, &in) || in.Field != tc.field {
			t.Errorf("%s: Validate = %v", tc.field, err)
		}
	}
	c := ok.clone()
	c.Metadata, c.MetadataURL = "", "https://idp.example/metadata"
	if err := c.Validate(t0); err != nil {
		t.Errorf("URL without fetched metadata: %v", err)
	}
}

// metadataServer serves the IdP metadata it holds, counting requests.
type metadataServer struct {
	*httptest.Server
	mu     sync.Mutex
	body   string
	status int
	hits   atomic.Int32
}

func newMetadataServer(t *testing.T, body string) *metadataServer {
	m := &metadataServer{body: body, status: http.StatusOK}
	m.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		m.hits.Add(1)
		m.mu.Lock()
		defer m.mu.Unlock()
		w.Header().Set("Content-Type", "application/samlmetadata+xml")
		w.WriteHeader(m.status)
		_, _ = w.Write([]byte(m.body))
	}))
	t.Cleanup(m.Close)
	return m
}

func (m *metadataServer) set(status int, body string) {
	m.mu.Lock()
	m.status, m.body = status, body
	m.mu.Unlock()
}

func newFetchEnv(t *testing.T, cfg func(*Config)) (*Provider, *memStores, *clock) {
	k := loadKeys(t)
	st, clk := newMemStores(), &clock{now: t0}
	c := Config{BaseURL: baseURL, Key: k.sp.key, Certificate: k.sp.cert, Stores: st.stores(), Now: clk.Now, AllowInsecureMetadata: true}
	if cfg != nil {
		cfg(&c)
	}
	p, err := New(c)
	if err != nil {
		t.Fatal(err)
	}
	return p, st, clk
}

func TestMetadataURLRefresh(t *testing.T) {
	k := loadKeys(t)
	srv := newMetadataServer(t, idpMetadata(time.Time{}, k.idp.cert))
	p, st, clk := newFetchEnv(t, nil)
	ctx := t.Context()

	c, err := p.PutConnection(ctx, Connection{Tenant: tenant, MetadataURL: srv.URL + "/metadata"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(c.Metadata, idpEntityID) || !c.MetadataFetchedAt.Equal(t0) {
		t.Fatalf("PutConnection did not fetch: %+v", c)
	}

	// Key rollover published by the IdP: the refresh picks it up.
	clk.Set(t0.Add(2 * time.Hour))
	srv.set(http.StatusOK, idpMetadata(time.Time{}, k.idp2.cert))
	changed, err := p.RefreshMetadata(ctx, tenant)
	if err != nil || !changed {
		t.Fatalf("RefreshMetadata = %v, %v", changed, err)
	}
	stored, _ := st.Connection(ctx, tenant)
	if idp, _ := ParseMetadata([]byte(stored.Metadata), t0); !idp.Certificates[0].Equal(k.idp2.cert) || !stored.MetadataFetchedAt.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("stored metadata not refreshed")
	}

	// Failures keep the last good copy.
	last := stored
	for _, tc := range []struct {
		name   string
		status int
		body   string
		check  func(error) bool
	}{
		{"server error", 500, "oops", func(err error) bool { var fe *FetchError; return errors.As(err, &fe) && fe.Status == 500 }},
		{"garbage", 200, "<html>", func(err error) bool { var in *InputError; return errors.As(err, &in) }},
		{"expired", 200, idpMetadata(t0, k.idp.cert), func(err error) bool { var in *InputError; return errors.As(err, &in) }},
		{"other entity", 200, strings.Replace(idpMetadata(time.Time{}, k.idp.cert), idpEntityID, "https://evil.example/", 1),
			func(err error) bool { var in *InputError; return errors.As(err, &in) }},
		{"too large", 200, strings.Repeat("x", MaxMetadataBytes+1), func(err error) bool { var fe *FetchError; return errors.As(err, &fe) }},
	} {
		clk.Set(clk.Now().Add(time.Hour))
		srv.set(tc.status, tc.body)
		changed, err := p.RefreshMetadata(ctx, tenant)
		if changed || !tc.check(err) {
			t.Errorf("%s: RefreshMetadata = %v, %v", tc.name, changed, err)
		}
		if now, _ := st.Connection(ctx, tenant); now.Metadata != last.Metadata || !now.MetadataFetchedAt.Equal(last.MetadataFetchedAt) {
			t.Errorf("%s: the last good metadata was replaced", tc.name)
		}
	}

	// A fetch from a URL the administrator has since replaced never lands.
	srv.set(http.StatusOK, idpMetadata(time.Time{}, k.idp.cert))
	if ok, err := st.UpdateMetadata(ctx, tenant, "https://old.example/metadata", "<x/>", clk.Now().Add(time.Hour)); ok || err != nil {
		t.Errorf("UpdateMetadata from another URL = %v, %v", ok, err)
	}

	// Logins use the refreshed key.
	e := &env{t: t, k: k, p: p, st: st, clock: clk}
	clk.Set(t0.Add(2 * time.Second))
	e.track(requestID, relayState)
	if _, err := e.post(spec{signAssertion: true, signer: &k.idp2}.build(k), relayState); err != nil {
		t.Errorf("login signed with the rolled-over key: %v", err)
	}
	e.track("id-2", relayState)
	_, err = e.post(spec{signAssertion: true, inResponseTo: "id-2", assertionID: "id-a2"}.build(k), relayState)
	wantReason(t, err, ReasonUntrustedCert)

	// No URL: nothing to refresh.
	if _, err := p.PutConnection(ctx, Connection{Tenant: "other", Metadata: idpMetadata(time.Time{}, k.idp.cert)}); err != nil {
		t.Fatal(err)
	}
	if changed, err := p.RefreshMetadata(ctx, "other"); changed || err != nil {
		t.Errorf("RefreshMetadata without a URL = %v, %v", changed, err)
	}
	if _, err := p.RefreshMetadata(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("RefreshMetadata of an unknown tenant = %v", err)
	}
}

func TestRefresher(t *testing.T) {
	k := loadKeys(t)
	srv := newMetadataServer(t, idpMetadata(time.Time{}, k.idp.cert))
	p, _, clk := newFetchEnv(t, nil)
	ctx := t.Context()
	if _, err := p.PutConnection(ctx, Connection{Tenant: tenant, MetadataURL: srv.URL}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.PutConnection(ctx, Connection{Tenant: "static", Metadata: idpMetadata(time.Time{}, k.idp.cert)}); err != nil {
		t.Fatal(err)
	}
	type event struct {
		tenant  string
		changed bool
		err     error
	}
	var events []event
	r := &Refresher{
		Provider: p,
		Tenants:  func(context.Context) ([]string, error) { return []string{tenant, "static", "nobody"}, nil },
		OnRefresh: func(tenant string, changed bool, err error) {
			events = append(events, event{tenant, changed, err})
		},
	}
	step := func(d time.Duration) {
		t.Helper()
		clk.Set(clk.Now().Add(d))
		if err := r.RefreshDue(ctx); err != nil {
			t.Fatal(err)
		}
	}
	hits := srv.hits.Load() // 1: the PutConnection fetch
	step(30 * time.Minute)  // fresh: no fetch
	if srv.hits.Load() != hits || len(events) != 0 {
		t.Fatalf("fetched fresh metadata: %d hits, %v", srv.hits.Load(), events)
	}
	step(31 * time.Minute) // older than an hour
	if srv.hits.Load() != hits+1 || len(events) != 1 || events[0].tenant != tenant || events[0].err != nil || !events[0].changed {
		t.Fatalf("after an hour: %d hits, %+v", srv.hits.Load(), events)
	}
	srv.set(http.StatusServiceUnavailable, "")
	step(61 * time.Minute)
	if len(events) != 2 || events[1].err == nil {
		t.Fatalf("failed fetch not reported: %+v", events)
	}
	step(time.Minute) // within RetryAfter: no new attempt
	if len(events) != 2 {
		t.Errorf("retried before RetryAfter: %+v", events)
	}
	srv.set(http.StatusOK, idpMetadata(time.Time{}, k.idp.cert))
	step(5 * time.Minute)
	if len(events) != 3 || events[2].err != nil {
		t.Errorf("no retry after RetryAfter: %+v", events)
	}

	// Run stops with its context.
	ctx2, cancel := context.WithCancel(ctx)
	done := make(chan error)
	go func() { done <- r.Run(ctx2) }()
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Run = %v", err)
	}
}

// TestMetadataFetchGuards: the default client refuses non-public
// addresses and http unless AllowInsecureMetadata, and gives up after
// MetadataTimeout.
func TestMetadataFetchGuards(t *testing.T) {
	k := loadKeys(t)
	tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(idpMetadata(time.Time{}, k.idp.cert)))
	}))
	defer tls.Close()
	p, _, _ := newFetchEnv(t, func(c *Config) { c.AllowInsecureMetadata = false })
	var fe *FetchError
	if _, err := p.FetchMetadata(t.Context(), tls.URL); !errors.As(err, &fe) || !strings.Contains(err.Error(), "non-public") {
		t.Errorf("fetch from 127.0.0.1 = %v, want a refusal", err)
	}
	var in *InputError
	if _, err := p.FetchMetadata(t.Context(), "http://idp.example/metadata"); !errors.As(err, &in) {
		t.Errorf("http URL = %v, want an *InputError", err)
	}
	if _, err := p.PutConnection(t.Context(), Connection{Tenant: tenant, MetadataURL: "http://idp.example/metadata"}); !errors.As(err, &in) {
		t.Errorf("PutConnection with an http URL = %v", err)
	}
	// With the test server's own client, https to loopback works.
	p, _, _ = newFetchEnv(t, func(c *Config) { c.AllowInsecureMetadata = false; c.HTTPClient = tls.Client() })
	if _, err := p.FetchMetadata(t.Context(), tls.URL); err != nil {
		t.Errorf("fetch with the given client: %v", err)
	}

	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	p, _, _ = newFetchEnv(t, func(c *Config) { c.MetadataTimeout = 100 * time.Millisecond })
	start := time.Now()
	if _, err := p.FetchMetadata(t.Context(), slow.URL); !errors.As(err, &fe) || time.Since(start) > 3*time.Second {
		t.Errorf("slow server: %v after %v", err, time.Since(start))
	}

	for _, ip := range []string{"127.0.0.1", "10.1.2.3", "192.168.0.1", "169.254.169.254", "100.64.0.1", "::1", "fe80::1", "fc00::1", "0.0.0.0", "::ffff:127.0.0.1"} {
		if publicAddr(mustAddr(ip)) {
			t.Errorf("%s counted as public", ip)
		}
	}
	for _, ip := range []string{"8.8.8.8", "2606:4700::1111", "93.184.216.34"} {
		if !publicAddr(mustAddr(ip)) {
			t.Errorf("%s not counted as public", ip)
		}
	}
}

func mustAddr(s string) netip.Addr { return netip.MustParseAddr(s) }
