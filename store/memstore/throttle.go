package memstore

import (
	"context"
	"sync"
	"time"

	"github.com/guardhq/guard/auth"
)

// Throttle is an in-memory auth.ThrottleStore and auth.BatchThrottleStore:
// each call, of one key or several, holds one mutex. Memory is bounded:
// records are dropped once forgotten (swept as the map grows), and at most
// maxKeys live records are kept; beyond that, Reserve of a new key fails
// with auth.ErrThrottleFull (callers deny) and a locked key is never
// evicted.
type Throttle struct {
	mu      sync.Mutex
	m       map[string]throttleEntry
	maxKeys int
	sweepAt int // sweep when len(m) reaches this
}

type throttleEntry struct {
	rec     auth.Record
	expires time.Time // zero: never (permanent)
}

var _ auth.BatchThrottleStore = (*Throttle)(nil)

// NewThrottle returns an empty throttle store holding at most maxKeys
// records (0 means 1<<20).
func NewThrottle(maxKeys int) *Throttle {
	if maxKeys <= 0 {
		maxKeys = 1 << 20
	}
	return &Throttle{m: make(map[string]throttleEntry), maxKeys: maxKeys, sweepAt: 1024}
}

// Len returns the number of records held.
func (t *Throttle) Len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.m)
}

// sweep drops every record forgotten at now. Called with t.mu held; the
// next sweep happens when the map has doubled, so the cost is amortised.
func (t *Throttle) sweep(now time.Time) {
	for k, e := range t.m {
		if !e.expires.IsZero() && !now.Before(e.expires) {
			delete(t.m, k)
		}
	}
	t.sweepAt = max(1024, 2*len(t.m))
}

// Reserve implements auth.ThrottleStore.
func (t *Throttle) Reserve(_ context.Context, key string, now time.Time, lim auth.Limit) (auth.Reservation, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.reserve(key, now, lim)
}

// ReserveAll implements auth.BatchThrottleStore under one hold of the
// lock. It returns auth.ErrThrottleFull when a key is new and the store is
// full; the keys before it stay counted.
func (t *Throttle) ReserveAll(_ context.Context, now time.Time, keys []auth.ThrottleKey) ([]auth.Reservation, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return auth.ReserveInOrder(keys, func(k auth.ThrottleKey) (auth.Reservation, error) { return t.reserve(k.Key, now, k.Limit) })
}

// reserve is Reserve with t.mu held.
func (t *Throttle) reserve(key string, now time.Time, lim auth.Limit) (auth.Reservation, error) {
	e, ok := t.m[key]
	if !ok {
		if len(t.m) >= t.sweepAt || len(t.m) >= t.maxKeys {
			t.sweep(now)
		}
		if len(t.m) >= t.maxKeys {
			return auth.Reservation{}, auth.ErrThrottleFull
		}
	}
	rec, res := lim.Apply(e.rec, now)
	t.m[key] = throttleEntry{rec: rec, expires: rec.ExpiresAt(lim)}
	return res, nil
}

// Release implements auth.ThrottleStore with auth.Record.GiveBack. The
// record keeps the time it is dropped at as its last Reserve set it, which
// GiveBack never makes too early; a permanent lock it lifts leaves the
// record kept until the key's next Reserve or Reset.
func (t *Throttle) Release(_ context.Context, key string, res auth.Reservation) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.release(key, res)
	return nil
}

// release is Release with t.mu held.
func (t *Throttle) release(key string, res auth.Reservation) {
	if e, ok := t.m[key]; ok {
		e.rec = e.rec.GiveBack(res)
		t.m[key] = e
	}
}

// Reset implements auth.ThrottleStore.
func (t *Throttle) Reset(_ context.Context, key string) error {
	t.mu.Lock()
	delete(t.m, key)
	t.mu.Unlock()
	return nil
}

// Settle implements auth.BatchThrottleStore under one hold of the lock.
func (t *Throttle) Settle(_ context.Context, keys []auth.Settlement) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		if k.Reset {
			delete(t.m, k.Key)
		} else {
			t.release(k.Key, k.Reservation)
		}
	}
	return nil
}

// Peek implements auth.ThrottleStore.
func (t *Throttle) Peek(_ context.Context, key string, now time.Time, lim auth.Limit) (auth.State, error) {
	t.mu.Lock()
	e := t.m[key]
	t.mu.Unlock()
	return auth.StateOf(e.rec, now, lim), nil
}
