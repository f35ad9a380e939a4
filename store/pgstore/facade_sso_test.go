package pgstore_test

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
	"github.com/jackc/pgx/v5"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/sso"
	"github.com/guardhq/guard/store/pgstore"
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

// ssoReplica is the host application of one replica: Guard on its own
// pool, with the SAML routes through the facade and /whoami.
func ssoReplica(t *testing.T, st *pgstore.Store, siteURL, name string, key *rsa.PrivateKey, cert *x509.Certificate, acsHits *atomic.Int64) (*guard.Guard, http.Handler) {
	t.Helper()
	// The clock is the real one: the IdP stamps its assertions with it.
	g, err := guard.New(guard.Config{
		Stores:   st.Stores(),
		AuditKey: auditKey,
		Hasher:   auth.HasherConfig{Memory: 64, Time: 1},
		SSO:      &sso.Config{BaseURL: siteURL, Key: key, Certificate: cert, AllowInsecureMetadata: true},
	})
	if err != nil {
		t.Fatal(err)
	}
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
		acsHits.Add(1)
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
		sso := p.Flags&guard.FlagSSO != 0
		io.WriteString(w, "user "+p.UserID+" sso "+map[bool]string{true: "yes", false: "no"}[sso]+" replica "+name)
	})))
	return g, g.Middleware(mux)
}

// TestFacadeSSO signs in by SAML end to end on PostgreSQL, with crewjam's
// samlidp in process as the IdP and two Guard replicas, each on a pool of
// its own, sharing one schema behind one address: the connection (its
// metadata fetched from the IdP) is stored by one replica; a login starts
// on replica A and the IdP's answer lands on B, which finds the tracked
// request in PostgreSQL, provisions the user just in time with the mapped
// role, and signs them in; the captured answer posted again, by another
// client, is refused; and an IdP-initiated answer posted 20 times at once
// to both replicas signs in exactly once, the other 19 refused as replayed
// by the replay cache in PostgreSQL.
func TestFacadeSSO(t *testing.T) {
	a, b := twoReplicas(t)
	ctx := t.Context()
	body := reader(t)
	spKey, spCert := newKeyPair(t, "sp")
	idpKey, idpCert := newKeyPair(t, "idp")

	site := httptest.NewServer(nil)
	t.Cleanup(site.Close)
	var served [2]atomic.Int64 // answers handled at each replica's ACS
	gA, hA := ssoReplica(t, a, site.URL, "A", spKey, spCert, &served[0])
	gB, hB := ssoReplica(t, b, site.URL, "B", spKey, spCert, &served[1])
	handlers := [2]http.Handler{hA, hB}
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
	if _, err := gA.CreateTenant(ctx, sys, facadeTenant, "Acme", guard.Policy{}); err != nil {
		t.Fatal(err)
	}
	conn, err := gA.SetSSOConnection(ctx, sys, sso.Connection{Tenant: facadeTenant, MetadataURL: idpURL + "/metadata",
		JIT: true, AllowedDomains: []string{"corp.example"}, GroupRoles: map[string]string{"Staff": rbac.Member}, IdPInitiated: true})
	if err != nil {
		t.Fatal(err)
	}
	stored, err := b.SSO.Connection(ctx, facadeTenant)
	if err != nil || stored.Metadata == "" || stored.Metadata != conn.Metadata || stored.MetadataFetchedAt.IsZero() ||
		stored.GroupRoles["Staff"] != rbac.Member || !stored.IdPInitiated {
		t.Fatalf("the connection in PostgreSQL = %d bytes of metadata fetched at %v, %+v, %v", len(stored.Metadata), stored.MetadataFetchedAt, stored.GroupRoles, err)
	}
	idpPut("/services/acme", body(http.Get(site.URL+"/saml/acme/metadata")))
	idpPut("/users/alice", `{"name":"alice","password":"correct horse","email":"Alice@Corp.Example","common_name":"Alice","groups":["Staff"]}`)

	// answer starts a login in a fresh browser, signs in at the IdP and
	// returns the browser with the ACS form it would post (not posted).
	answer := func() (*http.Client, string, url.Values) {
		t.Helper()
		jar, _ := cookiejar.New(nil)
		br := &http.Client{Jar: jar}
		page := body(br.Get(site.URL + "/saml/acme/login"))
		if n := rowCount(t, a, "sso_requests"); n != 1 {
			t.Fatalf("%d tracked requests in PostgreSQL after the login started, want 1", n)
		}
		action, fields := formOf(t, page)
		fields.Set("user", "alice")
		fields.Set("password", "correct horse")
		acsAction, acsFields := formOf(t, body(br.PostForm(action, fields)))
		return br, acsAction, acsFields
	}

	// Started on A, answered on B, the session checked on A.
	br, action, fields := answer()
	who := body(br.PostForm(action, fields))
	if !strings.HasPrefix(who, "user ") || !strings.HasSuffix(who, " sso yes replica A") {
		t.Fatalf("after the ACS on replica B, /whoami on replica A says %q", who)
	}
	if a, b := served[0].Load(), served[1].Load(); a != 0 || b != 1 {
		t.Fatalf("answers handled by replicas A and B: %d and %d, want 0 and 1", a, b)
	}
	if n := rowCount(t, a, "sso_requests"); n != 0 {
		t.Errorf("%d tracked requests left after the ACS, want 0", n)
	}
	var untilUS int64
	if err := testPool(t).QueryRow(ctx, `SELECT until_us FROM `+pgx.Identifier{a.Schema(), "sso_replay"}.Sanitize()).Scan(&untilUS); err != nil {
		t.Fatalf("the replay record of the accepted assertion: %v", err)
	}
	if until := time.UnixMicro(untilUS); !until.After(time.Now()) || until.After(time.Now().Add(time.Hour)) {
		t.Errorf("the replay record lasts until %v, want within the assertion's validity", until)
	}
	users, err := gB.ListUsers(ctx, sys, facadeTenant, "", 10)
	if err != nil || len(users) != 1 || users[0].Email != "alice@corp.example" || users[0].HasPassword {
		t.Fatalf("just-in-time users = %+v, %v", users, err)
	}
	if !strings.HasPrefix(who, "user "+users[0].ID+" ") {
		t.Errorf("/whoami = %q, want user %s", who, users[0].ID)
	}
	if roles, err := gA.RolesOf(ctx, sys, facadeTenant, "user:"+users[0].ID); err != nil || len(roles) != 1 || roles[0] != rbac.Member {
		t.Errorf("mapped roles = %v, %v; want member", roles, err)
	}

	// The captured answer posted again, by another client, on replica A:
	// refused (the tracked request is gone).
	replayer := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
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
	action, fields = formOf(t, body(br.Get(idpURL+"/login/guard")))
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
	if n := rowCount(t, a, "sso_replay"); n != 2 {
		t.Errorf("%d replay records, want 2", n)
	}
	page, err := gB.QueryAudit(ctx, sys, facadeTenant, audit.Query{Action: string(audit.SSOFailed), Limit: 1000})
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
	if ok, err := gA.QueryAudit(ctx, sys, facadeTenant, audit.Query{Action: string(audit.SSOSucceeded)}); err != nil || len(ok.Events) != 2 {
		t.Errorf("%d sso.succeeded events, %v; want 2", len(ok.Events), err)
	}
	if rep, err := gA.VerifyAudit(ctx, sys, facadeTenant); err != nil || !rep.OK {
		t.Errorf("VerifyAudit = %+v, %v", rep, err)
	}
}
