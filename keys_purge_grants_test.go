package guard_test

import (
	"testing"
	"time"

	guard "github.com/guardhq/guard"
)

// A key that expires is never revoked, so it keeps its roles until
// Maintain purges it; the purge takes its grants too. Otherwise they
// stayed in the tenant's policy, held by a subject that no longer exists:
// RolesOf listed them, RevokeAPIKey could no longer take them (the key is
// unknown), and a role such a grant held could no longer be deleted or
// redefined by a people administrator (users:manage without
// api-keys:manage), since rbac counts every key holding it.
func TestPurgedKeyLeavesNoGrants(t *testing.T) {
	f := newFixture(t)
	sys := guard.System("test")
	if err := f.g.DefineRole(f.ctx, sys, tenantID, "exporter", []string{"reports:read"}); err != nil {
		t.Fatal(err)
	}
	if err := f.g.DefineRole(f.ctx, sys, tenantID, "people-admin", []string{"users:read", "users:manage", "reports:read"}); err != nil {
		t.Fatal(err)
	}
	_, k, err := f.g.CreateAPIKey(f.ctx, sys, guard.NewAPIKey{Tenant: tenantID, Name: "quarterly export",
		ExpiresAt: f.clock.Now().Add(time.Hour), Roles: []string{"exporter"}})
	if err != nil {
		t.Fatal(err)
	}
	// A live key with the same role keeps it.
	_, live, err := f.g.CreateAPIKey(f.ctx, sys, guard.NewAPIKey{Tenant: tenantID, Name: "nightly export",
		Roles: []string{"exporter"}})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(guard.DefaultAPIKeyRetention + 2*24*time.Hour)
	rep, err := f.g.Maintain(f.ctx, guard.System("cron"), guard.MaintainOptions{})
	if err != nil {
		t.Fatalf("Maintain: %v", err)
	}
	if n := rep.KeysPurged[tenantID]; n != 1 {
		t.Fatalf("KeysPurged = %d, want 1 (the key expired 92 days ago)", n)
	}
	if ids := f.keyIDsOf(t); ids[k.ID] || !ids[live.ID] {
		t.Fatalf("keys after the purge: %v, want %s gone and %s kept", ids, k.ID, live.ID)
	}
	roles, err := f.g.RolesOf(f.ctx, sys, tenantID, "key:"+k.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(roles) != 0 {
		t.Errorf("purged key %s still holds roles %v", k.ID, roles)
	}
	if roles, err := f.g.RolesOf(f.ctx, sys, tenantID, "key:"+live.ID); err != nil || len(roles) != 1 {
		t.Errorf("live key's roles after the purge: %v, %v; want [exporter]", roles, err)
	}
	if err := f.g.RevokeAPIKey(f.ctx, sys, tenantID, live.ID); err != nil {
		t.Fatal(err)
	}
	// A people administrator may now delete a role only people hold.
	pa, _ := f.userWithRoles(t, "pat@example.test", "people-admin")
	if err := f.g.DeleteRole(f.ctx, pa, tenantID, "exporter"); err != nil {
		t.Errorf("DeleteRole(exporter) by a people admin, its only past holders keys revoked or purged: %v, want nil", err)
	}
}
