package guard_test

import (
	"context"
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

// grantableCase is a principal asking which roles it may give in tenant,
// and the roles it is to be offered (nil: refused with ErrForbidden).
type grantableCase struct {
	name   string
	by     guard.Principal
	tenant string
	want   []string
}

// grantableFixture is a tenant with four custom roles besides the
// built-in ones (support: contacts:read and reports:read; payer:
// billing:manage; key-admin: api-keys:read, api-keys:manage and
// reports:read; user-admin: users:read and users:manage), a second tenant
// (globex), every role of the first (all) and principals of the first: an
// owner, an admin (without billing), a key-admin, a user-admin, a manager,
// a member, and API keys holding admin and reports-only.
type grantableFixture struct {
	*fixture
	all                                                                      []rbac.RoleInfo
	owner, admin, keyAdmin, userAdmin, manager, member, adminKey, reportsKey guard.Principal
}

func newGrantableFixture(t *testing.T) *grantableFixture {
	t.Helper()
	f := &grantableFixture{fixture: newFixture(t)}
	sys := guard.System("test")
	if _, err := f.g.CreateTenant(f.ctx, sys, "globex", "Globex", guard.Policy{}); err != nil {
		t.Fatal(err)
	}
	for name, perms := range map[string][]string{"support": {"contacts:read", "reports:read"}, "payer": {"billing:manage"},
		"key-admin": {"api-keys:read", "api-keys:manage", "reports:read"}, "user-admin": {"users:read", "users:manage"}} {
		if err := f.g.DefineRole(f.ctx, sys, tenantID, name, perms); err != nil {
			t.Fatal(err)
		}
	}
	var err error
	if f.all, err = f.g.Roles(f.ctx, sys, tenantID); err != nil {
		t.Fatal(err)
	}
	f.owner, _ = f.userWithRoles(t, "olive@example.test", rbac.Owner)
	f.admin, _ = f.userWithRoles(t, "adam@example.test", rbac.Admin)
	f.keyAdmin, _ = f.userWithRoles(t, "kim@example.test", "key-admin")
	f.userAdmin, _ = f.userWithRoles(t, "uma@example.test", "user-admin")
	f.manager, _ = f.userWithRoles(t, "mona@example.test", rbac.Manager)
	f.member, _ = f.userWithRoles(t, "max@example.test", rbac.Member)
	f.adminKey = f.keyWithRole(t, rbac.Admin)
	f.reportsKey = f.keyWithRole(t, rbac.ReportsOnly)
	return f
}

// keyWithRole creates an API key holding role, by the system, and returns
// its principal.
func (f *fixture) keyWithRole(t testing.TB, role string) guard.Principal {
	t.Helper()
	k, _, err := f.g.CreateAPIKey(f.ctx, guard.System("test"), guard.NewAPIKey{Tenant: tenantID, Name: role, Roles: []string{role}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.g.AuthenticateAPIKey(f.ctx, k, netip.MustParseAddr("203.0.113.5"))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// offered calls list (GrantableRoles or GrantableKeyRoles) for tc and
// checks its answer: tc.want, or ErrForbidden, with access.denied
// recorded for a principal of another tenant only, as for every call (a
// member asking is not). It returns the names of the roles offered.
func (f *grantableFixture) offered(t *testing.T, tc grantableCase,
	list func(context.Context, guard.Principal, string) ([]rbac.RoleInfo, error)) []string {
	t.Helper()
	before := len(f.events(t, audit.AccessDenied))
	rs, err := list(f.ctx, tc.by, tc.tenant)
	var got []string
	for _, r := range rs {
		got = append(got, r.Name)
	}
	switch {
	case tc.want == nil && !errors.Is(err, guard.ErrForbidden):
		t.Fatalf("%v, %v; want ErrForbidden", got, err)
	case tc.want != nil && (err != nil || !slices.Equal(got, tc.want)):
		t.Fatalf("%v, %v; want %v", got, err, tc.want)
	}
	want := 0
	if tc.tenant != tenantID {
		want = 1
	}
	if n := len(f.events(t, audit.AccessDenied)); n-before != want {
		t.Errorf("recorded %d access.denied events, want %d", n-before, want)
	}
	return got
}

// agree checks that give (a call that gives a role) accepts each role of
// the tenant exactly when it was offered, and refuses the others with
// ErrForbidden.
func (f *grantableFixture) agree(t *testing.T, call string, offered []string, give func(role string) error) {
	t.Helper()
	for _, r := range f.all {
		ok := slices.Contains(offered, r.Name)
		if err := give(r.Name); ok != (err == nil) || err != nil && !errors.Is(err, guard.ErrForbidden) {
			t.Errorf("%s of %s: %v; offered: %v", call, r.Name, err, ok)
		}
	}
}

// The roles of the grantable fixture an owner (or the system), an admin
// (no billing) and a user-admin may give.
var (
	everyRole     = []string{rbac.Owner, rbac.Admin, rbac.Manager, rbac.Member, rbac.ReportsOnly, "key-admin", "payer", "support", "user-admin"}
	adminRoles    = []string{rbac.Admin, rbac.Manager, rbac.Member, rbac.ReportsOnly, "key-admin", "support", "user-admin"}
	keyAdminRoles = []string{rbac.ReportsOnly, "key-admin"}
)

// GrantableRoles lists exactly the roles GrantRole and CreateUser accept
// from the principal, and refuses, as they do, a principal without
// users:manage or of another tenant.
func TestGrantableRolesAgreeWithGrantRole(t *testing.T) {
	f := newGrantableFixture(t)
	for _, tc := range []grantableCase{
		{"owner", f.owner, tenantID, everyRole},
		{"admin", f.admin, tenantID, adminRoles},
		{"user-admin", f.userAdmin, tenantID, []string{"user-admin"}},
		{"key-admin", f.keyAdmin, tenantID, nil},
		{"manager", f.manager, tenantID, nil},
		{"member", f.member, tenantID, nil},
		{"admin-key", f.adminKey, tenantID, adminRoles},
		{"reports-key", f.reportsKey, tenantID, nil},
		{"system", guard.System("test"), tenantID, everyRole},
		{"other-tenant", f.owner, "globex", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := f.offered(t, tc, f.g.GrantableRoles)
			target := f.createUserIn(t, tc.tenant, tc.name+"-target@example.test")
			f.agree(t, "GrantRole", got, func(role string) error {
				return f.g.GrantRole(f.ctx, tc.by, tc.tenant, "user:"+target.ID, role)
			})
			f.agree(t, "CreateUser", got, func(role string) error {
				_, err := f.g.CreateUser(f.ctx, tc.by, guard.NewUser{Tenant: tc.tenant, Email: fmt.Sprintf("%s.%s@example.test", tc.name, role),
					Name: "N", Roles: []string{role}})
				return err
			})
		})
	}
}

// GrantableKeyRoles lists exactly the roles CreateAPIKey (NewAPIKey.Roles)
// and GrantRole to a key accept from the principal: what they hold among
// the holders of api-keys:manage, whatever they may give users. It refuses,
// as they do, a principal without api-keys:manage (a user-admin too) or
// of another tenant.
func TestGrantableKeyRolesAgreeWithCreateAPIKey(t *testing.T) {
	f := newGrantableFixture(t)
	sys := guard.System("test")
	for _, tc := range []grantableCase{
		{"owner", f.owner, tenantID, everyRole},
		{"admin", f.admin, tenantID, adminRoles},
		{"key-admin", f.keyAdmin, tenantID, keyAdminRoles},
		{"user-admin", f.userAdmin, tenantID, nil},
		{"manager", f.manager, tenantID, nil},
		{"member", f.member, tenantID, nil},
		{"admin-key", f.adminKey, tenantID, adminRoles},
		{"reports-key", f.reportsKey, tenantID, nil},
		{"system", sys, tenantID, everyRole},
		{"other-tenant", f.owner, "globex", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := f.offered(t, tc, f.g.GrantableKeyRoles)
			_, target, err := f.g.CreateAPIKey(f.ctx, sys, guard.NewAPIKey{Tenant: tc.tenant, Name: tc.name + " target"})
			if err != nil {
				t.Fatal(err)
			}
			f.agree(t, "GrantRole", got, func(role string) error {
				return f.g.GrantRole(f.ctx, tc.by, tc.tenant, "key:"+target.ID, role)
			})
			if tc.by.Kind == guard.KindAPIKey {
				return // only a user who signed in recently, or the system, creates keys
			}
			f.agree(t, "CreateAPIKey", got, func(role string) error {
				_, _, err := f.g.CreateAPIKey(f.ctx, tc.by, guard.NewAPIKey{Tenant: tc.tenant, Name: tc.name + " " + role, Roles: []string{role}})
				return err
			})
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

// With the policy store failing, GrantableRoles and GrantableKeyRoles
// list nothing: they return ErrUnavailable, for a user and for the system.
func TestGrantableRolesFailClosed(t *testing.T) {
	mem := memstore.New()
	pol := &switchPolicies{Policies: mem.Policies}
	f := newFixture(t, func(c *guard.Config) {
		c.Stores = mem.Stores()
		c.Stores.Policies = pol
	})
	owner, _ := f.userWithRoles(t, "olive@example.test", rbac.Owner)
	pol.down = true
	for call, list := range map[string]func(context.Context, guard.Principal, string) ([]rbac.RoleInfo, error){
		"GrantableRoles": f.g.GrantableRoles, "GrantableKeyRoles": f.g.GrantableKeyRoles} {
		for name, by := range map[string]guard.Principal{"owner": owner, "system": guard.System("test")} {
			if rs, err := list(f.ctx, by, tenantID); !errors.Is(err, guard.ErrUnavailable) || rs != nil {
				t.Errorf("%s of %s with the policy store down: %v, %v; want ErrUnavailable", call, name, rs, err)
			}
		}
	}
}

// Without RBAC there are no roles to grant; without an API key store, no
// key to give one to.
func TestGrantableRolesWithoutRBAC(t *testing.T) {
	f := newFixture(t, func(c *guard.Config) { c.Stores.Policies = nil })
	if _, err := f.g.GrantableRoles(f.ctx, guard.System("test"), tenantID); !errors.Is(err, guard.ErrRolesNotConfigured) {
		t.Errorf("GrantableRoles without Stores.Policies: %v, want ErrRolesNotConfigured", err)
	}
	if _, err := f.g.GrantableKeyRoles(f.ctx, guard.System("test"), tenantID); !errors.Is(err, guard.ErrRolesNotConfigured) {
		t.Errorf("GrantableKeyRoles without Stores.Policies: %v, want ErrRolesNotConfigured", err)
	}
	f = newFixture(t, func(c *guard.Config) { c.Stores.APIKeys = nil })
	if _, err := f.g.GrantableKeyRoles(f.ctx, guard.System("test"), tenantID); !errors.Is(err, guard.ErrAPIKeysNotConfigured) {
		t.Errorf("GrantableKeyRoles without Stores.APIKeys: %v, want ErrAPIKeysNotConfigured", err)
	}
}
