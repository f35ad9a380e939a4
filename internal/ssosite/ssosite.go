// Package ssosite is the test harness the backends share for SAML sign-in
// through the facade across replicas: two Guard replicas behind one
// address, with the host's SAML routes, and crewjam's samlidp in process as
// the IdP. A backend's test builds the replicas on its stores and checks
// what its storage holds; the browser's round trips are here.
package ssosite

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"html"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/crewjam/saml/samlidp"
	"golang.org/x/crypto/bcrypt"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/sso"
)

// Tenant is the tenant a Site's connection is for ("acme").
const Tenant = "acme"

// Site is two replicas of a host application behind one address and an
// IdP. Logins start on replica A; answers at the ACS go to B, A, B, …
// unless the request names its replica (?replica=A or B); every other
// request goes to A.
type Site struct {
	URL      string          // the replicas' one address
	IdPURL   string          // the IdP's address
	Replicas [2]*guard.Guard // A and B
	// Conn is the connection as SetSSOConnection returned it (with the
	// metadata it fetched from the IdP).
	Conn sso.Connection
	// Served counts the answers each replica's ACS handled.
	Served [2]atomic.Int64

	t *testing.T
}

// KeyPair returns an RSA key and a self-signed certificate for cn.
func KeyPair(t testing.TB, cn string) (*rsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return k, c
}

// New starts a Site whose replicas A and B run on stores[0] and
// stores[1] with auditKey, on the real clock (the IdP stamps its
// assertions with it), and connects Tenant to the IdP with conn (its
// Tenant and MetadataURL are filled in), after creating the tenant
// through A. The IdP knows the site as a service provider.
func New(t *testing.T, stores [2]guard.Stores, auditKey []byte, conn sso.Connection) *Site {
	t.Helper()
	spKey, spCert := KeyPair(t, "sp")
	idpKey, idpCert := KeyPair(t, "idp")
	s := &Site{t: t}
	site := httptest.NewServer(nil)
	t.Cleanup(site.Close)
	s.URL = site.URL
	var handlers [2]http.Handler
	for i := range stores {
		g, err := guard.New(guard.Config{
			Stores:   stores[i],
			AuditKey: auditKey,
			Hasher:   auth.HasherConfig{Memory: 64, Time: 1},
			SSO:      &sso.Config{BaseURL: site.URL, Key: spKey, Certificate: spCert, AllowInsecureMetadata: true},
		})
		if err != nil {
			t.Fatal(err)
		}
		s.Replicas[i] = g
		handlers[i] = routes(g, string(rune('A'+i)), &s.Served[i])
	}
	var acs atomic.Int64
	site.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i := 0
		switch {
		case r.URL.Query().Has("replica"):
			if r.URL.Query().Get("replica") == "B" {
				i = 1
			}
		case strings.HasSuffix(r.URL.Path, "/acs"):
			i = int(acs.Add(1) % 2)
		}
		handlers[i].ServeHTTP(w, r)
	})

	idpSrv := httptest.NewUnstartedServer(nil)
	s.IdPURL = "http://" + idpSrv.Listener.Addr().String()
	iu, _ := url.Parse(s.IdPURL)
	idp, err := samlidp.New(samlidp.Options{URL: *iu, Key: idpKey, Certificate: idpCert, Store: &samlidp.MemoryStore{}, Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	idpSrv.Config.Handler = idp
	idpSrv.Start()
	t.Cleanup(idpSrv.Close)

	ctx := t.Context()
	sys := guard.System("test")
	if _, err := s.Replicas[0].CreateTenant(ctx, sys, Tenant, "Acme", guard.Policy{}); err != nil {
		t.Fatal(err)
	}
	conn.Tenant, conn.MetadataURL = Tenant, s.IdPURL+"/metadata"
	if s.Conn, err = s.Replicas[0].SetSSOConnection(ctx, sys, conn); err != nil {
		t.Fatal(err)
	}
	s.IdPPut("/services/"+Tenant, s.Body(http.Get(s.URL+"/saml/"+Tenant+"/metadata")))
	return s
}

// routes is the host application of one replica: the SAML routes
// (Routes) and /whoami, which says "user ID sso yes|no replica NAME".
func routes(g *guard.Guard, name string, served *atomic.Int64) http.Handler {
	mux := http.NewServeMux()
	Routes(mux, g, "/whoami", served)
	mux.Handle("GET /whoami", guard.RequireSession(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := guard.PrincipalFrom(r.Context())
		sso := map[bool]string{true: "yes", false: "no"}[p.Flags&guard.FlagSSO != 0]
		io.WriteString(w, "user "+p.UserID+" sso "+sso+" replica "+name)
	})))
	return g.Middleware(mux)
}

// Routes adds a host's SAML routes through g to mux, as a host
// application mounts them: GET /saml/{tenant}/metadata, GET
// /saml/{tenant}/login (which returns to returnTo after the sign-in) and
// POST /saml/{tenant}/acs (403 when the sign-in fails; it counts the
// answers it handles in served, if not nil). Mount mux inside
// g.Middleware.
func Routes(mux *http.ServeMux, g *guard.Guard, returnTo string, served *atomic.Int64) {
	mux.HandleFunc("GET /saml/{tenant}/metadata", func(w http.ResponseWriter, r *http.Request) {
		b, err := g.SSOMetadata(r.PathValue("tenant"))
		if err != nil {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	})
	mux.HandleFunc("GET /saml/{tenant}/login", func(w http.ResponseWriter, r *http.Request) {
		l, err := g.StartSSO(r.Context(), guard.SSOStart{Tenant: r.PathValue("tenant"), ReturnTo: returnTo, IP: g.ClientIP(r)})
		if err != nil {
			http.Error(w, "sso unavailable", http.StatusBadRequest)
			return
		}
		http.Redirect(w, r, l.RedirectURL, http.StatusSeeOther)
	})
	mux.HandleFunc("POST /saml/{tenant}/acs", func(w http.ResponseWriter, r *http.Request) {
		if served != nil {
			served.Add(1)
		}
		res, to, err := g.CompleteSSO(r.Context(), guard.SSOResponse{Tenant: r.PathValue("tenant"), Request: r, IP: g.ClientIP(r), UserAgent: r.UserAgent()})
		if err != nil {
			http.Error(w, guard.ErrSSOFailed.Error(), http.StatusForbidden)
			return
		}
		g.SetSessionCookie(w, res.Token, res.Session)
		http.Redirect(w, r, to, http.StatusSeeOther)
	})
}

// IdPPut PUTs doc to the IdP's admin API at path (a service, a user, a
// shortcut).
func (s *Site) IdPPut(path, doc string) {
	s.t.Helper()
	IdPPut(s.t, s.IdPURL, path, doc)
}

// IdPPut PUTs doc to the admin API of the samlidp at idpURL, at path.
// A user's "password" goes as a bcrypt hash of it at bcrypt's lowest
// cost ("hashed_password"): samlidp hashes a password at
// bcrypt.DefaultCost, and every sign-in at the IdP then costs as much
// (a compare: 57 ms, 0.7 s under -race; at MinCost 1 ms and 15 ms):
// most of an SSO test's time.
func IdPPut(t testing.TB, idpURL, path, doc string) {
	t.Helper()
	if strings.HasPrefix(path, "/users/") {
		doc = cheapPassword(t, doc)
	}
	req, _ := http.NewRequest(http.MethodPut, idpURL+path, strings.NewReader(doc))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		t.Fatalf("PUT %s: %s", path, resp.Status)
	}
}

// cheapPassword returns the samlidp user document doc with its
// "password", if any, replaced by "hashed_password", a bcrypt hash of it
// at bcrypt.MinCost: the IdP checks a sign-in against the hash at the
// hash's cost.
func cheapPassword(t testing.TB, doc string) string {
	t.Helper()
	var user map[string]any
	if err := json.Unmarshal([]byte(doc), &user); err != nil {
		t.Fatalf("IdP user document %s: %v", doc, err)
	}
	pw, ok := user["password"].(string)
	if !ok {
		return doc
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(pw), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	delete(user, "password")
	user["hashed_password"] = hash // []byte: base64, as samlidp.User reads it
	out, err := json.Marshal(user)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

// Principal returns the principal of the Guard session browser b holds
// for siteURL: the first of its cookies g authenticates, or the last
// error.
func Principal(ctx context.Context, g *guard.Guard, siteURL string, b *http.Client) (guard.Principal, error) {
	u, _ := url.Parse(siteURL)
	err := guard.ErrUnauthenticated
	for _, c := range b.Jar.Cookies(u) {
		p, perr := g.Authenticate(ctx, c.Value)
		if perr == nil {
			return p, nil
		}
		err = perr
	}
	return guard.Principal{}, err
}

// Body reads a response's body whole, failing the test on any error.
func (s *Site) Body(resp *http.Response, err error) string {
	s.t.Helper()
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		s.t.Fatal(err)
	}
	return string(b)
}

var (
	inputRE  = regexp.MustCompile(`<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"`)
	actionRE = regexp.MustCompile(`<form[^>]*action="([^"]+)"`)
)

// FormOf returns the action and fields of the first form in page.
func FormOf(t testing.TB, page string) (string, url.Values) {
	t.Helper()
	m := actionRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no form in page:\n%s", page)
	}
	v := url.Values{}
	for _, in := range inputRE.FindAllStringSubmatch(page, -1) {
		v.Set(in[1], html.UnescapeString(in[2]))
	}
	return html.UnescapeString(m[1]), v
}

// Answer starts a login in a fresh browser and signs in at the IdP as
// user with password; it returns the browser with the ACS form the IdP
// gave it (not posted). started, if not nil, runs once the login has
// started, before the IdP is asked: a test checks there that the
// tracked request is stored.
func (s *Site) Answer(user, password string, started func()) (*http.Client, string, url.Values) {
	s.t.Helper()
	jar, _ := cookiejar.New(nil)
	br := &http.Client{Jar: jar}
	page := s.Body(br.Get(s.URL + "/saml/" + Tenant + "/login"))
	if started != nil {
		started()
	}
	action, fields := FormOf(s.t, page)
	fields.Set("user", user)
	fields.Set("password", password)
	acsAction, acsFields := FormOf(s.t, s.Body(br.PostForm(action, fields)))
	return br, acsAction, acsFields
}

// PostMany posts the form fields to action n times at once, alternating
// the replicas, from a client that follows no redirect, and returns how
// many answers had each status.
func (s *Site) PostMany(n int, action string, fields url.Values) map[int]int {
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	var mu sync.Mutex
	var wg sync.WaitGroup
	status := map[int]int{}
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.PostForm(action+"?replica="+string(rune('A'+i%2)), fields)
			if err != nil {
				s.t.Error(err)
				return
			}
			resp.Body.Close()
			mu.Lock()
			status[resp.StatusCode]++
			mu.Unlock()
		}()
	}
	wg.Wait()
	return status
}
