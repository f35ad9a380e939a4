package guard_test

// Tests of the fixes of the lifecycle audit (lifecycle_audit_test.go)
// beyond the audit's own: the other paths of each fix.

import (
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/rbac"
)

// A reactivation undone because the user was given, meanwhile, a role the
// caller could not grant (outranksStill) leaves no way in either: the
// session of a sign-in that landed while the status said active ends with
// the undo.
func TestUndoneReactivationEndsSessionOnEscalation(t *testing.T) {
	eachStore(t, func(t *testing.T, st guard.Stores) {
		up := &statusHook{}
		f := newLifecycleFixture(t, st, func(c *guard.Config) {
			up.UserUpdater = c.Stores.UserUpdates
			c.Stores.UserUpdates = up
		})
		olga, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
		admin, _ := f.userWithRoles(t, "adam@example.test", rbac.Admin)
		mia, _ := f.userWithRoles(t, "mia@example.test", rbac.Member)
		if err := f.g.DeactivateUser(f.ctx, olga, tenantID, mia.UserID); err != nil {
			t.Fatal(err)
		}
		var token string
		up.arm(auth.StatusActive, func() {
			// The owner makes mia an owner, and mia signs in, while the
			// admin's reactivation has written the status.
			if err := f.g.GrantRole(f.ctx, olga, tenantID, "user:"+mia.UserID, rbac.Owner); err != nil {
				t.Errorf("the owner's grant: %v", err)
			}
			res, err := f.login("mia@example.test", ownerPW)
			if err != nil || res.Token == "" {
				t.Errorf("sign-in during the reactivation: %+v, %v", res, err)
			}
			token = res.Token
		})
		err := f.g.ReactivateUser(f.ctx, admin, tenantID, mia.UserID)
		if !errors.Is(err, guard.ErrForbidden) {
			t.Fatalf("ReactivateUser of a user made owner meanwhile: %v, want ErrForbidden", err)
		}
		if u, err := f.g.User(f.ctx, guard.System("test"), tenantID, mia.UserID); err != nil || u.Status != auth.StatusDeactivated {
			t.Fatalf("mia after the undone reactivation: %v, %v; want deactivated", u.Status, err)
		}
		if _, err := f.g.Authenticate(f.ctx, token); err == nil {
			t.Error("mia is deactivated (the reactivation was undone) but her session opened meanwhile authenticates")
		}
	})
}
