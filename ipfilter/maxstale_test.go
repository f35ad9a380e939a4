package ipfilter_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guardhq/guard/ipfilter"
)

// gatedStore is a fakeStore whose next Version call, once armed, runs
// a hook after it has read the version and before it returns: what a
// request in flight on the same replica looks like to a Replace made
// meanwhile.
type gatedStore struct {
	*fakeStore
	mu   sync.Mutex
	hook func()
}

func (s *gatedStore) Version(ctx context.Context, tenant string) (uint64, error) {
	v, err := s.fakeStore.Version(ctx, tenant)
	s.mu.Lock()
	h := s.hook
	s.hook = nil
	s.mu.Unlock()
	if h != nil {
		h()
	}
	return v, err
}

func (s *gatedStore) arm(h func()) {
	s.mu.Lock()
	s.hook = h
	s.mu.Unlock()
}

// With a positive MaxStale, the replica that made a change sees it at
// once (Config.MaxStale, Filter.Replace): every Check that starts after
// Replace has returned uses the new lists, even when a Check that read the
// old version from the Store before the change finishes after it.
func TestMaxStaleOwnChangeSeenDespiteCheckInFlight(t *testing.T) {
	st := &gatedStore{fakeStore: newFake()}
	var now atomic.Int64
	now.Store(time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	f := newFilter(t, st, ipfilter.Config{MaxStale: time.Minute, Now: clock})
	replace(t, f, "acme", ipfilter.Users, false, "203.0.113.0/24")
	if d := check(t, f, "acme", ipfilter.Users, office); d != ipfilter.Allowed {
		t.Fatalf("before the change: %v", d)
	}
	now.Add(int64(time.Minute)) // the next Check reads the version

	// A request in flight reads the old version; the administrator's
	// change lands (and Replace returns) before that request goes on.
	st.arm(func() {
		replace(t, f, "acme", ipfilter.Users, false, "192.0.2.0/24")
	})
	_ = check(t, f, "acme", ipfilter.Users, office) // concurrent with Replace: either answer is fine

	// Every Check that starts after Replace returned must see the change.
	for i := range 3 {
		if d := check(t, f, "acme", ipfilter.Users, office); d != ipfilter.Denied {
			t.Fatalf("check %d after Replace returned, same replica, same instant: %v, want denied (the list no longer holds %s)", i+1, d, office)
		}
	}
}
