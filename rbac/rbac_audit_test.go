package rbac_test

import (
	"context"
	"errors"
	"testing"

	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/store/memstore"
)

// Enforcer.Casbin's doc says the casbin Enforcer it returns "decides as
// the Enforcer does at the version it loaded". The Enforcer denies (with
// an *InputError) an action or section it does not know, and a role name
// is not a subject; the casbin Enforcer, through the built-in roles'
// wildcard rows and casbin's reflexive role links, allows all three: a
// host that checks with it (as the doc invites) fails open on a typo.
func TestAuditRbac_CasbinDecidesAsEnforcer(t *testing.T) {
	ctx := context.Background()
	e, err := rbac.New(rbac.Config{Store: memstore.NewPolicies()})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Grant(ctx, e.AllPerms(), "acme", rbac.User("a"), rbac.Admin); err != nil {
		t.Fatal(err)
	}
	if err := e.Grant(ctx, e.AllPerms(), "acme", rbac.User("o"), rbac.Owner); err != nil {
		t.Fatal(err)
	}
	ce, err := e.Casbin(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		sub     rbac.Subject
		raw     string // casbin's subject, when not sub.String()
		section rbac.Section
		action  rbac.Action
	}{
		{sub: rbac.User("a"), section: rbac.Contacts, action: "frobnicate"},
		{sub: rbac.User("a"), section: rbac.Contacts, action: "*"},
		{sub: rbac.User("o"), section: "no-such-section", action: rbac.Read},
		{raw: "role:owner", section: rbac.Billing, action: rbac.Manage},
	} {
		var want bool
		if tc.raw == "" {
			d, err := e.Decide(ctx, "acme", tc.sub, tc.section, tc.action)
			want = err == nil && d.Allowed
			tc.raw = tc.sub.String()
		}
		got, err := ce.Enforce(tc.raw, "acme", string(tc.section), string(tc.action))
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("casbin Enforce(%s, acme, %s, %s) = %v; the Enforcer decides %v", tc.raw, tc.section, tc.action, got, want)
		}
	}
}

// CheckRole refuses the built-in roles' names, and with upper case and
// non-ASCII their case and Unicode look-alikes, but not "reports_only",
// "reports-only" with '_' for '-': a custom role that reads, in the
// console, the access review and the audit log, as the read-only built-in
// role, whatever it grants.
func TestAuditRbac_CustomRoleConfusableWithBuiltIn(t *testing.T) {
	for _, name := range []string{"reports_only", "reports-only"} {
		var ie *rbac.InputError
		if err := rbac.CheckRole(name); !errors.As(err, &ie) {
			t.Errorf("CheckRole(%q) = %v, want an *InputError (a built-in role's name)", name, err)
		}
	}
	ctx := context.Background()
	e, err := rbac.New(rbac.Config{Store: memstore.NewPolicies()})
	if err != nil {
		t.Fatal(err)
	}
	_, err = e.DefineRole(ctx, e.AllPerms(), "acme", "reports_only", []rbac.Permission{rbac.P(rbac.Users, rbac.Manage)})
	if err == nil {
		t.Errorf(`DefineRole("reports_only", users:manage) succeeded; want it refused as the built-in role's name`)
	}
}
