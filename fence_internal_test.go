package guard

import (
	"context"
	"errors"
	"fmt"
	"io"
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
	defer f.closeAll()
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
