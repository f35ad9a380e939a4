package redisstore_test

import (
	"testing"
	"time"

	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/store/memstore"
)

// TestThrottleLockJudgedByCallersClock: auth.ThrottleStore says a lock
// "may end a few microseconds late, never early", and Reserve applies the
// rule at the now it is given (authtest: a store that judges expiry by its
// own clock instead of the now it is given fails). Redis drops a key by
// its own clock, so a throttle record's key must outlive the record's end
// (the later of Last + ResetAfter and the end of its lock): a key that
// expired, with no grace, at that end would, on a host whose clock is
// behind the server's by d, end every lock and every failure count d
// early by the host's clock (the next attempt allowed, counted from
// zero). memstore and the SQL stores refuse it. This is the throttle twin
// of the replay cache's ReplayGrace
// (TestAuditStores_ReplayJudgedByCallersClock); the grace is ClockGrace.
//
// Here the host's clock is 60 s behind the server's and the lock lasts
// 30 s by the host's clock: an attempt 1 s into the lock must be refused.
func TestThrottleLockJudgedByCallersClock(t *testing.T) {
	s, c, _ := open(t)
	ctx := t.Context()
	server, err := c.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	now := server.Add(-time.Minute).UTC().Truncate(time.Microsecond)
	lim := auth.Limit{Max: 1, ResetAfter: 20 * time.Second, LockFor: 30 * time.Second, MaxLockFor: 30 * time.Second}
	for _, st := range []struct {
		name string
		ts   auth.ThrottleStore
	}{{"memstore", memstore.NewThrottle(0)}, {"redisstore", s}} {
		r, err := st.ts.Reserve(ctx, "acct:x", now, lim)
		if err != nil || !r.Allowed || !r.Locks {
			t.Fatalf("%s: first Reserve = %+v, %v; want allowed, starting a lock", st.name, r, err)
		}
		at := now.Add(time.Second)
		if r2, err := st.ts.Reserve(ctx, "acct:x", at, lim); err != nil || r2.Allowed {
			t.Errorf("%s: Reserve at %v, during the lock until %v = %+v, %v; want refused (locked)", st.name, at, r.LockedUntil, r2, err)
		}
		if p, err := st.ts.Peek(ctx, "acct:x", at, lim); err != nil || !p.Locked(at) {
			t.Errorf("%s: Peek at %v = %+v, %v; want locked until %v", st.name, at, p, err, r.LockedUntil)
		}
	}
}
