package redisstore_test

import (
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
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

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/sso"
	"github.com/guardhq/guard/store/memstore"
	"github.com/guardhq/guard/store/redisstore"
)

// newKeyPair returns an RSA key and a self-signed certificate for cn.
func newKeyPair(t testing.TB, cn string) (*rsa.PrivateKey, *x509.Certificate) {
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

var (
	inputRE  = regexp.MustCompile(`<input[^>]*name="([^"]+)"[^>]*value="([^"]*)"`)
	actionRE = regexp.MustCompile(`<form[^>]*action="([^"]+)"`)
)

// formOf returns the action and fields of the first form in page.
func formOf(t *testing.T, page string) (string, url.Values) {
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

// reader returns a function that reads a response's body whole, failing
// t on any error.
func reader(t *testing.T) func(*http.Response, error) string {
	return func(resp *http.Response, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
}

// TestFacadeSSOAcrossReplicas signs in through SAML with two Guard
// replicas behind one address, each with its own Redis client, sharing
// the tenant data (memstore here) and the Redis prefix: the login starts
// on one replica and the IdP's answer lands on the other, which finds the
// tracked request in Redis; the captured answer, posted again to the first
// replica, is refused; and an IdP-initiated answer posted concurrently to
// both replicas signs in exactly once, every other post refused by the
// replay cache in Redis.
func TestFacadeSSOAcrossReplicas(t *testing.T) {
	rs1, c, prefix := open(t)
	rs2, err := redisstore.New(newClient(t), redisstore.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	body := reader(t)
	spKey, spCert := newKeyPair(t, "sp")
	idpKey, idpCert := newKeyPair(t, "idp")
	base := memstore.New().Stores()

	site := httptest.NewServer(nil)
	t.Cleanup(site.Close)
	var replicas [2]*guard.Guard
	var handlers [2]http.Handler
	var served [2]atomic.Int64 // answers handled at each replica's ACS
	for i, rs := range []*redisstore.Store{rs1, rs2} {
		stores := rs.Stores(base)
		if stores.SSO.Requests != rs || stores.SSO.Replay != rs || stores.SSO.Connections != base.SSO.Connections {
			t.Fatalf("Stores: SSO = %+v; want Requests and Replay in Redis, Connections from the base", stores.SSO)
		}
		g, err := guard.New(guard.Config{
			Stores:   stores,
			AuditKey: auditKey,
			Hasher:   auth.HasherConfig{Memory: 64, Time: 1},
			SSO:      &sso.Config{BaseURL: site.URL, Key: spKey, Certificate: spCert, AllowInsecureMetadata: true},
		})
		if err != nil {
			t.Fatal(err)
		}
		replicas[i] = g
		mux := http.NewServeMux()
		mux.HandleFunc("GET /saml/{tenant}/metadata", func(w http.ResponseWriter, r *http.Request) {
			b, err := g.SSOMetadata(r.PathValue("tenant"))
			if err != nil {
				http.NotFound(w, r)
				return
			}
			w.Write(b)
		})
		mux.HandleFunc("GET /saml/{tenant}/login", func(w http.ResponseWriter, r *http.Request) {
			l, err := g.StartSSO(r.Context(), guard.SSOStart{Tenant: r.PathValue("tenant"), ReturnTo: "/whoami", IP: g.ClientIP(r)})
			if err != nil {
				http.Error(w, "sso unavailable", http.StatusBadRequest)
				return
			}
			http.Redirect(w, r, l.RedirectURL, http.StatusSeeOther)
		})
		mux.HandleFunc("POST /saml/{tenant}/acs", func(w http.ResponseWriter, r *http.Request) {
			served[i].Add(1)
			res, to, err := g.CompleteSSO(r.Context(), guard.SSOResponse{Tenant: r.PathValue("tenant"), Request: r, IP: g.ClientIP(r), UserAgent: r.UserAgent()})
			if err != nil {
				http.Error(w, guard.ErrSSOFailed.Error(), http.StatusForbidden)
				return
			}
			g.SetSessionCookie(w, res.Token, res.Session)
			http.Redirect(w, r, to, http.StatusSeeOther)
		})
		mux.Handle("GET /whoami", guard.RequireSession(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, _ := guard.PrincipalFrom(r.Context())
			io.WriteString(w, "user "+p.UserID+" replica "+string(rune('A'+i)))
		})))
		handlers[i] = g.Middleware(mux)
	}
	// The load balancer: logins start on replica A; the answers at the
	// ACS go to B, A, B, … unless a request names its replica (the
	// concurrent replays); everything else goes to A.
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
	idpURL := "http://" + idpSrv.Listener.Addr().String()
	iu, _ := url.Parse(idpURL)
	idp, err := samlidp.New(samlidp.Options{URL: *iu, Key: idpKey, Certificate: idpCert, Store: &samlidp.MemoryStore{}, Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	idpSrv.Config.Handler = idp
	idpSrv.Start()
	t.Cleanup(idpSrv.Close)
	idpPut := func(path, doc string) {
		t.Helper()
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

	sys := guard.System("test")
	if _, err := replicas[0].CreateTenant(ctx, sys, tenantID, "Acme", guard.Policy{}); err != nil {
		t.Fatal(err)
	}
	if _, err := replicas[0].SetSSOConnection(ctx, sys, sso.Connection{Tenant: tenantID, MetadataURL: idpURL + "/metadata",
		JIT: true, AllowedDomains: []string{"corp.example"}, IdPInitiated: true}); err != nil {
		t.Fatal(err)
	}
	idpPut("/services/acme", body(http.Get(site.URL+"/saml/acme/metadata")))
	idpPut("/users/alice", `{"name":"alice","password":"correct horse","email":"alice@corp.example","common_name":"Alice"}`)

	// answer starts a login in a fresh browser, signs in at the IdP and
	// returns the browser with the ACS form it would post (not posted).
	noRedirect := func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	answer := func() (*http.Client, string, url.Values) {
		t.Helper()
		jar, _ := cookiejar.New(nil)
		b := &http.Client{Jar: jar}
		page := body(b.Get(site.URL + "/saml/acme/login"))
		if got := keysOf(t, c, prefix+"sr:*"); len(got) != 1 {
			t.Fatalf("tracked requests in Redis after the login started: %q, want 1", got)
		}
		action, fields := formOf(t, page)
		fields.Set("user", "alice")
		fields.Set("password", "correct horse")
		acsAction, acsFields := formOf(t, body(b.PostForm(action, fields)))
		return b, acsAction, acsFields
	}

	// Started on A, answered on B, the session checked on A.
	b, action, fields := answer()
	for _, k := range keysOf(t, c, prefix+"sr:*") {
		if d, err := c.PTTL(ctx, k).Result(); err != nil || d <= 0 {
			t.Errorf("PTTL %s = %v, %v; want > 0", k, d, err)
		}
	}
	who := body(b.PostForm(action, fields))
	if !strings.HasPrefix(who, "user ") || !strings.HasSuffix(who, "replica A") {
		t.Fatalf("after the ACS on replica B, /whoami on replica A says %q", who)
	}
	if a, b := served[0].Load(), served[1].Load(); a != 0 || b != 1 {
		t.Fatalf("answers handled by replicas A and B: %d and %d, want 0 and 1", a, b)
	}
	if got := keysOf(t, c, prefix+"sr:*"); len(got) != 0 {
		t.Errorf("tracked requests left in Redis after the ACS: %q", got)
	}
	replay := keysOf(t, c, prefix+"sa:*")
	if len(replay) != 1 {
		t.Fatalf("replay records in Redis after the ACS: %q, want 1", replay)
	}
	if d, err := c.PTTL(ctx, replay[0]).Result(); err != nil || d <= 0 || d > time.Hour {
		t.Errorf("PTTL %s = %v, %v; want > 0 and within the assertion's validity", replay[0], d, err)
	}

	// The captured answer posted again, by another client, on replica A:
	// refused (the tracked request is gone, so the request check refuses
	// it before the replay cache is asked).
	replayer := &http.Client{CheckRedirect: noRedirect}
	resp, err := replayer.PostForm(action, fields)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("the replayed answer on the other replica: %s, want 403", resp.Status)
	}
	if a := served[0].Load(); a != 1 {
		t.Fatalf("answers handled by replica A: %d, want 1 (the replay)", a)
	}

	// An IdP-initiated answer (no InResponseTo: only the replay cache can
	// refuse it again), from the browser signed in at the IdP, posted 20
	// times at once to both replicas: one sign-in, 19 refusals as
	// replayed.
	idpPut("/shortcuts/guard", `{"name":"guard","service_provider":"`+site.URL+`/saml/acme/metadata"}`)
	action, fields = formOf(t, body(b.Get(idpURL+"/login/guard")))
	if fields.Get("SAMLResponse") == "" || !strings.HasSuffix(action, "/saml/acme/acs") {
		t.Fatalf("IdP-initiated answer: form to %q with fields %v", action, fields)
	}
	var mu sync.Mutex
	status := map[int]int{}
	parallel(20, func(i int) {
		resp, err := replayer.PostForm(action+"?replica="+string(rune('A'+i%2)), fields)
		if err != nil {
			t.Error(err)
			return
		}
		resp.Body.Close()
		mu.Lock()
		status[resp.StatusCode]++
		mu.Unlock()
	})
	if status[http.StatusSeeOther] != 1 || status[http.StatusForbidden] != 19 {
		t.Errorf("20 concurrent posts of one answer to two replicas: statuses %v, want one 303 and 19 403", status)
	}
	if a, b := served[0].Load(), served[1].Load(); a != 11 || b != 11 {
		t.Errorf("answers handled by replicas A and B: %d and %d, want 11 and 11", a, b)
	}
	if got := keysOf(t, c, prefix+"sa:*"); len(got) != 2 {
		t.Errorf("replay records in Redis: %q, want 2", got)
	}
	page, err := replicas[1].QueryAudit(ctx, sys, tenantID, audit.Query{Action: string(audit.SSOFailed), Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]int{}
	for _, e := range page.Events {
		reasons[e.Reason]++
	}
	if reasons[string(sso.ReasonReplayed)] != 19 || reasons[string(sso.ReasonRequestUnknown)] != 1 || len(page.Events) != 20 {
		t.Errorf("sso.failed reasons %v; want 19 %s and 1 %s", reasons, sso.ReasonReplayed, sso.ReasonRequestUnknown)
	}
}
