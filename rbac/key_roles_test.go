package rbac_test

import (
	"errors"
	"testing"

	"github.com/guardhq/guard/rbac"
)

// A key's rights are given only by one who may grant to keys
// (api-keys:manage): redefining, deleting or undoing the definition of a
// role a key holds needs it too, or a user holding users:manage alone
// could widen a key through its role.
func TestChangingAKeysRoleNeedsAPIKeysManage(t *testing.T) {
	e := newEnforcer(t, nil)
	uma, kim := rbac.User("uma"), rbac.User("kim")
	key := rbac.Key("ci")
	define(t, e, "acme", "usermgr", rbac.P(rbac.Users, rbac.Manage), rbac.P(rbac.Campaigns, rbac.Read), rbac.P(rbac.Campaigns, rbac.Send))
	define(t, e, "acme", "keymgr", rbac.P(rbac.Users, rbac.Manage), rbac.P(rbac.APIKeys, rbac.Manage),
		rbac.P(rbac.Campaigns, rbac.Read), rbac.P(rbac.Campaigns, rbac.Send))
	define(t, e, "acme", "ops", rbac.P(rbac.Campaigns, rbac.Read))
	define(t, e, "acme", "staff", rbac.P(rbac.Campaigns, rbac.Read))
	grant(t, e, "acme", uma, "usermgr")
	grant(t, e, "acme", kim, "keymgr")
	grant(t, e, "acme", key, "ops")
	grant(t, e, "acme", rbac.User("dan"), "staff")
	um, km := perms(t, e, "acme", uma), perms(t, e, "acme", kim)
	widened := []rbac.Permission{rbac.P(rbac.Campaigns, rbac.Read), rbac.P(rbac.Campaigns, rbac.Send)}

	// Without api-keys:manage: refused, and the key keeps what it had.
	if _, err := e.DefineRole(ctx, um, "acme", "ops", widened); !errors.Is(err, rbac.ErrDenied) {
		t.Errorf("DefineRole of a key's role without api-keys:manage = %v, want ErrDenied", err)
	}
	if _, err := e.DeleteRole(ctx, um, "acme", "ops"); !errors.Is(err, rbac.ErrDenied) {
		t.Errorf("DeleteRole of a key's role without api-keys:manage = %v, want ErrDenied", err)
	}
	if perms(t, e, "acme", key).Has(rbac.Campaigns, rbac.Send) || !perms(t, e, "acme", key).Has(rbac.Campaigns, rbac.Read) {
		t.Errorf("the key's permissions changed: %v", perms(t, e, "acme", key).List())
	}
	// A role only users hold is theirs to change, and one that changes
	// nothing changes no key.
	if _, err := e.DefineRole(ctx, um, "acme", "staff", widened); err != nil {
		t.Errorf("DefineRole of a users-only role: %v", err)
	}
	if _, err := e.DefineRole(ctx, um, "acme", "ops", []rbac.Permission{rbac.P(rbac.Campaigns, rbac.Read)}); err != nil {
		t.Errorf("DefineRole of a key's role that changes nothing: %v", err)
	}

	// With api-keys:manage: allowed, undone, deleted.
	red, err := e.DefineRole(ctx, km, "acme", "ops", widened)
	if err != nil {
		t.Fatalf("DefineRole of a key's role with api-keys:manage: %v", err)
	}
	if !perms(t, e, "acme", key).Has(rbac.Campaigns, rbac.Send) {
		t.Errorf("the key lacks campaigns:send after the redefinition")
	}
	if _, err := e.UndoDefineRole(ctx, um, "acme", "ops", widened, red.Prev); !errors.Is(err, rbac.ErrDenied) {
		t.Errorf("UndoDefineRole of a key's role without api-keys:manage = %v, want ErrDenied", err)
	}
	if _, err := e.UndoDefineRole(ctx, km, "acme", "ops", widened, red.Prev); err != nil {
		t.Errorf("UndoDefineRole with api-keys:manage: %v", err)
	}
	if perms(t, e, "acme", key).Has(rbac.Campaigns, rbac.Send) {
		t.Errorf("the key keeps campaigns:send after the undo")
	}
	holders, err := e.DeleteRole(ctx, km, "acme", "ops")
	if err != nil || len(holders) != 1 || holders[0] != key {
		t.Errorf("DeleteRole with api-keys:manage = %v, %v; want the key", holders, err)
	}
}
