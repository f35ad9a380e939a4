package guard_test

import (
	"slices"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// Deleting a role takes it from every holder: each loss is on record as
// a role.revoked of the holder (user or API key), Meta role and reason
// role_deleted, beside the role.deleted, so that a holder's history
// (QueryAudit by target) shows when and by whom the access went, even for
// a holder with no session to end.
func TestDeleteRoleRecordsEachHolder(t *testing.T) {
	f := newFixture(t)
	owner, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	if err := f.g.DefineRole(f.ctx, owner, tenantID, "helper", []string{"reports:read"}); err != nil {
		t.Fatal(err)
	}
	bob, _ := f.userWithRoles(t, "bob@example.test", "helper")
	carl, _ := f.userWithRoles(t, "carl@example.test", "helper", rbac.Member)
	f.userWithRoles(t, "dora@example.test", rbac.Member) // no holder
	_, key, err := f.g.CreateAPIKey(f.ctx, guard.System("test"), guard.NewAPIKey{Tenant: tenantID, Name: "reports", Roles: []string{"helper"}})
	if err != nil {
		t.Fatal(err)
	}
	before := len(f.events(t, audit.RoleRevoked))
	if err := f.g.DeleteRole(f.ctx, owner, tenantID, "helper"); err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, e := range f.events(t, audit.RoleRevoked)[before:] {
		if e.Outcome != audit.Success || e.Meta["role"] != "helper" || e.Meta["reason"] != "role_deleted" || e.Actor.ID != owner.UserID {
			t.Errorf("role.revoked %+v, want success by the deleter, Meta role helper, reason role_deleted", e)
		}
		got = append(got, e.Target)
	}
	want := []string{rbac.User(bob.UserID).String(), rbac.User(carl.UserID).String(), rbac.Key(key.ID).String()}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("role.revoked targets %v, want %v", got, want)
	}
	if n := len(f.events(t, audit.RoleDeleted)); n != 1 {
		t.Errorf("%d role.deleted events, want 1", n)
	}
}
