package pgstore_test

import (
	"testing"
	"time"
)

// TestMFARateWindowSurvivesLaggingReplica: mfa.RateStore says a send
// window "may end up to 2 µs late, never early", judged at the now each
// caller gives. Replicas' clocks differ: sqlitestore keeps ended windows
// SweepGrace before its sweeps drop them, and redisstore keeps a counter's
// key ClockGrace past its end ("so no host behind ... sees a send window
// end early"), both so that a replica whose clock lags still finds the
// window that is open by its clock. pgstore's Hit deletes other keys'
// windows as soon as they end at the caller's now, with no grace: one
// send on a replica ahead by a minute wipes every counter of the last
// minute, and the replica behind counts its next send from 1 (a send
// limit, per destination, account, IP or tenant, bypassed by the skew).
func TestMFARateWindowSurvivesLaggingReplica(t *testing.T) {
	st := newStore(t)
	ctx := t.Context()
	const window = time.Hour
	opened := t0
	// The replica behind: a window opens and counts two sends.
	for want := 1; want <= 2; want++ {
		if n, err := st.MFA.Hit(ctx, "mfa:destination:victim", opened.Add(time.Duration(want)*time.Second), window); err != nil || n != want {
			t.Fatalf("Hit = %d, %v; want %d", n, err, want)
		}
	}
	// The replica ahead (its clock 2 minutes on): any send, of another key.
	ahead := opened.Add(window + 2*time.Minute)
	if _, err := st.MFA.Hit(ctx, "mfa:destination:someone-else", ahead, window); err != nil {
		t.Fatal(err)
	}
	// The replica behind, 1 minute before the window ends by its clock.
	behind := opened.Add(window - time.Minute)
	n, err := st.MFA.Hit(ctx, "mfa:destination:victim", behind, window)
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("Hit inside the window, by the caller's clock, after a replica 2 min ahead wrote = %d, want 3: the window was dropped early and counts from 1 again", n)
	}
}
