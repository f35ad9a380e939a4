package guard

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
)

// An open that does not end by itself ends at the fence's open timeout,
// for a call that waits without a deadline too: ErrUnavailable, and the
// next call opens again.
func TestFenceOpenTimeout(t *testing.T) {
	opens := 0
	f := newFence(func(ctx context.Context, _ string) (Stores, io.Closer, error) {
		opens++
		<-ctx.Done()
		return Stores{}, nil, ctx.Err()
	}, 2, func(context.Context, string) error { return nil })
	f.openTimeout = 20 * time.Millisecond
	for range 2 {
		start := time.Now()
		_, err := f.acquire(context.Background(), "acme")
		if !errors.Is(err, ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("acquire while the open hangs = %v, want ErrUnavailable (the open's deadline)", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("acquire waited %v", d)
		}
	}
	if opens != 2 {
		t.Errorf("%d opens, want 2 (each call opens again after a timed-out open)", opens)
	}
	if n := f.len(); n != 0 {
		t.Errorf("%d tenants open after failed opens", n)
	}
}

// setEntry sets m[k], panicking when m is nil: a bug of a host's opener.
func setEntry(m map[string]int, k string) { m[k] = 1 }

// An opener that panics fails the open for every call waiting for it, the
// one that started it included: each gets the same ErrUnavailable, naming
// the panic and where it happened, and none panics (it may be background
// work, with no caller to recover it). The tenant leaves the fence, and
// the next call opens it again.
func TestFenceOpenerPanicFailsEveryWaiter(t *testing.T) {
	release := make(chan struct{})
	var opens atomic.Int64
	f := newFence(func(context.Context, string) (Stores, io.Closer, error) {
		if opens.Add(1) == 1 {
			<-release
			setEntry(nil, "x")
		}
		return Stores{Users: idleUsers{}, UserUpdates: idleUpdates{}, Audit: idleAudit{}}, nil, nil
	}, 2, func(context.Context, string) error { return nil })
	defer f.closeAll(context.Background())
	const n = 3
	errs := make(chan error, n)
	for range n {
		go func() {
			defer func() {
				if p := recover(); p != nil {
					errs <- fmt.Errorf("panicked: %v", p)
				}
			}()
			d, err := f.acquire(context.Background(), "acme")
			if err == nil {
				f.release(d)
			}
			errs <- err
		}()
	}
	// Every call waits for the one open before it fails.
	for waiting := false; !waiting; {
		f.mu.Lock()
		d := f.m["acme"]
		waiting = d != nil && d.refs == n+1 // and the open's own
		f.mu.Unlock()
		time.Sleep(time.Millisecond)
	}
	close(release)
	var first error
	for range n {
		err := <-errs
		if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "opener panicked: assignment to entry in nil map") ||
			!strings.Contains(err.Error(), "setEntry") {
			t.Errorf("a call waiting for an open whose opener panicked = %v, want ErrUnavailable naming the panic and setEntry", err)
		}
		if first == nil {
			first = err
		} else if err != first {
			t.Errorf("the calls waiting for one open got different errors: %v and %v", first, err)
		}
	}
	if k := f.len(); k != 0 {
		t.Errorf("%d tenants open after an open that panicked, want 0", k)
	}
	d, err := f.acquire(context.Background(), "acme")
	if err != nil {
		t.Fatalf("a call after the opener panicked once (it works now): %v", err)
	}
	f.release(d)
	if o := opens.Load(); o != 2 {
		t.Errorf("%d opens, want 2 (the next call opens again)", o)
	}
}

// A routed store's answer for a tenant that does not exist, wrapped by the
// sso package, stays ErrTenantNotFound: not a store failure (503).
func TestSSOErrKeepsUnknownTenant(t *testing.T) {
	err := ssoErr("sso connection", fmt.Errorf("sso: store get connection: %w", ErrTenantNotFound))
	if !errors.Is(err, ErrTenantNotFound) || errors.Is(err, ErrUnavailable) {
		t.Errorf("ssoErr of an unknown tenant = %v, want ErrTenantNotFound, not ErrUnavailable", err)
	}
	if err := ssoErr("sso connection", errors.New("connection refused")); !errors.Is(err, ErrUnavailable) {
		t.Errorf("ssoErr of a store failure = %v, want ErrUnavailable", err)
	}
}

// closerFunc is an io.Closer.
type closerFunc func() error

func (c closerFunc) Close() error { return c() }

// Stand-in stores for tests of the fence alone: present, never called.
type (
	idleUsers   struct{ auth.UserStore }
	idleUpdates struct{ auth.UserUpdater }
	idleAudit   struct{ audit.Store }
)

// A call that opened a tenant returns with the fence back within its cap:
// the tenants its open pushed out are closed before it goes on, so a host
// (or the next call) never sees more open than MaxOpenTenants once calls
// have returned. Each close takes a moment here, as a pool's does.
func TestFenceOpenEvictsBeforeReturning(t *testing.T) {
	var open atomic.Int64
	f := newFence(func(context.Context, string) (Stores, io.Closer, error) {
		open.Add(1)
		return Stores{Users: idleUsers{}, UserUpdates: idleUpdates{}, Audit: idleAudit{}},
			closerFunc(func() error { time.Sleep(time.Millisecond); open.Add(-1); return nil }), nil
	}, 1, func(context.Context, string) error { return nil })
	defer f.closeAll(context.Background())
	for i := range 50 {
		d, err := f.acquire(context.Background(), fmt.Sprintf("t%d", i))
		if err != nil {
			t.Fatal(err)
		}
		n, h := f.len(), open.Load()
		f.release(d)
		if n > 1 || h > 1 {
			t.Fatalf("open %d: %d tenants in the fence, %d handles open, as the call returned; cap 1", i, n, h)
		}
	}
}
