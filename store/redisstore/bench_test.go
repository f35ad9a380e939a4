package redisstore

// The benchmark is in package redisstore, not redisstore_test, so that it
// can seed 100,000 sessions through the real Create script in pipelines.

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/internal/testenv"
	"github.com/guardhq/guard/session"
	"github.com/guardhq/guard/store/memstore"
)

const liveSessions = 100_000

// cmdCounter is a go-redis hook counting commands and round trips.
type cmdCounter struct{ cmds, trips atomic.Int64 }

func (c *cmdCounter) DialHook(next redis.DialHook) redis.DialHook { return next }

func (c *cmdCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		c.cmds.Add(1)
		c.trips.Add(1)
		return next(ctx, cmd)
	}
}

func (c *cmdCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c.cmds.Add(int64(len(cmds)))
		c.trips.Add(1)
		return next(ctx, cmds)
	}
}

// benchStore returns a Store under a fresh prefix whose keys are removed
// when b ends.
func benchStore(b *testing.B) (*Store, *redis.Client) {
	b.Helper()
	c := redis.NewClient(&redis.Options{Addr: testenv.Redis(b)})
	var r [8]byte
	rand.Read(r[:])
	prefix := "guardbench:" + hex.EncodeToString(r[:]) + ":"
	b.Cleanup(func() {
		defer c.Close()
		ctx := context.Background()
		iter := c.Scan(ctx, 0, prefix+"*", 5000).Iterator()
		var keys []string
		flush := func() {
			if len(keys) > 0 {
				if err := c.Unlink(ctx, keys...).Err(); err != nil {
					b.Errorf("cleanup: %v", err)
				}
				keys = keys[:0]
			}
		}
		for iter.Next(ctx) {
			if keys = append(keys, iter.Val()); len(keys) == 5000 {
				flush()
			}
		}
		flush()
		if err := iter.Err(); err != nil {
			b.Errorf("cleanup: %v", err)
		}
	})
	s, err := New(b.Context(), c, Options{Prefix: prefix})
	if err != nil {
		b.Fatal(err)
	}
	return s, c
}

// seed stores n live sessions, one per user, through the Create script
// in pipelines of 1000 (logging in 100,000 times would measure argon2id),
// and returns their tokens.
func seed(b *testing.B, s *Store, now time.Time, n int) []string {
	b.Helper()
	ctx := context.Background()
	if err := s.Load(ctx); err != nil {
		b.Fatal(err)
	}
	tokens := make([]string, n)
	for start := 0; start < n; start += 1000 {
		pipe := s.rdb.Pipeline()
		for i := start; i < min(start+1000, n); i++ {
			var raw [32]byte
			rand.Read(raw[:])
			tokens[i] = base64.RawURLEncoding.EncodeToString(raw[:])
			h, err := session.ParseToken(tokens[i])
			if err != nil {
				b.Fatal(err)
			}
			keys, args, err := s.createArgs(session.Session{Hash: h, Tenant: "acme", UserID: fmt.Sprintf("u%06d", i),
				CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(7 * 24 * time.Hour), IdleTimeout: 24 * time.Hour,
				IP: "203.0.113.5", UserAgent: "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"}, session.Limit{Max: 1})
			if err != nil {
				b.Fatal(err)
			}
			createScript.EvalSha(ctx, pipe, keys, args...)
		}
		cmds, err := pipe.Exec(ctx)
		if err != nil {
			b.Fatal(err)
		}
		for _, cmd := range cmds {
			if v, err := cmd.(*redis.Cmd).Slice(); err != nil || len(v) != 1 || v[0] != int64(0) {
				b.Fatalf("seeding: %v, %v", v, err)
			}
		}
	}
	return tokens
}

// BenchmarkAuthenticate is the per-request path of the facade with
// sessions in Redis: g.Authenticate(ctx, token) — token decode, SHA-256,
// one EVALSHA of the LookupTouch script, liveness check — with 100,000
// live sessions stored. NoTouch is the common case (LastSeen was written
// less than the touch interval, 30 s, ago); Touch moves the clock so that
// every request writes LastSeen in the same script (30 s since the last
// write: due, and within the minute of MaxTouchGap). Besides time and
// allocations it reports Redis commands and round trips per request (both
// must be 1) and the Redis memory of one session (its hash and its user's
// index). TouchAfterPause moves the clock a minute per pass: every request
// is the first after a pause, and costs two (the LookupTouch script, then
// the Touch script once the tenant's policy has let the session through).
func BenchmarkAuthenticate(b *testing.B) {
	rs, c := benchStore(b)
	start := time.Now().UTC().Truncate(time.Microsecond)
	now := start
	g, err := guard.New(guard.Config{
		Stores:   rs.Stores(memstore.New().Stores()),
		AuditKey: []byte("0123456789abcdef0123456789abcdef"),
		Hasher:   auth.HasherConfig{Memory: 64, Time: 1},
		Now:      func() time.Time { return now },
	})
	if err != nil {
		b.Fatal(err)
	}
	tokens := seed(b, rs, start, liveSessions)
	// The sessions' tenant, whose policy Authenticate applies.
	if _, err := g.CreateTenant(context.Background(), guard.System("bench"), "acme", "Acme", guard.Policy{}); err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	h, _ := session.ParseToken(tokens[0])
	mem := c.MemoryUsage(ctx, rs.sessionKey(h)).Val() + c.MemoryUsage(ctx, rs.indexKey("acme", "u000000")).Val()
	cnt := &cmdCounter{}
	c.AddHook(cnt)

	run := func(b *testing.B, step time.Duration) {
		cnt.cmds.Store(0)
		cnt.trips.Store(0)
		ops := 0
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if step > 0 {
				// Every session is seen once per pass over the tokens,
				// step after the last time.
				now = start.Add(time.Duration(1+i/len(tokens)) * step)
			}
			p, err := g.Authenticate(ctx, tokens[i%len(tokens)])
			if err != nil || p.Tenant != "acme" {
				b.Fatalf("Authenticate: %+v, %v", p, err)
			}
			ops++
		}
		b.ReportMetric(float64(cnt.cmds.Load())/float64(ops), "cmds/op")
		b.ReportMetric(float64(cnt.trips.Load())/float64(ops), "roundtrips/op")
		b.ReportMetric(float64(mem), "redis-B/session")
	}
	b.Run("NoTouch", func(b *testing.B) { run(b, 0) })
	// RoundTripFloor is one HMGET of a whole session through the same
	// client, without the facade: the cost of any Redis round trip on
	// this machine, to compare NoTouch with.
	b.Run("RoundTripFloor", func(b *testing.B) {
		keys := make([]string, len(tokens))
		for i, tok := range tokens {
			h, _ := session.ParseToken(tok)
			keys[i] = rs.sessionKey(h)
		}
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if v, err := c.HMGet(ctx, keys[i%len(keys)], "t", "u", "c", "l", "e", "i", "ip", "ua", "f").Result(); err != nil || v[0] != "acme" {
				b.Fatalf("HMGET: %v, %v", v, err)
			}
		}
	})
	for _, tc := range []struct {
		name string
		step time.Duration
	}{{"Touch", 30 * time.Second}, {"TouchAfterPause", time.Minute}} {
		b.Run(tc.name, func(b *testing.B) {
			from := now
			start = now
			run(b, tc.step)
			// The writes happened: the first session was last seen at
			// the last step the loop reached.
			if s, err := rs.Lookup(ctx, h); err != nil || !s.LastSeen.After(from) {
				b.Fatalf("Lookup after touching: LastSeen %v, %v; want later than %v", s.LastSeen, err, from)
			}
		})
	}
}
