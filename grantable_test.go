package guard_test

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"testing"

	"github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/store/memstore"
)

// GrantableRoles lists exactly the roles GrantRole and CreateUser accept
// from the principal, and refuses, as they do, a principal without
// users:manage or of another tenant.
func TestGrantableRolesAgreeWithGrantRole(t *testing.T) {
	f := newFixture(t)
	sys := guard.System("test")
	if _, err := f.g.CreateTenant(f.ctx, sys, "globex", "Globex", guard.Policy{}); err != nil {
		t.Fatal(err)
	}
	for name, perms := range map[string][]string{"support": {"contacts:read", "reports:read"}, "payer": {"billing:manage"}} {
		if err := f.g.DefineRole(f.ctx, sys, tenantID, name, perms); err != nil {
			t.Fatal(err)
		}
	}
	all, err := f.g.Roles(f.ctx, sys, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	owner, _ := f.userWithRoles(t, "olive@example.test", rbac.Owner)
	admin, _ := f.userWithRoles(t, "adam@example.test", rbac.Admin)
	manager, _ := f.userWithRoles(t, "mona@example.test", rbac.Manager)
	member, _ := f.userWithRoles(t, "max@example.test", rbac.Member)
	key := func(role string) guard.Principal {
		k, _, err := f.g.CreateAPIKey(f.ctx, sys, guard.NewAPIKey{Tenant: tenantID, Name: role, Roles: []string{role}})
		if err != nil {
			t.Fatal(err)
		}
		p, err := f.g.AuthenticateAPIKey(f.ctx, k, netip.MustParseAddr("203.0.113.5"))
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	for _, tc := range []struct {
		name   string
		by     guard.Principal
		tenant string
		want   []string // nil: refused with ErrForbidden
	}{
		{"owner", owner, tenantID, []string{rbac.Owner, rbac.Admin, rbac.Manager, rbac.Member, rbac.ReportsOnly, "payer", "support"}},
		{"admin", admin, tenantID, []string{rbac.Admin, rbac.Manager, rbac.Member, rbac.ReportsOnly, "support"}},
		{"manager", manager, tenantID, nil},
		{"member", member, tenantID, nil},
		{"admin-key", key(rbac.Admin), tenantID, []string{rbac.Admin, rbac.Manager, rbac.Member, rbac.ReportsOnly, "support"}},
		{"reports-key", key(rbac.ReportsOnly), tenantID, nil},
		{"system", sys, tenantID, []string{rbac.Owner, rbac.Admin, rbac.Manager, rbac.Member, rbac.ReportsOnly, "payer", "support"}},
		{"other-tenant", owner, "globex", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(f.events(t, audit.AccessDenied))
			rs, err := f.g.GrantableRoles(f.ctx, tc.by, tc.tenant)
			var got []string
			for _, r := range rs {
				got = append(got, r.Name)
			}
			switch {
			case tc.want == nil && !errors.Is(err, guard.ErrForbidden):
				t.Fatalf("GrantableRoles = %v, %v; want ErrForbidden", got, err)
			case tc.want != nil && (err != nil || !slices.Equal(got, tc.want)):
				t.Fatalf("GrantableRoles = %v, %v; want %v", got, err, tc.want)
			}
			// Only a principal of another tenant is on record, as for
			// every call; a member asking is not.
			want := 0
			if tc.tenant != tenantID {
				want = 1
			}
			if n := len(f.events(t, audit.AccessDenied)); n-before != want {
				t.Errorf("GrantableRoles recorded %d access.denied events, want %d", n-before, want)
			}
			target := f.createUserIn(t, tc.tenant, tc.name+"-target@example.test")
			for _, r := range all {
				offered := slices.Contains(got, r.Name)
				gerr := f.g.GrantRole(f.ctx, tc.by, tc.tenant, "user:"+target.ID, r.Name)
				_, cerr := f.g.CreateUser(f.ctx, tc.by, guard.NewUser{Tenant: tc.tenant, Email: fmt.Sprintf("%s-%s@example.test", tc.name, r.Name), Name: "N", Roles: []string{r.Name}})
				for call, err := range map[string]error{"GrantRole": gerr, "CreateUser": cerr} {
					if offered != (err == nil) || err != nil && !errors.Is(err, guard.ErrForbidden) {
						t.Errorf("%s of %s: %v; offered by GrantableRoles: %v", call, r.Name, err, offered)
					}
				}
			}
		})
	}
}

// createUserIn creates a user without roles in tenant, by the system.
func (f *fixture) createUserIn(t testing.TB, tenant, email string) guard.User {
	t.Helper()
	u, err := f.g.CreateUser(f.ctx, guard.System("test"), guard.NewUser{Tenant: tenant, Email: email, Name: "Some Body"})
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// With the policy store failing, GrantableRoles lists nothing: it returns
// ErrUnavailable, for a user and for the system.
func TestGrantableRolesFailClosed(t *testing.T) {
	mem := memstore.New()
	pol := &switchPolicies{Policies: mem.Policies}
	f := newFixture(t, func(c *guard.Config) {
		c.Stores = mem.Stores()
		c.Stores.Policies = pol
	})
	owner, _ := f.userWithRoles(t, "olive@example.test", rbac.Owner)
	pol.down = true
	for name, by := range map[string]guard.Principal{"owner": owner, "system": guard.System("test")} {
		if rs, err := f.g.GrantableRoles(f.ctx, by, tenantID); !errors.Is(err, guard.ErrUnavailable) || rs != nil {
			t.Errorf("%s with the policy store down: %v, %v; want ErrUnavailable", name, rs, err)
		}
	}
}

// Without RBAC there are no roles to grant.
func TestGrantableRolesWithoutRBAC(t *testing.T) {
	f := newFixture(t, func(c *guard.Config) { c.Stores.Policies = nil })
	if _, err := f.g.GrantableRoles(f.ctx, guard.System("test"), tenantID); !errors.Is(err, guard.ErrRolesNotConfigured) {
		t.Errorf("GrantableRoles without Stores.Policies: %v, want ErrRolesNotConfigured", err)
	}
}
