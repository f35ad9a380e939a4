package guard_test

// Tests of the fixes of the lifecycle audit (lifecycle_audit_test.go)
// beyond the audit's own: the other paths of each fix.

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
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

// readHook runs hook once, armed, right after the first Users.User read
// of the user it names: what lands between a read of the user and the
// next step of the call that read it.
type readHook struct {
	auth.UserStore
	id   atomic.Pointer[string]
	hook func()
}

func (u *readHook) User(ctx context.Context, tenant, id string) (auth.User, error) {
	got, err := u.UserStore.User(ctx, tenant, id)
	if p := u.id.Load(); p != nil && *p == id && u.id.CompareAndSwap(p, nil) {
		u.hook()
	}
	return got, err
}

// A deletion that completes between GrantRole's look-up of the user and
// the write of the grant: the look-up after the write finds the user
// gone, and the grant is taken back, refused (ErrUserNotFound) and
// recorded as refused (reason unknown_user).
func TestGrantRoleRacingDeletionTakenBack(t *testing.T) {
	admin := guard.System("admin")
	eachStore(t, func(t *testing.T, st guard.Stores) {
		users := &readHook{}
		f := newLifecycleFixture(t, st, func(c *guard.Config) {
			users.UserStore = c.Stores.Users
			c.Stores.Users = users
		})
		bob := f.createUser(t, "bob@example.test", ownerPW)
		users.hook = func() {
			if err := f.g.DeleteUser(f.ctx, admin, tenantID, bob.ID); err != nil {
				t.Errorf("DeleteUser racing the grant: %v", err)
			}
		}
		users.id.Store(&bob.ID)
		if err := f.g.GrantRole(f.ctx, admin, tenantID, "user:"+bob.ID, rbac.Admin); !errors.Is(err, guard.ErrUserNotFound) {
			t.Errorf("GrantRole racing the deletion: %v, want ErrUserNotFound", err)
		}
		if users.id.Load() != nil {
			t.Fatal("the deletion did not run")
		}
		if rs, err := f.g.RolesOf(f.ctx, admin, tenantID, "user:"+bob.ID); err != nil || len(rs) != 0 {
			t.Errorf("roles of the deleted user: %v, %v; want none", rs, err)
		}
		evs := f.events(t, audit.RoleGranted)
		if n := len(evs); n == 0 || evs[n-1].Outcome != audit.Failure || evs[n-1].Reason != guard.ReasonUnknownUser ||
			evs[n-1].Meta["role"] != rbac.Admin || evs[n-1].Target != "user:"+bob.ID {
			t.Errorf("role.granted events %+v; want the last refused, reason unknown_user, Meta role admin", evs)
		}
	})
}
