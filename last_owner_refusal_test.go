package guard_test

import (
	"errors"
	"testing"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// RevokeRole refuses to take the owner role from the tenant's last owner
// (rbac.ErrLastOwner), and the refusal is on record as a failed
// role.revoked with reason last_owner, as it is when the other owners
// are deactivated (keepOwner) and as DeactivateUser and ApplyReview
// record theirs: every refusal of an admin action is.
func TestRevokeRoleLastOwnerRefusalRecorded(t *testing.T) {
	f := newFixture(t)
	olga, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	err := f.g.RevokeRole(f.ctx, olga, tenantID, "user:"+olga.UserID, rbac.Owner)
	if !errors.Is(err, rbac.ErrLastOwner) {
		t.Fatalf("RevokeRole(owner) of the last owner = %v, want rbac.ErrLastOwner", err)
	}
	n := 0
	for _, e := range f.events(t, audit.RoleRevoked) {
		if e.Outcome == audit.Failure && e.Reason == "last_owner" && e.Target == "user:"+olga.UserID {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d role.revoked refusals with reason last_owner; want 1", n)
	}
}
