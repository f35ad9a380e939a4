package rbac_test

import (
	"errors"
	"testing"

	casbin "github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"

	"github.com/guardhq/guard/rbac"
)

func TestAdapter(t *testing.T) {
	e := newEnforcer(t, nil)
	grant(t, e, "acme", ada, rbac.Admin)
	define(t, e, "acme", "crm", rbac.P(rbac.Contacts, rbac.Read))
	grant(t, e, "acme", bob, "crm")
	grant(t, e, "globex", cleo, rbac.Owner)
	a := e.Adapter()

	m, err := model.NewModelFromString(rbac.ModelText)
	if err != nil {
		t.Fatal(err)
	}
	f := &rbac.Filter{Tenant: "acme"}
	if err := a.LoadFilteredPolicy(m, f); err != nil {
		t.Fatal(err)
	}
	if f.Version != 3 {
		t.Errorf("Filter.Version = %d, want 3", f.Version)
	}
	g, _ := m.GetPolicy("g", "g")
	if len(g) != 2 {
		t.Errorf("acme's model holds %d grants, want 2 (none of globex): %v", len(g), g)
	}
	// casbin's own enforcer on the adapter: NewEnforcer does not try an
	// unfiltered load; LoadFilteredPolicy picks the tenant.
	ce, err := casbin.NewEnforcer(m, a)
	if err != nil {
		t.Fatal(err)
	}
	if err := ce.LoadFilteredPolicy(rbac.Filter{Tenant: "acme"}); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		sub, dom, obj, act string
		want               bool
	}{
		{"user:ada", "acme", "users", "manage", true},
		{"user:ada", "acme", "billing", "read", false},
		{"user:bob", "acme", "contacts", "read", true},
		{"user:bob", "acme", "contacts", "write", false},
		{"user:cleo", "globex", "billing", "read", false}, // not loaded
		{"role:admin", "acme", "users", "manage", false},  // a role is not a subject, as for Decide
		{"user:ada", "acme", "users", "*", false},         // no wildcard action
		{"user:ada", "acme", "no-such", "read", false},    // nor unknown section
	} {
		if ok, err := ce.Enforce(c.sub, c.dom, c.obj, c.act); err != nil || ok != c.want {
			t.Errorf("casbin Enforce%v = %v, %v", c, ok, err)
		}
	}
	// The implicit-role API works on the loaded tenant.
	roles, err := ce.GetImplicitRolesForUser("user:bob", "acme")
	if err != nil || len(roles) != 1 || roles[0] != "role:crm" {
		t.Errorf("GetImplicitRolesForUser = %v, %v", roles, err)
	}
	// Writes through casbin are refused and change nothing.
	if _, err := ce.AddGroupingPolicy("user:eve", "role:owner", "acme"); !errors.Is(err, rbac.ErrReadOnly) {
		t.Errorf("casbin AddGroupingPolicy = %v, want ErrReadOnly", err)
	}
	if err := ce.SavePolicy(); err == nil {
		t.Error("casbin SavePolicy succeeded")
	}
	for name, err := range map[string]error{
		"LoadPolicy":           a.LoadPolicy(m),
		"LoadFilteredNoFilter": a.LoadFilteredPolicy(m, "acme"),
		"LoadFilteredBadName":  a.LoadFilteredPolicy(m, rbac.Filter{Tenant: "a,b"}),
	} {
		if err == nil {
			t.Errorf("%s succeeded", name)
		}
	}
	for name, err := range map[string]error{
		"SavePolicy":           a.SavePolicy(m),
		"AddPolicy":            a.AddPolicy("p", "p", []string{"role:x", "acme", "contacts", "read"}),
		"RemovePolicy":         a.RemovePolicy("g", "g", []string{"user:ada", "role:admin", "acme"}),
		"RemoveFilteredPolicy": a.RemoveFilteredPolicy("g", "g", 0, "user:ada"),
		"SavePolicyCtx":        a.SavePolicyCtx(ctx, m),
		"AddPolicyCtx":         a.AddPolicyCtx(ctx, "p", "p", nil),
		"RemovePolicyCtx":      a.RemovePolicyCtx(ctx, "p", "p", nil),
		"RemoveFilteredCtx":    a.RemoveFilteredPolicyCtx(ctx, "p", "p", 0),
	} {
		if !errors.Is(err, rbac.ErrReadOnly) {
			t.Errorf("%s = %v, want ErrReadOnly", name, err)
		}
	}
	if !a.IsFiltered() || !a.IsFilteredCtx(ctx) {
		t.Error("the adapter must report filtered loading")
	}
	wantAllowed(t, e, "acme", rbac.User("eve"), rbac.Reports, rbac.Read, false)
}
