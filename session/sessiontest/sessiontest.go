// Package sessiontest checks that a session store keeps the contract of
// session.Store and session.UserIndex. Every backend's tests call Run and
// RunConcurrent:
//
//	func TestSessions(t *testing.T) {
//		sessiontest.Run(t, func(t *testing.T) sessiontest.Store { return memstore.NewSessions() })
//	}
//
// Each sentence of the interfaces' doc comments has a named subtest. Every
// subtest asks newStore for a fresh, empty store and needs nothing else
// from it. The suite never reads the clock: sessions carry fixed times in
// the year 2099, so a store that drops expired sessions by its own clock
// (a Redis TTL, for example) keeps them for the length of the test, and a
// store that checks liveness against its own clock instead of
// s.CreatedAt fails.
package sessiontest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/guardhq/guard/session"
)

// Store is what a session backend implements.
type Store interface {
	session.Store
	session.UserIndex
}

// base is the suite's "now": fixed, with sub-second digits down to the
// microsecond, and in the future (see the package doc).
var base = time.Date(2099, 1, 1, 9, 0, 0, 123456000, time.UTC)

const (
	week = 7 * 24 * time.Hour
	day  = 24 * time.Hour
)

var (
	unlimited = session.Limit{}
	evict     = func(n int) session.Limit { return session.Limit{Max: n, Policy: session.EvictOldest} }
	refuse    = func(n int) session.Limit { return session.Limit{Max: n, Policy: session.RefuseNew} }
)

// hashOf returns a fixed hash for label, so failures name sessions by label.
func hashOf(label string) session.Hash { return sha256.Sum256([]byte("sessiontest:" + label)) }

// mk returns a session of tenant/user created (and last seen) at created,
// live for a week with a day's idle timeout.
func mk(label, tenant, user string, created time.Time) session.Session {
	return session.Session{
		Hash:        hashOf(label),
		Tenant:      tenant,
		UserID:      user,
		CreatedAt:   created,
		LastSeen:    created,
		ExpiresAt:   created.Add(week),
		IdleTimeout: day,
		IP:          "192.0.2.1",
		UserAgent:   "sessiontest " + label,
	}
}

// Run runs the conformance tests of session.Store and session.UserIndex
// against the stores that newStore returns, one fresh empty store per
// subtest.
func Run(t *testing.T, newStore func(t *testing.T) Store) {
	t.Helper()
	runParityAudit(t, newStore)
	for _, g := range []struct {
		name  string
		tests []test
	}{
		{"Create", createTests},
		{"Lookup", lookupTests},
		{"Touch", touchTests},
		{"Delete", deleteTests},
		{"Rotate", rotateTests},
		{"ListByUser", listTests},
		{"DeleteByUser", deleteByUserTests},
		{"Tenants", tenantTests},
		{"LookupTouch", lookupTouchTests},
		{"Untouch", untouchTests},
		{"Evicted", evictedTests},
		{"Rotated", rotatedTests},
		{"DeleteLineage", deleteLineageTests},
	} {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					tc.run(t, &checker{t: t, st: newStore(t)})
				})
			}
		})
	}
}

type test struct {
	name string
	run  func(t *testing.T, c *checker)
}

var createTests = []test{
	{"RoundTripEveryField", func(t *testing.T, c *checker) {
		// Times in a zone other than UTC, to the microsecond: the store
		// must keep the instant (compared with Equal).
		zone := time.FixedZone("UTC+05:30", 5*3600+30*60)
		created := base.In(zone).Add(987 * time.Microsecond)
		s := session.Session{
			Hash:        hashOf("round-trip"),
			Tenant:      "tenant-ü",
			UserID:      "user-1",
			CreatedAt:   created,
			LastSeen:    created.Add(3*time.Minute + 7*time.Microsecond),
			ExpiresAt:   created.Add(12*time.Hour + 1*time.Microsecond),
			IdleTimeout: 90*time.Minute + 250*time.Millisecond,
			IP:          "2001:db8::1",
			UserAgent:   "Mozilla/5.0 (X11; Linux x86_64) Élan/1.0 \u2603",
			Flags:       0xdeadbeef,
		}
		if ev := c.create(s, evict(1)); len(ev) != 0 {
			t.Errorf("Create of the first session evicted %d sessions", len(ev))
		}
		c.wantStored(s)
		c.wantList("t", "u", nil)
		c.wantList(s.Tenant, s.UserID, []session.Session{s})
	}},
	{"KeyedByHash", func(t *testing.T, c *checker) {
		a := mk("a", "t", "u", base)
		b := mk("b", "t", "u", base)
		b.IP = "198.51.100.7"
		c.create(a, unlimited)
		c.create(b, unlimited)
		c.wantStored(a)
		c.wantStored(b)
	}},
	{"Duplicate", func(t *testing.T, c *checker) {
		a := mk("a", "t", "u", base)
		b := mk("b", "t", "u", base.Add(time.Minute))
		c.create(a, unlimited)
		c.create(b, unlimited)
		// Same hash, same user, with a limit that would evict a.
		dup := mk("a", "t", "u", base.Add(time.Hour))
		dup.Flags = 7
		c.createErr(dup, evict(1), session.ErrDuplicate)
		// Same hash, another user.
		other := mk("a", "t", "v", base.Add(time.Hour))
		c.createErr(other, evict(1), session.ErrDuplicate)
		c.wantStored(a)
		c.wantStored(b)
		c.wantList("t", "u", []session.Session{a, b})
		c.wantList("t", "v", nil)
	}},
	{"UnderLimitEvictsNothing", func(t *testing.T, c *checker) {
		a := mk("a", "t", "u", base)
		b := mk("b", "t", "u", base.Add(time.Minute))
		n := mk("n", "t", "u", base.Add(2*time.Minute))
		c.create(a, evict(3))
		c.create(b, evict(3))
		if ev := c.create(n, evict(3)); len(ev) != 0 {
			t.Errorf("Create under the limit evicted %s", ids(ev))
		}
		c.create(mk("r", "t", "u", base.Add(3*time.Minute)), refuse(4))
		c.wantList("t", "u", []session.Session{a, b, n, mk("r", "t", "u", base.Add(3*time.Minute))})
	}},
	{"EvictOldestOne", func(t *testing.T, c *checker) {
		a := mk("a", "t", "u", base)
		b := mk("b", "t", "u", base.Add(time.Minute))
		c.create(a, evict(1))
		c.wantSessions("evicted", c.create(b, evict(1)), []session.Session{a})
		c.wantGone(a.Hash)
		c.wantList("t", "u", []session.Session{b})
	}},
	{"EvictOldestReturnsExactlyTheOldest", func(t *testing.T, c *checker) {
		var all []session.Session
		for i := range 5 {
			all = append(all, mk(fmt.Sprint("s", i), "t", "u", base.Add(time.Duration(i)*time.Minute)))
		}
		// Created out of order: eviction goes by CreatedAt, not by arrival.
		for _, i := range []int{3, 0, 4, 1, 2} {
			c.create(all[i], unlimited)
		}
		n := mk("new", "t", "u", base.Add(time.Hour))
		c.wantSessions("evicted", c.create(n, evict(3)), all[:3])
		for _, s := range all[:3] {
			c.wantGone(s.Hash)
		}
		c.wantList("t", "u", []session.Session{all[3], all[4], n})
	}},
	{"EvictOldestTieBrokenByHash", func(t *testing.T, c *checker) {
		var same []session.Session
		for i := range 4 {
			same = append(same, mk(fmt.Sprint("tie", i), "t", "u", base))
		}
		newest := mk("later", "t", "u", base.Add(time.Second))
		older := mk("older", "t", "u", base.Add(-time.Second))
		for _, s := range append([]session.Session{newest, older}, same...) {
			c.create(s, unlimited)
		}
		sorted := slices.Clone(same)
		slices.SortFunc(sorted, func(a, b session.Session) int { return bytes.Compare(a.Hash[:], b.Hash[:]) })
		// 6 stored, limit 3 with the new one: the 4 oldest go, "older"
		// first (earliest CreatedAt), then 3 of the ties in hash order.
		n := mk("n", "t", "u", base.Add(time.Hour))
		want := append([]session.Session{older}, sorted[:3]...)
		c.wantSessions("evicted", c.create(n, evict(3)), want)
		c.wantList("t", "u", []session.Session{sorted[3], newest, n})
	}},
	{"EvictOldestKeepsNewSession", func(t *testing.T, c *checker) {
		// The new session stays even if its CreatedAt is earlier than
		// those already stored: exactly lim.Max remain with s.
		a := mk("a", "t", "u", base.Add(time.Hour))
		c.create(a, unlimited)
		n := mk("n", "t", "u", base)
		c.wantSessions("evicted", c.create(n, evict(1)), []session.Session{a})
		c.wantList("t", "u", []session.Session{n})
	}},
	{"RefuseNewChangesNothing", func(t *testing.T, c *checker) {
		a := mk("a", "t", "u", base)
		b := mk("b", "t", "u", base.Add(time.Minute))
		c.create(a, refuse(2))
		c.create(b, refuse(2))
		n := mk("n", "t", "u", base.Add(time.Hour))
		c.createErr(n, refuse(2), session.ErrLimit)
		c.createErr(n, refuse(1), session.ErrLimit)
		c.wantGone(n.Hash)
		c.wantStored(a)
		c.wantStored(b)
		c.wantList("t", "u", []session.Session{a, b})
		// Under the limit RefuseNew admits the session.
		c.create(n, refuse(3))
		c.wantList("t", "u", []session.Session{a, b, n})
	}},
	{"NonLiveNotCounted", func(t *testing.T, c *checker) {
		now := base.Add(2 * day)
		idle := mk("idle", "t", "u", base)
		idle.LastSeen = now.Add(-idle.IdleTimeout) // idle timeout ends exactly at now
		abs := mk("abs", "t", "u", base)
		abs.ExpiresAt = now // absolute expiry exactly at now
		c.create(idle, unlimited)
		c.create(abs, unlimited)
		n := mk("n", "t", "u", now)
		if ev := c.create(n, refuse(1)); len(ev) != 0 {
			t.Errorf("Create evicted %s; sessions that are not live must not count", ids(ev))
		}
	}},
	{"LiveCountedToTheMicrosecond", func(t *testing.T, c *checker) {
		now := base.Add(2 * day)
		idle := mk("idle", "t", "u", base)
		idle.LastSeen = now.Add(-idle.IdleTimeout + time.Microsecond)
		c.create(idle, unlimited)
		c.createErr(mk("n", "t", "u", now), refuse(1), session.ErrLimit)
		abs := mk("abs", "t", "v", base)
		abs.LastSeen = now.Add(-time.Hour)
		abs.ExpiresAt = now.Add(time.Microsecond)
		c.create(abs, unlimited)
		c.createErr(mk("m", "t", "v", now), refuse(1), session.ErrLimit)
	}},
	{"NonLiveRemoved", func(t *testing.T, c *checker) {
		now := base.Add(2 * day)
		idle := mk("idle", "t", "u", base)
		idle.IdleTimeout = time.Hour
		abs := mk("abs", "t", "u", base)
		abs.ExpiresAt = base.Add(time.Hour)
		live := mk("live", "t", "u", now.Add(-time.Minute))
		for _, s := range []session.Session{idle, abs, live} {
			c.create(s, unlimited)
		}
		// EvictOldest evicts (and returns) only the live one; the others
		// are removed without being returned.
		n := mk("n", "t", "u", now)
		c.wantSessions("evicted", c.create(n, evict(1)), []session.Session{live})
		c.wantGone(idle.Hash)
		c.wantGone(abs.Hash)
		c.wantList("t", "u", []session.Session{n})
	}},
	{"NonLiveRemovedWithoutLimit", func(t *testing.T, c *checker) {
		now := base.Add(2 * day)
		abs := mk("abs", "t", "u", base)
		abs.ExpiresAt = base.Add(time.Hour)
		other := mk("other", "t", "v", base) // another user: not touched
		other.ExpiresAt = base.Add(time.Hour)
		c.create(abs, unlimited)
		c.create(other, unlimited)
		n := mk("n", "t", "u", now)
		if ev := c.create(n, unlimited); len(ev) != 0 {
			t.Errorf("Create with no limit evicted %s", ids(ev))
		}
		c.wantGone(abs.Hash)
		c.wantList("t", "u", []session.Session{n})
		c.wantList("t", "v", []session.Session{other})
	}},
	{"LivenessAtCreatedAt", func(t *testing.T, c *checker) {
		// Liveness is judged at s.CreatedAt, never by the store's clock:
		// a is live at the CreatedAt of the refused session; b is not live
		// at n's CreatedAt, though it is by any clock before 2099.
		a := mk("a", "t", "u", base)
		c.create(a, unlimited)
		c.createErr(mk("refused", "t", "u", base.Add(time.Hour)), refuse(1), session.ErrLimit)
		b := mk("b", "t", "v", base)
		b.ExpiresAt = base.Add(time.Hour)
		c.create(b, unlimited)
		n := mk("n", "t", "v", base.Add(2*time.Hour))
		c.create(n, refuse(1))
		c.wantList("t", "v", []session.Session{n})
	}},
	{"MaxZeroIsUnlimited", func(t *testing.T, c *checker) {
		var all []session.Session
		for i := range 10 {
			s := mk(fmt.Sprint("s", i), "t", "u", base.Add(time.Duration(i)*time.Second))
			all = append(all, s)
			lim := unlimited
			if i%2 == 1 {
				lim = session.Limit{Max: 0, Policy: session.RefuseNew}
			}
			if ev := c.create(s, lim); len(ev) != 0 {
				t.Errorf("Create with Max 0 evicted %s", ids(ev))
			}
		}
		c.wantList("t", "u", all)
	}},
	{"LimitIsPerUser", func(t *testing.T, c *checker) {
		u := mk("u", "t", "u", base)
		v := mk("v", "t", "v", base.Add(time.Minute))
		other := mk("other-tenant", "t2", "u", base.Add(2*time.Minute))
		c.create(u, evict(1))
		if ev := c.create(v, evict(1)); len(ev) != 0 {
			t.Errorf("another user's Create evicted %s", ids(ev))
		}
		if ev := c.create(other, evict(1)); len(ev) != 0 {
			t.Errorf("the same user ID in another tenant evicted %s", ids(ev))
		}
		c.create(mk("v2", "t", "v2", base), refuse(1))
		c.wantList("t", "u", []session.Session{u})
		c.wantList("t", "v", []session.Session{v})
		c.wantList("t2", "u", []session.Session{other})
	}},
	{"LiveSessionsKept", func(t *testing.T, c *checker) {
		// Only sessions that are no longer live may be dropped: a live
		// session survives everything done to other sessions.
		keep := mk("keep", "t", "u", base)
		c.create(keep, unlimited)
		for i := range 5 {
			s := mk(fmt.Sprint("other", i), "t", fmt.Sprint("v", i), base.Add(time.Duration(i)*time.Hour))
			c.create(s, evict(1))
			c.touch(s.Hash, s.LastSeen.Add(time.Minute))
			c.delete(s.Hash)
		}
		c.wantStored(keep)
	}},
}

var lookupTests = []test{
	{"Unknown", func(t *testing.T, c *checker) {
		c.create(mk("a", "t", "u", base), unlimited)
		c.wantGone(hashOf("never stored"))
		c.wantGone(session.Hash{})
	}},
	{"MayReturnNonLive", func(t *testing.T, c *checker) {
		// A session that was never live: Lookup returns it as stored,
		// or ErrNotFound, and nothing else.
		s := mk("dead", "t", "u", base)
		s.ExpiresAt = base
		c.create(s, unlimited)
		got, err := c.st.Lookup(t.Context(), s.Hash)
		switch {
		case errors.Is(err, session.ErrNotFound):
		case err != nil:
			t.Fatalf("Lookup of a non-live session: %v", err)
		default:
			if d := diff(got, s); d != "" {
				t.Errorf("Lookup of a non-live session returned %s", d)
			}
		}
	}},
}

var touchTests = []test{
	{"SetsNewer", func(t *testing.T, c *checker) {
		s := mk("s", "t", "u", base)
		c.create(s, unlimited)
		s.LastSeen = base.Add(90*time.Second + 3*time.Microsecond)
		c.touch(s.Hash, s.LastSeen)
		c.wantStored(s)
		c.wantList("t", "u", []session.Session{s})
	}},
	{"IgnoresOlder", func(t *testing.T, c *checker) {
		s := mk("s", "t", "u", base)
		c.create(s, unlimited)
		s.LastSeen = base.Add(time.Hour)
		c.touch(s.Hash, s.LastSeen)
		c.touch(s.Hash, base.Add(time.Minute))
		c.touch(s.Hash, base.Add(-time.Hour))
		c.wantStored(s)
	}},
	{"IgnoresEqual", func(t *testing.T, c *checker) {
		s := mk("s", "t", "u", base)
		c.create(s, unlimited)
		c.touch(s.Hash, base)
		c.wantStored(s)
	}},
	{"ExtendsLiveness", func(t *testing.T, c *checker) {
		// The touched LastSeen is what later liveness checks use.
		s := mk("s", "t", "u", base)
		s.IdleTimeout = time.Hour
		c.create(s, unlimited)
		c.touch(s.Hash, base.Add(50*time.Minute))
		c.createErr(mk("n", "t", "u", base.Add(90*time.Minute)), refuse(1), session.ErrLimit)
	}},
	{"UnknownNotFound", func(t *testing.T, c *checker) {
		s := mk("s", "t", "u", base)
		if err := c.st.Touch(t.Context(), s.Hash, base); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("Touch of an unknown session: %v, want ErrNotFound", err)
		}
		c.wantGone(s.Hash)
		c.wantList("t", "u", nil)
	}},
}

var deleteTests = []test{
	{"RemovesAndReturns", func(t *testing.T, c *checker) {
		a := mk("a", "t", "u", base)
		a.Flags = 3
		b := mk("b", "t", "u", base.Add(time.Minute))
		c.create(a, unlimited)
		c.create(b, unlimited)
		if d := diff(c.delete(a.Hash), a); d != "" {
			t.Errorf("Delete returned %s", d)
		}
		c.wantGone(a.Hash)
		c.wantStored(b)
		c.wantList("t", "u", []session.Session{b})
	}},
	{"FreesItsPlace", func(t *testing.T, c *checker) {
		a := mk("a", "t", "u", base)
		c.create(a, refuse(1))
		c.delete(a.Hash)
		c.create(mk("n", "t", "u", base.Add(time.Minute)), refuse(1))
	}},
	{"UnknownNotFound", func(t *testing.T, c *checker) {
		a := mk("a", "t", "u", base)
		c.create(a, unlimited)
		if _, err := c.st.Delete(t.Context(), hashOf("unknown")); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("Delete of an unknown session: %v, want ErrNotFound", err)
		}
		c.delete(a.Hash)
		if _, err := c.st.Delete(t.Context(), a.Hash); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("second Delete: %v, want ErrNotFound", err)
		}
	}},
}

var rotateTests = []test{
	{"Replaces", func(t *testing.T, c *checker) {
		old := mk("old", "t", "u", base)
		c.create(old, unlimited)
		n := old
		n.Hash = hashOf("new")
		n.LastSeen = base.Add(time.Minute)
		n.Flags = 9
		c.rotate(old.Hash, n)
		c.wantGone(old.Hash)
		c.wantStored(n)
		c.wantList("t", "u", []session.Session{n})
	}},
	{"KeepsCount", func(t *testing.T, c *checker) {
		a := mk("a", "t", "u", base)
		b := mk("b", "t", "u", base.Add(time.Minute))
		c.create(a, refuse(2))
		c.create(b, refuse(2))
		// No limit applies: rotating at the limit evicts nothing.
		a2 := a
		a2.Hash = hashOf("a2")
		c.rotate(a.Hash, a2)
		c.wantStored(b)
		c.wantList("t", "u", []session.Session{a2, b})
		// And the count is still 2.
		c.createErr(mk("n", "t", "u", base.Add(time.Hour)), refuse(2), session.ErrLimit)
		n := mk("n", "t", "u", base.Add(time.Hour))
		c.wantSessions("evicted", c.create(n, evict(2)), []session.Session{a2})
	}},
	{"UnknownNotFound", func(t *testing.T, c *checker) {
		n := mk("n", "t", "u", base)
		if err := c.st.Rotate(t.Context(), hashOf("unknown"), n); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("Rotate of an unknown session: %v, want ErrNotFound", err)
		}
		c.wantGone(n.Hash)
		c.wantList("t", "u", nil)
	}},
	{"DuplicateChangesNothing", func(t *testing.T, c *checker) {
		a := mk("a", "t", "u", base)
		b := mk("b", "t", "v", base.Add(time.Minute))
		c.create(a, unlimited)
		c.create(b, unlimited)
		n := a
		n.Hash = b.Hash
		n.Flags = 5
		if err := c.st.Rotate(t.Context(), a.Hash, n); !errors.Is(err, session.ErrDuplicate) {
			t.Errorf("Rotate onto another session's hash: %v, want ErrDuplicate", err)
		}
		n.Hash = a.Hash
		if err := c.st.Rotate(t.Context(), a.Hash, n); !errors.Is(err, session.ErrDuplicate) {
			t.Errorf("Rotate onto its own hash: %v, want ErrDuplicate", err)
		}
		c.wantStored(a)
		c.wantStored(b)
		c.wantList("t", "u", []session.Session{a})
		c.wantList("t", "v", []session.Session{b})
	}},
}

var listTests = []test{
	{"OldestFirst", func(t *testing.T, c *checker) {
		var want []session.Session
		for i := range 3 {
			want = append(want, mk(fmt.Sprint("tie", i), "t", "u", base))
		}
		slices.SortFunc(want, func(a, b session.Session) int { return bytes.Compare(a.Hash[:], b.Hash[:]) })
		want = append([]session.Session{mk("first", "t", "u", base.Add(-time.Minute))}, want...)
		want = append(want, mk("last", "t", "u", base.Add(time.Minute)))
		for _, i := range []int{4, 2, 0, 3, 1} {
			c.create(want[i], unlimited)
		}
		c.wantList("t", "u", want)
	}},
	{"LiveOrNot", func(t *testing.T, c *checker) {
		// b is created first; a, created afterwards with an earlier
		// CreatedAt, is no longer live at b's CreatedAt but is stored.
		b := mk("b", "t", "u", base.Add(2*time.Hour))
		a := mk("a", "t", "u", base)
		a.IdleTimeout = time.Hour
		c.create(b, unlimited)
		c.create(a, unlimited)
		c.wantList("t", "u", []session.Session{a, b})
	}},
	{"UnknownUserEmpty", func(t *testing.T, c *checker) {
		c.create(mk("a", "t", "u", base), unlimited)
		c.wantList("t", "nobody", nil)
		c.wantList("nowhere", "u", nil)
	}},
	{"OnlyThatUser", func(t *testing.T, c *checker) {
		u := mk("u", "t", "u", base)
		c.create(u, unlimited)
		c.create(mk("v", "t", "v", base), unlimited)
		c.create(mk("u-elsewhere", "t2", "u", base), unlimited)
		// A user ID that another user's ID starts with.
		c.create(mk("uu", "t", "uu", base), unlimited)
		c.wantList("t", "u", []session.Session{u})
	}},
}

var deleteByUserTests = []test{
	{"Except", func(t *testing.T, c *checker) {
		a := mk("a", "t", "u", base)
		b := mk("b", "t", "u", base.Add(time.Minute))
		d := mk("d", "t", "u", base.Add(2*time.Minute))
		v := mk("v", "t", "v", base)
		for _, s := range []session.Session{a, b, d, v} {
			c.create(s, unlimited)
		}
		c.wantRemoved(c.deleteByUser("t", "u", b.Hash), []session.Session{a, d})
		c.wantGone(a.Hash)
		c.wantGone(d.Hash)
		c.wantStored(b)
		c.wantList("t", "u", []session.Session{b})
		c.wantList("t", "v", []session.Session{v})
	}},
	{"ZeroHashExceptsNone", func(t *testing.T, c *checker) {
		a := mk("a", "t", "u", base)
		// A session whose hash happens to be the zero Hash is removed too.
		b := mk("b", "t", "u", base.Add(time.Minute))
		b.Hash = session.Hash{}
		c.create(a, unlimited)
		c.create(b, unlimited)
		c.wantRemoved(c.deleteByUser("t", "u", session.Hash{}), []session.Session{a, b})
		c.wantGone(a.Hash)
		c.wantGone(b.Hash)
		c.wantList("t", "u", nil)
		// The user can sign in again afterwards.
		n := mk("n", "t", "u", base.Add(time.Hour))
		c.create(n, refuse(1))
		c.wantList("t", "u", []session.Session{n})
	}},
	{"ExceptOfAnotherUser", func(t *testing.T, c *checker) {
		a := mk("a", "t", "u", base)
		v := mk("v", "t", "v", base)
		c.create(a, unlimited)
		c.create(v, unlimited)
		c.wantRemoved(c.deleteByUser("t", "u", v.Hash), []session.Session{a})
		c.wantStored(v)
	}},
	{"UnknownUserEmpty", func(t *testing.T, c *checker) {
		a := mk("a", "t", "u", base)
		c.create(a, unlimited)
		c.wantRemoved(c.deleteByUser("t", "nobody", session.Hash{}), nil)
		c.wantStored(a)
	}},
}

var tenantTests = []test{
	{"SameUserIDIsAnotherUser", func(t *testing.T, c *checker) {
		t1 := mk("t1", "acme", "42", base)
		t2 := mk("t2", "globex", "42", base.Add(time.Minute))
		c.create(t1, evict(1))
		if ev := c.create(t2, evict(1)); len(ev) != 0 {
			t.Errorf("Create in another tenant evicted %s", ids(ev))
		}
		c.create(mk("t3", "initech", "42", base), refuse(1))
		c.wantList("acme", "42", []session.Session{t1})
		c.wantList("globex", "42", []session.Session{t2})
		c.wantRemoved(c.deleteByUser("acme", "42", session.Hash{}), []session.Session{t1})
		c.wantStored(t2)
		c.wantList("globex", "42", []session.Session{t2})
	}},
	{"NoConfusionOfJoinedNames", func(t *testing.T, c *checker) {
		// ("a:b", "c") and ("a", "b:c") are different users, whatever
		// separator a backend uses to build its keys.
		for _, sep := range []string{":", "/", "|", "\x00", "-"} {
			x := mk("x"+sep, "a"+sep+"b", "c", base)
			y := mk("y"+sep, "a", "b"+sep+"c", base.Add(time.Minute))
			c.create(x, evict(1))
			if ev := c.create(y, evict(1)); len(ev) != 0 {
				t.Errorf("separator %q: Create evicted %s", sep, ids(ev))
			}
			c.wantList("a"+sep+"b", "c", []session.Session{x})
			c.wantList("a", "b"+sep+"c", []session.Session{y})
		}
	}},
}

// lookupTouchTests run only for a store that implements the optional
// session.LookupToucher.
var lookupTouchTests = []test{
	{"ReturnsSessionBeforeTouch", func(t *testing.T, c *checker) {
		lt := c.lookupToucher()
		s := mk("a", "t", "u", base)
		c.create(s, unlimited)
		now := base.Add(5 * time.Minute)
		got, err := lt.LookupTouch(t.Context(), s.Hash, now, time.Minute, 0)
		if err != nil {
			t.Fatalf("LookupTouch: %v", err)
		}
		if d := diff(got, s); d != "" {
			t.Errorf("LookupTouch returned %s; want the session as stored before the touch", d)
		}
		s.LastSeen = now
		c.wantStored(s)
	}},
	{"NoTouchWithinInterval", func(t *testing.T, c *checker) {
		lt := c.lookupToucher()
		s := mk("a", "t", "u", base)
		c.create(s, unlimited)
		if _, err := lt.LookupTouch(t.Context(), s.Hash, base.Add(59*time.Second), time.Minute, 0); err != nil {
			t.Fatalf("LookupTouch: %v", err)
		}
		c.wantStored(s)
	}},
	{"TouchAtExactlyInterval", func(t *testing.T, c *checker) {
		lt := c.lookupToucher()
		s := mk("a", "t", "u", base)
		c.create(s, unlimited)
		now := base.Add(time.Minute)
		if _, err := lt.LookupTouch(t.Context(), s.Hash, now, time.Minute, 0); err != nil {
			t.Fatalf("LookupTouch: %v", err)
		}
		s.LastSeen = now
		c.wantStored(s)
	}},
	{"HalfIdleTimeoutBoundsInterval", func(t *testing.T, c *checker) {
		// With a 10-minute idle timeout and a one-hour interval, the
		// session is touched once 5 minutes (half the idle timeout) passed.
		lt := c.lookupToucher()
		s := mk("a", "t", "u", base)
		s.IdleTimeout = 10 * time.Minute
		c.create(s, unlimited)
		if _, err := lt.LookupTouch(t.Context(), s.Hash, base.Add(4*time.Minute), time.Hour, 0); err != nil {
			t.Fatalf("LookupTouch: %v", err)
		}
		c.wantStored(s)
		now := base.Add(5 * time.Minute)
		if _, err := lt.LookupTouch(t.Context(), s.Hash, now, time.Hour, 0); err != nil {
			t.Fatalf("LookupTouch: %v", err)
		}
		s.LastSeen = now
		c.wantStored(s)
	}},
	{"NotLiveIsNotTouched", func(t *testing.T, c *checker) {
		lt := c.lookupToucher()
		idle := mk("idle", "t", "u", base)
		old := mk("old", "t", "v", base)
		old.IdleTimeout = 30 * day
		c.create(idle, unlimited)
		c.create(old, unlimited)
		for _, tc := range []struct {
			s   session.Session
			now time.Time
		}{
			{idle, base.Add(day)},                    // idle timeout reached
			{old, base.Add(week)},                    // absolute expiry reached
			{old, base.Add(week + time.Microsecond)}, // and beyond
		} {
			got, err := lt.LookupTouch(t.Context(), tc.s.Hash, tc.now, time.Minute, 0)
			if err != nil {
				t.Fatalf("LookupTouch(%s) at +%v: %v", label(tc.s), tc.now.Sub(base), err)
			}
			if d := diff(got, tc.s); d != "" {
				t.Errorf("LookupTouch(%s) returned %s", label(tc.s), d)
			}
			c.wantStored(tc.s)
		}
	}},
	{"NotFound", func(t *testing.T, c *checker) {
		lt := c.lookupToucher()
		c.create(mk("a", "t", "u", base), unlimited)
		if s, err := lt.LookupTouch(t.Context(), hashOf("absent"), base, time.Minute, 0); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("LookupTouch(absent) = %s, %v; want ErrNotFound", label(s), err)
		}
	}},
	{"NeverMovesLastSeenBack", func(t *testing.T, c *checker) {
		lt := c.lookupToucher()
		s := mk("a", "t", "u", base)
		c.create(s, unlimited)
		later := base.Add(10 * time.Minute)
		c.touch(s.Hash, later)
		if _, err := lt.LookupTouch(t.Context(), s.Hash, base.Add(5*time.Minute), time.Nanosecond, 0); err != nil {
			t.Fatalf("LookupTouch: %v", err)
		}
		s.LastSeen = later
		c.wantStored(s)
	}},
	{"MaxGapBoundsTouch", func(t *testing.T, c *checker) {
		// A touch is made only when LastSeen is less than maxGap before
		// now (and the touch is due): a session that limits of maxGap or
		// more would end is never touched before they are applied.
		// maxGap is compared to the nanosecond: 2 min + 1 ns lets a gap
		// of exactly 2 min through, 2 min does not.
		lt := c.lookupToucher()
		for i, tc := range []struct {
			name          string
			gap           time.Duration // now - LastSeen
			interval, max time.Duration
			touched       bool
			idle          time.Duration // 0: a day
		}{
			{"JustBelowMaxGap", 2*time.Minute - time.Microsecond, time.Minute, 2 * time.Minute, true, 0},
			{"AtMaxGap", 2 * time.Minute, time.Minute, 2 * time.Minute, false, 0},
			{"BeyondMaxGap", 3 * time.Hour, time.Minute, 2 * time.Minute, false, 0},
			{"AtMaxGapAboveByANanosecond", 2 * time.Minute, time.Minute, 2*time.Minute + time.Nanosecond, true, 0},
			{"AboveMaxGapByAMicrosecond", 2*time.Minute + time.Microsecond, time.Minute, 2*time.Minute + time.Nanosecond, false, 0},
			{"DueAtIntervalWithinGap", time.Minute, time.Minute, 2 * time.Minute, true, 0},
			{"NotDueWithinGap", time.Minute - time.Microsecond, time.Minute, 2 * time.Minute, false, 0},
			{"IntervalAtMaxGapNeverTouches", time.Minute, time.Minute, time.Minute, false, 0},
			{"HalfIdleDueWithinGap", 5 * time.Minute, time.Hour, 6 * time.Minute, true, 10 * time.Minute},
			{"NoBoundAtZero", 20 * time.Hour, time.Minute, 0, true, 0},
			{"NoBoundBelowZero", 20 * time.Hour, time.Minute, -time.Minute, true, 0},
		} {
			s := mk(fmt.Sprintf("gap-%d", i), "t", fmt.Sprintf("u%d", i), base)
			if tc.idle != 0 {
				s.IdleTimeout = tc.idle
			}
			c.create(s, unlimited)
			now := base.Add(tc.gap)
			got, err := lt.LookupTouch(t.Context(), s.Hash, now, tc.interval, tc.max)
			if err != nil {
				t.Fatalf("%s: LookupTouch: %v", tc.name, err)
			}
			if d := diff(got, s); d != "" {
				t.Errorf("%s: LookupTouch returned %s; want the session as stored before the touch", tc.name, d)
			}
			if tc.touched {
				s.LastSeen = now
			}
			c.wantStored(s)
		}
	}},
}

// untouchTests run only for a store that implements the optional
// session.LookupToucher: its Untouch.
var untouchTests = []test{
	{"TakesBackTheTouch", func(t *testing.T, c *checker) {
		// LookupTouch touched it; Untouch sets LastSeen back to prev and
		// changes nothing else, of it or of another session.
		s, touched := c.touchedSession()
		b := mk("b", "t", "u", base.Add(time.Second))
		c.create(b, unlimited)
		c.untouch(s.Hash, touched, s.LastSeen)
		c.wantStored(s)
		c.wantList("t", "u", []session.Session{s, b})
	}},
	{"ToAnyPrev", func(t *testing.T, c *checker) {
		// prev is written as given, to the microsecond: it need not be
		// the LastSeen the touch replaced.
		s, touched := c.touchedSession()
		s.LastSeen = base.Add(-time.Minute + 7*time.Microsecond)
		c.untouch(s.Hash, touched, s.LastSeen)
		c.wantStored(s)
	}},
	{"ComparesTheInstant", func(t *testing.T, c *checker) {
		// touched is compared as an instant: in another zone it is
		// the same touch.
		s, touched := c.touchedSession()
		c.untouch(s.Hash, touched.In(time.FixedZone("UTC-07:00", -7*3600)), s.LastSeen.In(time.FixedZone("UTC+01:00", 3600)))
		c.wantStored(s)
	}},
	{"SparesALaterTouch", func(t *testing.T, c *checker) {
		// A later touch has moved LastSeen on: nothing changes.
		s, touched := c.touchedSession()
		s.LastSeen = touched.Add(time.Microsecond)
		c.touch(s.Hash, s.LastSeen)
		c.untouch(s.Hash, touched, base)
		c.wantStored(s)
	}},
	{"OnlyThatTouch", func(t *testing.T, c *checker) {
		// LastSeen is not the touch (a microsecond either side, or the
		// touch was never made): nothing changes.
		c.lookupToucher()
		s := mk("a", "t", "u", base)
		c.create(s, unlimited)
		seen := base.Add(time.Minute)
		c.touch(s.Hash, seen)
		s.LastSeen = seen
		for _, touched := range []time.Time{seen.Add(-time.Microsecond), seen.Add(time.Microsecond), base} {
			c.untouch(s.Hash, touched, base.Add(-time.Hour))
			c.wantStored(s)
		}
	}},
	{"NoSession", func(t *testing.T, c *checker) {
		// No session h: nil, and nothing is created.
		c.lookupToucher()
		c.create(mk("a", "t", "u", base), unlimited)
		h := hashOf("absent")
		c.untouch(h, base, base.Add(-time.Minute))
		c.wantUnknown(h)
		deleted := mk("deleted", "t", "v", base)
		c.create(deleted, unlimited)
		c.delete(deleted.Hash)
		c.untouch(deleted.Hash, base, base.Add(-time.Minute))
		c.wantUnknown(deleted.Hash)
		c.wantList("t", "v", nil)
	}},
	{"Tombstone", func(t *testing.T, c *checker) {
		// A tombstone is no session: nil, and it is left as it is.
		c.lookupToucher()
		a := mk("a", "t", "u", base)
		c.create(a, unlimited)
		b := mk("b", "t", "u", base.Add(time.Minute))
		c.create(b, evict(1))
		c.untouch(a.Hash, a.LastSeen, base.Add(-time.Hour))
		c.untouch(a.Hash, a.EndsAt(), base.Add(-time.Hour))
		c.wantEvicted(a.Hash, a.EndsAt())
		c.wantList("t", "u", []session.Session{b})
	}},
}

// evictedTests check the tombstones that EvictOldest leaves.
var evictedTests = []test{
	{"ReportedWithItsEnd", func(t *testing.T, c *checker) {
		// a ends by its idle timeout (touched, so a day after base+1h),
		// b by its absolute expiry, which comes first.
		a := mk("a", "t", "u", base)
		b := mk("b", "t", "v", base)
		b.ExpiresAt = base.Add(2 * time.Hour)
		c.create(a, unlimited)
		c.create(b, unlimited)
		c.touch(a.Hash, base.Add(time.Hour))
		a.LastSeen = base.Add(time.Hour)
		na := mk("na", "t", "u", base.Add(90*time.Minute))
		nb := mk("nb", "t", "v", base.Add(90*time.Minute))
		c.wantSessions("evicted", c.create(na, evict(1)), []session.Session{a})
		c.wantSessions("evicted", c.create(nb, evict(1)), []session.Session{b})
		c.wantEvicted(a.Hash, base.Add(time.Hour+day))
		c.wantEvicted(b.Hash, base.Add(2*time.Hour))
		c.wantStored(na)
		c.wantStored(nb)
	}},
	{"EndRoundedUpToTheMicrosecond", func(t *testing.T, c *checker) {
		a := mk("a", "t", "u", base)
		a.IdleTimeout = time.Hour + 1 // a nanosecond over the hour
		c.create(a, unlimited)
		c.create(mk("n", "t", "u", base.Add(time.Minute)), evict(1))
		c.wantEvicted(a.Hash, a.EndsAt())
	}},
	{"NotASession", func(t *testing.T, c *checker) {
		a := mk("a", "t", "u", base)
		b := mk("b", "t", "u", base.Add(time.Minute))
		c.create(a, unlimited)
		c.create(b, evict(1))
		if err := c.st.Touch(t.Context(), a.Hash, base.Add(time.Hour)); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("Touch of a tombstone: %v, want ErrNotFound", err)
		}
		if s, err := c.st.Delete(t.Context(), a.Hash); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("Delete of a tombstone = %s, %v; want ErrNotFound", label(s), err)
		}
		n := a
		n.Hash = hashOf("rotated")
		if err := c.st.Rotate(t.Context(), a.Hash, n); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("Rotate of a tombstone: %v, want ErrNotFound", err)
		}
		c.wantUnknown(n.Hash)
		// Its hash cannot come back as a session.
		again := mk("a", "t", "u", base.Add(2*time.Minute))
		c.createErr(again, unlimited, session.ErrDuplicate)
		c.wantList("t", "u", []session.Session{b})
		c.wantEvicted(a.Hash, a.EndsAt())
		// DeleteByUser does not return it (it removes it: see
		// DeleteByUserForgetsThem).
		c.wantRemoved(c.deleteByUser("t", "u", session.Hash{}), []session.Session{b})
		c.wantList("t", "u", nil)
	}},
	{"DeleteByUserForgetsThem", func(t *testing.T, c *checker) {
		// Ending all of a user's sessions (a password change, a
		// deactivation) also ends what "signed in elsewhere" said about
		// the user's evicted ones: they are then unknown, like the
		// sessions just removed. Excepting a session does not spare
		// them, and other users' tombstones stay.
		a := mk("a", "t", "u", base)
		b := mk("b", "t", "u", base.Add(time.Minute))
		cur := mk("cur", "t", "u", base.Add(2*time.Minute))
		c.create(a, unlimited)
		c.create(b, evict(1))
		c.create(cur, evict(1))
		other := mk("other", "t", "v", base)
		c.create(other, unlimited)
		c.create(mk("other-new", "t", "v", base.Add(time.Minute)), evict(1))
		sameUserElsewhere := mk("elsewhere", "t2", "u", base)
		c.create(sameUserElsewhere, unlimited)
		c.create(mk("elsewhere-new", "t2", "u", base.Add(time.Minute)), evict(1))
		c.wantEvicted(a.Hash, a.EndsAt())
		c.wantEvicted(b.Hash, b.EndsAt())

		c.wantRemoved(c.deleteByUser("t", "u", cur.Hash), nil)
		c.wantUnknown(a.Hash)
		c.wantUnknown(b.Hash)
		c.wantStored(cur)
		c.wantEvicted(other.Hash, other.EndsAt())
		c.wantEvicted(sameUserElsewhere.Hash, sameUserElsewhere.EndsAt())
		// The hashes are free like any unknown one.
		c.create(mk("a", "t", "w", base.Add(3*time.Minute)), unlimited)

		// Without an exception too.
		d := mk("d", "t", "u", base.Add(4*time.Minute))
		c.create(d, evict(1))
		c.wantEvicted(cur.Hash, cur.EndsAt())
		c.wantRemoved(c.deleteByUser("t", "u", session.Hash{}), []session.Session{d})
		c.wantUnknown(cur.Hash)
		c.wantUnknown(d.Hash)
		c.wantEvicted(other.Hash, other.EndsAt())
	}},
	{"NotCounted", func(t *testing.T, c *checker) {
		a := mk("a", "t", "u", base)
		b := mk("b", "t", "u", base.Add(time.Minute))
		c.create(a, unlimited)
		c.create(b, evict(1))
		// One live session (b) and a tombstone (a): a limit of 2 admits
		// one more, and evicting then picks b, never the tombstone.
		d := mk("d", "t", "u", base.Add(2*time.Minute))
		c.create(d, refuse(2))
		c.createErr(mk("refused", "t", "u", base.Add(3*time.Minute)), refuse(2), session.ErrLimit)
		e := mk("e", "t", "u", base.Add(4*time.Minute))
		c.wantSessions("evicted", c.create(e, evict(2)), []session.Session{b})
		c.wantList("t", "u", []session.Session{d, e})
		c.wantEvicted(a.Hash, a.EndsAt())
		c.wantEvicted(b.Hash, b.EndsAt())
	}},
	{"Expires", func(t *testing.T, c *checker) {
		a := mk("a", "t", "u", base)
		c.create(a, unlimited)
		c.create(mk("b", "t", "u", base.Add(time.Minute)), evict(1))
		// A Create of the user a microsecond before a's end keeps the
		// tombstone; one at its end removes it, as it would a.
		c.create(mk("c", "t", "u", a.EndsAt().Add(-time.Microsecond)), unlimited)
		c.wantEvicted(a.Hash, a.EndsAt())
		c.create(mk("d", "t", "u", a.EndsAt()), unlimited)
		c.wantUnknown(a.Hash)
		// Forgotten, the hash is free like any unknown one.
		c.create(mk("a", "t", "u", a.EndsAt().Add(time.Minute)), unlimited)
	}},
	{"OnlyEvictionAndRotationLeaveOne", func(t *testing.T, c *checker) {
		now := base.Add(2 * day)
		deleted := mk("deleted", "t", "u", now)
		rotated := mk("rotated", "t", "u", now)
		byUser := mk("by-user", "t", "v", now)
		dead := mk("dead", "t", "w", base) // not live at now
		refused := mk("refused", "t", "x", now.Add(time.Minute))
		for _, s := range []session.Session{deleted, rotated, byUser, dead} {
			c.create(s, unlimited)
		}
		c.create(mk("x", "t", "x", now), unlimited)
		c.delete(deleted.Hash)
		n := rotated
		n.Hash = hashOf("rotated-new")
		c.rotate(rotated.Hash, n)
		c.deleteByUser("t", "v", session.Hash{})
		c.create(mk("w-new", "t", "w", now), evict(1))
		c.createErr(refused, refuse(1), session.ErrLimit)
		for _, s := range []session.Session{deleted, byUser, dead, refused} {
			c.wantUnknown(s.Hash)
		}
		c.wantRotated(rotated.Hash, n)
	}},
	{"LookupTouchReportsEvicted", func(t *testing.T, c *checker) {
		lt := c.lookupToucher()
		a := mk("a", "t", "u", base)
		c.create(a, unlimited)
		c.create(mk("b", "t", "u", base.Add(time.Minute)), evict(1))
		for _, now := range []time.Time{base.Add(time.Hour), a.EndsAt().Add(time.Hour)} {
			s, err := lt.LookupTouch(t.Context(), a.Hash, now, time.Minute, 0)
			c.checkEvicted("LookupTouch", a.Hash, s, err, a.EndsAt())
		}
		// Nothing was revived.
		c.wantEvicted(a.Hash, a.EndsAt())
		c.wantList("t", "u", []session.Session{mk("b", "t", "u", base.Add(time.Minute))})
	}},
}

// lookupToucher returns the store as a session.LookupToucher, or skips
// the test for a store without that optional capability.
func (c *checker) lookupToucher() session.LookupToucher {
	c.t.Helper()
	return optional[session.LookupToucher](c, "LookupToucher")
}

// lineageRevoker returns the store as a session.LineageRevoker, or skips
// the test for a store without that optional capability.
func (c *checker) lineageRevoker() session.LineageRevoker {
	c.t.Helper()
	return optional[session.LineageRevoker](c, "LineageRevoker")
}

// optional returns the store as T, an optional capability named name, or
// skips the test for a store without it.
func optional[T any](c *checker, name string) T {
	c.t.Helper()
	v, ok := c.st.(T)
	if !ok {
		c.t.Skip("the store does not implement the optional session." + name)
	}
	return v
}

// deleteLineage calls DeleteLineage(h, maxHops) and checks that it
// deleted want, reached through a rotation or not.
func (c *checker) deleteLineage(h session.Hash, maxHops int, want session.Session, rotated bool) {
	c.t.Helper()
	got, rot, err := c.lineageRevoker().DeleteLineage(c.t.Context(), h, maxHops)
	if err != nil {
		c.t.Fatalf("DeleteLineage(%s, %d): %v, want %s", h, maxHops, err, label(want))
	}
	if d := diff(got, want); d != "" || rot != rotated {
		c.t.Errorf("DeleteLineage(%s, %d) = %s, rotated %v; want %s, rotated %v", h, maxHops, d, rot, label(want), rotated)
	}
	c.wantGone(want.Hash)
}

// deleteLineageNone checks that DeleteLineage(h, maxHops) finds nothing
// to end: ErrNotFound, and no session.
func (c *checker) deleteLineageNone(h session.Hash, maxHops int) {
	c.t.Helper()
	got, rot, err := c.lineageRevoker().DeleteLineage(c.t.Context(), h, maxHops)
	if !errors.Is(err, session.ErrNotFound) || got != (session.Session{}) || rot {
		c.t.Errorf("DeleteLineage(%s, %d) = %s, rotated %v, %v; want ErrNotFound", h, maxHops, label(got), rot, err)
	}
}

// checker wraps a store with assertions.
type checker struct {
	t  *testing.T
	st Store
}

func (c *checker) create(s session.Session, lim session.Limit) []session.Session {
	c.t.Helper()
	ev, err := c.st.Create(c.t.Context(), s, lim)
	if err != nil {
		c.t.Fatalf("Create(%s, %+v): %v", label(s), lim, err)
	}
	return ev
}

func (c *checker) createErr(s session.Session, lim session.Limit, want error) {
	c.t.Helper()
	ev, err := c.st.Create(c.t.Context(), s, lim)
	if !errors.Is(err, want) {
		c.t.Errorf("Create(%s, %+v) = %v, want %v", label(s), lim, err, want)
	}
	if len(ev) != 0 {
		c.t.Errorf("Create(%s, %+v) failed but evicted %s", label(s), lim, ids(ev))
	}
}

func (c *checker) touch(h session.Hash, seen time.Time) {
	c.t.Helper()
	if err := c.st.Touch(c.t.Context(), h, seen); err != nil {
		c.t.Fatalf("Touch: %v", err)
	}
}

// touchedSession creates session a (of user t/u, at base, with a day's
// idle timeout) and touches it 45 s later with LookupTouch (interval 30 s,
// maxGap 1 min), as the Manager's per-request check does. It returns the
// session as created and the touch. It skips the test for a store without
// LookupToucher.
func (c *checker) touchedSession() (session.Session, time.Time) {
	c.t.Helper()
	lt := c.lookupToucher()
	s := mk("a", "t", "u", base)
	c.create(s, unlimited)
	now := base.Add(45 * time.Second)
	if _, err := lt.LookupTouch(c.t.Context(), s.Hash, now, 30*time.Second, time.Minute); err != nil {
		c.t.Fatalf("LookupTouch: %v", err)
	}
	touched := s
	touched.LastSeen = now
	c.wantStored(touched)
	return s, now
}

// untouch calls Untouch, which must return nil.
func (c *checker) untouch(h session.Hash, touched, prev time.Time) {
	c.t.Helper()
	if err := c.lookupToucher().Untouch(c.t.Context(), h, touched, prev); err != nil {
		c.t.Errorf("Untouch: %v, want nil", err)
	}
}

func (c *checker) delete(h session.Hash) session.Session {
	c.t.Helper()
	s, err := c.st.Delete(c.t.Context(), h)
	if err != nil {
		c.t.Fatalf("Delete: %v", err)
	}
	return s
}

func (c *checker) rotate(old session.Hash, s session.Session) {
	c.t.Helper()
	if err := c.st.Rotate(c.t.Context(), old, s); err != nil {
		c.t.Fatalf("Rotate: %v", err)
	}
}

// rotateTo rotates s to a copy of it with the hash of label, and returns
// that copy.
func (c *checker) rotateTo(s session.Session, label string) session.Session {
	c.t.Helper()
	n := s
	n.Hash = hashOf(label)
	c.rotate(s.Hash, n)
	return n
}

func (c *checker) deleteByUser(tenant, userID string, except session.Hash) []session.Session {
	c.t.Helper()
	ss, err := c.st.DeleteByUser(c.t.Context(), tenant, userID, except)
	if err != nil {
		c.t.Fatalf("DeleteByUser(%q, %q): %v", tenant, userID, err)
	}
	return ss
}

// wantStored checks that Lookup returns s exactly.
func (c *checker) wantStored(s session.Session) {
	c.t.Helper()
	got, err := c.st.Lookup(c.t.Context(), s.Hash)
	if err != nil {
		c.t.Errorf("Lookup(%s): %v", label(s), err)
		return
	}
	if d := diff(got, s); d != "" {
		c.t.Errorf("Lookup(%s) returned %s", label(s), d)
	}
}

// wantGone checks that Lookup returns ErrNotFound.
func (c *checker) wantGone(h session.Hash) {
	c.t.Helper()
	if s, err := c.st.Lookup(c.t.Context(), h); !errors.Is(err, session.ErrNotFound) {
		c.t.Errorf("Lookup(%s) = %s, %v; want ErrNotFound", h, label(s), err)
	}
}

// wantUnknown checks that Lookup returns ErrNotFound and not ErrEvicted.
func (c *checker) wantUnknown(h session.Hash) {
	c.t.Helper()
	s, err := c.st.Lookup(c.t.Context(), h)
	if !errors.Is(err, session.ErrNotFound) || errors.Is(err, session.ErrEvicted) {
		c.t.Errorf("Lookup(%s) = %s, %v; want plain ErrNotFound", h, label(s), err)
	}
}

// wantEvicted checks that Lookup reports h as evicted, ending at end (or
// up to a microsecond later).
func (c *checker) wantEvicted(h session.Hash, end time.Time) {
	c.t.Helper()
	s, err := c.st.Lookup(c.t.Context(), h)
	c.checkEvicted("Lookup", h, s, err, end)
}

func (c *checker) checkEvicted(what string, h session.Hash, s session.Session, err error, end time.Time) {
	c.t.Helper()
	var ev *session.EvictedError
	switch {
	case !errors.As(err, &ev):
		c.t.Errorf("%s(%s) = %s, %v; want an *EvictedError", what, h, label(s), err)
		return
	case !errors.Is(err, session.ErrEvicted) || !errors.Is(err, session.ErrNotFound):
		c.t.Errorf("%s(%s): %v is not both ErrEvicted and ErrNotFound", what, h, err)
	case s != (session.Session{}):
		c.t.Errorf("%s(%s) reported an eviction with session %s", what, h, label(s))
	}
	if ev.EndsAt.Before(end) || !ev.EndsAt.Before(end.Add(time.Microsecond)) {
		c.t.Errorf("%s(%s): evicted session ends at %v, want %v", what, h, ev.EndsAt, end)
	}
}

// wantRotated checks that Lookup reports h as rotated to succ: its hash,
// its user, and its ExpiresAt as the end, to the microsecond (rounded
// either way, as a store keeps succ's ExpiresAt).
func (c *checker) wantRotated(h session.Hash, succ session.Session) {
	c.t.Helper()
	s, err := c.st.Lookup(c.t.Context(), h)
	c.checkRotated("Lookup", h, s, err, succ)
}

func (c *checker) checkRotated(what string, h session.Hash, s session.Session, err error, succ session.Session) {
	c.t.Helper()
	var re *session.RotatedError
	switch {
	case !errors.As(err, &re):
		c.t.Errorf("%s(%s) = %s, %v; want a *RotatedError", what, h, label(s), err)
		return
	case !errors.Is(err, session.ErrNotFound) || errors.Is(err, session.ErrEvicted):
		c.t.Errorf("%s(%s): %v is not ErrNotFound, or is ErrEvicted", what, h, err)
	case s != (session.Session{}):
		c.t.Errorf("%s(%s) reported a rotation with session %s", what, h, label(s))
	}
	if re.Successor != succ.Hash || re.Tenant != succ.Tenant || re.UserID != succ.UserID {
		c.t.Errorf("%s(%s) = successor %s of %q/%q, want %s of %q/%q", what, h, re.Successor, re.Tenant, re.UserID,
			succ.Hash, succ.Tenant, succ.UserID)
	}
	if end := succ.ExpiresAt; re.EndsAt.Before(end.Truncate(time.Microsecond)) || !re.EndsAt.Before(end.Add(time.Microsecond)) {
		c.t.Errorf("%s(%s): rotated lineage ends at %v, want %v", what, h, re.EndsAt, end)
	}
}

// wantList checks ListByUser, order included.
func (c *checker) wantList(tenant, userID string, want []session.Session) {
	c.t.Helper()
	got, err := c.st.ListByUser(c.t.Context(), tenant, userID)
	if err != nil {
		c.t.Errorf("ListByUser(%q, %q): %v", tenant, userID, err)
		return
	}
	c.wantSessions(fmt.Sprintf("ListByUser(%q, %q)", tenant, userID), got, want)
}

// wantRemoved checks the sessions DeleteByUser returned, in any order.
func (c *checker) wantRemoved(got, want []session.Session) {
	c.t.Helper()
	byHash := func(a, b session.Session) int { return bytes.Compare(a.Hash[:], b.Hash[:]) }
	got, want = slices.Clone(got), slices.Clone(want)
	slices.SortFunc(got, byHash)
	slices.SortFunc(want, byHash)
	c.wantSessions("DeleteByUser", got, want)
}

// wantSessions checks got against want, order and every field included.
func (c *checker) wantSessions(what string, got, want []session.Session) {
	c.t.Helper()
	if len(got) != len(want) {
		c.t.Errorf("%s = %s, want %s", what, ids(got), ids(want))
		return
	}
	for i := range got {
		if got[i].Hash != want[i].Hash {
			c.t.Errorf("%s = %s, want %s", what, ids(got), ids(want))
			return
		}
		if d := diff(got[i], want[i]); d != "" {
			c.t.Errorf("%s[%d]: %s", what, i, d)
		}
	}
}

// diff describes how got differs from want, or returns "". Times are
// compared with Equal.
func diff(got, want session.Session) string {
	var d []string
	add := func(field string, g, w any) { d = append(d, fmt.Sprintf("%s %v, want %v", field, g, w)) }
	if got.Hash != want.Hash {
		add("Hash", got.Hash, want.Hash)
	}
	if got.Tenant != want.Tenant {
		add("Tenant", got.Tenant, want.Tenant)
	}
	if got.UserID != want.UserID {
		add("UserID", got.UserID, want.UserID)
	}
	for _, f := range []struct {
		name string
		g, w time.Time
	}{
		{"CreatedAt", got.CreatedAt, want.CreatedAt},
		{"LastSeen", got.LastSeen, want.LastSeen},
		{"ExpiresAt", got.ExpiresAt, want.ExpiresAt},
	} {
		if !f.g.Equal(f.w) {
			add(f.name, f.g, f.w)
		}
	}
	if got.IdleTimeout != want.IdleTimeout {
		add("IdleTimeout", got.IdleTimeout, want.IdleTimeout)
	}
	if got.IP != want.IP {
		add("IP", got.IP, want.IP)
	}
	if got.UserAgent != want.UserAgent {
		add("UserAgent", got.UserAgent, want.UserAgent)
	}
	if got.Flags != want.Flags {
		add("Flags", got.Flags, want.Flags)
	}
	if len(d) == 0 {
		return ""
	}
	return fmt.Sprintf("session %s with %s", label(got), strings.Join(d, "; "))
}

// label names a session made by mk by its user agent's label.
func label(s session.Session) string {
	if l, ok := strings.CutPrefix(s.UserAgent, "sessiontest "); ok {
		return l
	}
	if s.Hash.IsZero() {
		return "(none)"
	}
	return s.ID()[:8]
}

func ids(ss []session.Session) string {
	l := make([]string, len(ss))
	for i, s := range ss {
		l[i] = label(s)
	}
	return "[" + strings.Join(l, " ") + "]"
}

// RunConcurrent hammers the stores that newStore returns from many
// goroutines and checks that each method is one atomic step: the session
// limit holds exactly, every evicted session is reported once, RefuseNew
// admits exactly up to the limit, Touch never moves LastSeen backwards,
// a session is rotated or deleted exactly once, a session rotated while
// DeleteByUser ends every session of its user does not survive, and a
// rotation racing a sign-in at the limit leaves the user at the limit.
func RunConcurrent(t *testing.T, newStore func(t *testing.T) Store) {
	t.Helper()
	const n = 100
	for _, limit := range []int{1, 3} {
		t.Run(fmt.Sprintf("CreateEvictOldestMax%d", limit), func(t *testing.T) {
			st := newStore(t)
			created := make([]session.Session, n)
			evicted := make([][]session.Session, n)
			parallel(n, func(i int) {
				s := mk(fmt.Sprint("c", i), "t", "u", base.Add(time.Duration(i%7)*time.Millisecond))
				created[i] = s
				ev, err := st.Create(t.Context(), s, evict(limit))
				if err != nil {
					t.Errorf("Create %d: %v", i, err)
				}
				evicted[i] = ev
			})
			survivors, err := st.ListByUser(t.Context(), "t", "u")
			if err != nil {
				t.Fatalf("ListByUser: %v", err)
			}
			if len(survivors) != limit {
				t.Errorf("%d sessions remain, want %d", len(survivors), limit)
			}
			seen := make(map[session.Hash]string)
			for _, s := range survivors {
				seen[s.Hash] = "survivor"
			}
			for i, ev := range evicted {
				for _, e := range ev {
					if e.Hash == created[i].Hash {
						t.Errorf("Create %d evicted its own session", i)
					}
					if prev, dup := seen[e.Hash]; dup {
						t.Errorf("session %s evicted by Create %d is also a %s", label(e), i, prev)
					}
					seen[e.Hash] = fmt.Sprint("session evicted by Create ", i)
				}
			}
			for _, s := range created {
				if _, ok := seen[s.Hash]; !ok {
					t.Errorf("session %s is neither stored nor reported evicted", label(s))
				}
			}
			if len(seen) != n {
				t.Errorf("%d sessions accounted for, want %d", len(seen), n)
			}
		})
	}
	t.Run("CreateEvictOldestLeavesTombstones", func(t *testing.T) {
		// The same user signs in from n clients at once: exactly one
		// session is live, and every other one is reported evicted.
		st := newStore(t)
		created := make([]session.Session, n)
		parallel(n, func(i int) {
			created[i] = mk(fmt.Sprint("e", i), "t", "u", base.Add(time.Duration(i%7)*time.Millisecond))
			if _, err := st.Create(t.Context(), created[i], evict(1)); err != nil {
				t.Errorf("Create %d: %v", i, err)
			}
		})
		list, err := st.ListByUser(t.Context(), "t", "u")
		if err != nil || len(list) != 1 {
			t.Fatalf("ListByUser = %s, %v; want exactly one session", ids(list), err)
		}
		for _, s := range created {
			_, err := st.Lookup(t.Context(), s.Hash)
			switch {
			case s.Hash == list[0].Hash:
				if err != nil {
					t.Errorf("Lookup of the live session %s: %v", label(s), err)
				}
			case !errors.Is(err, session.ErrEvicted):
				t.Errorf("Lookup(%s) = %v, want ErrEvicted", label(s), err)
			}
		}
	})
	t.Run("CreateRefuseNew", func(t *testing.T) {
		st := newStore(t)
		var mu sync.Mutex
		var won []session.Session
		parallel(n, func(i int) {
			s := mk(fmt.Sprint("r", i), "t", "u", base.Add(time.Duration(i)*time.Microsecond))
			_, err := st.Create(t.Context(), s, refuse(1))
			switch {
			case err == nil:
				mu.Lock()
				won = append(won, s)
				mu.Unlock()
			case !errors.Is(err, session.ErrLimit):
				t.Errorf("Create %d: %v, want nil or ErrLimit", i, err)
			}
		})
		if len(won) != 1 {
			t.Fatalf("%d Creates succeeded, want exactly 1", len(won))
		}
		list, err := st.ListByUser(t.Context(), "t", "u")
		if err != nil || len(list) != 1 || list[0].Hash != won[0].Hash {
			t.Errorf("ListByUser = %s, %v; want the one admitted session %s", ids(list), err, label(won[0]))
		}
	})
	t.Run("CreateManyUsers", func(t *testing.T) {
		st := newStore(t)
		const users, each = 10, 10
		parallel(users*each, func(i int) {
			s := mk(fmt.Sprint("m", i), "t", fmt.Sprint("user", i%users), base.Add(time.Duration(i)*time.Microsecond))
			if _, err := st.Create(t.Context(), s, evict(2)); err != nil {
				t.Errorf("Create %d: %v", i, err)
			}
		})
		for u := range users {
			list, err := st.ListByUser(t.Context(), "t", fmt.Sprint("user", u))
			if err != nil || len(list) != 2 {
				t.Errorf("user%d: ListByUser = %d sessions, %v; want 2", u, len(list), err)
			}
		}
	})
	t.Run("TouchNeverBackwards", func(t *testing.T) {
		st := newStore(t)
		s := mk("s", "t", "u", base)
		if _, err := st.Create(t.Context(), s, unlimited); err != nil {
			t.Fatalf("Create: %v", err)
		}
		const writers, touches, readers = 20, 50, 4
		// Each writer touches a scrambled sequence of times a microsecond
		// apart; each reader checks that the LastSeen it sees never
		// decreases.
		at := func(w, i int) time.Time {
			return base.Add(time.Duration((w*7919+i*104729)%(writers*touches)+1) * time.Microsecond)
		}
		latest := base
		for w := range writers {
			for i := range touches {
				if a := at(w, i); a.After(latest) {
					latest = a
				}
			}
		}
		parallel(writers+readers, func(g int) {
			if g < writers {
				for i := range touches {
					if err := st.Touch(t.Context(), s.Hash, at(g, i)); err != nil {
						t.Errorf("Touch: %v", err)
						return
					}
				}
				return
			}
			last := base
			for range 2 * touches {
				got, err := st.Lookup(t.Context(), s.Hash)
				if err != nil {
					t.Errorf("Lookup: %v", err)
					return
				}
				if got.LastSeen.Before(last) {
					t.Errorf("LastSeen went back from %v to %v", last, got.LastSeen)
					return
				}
				last = got.LastSeen
			}
		})
		got, err := st.Lookup(t.Context(), s.Hash)
		if err != nil {
			t.Fatalf("Lookup: %v", err)
		}
		if !got.LastSeen.Equal(latest) {
			t.Errorf("LastSeen = %v after all Touches, want the latest, %v", got.LastSeen, latest)
		}
	})
	t.Run("UntouchNeverUndoesALaterTouch", func(t *testing.T) {
		// A refused request's Untouch races touches a microsecond or more
		// later than its own (concurrent requests let through), and
		// other Untouches of the same touch: whatever the order, the
		// latest touch stays.
		st := newStore(t)
		lt, ok := st.(session.LookupToucher)
		if !ok {
			t.Skip("the store does not implement the optional session.LookupToucher")
		}
		const rounds, touchers = 10, 8
		for r := range rounds {
			s := mk(fmt.Sprint("u", r), "t", fmt.Sprint("u", r), base)
			if _, err := st.Create(t.Context(), s, unlimited); err != nil {
				t.Fatalf("Create: %v", err)
			}
			now := base.Add(45 * time.Second)
			if _, err := lt.LookupTouch(t.Context(), s.Hash, now, 30*time.Second, time.Minute); err != nil {
				t.Fatalf("LookupTouch: %v", err)
			}
			parallel(2*touchers, func(g int) {
				if g%2 == 0 {
					if err := lt.Untouch(t.Context(), s.Hash, now, s.LastSeen); err != nil {
						t.Errorf("Untouch: %v", err)
					}
					return
				}
				if err := st.Touch(t.Context(), s.Hash, now.Add(time.Duration(g)*time.Microsecond)); err != nil {
					t.Errorf("Touch: %v", err)
				}
			})
			got, err := st.Lookup(t.Context(), s.Hash)
			if err != nil {
				t.Fatalf("Lookup: %v", err)
			}
			if want := now.Add((2*touchers - 1) * time.Microsecond); !got.LastSeen.Equal(want) {
				t.Errorf("round %d: LastSeen %v, want the latest touch, %v", r, got.LastSeen, want)
			}
		}
	})
	t.Run("RotateOnce", func(t *testing.T) {
		st := newStore(t)
		old := mk("old", "t", "u", base)
		if _, err := st.Create(t.Context(), old, unlimited); err != nil {
			t.Fatalf("Create: %v", err)
		}
		var mu sync.Mutex
		var won []session.Session
		parallel(n, func(i int) {
			s := old
			s.Hash = hashOf(fmt.Sprint("new", i))
			err := st.Rotate(t.Context(), old.Hash, s)
			switch {
			case err == nil:
				mu.Lock()
				won = append(won, s)
				mu.Unlock()
			case !errors.Is(err, session.ErrNotFound):
				t.Errorf("Rotate %d: %v, want nil or ErrNotFound", i, err)
			}
		})
		if len(won) != 1 {
			t.Fatalf("%d Rotates succeeded, want exactly 1", len(won))
		}
		list, err := st.ListByUser(t.Context(), "t", "u")
		if err != nil || len(list) != 1 || list[0].Hash != won[0].Hash {
			t.Errorf("ListByUser = %d sessions, %v; want only the rotated one", len(list), err)
		}
		var re *session.RotatedError
		if _, err := st.Lookup(t.Context(), old.Hash); !errors.As(err, &re) || re.Successor != won[0].Hash {
			t.Errorf("Lookup of the rotated session: %v, want a *RotatedError naming the one that won", err)
		}
	})
	t.Run("RevokeLineageRacesRotate", func(t *testing.T) {
		// Clients rotate a session over and over (Manager.Rotate) while
		// others sign out with tokens of its lineage
		// (Manager.RevokeLineage): a sign-out ends the session, however
		// fast it is rotated meanwhile (whoever holds a copy of the
		// token must not keep it alive by rotating it), and once a
		// sign-out has returned a session, no session of the user is
		// left, and rotations find nothing.
		st := newStore(t)
		m, err := session.New(session.Config{Store: st, Index: st, Now: func() time.Time { return base }, Unlimited: true})
		if err != nil {
			t.Fatal(err)
		}
		for r := range 5 {
			user := fmt.Sprint("lineage", r)
			first, _, _, err := m.Create(t.Context(), session.Options{Tenant: "t", UserID: user})
			if err != nil {
				t.Fatalf("round %d: Create: %v", r, err)
			}
			var (
				mu     sync.Mutex
				tokens = []string{first}
				done   = make(chan struct{})
				rot    sync.WaitGroup
				won    = make([]bool, 4)
			)
			for range 4 {
				rot.Go(func() {
					for {
						select {
						case <-done:
							return
						default:
						}
						mu.Lock()
						cur := tokens[len(tokens)-1]
						mu.Unlock()
						nt, _, err := m.Rotate(t.Context(), cur, 0)
						switch {
						case err == nil:
							mu.Lock()
							tokens = append(tokens, nt)
							mu.Unlock()
						case !errors.Is(err, session.ErrNotFound):
							t.Errorf("round %d: Rotate: %v", r, err)
							return
						}
					}
				})
			}
			// Sign-outs come with the latest token or one up to three
			// rotations older (a tab that has not seen the latest), so
			// within MaxLineageHops: a token more rotations old signs
			// out nothing, as documented (the first tokens did, in every
			// try of a round, once the rotators were ahead).
			parallel(4, func(i int) {
				for range 20 {
					mu.Lock()
					tok := tokens[max(0, len(tokens)-1-i)]
					mu.Unlock()
					_, _, err := m.RevokeLineage(t.Context(), tok)
					switch {
					case err == nil:
						won[i] = true
						if live, err := st.ListByUser(t.Context(), "t", user); err != nil || len(live) != 0 {
							t.Errorf("round %d: after RevokeLineage: %s, %v; want no session", r, ids(live), err)
						}
						return
					case !errors.Is(err, session.ErrNotFound):
						t.Errorf("round %d: RevokeLineage: %v", r, err)
						return
					}
				}
			})
			close(done)
			rot.Wait()
			if !slices.Contains(won, true) {
				t.Errorf("round %d: no sign-out ended the session in %d tries while it was rotated %d times",
					r, 4*20, len(tokens)-1)
			}
		}
	})
	t.Run("DeleteOnce", func(t *testing.T) {
		st := newStore(t)
		s := mk("s", "t", "u", base)
		if _, err := st.Create(t.Context(), s, unlimited); err != nil {
			t.Fatalf("Create: %v", err)
		}
		var mu sync.Mutex
		wins := 0
		parallel(n, func(i int) {
			var err error
			if i%2 == 0 {
				_, err = st.Delete(t.Context(), s.Hash)
			} else {
				var ss []session.Session
				ss, err = st.DeleteByUser(t.Context(), "t", "u", session.Hash{})
				if err == nil && len(ss) == 0 {
					err = session.ErrNotFound
				}
			}
			switch {
			case err == nil:
				mu.Lock()
				wins++
				mu.Unlock()
			case !errors.Is(err, session.ErrNotFound):
				t.Errorf("delete %d: %v", i, err)
			}
		})
		if wins != 1 {
			t.Errorf("the session was deleted %d times, want exactly once", wins)
		}
	})
	t.Run("RotateDeleteByUser", func(t *testing.T) {
		// Each round, one user's session is rotated while DeleteByUser
		// ends every session of that user. Either DeleteByUser went
		// first (it ended the old session, and Rotate found it gone) or
		// Rotate did (DeleteByUser ended the new session); either way
		// no session of the user remains, under either token.
		st := newStore(t)
		for r := range n {
			user := fmt.Sprint("u", r)
			old := mk(fmt.Sprint("old", r), "t", user, base)
			if _, err := st.Create(t.Context(), old, unlimited); err != nil {
				t.Fatalf("round %d: Create: %v", r, err)
			}
			nw := old
			nw.Hash = hashOf(fmt.Sprint("new", r))
			nw.LastSeen = base.Add(time.Second)
			nw.UserAgent = fmt.Sprint("sessiontest new", r)
			var rotErr, delErr error
			var ended []session.Session
			parallel(2, func(i int) {
				if i == 0 {
					rotErr = st.Rotate(t.Context(), old.Hash, nw)
				} else {
					ended, delErr = st.DeleteByUser(t.Context(), "t", user, session.Hash{})
				}
			})
			if delErr != nil {
				t.Fatalf("round %d: DeleteByUser: %v", r, delErr)
			}
			switch {
			case rotErr == nil:
				// Rotate first: DeleteByUser ended the new session.
				if len(ended) != 1 || ended[0].Hash != nw.Hash {
					t.Errorf("round %d: Rotate succeeded, then DeleteByUser ended %s, want only the rotated %s", r, ids(ended), label(nw))
				}
			case errors.Is(rotErr, session.ErrNotFound):
				// DeleteByUser first: it ended the old session.
				if len(ended) != 1 || ended[0].Hash != old.Hash {
					t.Errorf("round %d: Rotate found the session gone, yet DeleteByUser ended %s, want only %s", r, ids(ended), label(old))
				}
			default:
				t.Fatalf("round %d: Rotate: %v, want nil or ErrNotFound", r, rotErr)
			}
			for _, s := range []session.Session{old, nw} {
				if got, err := st.Lookup(t.Context(), s.Hash); !errors.Is(err, session.ErrNotFound) || errors.Is(err, session.ErrEvicted) {
					t.Errorf("round %d (Rotate: %v): Lookup(%s) after DeleteByUser = %s, %v; want ErrNotFound", r, rotErr, label(s), label(got), err)
				}
			}
			if list, err := st.ListByUser(t.Context(), "t", user); err != nil || len(list) != 0 {
				t.Errorf("round %d (Rotate: %v): ListByUser after DeleteByUser = %s, %v; want none", r, rotErr, ids(list), err)
			}
		}
	})
	t.Run("RotateCreateAtLimit", func(t *testing.T) {
		// Each round, a user at the limit of one session (EvictOldest)
		// signs in again while the session is rotated. Either Create went
		// first (it evicted the old session, and Rotate found it gone)
		// or Rotate did (Create evicted the rotated session); either way
		// the user is left with exactly the new sign-in.
		st := newStore(t)
		for r := range n {
			user := fmt.Sprint("u", r)
			old := mk(fmt.Sprint("old", r), "t", user, base)
			if _, err := st.Create(t.Context(), old, evict(1)); err != nil {
				t.Fatalf("round %d: Create: %v", r, err)
			}
			nw := old
			nw.Hash = hashOf(fmt.Sprint("new", r))
			nw.LastSeen = base.Add(time.Second)
			nw.UserAgent = fmt.Sprint("sessiontest new", r)
			second := mk(fmt.Sprint("second", r), "t", user, base.Add(2*time.Second))
			var rotErr, createErr error
			var evicted []session.Session
			parallel(2, func(i int) {
				if i == 0 {
					rotErr = st.Rotate(t.Context(), old.Hash, nw)
				} else {
					evicted, createErr = st.Create(t.Context(), second, evict(1))
				}
			})
			if createErr != nil {
				t.Fatalf("round %d: Create: %v", r, createErr)
			}
			switch {
			case rotErr == nil:
				if len(evicted) != 1 || evicted[0].Hash != nw.Hash {
					t.Errorf("round %d: Rotate succeeded, and Create evicted %s, want only the rotated %s", r, ids(evicted), label(nw))
				}
			case errors.Is(rotErr, session.ErrNotFound):
				if len(evicted) != 1 || evicted[0].Hash != old.Hash {
					t.Errorf("round %d: Rotate found the session gone, and Create evicted %s, want only %s", r, ids(evicted), label(old))
				}
			default:
				t.Fatalf("round %d: Rotate: %v, want nil or ErrNotFound", r, rotErr)
			}
			if list, err := st.ListByUser(t.Context(), "t", user); err != nil || len(list) != 1 || list[0].Hash != second.Hash {
				t.Errorf("round %d (Rotate: %v): ListByUser = %s, %v; want only %s (limit 1)", r, rotErr, ids(list), err, label(second))
			}
		}
	})
}

// deleteLineageTests check the optional session.LineageRevoker.
var deleteLineageTests = []test{
	{"Session", func(t *testing.T, c *checker) {
		a := mk("a", "t", "u", base)
		b := mk("b", "t", "u", base.Add(time.Minute))
		c.create(a, unlimited)
		c.create(b, unlimited)
		c.deleteLineage(a.Hash, session.MaxLineageHops, a, false)
		c.wantUnknown(a.Hash)
		c.wantStored(b)
		c.wantList("t", "u", []session.Session{b})
		c.deleteLineageNone(a.Hash, session.MaxLineageHops)
		// A session is deleted live or not, as Delete deletes it.
		old := mk("old", "t", "v", base.Add(-3*day))
		old.ExpiresAt = base.Add(-day)
		c.create(old, unlimited)
		c.deleteLineage(old.Hash, 0, old, false)
	}},
	{"FollowsRotations", func(t *testing.T, c *checker) {
		a := mk("a", "t", "u", base)
		c.create(a, unlimited)
		b := c.rotateTo(a, "b")
		d := c.rotateTo(b, "d")
		other := mk("other", "t", "u", base.Add(time.Minute))
		c.create(other, unlimited)
		c.deleteLineage(a.Hash, session.MaxLineageHops, d, true)
		c.wantStored(other)
		c.wantList("t", "u", []session.Session{other})
		// The lineage is ended: none of its hashes leads to a session.
		for _, h := range []session.Hash{a.Hash, b.Hash, d.Hash} {
			c.deleteLineageNone(h, session.MaxLineageHops)
		}
		c.wantStored(other)
	}},
	{"AtMostMaxHops", func(t *testing.T, c *checker) {
		a := mk("a", "t", "u", base)
		c.create(a, unlimited)
		last := a
		for i := range 3 {
			last = c.rotateTo(last, fmt.Sprint("r", i))
		}
		c.deleteLineageNone(a.Hash, 2)
		c.deleteLineageNone(a.Hash, 0)
		c.deleteLineageNone(a.Hash, -1)
		c.wantStored(last)
		// A session is its own lineage at any bound.
		s := mk("s", "t", "v", base)
		c.create(s, unlimited)
		c.deleteLineage(s.Hash, -1, s, false)
		c.deleteLineage(a.Hash, 3, last, true)
	}},
	{"NotEvictedOrUnknown", func(t *testing.T, c *checker) {
		a := mk("a", "t", "u", base)
		c.create(a, unlimited)
		b := mk("b", "t", "u", base.Add(time.Minute))
		c.create(b, evict(1))
		c.deleteLineageNone(a.Hash, session.MaxLineageHops)
		c.deleteLineageNone(hashOf("unknown"), session.MaxLineageHops)
		// A rotation that leads to an evicted session's tombstone.
		d := c.rotateTo(b, "d")
		e := mk("e", "t", "u", base.Add(2*time.Minute))
		c.create(e, evict(1))
		c.wantEvicted(d.Hash, d.EndsAt())
		c.deleteLineageNone(b.Hash, session.MaxLineageHops)
		c.wantStored(e)
	}},
	{"NotAnotherUsers", func(t *testing.T, c *checker) {
		// A chain that changes user or tenant ends nothing: not the
		// session of the other user it leads to.
		moveTo := func(s session.Session, label, tenant, user string) session.Session {
			n := s
			n.Hash, n.Tenant, n.UserID = hashOf(label), tenant, user
			c.rotate(s.Hash, n)
			return n
		}
		a, x := mk("a", "t", "u", base), mk("x", "t", "x", base)
		c.create(a, unlimited)
		c.create(x, unlimited)
		v := moveTo(a, "v", "t", "v")
		y := moveTo(x, "y", "t2", "x")
		c.deleteLineageNone(a.Hash, session.MaxLineageHops)
		c.deleteLineageNone(x.Hash, session.MaxLineageHops)
		c.wantStored(v)
		c.wantStored(y)
		// Nor one that leaves the user and comes back: u → w → u → u.
		p := mk("p", "t", "u", base)
		c.create(p, unlimited)
		end := c.rotateTo(moveTo(moveTo(p, "w", "t", "w"), "back", "t", "u"), "end")
		c.deleteLineageNone(p.Hash, session.MaxLineageHops)
		c.wantStored(end)
	}},
}

// rotatedTests check the tombstones that Rotate leaves.
var rotatedTests = []test{
	{"ReportedWithSuccessor", func(t *testing.T, c *checker) {
		a := mk("a", "t", "u", base)
		c.create(a, unlimited)
		b := a
		b.Hash, b.LastSeen, b.Flags = hashOf("b"), base.Add(time.Hour), 3
		c.rotate(a.Hash, b)
		c.wantRotated(a.Hash, b)
		c.wantStored(b)
		c.wantList("t", "u", []session.Session{b})
		// Names with separators in them come back as they were.
		odd := mk("odd", "t:1,é x", "u:2,", base)
		c.create(odd, unlimited)
		on := odd
		on.Hash = hashOf("odd-new")
		c.rotate(odd.Hash, on)
		c.wantRotated(odd.Hash, on)
	}},
	{"EndToTheMicrosecond", func(t *testing.T, c *checker) {
		a := mk("a", "t", "u", base)
		c.create(a, unlimited)
		b := a
		b.Hash, b.ExpiresAt = hashOf("b"), a.ExpiresAt.Add(1) // a nanosecond over
		c.rotate(a.Hash, b)
		c.wantRotated(a.Hash, b)
	}},
	{"Chain", func(t *testing.T, c *checker) {
		// Rotating a session that was reached by rotation chains the
		// tombstones: a → b → c.
		a := mk("a", "t", "u", base)
		c.create(a, unlimited)
		b, d := a, a
		b.Hash = hashOf("b")
		d.Hash = hashOf("d")
		c.rotate(a.Hash, b)
		c.rotate(b.Hash, d)
		c.wantRotated(a.Hash, b)
		c.wantRotated(b.Hash, d)
		c.wantStored(d)
	}},
	{"NotASession", func(t *testing.T, c *checker) {
		a := mk("a", "t", "u", base)
		c.create(a, unlimited)
		b := a
		b.Hash = hashOf("b")
		c.rotate(a.Hash, b)
		if err := c.st.Touch(t.Context(), a.Hash, base.Add(time.Hour)); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("Touch of a tombstone: %v, want ErrNotFound", err)
		}
		if s, err := c.st.Delete(t.Context(), a.Hash); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("Delete of a tombstone = %s, %v; want ErrNotFound", label(s), err)
		}
		n := a
		n.Hash = hashOf("n")
		if err := c.st.Rotate(t.Context(), a.Hash, n); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("Rotate of a tombstone: %v, want ErrNotFound", err)
		}
		c.wantUnknown(n.Hash)
		// Its hash cannot come back, as a session or as a successor.
		c.createErr(mk("a", "t", "u", base.Add(time.Minute)), unlimited, session.ErrDuplicate)
		back := b
		back.Hash = a.Hash
		if err := c.st.Rotate(t.Context(), b.Hash, back); !errors.Is(err, session.ErrDuplicate) {
			t.Errorf("Rotate to a tombstone's hash: %v, want ErrDuplicate", err)
		}
		c.wantStored(b)
		c.wantRotated(a.Hash, b)
		// It is not counted: the user has one session, b.
		c.create(mk("e", "t", "u", base.Add(2*time.Minute)), refuse(2))
		c.wantList("t", "u", []session.Session{b, mk("e", "t", "u", base.Add(2*time.Minute))})
		// DeleteByUser does not return it.
		c.wantRemoved(c.deleteByUser("t", "u", session.Hash{}), []session.Session{b, mk("e", "t", "u", base.Add(2*time.Minute))})
	}},
	{"AbsentOldOntoTombstone", func(t *testing.T, c *checker) {
		// ErrNotFound comes first: an absent old is ErrNotFound whatever
		// the new hash is, a rotation's or an eviction's tombstone too.
		a := mk("a", "t", "u", base)
		b := mk("b", "t", "u", base.Add(time.Minute))
		c.create(a, unlimited)
		c.create(b, evict(1)) // a's hash: an eviction tombstone
		d := b
		d.Hash = hashOf("d")
		c.rotate(b.Hash, d) // b's hash: a rotation tombstone
		for _, tomb := range []session.Hash{a.Hash, b.Hash} {
			n := mk("n", "t", "u", base.Add(time.Hour))
			n.Hash = tomb
			if err := c.st.Rotate(t.Context(), hashOf("never stored"), n); !errors.Is(err, session.ErrNotFound) {
				t.Errorf("Rotate of an absent session onto tombstone %x: %v, want ErrNotFound", tomb[:4], err)
			}
		}
		c.wantStored(d)
		c.wantEvicted(a.Hash, a.EndsAt())
		c.wantRotated(b.Hash, d)
	}},
	{"FailedRotateLeavesNone", func(t *testing.T, c *checker) {
		a := mk("a", "t", "u", base)
		b := mk("b", "t", "u", base)
		c.create(a, unlimited)
		c.create(b, unlimited)
		n := a
		n.Hash = b.Hash
		if err := c.st.Rotate(t.Context(), a.Hash, n); !errors.Is(err, session.ErrDuplicate) {
			t.Fatalf("Rotate to an existing hash: %v, want ErrDuplicate", err)
		}
		c.wantStored(a)
		c.wantStored(b)
	}},
	{"DeleteByUserKeepsTheSparedLineage", func(t *testing.T, c *checker) {
		// "End my other sessions" spares the current session and the
		// rotation tombstones that lead to it, so that an older token of
		// it (a tab that has not seen the rotations) still names it; the
		// tombstones of the sessions ended, and of evicted ones, go.
		ev := mk("evicted", "t", "u", base)
		c.create(ev, unlimited)
		t0 := mk("t0", "t", "u", base.Add(time.Minute))
		c.wantSessions("evicted", c.create(t0, evict(1)), []session.Session{ev})
		t1 := c.rotateTo(t0, "t1")
		t2 := c.rotateTo(t1, "t2")
		x0 := mk("x0", "t", "u", base.Add(2*time.Minute))
		if ev := c.create(x0, evict(2)); len(ev) != 0 {
			t.Fatalf("Create of a second session under a limit of 2 evicted %s", ids(ev))
		}
		x1 := c.rotateTo(x0, "x1")
		other := mk("other", "t", "v", base)
		c.create(other, unlimited)
		on := c.rotateTo(other, "other-new")
		c.wantEvicted(ev.Hash, ev.EndsAt())

		c.wantRemoved(c.deleteByUser("t", "u", t2.Hash), []session.Session{x1})
		c.wantRotated(t0.Hash, t1)
		c.wantRotated(t1.Hash, t2)
		c.wantStored(t2)
		c.wantList("t", "u", []session.Session{t2})
		for _, h := range []session.Hash{x0.Hash, x1.Hash, ev.Hash} {
			c.wantUnknown(h)
		}
		c.wantRotated(other.Hash, on)

		// The zero Hash spares nothing: the lineage goes with the session.
		c.wantRemoved(c.deleteByUser("t", "u", session.Hash{}), []session.Session{t2})
		for _, h := range []session.Hash{t0.Hash, t1.Hash, t2.Hash} {
			c.wantUnknown(h)
		}
		c.wantRotated(other.Hash, on)
		// The hashes are free like any unknown one.
		c.create(mk("t0", "t", "w", base.Add(3*time.Minute)), unlimited)
	}},
	{"DeleteByUserKeepsAtMostMaxLineageHops", func(t *testing.T, c *checker) {
		// Of a longer chain, the tombstones that RevokeLineage would
		// follow to the spared session are kept, the older ones go.
		n := session.MaxLineageHops + 2
		chain := make([]session.Session, n+1)
		chain[0] = mk("h0", "t", "u", base)
		c.create(chain[0], unlimited)
		for i := 1; i <= n; i++ {
			chain[i] = c.rotateTo(chain[i-1], fmt.Sprint("h", i))
		}
		c.wantRemoved(c.deleteByUser("t", "u", chain[n].Hash), nil)
		c.wantStored(chain[n])
		for i := range n {
			if hops := n - i; hops > session.MaxLineageHops {
				c.wantUnknown(chain[i].Hash)
			} else {
				c.wantRotated(chain[i].Hash, chain[i+1])
			}
		}
	}},
	{"DeleteByUserSparingNoSessionKeepsNone", func(t *testing.T, c *checker) {
		// A lineage is kept only with the session it leads to: sparing
		// a tombstone's hash, or another user's session, keeps none of
		// the user's.
		a := mk("a", "t", "u", base)
		c.create(a, unlimited)
		b := c.rotateTo(a, "b")
		d := c.rotateTo(b, "d")
		c.wantRemoved(c.deleteByUser("t", "u", b.Hash), []session.Session{d})
		for _, h := range []session.Hash{a.Hash, b.Hash, d.Hash} {
			c.wantUnknown(h)
		}

		e := mk("e", "t", "u", base.Add(time.Minute))
		c.create(e, unlimited)
		f := c.rotateTo(e, "f")
		v := mk("v", "t", "v", base)
		c.create(v, unlimited)
		w := c.rotateTo(v, "w")
		c.wantRemoved(c.deleteByUser("t", "u", w.Hash), []session.Session{f})
		c.wantUnknown(e.Hash)
		c.wantUnknown(f.Hash)
		c.wantStored(w)
		c.wantRotated(v.Hash, w)
	}},
	{"Expires", func(t *testing.T, c *checker) {
		a := mk("a", "t", "u", base)
		c.create(a, unlimited)
		b := a
		b.Hash, b.ExpiresAt = hashOf("b"), base.Add(2*time.Hour)
		c.rotate(a.Hash, b)
		// A Create of the user a microsecond before the successor's
		// expiry keeps the tombstone; one at it removes it.
		c.create(mk("c", "t", "u", b.ExpiresAt.Add(-time.Microsecond)), unlimited)
		c.wantRotated(a.Hash, b)
		c.create(mk("d", "t", "u", b.ExpiresAt), unlimited)
		c.wantUnknown(a.Hash)
		c.create(mk("a", "t", "u", b.ExpiresAt.Add(time.Minute)), unlimited)
	}},
	{"LookupTouchReportsRotated", func(t *testing.T, c *checker) {
		lt := c.lookupToucher()
		a := mk("a", "t", "u", base)
		c.create(a, unlimited)
		b := a
		b.Hash = hashOf("b")
		c.rotate(a.Hash, b)
		for _, now := range []time.Time{base.Add(time.Hour), b.ExpiresAt.Add(time.Hour)} {
			s, err := lt.LookupTouch(t.Context(), a.Hash, now, time.Minute, 0)
			c.checkRotated("LookupTouch", a.Hash, s, err, b)
		}
		c.wantRotated(a.Hash, b)
		c.wantStored(b)
	}},
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
