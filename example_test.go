package guard_test

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/store/memstore"
)

// A host application end to end: a Guard on the in-memory store (use
// sqlitestore, pgstore or redisstore for real), a tenant with its first
// owner, a sign-in handler, and routes behind the middleware, the one that
// needs a role refusing a member. Cross-origin protection wraps the mux,
// as it must: Guard authenticates requests, it does not check where they
// come from.
func Example() {
	ctx := context.Background()
	auditKey := make([]byte, 32) // in production: a secret kept outside the database
	if _, err := rand.Read(auditKey); err != nil {
		panic(err)
	}
	g, err := guard.New(guard.Config{Stores: memstore.New().Stores(), AuditKey: auditKey})
	if err != nil {
		panic(err)
	}

	// Once: a tenant, its owner and a member.
	sys := guard.System("bootstrap")
	if _, err := g.CreateTenant(ctx, sys, "acme", "Acme Ltd", guard.Policy{}); err != nil {
		panic(err)
	}
	for email, role := range map[string]string{"ada@acme.test": rbac.Owner, "max@acme.test": rbac.Member} {
		if _, err := g.CreateUser(ctx, sys, guard.NewUser{Tenant: "acme", Email: email, Password: "correct horse battery staple", Roles: []string{role}}); err != nil {
			panic(err)
		}
	}

	mux := http.NewServeMux()
	mux.HandleFunc("POST /login", func(w http.ResponseWriter, r *http.Request) {
		res, err := g.Login(r.Context(), guard.LoginRequest{Tenant: "acme", Email: r.PostFormValue("email"),
			Password: r.PostFormValue("password"), IP: g.ClientIP(r), UserAgent: r.UserAgent()})
		switch {
		case errors.Is(err, guard.ErrInvalidCredentials):
			http.Error(w, "wrong email or password", http.StatusUnauthorized) // one answer for every failure
		case err != nil:
			http.Error(w, "try again later", http.StatusServiceUnavailable) // a store failed: denied
		case res.Pending != nil:
			http.Error(w, "second factor due", http.StatusAccepted) // keep res.Pending.Token, then CompleteLogin
		default:
			g.SetSessionCookie(w, res.Token, res.Session)
		}
	})
	mux.Handle("GET /contacts", g.Require(rbac.Contacts, rbac.Delete)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := guard.PrincipalFrom(r.Context())
		fmt.Fprintf(w, "contacts of %s", p.Tenant)
	})))
	srv := httptest.NewTLSServer(http.NewCrossOriginProtection().Handler(g.Middleware(mux)))
	defer srv.Close()

	signIn := func(email string) *http.Client {
		c := *srv.Client() // a browser of its own: its own cookies
		c.Jar, _ = cookiejar.New(nil)
		resp, err := c.PostForm(srv.URL+"/login", url.Values{"email": {email}, "password": {"correct horse battery staple"}})
		if err != nil {
			panic(err)
		}
		resp.Body.Close()
		fmt.Println("sign-in of", email+":", resp.StatusCode)
		return &c
	}
	get := func(c *http.Client) {
		resp, err := c.Get(srv.URL + "/contacts")
		if err != nil {
			panic(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		fmt.Println(resp.StatusCode, strings.TrimSpace(string(b)))
	}
	get(signIn("ada@acme.test"))
	get(signIn("max@acme.test"))

	// Output:
	// sign-in of ada@acme.test: 200
	// 200 contacts of acme
	// sign-in of max@acme.test: 200
	// 403 Forbidden
}
