package e2e_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/redis/go-redis/v9"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/internal/testenv"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/store/pgstore"
	"github.com/guardhq/guard/store/redisstore"
)

var auditKey = []byte("e2e-audit-key-0123456789abcdef!!")

const (
	tenantID = "acme"
	password = "correct horse battery staple"
)

// cluster is one PostgreSQL schema and one Redis key prefix shared by
// replicas, optionally reached through cuttable proxies.
type cluster struct {
	t      testing.TB
	stores guard.Stores
	pgp    *proxy // nil unless proxied
	rdp    *proxy
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// newCluster migrates a fresh schema and picks a fresh key prefix; with
// proxied set, the replicas reach both engines through proxies.
func newCluster(t testing.TB, proxied bool) *cluster {
	t.Helper()
	dsn, raddr := testenv.Postgres(t), testenv.Redis(t)
	c := &cluster{t: t}
	pcfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	if proxied {
		c.pgp = newProxy(t, fmt.Sprintf("%s:%d", pcfg.ConnConfig.Host, pcfg.ConnConfig.Port))
		c.rdp = newProxy(t, raddr)
		u, _ := url.Parse(dsn)
		u.Host = c.pgp.addr()
		q := u.Query()
		q.Set("connect_timeout", "2")
		u.RawQuery = q.Encode()
		if pcfg, err = pgxpool.ParseConfig(u.String()); err != nil {
			t.Fatal(err)
		}
		raddr = c.rdp.addr()
	}
	pcfg.MaxConns = 16
	pool, err := pgxpool.NewWithConfig(context.Background(), pcfg)
	if err != nil {
		t.Fatal(err)
	}
	schema := "guarde2e_" + randomHex(t, 6)
	t.Cleanup(func() {
		pool.Close()
		admin, err := pgx.Connect(context.Background(), dsn)
		if err == nil {
			admin.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
			admin.Close(context.Background())
		}
	})
	pg, err := pgstore.New(pool, pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	if err := pg.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Versions of allow-lists and rbac policies kept in memory, as a
	// deployment on PostgreSQL runs it (its connection goes through the
	// proxy too, so the faults cut it).
	wctx, stopWatch := context.WithCancel(context.Background())
	watched := make(chan error, 1)
	go func() { watched <- pg.Watch(wctx) }()
	t.Cleanup(func() {
		stopWatch()
		<-watched
	})
	rc := redis.NewClient(&redis.Options{Addr: raddr, DialTimeout: time.Second, ReadTimeout: time.Second,
		WriteTimeout: time.Second, MaxRetries: -1, PoolSize: 32})
	prefix := "guarde2e:" + randomHex(t, 6) + ":"
	t.Cleanup(func() {
		clean := redis.NewClient(&redis.Options{Addr: testenv.Redis(t)})
		ctx := context.Background()
		iter := clean.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		for iter.Next(ctx) {
			clean.Del(ctx, iter.Val())
		}
		clean.Close()
		rc.Close()
	})
	rs, err := redisstore.New(t.Context(), rc, redisstore.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	c.stores = rs.Stores(pg.Stores())
	return c
}

// replica is one Guard on the cluster's stores, as one app server.
func (c *cluster) replica(mutate ...func(*guard.Config)) *guard.Guard {
	c.t.Helper()
	cfg := guard.Config{Stores: c.stores, AuditKey: auditKey, Hasher: auth.HasherConfig{Memory: 64, Time: 1}}
	for _, m := range mutate {
		m(&cfg)
	}
	g, err := guard.New(cfg)
	if err != nil {
		c.t.Fatal(err)
	}
	return g
}

func setup(t testing.TB, g *guard.Guard, email string) guard.User {
	t.Helper()
	ctx := context.Background()
	sys := guard.System("e2e")
	if _, err := g.CreateTenant(ctx, sys, tenantID, "Acme", guard.Policy{}); err != nil && !errors.Is(err, guard.ErrTenantExists) {
		t.Fatal(err)
	}
	u, err := g.CreateUser(ctx, sys, guard.NewUser{Tenant: tenantID, Email: email, Name: "Ada", Password: password})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func login(g *guard.Guard, email, pw string) (guard.LoginResult, error) {
	return g.Login(context.Background(), guard.LoginRequest{Tenant: tenantID, Email: email, Password: pw, IP: "198.51.100.1", UserAgent: "e2e"})
}

func TestReplicasKeepOneSessionPerUser(t *testing.T) {
	c := newCluster(t, false)
	// Every attempt is reserved in the throttle before its password is
	// checked: raise the limits, this test is about sessions.
	raise := func(cfg *guard.Config) {
		cfg.AccountLimit, cfg.IPLimit = guard.DefaultAccountLimit, guard.DefaultIPLimit
		cfg.AccountLimit.Max, cfg.IPLimit.Max = 1000, 1000
	}
	a, b := c.replica(raise), c.replica(raise)
	u := setup(t, a, "ada@example.test")
	var ok atomic.Int32
	tokens := make([]string, 100)
	var wg sync.WaitGroup
	for i := range 100 {
		g := a
		if i%2 == 1 {
			g = b
		}
		wg.Go(func() {
			res, err := login(g, "ada@example.test", password)
			if err != nil {
				t.Error(err)
				return
			}
			ok.Add(1)
			tokens[i] = res.Token
		})
	}
	wg.Wait()
	if ok.Load() != 100 {
		t.Fatalf("%d of 100 logins succeeded", ok.Load())
	}
	ss, err := a.UserSessions(context.Background(), guard.System("e2e"), tenantID, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 1 {
		t.Fatalf("%d sessions after 100 concurrent logins on two replicas, want 1", len(ss))
	}
	live := 0
	for _, tok := range tokens {
		if _, err := b.Authenticate(context.Background(), tok); err == nil {
			live++
		}
	}
	if live != 1 {
		t.Errorf("%d tokens still authenticate, want 1", live)
	}
}

func TestReplicasShareTheLockout(t *testing.T) {
	c := newCluster(t, false)
	a, b := c.replica(), c.replica()
	setup(t, a, "ada@example.test")
	var wg sync.WaitGroup
	for i := range 50 {
		g := a
		if i%2 == 1 {
			g = b
		}
		wg.Go(func() {
			if _, err := login(g, "ada@example.test", "wrong password "+fmt.Sprint(i)); !errors.Is(err, guard.ErrInvalidCredentials) {
				t.Errorf("wrong password: %v", err)
			}
		})
	}
	wg.Wait()
	page, err := a.QueryAudit(context.Background(), guard.System("e2e"), tenantID, audit.Query{Action: string(audit.LoginFailed), Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	reasons := map[string]int{}
	for _, e := range page.Events {
		reasons[e.Reason]++
	}
	if reasons[guard.ReasonBadPassword] > guard.DefaultAccountLimit.Max || reasons[guard.ReasonBadPassword]+reasons[guard.ReasonLocked] != 50 {
		t.Errorf("login.failed reasons %v: at most %d passwords may be evaluated", reasons, guard.DefaultAccountLimit.Max)
	}
	if _, err := login(b, "ada@example.test", password); !errors.Is(err, guard.ErrInvalidCredentials) {
		t.Errorf("the right password during the lock: %v", err)
	}
}

func TestDeactivationReachesTheOtherReplica(t *testing.T) {
	c := newCluster(t, false)
	a, b := c.replica(), c.replica()
	u := setup(t, a, "ada@example.test")
	res, err := login(b, "ada@example.test", password)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.Authenticate(context.Background(), res.Token); err != nil {
		t.Fatal(err)
	}
	if err := a.DeactivateUser(context.Background(), guard.System("e2e"), tenantID, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Authenticate(context.Background(), res.Token); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("next request on the other replica: %v, want ErrUnauthenticated", err)
	}
}

// An admin on one replica marks a password compromised and, for another
// user, changes a role (SECURITY-CHECKLIST PW-9, SE-3): the sessions end
// on the other replica at once (sessions in Redis), and its next sign-in
// asks for the password change (users in PostgreSQL).
func TestExpiryAndRoleChangeReachTheOtherReplica(t *testing.T) {
	c := newCluster(t, false)
	a, b := c.replica(), c.replica()
	ctx := context.Background()
	sys := guard.System("e2e")
	ada, bob := setup(t, a, "ada@example.test"), setup(t, a, "bob@example.test")
	var tokens []string
	for _, email := range []string{"ada@example.test", "bob@example.test"} {
		res, err := login(b, email, password)
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, res.Token)
	}
	if err := a.ExpirePassword(ctx, sys, tenantID, ada.ID); err != nil {
		t.Fatal(err)
	}
	if err := a.GrantRole(ctx, sys, tenantID, "user:"+bob.ID, rbac.Manager); err != nil {
		t.Fatal(err)
	}
	for i, tok := range tokens {
		if _, err := b.Authenticate(ctx, tok); !errors.Is(err, guard.ErrUnauthenticated) {
			t.Errorf("session %d on the other replica: %v, want ErrUnauthenticated", i, err)
		}
	}
	res, err := login(b, "ada@example.test", password)
	if err != nil || !res.PasswordExpired {
		t.Errorf("sign-in on the other replica: PasswordExpired %v, %v; want the change asked for", res.PasswordExpired, err)
	}
}

func TestPolicyChangeReachesTheOtherReplicaWithinASecond(t *testing.T) {
	c := newCluster(t, false)
	a, b := c.replica(), c.replica()
	setup(t, a, "ada@example.test")
	ctx := context.Background()
	sys := guard.System("e2e")
	// b has the policy cached.
	if _, err := b.EffectivePolicy(ctx, tenantID); err != nil {
		t.Fatal(err)
	}
	tn, err := a.Tenant(ctx, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.SetPolicy(ctx, sys, tenantID, guard.Policy{PasswordMinLength: 30}, tn.Version); err != nil {
		t.Fatal(err)
	}
	changed := time.Now()
	for i := 0; ; i++ {
		_, err := b.CreateUser(ctx, sys, guard.NewUser{Tenant: tenantID, Email: fmt.Sprintf("u%d@example.test", i), Password: "a fine but short passphrase"})
		var pe *auth.PolicyError
		if errors.As(err, &pe) && pe.Rule == auth.RuleTooShort {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if time.Since(changed) > time.Second {
			t.Fatal("the other replica still applied the old policy a second after the change")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestEnginesDownDenyThenResume(t *testing.T) {
	c := newCluster(t, true)
	g := c.replica()
	u := setup(t, g, "ada@example.test")
	ctx := context.Background()
	res, err := login(g, "ada@example.test", password)
	if err != nil {
		t.Fatal(err)
	}
	h := g.Middleware(guard.RequireSession(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })))
	request := func() int {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "198.51.100.1:1234"
		r.Header.Set("Cookie", "__Host-guard="+res.Token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	if code := request(); code != 204 {
		t.Fatalf("before the faults: %d", code)
	}
	sessions := func() int {
		ss, err := g.UserSessions(ctx, guard.System("e2e"), tenantID, u.ID)
		if err != nil {
			t.Fatalf("UserSessions: %v", err)
		}
		return len(ss)
	}

	// Redis (sessions, throttle) goes away.
	c.rdp.cut()
	if _, err := g.Authenticate(ctx, res.Token); !errors.Is(err, guard.ErrUnavailable) {
		t.Errorf("Authenticate with Redis down: %v, want ErrUnavailable", err)
	}
	if code := request(); code != http.StatusServiceUnavailable {
		t.Errorf("request with Redis down: %d, want 503", code)
	}
	if _, err := login(g, "ada@example.test", password); !errors.Is(err, guard.ErrUnavailable) {
		t.Errorf("login with Redis down: %v, want ErrUnavailable", err)
	}
	c.rdp.restore()
	if code := request(); code != 204 {
		t.Errorf("request after Redis came back: %d, want 204", code)
	}

	// PostgreSQL (users, audit, allow-lists) goes away.
	before := sessions()
	c.pgp.cut()
	if _, err := login(g, "ada@example.test", password); !errors.Is(err, guard.ErrUnavailable) {
		t.Errorf("login with PostgreSQL down: %v, want ErrUnavailable", err)
	}
	if code := request(); code != http.StatusServiceUnavailable {
		t.Errorf("request with PostgreSQL down (the allow-list cannot be read): %d, want 503", code)
	}
	c.pgp.restore()
	if n := sessions(); n != before {
		t.Errorf("%d sessions after a failed login, %d before: a session without its audit event", n, before)
	}
	var last error
	for range 50 {
		if _, last = login(g, "ada@example.test", password); last == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if last != nil {
		t.Fatalf("login after PostgreSQL came back: %v", last)
	}
	rep, err := g.VerifyAudit(ctx, guard.System("e2e"), tenantID)
	if err != nil || !rep.OK {
		t.Errorf("audit chain after the faults: %+v, %v", rep, err)
	}
}
