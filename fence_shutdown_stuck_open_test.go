package guard_test

import (
	"context"
	"errors"
	"io"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/store/memstore"
)

// Shutdown is bounded by its context for the tenant opens in flight too:
// an opener that ignores its context (Close ends it) holds Shutdown only
// until ctx ends, and Shutdown then returns ctx's error. The stores that
// opener returns later are still closed (once the calls using them end),
// never left open; a Close waits for them as before.
func TestFencedShutdownBoundedByOpenerIgnoringContext(t *testing.T) {
	dbs := newTenantDBs(t)
	stuck := make(chan struct{})
	unstick := sync.OnceFunc(func() { close(stuck) })
	t.Cleanup(unstick)
	var armed atomic.Bool
	var inOpen atomic.Int64
	open := func(ctx context.Context, tenant string) (guard.Stores, io.Closer, error) {
		if tenant == "acme" && armed.Load() {
			inOpen.Add(1)
			<-stuck // ignores ctx
		}
		return dbs.Open(ctx, tenant)
	}
	g, err := guard.New(guard.Config{Stores: memstore.New().Stores().Shared(), AuditKey: auditKey, Hasher: fastHasher,
		OpenTenant: open, MaxOpenTenants: 1})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sys := guard.System("test")
	for _, tn := range []string{"acme", "globex"} { // acme closed for globex
		if _, err := g.CreateTenant(ctx, sys, tn, tn, guard.Policy{}); err != nil {
			t.Fatal(err)
		}
	}
	armed.Store(true)
	waiting := make(chan error, 1)
	go func() {
		_, err := g.ListUsers(ctx, sys, "acme", "", 10)
		waiting <- err
	}()
	eventually(t, "acme's open started", func() bool { return inOpen.Load() == 1 })

	sctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- g.Shutdown(sctx) }()
	select {
	case err := <-done:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Shutdown whose context ended while an opener ignores its own = %v, want context.DeadlineExceeded", err)
		}
	case <-time.After(5 * time.Second):
		unstick()
		t.Fatal("Shutdown still waiting 5s after its context ended, for an opener that ignores its context")
	}

	unstick()
	<-waiting // the open completes: its caller may use the stores, or not
	eventually(t, "the stores opened after Shutdown returned closed", func() bool { return dbs.open.Load() == 0 })
	if n := g.OpenTenants(); n != 0 {
		t.Errorf("OpenTenants after the late open = %d, want 0", n)
	}
	if err := g.Close(); err != nil {
		t.Errorf("Close after Shutdown: %v", err)
	}
}
