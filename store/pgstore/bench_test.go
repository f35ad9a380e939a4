package pgstore_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/session"
	"github.com/guardhq/guard/sso"
	"github.com/guardhq/guard/store/pgstore"
)

const liveSessions = 100_000

// seedSessions stores n live sessions of distinct users with CopyFrom
// (logging in 100,000 times would only measure argon2id) and returns their
// tokens.
func seedSessions(b *testing.B, st *pgstore.Store, now time.Time, n int) []string {
	b.Helper()
	tokens := make([]string, n)
	rows := make([][]any, n)
	for i := range n {
		var raw [32]byte
		rand.Read(raw[:])
		tok := base64.RawURLEncoding.EncodeToString(raw[:])
		h, err := session.ParseToken(tok)
		if err != nil {
			b.Fatal(err)
		}
		tokens[i] = tok
		rows[i] = []any{h[:], []byte("acme"), fmt.Appendf(nil, "u%06d", i), now.UnixMicro(), now.UnixMicro(),
			now.Add(7 * 24 * time.Hour).UnixMicro(), int64(24 * time.Hour), []byte("203.0.113.5"), []byte("bench"), int64(0)}
	}
	cols := []string{"hash", "tenant", "user_id", "created_us", "last_seen_us", "expires_us", "idle_ns", "ip", "user_agent", "flags"}
	copied, err := testPool(b).CopyFrom(context.Background(), pgx.Identifier{st.Schema(), "sessions"}, cols, pgx.CopyFromRows(rows))
	if err != nil || copied != int64(n) {
		b.Fatalf("CopyFrom: %d rows, %v", copied, err)
	}
	if _, err := testPool(b).Exec(context.Background(), "ANALYZE "+pgx.Identifier{st.Schema(), "sessions"}.Sanitize()); err != nil {
		b.Fatal(err)
	}
	return tokens
}

// BenchmarkAuthenticate is the per-request check, g.Authenticate, with
// 100,000 live sessions in PostgreSQL: one LookupTouch round trip each
// (the clock does not move, so no LastSeen write). The Parallel variant
// runs it from GOMAXPROCS goroutines on the shared pool.
func BenchmarkAuthenticate(b *testing.B) {
	st := newStore(b)
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	g, err := guard.New(guard.Config{Stores: st.Stores(), AuditKey: auditKey, Hasher: auth.HasherConfig{Memory: 64, Time: 1},
		Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	tokens := seedSessions(b, st, now, liveSessions)
	// The sessions' tenant, whose policy Authenticate applies.
	if _, err := g.CreateTenant(context.Background(), guard.System("bench"), "acme", "Acme", guard.Policy{}); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.Run("Serial", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if _, err := g.Authenticate(ctx, tokens[i%len(tokens)]); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Parallel", func(b *testing.B) {
		b.ReportAllocs()
		var next atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				i := next.Add(7919)
				if _, err := g.Authenticate(ctx, tokens[int(i)%len(tokens)]); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

// countingAudit counts the Appends (one round trip and one commit each).
type countingAudit struct {
	audit.Store
	appends atomic.Int64
}

func (c *countingAudit) Append(ctx context.Context, tenant string, events []audit.Event) error {
	c.appends.Add(1)
	return c.Store.Append(ctx, tenant, events)
}

// BenchmarkAuditAppend records events for one tenant through audit.Log
// on the store from 8 goroutines (and, to show how group commit scales,
// from 64): Log batches the Records that wait while an Append is in flight
// into the next one. It reports events/s and events per Append, and
// verifies the chain afterwards.
//
// commit=async is Options.AuditAsyncCommit: the same statements, whose
// commits do not wait for the WAL flush.
func BenchmarkAuditAppend(b *testing.B) {
	for _, async := range []bool{false, true} {
		for _, workers := range []int{8, 64} {
			name := fmt.Sprintf("commit=durable/goroutines=%d", workers)
			if async {
				name = fmt.Sprintf("commit=async/goroutines=%d", workers)
			}
			b.Run(name, func(b *testing.B) { benchAuditAppend(b, workers, async) })
		}
	}
}

func benchAuditAppend(b *testing.B, workers int, async bool) {
	schema := newSchemaName(b)
	dropSchemaOnCleanup(b, schema)
	st, err := pgstore.New(testPool(b), pgstore.Options{Schema: schema, AuditAsyncCommit: async})
	if err != nil {
		b.Fatal(err)
	}
	if err := st.Migrate(context.Background()); err != nil {
		b.Fatal(err)
	}
	cs := &countingAudit{Store: st.Audit}
	l, err := audit.New(audit.Config{Store: cs, Key: auditKey})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	ev := audit.Event{Tenant: "acme", Actor: audit.Actor{Kind: audit.ActorUser, ID: "u1", Email: "alice@example.com"},
		Action: audit.LoginSucceeded, Target: "session-id", IP: "203.0.113.5", UserAgent: "Mozilla/5.0 (bench)", Outcome: audit.Success}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if _, err := l.Record(ctx, ev); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
	b.ReportMetric(float64(b.N)/float64(max(cs.appends.Load(), 1)), "events/append")
	rep, err := l.Verify(ctx, "acme")
	if err != nil || !rep.OK || rep.Checked != b.N {
		b.Fatalf("Verify = %+v, %v; want OK over %d events", rep, err, b.N)
	}
}

// BenchmarkIPListsVersion is the allow-list check's per-request read, one
// primary-key read of one bigint, for a tenant whose user list holds
// 1,000 entries (kept out of line, so not read). Lists reads both scopes
// (a cache miss on a replica).
func BenchmarkIPListsVersion(b *testing.B) {
	st := newStore(b)
	ctx := context.Background()
	entries := make([]string, 1000)
	for i := range entries {
		entries[i] = fmt.Sprintf("10.%d.%d.0/24", i>>8, i&255)
	}
	if _, err := st.IPLists.Replace(ctx, "acme", ipfilter.Users, ipfilter.Rules{Entries: entries}, 0); err != nil {
		b.Fatal(err)
	}
	b.Run("Version", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if v, err := st.IPLists.Version(ctx, "acme"); err != nil || v != 1 {
				b.Fatal(v, err)
			}
		}
	})
	b.Run("Lists", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if l, err := st.IPLists.Lists(ctx, "acme"); err != nil || len(l.Users.Entries) != len(entries) {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkPolicyVersion is the rbac per-decision read, Policies.Version:
// one primary-key read of one bigint, for a tenant with 1,000 rules among
// 10,000 tenants. SelectOne is the cheapest round trip on the same pool,
// for comparison. Parallel runs it from GOMAXPROCS goroutines on the
// shared pool; Decide is a whole warm rbac.Enforcer decision on the store
// (the version read and a table lookup).
func BenchmarkPolicyVersion(b *testing.B) {
	st := newStore(b)
	ctx := context.Background()
	rules := make([]rbac.Rule, 1000)
	for i := range rules {
		rules[i] = rbac.Rule{Type: rbac.RuleGrant, Role: rbac.Member, Subject: fmt.Sprintf("user:u%04d", i)}
	}
	if err := st.Policies.Update(ctx, "acme", 0, nil, rules); err != nil {
		b.Fatal(err)
	}
	others := make([][]any, 10_000)
	for i := range others {
		others[i] = []any{fmt.Appendf(nil, "tenant-%05d", i), int64(1 + i%50)}
	}
	if _, err := testPool(b).CopyFrom(ctx, pgx.Identifier{st.Schema(), "rbac_versions"}, []string{"tenant", "version"}, pgx.CopyFromRows(others)); err != nil {
		b.Fatal(err)
	}
	if _, err := testPool(b).Exec(ctx, "ANALYZE "+pgx.Identifier{st.Schema(), "rbac_versions"}.Sanitize()); err != nil {
		b.Fatal(err)
	}
	// The floor: the cheapest round trip on the same pool.
	b.Run("SelectOne", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			var one int
			if err := testPool(b).QueryRow(ctx, "SELECT 1").Scan(&one); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("Serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if v, err := st.Policies.Version(ctx, "acme"); err != nil || v != 1 {
				b.Fatal(v, err)
			}
		}
	})
	b.Run("Parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if v, err := st.Policies.Version(ctx, "acme"); err != nil || v != 1 {
					b.Error(v, err)
					return
				}
			}
		})
	})
	enf, err := rbac.New(rbac.Config{Store: st.Policies})
	if err != nil {
		b.Fatal(err)
	}
	sub := rbac.User("u0500")
	b.Run("Decide", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if d, err := enf.Decide(ctx, "acme", sub, rbac.Contacts, rbac.Write); err != nil || !d.Allowed {
				b.Fatal(d, err)
			}
		}
	})
}

// BenchmarkSSO is the SAML stores' work per login: RememberRequest when
// it starts, then ConsumeRequest and InsertID at the ACS (one statement
// each), and Connection, which the Provider reads on every SAML call, for
// a connection with 64 KB of metadata. InsertID inserts a new ID each
// time, among 10,000 live records.
func BenchmarkSSO(b *testing.B) {
	st := newStore(b)
	ctx := context.Background()
	now := time.Date(2099, 1, 1, 9, 0, 0, 0, time.UTC)
	c := sso.Connection{Tenant: "acme", MetadataURL: "https://idp.example.com/metadata",
		Metadata: strings.Repeat("<x>metadata</x>", 64<<10/15), MetadataFetchedAt: now, JIT: true,
		GroupRoles: map[string]string{"Staff": rbac.Member, "Admins": rbac.Admin}, AllowedDomains: []string{"example.com"}}
	if err := st.SSO.PutConnection(ctx, c); err != nil {
		b.Fatal(err)
	}
	rows := make([][]any, 10_000)
	for i := range rows {
		rows[i] = []any{[]byte("acme"), fmt.Appendf(nil, "_seed%05d", i), now.Add(time.Hour).UnixMicro()}
	}
	if _, err := testPool(b).CopyFrom(ctx, pgx.Identifier{st.Schema(), "sso_replay"}, []string{"tenant", "id", "until_us"}, pgx.CopyFromRows(rows)); err != nil {
		b.Fatal(err)
	}
	if _, err := testPool(b).Exec(ctx, "ANALYZE "+pgx.Identifier{st.Schema(), "sso_replay"}.Sanitize()); err != nil {
		b.Fatal(err)
	}
	b.Run("Connection", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if got, err := st.SSO.Connection(ctx, "acme"); err != nil || len(got.Metadata) != len(c.Metadata) {
				b.Fatal(err)
			}
		}
	})
	var n int
	b.Run("RememberConsume", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			n++
			r := sso.Request{Tenant: "acme", ID: fmt.Sprintf("id-%040x", n), Kind: sso.KindLogin, RelayState: "relay",
				ReturnTo: "/home", CreatedAt: now, Expires: now.Add(10 * time.Minute)}
			if err := st.SSO.RememberRequest(ctx, r); err != nil {
				b.Fatal(err)
			}
			if _, err := st.SSO.ConsumeRequest(ctx, "acme", r.ID, now); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("InsertID", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			n++
			if ok, err := st.SSO.InsertID(ctx, "acme", fmt.Sprintf("_%040x", n), now.Add(10*time.Minute), now); err != nil || !ok {
				b.Fatal(ok, err)
			}
		}
	})
}
