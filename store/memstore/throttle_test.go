package memstore_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/auth/authtest"
	"github.com/guardhq/guard/store/memstore"
)

var throttle = authtest.Stores{Throttle: func(*testing.T) auth.ThrottleStore { return memstore.NewThrottle(0) }}

func TestThrottle(t *testing.T) { authtest.Run(t, throttle) }

func TestThrottleConcurrent(t *testing.T) { authtest.RunConcurrent(t, throttle) }

// singleKeyOnly hides the multi-key calls of a store, so that
// auth.BatchThrottle makes them from its single-key calls.
type singleKeyOnly struct{ auth.ThrottleStore }

// The conformance suite also holds for the multi-key calls that
// auth.BatchThrottle makes of a store without them.
var throttleLoop = authtest.Stores{Throttle: func(*testing.T) auth.ThrottleStore {
	return singleKeyOnly{memstore.NewThrottle(0)}
}}

func TestThrottleBatchFallback(t *testing.T) { authtest.Run(t, throttleLoop) }

func TestThrottleBatchFallbackConcurrent(t *testing.T) { authtest.RunConcurrent(t, throttleLoop) }

// base is a fixed "now" for the tests below.
var base = time.Date(2099, 1, 1, 9, 0, 0, 123456000, time.UTC)

// TestThrottleMemoryBounded sprays 100,000 distinct keys, one every 10 ms
// (1,000 s in all), at a throttle that forgets a key after a second: the
// store holds about the keys of the last sweep interval, not every key
// ever seen, and never drops a key while it is locked.
// SECURITY-CHECKLIST LG-12, RL-2.
func TestThrottleMemoryBounded(t *testing.T) {
	const (
		keys  = 100_000
		step  = 10 * time.Millisecond
		bound = 2048 // sweeps start at 1024 records; about 500 are live at once here
	)
	for _, tc := range []struct {
		name string
		lim  auth.Limit
	}{
		// One attempt per key, never locked.
		{"Unlocked", auth.Limit{Max: 5, ResetAfter: time.Second, LockFor: time.Minute, MaxLockFor: time.Hour}},
		// Every key locked at its attempt, for 5 s: longer than ResetAfter,
		// so each is kept until its lock ends.
		{"EachLocked", auth.Limit{Max: 1, ResetAfter: time.Second, LockFor: 5 * time.Second, MaxLockFor: time.Hour}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			th := memstore.NewThrottle(0)
			// A key locked for an hour, and one locked for good, both
			// before the spray begins.
			long := auth.Limit{Max: 1, ResetAfter: time.Second, LockFor: time.Hour, MaxLockFor: time.Hour}
			forever := auth.Limit{Max: 1, ResetAfter: time.Hour, LockFor: time.Second, MaxLockFor: time.Second, PermanentAfter: 1}
			mustLock(t, th, "locked", base, long)
			mustLock(t, th, "permanent", base, forever)
			mustLock(t, th, "permanent", base.Add(time.Second), forever)
			maxLen := 0
			for i := range keys {
				now := base.Add(time.Duration(i) * step)
				key := fmt.Sprintf("ip:%d", i)
				r, err := th.Reserve(ctx, key, now, tc.lim)
				if err != nil || !r.Allowed {
					t.Fatalf("Reserve(%s) = %+v, %v", key, r, err)
				}
				if n := th.Len(); n > bound {
					t.Fatalf("after %d keys over %v, the store holds %d records, want at most %d", i+1, now.Sub(base), n, bound)
				} else {
					maxLen = max(maxLen, n)
				}
				if i%1000 != 999 {
					continue
				}
				wantLocked(t, th, "locked", now, long, false)
				wantLocked(t, th, "permanent", now, forever, true)
				if tc.lim.Max == 1 {
					// Every key of the last lock period is still locked.
					for j := i - int(tc.lim.LockFor/step) + 1; j <= i; j += 7 {
						wantLocked(t, th, fmt.Sprintf("ip:%d", j), now, tc.lim, false)
					}
				}
			}
			t.Logf("at most %d records held for %d keys", maxLen, keys)
			// The hour-long lock has not ended yet; the permanent one never
			// does.
			end := base.Add(keys * step)
			if r, err := th.Reserve(ctx, "locked", end, long); err != nil || r.Allowed {
				t.Errorf("Reserve of the locked key = %+v, %v; want refused", r, err)
			}
			if r, err := th.Reserve(ctx, "permanent", end.Add(100*365*24*time.Hour), forever); err != nil || r.Allowed || !r.Permanent {
				t.Errorf("Reserve of the permanently locked key = %+v, %v; want refused", r, err)
			}
		})
	}
}

// TestThrottleFull checks the bound on live records: a new key is refused
// with ErrThrottleFull while every record is live, keys already held still
// count, nothing locked is evicted, and room comes back once records are
// forgotten.
// SECURITY-CHECKLIST RL-2.
func TestThrottleFull(t *testing.T) {
	ctx := t.Context()
	const maxKeys = 100
	th := memstore.NewThrottle(maxKeys)
	lim := auth.Limit{Max: 1, ResetAfter: time.Minute, LockFor: time.Hour, MaxLockFor: time.Hour}
	for i := range maxKeys {
		mustLock(t, th, fmt.Sprint("k", i), base, lim)
	}
	later := base.Add(30 * time.Minute) // every record still locked
	if _, err := th.Reserve(ctx, "new", later, lim); !errors.Is(err, auth.ErrThrottleFull) {
		t.Fatalf("Reserve of a new key in a full store: %v, want ErrThrottleFull", err)
	}
	if th.Len() != maxKeys {
		t.Errorf("Len = %d, want %d", th.Len(), maxKeys)
	}
	for i := range maxKeys {
		wantLocked(t, th, fmt.Sprint("k", i), later, lim, false)
		if r, err := th.Reserve(ctx, fmt.Sprint("k", i), later, lim); err != nil || r.Allowed {
			t.Fatalf("Reserve of held key k%d = %+v, %v; want refused by its lock", i, r, err)
		}
	}
	// Once the locks have ended and ResetAfter has passed, the records
	// are forgotten and make room.
	if r, err := th.Reserve(ctx, "new", base.Add(2*time.Hour), lim); err != nil || !r.Allowed {
		t.Fatalf("Reserve of a new key after every record was forgotten = %+v, %v", r, err)
	}
	if th.Len() != 1 {
		t.Errorf("Len = %d after the sweep, want 1", th.Len())
	}
}

// mustLock reserves key at now under lim and checks that it locks.
func mustLock(t *testing.T, th *memstore.Throttle, key string, now time.Time, lim auth.Limit) {
	t.Helper()
	r, err := th.Reserve(t.Context(), key, now, lim)
	if err != nil || !r.Locks {
		t.Fatalf("Reserve(%s) = %+v, %v; want it to lock", key, r, err)
	}
}

// wantLocked checks that Peek reports key locked at now (for good if
// permanent).
func wantLocked(t *testing.T, th *memstore.Throttle, key string, now time.Time, lim auth.Limit, permanent bool) {
	t.Helper()
	s, err := th.Peek(t.Context(), key, now, lim)
	if err != nil || !s.Locked(now) || s.Permanent != permanent {
		t.Fatalf("Peek(%s) at %v = %+v, %v; want locked (permanent: %v)", key, now.Sub(base), s, err, permanent)
	}
}
