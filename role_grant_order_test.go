package guard_test

import (
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// A caller with no right to change grants at all (a member, without
// users:manage) is refused for the permission (ErrForbidden, a failed
// role.granted with reason no_permission), whoever the grantee: the
// permission is checked before the grantee is looked up, so that a member
// trying to make someone an owner learns nothing of the tenant's users or
// keys (ErrUserNotFound, or key_revoked / key_expired for an API key) and
// the attempt is on record for what it is, not as unknown_user.
func TestGrantRoleChecksPermissionFirst(t *testing.T) {
	f := newFixture(t)
	f.userWithRoles(t, "olga@example.test", rbac.Owner)
	mel, _ := f.userWithRoles(t, "mel@example.test", rbac.Member)
	const ghost = "user:0123456789abcdef0123456789abcdef"
	err := f.g.GrantRole(f.ctx, mel, tenantID, ghost, rbac.Owner)
	if !errors.Is(err, guard.ErrForbidden) {
		t.Errorf("GrantRole(owner) by a member to an unknown user = %v; want ErrForbidden", err)
	}
	n := 0
	for _, e := range f.events(t, audit.RoleGranted) {
		if e.Target != ghost {
			continue
		}
		n++
		if e.Outcome != audit.Failure || e.Reason != "no_permission" {
			t.Errorf("role.granted by a member recorded as %s, reason %q; want a failure, no_permission", e.Outcome, e.Reason)
		}
	}
	if n != 1 {
		t.Errorf("%d role.granted events for the member's attempt; want 1", n)
	}
}

// RevokeRole checks the permission before the break-glass rule: a member
// taking the owner role from the break-glass owner is refused for the
// permission (no_permission), and does not learn from ErrBreakGlassUser
// who the break-glass owner is.
func TestRevokeRoleChecksPermissionBeforeBreakGlass(t *testing.T) {
	f := newFixture(t)
	olga, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	mel, _ := f.userWithRoles(t, "mel@example.test", rbac.Member)
	tn, err := f.g.Tenant(f.ctx, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	// Straight to the store: SetPolicy would want an IdP connection.
	if _, err := f.mem.Stores().Tenants.SetPolicy(f.ctx, tenantID, guard.Policy{RequireSSO: true, BreakGlassUser: olga.UserID}, tn.Version); err != nil {
		t.Fatal(err)
	}
	err = f.g.RevokeRole(f.ctx, mel, tenantID, "user:"+olga.UserID, rbac.Owner)
	if !errors.Is(err, guard.ErrForbidden) || errors.Is(err, guard.ErrBreakGlassUser) {
		t.Errorf("RevokeRole(owner) of the break-glass owner by a member = %v; want ErrForbidden", err)
	}
	if r := reasons(f.events(t, audit.RoleRevoked)); r["no_permission"] != 1 || len(r) != 1 {
		t.Errorf("role.revoked reasons %v; want one no_permission", r)
	}
}

// A malformed role name is bad input: GrantRole answers with the typed
// *rbac.InputError and records nothing, whoever the grantee (recorded
// with an unknown grantee, the name, not valid UTF-8, made the audit log
// refuse the event and the caller get ErrUnavailable, as if a store were
// down).
func TestGrantRoleMalformedRoleIsBadInput(t *testing.T) {
	f := newFixture(t)
	admin, _ := f.userWithRoles(t, "adam@example.test", rbac.Admin)
	const ghost = "user:0123456789abcdef0123456789abcdef"
	err := f.g.GrantRole(f.ctx, admin, tenantID, ghost, "\xff")
	var ie *rbac.InputError
	if errors.Is(err, guard.ErrUnavailable) || !errors.As(err, &ie) {
		t.Errorf("GrantRole of a role name that is not valid UTF-8 = %v; want an *rbac.InputError", err)
	}
	for _, e := range f.events(t, audit.RoleGranted) {
		if e.Target == ghost {
			t.Errorf("GrantRole of a malformed role name recorded %+v; want nothing", e)
		}
	}
}
