package redisstore_test

import (
	"errors"
	"testing"
	"time"

	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/auth/authtest"
	"github.com/guardhq/guard/store/redisstore"
)

func newThrottle(t *testing.T) auth.ThrottleStore {
	s, _, _ := open(t)
	return s
}

var authStores = authtest.Stores{Throttle: newThrottle}

func TestThrottle(t *testing.T) { authtest.Run(t, authStores) }

func TestThrottleConcurrent(t *testing.T) { authtest.RunConcurrent(t, authStores) }

// TestThrottleHashTagPrefix runs the suite with a prefix holding a hash
// tag, as Redis Cluster needs: the keys of a ReserveAll or Settle share
// the slot of the tag.
func TestThrottleHashTagPrefix(t *testing.T) {
	authtest.Run(t, authtest.Stores{Throttle: func(t *testing.T) auth.ThrottleStore {
		c := newClient(t)
		s, err := redisstore.New(t.Context(), c, redisstore.Options{Prefix: cleanPrefix(t, c, "{guardtest:"+randomHex()+"}:")})
		if err != nil {
			t.Fatal(err)
		}
		return s
	}})
}

// TestThrottleBatchOneRoundTrip checks that ReserveAll and Settle of a
// login's two keys are one command each.
func TestThrottleBatchOneRoundTrip(t *testing.T) {
	cnt := new(counter)
	st, _, _ := open(t, cnt)
	ctx := t.Context()
	if err := st.Load(ctx); err != nil {
		t.Fatal(err)
	}
	lim := auth.Limit{Max: 3, ResetAfter: time.Hour, LockFor: time.Minute, MaxLockFor: time.Hour}
	cnt.reset()
	res, err := st.ReserveAll(ctx, base, []auth.ThrottleKey{{Key: "ip:192.0.2.1", Limit: lim}, {Key: "acct:acme:a@example.com", Limit: lim}})
	if err != nil || len(res) != 2 || !res[0].Allowed || !res[1].Allowed {
		t.Fatalf("ReserveAll = %+v, %v; want two allowed", res, err)
	}
	if n, cmds := cnt.counted(); n != 1 {
		t.Errorf("ReserveAll took %d round trips %v, want 1", n, cmds)
	}
	cnt.reset()
	if err := st.Settle(ctx, []auth.Settlement{{Key: "ip:192.0.2.1", Reservation: res[0]}, {Key: "acct:acme:a@example.com", Reset: true}}); err != nil {
		t.Fatal(err)
	}
	if n, cmds := cnt.counted(); n != 1 {
		t.Errorf("Settle took %d round trips %v, want 1", n, cmds)
	}
}

// TestThrottleBatchBadInput checks that a ReserveAll with one bad key
// returns its typed error and changes no key, not even the keys before it.
func TestThrottleBatchBadInput(t *testing.T) {
	st, c, prefix := open(t)
	ctx := t.Context()
	lim := auth.Limit{Max: 3, ResetAfter: time.Hour, LockFor: time.Minute, MaxLockFor: time.Hour}
	bad, huge := lim, lim
	bad.LockFor = 0
	huge.MaxLockFor = 250 * 365 * 24 * time.Hour
	var limErr *auth.InvalidLimitError
	var inputErr *redisstore.InputError
	for _, tc := range []struct {
		name string
		now  time.Time
		lim  auth.Limit
		want any
	}{
		{"InvalidLimit", base, bad, &limErr},
		{"LockAfter2255", base, huge, &inputErr},
		{"NowIn2300", time.Date(2300, 1, 1, 0, 0, 0, 0, time.UTC), lim, &inputErr},
	} {
		res, err := st.ReserveAll(ctx, tc.now, []auth.ThrottleKey{{Key: "a", Limit: lim}, {Key: "b", Limit: tc.lim}})
		if !errors.As(err, tc.want) || res != nil {
			t.Errorf("%s: ReserveAll = %+v, %v; want %T", tc.name, res, err, tc.want)
		}
	}
	if got := keysOf(t, c, prefix+"t:*"); len(got) != 0 {
		t.Errorf("refused ReserveAlls left keys %q", got)
	}
}
