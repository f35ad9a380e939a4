package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"html"
	"io"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guardhq/guard/sso"
	"github.com/guardhq/guard/store/memstore"
)

// TestDemoIdP starts the demo IdP, checks its metadata, and signs in as
// alice through a Guard service provider, the way the example server
// does.
func TestDemoIdP(t *testing.T) {
	// The service provider: a Provider whose metadata is served over HTTP.
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "sp"}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	der, _ := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	cert, _ := x509.ParseCertificate(der)
	var p *sso.Provider
	spSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := p.Metadata("demo")
		_, _ = w.Write(b)
	}))
	defer spSrv.Close()
	p, err := sso.New(sso.Config{BaseURL: spSrv.URL, Key: key, Certificate: cert, Stores: memstore.NewSSO().Stores(), AllowInsecureMetadata: true})
	if err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	type started struct {
		base  string
		users []user
	}
	ready := make(chan started, 1)
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, config{addr: "127.0.0.1:0", spMetadata: spSrv.URL + "/saml/demo/metadata", keyDir: t.TempDir()},
			func(base string, users []user) { ready <- started{base, users} })
	}()
	var s started
	select {
	case s = <-ready:
	case err := <-done:
		t.Fatal(err)
	}
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("run: %v", err)
		}
	}()

	// Its metadata is what Guard expects.
	resp, err := http.Get(s.base + "/metadata")
	if err != nil {
		t.Fatal(err)
	}
	md, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	idp, err := sso.ParseMetadata(md, time.Now())
	if err != nil {
		t.Fatalf("metadata: %v\n%s", err, md)
	}
	if idp.EntityID != s.base+"/metadata" || idp.SSORedirectURL != s.base+"/sso" {
		t.Errorf("metadata = %+v", idp)
	}
	// The administrative API is closed.
	resp, err = http.Get(s.base + "/users/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("GET /users/: %s", resp.Status)
	}

	// Sign in as alice.
	if _, err := p.PutConnection(ctx, sso.Connection{Tenant: "demo", MetadataURL: s.base + "/metadata", GroupRoles: map[string]string{"admins": "admin"}}); err != nil {
		t.Fatal(err)
	}
	login, err := p.StartLogin(ctx, "demo", sso.LoginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar}
	action, fields := postForm(t, browser, http.MethodGet, login.RedirectURL, nil)
	fields.Set("user", s.users[0].email)
	fields.Set("password", s.users[0].password)
	_, fields = postForm(t, browser, http.MethodPost, action, fields)
	res, err := p.ParseResponse(ctx, "demo", fields.Get("SAMLResponse"), fields.Get("RelayState"), "")
	if err != nil {
		t.Fatal(err)
	}
	if res.Email != "alice@example.com" || res.Name != "Alice Admin" || strings.Join(res.Roles, ",") != "admin" {
		t.Errorf("result = %+v", res)
	}
}

var (
	inputRE  = regexp.MustCompile(`<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"`)
	actionRE = regexp.MustCompile(`<form[^>]*action="([^"]+)"`)
)

// postForm fetches a page and returns its form's action and fields.
func postForm(t *testing.T, c *http.Client, method, target string, fields url.Values) (string, url.Values) {
	t.Helper()
	var resp *http.Response
	var err error
	if method == http.MethodGet {
		resp, err = c.Get(target)
	} else {
		resp, err = c.PostForm(target, fields)
	}
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	m := actionRE.FindStringSubmatch(string(b))
	if resp.StatusCode != http.StatusOK || m == nil {
		t.Fatalf("%s %s: %s\n%s", method, target, resp.Status, b)
	}
	v := url.Values{}
	for _, in := range inputRE.FindAllStringSubmatch(string(b), -1) {
		v.Set(in[1], html.UnescapeString(in[2]))
	}
	return html.UnescapeString(m[1]), v
}

// The SP's metadata is read again at the next sign-in once a second has
// passed (a service provider restarted with a new key is trusted at
// once), and the last copy serves while the SP does not answer.
func TestSPMetadataReread(t *testing.T) {
	var fetches atomic.Int32
	var down atomic.Bool
	sp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		if down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		w.Write([]byte(`<EntityDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata" entityID="https://sp.test/metadata"></EntityDescriptor>`))
	}))
	defer sp.Close()
	src := &spSource{src: sp.URL}
	req := httptest.NewRequest(http.MethodGet, "/sso", nil)
	get := func(wantFetches int32) {
		t.Helper()
		md, err := src.GetServiceProvider(req, "https://sp.test/metadata")
		if err != nil || md.EntityID != "https://sp.test/metadata" || fetches.Load() != wantFetches {
			t.Fatalf("GetServiceProvider: %v, %v after %d fetches, want %d", md, err, fetches.Load(), wantFetches)
		}
	}
	get(1)
	get(1) // the same sign-in
	time.Sleep(spMaxAge + 100*time.Millisecond)
	get(2)
	down.Store(true)
	time.Sleep(spMaxAge + 100*time.Millisecond)
	get(3) // the last copy
	if _, err := src.GetServiceProvider(req, "https://other.test/metadata"); err == nil {
		t.Error("another SP was accepted")
	}
}
