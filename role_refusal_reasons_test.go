package guard_test

import (
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// RevokeRole, like GrantRole, records a refusal for a caller without
// users:manage as no_permission, and one for a role the caller could not
// grant as escalation.
func TestRoleChangeRefusalReasons(t *testing.T) {
	f := newFixture(t)
	f.userWithRoles(t, "olga@example.test", rbac.Owner)
	otto, _ := f.userWithRoles(t, "otto@example.test", rbac.Owner)
	mona, _ := f.userWithRoles(t, "mona@example.test", rbac.Manager)
	bob, _ := f.userWithRoles(t, "bob@example.test", rbac.Member)
	admin, _ := f.userWithRoles(t, "adam@example.test", rbac.Admin)
	if err := f.g.RevokeRole(f.ctx, mona, tenantID, "user:"+bob.UserID, rbac.Member); !errors.Is(err, guard.ErrForbidden) {
		t.Fatalf("RevokeRole by a manager: %v", err)
	}
	if err := f.g.RevokeRole(f.ctx, admin, tenantID, "user:"+otto.UserID, rbac.Owner); !errors.Is(err, guard.ErrForbidden) {
		t.Fatalf("RevokeRole of an owner by an admin: %v", err)
	}
	if r := reasons(f.events(t, audit.RoleRevoked)); r["no_permission"] != 1 || r["escalation"] != 1 || len(r) != 2 {
		t.Errorf("role.revoked reasons %v, want one no_permission and one escalation", r)
	}
}
