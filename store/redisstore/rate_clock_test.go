package redisstore_test

import (
	"testing"
	"time"

	"github.com/guardhq/guard/store/memstore"
)

// TestRateWindowJudgedByCallersClock: mfa.RateStore says a window "may
// end up to 2 µs late, never early", and mfatest that it is judged by the
// now given, not the store's clock. The Redis store makes the counter's
// key expire at the window's end by the Redis server's clock, so on a
// host whose clock is behind the server's the window ends early and the
// count starts again at 1 (a send limit bypassed by the skew).
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
