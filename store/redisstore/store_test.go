package redisstore_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/session"
	"github.com/guardhq/guard/store/redisstore"
)

// base is a fixed "now" far enough ahead that Redis, which expires keys by
// its own clock, keeps them for the length of a test.
var base = time.Date(2099, 1, 1, 9, 0, 0, 123456000, time.UTC)

func hashOf(label string) session.Hash { return sha256.Sum256([]byte("redisstore:" + label)) }

func mk(label, tenant, user string, created time.Time) session.Session {
	return session.Session{
		Hash: hashOf(label), Tenant: tenant, UserID: user,
		CreatedAt: created, LastSeen: created, ExpiresAt: created.Add(7 * 24 * time.Hour),
		IdleTimeout: 24 * time.Hour, IP: "192.0.2.1", UserAgent: "test " + label,
	}
}

func isUnavailable(err error) bool { return errors.Is(err, guard.ErrUnavailable) }

// keysOf returns the keys under prefix+pattern.
func keysOf(t *testing.T, c *redis.Client, pattern string) []string {
	t.Helper()
	var keys []string
	iter := c.Scan(t.Context(), 0, pattern, 1000).Iterator()
	for iter.Next(t.Context()) {
		keys = append(keys, iter.Val())
	}
	if err := iter.Err(); err != nil {
		t.Fatal(err)
	}
	return keys
}

// parallel runs f(0..n-1) in n goroutines released at once, and waits.
func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Go(func() {
			<-start
			f(i)
		})
	}
	close(start)
	wg.Wait()
}

// TestCreateLimitAcrossClients runs 100 concurrent Creates for one user
// with a limit of 1, half through one client and half through another (as
// two replicas would): exactly one session is left, every other one is
// reported evicted exactly once (EvictOldest) or refused (RefuseNew), and
// no session key is left behind.
func TestCreateLimitAcrossClients(t *testing.T) {
	for _, policy := range []session.LimitPolicy{session.EvictOldest, session.RefuseNew} {
		t.Run(fmt.Sprint("policy", policy), func(t *testing.T) {
			s1, c1, prefix := open(t)
			c2 := newClient(t)
			s2, err := redisstore.New(t.Context(), c2, redisstore.Options{Prefix: prefix})
			if err != nil {
				t.Fatal(err)
			}
			const n = 100
			lim := session.Limit{Max: 1, Policy: policy}
			var mu sync.Mutex
			created := map[session.Hash]bool{}
			evicted := map[session.Hash]int{}
			parallel(n, func(i int) {
				st := s1
				if i%2 == 1 {
					st = s2
				}
				s := mk(fmt.Sprint("c", i), "t", "u", base.Add(time.Duration(i%7)*time.Millisecond))
				ev, err := st.Create(t.Context(), s, lim)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					created[s.Hash] = true
				case policy == session.RefuseNew && errors.Is(err, session.ErrLimit):
				default:
					t.Errorf("Create %d: %v", i, err)
				}
				for _, e := range ev {
					evicted[e.Hash]++
				}
			})
			list, err := s1.ListByUser(t.Context(), "t", "u")
			if err != nil {
				t.Fatal(err)
			}
			if len(list) != 1 {
				t.Fatalf("%d sessions left, want 1", len(list))
			}
			if keys := keysOf(t, c1, prefix+"s:*"); len(keys) != 1 {
				t.Errorf("%d session keys left, want 1", len(keys))
			}
			if n, err := c1.ZCard(t.Context(), keys(t, c1, prefix+"u:*")).Result(); err != nil || n != 1 {
				t.Errorf("the user index holds %d members (%v), want 1", n, err)
			}
			switch policy {
			case session.EvictOldest:
				if len(created) != n {
					t.Errorf("%d Creates succeeded, want all %d", len(created), n)
				}
				for h, k := range evicted {
					if k != 1 || h == list[0].Hash {
						t.Errorf("session %s evicted %d times (survivor: %v)", h, k, h == list[0].Hash)
					}
				}
				if len(evicted) != n-1 {
					t.Errorf("%d sessions evicted, want %d", len(evicted), n-1)
				}
			case session.RefuseNew:
				if len(created) != 1 || !created[list[0].Hash] || len(evicted) != 0 {
					t.Errorf("%d Creates succeeded and %d evicted; want 1 (the one left) and none", len(created), len(evicted))
				}
			}
		})
	}
}

// keys returns the one key matching pattern.
func keys(t *testing.T, c *redis.Client, pattern string) string {
	t.Helper()
	k := keysOf(t, c, pattern)
	if len(k) != 1 {
		t.Fatalf("%d keys match %s, want 1", len(k), pattern)
	}
	return k[0]
}

// TestReserveAcrossClients runs 50 concurrent Reserves of one key from two
// clients: exactly Max are allowed, one of them starts the lock.
func TestReserveAcrossClients(t *testing.T) {
	s1, _, prefix := open(t)
	s2, err := redisstore.New(t.Context(), newClient(t), redisstore.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	lim := auth.Limit{Max: 5, ResetAfter: time.Hour, LockFor: time.Minute, MaxLockFor: time.Hour}
	var mu sync.Mutex
	allowed, locks := 0, 0
	parallel(50, func(i int) {
		st := s1
		if i%2 == 1 {
			st = s2
		}
		r, err := st.Reserve(t.Context(), "acct:acme:alice@example.com", base.Add(time.Duration(i)*time.Microsecond), lim)
		if err != nil {
			t.Errorf("Reserve %d: %v", i, err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if r.Allowed {
			allowed++
		}
		if r.Locks {
			locks++
		}
	})
	if allowed != lim.Max || locks != 1 {
		t.Errorf("%d Reserves allowed, %d started a lock; want %d and 1", allowed, locks, lim.Max)
	}
	st, err := s1.Peek(t.Context(), "acct:acme:alice@example.com", base.Add(time.Second), lim)
	if err != nil || !st.Locked(base.Add(time.Second)) || st.Lockouts != 1 || st.Failures != 0 {
		t.Errorf("Peek = %+v, %v; want locked once", st, err)
	}
}

// keyExpiry returns the PEXPIRETIME of key: when Redis drops it, or -1
// for never and -2 for a key that is absent.
func keyExpiry(t *testing.T, c *redis.Client, key string) time.Duration {
	t.Helper()
	d, err := c.PExpireTime(t.Context(), key).Result()
	if err != nil {
		t.Fatalf("PEXPIRETIME %s: %v", key, err)
	}
	return d
}

// expiryAt is the PEXPIRETIME of a key that must live until tm, as the
// store sets it: the next whole millisecond after tm.
func expiryAt(tm time.Time) time.Duration {
	return time.Duration(tm.UnixMilli()+1) * time.Millisecond
}

// TestTombstoneExpiry checks that the tombstone of an evicted session, and
// the user's set of tombstones, expire when the session would have ended.
func TestTombstoneExpiry(t *testing.T) {
	st, c, prefix := open(t)
	ctx := t.Context()
	a := mk("a", "t", "u", base)
	b := mk("b", "t", "u", base.Add(time.Minute))
	b.IdleTimeout = 3 * 24 * time.Hour
	for _, s := range []session.Session{a, b, mk("c", "t", "u", base.Add(2*time.Minute))} {
		if _, err := st.Create(ctx, s, session.Limit{Max: 1}); err != nil {
			t.Fatal(err)
		}
	}
	idx := keys(t, c, prefix+"ue:*")
	for _, tc := range []struct {
		key  string
		want time.Time
	}{
		{prefix + "se:" + hexOf(a.Hash), a.EndsAt()},
		{prefix + "se:" + hexOf(b.Hash), b.EndsAt()},
		{idx, b.EndsAt()}, // the later of the two
	} {
		if got, want := keyExpiry(t, c, tc.key), expiryAt(tc.want); got != want {
			t.Errorf("%s expires at %v, want %v", strings.TrimPrefix(tc.key, prefix), got, want)
		}
	}
}

// TestTombstoneExpiryAfterDeleteByUser checks that the user's set of
// tombstones, once DeleteByUser has kept only the spared session's
// rotation tombstones, expires with the last of them, and is deleted with
// the last tombstone.
func TestTombstoneExpiryAfterDeleteByUser(t *testing.T) {
	st, c, prefix := open(t)
	ctx := t.Context()
	a := mk("a", "t", "u", base)
	b := mk("b", "t", "u", base.Add(time.Minute))
	b.ExpiresAt = base.Add(30 * 24 * time.Hour) // rotated, its tombstone ends later than a's
	for _, s := range []session.Session{a, b} {
		if _, err := st.Create(ctx, s, session.Limit{}); err != nil {
			t.Fatal(err)
		}
	}
	an, bn := a, b
	an.Hash, bn.Hash = hashOf("a-new"), hashOf("b-new")
	for _, r := range [][2]session.Session{{a, an}, {b, bn}} {
		if err := st.Rotate(ctx, r[0].Hash, r[1]); err != nil {
			t.Fatal(err)
		}
	}
	idx := keys(t, c, prefix+"ue:*")
	if got, want := keyExpiry(t, c, idx), expiryAt(bn.ExpiresAt); got != want {
		t.Fatalf("the user's tombstones expire at %v, want %v", got, want)
	}
	if _, err := st.DeleteByUser(ctx, "t", "u", an.Hash); err != nil {
		t.Fatal(err)
	}
	if got, want := keyExpiry(t, c, idx), expiryAt(an.ExpiresAt); got != want {
		t.Errorf("after DeleteByUser sparing a, the user's tombstones expire at %v, want %v (a's, the one kept)", got, want)
	}
	if _, err := st.DeleteByUser(ctx, "t", "u", session.Hash{}); err != nil {
		t.Fatal(err)
	}
	if got := keysOf(t, c, prefix+"*"); len(got) != 0 {
		t.Errorf("keys left after DeleteByUser sparing none: %q", got)
	}
}

// TestKeyExpiry checks that every key has an expiry, at the time when
// its data stops mattering, so that Redis memory stays bounded.
func TestKeyExpiry(t *testing.T) {
	st, c, prefix := open(t)
	ctx := t.Context()
	expireTime := func(key string) time.Duration { t.Helper(); return keyExpiry(t, c, key) }
	at := expiryAt

	a := mk("a", "t", "u", base)
	b := mk("b", "t", "u", base.Add(time.Minute))
	b.ExpiresAt = base.Add(30 * 24 * time.Hour)
	for _, s := range []session.Session{a, b} {
		if _, err := st.Create(ctx, s, session.Limit{}); err != nil {
			t.Fatal(err)
		}
	}
	sa, sb, idx := prefix+"s:"+hexOf(a.Hash), prefix+"s:"+hexOf(b.Hash), keys(t, c, prefix+"u:*")
	for _, k := range []string{sa, sb, idx} {
		if d, err := c.PTTL(ctx, k).Result(); err != nil || d <= 0 {
			t.Errorf("PTTL %s = %v, %v; want > 0", k, d, err)
		}
	}
	if got, want := expireTime(sa), at(a.ExpiresAt); got != want {
		t.Errorf("session a expires at %v, want %v", got, want)
	}
	if got, want := expireTime(idx), at(b.ExpiresAt); got != want {
		t.Errorf("the user index expires at %v, want %v (its last session's ExpiresAt)", got, want)
	}
	// Deleting the last-expiring session brings the index's expiry in.
	if _, err := st.Delete(ctx, b.Hash); err != nil {
		t.Fatal(err)
	}
	if got, want := expireTime(idx), at(a.ExpiresAt); got != want {
		t.Errorf("after Delete the user index expires at %v, want %v", got, want)
	}
	// Rotating to a session with a later ExpiresAt takes it out again.
	r := a
	r.Hash = hashOf("rotated")
	r.ExpiresAt = base.Add(60 * 24 * time.Hour)
	if err := st.Rotate(ctx, a.Hash, r); err != nil {
		t.Fatal(err)
	}
	if got, want := expireTime(idx), at(r.ExpiresAt); got != want {
		t.Errorf("after Rotate the user index expires at %v, want %v", got, want)
	}
	if got, want := expireTime(prefix+"s:"+hexOf(r.Hash)), at(r.ExpiresAt); got != want {
		t.Errorf("the rotated session expires at %v, want %v", got, want)
	}

	// Throttle records expire ClockGrace after auth.Record.ExpiresAt
	// forgets them (a host behind the Redis clock still finds them).
	lim := auth.Limit{Max: 2, ResetAfter: time.Hour, LockFor: 3 * time.Hour, MaxLockFor: 3 * time.Hour}
	tk := prefix + "t:k"
	if _, err := st.Reserve(ctx, "k", base, lim); err != nil {
		t.Fatal(err)
	}
	if d, err := c.PTTL(ctx, tk).Result(); err != nil || d <= 0 {
		t.Errorf("PTTL of a throttle record = %v, %v; want > 0", d, err)
	}
	if got, want := expireTime(tk), at(base.Add(time.Hour+redisstore.ClockGrace)); got != want {
		t.Errorf("throttle record expires at %v, want %v (Last+ResetAfter+ClockGrace)", got, want)
	}
	res, err := st.Reserve(ctx, "k", base.Add(time.Second), lim)
	if err != nil || !res.Locks {
		t.Fatalf("second Reserve = %+v, %v; want it to lock", res, err)
	}
	if got, want := expireTime(tk), at(res.LockedUntil.Add(redisstore.ClockGrace)); got != want {
		t.Errorf("locked throttle record expires at %v, want %v (LockedUntil+ClockGrace)", got, want)
	}
	// A permanent lock is kept until Reset.
	perm := auth.Limit{Max: 1, ResetAfter: time.Hour, LockFor: time.Minute, MaxLockFor: time.Minute, PermanentAfter: 1}
	for i, want := range []bool{false, true} {
		r, err := st.Reserve(ctx, "p", base.Add(time.Duration(i)*time.Hour/2), perm)
		if err != nil || r.Permanent != want {
			t.Fatalf("Reserve %d = %+v, %v; want Permanent %v", i, r, err, want)
		}
	}
	if d, err := c.PTTL(ctx, prefix+"t:p").Result(); err != nil || d != -1 {
		t.Errorf("PTTL of a permanently locked record = %v, %v; want -1 (no expiry)", d, err)
	}
	// Reset removes the record.
	if err := st.Reset(ctx, "p"); err != nil {
		t.Fatal(err)
	}
	if n, err := c.Exists(ctx, prefix+"t:p").Result(); err != nil || n != 0 {
		t.Errorf("record still there after Reset: %d, %v", n, err)
	}
}

func hexOf(h session.Hash) string { return fmt.Sprintf("%x", h[:]) }

// TestExpiredByRedis lets Redis expire keys by its clock, at real times:
// the session and its index go; a forgotten throttle record stays
// ClockGrace longer.
func TestExpiredByRedis(t *testing.T) {
	st, c, prefix := open(t)
	ctx := t.Context()
	now := time.Now().UTC()
	short := mk("short", "t", "u", now)
	short.ExpiresAt = now.Add(50 * time.Millisecond)
	long := mk("long", "t", "v", now)
	for _, s := range []session.Session{short, long} {
		if _, err := st.Create(ctx, s, session.Limit{Max: 1}); err != nil {
			t.Fatal(err)
		}
	}
	lim := auth.Limit{Max: 3, ResetAfter: 50 * time.Millisecond, LockFor: time.Millisecond, MaxLockFor: time.Millisecond}
	if _, err := st.Reserve(ctx, "k", now, lim); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if _, err := st.Lookup(ctx, short.Hash); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Lookup of a session past ExpiresAt by the Redis clock: %v, want ErrNotFound", err)
	}
	if l, err := st.ListByUser(ctx, "t", "u"); err != nil || len(l) != 0 {
		t.Errorf("ListByUser = %d sessions, %v; want none", len(l), err)
	}
	if got := keysOf(t, c, prefix+"*"); len(got) != 3 {
		t.Errorf("keys left: %q; want only the long session, its index and the throttle record", got)
	}
	if d, err := c.PTTL(ctx, prefix+"t:k").Result(); err != nil || d <= redisstore.ClockGrace-time.Second || d > redisstore.ClockGrace {
		t.Errorf("PTTL of the forgotten throttle record = %v, %v; want ClockGrace less the time since", d, err)
	}
	if l, err := st.ListByUser(ctx, "t", "v"); err != nil || len(l) != 1 {
		t.Errorf("ListByUser of the long session's user = %d sessions, %v; want 1", len(l), err)
	}
}

// TestIndexDropsGoneSessions checks that a user index forgets a session
// whose key is gone (Redis expired or evicted it) when it is next used, and
// that such a session does not count towards the limit.
func TestIndexDropsGoneSessions(t *testing.T) {
	st, c, prefix := open(t)
	ctx := t.Context()
	a, b := mk("a", "t", "u", base), mk("b", "t", "u", base.Add(time.Minute))
	for _, s := range []session.Session{a, b} {
		if _, err := st.Create(ctx, s, session.Limit{}); err != nil {
			t.Fatal(err)
		}
	}
	idx := keys(t, c, prefix+"u:*")
	if err := c.Del(ctx, prefix+"s:"+hexOf(a.Hash)).Err(); err != nil {
		t.Fatal(err)
	}
	l, err := st.ListByUser(ctx, "t", "u")
	if err != nil || len(l) != 1 || l[0].Hash != b.Hash {
		t.Fatalf("ListByUser = %d sessions, %v; want b only", len(l), err)
	}
	if n, err := c.ZCard(ctx, idx).Result(); err != nil || n != 1 {
		t.Errorf("index holds %d members, %v; want 1", n, err)
	}
	if err := c.Del(ctx, prefix+"s:"+hexOf(b.Hash)).Err(); err != nil {
		t.Fatal(err)
	}
	n := mk("n", "t", "u", base.Add(time.Hour))
	if ev, err := st.Create(ctx, n, session.Limit{Max: 1, Policy: session.RefuseNew}); err != nil || len(ev) != 0 {
		t.Errorf("Create = %d evicted, %v; a gone session must not count", len(ev), err)
	}
	if _, err := st.Delete(ctx, b.Hash); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Delete of a gone session: %v, want ErrNotFound", err)
	}
}

// TestRedisDown checks that every method returns an error when Redis
// cannot be reached, and never a sentinel that means "not there".
func TestRedisDown(t *testing.T) {
	st, err := redisstore.New(t.Context(), deadClient(t), redisstore.Options{SkipEvictionCheck: true})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	s := mk("a", "t", "u", base)
	lim := auth.Limit{Max: 3, ResetAfter: time.Hour, LockFor: time.Minute, MaxLockFor: time.Hour}
	check := func(what string, err error, result any) {
		t.Helper()
		switch {
		case err == nil:
			t.Errorf("%s with Redis down: no error, result %+v", what, result)
		case errors.Is(err, session.ErrNotFound), errors.Is(err, session.ErrLimit), errors.Is(err, session.ErrDuplicate):
			t.Errorf("%s with Redis down: %v; a failure must not look like an answer", what, err)
		case !strings.HasPrefix(err.Error(), "redisstore: "):
			t.Errorf("%s with Redis down: %q, want it prefixed redisstore:", what, err)
		case !errors.Is(err, syscall.ECONNREFUSED):
			t.Errorf("%s with Redis down: %v, want it to wrap the connection error", what, err)
		}
	}
	ev, err := st.Create(ctx, s, session.Limit{Max: 1})
	check("Create", err, ev)
	got, err := st.Lookup(ctx, s.Hash)
	check("Lookup", err, got)
	got, err = st.LookupTouch(ctx, s.Hash, base, time.Minute, 0)
	check("LookupTouch", err, got)
	check("Touch", st.Touch(ctx, s.Hash, base), nil)
	got, err = st.Delete(ctx, s.Hash)
	check("Delete", err, got)
	check("Rotate", st.Rotate(ctx, s.Hash, mk("b", "t", "u", base)), nil)
	list, err := st.ListByUser(ctx, "t", "u")
	check("ListByUser", err, list)
	list, err = st.DeleteByUser(ctx, "t", "u", session.Hash{})
	check("DeleteByUser", err, list)
	res, err := st.Reserve(ctx, "k", base, lim)
	check("Reserve", err, res)
	if res.Allowed {
		t.Error("Reserve with Redis down allowed the attempt")
	}
	check("Release", st.Release(ctx, "k", auth.Reservation{Allowed: true, Failures: 1}), nil)
	check("Reset", st.Reset(ctx, "k"), nil)
	state, err := st.Peek(ctx, "k", base, lim)
	check("Peek", err, state)
	check("Load", st.Load(ctx), nil)
}

// TestForeignData checks that keys holding something this package did not
// write give errors, not sessions or "not found".
func TestForeignData(t *testing.T) {
	st, c, prefix := open(t)
	ctx := t.Context()
	a := mk("a", "t", "u", base)
	if err := c.Set(ctx, prefix+"s:"+hexOf(a.Hash), "not a hash", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if s, err := st.Lookup(ctx, a.Hash); err == nil || errors.Is(err, session.ErrNotFound) {
		t.Errorf("Lookup of a string key = %+v, %v; want an error", s, err)
	}
	if s, err := st.LookupTouch(ctx, a.Hash, base, time.Minute, 0); err == nil || errors.Is(err, session.ErrNotFound) {
		t.Errorf("LookupTouch of a string key = %+v, %v; want an error", s, err)
	}
	b := mk("b", "t", "u", base)
	if err := c.HSet(ctx, prefix+"s:"+hexOf(b.Hash), "t", "t", "u", "u", "c", "soon", "l", "1", "e", "2", "i", "3", "ip", "", "ua", "", "f", "0").Err(); err != nil {
		t.Fatal(err)
	}
	if s, err := st.Lookup(ctx, b.Hash); !errors.Is(err, redisstore.ErrCorrupt) {
		t.Errorf("Lookup of a malformed session = %+v, %v; want ErrCorrupt", s, err)
	}
	if err := c.Set(ctx, prefix+"t:k", "x", 0).Err(); err != nil {
		t.Fatal(err)
	}
	lim := auth.Limit{Max: 3, ResetAfter: time.Hour, LockFor: time.Minute, MaxLockFor: time.Hour}
	if r, err := st.Reserve(ctx, "k", base, lim); err == nil || r.Allowed {
		t.Errorf("Reserve of a string key = %+v, %v; want an error", r, err)
	}
	if s, err := st.Peek(ctx, "k", base, lim); err == nil {
		t.Errorf("Peek of a string key = %+v, %v; want an error", s, err)
	}
}

// TestBadInput checks that values the store cannot keep exactly are
// refused with a typed error, and change nothing.
func TestBadInput(t *testing.T) {
	st, c, prefix := open(t)
	ctx := t.Context()
	var inputErr *redisstore.InputError
	for _, tc := range []struct {
		name string
		edit func(*session.Session)
	}{
		{"CreatedAtBefore1970", func(s *session.Session) { s.CreatedAt = time.Date(1969, 12, 31, 23, 59, 59, 0, time.UTC) }},
		{"LastSeenZero", func(s *session.Session) { s.LastSeen = time.Time{} }},
		{"ExpiresAtAfter2255", func(s *session.Session) { s.ExpiresAt = time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := mk("bad", "t", "u", base)
			tc.edit(&s)
			if _, err := st.Create(ctx, s, session.Limit{}); !errors.As(err, &inputErr) {
				t.Errorf("Create: %v, want *InputError", err)
			}
			old := mk("old", "t", "u", base)
			if _, err := st.Create(ctx, old, session.Limit{}); err != nil {
				t.Fatal(err)
			}
			if err := st.Rotate(ctx, old.Hash, s); !errors.As(err, &inputErr) {
				t.Errorf("Rotate: %v, want *InputError", err)
			}
			if l, err := st.ListByUser(ctx, "t", "u"); err != nil || len(l) != 1 || l[0].Hash != old.Hash {
				t.Errorf("ListByUser = %d sessions, %v; want only the old one", len(l), err)
			}
			if _, err := st.DeleteByUser(ctx, "t", "u", session.Hash{}); err != nil {
				t.Fatal(err)
			}
		})
	}
	a := mk("a", "t", "u", base)
	if _, err := st.Create(ctx, a, session.Limit{}); err != nil {
		t.Fatal(err)
	}
	past := time.Date(1900, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := st.Touch(ctx, a.Hash, past); !errors.As(err, &inputErr) {
		t.Errorf("Touch(1900): %v, want *InputError", err)
	}
	if _, err := st.LookupTouch(ctx, a.Hash, past, time.Minute, 0); !errors.As(err, &inputErr) {
		t.Errorf("LookupTouch(1900): %v, want *InputError", err)
	}
	if got, err := st.Lookup(ctx, a.Hash); err != nil || !got.LastSeen.Equal(a.LastSeen) {
		t.Errorf("Lookup = %v, %v; want LastSeen unchanged", got.LastSeen, err)
	}

	lim := auth.Limit{Max: 3, ResetAfter: time.Hour, LockFor: time.Minute, MaxLockFor: time.Hour}
	var limErr *auth.InvalidLimitError
	bad := lim
	bad.LockFor = 0
	if _, err := st.Reserve(ctx, "k", base, bad); !errors.As(err, &limErr) {
		t.Errorf("Reserve with LockFor 0: %v, want *auth.InvalidLimitError", err)
	}
	if _, err := st.Reserve(ctx, "k", time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), lim); !errors.As(err, &inputErr) {
		t.Errorf("Reserve in 2300: %v, want *InputError", err)
	}
	huge := lim
	huge.MaxLockFor = 250 * 365 * 24 * time.Hour
	if _, err := st.Reserve(ctx, "k", base, huge); !errors.As(err, &inputErr) {
		t.Errorf("Reserve with a lock ending after 2255: %v, want *InputError", err)
	}
	if _, err := st.Peek(ctx, "k", past, lim); !errors.As(err, &inputErr) {
		t.Errorf("Peek(1900): %v, want *InputError", err)
	}
	if got := keysOf(t, c, prefix+"t:*"); len(got) != 0 {
		t.Errorf("refused Reserves left keys %q", got)
	}
}

// TestNew checks the validation of New's arguments (no server listens
// there: the check of its maxmemory-policy is TestNewRefusesEvictingServer's).
func TestNew(t *testing.T) {
	local := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1"})
	cluster := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{"127.0.0.1:1"}})
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": "127.0.0.1:1"}})
	t.Cleanup(func() { local.Close(); cluster.Close(); ring.Close() })
	var cfgErr *redisstore.ConfigError
	for _, tc := range []struct {
		name   string
		client redis.UniversalClient
		prefix string
		ok     bool
	}{
		{"Default", local, "", true},
		{"Prefix", local, "app1:guard:", true},
		{"NilClient", nil, "", false},
		{"PrefixWithSpace", local, "my guard:", false},
		{"PrefixNonASCII", local, "gärd:", false},
		{"PrefixTooLong", local, strings.Repeat("g", redisstore.MaxPrefixLen+1), false},
		{"ClusterWithoutHashTag", cluster, "guard:", false},
		{"ClusterEmptyHashTag", cluster, "{}guard:", false},
		{"ClusterWithHashTag", cluster, "{guard}:", true},
		{"RingWithoutHashTag", ring, "", false},
		{"RingWithHashTag", ring, "app:{guard}:", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			st, err := redisstore.New(t.Context(), tc.client, redisstore.Options{Prefix: tc.prefix, SkipEvictionCheck: true})
			switch {
			case tc.ok && (err != nil || st == nil):
				t.Errorf("New: %v", err)
			case !tc.ok && !errors.As(err, &cfgErr):
				t.Errorf("New = %v, want *ConfigError", err)
			}
		})
	}
}

// TestDeleteLineageTombstones checks what the conformance suite cannot:
// rotation tombstones of names with separators in them, and tombstones
// that this package did not write (ErrCorrupt, nothing deleted). (A chain
// that leaves the user and comes back, and a negative maxHops, are the
// suite's.)
func TestDeleteLineageTombstones(t *testing.T) {
	st, c, prefix := open(t)
	ctx := t.Context()
	rotate := func(from session.Session, label, tenant, user string) session.Session {
		t.Helper()
		n := from
		n.Hash, n.Tenant, n.UserID = hashOf(label), tenant, user
		if err := st.Rotate(ctx, from.Hash, n); err != nil {
			t.Fatalf("Rotate to %s: %v", label, err)
		}
		return n
	}
	wantStored := func(s session.Session) {
		t.Helper()
		if got, err := st.Lookup(ctx, s.Hash); err != nil || !same(got, s) {
			t.Errorf("Lookup(%s) = %+v, %v; want it stored", s.UserAgent, got, err)
		}
	}
	create := func(s session.Session) {
		t.Helper()
		if _, err := st.Create(ctx, s, session.Limit{}); err != nil {
			t.Fatal(err)
		}
	}

	// Separators in the names: the user of each tombstone is compared
	// whole, tenant length first.
	odd := mk("odd", "t:1,é x", "u:2,", base)
	create(odd)
	d := rotate(rotate(odd, "odd-b", odd.Tenant, odd.UserID), "odd-d", odd.Tenant, odd.UserID)
	if got, rot, err := st.DeleteLineage(ctx, odd.Hash, session.MaxLineageHops); err != nil || !rot || !same(got, d) {
		t.Errorf("DeleteLineage of odd names = %+v, %v, %v; want %+v, rotated", got, rot, err, d)
	}
	ab := mk("ab", "a:b", "c", base)
	create(ab)
	other := rotate(ab, "ab-other", "a", "b:c")
	if got, _, err := st.DeleteLineage(ctx, ab.Hash, session.MaxLineageHops); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("DeleteLineage across (a:b, c) and (a, b:c) = %+v, %v; want ErrNotFound", got, err)
	}
	wantStored(other)

	// Malformed tombstones fail closed.
	a := mk("a", "t", "u", base)
	create(a)
	b := rotate(a, "b", "t", "u")
	for _, v := range []string{
		"soon",
		"4102480800000000," + hexOf(b.Hash)[1:] + ",1:t:u",
		"4102480800000000," + hexOf(b.Hash) + ",9:t:u",
		"4102480800000000," + hexOf(b.Hash) + ",1-t:u",
	} {
		if err := c.Set(ctx, prefix+"se:"+hexOf(a.Hash), v, 0).Err(); err != nil {
			t.Fatal(err)
		}
		if got, _, err := st.DeleteLineage(ctx, a.Hash, session.MaxLineageHops); !errors.Is(err, redisstore.ErrCorrupt) {
			t.Errorf("DeleteLineage through tombstone %q = %+v, %v; want ErrCorrupt", v, got, err)
		}
		wantStored(b)
	}
}

// same reports whether a and b are the same session of the same user.
func same(a, b session.Session) bool {
	return a.Hash == b.Hash && a.Tenant == b.Tenant && a.UserID == b.UserID && a.UserAgent == b.UserAgent
}
