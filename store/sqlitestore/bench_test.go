package sqlitestore_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/session"
	"github.com/guardhq/guard/store/sqlitestore"
)

const liveSessions = 100_000

var (
	auditKey   = bytes.Repeat([]byte{0x42}, 32)
	fastHasher = auth.HasherConfig{Memory: 64, Time: 1}
)

// seedSessions stores n live sessions of tenant "acme" in one transaction
// (logging in 100,000 times would only measure argon2id) and returns their
// tokens.
func seedSessions(b *testing.B, s *sqlitestore.Store, now time.Time, n int) []string {
	b.Helper()
	tokens := make([]string, n)
	ss := make([]session.Session, n)
	for i := range n {
		var raw [32]byte
		rand.Read(raw[:])
		tok := base64.RawURLEncoding.EncodeToString(raw[:])
		h, err := session.ParseToken(tok)
		if err != nil {
			b.Fatal(err)
		}
		ss[i] = session.Session{Hash: h, Tenant: "acme", UserID: fmt.Sprintf("u%06d", i), CreatedAt: now, LastSeen: now,
			ExpiresAt: now.Add(7 * 24 * time.Hour), IdleTimeout: 24 * time.Hour, IP: "203.0.113.5", UserAgent: "bench"}
		tokens[i] = tok
	}
	if err := sqlitestore.SeedSessions(context.Background(), s, ss); err != nil {
		b.Fatal(err)
	}
	return tokens
}

// BenchmarkAuthenticate is the facade's per-request check,
// g.Authenticate(ctx, token), with 100,000 live sessions in SQLite: token
// decode, SHA-256, one SELECT by primary key, the liveness check.
func BenchmarkAuthenticate(b *testing.B) {
	st := openStore(b)
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	g, err := guard.New(guard.Config{Stores: st.Stores(), AuditKey: auditKey, Hasher: fastHasher, Now: func() time.Time { return now }})
	if err != nil {
		b.Fatal(err)
	}
	tokens := seedSessions(b, st, now, liveSessions)
	// The sessions' tenant, whose policy Authenticate applies.
	if _, err := g.CreateTenant(context.Background(), guard.System("bench"), "acme", "Acme", guard.Policy{}); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for i := 0; b.Loop(); i++ {
		if _, err := g.Authenticate(ctx, tokens[i%len(tokens)]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// cpuTime is the CPU time (user and system) this process has used. On a
// machine shared with other work, cpu-ns/op shows what an operation costs
// when ns/op includes waiting for a CPU.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkAuditAppend records events for one tenant from 8 goroutines
// through audit.Log, whose group commit turns concurrent Records into one
// Append (one transaction) per batch, and reports events/s. The chain must
// verify afterwards.
func BenchmarkAuditAppend(b *testing.B) {
	st := openStore(b)
	l, err := audit.New(audit.Config{Store: st.Stores().Audit, Key: auditKey})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	const goroutines = 8
	var next atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	start := time.Now()
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			// Each writer is its own actor (so a batch touches as many
			// places of the actor indexes as it has writers).
			id, email := fmt.Sprint("u", g), fmt.Sprintf("u%d@example.com", g)
			for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
				_, err := l.Record(ctx, audit.Event{
					Tenant:    "acme",
					Actor:     audit.Actor{Kind: audit.ActorUser, ID: id, Email: email},
					Action:    audit.LoginFailed,
					Target:    id,
					IP:        "203.0.113.5",
					UserAgent: "bench",
					Outcome:   audit.Failure,
					Reason:    "bad_password",
					Meta:      map[string]string{"i": strconv.FormatInt(i, 10)},
				})
				if err != nil {
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
	b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
	rep, err := l.Verify(ctx, "acme")
	if err != nil {
		b.Fatal(err)
	}
	if !rep.OK || rep.Head.Seq != uint64(b.N) {
		b.Fatalf("Verify after the benchmark = %+v, want OK up to Seq %d", rep, b.N)
	}
}

// BenchmarkAuditStoreAppend is Audit.Append alone, one goroutine, with
// batches of a fixed size: what one commit costs, and how the events/s of
// BenchmarkAuditAppend depend on the batch sizes audit.Log's group commit
// forms.
func BenchmarkAuditStoreAppend(b *testing.B) {
	for _, n := range []int{1, 8, 64} {
		b.Run(fmt.Sprint("Batch", n), func(b *testing.B) {
			st := openStore(b)
			ctx := context.Background()
			evs := make([]audit.Event, n)
			var head audit.Link
			b.ReportAllocs()
			b.ResetTimer()
			cpu := cpuTime()
			start := time.Now()
			for b.Loop() {
				prev := head.MAC
				for i := range evs {
					seq := head.Seq + uint64(i) + 1
					mac := sha256.Sum256(binary.BigEndian.AppendUint64(nil, seq))
					evs[i] = audit.Event{ID: fmt.Sprint("e", seq), Tenant: "acme", Seq: seq, Time: time.Unix(int64(seq), 0),
						Actor:  audit.Actor{Kind: audit.ActorUser, ID: "u1", Email: "u1@example.com"},
						Action: audit.LoginFailed, Target: "u1", IP: "203.0.113.5", UserAgent: "bench", Outcome: audit.Failure,
						Reason: "bad_password", Meta: map[string]string{"i": fmt.Sprint(i)}, PrevMAC: prev, MAC: mac[:]}
					prev = evs[i].MAC
				}
				if err := st.Audit.Append(ctx, "acme", evs); err != nil {
					b.Fatal(err)
				}
				head = audit.Link{Seq: evs[n-1].Seq, MAC: evs[n-1].MAC}
			}
			elapsed := time.Since(start)
			b.ReportMetric(float64(b.N*n)/elapsed.Seconds(), "events/s")
			b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkAPIKeyByHash is the store's part of every request made with an
// API key: one SELECT through the unique index on the hash, among 10,000
// keys.
func BenchmarkAPIKeyByHash(b *testing.B) {
	st := openStore(b)
	ctx := context.Background()
	const n = 10_000
	hashes := make([][32]byte, n)
	for i := range n {
		hashes[i] = sha256.Sum256([]byte(fmt.Sprint("key", i)))
		k := auth.APIKey{ID: fmt.Sprint("k", i), Tenant: fmt.Sprint("t", i%100), Name: "CI", Prefix: "gk_abcdefgh",
			Hash: hashes[i], CreatedBy: "u1", CreatedAt: time.Unix(int64(i), 0)}
		if err := st.APIKeys.CreateAPIKey(ctx, k, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu := cpuTime()
	for i := 0; b.Loop(); i++ {
		if _, err := st.APIKeys.APIKeyByHash(ctx, hashes[i%n]); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
}

// BenchmarkVersions are the per-request reads of a tenant's allow-list
// version (IPLists.Version, with 10,000 entries stored beside it, and
// with one for comparison) and of its policy version (Policies.Version,
// read on every authorization decision).
func BenchmarkVersions(b *testing.B) {
	st := openStore(b)
	ctx := context.Background()
	entries := make([]string, 10_000)
	for i := range entries {
		entries[i] = fmt.Sprintf("10.%d.%d.0/24", i>>8, i&255)
	}
	if _, err := st.IPLists.Replace(ctx, "acme", ipfilter.Users, ipfilter.Rules{Entries: entries}, 0); err != nil {
		b.Fatal(err)
	}
	if _, err := st.IPLists.Replace(ctx, "small", ipfilter.Users, ipfilter.Rules{Entries: entries[:1]}, 0); err != nil {
		b.Fatal(err)
	}
	if err := st.Policies.Update(ctx, "acme", 0, nil, []rbac.Rule{{Type: rbac.RuleGrant, Role: rbac.Owner, Subject: "user:u1"}}); err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name string
		read func() (uint64, error)
	}{
		{"IPLists", func() (uint64, error) { return st.IPLists.Version(ctx, "acme") }},
		{"IPListsOneEntry", func() (uint64, error) { return st.IPLists.Version(ctx, "small") }},
		{"Policies", func() (uint64, error) { return st.Policies.Version(ctx, "acme") }},
	} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			cpu := cpuTime()
			for b.Loop() {
				if v, err := bc.read(); err != nil || v != 1 {
					b.Fatal(v, err)
				}
			}
			b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

// BenchmarkSecondFactor are the writes of a sign-in's second step:
// AdvanceStep (the TOTP replay check, one conditional UPDATE) and the
// pending login created then consumed (CreateTransaction,
// ConsumeTransaction); each op is one commit of its own.
func BenchmarkSecondFactor(b *testing.B) {
	st := openStore(b)
	ctx := context.Background()
	f := mfa.Factor{ID: "f", Tenant: "acme", UserID: "u", Kind: mfa.KindTOTP, Secret: []byte("sealed"),
		CreatedAt: time.Unix(1, 0), ConfirmedAt: time.Unix(2, 0), LastStep: 1}
	if err := st.MFA.CreateFactor(ctx, f, 0); err != nil {
		b.Fatal(err)
	}
	b.Run("AdvanceStep", func(b *testing.B) {
		b.ReportAllocs()
		cpu := cpuTime()
		for i := int64(2); b.Loop(); i++ {
			if err := st.MFA.AdvanceStep(ctx, "acme", "u", "f", i); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
	})
	b.Run("Transaction", func(b *testing.B) {
		b.ReportAllocs()
		cpu := cpuTime()
		for i := 0; b.Loop(); i++ {
			x := mfa.Transaction{Hash: sha256.Sum256(binary.BigEndian.AppendUint64(nil, uint64(i))), Tenant: "acme", UserID: "u",
				CreatedAt: time.Unix(1, 0), ExpiresAt: time.Unix(301, 0)}
			if err := st.MFA.CreateTransaction(ctx, x); err != nil {
				b.Fatal(err)
			}
			if _, err := st.MFA.ConsumeTransaction(ctx, x.Hash); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64((cpuTime()-cpu).Nanoseconds())/float64(b.N), "cpu-ns/op")
	})
}
