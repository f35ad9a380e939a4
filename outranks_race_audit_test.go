package guard_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/rbac"
)

// grantOnDeactivate runs hook once, armed, in the first SetStatus to
// deactivated, before the status is written: a grant landing between
// the checks of a deactivation and its write.
type grantOnDeactivate struct {
	auth.UserUpdater
	mu   sync.Mutex
	hook func()
}

func (u *grantOnDeactivate) SetStatus(ctx context.Context, tenant, id string, s auth.Status) error {
	u.mu.Lock()
	h := u.hook
	if s == auth.StatusDeactivated {
		u.hook = nil
	}
	u.mu.Unlock()
	if h != nil && s == auth.StatusDeactivated {
		h()
	}
	return u.UserUpdater.SetStatus(ctx, tenant, id, s)
}

// Deactivate is the status write of a deactivation: the hook runs as
// in SetStatus to deactivated.
func (u *grantOnDeactivate) Deactivate(ctx context.Context, tenant, id string) (bool, error) {
	u.mu.Lock()
	h := u.hook
	u.hook = nil
	u.mu.Unlock()
	if h != nil {
		h()
	}
	return u.UserUpdater.Deactivate(ctx, tenant, id)
}

// "Acting on a more privileged user": a deactivation of a user holding a
// role the caller could not grant is refused and "nothing changes". The
// rule is checked once (loadTarget), before the status is written, and
// never again: an owner role granted to the user in between (an owner
// promoting them at that moment) leaves the admin's deactivation of an
// owner standing, reported as done. DeleteUser re-checks when it takes the
// roles (RevokeAll with the deleter's permissions); DeactivateUser,
// ApplyReview and DeactivateDormant do not.
func TestAuditOutranks_DeactivationRacesARoleGrant(t *testing.T) {
	f, mia, admin := ownerGrantedMeanwhile(t)
	err := f.g.DeactivateUser(f.ctx, admin, tenantID, mia.UserID)
	u, uerr := f.g.User(f.ctx, guard.System("test"), tenantID, mia.UserID)
	if uerr != nil {
		t.Fatal(uerr)
	}
	rs, _ := f.g.RolesOf(f.ctx, guard.System("test"), tenantID, "user:"+mia.UserID)
	if err == nil && u.Status == auth.StatusDeactivated {
		t.Errorf("an admin's DeactivateUser of a user made owner meanwhile: done (status %s, roles %v); want ErrForbidden and the owner active",
			u.Status, rs)
	}
}

// DeleteUser's doc: a role the deleter could not grant, given to the user
// meanwhile, stops the deletion when the roles are taken, "ErrForbidden,
// recorded the same way" as the refusal up front: a failed user.deleted,
// reason escalation, with Meta role naming the role (doc.go, "Acting on a
// more privileged user"). The refusal at RevokeAll goes through
// policyRefused, which records no Meta role: the record does not say which
// role stopped the deletion.
func TestAuditOutranks_DeletionStoppedByAGrantRecordsNoRole(t *testing.T) {
	f, mia, admin := ownerGrantedMeanwhile(t)
	if err := f.g.DeleteUser(f.ctx, admin, tenantID, mia.UserID); !errors.Is(err, guard.ErrForbidden) {
		t.Fatalf("an admin's DeleteUser of a user made owner meanwhile: %v, want ErrForbidden", err)
	}
	evs := f.events(t, audit.UserDeleted)
	if len(evs) != 1 || evs[0].Outcome != audit.Failure || evs[0].Reason != "escalation" || evs[0].Meta["role"] != rbac.Owner {
		t.Errorf("user.deleted events %+v; want one failure, reason escalation, Meta role owner", evs)
	}
}

// ownerGrantedMeanwhile returns a fixture with an owner (olga), a member
// (mia) and an admin, whose user store makes olga grant mia the owner role
// during the first write of a deactivated status (grantOnDeactivate).
func ownerGrantedMeanwhile(t *testing.T) (f *fixture, mia, admin guard.Principal) {
	t.Helper()
	var hooked *grantOnDeactivate
	f = newFixture(t, func(c *guard.Config) {
		hooked = &grantOnDeactivate{UserUpdater: c.Stores.UserUpdates}
		c.Stores.UserUpdates = hooked
	})
	olga, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	mia, _ = f.userWithRoles(t, "mia@example.test", rbac.Member)
	admin, _ = f.userWithRoles(t, "adam@example.test", rbac.Admin)
	hooked.mu.Lock()
	hooked.hook = func() {
		if err := f.g.GrantRole(f.ctx, olga, tenantID, "user:"+mia.UserID, rbac.Owner); err != nil {
			t.Errorf("the owner's grant: %v", err)
		}
	}
	hooked.mu.Unlock()
	return f, mia, admin
}
