package rbac_test

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/store/memstore"
)

// tenantWith returns an Enforcer whose tenant acme has ada as owner, bob
// as admin, cleo as manager and dan as member.
func tenantWith(t *testing.T) *rbac.Enforcer {
	t.Helper()
	e := newEnforcer(t, nil)
	grant(t, e, "acme", ada, rbac.Owner)
	grant(t, e, "acme", bob, rbac.Admin)
	grant(t, e, "acme", cleo, rbac.Manager)
	grant(t, e, "acme", dan, rbac.Member)
	return e
}

func TestNoPrivilegeEscalation(t *testing.T) {
	e := tenantWith(t)
	define(t, e, "acme", "finance", rbac.P(rbac.Billing, rbac.Read), rbac.P(rbac.Reports, rbac.Read))
	define(t, e, "acme", "crm", rbac.P(rbac.Contacts, rbac.Read))
	owner, admin := perms(t, e, "acme", ada), perms(t, e, "acme", bob)
	manager, member := perms(t, e, "acme", cleo), perms(t, e, "acme", dan)
	u := rbac.User("newcomer")
	k := rbac.Key("ci")
	cases := []struct {
		name string
		op   func() error
		want error
	}{
		{"AdminGrantsOwner", func() error { return e.Grant(ctx, admin, "acme", u, rbac.Owner) }, rbac.ErrEscalation},
		{"AdminGrantsBillingRole", func() error { return e.Grant(ctx, admin, "acme", u, "finance") }, rbac.ErrEscalation},
		{"AdminGrantsAdmin", func() error { return e.Grant(ctx, admin, "acme", u, rbac.Admin) }, nil},
		{"AdminGrantsCustom", func() error { return e.Grant(ctx, admin, "acme", u, "crm") }, nil},
		{"AdminGrantsKey", func() error { return e.Grant(ctx, admin, "acme", k, rbac.ReportsOnly) }, nil},
		{"OwnerGrantsOwner", func() error { return e.Grant(ctx, owner, "acme", u, rbac.Owner) }, nil},
		{"ManagerGrants", func() error { return e.Grant(ctx, manager, "acme", u, rbac.ReportsOnly) }, rbac.ErrDenied},
		{"MemberGrants", func() error { return e.Grant(ctx, member, "acme", u, rbac.ReportsOnly) }, rbac.ErrDenied},
		{"NobodyGrants", func() error { return e.Grant(ctx, rbac.Perms{}, "acme", u, rbac.ReportsOnly) }, rbac.ErrDenied},
		{"AdminRevokesOwner", func() error { return e.Revoke(ctx, admin, "acme", ada, rbac.Owner) }, rbac.ErrEscalation},
		{"AdminRevokesAllOfOwner", func() error { return e.RevokeAll(ctx, admin, "acme", ada) }, rbac.ErrEscalation},
		{"ManagerRevokes", func() error { return e.Revoke(ctx, manager, "acme", dan, rbac.Member) }, rbac.ErrDenied},
		{"AdminDefinesBillingRole", func() error {
			return errOf(e.DefineRole(ctx, admin, "acme", "payer", []rbac.Permission{rbac.P(rbac.Billing, rbac.Manage)}))
		}, rbac.ErrEscalation},
		{"AdminWidensBillingRole", func() error {
			return errOf(e.DefineRole(ctx, admin, "acme", "finance", []rbac.Permission{rbac.P(rbac.Reports, rbac.Read)}))
		}, rbac.ErrEscalation},
		{"AdminDeletesBillingRole", func() error { return errOf(e.DeleteRole(ctx, admin, "acme", "finance")) }, rbac.ErrEscalation},
		{"ManagerDefinesRole", func() error {
			return errOf(e.DefineRole(ctx, manager, "acme", "mine", []rbac.Permission{rbac.P(rbac.Reports, rbac.Read)}))
		}, rbac.ErrDenied},
		{"AdminDefinesRole", func() error {
			return errOf(e.DefineRole(ctx, admin, "acme", "viewer", []rbac.Permission{rbac.P(rbac.Reports, rbac.Read), rbac.P(rbac.Contacts, rbac.Read)}))
		}, nil},
		{"AdminSetsApprovalRule", func() error {
			return e.SetApprovalRequired(ctx, admin, "acme", rbac.P(rbac.Campaigns, rbac.Send), true)
		}, nil},
		// Nobody fences off, or opens up, an action they may not take:
		// an admin holds settings:manage but not billing:manage.
		{"AdminSetsBillingApprovalRule", func() error {
			return e.SetApprovalRequired(ctx, admin, "acme", rbac.P(rbac.Billing, rbac.Manage), true)
		}, rbac.ErrEscalation},
		{"ManagerSetsApprovalRule", func() error {
			return e.SetApprovalRequired(ctx, manager, "acme", rbac.P(rbac.Campaigns, rbac.Send), false)
		}, rbac.ErrDenied},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v0, _ := e.Version(ctx, "acme")
			err := c.op()
			if !errors.Is(err, c.want) || (c.want == nil && err != nil) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
			if v, _ := e.Version(ctx, "acme"); c.want != nil && v != v0 {
				t.Errorf("a refused change moved the version from %d to %d", v0, v)
			}
		})
	}
	wantAllowed(t, e, "acme", u, rbac.Billing, rbac.Read, true) // the owner's grant
	wantAllowed(t, e, "acme", ada, rbac.Billing, rbac.Manage, true)
	// Granting to an API key needs api-keys:manage, to a user users:manage,
	// as GrantPermission says.
	if pu, pk := rbac.GrantPermission(rbac.KindUser), rbac.GrantPermission(rbac.KindKey); pu != rbac.P(rbac.Users, rbac.Manage) || pk != rbac.P(rbac.APIKeys, rbac.Manage) {
		t.Errorf("GrantPermission: %v for a user, %v for a key", pu, pk)
	}
	onlyUsers := newEnforcer(t, nil)
	define(t, onlyUsers, "acme", "user-admin", rbac.P(rbac.Users, rbac.Manage), rbac.P(rbac.Reports, rbac.Read))
	define(t, onlyUsers, "acme", "key-admin", rbac.P(rbac.APIKeys, rbac.Manage), rbac.P(rbac.Reports, rbac.Read))
	grant(t, onlyUsers, "acme", ada, "user-admin")
	grant(t, onlyUsers, "acme", bob, "key-admin")
	pa, pb := perms(t, onlyUsers, "acme", ada), perms(t, onlyUsers, "acme", bob)
	if err := onlyUsers.Grant(ctx, pa, "acme", k, rbac.ReportsOnly); !errors.Is(err, rbac.ErrDenied) {
		t.Errorf("a users:manage holder granted to a key: %v", err)
	}
	if err := onlyUsers.Grant(ctx, pb, "acme", u, rbac.ReportsOnly); !errors.Is(err, rbac.ErrDenied) {
		t.Errorf("an api-keys:manage holder granted to a user: %v", err)
	}
	if err := onlyUsers.Grant(ctx, pa, "acme", u, rbac.ReportsOnly); err != nil {
		t.Error(err)
	}
	if err := onlyUsers.Grant(ctx, pb, "acme", k, rbac.ReportsOnly); err != nil {
		t.Error(err)
	}
}

func TestGrantAndRevokeAreIdempotent(t *testing.T) {
	e := tenantWith(t)
	v0, _ := e.Version(ctx, "acme")
	grant(t, e, "acme", dan, rbac.Member)
	revoke(t, e, "acme", dan, rbac.Admin)
	revoke(t, e, "acme", dan, "never-defined")
	if v, _ := e.Version(ctx, "acme"); v != v0 {
		t.Errorf("no-op grant and revokes moved the version from %d to %d", v0, v)
	}
}

// SetGrant reports whether the grant or revocation changed the policy.
func TestSetGrantReportsChange(t *testing.T) {
	e := tenantWith(t)
	for _, c := range []struct {
		role    string
		held    bool
		changed bool
	}{
		{rbac.Member, true, false}, // dan holds it
		{rbac.Manager, true, true},
		{rbac.Manager, true, false},
		{rbac.Admin, false, false}, // not held
		{"never-defined", false, false},
		{rbac.Manager, false, true},
		{rbac.Manager, false, false},
	} {
		changed, err := e.SetGrant(ctx, e.AllPerms(), "acme", dan, c.role, c.held)
		if err != nil || changed != c.changed {
			t.Errorf("SetGrant(dan, %s, %v) = %v, %v; want %v", c.role, c.held, changed, err, c.changed)
		}
	}
	if changed, err := e.SetGrant(ctx, e.AllPerms(), "acme", dan, "ghost", true); changed || !errors.Is(err, rbac.ErrRoleNotFound) {
		t.Errorf("SetGrant of an undefined role = %v, %v; want false, ErrRoleNotFound", changed, err)
	}
}

// SetApprovalRule reports whether the rule changed: setting what is set
// changes nothing.
func TestSetApprovalRuleReportsChange(t *testing.T) {
	e := newEnforcer(t, nil)
	send := rbac.P(rbac.Campaigns, rbac.Send)
	for _, c := range []struct {
		required, changed bool
	}{{false, false}, {true, true}, {true, false}, {false, true}, {false, false}} {
		changed, err := e.SetApprovalRule(ctx, e.AllPerms(), "acme", send, c.required)
		if err != nil || changed != c.changed {
			t.Errorf("SetApprovalRule(campaigns:send, %v) = %v, %v; want %v", c.required, changed, err, c.changed)
		}
	}
	if changed, err := e.SetApprovalRule(ctx, rbac.Perms{}, "acme", send, true); changed || !errors.Is(err, rbac.ErrDenied) {
		t.Errorf("SetApprovalRule without settings:manage = %v, %v; want false, ErrDenied", changed, err)
	}
}

// RemoveGrants takes the named roles, or all, with no permission check
// and without the last-owner rule.
func TestRemoveGrants(t *testing.T) {
	e := tenantWith(t)
	grant(t, e, "acme", ada, rbac.Member)
	if err := e.RevokeAll(ctx, e.AllPerms(), "acme", ada); !errors.Is(err, rbac.ErrLastOwner) {
		t.Fatalf("RevokeAll of the last owner = %v, want ErrLastOwner", err)
	}
	if err := e.RemoveGrants(ctx, "acme", ada, rbac.Owner, rbac.Admin); err != nil {
		t.Fatal(err)
	}
	if rs, err := e.RolesOf(ctx, "acme", ada); err != nil || len(rs) != 1 || rs[0] != rbac.Member {
		t.Errorf("ada's roles after RemoveGrants(owner, admin) = %v, %v; want [member]", rs, err)
	}
	if err := e.RemoveGrants(ctx, "acme", bob); err != nil {
		t.Fatal(err)
	}
	if rs, err := e.RolesOf(ctx, "acme", bob); err != nil || len(rs) != 0 {
		t.Errorf("bob's roles after RemoveGrants() = %v, %v; want none", rs, err)
	}
	var ie *rbac.InputError
	if err := e.RemoveGrants(ctx, "acme", dan, "a,b"); !errors.As(err, &ie) {
		t.Errorf("RemoveGrants of a malformed role = %v, want an *InputError", err)
	}
	wantAllowed(t, e, "acme", dan, rbac.Contacts, rbac.Read, true)
}

func TestGrantUnknownRole(t *testing.T) {
	e := tenantWith(t)
	if err := e.Grant(ctx, e.AllPerms(), "acme", dan, "ghost"); !errors.Is(err, rbac.ErrRoleNotFound) {
		t.Errorf("Grant of an undefined role = %v, want ErrRoleNotFound", err)
	}
	if _, err := e.DeleteRole(ctx, e.AllPerms(), "acme", "ghost"); !errors.Is(err, rbac.ErrRoleNotFound) {
		t.Errorf("DeleteRole of an undefined role = %v, want ErrRoleNotFound", err)
	}
	define(t, e, "acme", "temp", rbac.P(rbac.Reports, rbac.Read))
	if _, err := e.DeleteRole(ctx, e.AllPerms(), "acme", "temp"); err != nil {
		t.Fatal(err)
	}
	if err := e.Grant(ctx, e.AllPerms(), "acme", dan, "temp"); !errors.Is(err, rbac.ErrRoleNotFound) {
		t.Errorf("Grant of a deleted role = %v, want ErrRoleNotFound", err)
	}
}

func TestDeleteRoleRemovesItsGrants(t *testing.T) {
	e := tenantWith(t)
	define(t, e, "acme", "crm", rbac.P(rbac.Contacts, rbac.Read))
	grant(t, e, "acme", dan, "crm")
	grant(t, e, "acme", key1, "crm")
	if _, err := e.DeleteRole(ctx, e.AllPerms(), "acme", "crm"); err != nil {
		t.Fatal(err)
	}
	// Re-created with other permissions, the role is not held by the old holders.
	define(t, e, "acme", "crm", rbac.P(rbac.Billing, rbac.Manage))
	wantAllowed(t, e, "acme", key1, rbac.Billing, rbac.Manage, false)
	roles, _ := e.RolesOf(ctx, "acme", dan)
	if !slices.Equal(roles, []string{rbac.Member}) {
		t.Errorf("RolesOf(dan) = %v", roles)
	}
}

func TestBuiltInRolesCannotChange(t *testing.T) {
	e := tenantWith(t)
	for _, r := range []string{rbac.Owner, rbac.Admin, rbac.Manager, rbac.Member, rbac.ReportsOnly} {
		if _, err := e.DefineRole(ctx, e.AllPerms(), "acme", r, []rbac.Permission{rbac.P(rbac.Reports, rbac.Read)}); !errors.Is(err, rbac.ErrBuiltInRole) {
			t.Errorf("DefineRole(%s) = %v", r, err)
		}
		if _, err := e.DeleteRole(ctx, e.AllPerms(), "acme", r); !errors.Is(err, rbac.ErrBuiltInRole) {
			t.Errorf("DeleteRole(%s) = %v", r, err)
		}
	}
}

func TestLastOwner(t *testing.T) {
	e := tenantWith(t)
	all := e.AllPerms()
	if err := e.Revoke(ctx, all, "acme", ada, rbac.Owner); !errors.Is(err, rbac.ErrLastOwner) {
		t.Errorf("revoking the last owner = %v, want ErrLastOwner", err)
	}
	if err := e.RevokeAll(ctx, all, "acme", ada); !errors.Is(err, rbac.ErrLastOwner) {
		t.Errorf("RevokeAll of the last owner = %v, want ErrLastOwner", err)
	}
	// An API key holding owner does not count as an owner to fall back on.
	grant(t, e, "acme", key1, rbac.Owner)
	if err := e.Revoke(ctx, all, "acme", ada, rbac.Owner); !errors.Is(err, rbac.ErrLastOwner) {
		t.Errorf("revoking the last user owner while a key is owner = %v, want ErrLastOwner", err)
	}
	revoke(t, e, "acme", key1, rbac.Owner)
	grant(t, e, "acme", bob, rbac.Owner)
	revoke(t, e, "acme", ada, rbac.Owner)
	wantAllowed(t, e, "acme", ada, rbac.Billing, rbac.Read, false)
	if err := e.RevokeAll(ctx, all, "acme", cleo); err != nil {
		t.Fatal(err)
	}
	if roles, _ := e.RolesOf(ctx, "acme", cleo); len(roles) != 0 {
		t.Errorf("RolesOf after RevokeAll = %v", roles)
	}
	// A tenant that never had an owner: nothing to protect.
	grant(t, e, "globex", dan, rbac.Admin)
	revoke(t, e, "globex", dan, rbac.Admin)
}

func TestDefineRole(t *testing.T) {
	e := newEnforcer(t, nil, "automations")
	all := e.AllPerms()
	for name, c := range map[string]struct {
		role  string
		perms []rbac.Permission
	}{
		"NoPermission":   {"x", nil},
		"UnknownSection": {"x", []rbac.Permission{{"invoices", rbac.Read}}},
		"UnknownAction":  {"x", []rbac.Permission{{rbac.Reports, "export"}}},
		"Wildcard":       {"x", []rbac.Permission{{"*", "*"}}},
		"BadName":        {"X", []rbac.Permission{rbac.P(rbac.Reports, rbac.Read)}},
		"Separator":      {"a,b", []rbac.Permission{rbac.P(rbac.Reports, rbac.Read)}},
		"LeadingDigit":   {"1a", []rbac.Permission{rbac.P(rbac.Reports, rbac.Read)}},
	} {
		var ie *rbac.InputError
		if _, err := e.DefineRole(ctx, all, "acme", c.role, c.perms); !errors.As(err, &ie) {
			t.Errorf("%s: DefineRole = %v, want an *InputError", name, err)
		}
	}
	define(t, e, "acme", "auto", rbac.P("automations", rbac.Write), rbac.P(rbac.Reports, rbac.Read), rbac.P(rbac.Reports, rbac.Read))
	roles, err := e.Roles(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	got := roles[len(roles)-1]
	if got.Name != "auto" || got.BuiltIn || !slices.Equal(got.Permissions, []rbac.Permission{rbac.P(rbac.Reports, rbac.Read), rbac.P("automations", rbac.Write)}) {
		t.Errorf("Roles: last = %+v", got)
	}
	if len(roles) != 6 {
		t.Errorf("Roles lists %d roles, want 5 built-in and 1 custom", len(roles))
	}
}

func TestMaxCustomRoles(t *testing.T) {
	e, err := rbac.New(rbac.Config{Store: memstore.NewPolicies(), MaxCustomRoles: 3})
	if err != nil {
		t.Fatal(err)
	}
	for i := range 3 {
		define(t, e, "acme", fmt.Sprint("r", i), rbac.P(rbac.Reports, rbac.Read))
	}
	if _, err := e.DefineRole(ctx, e.AllPerms(), "acme", "r3", []rbac.Permission{rbac.P(rbac.Reports, rbac.Read)}); !errors.Is(err, rbac.ErrTooManyRoles) {
		t.Errorf("the 4th role = %v, want ErrTooManyRoles", err)
	}
	define(t, e, "acme", "r0", rbac.P(rbac.Reports, rbac.Write))  // redefining is fine
	define(t, e, "globex", "r3", rbac.P(rbac.Reports, rbac.Read)) // per tenant
	if _, err := e.DeleteRole(ctx, e.AllPerms(), "acme", "r1"); err != nil {
		t.Fatal(err)
	}
	define(t, e, "acme", "r3", rbac.P(rbac.Reports, rbac.Read))
}

// TestAssignmentsOrder grants roles to users and keys whose IDs share
// their first 8 bytes, differ in length or sort differently as numbers:
// Assignments lists them in the order of their string forms, each with
// its own roles, sorted.
func TestAssignmentsOrder(t *testing.T) {
	st := memstore.NewPolicies()
	e := newEnforcer(t, st)
	ids := []string{"a", "A", "ab", "abcdefgh", "abcdefgh0", "abcdefgha", "abcdefg", "abcdefgg", "abcdefghZ",
		"9", "10", "z", "Z", "a_", "a-", "user-2", "user-10", "aaaaaaaaaaaaaaab", "aaaaaaaaaaaaaaaa"}
	var rules []rbac.Rule
	want := map[string][]string{}
	for i, id := range ids {
		for _, sub := range []rbac.Subject{rbac.User(id), rbac.Key(id)} {
			roles := []string{rbac.Member, rbac.ReportsOnly, rbac.Manager}[:1+i%3]
			if sub.Kind == rbac.KindKey {
				roles = []string{rbac.ReportsOnly}
			}
			for _, r := range slices.Backward(roles) {
				rules = append(rules, rbac.Rule{Type: rbac.RuleGrant, Role: r, Subject: sub.String()})
			}
			want[sub.String()] = slices.Sorted(slices.Values(roles))
		}
	}
	if err := st.Update(ctx, "acme", 0, nil, rules); err != nil {
		t.Fatal(err)
	}
	as, err := e.Assignments(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, a := range as {
		got = append(got, a.Subject.String())
		if !slices.Equal(a.Roles, want[a.Subject.String()]) {
			t.Errorf("%s holds %v, want %v", a.Subject, a.Roles, want[a.Subject.String()])
		}
		a.Roles = append(a.Roles, "appended") // each its own
	}
	if !slices.IsSorted(got) || len(got) != len(want) {
		t.Errorf("Assignments lists %q", got)
	}
	for _, a := range as {
		if !slices.Equal(a.Roles, want[a.Subject.String()]) {
			t.Errorf("after appends, %s holds %v, want %v", a.Subject, a.Roles, want[a.Subject.String()])
		}
	}
}

func TestAssignmentsAndApprovalRules(t *testing.T) {
	e := tenantWith(t)
	define(t, e, "acme", "crm", rbac.P(rbac.Contacts, rbac.Read))
	grant(t, e, "acme", dan, "crm")
	grant(t, e, "acme", key1, rbac.ReportsOnly)
	as, err := e.Assignments(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	want := []rbac.Assignment{
		{key1, []string{rbac.ReportsOnly}},
		{ada, []string{rbac.Owner}},
		{bob, []string{rbac.Admin}},
		{cleo, []string{rbac.Manager}},
		{dan, []string{"crm", rbac.Member}},
	}
	if fmt.Sprint(as) != fmt.Sprint(want) {
		t.Errorf("Assignments = %v\nwant %v", as, want)
	}
	send := rbac.P(rbac.Campaigns, rbac.Send)
	if err := e.SetApprovalRequired(ctx, e.AllPerms(), "acme", send, true); err != nil {
		t.Fatal(err)
	}
	d, err := e.Decide(ctx, "acme", dan, rbac.Campaigns, rbac.Send)
	if err != nil || !d.Allowed || !d.NeedsApproval {
		t.Errorf("Decide(campaigns:send) = %+v, %v; want allowed, needing approval", d, err)
	}
	if d, _ := e.Decide(ctx, "globex", dan, rbac.Campaigns, rbac.Send); d.NeedsApproval {
		t.Error("approval rules leak across tenants")
	}
	if d, _ := e.Decide(ctx, "acme", dan, rbac.Campaigns, rbac.Write); d.NeedsApproval {
		t.Error("campaigns:write needs approval")
	}
	if ps, _ := e.ApprovalRequired(ctx, "acme"); !slices.Equal(ps, []rbac.Permission{send}) {
		t.Errorf("ApprovalRequired = %v", ps)
	}
	if err := e.SetApprovalRequired(ctx, e.AllPerms(), "acme", send, false); err != nil {
		t.Fatal(err)
	}
	if d, _ := e.Decide(ctx, "acme", dan, rbac.Campaigns, rbac.Send); d.NeedsApproval {
		t.Error("approval still required after it was lifted")
	}
}

func TestAdminWarning(t *testing.T) {
	e := newEnforcer(t, nil)
	grant(t, e, "acme", ada, rbac.Owner)
	if w, err := e.AdminWarning(ctx, "acme"); err != nil || w != nil {
		t.Fatalf("one owner: %+v, %v; want no warning", w, err)
	}
	grant(t, e, "acme", bob, rbac.Admin)
	define(t, e, "acme", "people", rbac.P(rbac.Users, rbac.Manage))
	grant(t, e, "acme", key1, "people")
	grant(t, e, "acme", cleo, rbac.Manager) // not an admin
	grant(t, e, "acme", ada, rbac.Admin)    // owner and admin: counted once
	w, err := e.AdminWarning(ctx, "acme")
	if err != nil || w == nil {
		t.Fatalf("AdminWarning = %v, %v; want a warning", w, err)
	}
	if w.Count() != 3 || w.Recommended != 1 || fmt.Sprint(w.Owners) != fmt.Sprint([]rbac.Subject{ada}) ||
		fmt.Sprint(w.Admins) != fmt.Sprint([]rbac.Subject{key1, bob}) || w.Message == "" || w.Tenant != "acme" {
		t.Errorf("AdminWarning = %+v", w)
	}
	// Excluding (deactivated users, say) leaves them out of the count.
	notBob := w.Excluding(func(s rbac.Subject) bool { return s == bob })
	if notBob == nil || notBob.Count() != 2 || fmt.Sprint(notBob.Excluded) != fmt.Sprint([]rbac.Subject{bob}) ||
		fmt.Sprint(notBob.Admins) != fmt.Sprint([]rbac.Subject{key1}) || !strings.HasPrefix(notBob.Message, "2 owners and admins") {
		t.Errorf("Excluding(bob) = %+v", notBob)
	}
	if w.Count() != 3 || w.Excluded != nil {
		t.Errorf("Excluding changed the warning: %+v", w)
	}
	if got := notBob.Excluding(func(s rbac.Subject) bool { return s == key1 }); got != nil {
		t.Errorf("one owner left: %+v, want no warning", got)
	}
	if got := (*rbac.AdminWarning)(nil).Excluding(func(rbac.Subject) bool { return false }); got != nil {
		t.Errorf("Excluding of nil = %+v", got)
	}
	e3, _ := rbac.New(rbac.Config{Store: memstore.NewPolicies(), MaxAdmins: 3})
	grant(t, e3, "acme", ada, rbac.Owner)
	grant(t, e3, "acme", bob, rbac.Admin)
	grant(t, e3, "acme", cleo, rbac.Admin)
	if w, err := e3.AdminWarning(ctx, "acme"); err != nil || w != nil {
		t.Errorf("3 admins with MaxAdmins 3: %+v, %v", w, err)
	}
}

func TestConfig(t *testing.T) {
	st := memstore.NewPolicies()
	for name, cfg := range map[string]rbac.Config{
		"NoStore":          {},
		"NegativeAdmins":   {Store: st, MaxAdmins: -1},
		"NegativeRoles":    {Store: st, MaxCustomRoles: -1},
		"BuiltInSection":   {Store: st, Sections: []rbac.Section{rbac.Contacts}},
		"DuplicateSection": {Store: st, Sections: []rbac.Section{"a", "a"}},
		"BadSection":       {Store: st, Sections: []rbac.Section{"a:b"}},
		"WildcardSection":  {Store: st, Sections: []rbac.Section{"*"}},
	} {
		var ce *rbac.ConfigError
		if _, err := rbac.New(cfg); !errors.As(err, &ce) {
			t.Errorf("%s: New = %v, want a *ConfigError", name, err)
		}
	}
	e := newEnforcer(t, st, "automations", "landing-pages")
	if got := e.Sections(); len(got) != 10 || got[8] != "automations" || got[9] != "landing-pages" {
		t.Errorf("Sections = %v", got)
	}
	if err := e.CheckPermission(rbac.P("landing-pages", rbac.Send)); err != nil {
		t.Error(err)
	}
	if err := e.CheckPermission(rbac.P("invoices", rbac.Send)); err == nil {
		t.Error("CheckPermission accepted an unknown section")
	}
}

// TestStalePermsAreRechecked: the by of a change is its holder's
// permissions when the change lands, not a copy read earlier.
func TestStalePermsAreRechecked(t *testing.T) {
	st := memstore.NewPolicies()
	e, other := newEnforcer(t, st), newEnforcer(t, st)
	grant(t, e, "acme", ada, rbac.Owner)
	grant(t, e, "acme", bob, rbac.Admin)
	byBob := perms(t, e, "acme", bob) // read while bob is admin
	revoke(t, other, "acme", bob, rbac.Admin)
	if err := e.Grant(ctx, byBob, "acme", cleo, rbac.Member); !errors.Is(err, rbac.ErrDenied) {
		t.Errorf("Grant with the permissions of a since-demoted admin = %v, want ErrDenied", err)
	}
	if _, err := e.DefineRole(ctx, byBob, "acme", "x", []rbac.Permission{rbac.P(rbac.Reports, rbac.Read)}); !errors.Is(err, rbac.ErrDenied) {
		t.Errorf("DefineRole with stale permissions = %v, want ErrDenied", err)
	}
	// Permissions read in one tenant are worth nothing in another.
	byAda := perms(t, e, "acme", ada)
	if err := e.Grant(ctx, byAda, "globex", ada, rbac.Owner); !errors.Is(err, rbac.ErrDenied) {
		t.Errorf("Grant in globex with acme's owner permissions = %v, want ErrDenied", err)
	}
	wantAllowed(t, e, "globex", ada, rbac.Billing, rbac.Read, false)
	// AllPerms is a fixed set: the host application acts anywhere.
	grant(t, e, "globex", ada, rbac.Owner)
	// A promotion counts too: bob, made admin again, can grant with the
	// permissions read while he was nobody.
	byNobody := perms(t, e, "acme", bob)
	grant(t, other, "acme", bob, rbac.Admin)
	if err := e.Grant(ctx, byNobody, "acme", cleo, rbac.Member); err != nil {
		t.Errorf("Grant after re-promotion = %v", err)
	}
}
