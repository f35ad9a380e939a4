package guard_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/store/memstore"
)

// gatedDBs plays a host's OpenTenant over tenantDBs (fence_test.go): an
// open of a gated tenant waits for its gate (or its context), and while
// failing is set every third open fails. Opens in the opener are counted.
type gatedDBs struct {
	*tenantDBs
	mu       sync.Mutex
	gates    map[string]chan struct{}
	failing  atomic.Bool
	calls    atomic.Int64
	inflight atomic.Int64
}

func newGatedDBs(t testing.TB) *gatedDBs {
	return &gatedDBs{tenantDBs: newTenantDBs(t), gates: map[string]chan struct{}{}}
}

func (g *gatedDBs) gate(tenant string, c chan struct{}) {
	g.mu.Lock()
	g.gates[tenant] = c
	g.mu.Unlock()
}

func (g *gatedDBs) Open(ctx context.Context, tenant string) (guard.Stores, io.Closer, error) {
	g.inflight.Add(1)
	defer g.inflight.Add(-1)
	g.mu.Lock()
	c := g.gates[tenant]
	g.mu.Unlock()
	if c != nil {
		select {
		case <-c:
		case <-ctx.Done():
			return guard.Stores{}, nil, ctx.Err()
		}
	}
	if g.calls.Add(1)%3 == 0 && g.failing.Load() {
		return guard.Stores{}, nil, errors.New("tenant database refused the connection")
	}
	return g.tenantDBs.Open(ctx, tenant)
}

func newGatedFence(t *testing.T, maxOpen int, tenants ...string) (*guard.Guard, *gatedDBs) {
	t.Helper()
	dbs := newGatedDBs(t)
	g, err := guard.New(guard.Config{Stores: memstore.New().Stores().Shared(), AuditKey: auditKey, Hasher: fastHasher,
		OpenTenant: dbs.Open, MaxOpenTenants: maxOpen})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	for _, tn := range tenants {
		if _, err := g.CreateTenant(context.Background(), guard.System("test"), tn, tn, guard.Policy{}); err != nil {
			t.Fatal(err)
		}
	}
	return g, dbs
}

// eventually fails the test unless ok holds within five seconds.
func eventually(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for end := time.Now().Add(5 * time.Second); !ok(); {
		if time.Now().After(end) {
			t.Fatalf("after 5s: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// quick runs call and returns its error, failing the test if it has not
// returned within d (then it opens gate, so that the call ends).
func quick(t *testing.T, gate chan struct{}, d time.Duration, call func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- call() }()
	select {
	case err := <-done:
		return err
	case <-time.After(d):
		close(gate)
		t.Fatalf("calls with short deadlines still waiting after %v for the tenant's open", d)
		return nil
	}
}

// An open that ends after every call waiting for it gave up is kept for
// the next call (not opened again), or closed if the tenant was evicted
// meanwhile: nothing is left open that the fence does not know of.
func TestFencedOpenOutlivesItsCallers(t *testing.T) {
	g, dbs := newGatedFence(t, 1, "acme", "globex", "initech")
	ctx := context.Background()
	sys := guard.System("test")
	list := func(tenant string, d time.Duration) error {
		c, cancel := context.WithTimeout(ctx, d)
		defer cancel()
		_, err := g.ListUsers(c, sys, tenant, "", 10)
		return err
	}

	// acme's open hangs; its caller leaves at its deadline.
	gate := make(chan struct{})
	dbs.gate("acme", gate)
	if err := quick(t, gate, 2*time.Second, func() error { return list("acme", 50*time.Millisecond) }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ListUsers while acme's open hangs = %v, want the deadline", err)
	}
	// It ends: the stores are kept, the next call finds them.
	close(gate)
	eventually(t, "acme's late open kept, the rest closed", func() bool {
		return dbs.inflight.Load() == 0 && g.OpenTenants() == 1 && dbs.open.Load() == 1
	})
	dbs.mu.Lock()
	before := dbs.opens["acme"]
	dbs.mu.Unlock()
	if err := list("acme", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	dbs.mu.Lock()
	after := dbs.opens["acme"]
	dbs.mu.Unlock()
	if after != before {
		t.Errorf("acme opened again (%d opens, %d before) though its late open was kept", after, before)
	}

	// globex's open hangs, its caller leaves, and initech evicts it while
	// it is still opening: once it ends it is closed, not kept.
	gate = make(chan struct{})
	dbs.gate("globex", gate)
	if err := quick(t, gate, 2*time.Second, func() error { return list("globex", 50*time.Millisecond) }); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("ListUsers while globex's open hangs = %v, want the deadline", err)
	}
	if err := list("initech", 5*time.Second); err != nil {
		t.Fatal(err)
	}
	close(gate)
	eventually(t, "globex's late open closed, initech kept", func() bool {
		return dbs.inflight.Load() == 0 && g.OpenTenants() == 1 && dbs.open.Load() == 1
	})
	if n := dbs.misuse.Load(); n != 0 {
		t.Errorf("%d calls on closed tenant stores", n)
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if n := dbs.open.Load(); n != 0 {
		t.Errorf("%d tenant handles open after Close", n)
	}
}

// Many goroutines over more tenants than the cap, some opens hanging,
// some failing, many calls giving up at short deadlines (run with -race;
// reads only: a call that undoes a write waits for the open without the
// caller's deadline, see TenantOpener):
// no call waits past its deadline for long, no handle is used closed or
// left open unknown to the fence, and no goroutine is left behind.
func TestFencedOpensUnderDeadlines(t *testing.T) {
	const tenants, maxOpen, workers, rounds = 8, 3, 24, 20
	names := make([]string, tenants)
	for i := range names {
		names[i] = fmt.Sprintf("t%d", i)
	}
	g, dbs := newGatedFence(t, maxOpen, names...)
	baseline := runtime.NumGoroutine()
	ctx := context.Background()
	sys := guard.System("test")

	hang := make(chan struct{})
	for i := 0; i < tenants; i += 3 {
		dbs.gate(names[i], hang)
	}
	dbs.failing.Store(true)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(uint64(w), 1))
			for i := range rounds {
				tn := names[r.IntN(tenants)]
				d := time.Duration(1+r.IntN(20)) * time.Millisecond
				c, cancel := context.WithTimeout(ctx, d)
				start := time.Now()
				var err error
				if i%2 == 0 {
					_, err = g.ListUsers(c, sys, tn, "", 10)
				} else if _, err = g.User(c, sys, tn, fmt.Sprintf("u%d", i)); errors.Is(err, guard.ErrUserNotFound) {
					err = nil
				}
				cancel()
				if took := time.Since(start); took > d+2*time.Second {
					t.Errorf("a call with a %v deadline took %v", d, took)
				}
				if err != nil && !errors.Is(err, guard.ErrUnavailable) && !errors.Is(err, context.DeadlineExceeded) {
					t.Errorf("%s: %v", tn, err)
				}
			}
		}()
	}
	if err := quick(t, hang, 30*time.Second, func() error { wg.Wait(); return nil }); err != nil {
		t.Fatal(err)
	}
	dbs.failing.Store(false)
	close(hang)
	eventually(t, "the opens ended and the fence settled within its cap", func() bool {
		n := g.OpenTenants()
		return dbs.inflight.Load() == 0 && n <= maxOpen && int64(n) == dbs.open.Load()
	})
	if n := dbs.misuse.Load(); n != 0 {
		t.Errorf("%d calls on closed tenant stores", n)
	}
	for _, tn := range names {
		if _, err := g.ListUsers(ctx, sys, tn, "", 10); err != nil {
			t.Errorf("ListUsers(%s) once the opens work: %v", tn, err)
		}
	}
	if err := g.Close(); err != nil {
		t.Fatal(err)
	}
	if n := dbs.open.Load(); n != 0 {
		t.Errorf("%d tenant handles open after Close", n)
	}
	eventually(t, "no goroutine left behind", func() bool { return runtime.NumGoroutine() <= baseline })
}

// Close ends the opens in flight and waits for them; after it, a call of
// a ring-fenced tenant opens nothing and fails with ErrUnavailable, and
// nothing is left open.
func TestFencedUseAfterClose(t *testing.T) {
	g, dbs := newGatedFence(t, 1, "acme", "globex") // acme closed for globex
	ctx := context.Background()
	sys := guard.System("test")
	gate := make(chan struct{})
	dbs.gate("acme", gate)
	waiting := make(chan error, 1)
	go func() {
		_, err := g.ListUsers(ctx, sys, "acme", "", 10)
		waiting <- err
	}()
	eventually(t, "acme's open started", func() bool { return dbs.inflight.Load() == 1 })
	if err := quick(t, gate, 2*time.Second, g.Close); err != nil {
		t.Fatal(err)
	}
	if n := dbs.inflight.Load(); n != 0 {
		t.Errorf("%d opens still in the opener after Close", n)
	}
	if err := <-waiting; !errors.Is(err, guard.ErrUnavailable) {
		t.Errorf("a call waiting for an open that Close ended = %v, want ErrUnavailable", err)
	}
	calls := dbs.calls.Load()
	dbs.gate("acme", nil)
	for _, tn := range []string{"acme", "globex"} {
		if _, err := g.ListUsers(ctx, sys, tn, "", 10); !errors.Is(err, guard.ErrUnavailable) {
			t.Errorf("ListUsers(%s) after Close = %v, want ErrUnavailable", tn, err)
		}
	}
	if n := dbs.calls.Load() - calls; n != 0 {
		t.Errorf("%d opens after Close", n)
	}
	if n := dbs.open.Load(); n != 0 {
		t.Errorf("%d tenant handles open after Close", n)
	}
	if n := g.OpenTenants(); n != 0 {
		t.Errorf("OpenTenants after Close = %d", n)
	}
	if err := g.Close(); err != nil {
		t.Errorf("Close again: %v", err)
	}
}
