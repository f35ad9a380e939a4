package guard_test

import (
	"errors"
	"net/netip"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/rbac"
)

// A key created by a user acts within its creator's permissions now; one
// created by the host keeps its own roles.
func TestKeyActsWithinItsCreator(t *testing.T) {
	f := newFixture(t)
	owner, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	adam, _ := f.userWithRoles(t, "adam@example.test", rbac.Admin)
	auth := func(key string) guard.Principal {
		t.Helper()
		p, err := f.g.AuthenticateAPIKey(f.ctx, key, netip.MustParseAddr("203.0.113.5"))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	key, _, err := f.g.CreateAPIKey(f.ctx, adam, guard.NewAPIKey{Tenant: tenantID, Name: "ops", Roles: []string{rbac.Admin}})
	if err != nil {
		t.Fatal(err)
	}
	sysKey, _, err := f.g.CreateAPIKey(f.ctx, guard.System("bootstrap"), guard.NewAPIKey{Tenant: tenantID, Name: "host", Roles: []string{rbac.Admin}})
	if err != nil {
		t.Fatal(err)
	}
	kp, sp := auth(key), auth(sysKey)
	if _, err := f.g.Authorize(f.ctx, kp, rbac.Users, rbac.Manage); err != nil {
		t.Fatalf("the admin key of an admin: %v", err)
	}
	if err := f.g.RevokeRole(f.ctx, owner, tenantID, "user:"+adam.UserID, rbac.Admin); err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.Authorize(f.ctx, kp, rbac.Users, rbac.Manage); !errors.Is(err, guard.ErrForbidden) {
		t.Errorf("the admin key of a demoted admin: %v, want ErrForbidden", err)
	}
	if _, err := f.g.GrantableRoles(f.ctx, kp, tenantID); !errors.Is(err, guard.ErrForbidden) {
		t.Errorf("GrantableRoles by the key of a demoted admin: %v, want ErrForbidden", err)
	}
	if _, err := f.g.Authorize(f.ctx, sp, rbac.Users, rbac.Manage); err != nil {
		t.Errorf("the host's admin key: %v", err)
	}
	if err := f.g.GrantRole(f.ctx, sp, tenantID, "user:"+adam.UserID, rbac.Admin); err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.Authorize(f.ctx, kp, rbac.Users, rbac.Manage); err != nil {
		t.Errorf("the admin key of an admin made admin again: %v", err)
	}
}
