package pgstore_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/store/pgstore"
)

// watching runs st.Watch until t ends and waits until it listens (a
// version read through st is then kept).
func watching(t *testing.T, st *pgstore.Store) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- st.Watch(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; !errors.Is(err, context.Canceled) {
			t.Errorf("Watch returned %v, want context.Canceled", err)
		}
	})
	waitFor(t, "Watch to listen", st.Watching)
}

// watchListeners returns the process IDs of the server's connections that
// listen on st's channel.
func watchListeners(t *testing.T, st *pgstore.Store) []int32 {
	t.Helper()
	rows, err := testPool(t).Query(t.Context(), `SELECT pid FROM pg_stat_activity WHERE application_name = $1`,
		pgstore.WatchAppName(st.Schema()))
	if err != nil {
		t.Fatal(err)
	}
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	return pids
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !ok() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// replace sets tenant's user allow-list to cidr through st and returns
// the new version.
func replace(t *testing.T, st *pgstore.Store, tenant, cidr string) uint64 {
	t.Helper()
	prev, err := st.IPLists.Version(t.Context(), tenant)
	if err != nil {
		t.Fatal(err)
	}
	for {
		v, err := st.IPLists.Replace(t.Context(), tenant, ipfilter.Users, ipfilter.Rules{Entries: []string{cidr}}, prev)
		if errors.Is(err, ipfilter.ErrConflict) {
			// Another replica moved it; read it again (from the database:
			// Replace dropped it).
			if prev, err = st.IPLists.Version(t.Context(), tenant); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// A watched replica reads each version once, then answers from memory
// until a change, made here or on another replica, is notified.
func TestWatchVersions(t *testing.T) {
	rt := new(roundTrips)
	a := newStore(t)
	b := newStoreOn(t, tracedPool(t, rt), a.Schema())
	watching(t, b)
	ctx := t.Context()

	v0, err := b.IPLists.Version(ctx, "acme")
	if err != nil || v0 != 0 {
		t.Fatalf("Version before any list = %d, %v", v0, err)
	}
	rt.take()
	for range 3 {
		if v, err := b.IPLists.Version(ctx, "acme"); err != nil || v != v0 {
			t.Fatalf("Version = %d, %v; want %d", v, err, v0)
		}
		if v, err := b.Policies.Version(ctx, "acme"); err != nil || v != 0 {
			t.Fatalf("Policies.Version = %d, %v; want 0", v, err)
		}
	}
	if calls := rt.take(); len(calls) != 1 || calls[0] != "Policies.Version" {
		t.Errorf("3 reads of two versions sent %v, want one Policies.Version (the allow-list version was kept before)", calls)
	}

	// A change on the other replica reaches this one when notified.
	v1 := replace(t, a, "acme", "10.0.0.0/8")
	start := time.Now()
	waitFor(t, "the other replica's allow-list change", func() bool {
		v, err := b.IPLists.Version(ctx, "acme")
		return err == nil && v == v1
	})
	t.Logf("a change on the other replica was seen after %v", time.Since(start))
	if err := a.Policies.Update(ctx, "acme", 0, nil, []rbac.Rule{{Type: rbac.RuleGrant, Role: "admin", Subject: "user:u1"}}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the other replica's rbac change", func() bool {
		v, err := b.Policies.Version(ctx, "acme")
		return err == nil && v == 1
	})
	// Other tenants' versions stay kept.
	if _, err := b.IPLists.Version(ctx, "globex"); err != nil {
		t.Fatal(err)
	}
	rt.take()
	if _, err := b.IPLists.Version(ctx, "globex"); err != nil {
		t.Fatal(err)
	}
	if calls := rt.take(); len(calls) != 0 {
		t.Errorf("a kept version sent %v", calls)
	}

	// A change made here is seen at once.
	v2 := replace(t, b, "acme", "192.0.2.0/24")
	if v, err := b.IPLists.Version(ctx, "acme"); err != nil || v != v2 {
		t.Errorf("Version right after this replica's Replace = %d, %v; want %d", v, err, v2)
	}

	// A second Watch of the same Store is refused.
	if err := b.Watch(ctx); !errors.Is(err, pgstore.ErrWatching) {
		t.Errorf("second Watch = %v, want ErrWatching", err)
	}
}

// Without Watch, every version is read.
func TestVersionsReadWithoutWatch(t *testing.T) {
	rt := new(roundTrips)
	st := newStoreOn(t, tracedPool(t, rt), "")
	rt.take()
	for range 3 {
		if _, err := st.IPLists.Version(t.Context(), "acme"); err != nil {
			t.Fatal(err)
		}
	}
	if calls := rt.take(); len(calls) != 3 {
		t.Errorf("3 version reads without Watch sent %v, want 3 reads", calls)
	}
}

// When the listening connection is killed, versions are read from the
// database (a change made meanwhile is seen at once) until Watch listens
// again; then they are kept again.
func TestWatchReconnects(t *testing.T) {
	rt := new(roundTrips)
	a := newStore(t)
	b := newStoreOn(t, tracedPool(t, rt), a.Schema())
	watching(t, b)
	ctx := t.Context()
	if _, err := b.IPLists.Version(ctx, "acme"); err != nil {
		t.Fatal(err)
	}

	old := watchListeners(t, b)
	if len(old) != 1 {
		t.Fatalf("listeners = %v, want one", old)
	}
	var killed bool
	if err := testPool(t).QueryRow(ctx, `SELECT pg_terminate_backend($1)`, old[0]).Scan(&killed); err != nil || !killed {
		t.Fatalf("terminating the listener: %v, %v", killed, err)
	}
	// Until Watch has noticed, a change may be missed for at most
	// WatchFresh; after it, reads go to the database.
	v1 := replace(t, a, "acme", "10.0.0.0/8")
	waitFor(t, "the change after the listener died", func() bool {
		v, err := b.IPLists.Version(ctx, "acme")
		return err == nil && v == v1
	})
	// A new listener's process is seen once the old one has been given
	// up; Watching then reports when it listens.
	waitFor(t, "Watch to listen again", func() bool {
		pids := watchListeners(t, b)
		return len(pids) == 1 && pids[0] != old[0] && b.Watching()
	})
	v2 := replace(t, a, "acme", "192.0.2.0/24")
	waitFor(t, "a change after the reconnection", func() bool {
		v, err := b.IPLists.Version(ctx, "acme")
		return err == nil && v == v2
	})
	// Versions are kept again (a read that raced the notification of v2
	// is dropped by it, so one more read may go to the database).
	waitFor(t, "a version read answered from memory", func() bool {
		rt.take()
		v, err := b.IPLists.Version(ctx, "acme")
		if err != nil || v != v2 {
			t.Fatalf("Version = %d, %v; want %d", v, err, v2)
		}
		return len(rt.take()) == 0
	})
}

// A watched replica never keeps a version older than a change it was
// notified of, however reads and changes interleave: after each change on
// one replica returns, the other sees it (or a later one) within a
// second, while 8 goroutines read it without pause (the 200 changes take
// longer than WatchFresh).
func TestWatchNeverKeepsAStaleVersion(t *testing.T) {
	a, b := twoReplicas(t)
	watching(t, b)
	ctx := t.Context()
	var (
		stop    atomic.Bool
		wg      sync.WaitGroup
		readErr atomic.Value
	)
	for range 8 {
		wg.Go(func() {
			for !stop.Load() {
				if _, err := b.IPLists.Version(ctx, "acme"); err != nil {
					readErr.Store(err)
					return
				}
			}
		})
	}
	for i := range 200 {
		cidr := []string{"10.0.0.0/8", "192.0.2.0/24"}[i%2]
		v := replace(t, a, "acme", cidr)
		deadline := time.Now().Add(time.Second)
		for {
			got, err := b.IPLists.Version(ctx, "acme")
			if err != nil {
				t.Fatal(err)
			}
			if got >= v {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("change %d: the watched replica still reads version %d a second after %d was committed", i, got, v)
			}
			time.Sleep(time.Millisecond)
		}
	}
	// A stream of notifications does not keep the listener from proving
	// its connection: versions are still kept after it.
	if !b.Watching() {
		t.Error("not watching after a stream of changes")
	}
	stop.Store(true)
	wg.Wait()
	if err, _ := readErr.Load().(error); err != nil {
		t.Fatal(err)
	}
}

func TestWatchStopsWithItsContext(t *testing.T) {
	st := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- st.Watch(ctx) }()
	waitFor(t, "Watch to listen", st.Watching)
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("Watch = %v, want context.Canceled", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Watch did not return after its context was cancelled")
	}
	if st.Watching() {
		t.Error("Watching after Watch returned")
	}
	waitFor(t, "the listener to close", func() bool { return len(watchListeners(t, st)) == 0 })
	// Watch can run again.
	watching(t, st)
}
