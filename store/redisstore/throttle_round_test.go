package redisstore_test

import (
	"testing"
	"time"

	"github.com/guardhq/guard/auth"
)

// Lock lengths with nanoseconds are rounded up, as is the now a lock is
// counted from: each lock of the doubling, up to MaxLockFor, ends within
// 2 µs after now plus its exact length, never before.
func TestThrottleLockLengthsRoundedUp(t *testing.T) {
	st := newThrottle(t)
	lim := auth.Limit{Max: 1, ResetAfter: time.Hour, LockFor: time.Second + 1500*time.Nanosecond,
		MaxLockFor: 3*time.Second + 300*time.Nanosecond}
	at := base.Add(700 * time.Nanosecond)
	for n, d := range []time.Duration{lim.LockFor, 2 * lim.LockFor, lim.MaxLockFor, lim.MaxLockFor} {
		r, err := st.Reserve(t.Context(), "k", at, lim)
		want := at.Add(d)
		if late := r.LockedUntil.Sub(want); err != nil || !r.Locks || late < 0 || late > 2*time.Microsecond {
			t.Fatalf("lock %d at %v = %+v, %v; want a lock until %v, up to 2 µs later", n+1, at, r, err, want)
		}
		if r, err := st.Reserve(t.Context(), "k", want.Add(-time.Nanosecond), lim); err != nil || r.Allowed {
			t.Errorf("lock %d: 1 ns before %v: %+v, %v; want refused", n+1, want, r, err)
		}
		at = r.LockedUntil.Add(900 * time.Nanosecond)
	}
}
