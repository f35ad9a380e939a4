package redisstore_test

import (
	"testing"
	"time"

	"github.com/guardhq/guard/store/memstore"
)

// TestRateWindowJudgedByCallersClock: mfa.RateStore says a window "may
// end up to 2 µs late, never early", and mfatest that it is judged by the
// now given, not the store's clock. Redis drops a key by its own clock,
// so a counter's key that expired at the window's end would, on a host
// whose clock is behind the server's, end the window early and count
// from 1 again (a send limit bypassed by the skew); it outlives the end
// by ClockGrace.
func TestRateWindowJudgedByCallersClock(t *testing.T) {
	s, c, _ := open(t)
	ctx := t.Context()
	server, err := c.Time(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	now := server.Add(-time.Minute).UTC().Truncate(time.Microsecond)
	mem := memstore.NewMFA()
	for _, st := range []struct {
		name string
		hit  func(time.Time) (int, error)
	}{
		{"memstore", func(at time.Time) (int, error) { return mem.Hit(ctx, "mfa:k", at, 30*time.Second) }},
		{"redisstore", func(at time.Time) (int, error) { return s.Hit(ctx, "mfa:k", at, 30*time.Second) }},
	} {
		if n, err := st.hit(now); err != nil || n != 1 {
			t.Fatalf("%s: first Hit = %d, %v; want 1", st.name, n, err)
		}
		if n, err := st.hit(now.Add(time.Second)); err != nil || n != 2 {
			t.Errorf("%s: Hit 1 s into a 30 s window = %d, %v; want 2", st.name, n, err)
		}
	}
}
