package guard_test

import (
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// Granting a role to an API key needs api-keys:manage; so does changing
// what a key may do through a role it holds: a user with users:manage
// alone is refused DefineRole and DeleteRole of that role (ErrForbidden,
// recorded with reason no_permission), and the key keeps its rights.
func TestKeysRoleChangeNeedsAPIKeysManage(t *testing.T) {
	f := newFixture(t)
	sys := guard.System("test")
	if err := f.g.DefineRole(f.ctx, sys, tenantID, "usermgr", []string{"users:manage", "users:read", "campaigns:read", "campaigns:send"}); err != nil {
		t.Fatal(err)
	}
	if err := f.g.DefineRole(f.ctx, sys, tenantID, "ops", []string{"campaigns:read"}); err != nil {
		t.Fatal(err)
	}
	um, _ := f.userWithRoles(t, "uma@example.test", "usermgr")
	key := f.keyWithRole(t, "ops")
	if err := f.g.GrantRole(f.ctx, um, tenantID, "key:"+key.KeyID, "usermgr"); !errors.Is(err, guard.ErrForbidden) {
		t.Fatalf("GrantRole to a key without api-keys:manage: %v", err)
	}

	if err := f.g.DefineRole(f.ctx, um, tenantID, "ops", []string{"campaigns:read", "campaigns:send"}); !errors.Is(err, guard.ErrForbidden) {
		t.Errorf("DefineRole of the key's role without api-keys:manage = %v, want ErrForbidden", err)
	}
	if err := f.g.DeleteRole(f.ctx, um, tenantID, "ops"); !errors.Is(err, guard.ErrForbidden) {
		t.Errorf("DeleteRole of the key's role without api-keys:manage = %v, want ErrForbidden", err)
	}
	if _, err := f.g.Authorize(f.ctx, key, rbac.Campaigns, rbac.Send); !errors.Is(err, guard.ErrForbidden) {
		t.Errorf("the key's Authorize(campaigns:send) = %v, want ErrForbidden", err)
	}
	if _, err := f.g.Authorize(f.ctx, key, rbac.Campaigns, rbac.Read); err != nil {
		t.Errorf("the key's Authorize(campaigns:read) = %v, want allowed (the role stands)", err)
	}
	for _, a := range []audit.Action{audit.RoleDefined, audit.RoleDeleted} {
		var refused []string
		for _, e := range f.events(t, a) {
			if e.Outcome == audit.Failure && e.Target == "ops" {
				refused = append(refused, e.Reason)
			}
		}
		if len(refused) != 1 || refused[0] != "no_permission" {
			t.Errorf("refused %s events of ops: %q, want one, no_permission", a, refused)
		}
	}

	// The system (or anyone holding api-keys:manage) may.
	if err := f.g.DefineRole(f.ctx, sys, tenantID, "ops", []string{"campaigns:read", "campaigns:send"}); err != nil {
		t.Errorf("DefineRole by the system: %v", err)
	}
	if _, err := f.g.Authorize(f.ctx, key, rbac.Campaigns, rbac.Send); err != nil {
		t.Errorf("after the system's redefinition: the key's Authorize(campaigns:send) = %v", err)
	}
}
