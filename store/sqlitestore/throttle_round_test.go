package sqlitestore_test

import (
	"testing"
	"time"

	"github.com/guardhq/guard/auth"
)

// The time of an attempt, kept to the microsecond, is rounded up: a count
// made at a now with nanoseconds is not forgotten before now+ResetAfter,
// and Sweep does not drop it before then either.
func TestThrottleCountNeverForgottenEarly(t *testing.T) {
	th := openStore(t).Throttle
	ctx := t.Context()
	lim := auth.Limit{Max: 5, ResetAfter: time.Hour, LockFor: time.Minute, MaxLockFor: time.Hour}
	first := t0.Add(700 * time.Nanosecond)
	if _, err := th.Reserve(ctx, "k", first, lim); err != nil {
		t.Fatal(err)
	}
	before := first.Add(lim.ResetAfter - 400*time.Nanosecond)
	if n, err := th.Sweep(ctx, before); err != nil || n != 0 {
		t.Errorf("Sweep 400 ns before the count is forgotten = %d, %v; want 0", n, err)
	}
	if r, err := th.Reserve(ctx, "k", before, lim); err != nil || r.Failures != 2 {
		t.Errorf("Reserve 400 ns before the count is forgotten = %+v, %v; want Failures 2", r, err)
	}
}
