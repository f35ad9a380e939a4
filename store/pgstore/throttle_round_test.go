package pgstore_test

import (
	"testing"
	"time"

	"github.com/guardhq/guard/auth"
)

// A lock counted from a now with nanoseconds, under lock lengths with
// nanoseconds, never ends before now plus its exact length, through the
// doublings up to MaxLockFor, by Reserve and by ReserveAll alike (both
// call throttle_apply, which takes one now: the store passes it truncated
// and lengthens the limit by the microsecond dropped). It ends at most
// 2^n µs late for lock number n.
func TestThrottleLocksNeverEndEarly(t *testing.T) {
	st := newStore(t)
	ctx := t.Context()
	lim := auth.Limit{Max: 1, ResetAfter: time.Hour, LockFor: time.Second + 1500*time.Nanosecond,
		MaxLockFor: 5*time.Second + 300*time.Nanosecond}
	now := t0.Add(700 * time.Nanosecond)
	d := lim.LockFor
	for n := 1; n <= 5; n++ {
		var r auth.Reservation
		var err error
		if n%2 == 1 {
			r, err = st.Throttle.Reserve(ctx, "k", now, lim)
		} else {
			var rs []auth.Reservation
			rs, err = st.Throttle.ReserveAll(ctx, now, []auth.ThrottleKey{{Key: "k", Limit: lim}})
			if err == nil {
				r = rs[0]
			}
		}
		if err != nil || !r.Allowed || !r.Locks {
			t.Fatalf("lock %d: Reserve = %+v, %v; want allowed, locking", n, r, err)
		}
		end := now.Add(d)
		if late := r.LockedUntil.Sub(end); late < 0 || late > time.Duration(1<<n)*time.Microsecond {
			t.Errorf("lock %d: LockedUntil %v is %v after the exact end %v; want 0 to %d µs", n, r.LockedUntil, late, end, 1<<n)
		}
		if r, err := st.Throttle.Reserve(ctx, "k", end.Add(-time.Nanosecond), lim); err != nil || r.Allowed {
			t.Errorf("lock %d: Reserve 1 ns before its exact end = %+v, %v; want refused", n, r, err)
		}
		now = r.LockedUntil.Add(700 * time.Nanosecond)
		d = min(2*d, lim.MaxLockFor)
	}
}
