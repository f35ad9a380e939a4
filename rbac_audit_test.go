package guard_test

import (
	"testing"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// RevokeRole of a role the user does not hold "changes nothing" (its
// doc), yet it is recorded as a successful role.revoked naming the user
// and the role: the tenant's log then says an admin took a role from a
// user who never had it, which an auditor reading the history of the
// user's roles takes as a real change.
func TestAuditRbac_RevokeNotHeldNotRecordedAsDone(t *testing.T) {
	f := newFixture(t)
	admin, _ := f.userWithRoles(t, "adam@example.test", rbac.Admin)
	bob, _ := f.userWithRoles(t, "bob@example.test", rbac.Member)
	if err := f.g.RevokeRole(f.ctx, admin, tenantID, "user:"+bob.UserID, rbac.Manager); err != nil {
		t.Fatal(err)
	}
	for _, e := range f.events(t, audit.RoleRevoked) {
		if e.Outcome == audit.Success && e.Target == "user:"+bob.UserID && e.Meta["role"] == rbac.Manager {
			t.Errorf("role.revoked recorded as done for a role Bob never held: %+v", e)
		}
	}
}

// GrantRole checks that a user grantee exists (ErrUserNotFound, reason
// unknown_user) but not an API key: a grant to "key:<an ID the tenant
// has no key with>" succeeds, is recorded as a successful role.granted,
// and stays in the policy, where RolesOf reports it and AdminWarning
// lists the phantom key among the administrators it excluded.
func TestAuditRbac_GrantToUnknownKeyRefused(t *testing.T) {
	f := newFixture(t)
	f.userWithRoles(t, "olga@example.test", rbac.Owner)
	admin, _ := f.userWithRoles(t, "adam@example.test", rbac.Admin)
	const phantom = "key:0123456789abcdef"
	if err := f.g.GrantRole(f.ctx, admin, tenantID, phantom, rbac.Admin); err == nil {
		t.Errorf("GrantRole(admin) to an API key the tenant does not have succeeded; want it refused")
	}
	roles, err := f.g.RolesOf(f.ctx, admin, tenantID, phantom)
	if err != nil {
		t.Fatal(err)
	}
	if len(roles) != 0 {
		t.Errorf("the key the tenant does not have holds %v; want no grant left", roles)
	}
	for _, e := range f.events(t, audit.RoleGranted) {
		if e.Outcome == audit.Success && e.Target == phantom {
			t.Errorf("role.granted recorded as done for a key that does not exist: %+v", e)
		}
	}
}
