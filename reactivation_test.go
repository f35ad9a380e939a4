package guard_test

import (
	"errors"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
)

// A reactivation counts as activity for the dormancy rule: the access
// review's row of a reactivated user has LastActive at the reactivation
// and is not dormant until DormantAfter has passed since, and then is
// again. A reactivation that does not stand (not on record) keeps the
// time the user had.
func TestReactivationCountsAsActivity(t *testing.T) {
	admin := guard.System("admin")
	eachStore(t, func(t *testing.T, st guard.Stores) {
		au := &switchedAudit{}
		f := newLifecycleFixture(t, st, func(c *guard.Config) {
			au.Store = c.Stores.Audit
			c.Stores.Audit = au
		})
		ada := f.createUser(t, adaEmail, ownerPW)
		row := func() guard.UserAccess {
			t.Helper()
			rows, err := f.g.ListUserAccess(f.ctx, admin, tenantID, "", 10)
			if err != nil || len(rows) != 1 {
				t.Fatalf("ListUserAccess = %d rows, %v", len(rows), err)
			}
			return rows[0]
		}
		f.clock.Advance(31 * 24 * time.Hour) // past the default DormantAfter (30 days)
		if r := row(); !r.Dormant || !r.ReactivatedAt.IsZero() {
			t.Fatalf("row before the reactivation: dormant %v, reactivated %v; want dormant, never", r.Dormant, r.ReactivatedAt)
		}
		if err := f.g.DeactivateUser(f.ctx, admin, tenantID, ada.ID); err != nil {
			t.Fatal(err)
		}
		// Not on record: the reactivation does not stand, nor its time.
		au.fail.Store(true)
		err := f.g.ReactivateUser(f.ctx, admin, tenantID, ada.ID)
		au.fail.Store(false)
		if !errors.Is(err, guard.ErrUnavailable) {
			t.Fatalf("ReactivateUser with the record failing: %v, want ErrUnavailable", err)
		}
		if u, err := f.g.User(f.ctx, admin, tenantID, ada.ID); err != nil || !u.ReactivatedAt.IsZero() {
			t.Errorf("after a reactivation that did not stand: ReactivatedAt %v, %v; want zero", u.ReactivatedAt, err)
		}
		f.clock.Advance(time.Hour)
		at := f.clock.Now()
		if err := f.g.ReactivateUser(f.ctx, admin, tenantID, ada.ID); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(29 * 24 * time.Hour)
		if r := row(); r.Dormant || !r.LastActive.Equal(at) || !r.ReactivatedAt.Equal(at) {
			t.Errorf("row 29 days after the reactivation: dormant %v, last active %v, reactivated %v; want not dormant, both %v",
				r.Dormant, r.LastActive, r.ReactivatedAt, at)
		}
		f.clock.Advance(24 * time.Hour)
		if r := row(); !r.Dormant {
			t.Errorf("row 30 days after the reactivation: not dormant; want dormant (last active %v)", r.LastActive)
		}
	})
}
