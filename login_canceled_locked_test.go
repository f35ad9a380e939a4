package guard_test

import (
	"context"
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/store/memstore"
)

// A login whose context ends while its dummy hash waits for a hashing
// slot returns the context's error and is recorded with reason canceled,
// on a locked key too (the answer a locked key gets, whether the name
// exists or not).
func TestCanceledLoginOnLockedKey(t *testing.T) {
	var cancel context.CancelFunc
	f := newFixture(t, func(c *guard.Config) {
		c.Stores.Throttle = cancelAfterReserve{Throttle: memstore.NewThrottle(0), cancel: &cancel}
	})
	for range guard.DefaultAccountLimit.Max {
		f.login("nobody@example.com", "a wrong guess")
	}
	before := len(f.events(t, audit.LoginFailed))
	ctx, c := context.WithCancel(f.ctx)
	cancel = c
	_, err := f.g.Login(ctx, guard.LoginRequest{Tenant: tenantID, Email: "nobody@example.com", Password: "a wrong guess",
		IP: "198.51.100.7", UserAgent: "test"})
	cancel = nil
	c()
	evs := f.events(t, audit.LoginFailed)[before:]
	if !errors.Is(err, context.Canceled) || len(evs) != 1 || evs[0].Reason != guard.ReasonCanceled {
		reason := ""
		if len(evs) > 0 {
			reason = evs[0].Reason
		}
		t.Errorf("cancelled login on a locked name: %v, recorded %d (reason %q); want context.Canceled, one login.failed with reason %q",
			err, len(evs), reason, guard.ReasonCanceled)
	}
}
