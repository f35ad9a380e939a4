package guard_test

import (
	"context"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
)

// readHookUsers runs hook once, right after the next User read.
type readHookUsers struct {
	auth.UserStore
	hook func()
}

func (r *readHookUsers) User(ctx context.Context, tenant, id string) (auth.User, error) {
	u, err := r.UserStore.User(ctx, tenant, id)
	if h := r.hook; h != nil {
		r.hook = nil
		h()
	}
	return u, err
}

// TestReactivateRacingDeactivateLeavesUserDeactivated: since 17258be
// ReactivateUser decides "already active, nothing to write" from the user
// loadTarget read. A DeactivateUser that lands after that read (two admins,
// or a dormancy run) leaves the user deactivated, yet ReactivateUser
// returns nil and records a successful user.reactivated after the
// user.deactivated: the log and the caller say active, the store says
// deactivated. Before, the status was written (last writer wins, in the
// log's order). The no-op should be a conditional write (or re-read the
// status after recording) rather than trust the stale read.
func TestReactivateRacingDeactivateLeavesUserDeactivated(t *testing.T) {
	var hu *readHookUsers
	f := newFixture(t, func(c *guard.Config) {
		hu = &readHookUsers{UserStore: c.Stores.Users}
		c.Stores.Users = hu
	})
	sys := guard.System("test")
	ada := f.createUser(t, "ada@example.test", ownerPW)
	hu.hook = func() {
		if err := f.g.DeactivateUser(f.ctx, sys, tenantID, ada.ID); err != nil {
			t.Errorf("DeactivateUser: %v", err)
		}
	}
	err := f.g.ReactivateUser(f.ctx, sys, tenantID, ada.ID)
	u, uerr := f.g.User(f.ctx, sys, tenantID, ada.ID)
	if uerr != nil {
		t.Fatal(uerr)
	}
	if err == nil && u.Status != auth.StatusActive {
		t.Errorf("ReactivateUser returned nil (user.reactivated events %d) but the user is %q: a deactivation after its read was taken for 'already active'",
			len(f.events(t, audit.UserReactivated)), u.Status)
	}
}
