package guard_test

import (
	"testing"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// DeleteRole ends the sessions of the role's holders; a definition that
// changes nothing ends none.
func TestDeleteRoleEndsHoldersSessions(t *testing.T) {
	f := newFixture(t)
	owner, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	if err := f.g.DefineRole(f.ctx, owner, tenantID, "helper", []string{"reports:read", "contacts:read"}); err != nil {
		t.Fatal(err)
	}
	_, tok := f.userWithRoles(t, "bob@example.test", "helper")
	if err := f.g.DefineRole(f.ctx, owner, tenantID, "helper", []string{"contacts:read", "reports:read"}); err != nil {
		t.Fatal(err)
	}
	if code := serve(f.g, tok, client, rbac.Contacts, rbac.Read); code != 204 {
		t.Fatalf("bob reading contacts after an unchanged definition: %d, want 204", code)
	}
	if err := f.g.DeleteRole(f.ctx, owner, tenantID, "helper"); err != nil {
		t.Fatal(err)
	}
	if code := serve(f.g, tok, client, rbac.Reports, rbac.Read); code != 401 {
		t.Errorf("bob's session issued before his role was deleted: %d, want 401", code)
	}
	evs := f.events(t, audit.SessionRevoked)
	if len(evs) != 1 || evs[0].Meta["reason"] != "role_changed" {
		t.Errorf("session.revoked events = %+v, want one with reason role_changed", evs)
	}
}

// Granting a role already held changes nothing: no role.granted is
// recorded for it, and the holder's session goes on.
func TestGrantHeldRoleNotRecorded(t *testing.T) {
	f := newFixture(t)
	admin, _ := f.userWithRoles(t, "adam@example.test", rbac.Admin)
	bob, bobTok := f.userWithRoles(t, "bob@example.test", rbac.Member)
	before := len(f.events(t, audit.RoleGranted))
	if err := f.g.GrantRole(f.ctx, admin, tenantID, "user:"+bob.UserID, rbac.Member); err != nil {
		t.Fatal(err)
	}
	if n := len(f.events(t, audit.RoleGranted)); n != before {
		t.Errorf("granting a role held recorded %d role.granted events", n-before)
	}
	if _, err := f.g.Authenticate(f.ctx, bobTok); err != nil {
		t.Errorf("Bob's session after a grant of a role he held: %v", err)
	}
}
