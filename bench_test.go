package guard_test

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/session"
	"github.com/guardhq/guard/store/memstore"
)

const liveSessions = 100_000

// seedSessions stores n live sessions directly (logging in 100,000 times
// would only measure argon2id) and returns their tokens.
func seedSessions(b *testing.B, s session.Store, now time.Time, n int) []string {
	b.Helper()
	tokens := make([]string, n)
	for i := range n {
		var raw [32]byte
		rand.Read(raw[:])
		tok := base64.RawURLEncoding.EncodeToString(raw[:])
		h, err := session.ParseToken(tok)
		if err != nil {
			b.Fatal(err)
		}
		_, err = s.Create(context.Background(), session.Session{Hash: h, Tenant: tenantID, UserID: fmt.Sprintf("u%06d", i),
			CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(7 * 24 * time.Hour), IdleTimeout: 24 * time.Hour}, session.Limit{Max: 1})
		if err != nil {
			b.Fatal(err)
		}
		tokens[i] = tok
	}
	return tokens
}

// BenchmarkAuthenticate is the per-request path: session cookie → token
// decode → SHA-256 → session lookup → idle/absolute check, with 100,000
// live sessions in memstore.
func BenchmarkAuthenticate(b *testing.B) {
	benchAuthenticate(b, func(g *guard.Guard, r *http.Request) error {
		tok, _ := g.SessionToken(r)
		_, err := g.Authenticate(r.Context(), tok)
		return err
	})
}

// BenchmarkAuthenticateRequest adds what the middleware does besides:
// resolving the client IP and user agent into the principal.
func BenchmarkAuthenticateRequest(b *testing.B) {
	benchAuthenticate(b, func(g *guard.Guard, r *http.Request) error {
		_, err := g.AuthenticateRequest(r)
		return err
	})
}

func benchAuthenticate(b *testing.B, auth func(*guard.Guard, *http.Request) error) {
	mem := memstore.New()
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	g, err := guard.New(guard.Config{Stores: mem.Stores(), AuditKey: auditKey, Hasher: fastHasher, Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	// Authenticate applies the tenant's policy to each session (from the
	// policy cache): the tenant must exist.
	if _, err := g.CreateTenant(context.Background(), guard.System("b"), tenantID, "Acme", guard.Policy{}); err != nil {
		b.Fatal(err)
	}
	tokens := seedSessions(b, mem.Sessions, now, liveSessions)
	headers := make([][]string, len(tokens))
	for i, tok := range tokens {
		headers[i] = []string{"theme=dark; __Host-guard=" + tok}
	}
	r := httptest.NewRequest("GET", "/", nil)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		r.Header["Cookie"] = headers[i%len(headers)]
		if err := auth(g, r); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAuthenticateFloor does only what any server-side session check
// must: base64url decode, SHA-256, a plain map lookup and the expiry
// comparison, over 100,000 entries. BenchmarkAuthenticate is compared to it.
func BenchmarkAuthenticateFloor(b *testing.B) {
	type entry struct{ lastSeen, expires time.Time }
	m := make(map[[32]byte]entry, liveSessions)
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	cookies := make([]string, liveSessions)
	for i := range liveSessions {
		var raw [32]byte
		rand.Read(raw[:])
		m[sha256.Sum256(raw[:])] = entry{now, now.Add(time.Hour)}
		cookies[i] = "theme=dark; __Host-guard=" + base64.RawURLEncoding.EncodeToString(raw[:])
	}
	const prefix = len("theme=dark; __Host-guard=")
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		var raw [32]byte
		tok := cookies[i%len(cookies)][prefix:]
		if _, err := base64.RawURLEncoding.Decode(raw[:], []byte(tok)); err != nil {
			b.Fatal(err)
		}
		e, ok := m[sha256.Sum256(raw[:])]
		if !ok || !now.Before(e.expires) || !now.Before(e.lastSeen.Add(24*time.Hour)) {
			b.Fatal("miss")
		}
	}
}

// defaultParamsFixture is a Guard with the default argon2id parameters
// (m=19 MiB, t=2, p=1) and one user.
func defaultParamsFixture(b *testing.B) (*guard.Guard, *memstore.Store) {
	mem := memstore.New()
	g, err := guard.New(guard.Config{Stores: mem.Stores(), AuditKey: auditKey, Defaults: guard.Policy{SessionLimit: 100}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := g.CreateTenant(ctx, guard.System("b"), tenantID, "Acme", guard.Policy{}); err != nil {
		b.Fatal(err)
	}
	if _, err := g.CreateUser(ctx, guard.System("b"), guard.NewUser{Tenant: tenantID, Email: "alice@example.com", Password: ownerPW}); err != nil {
		b.Fatal(err)
	}
	return g, mem
}

// BenchmarkLogin is a whole password login with default parameters: it
// should cost one argon2id verification plus under 2 % (compare with
// BenchmarkLoginHashOnly).
func BenchmarkLogin(b *testing.B) {
	g, _ := defaultParamsFixture(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.Login(ctx, guard.LoginRequest{Tenant: tenantID, Email: "alice@example.com", Password: ownerPW, IP: "203.0.113.5"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoginOverhead is a whole password login with argon2id cut to
// its minimum (8 KiB, one pass): what a login costs besides the hash, to
// set against BenchmarkLoginHashOnly (target: under 2 %).
func BenchmarkLoginOverhead(b *testing.B) {
	mem := memstore.New()
	g, err := guard.New(guard.Config{Stores: mem.Stores(), AuditKey: auditKey, Defaults: guard.Policy{SessionLimit: 100},
		Hasher: auth.HasherConfig{Memory: 8, Time: 1}})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	if _, err := g.CreateTenant(ctx, guard.System("b"), tenantID, "Acme", guard.Policy{}); err != nil {
		b.Fatal(err)
	}
	if _, err := g.CreateUser(ctx, guard.System("b"), guard.NewUser{Tenant: tenantID, Email: "alice@example.com", Password: ownerPW}); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := g.Login(ctx, guard.LoginRequest{Tenant: tenantID, Email: "alice@example.com", Password: ownerPW, IP: "203.0.113.5"}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkLoginHashOnly is the argon2id verification a login performs,
// alone, with the same parameters.
func BenchmarkLoginHashOnly(b *testing.B) {
	h, err := auth.NewHasher(auth.HasherConfig{})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	phc, _ := h.Hash(ctx, ownerPW)
	b.ReportAllocs()
	for b.Loop() {
		if ok, _, _ := h.Verify(ctx, ownerPW, phc); !ok {
			b.Fatal("no match")
		}
	}
}

// peakHeap runs f while sampling the live heap every millisecond and
// returns the highest value seen.
func peakHeap(f func()) uint64 {
	runtime.GC()
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	var peak uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			metrics.Read(sample)
			peak = max(peak, sample[0].Value.Uint64())
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	f()
	close(done)
	wg.Wait()
	return peak
}

// floodLogins runs n concurrent logins with default argon2id parameters.
func floodLogins(tb testing.TB, g *guard.Guard, n int) {
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pw := ownerPW
			if i%2 == 1 {
				pw = "a wrong password"
			}
			g.Login(context.Background(), guard.LoginRequest{Tenant: tenantID, Email: "alice@example.com", Password: pw})
		}()
	}
	wg.Wait()
}

// BenchmarkLoginFlood runs 200 concurrent logins with the default
// parameters and reports the peak live heap: the hashing semaphore keeps
// it near GOMAXPROCS × 19 MiB instead of 200 × 19 MiB.
func BenchmarkLoginFlood(b *testing.B) {
	g, _ := defaultParamsFixture(b)
	var peak uint64
	for b.Loop() {
		peak = max(peak, peakHeap(func() { floodLogins(b, g, 200) }))
	}
	b.ReportMetric(float64(peak)/(1<<20), "peak-heap-MiB")
}

// BenchmarkAuthorize is the full per-request check: session cookie →
// session (100,000 live) → client IP against the tenant's allow-list of
// 1,000 prefixes → RBAC decision (10,000 users holding 100 custom roles).
func BenchmarkAuthorize(b *testing.B) {
	mem := memstore.New()
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	g, err := guard.New(guard.Config{Stores: mem.Stores(), AuditKey: auditKey, Hasher: fastHasher, Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	sys := guard.System("bench")
	if _, err := g.CreateTenant(ctx, sys, tenantID, "Acme", guard.Policy{}); err != nil {
		b.Fatal(err)
	}
	const users, roles = 10_000, 100
	sections := rbac.BuiltInSections()
	for i := range roles {
		perms := []string{string(sections[i%len(sections)]) + ":read", "reports:read"}
		if err := g.DefineRole(ctx, sys, tenantID, fmt.Sprintf("role-%03d", i), perms); err != nil {
			b.Fatal(err)
		}
	}
	for i := range users {
		// Roles are granted to users of the tenant only: the users are
		// stored directly (no password to hash).
		if err := mem.Users.CreateUser(ctx, auth.User{ID: fmt.Sprintf("u%06d", i), Tenant: tenantID,
			Email: fmt.Sprintf("u%06d@example.com", i), Status: auth.StatusActive, CreatedAt: now}); err != nil {
			b.Fatal(err)
		}
		if err := g.GrantRole(ctx, sys, tenantID, fmt.Sprintf("user:u%06d", i), fmt.Sprintf("role-%03d", i%roles)); err != nil {
			b.Fatal(err)
		}
	}
	entries := make([]string, 1000)
	for i := range entries {
		entries[i] = fmt.Sprintf("10.%d.%d.0/24", i/256, i%256)
	}
	entries[999] = "203.0.113.0/24"
	if _, err := g.SetIPAllowList(ctx, sys, tenantID, guard.IPListChange{Scope: ipfilter.Users, Entries: entries}); err != nil {
		b.Fatal(err)
	}
	tokens := make([]string, liveSessions)
	for i := range liveSessions {
		var raw [32]byte
		rand.Read(raw[:])
		tok := base64.RawURLEncoding.EncodeToString(raw[:])
		h, _ := session.ParseToken(tok)
		if _, err := mem.Sessions.Create(ctx, session.Session{Hash: h, Tenant: tenantID, UserID: fmt.Sprintf("u%06d", i%users),
			CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(7 * 24 * time.Hour), IdleTimeout: 24 * time.Hour}, session.Limit{}); err != nil {
			b.Fatal(err)
		}
		tokens[i] = tok
	}
	headers := make([][]string, len(tokens))
	for i, tok := range tokens {
		headers[i] = []string{"__Host-guard=" + tok}
	}
	r := httptest.NewRequest("GET", "/", nil)
	r.RemoteAddr = "203.0.113.9:40000"
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		r.Header["Cookie"] = headers[i%len(headers)]
		p, err := g.AuthenticateRequest(r)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := g.Authorize(ctx, p, rbac.Reports, rbac.Read); err != nil {
			b.Fatal(err)
		}
	}
}
