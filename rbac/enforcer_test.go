package rbac_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/store/memstore"
)

var (
	ada  = rbac.User("ada")
	bob  = rbac.User("bob")
	cleo = rbac.User("cleo")
	dan  = rbac.User("dan")
	key1 = rbac.Key("key1")
)

// matrix is the documented permission matrix of the built-in roles over
// the built-in sections: "rwdasm" letters per section, in the order of
// BuiltInSections.
var matrix = map[string][8]string{
	//                 contacts campaigns reports settings users audit api-keys billing
	rbac.Owner:       {"rwdasm", "rwdasm", "rwdasm", "rwdasm", "rwdasm", "rwdasm", "rwdasm", "rwdasm"},
	rbac.Admin:       {"rwdasm", "rwdasm", "rwdasm", "rwdasm", "rwdasm", "rwdasm", "rwdasm", ""},
	rbac.Manager:     {"rwd", "rwdas", "rws", "r", "r", "", "", ""},
	rbac.Member:      {"rw", "rws", "r", "", "", "", "", ""},
	rbac.ReportsOnly: {"", "", "r", "", "", "", "", ""},
}

var actionLetter = map[rbac.Action]string{rbac.Read: "r", rbac.Write: "w", rbac.Delete: "d", rbac.Approve: "a", rbac.Send: "s", rbac.Manage: "m"}

func TestBuiltInRolesMatrix(t *testing.T) {
	e := newEnforcer(t, nil, "automations")
	for role, row := range matrix {
		sub := rbac.User("holder-of-" + role)
		grant(t, e, "acme", sub, role)
		for i, s := range rbac.BuiltInSections() {
			for _, a := range rbac.Actions() {
				want := contains(row[i], actionLetter[a])
				wantAllowed(t, e, "acme", sub, s, a, want)
			}
		}
		// Host sections: only the owner.
		for _, a := range rbac.Actions() {
			wantAllowed(t, e, "acme", sub, "automations", a, role == rbac.Owner)
		}
	}
	// BuiltInRoles documents the same matrix.
	for _, ri := range rbac.BuiltInRoles() {
		row, ok := matrix[ri.Name]
		if !ok || !ri.BuiltIn {
			t.Errorf("BuiltInRoles lists %q", ri.Name)
			continue
		}
		n := 0
		for _, l := range row {
			n += len(l)
		}
		if len(ri.Permissions) != n {
			t.Errorf("BuiltInRoles: %s has %d permissions, the matrix %d", ri.Name, len(ri.Permissions), n)
		}
	}
}

func contains(s, sub string) bool {
	return sub != "" && len(s) > 0 && slices.Contains([]byte(s), sub[0])
}

func TestReportsOnlyDeniedContacts(t *testing.T) {
	e := newEnforcer(t, nil)
	grant(t, e, "acme", ada, rbac.ReportsOnly)
	wantAllowed(t, e, "acme", ada, rbac.Reports, rbac.Read, true)
	for _, s := range rbac.BuiltInSections() {
		for _, a := range rbac.Actions() {
			if s != rbac.Reports || a != rbac.Read {
				wantAllowed(t, e, "acme", ada, s, a, false)
			}
		}
	}
	// Only roles granted contacts see contact data: of the built-in roles,
	// owner, admin, manager and member; a custom role only if it says so.
	define(t, e, "acme", "campaigner", rbac.P(rbac.Campaigns, rbac.Write), rbac.P(rbac.Reports, rbac.Read))
	grant(t, e, "acme", bob, "campaigner")
	wantAllowed(t, e, "acme", bob, rbac.Contacts, rbac.Read, false)
	define(t, e, "acme", "crm", rbac.P(rbac.Contacts, rbac.Read))
	grant(t, e, "acme", bob, "crm")
	wantAllowed(t, e, "acme", bob, rbac.Contacts, rbac.Read, true)
	wantAllowed(t, e, "acme", bob, rbac.Contacts, rbac.Write, false)
}

// SECURITY-CHECKLIST RB-1.
func TestNoRoleDeniesEverything(t *testing.T) {
	e := newEnforcer(t, nil)
	grant(t, e, "acme", ada, rbac.Owner)
	for _, sub := range []rbac.Subject{bob, rbac.Key("ada"), rbac.User("ADA"), rbac.User("ad")} {
		for _, s := range rbac.BuiltInSections() {
			for _, a := range rbac.Actions() {
				wantAllowed(t, e, "acme", sub, s, a, false)
			}
		}
	}
}

func TestUnknownPermissionIsAnError(t *testing.T) {
	e := newEnforcer(t, nil)
	grant(t, e, "acme", ada, rbac.Owner)
	for _, p := range []rbac.Permission{
		{"contact", rbac.Read}, {"Contacts", rbac.Read}, {"*", rbac.Read}, {"", rbac.Read},
		{rbac.Contacts, "READ"}, {rbac.Contacts, "*"}, {rbac.Contacts, ""}, {rbac.Contacts, "list"},
	} {
		d, err := e.Decide(ctx, "acme", ada, p.Section, p.Action)
		var ie *rbac.InputError
		if !errors.As(err, &ie) || d.Allowed {
			t.Errorf("Decide(owner, %q) = %+v, %v; want a denial with an *InputError", p, d, err)
		}
	}
}

func TestCrossTenantGrantsMeanNothing(t *testing.T) {
	e := newEnforcer(t, nil)
	grant(t, e, "acme", ada, rbac.Owner)
	define(t, e, "acme", "crm", rbac.P(rbac.Contacts, rbac.Read))
	grant(t, e, "acme", bob, "crm")
	for _, sub := range []rbac.Subject{ada, bob} {
		for _, s := range rbac.BuiltInSections() {
			for _, a := range rbac.Actions() {
				wantAllowed(t, e, "globex", sub, s, a, false)
			}
		}
	}
	// acme's custom role does not exist in globex.
	if err := e.Grant(ctx, e.AllPerms(), "globex", bob, "crm"); !errors.Is(err, rbac.ErrRoleNotFound) {
		t.Errorf("Grant of acme's role in globex = %v, want ErrRoleNotFound", err)
	}
	// A role of the same name in globex is another role.
	define(t, e, "globex", "crm", rbac.P(rbac.Billing, rbac.Read))
	grant(t, e, "globex", cleo, "crm")
	wantAllowed(t, e, "acme", bob, rbac.Billing, rbac.Read, false)
	wantAllowed(t, e, "globex", cleo, rbac.Contacts, rbac.Read, false)
	wantAllowed(t, e, "globex", bob, rbac.Billing, rbac.Read, false)
	// ada's owner permissions in acme do not let her grant in globex: her
	// effective permissions there are empty.
	if err := e.Grant(ctx, perms(t, e, "globex", ada), "globex", ada, rbac.Owner); !errors.Is(err, rbac.ErrDenied) {
		t.Errorf("Grant with globex permissions of an acme owner = %v, want ErrDenied", err)
	}
	// Similar tenant names are different tenants.
	for _, tn := range []string{"acm", "acme-", "acme_", "acme0"} {
		wantAllowed(t, e, tn, ada, rbac.Billing, rbac.Read, false)
	}
}

func TestRevocationInForceOnTheNextCheck(t *testing.T) {
	st := memstore.NewPolicies()
	a, b := newEnforcer(t, st), newEnforcer(t, st) // two replicas
	define(t, a, "acme", "crm", rbac.P(rbac.Contacts, rbac.Read), rbac.P(rbac.Contacts, rbac.Write))
	grant(t, a, "acme", ada, "crm")
	grant(t, a, "acme", ada, rbac.Member)
	grant(t, a, "acme", bob, rbac.Admin)
	for _, e := range []*rbac.Enforcer{a, b} {
		wantAllowed(t, e, "acme", ada, rbac.Contacts, rbac.Write, true)
		wantAllowed(t, e, "acme", bob, rbac.Users, rbac.Manage, true)
	}
	steps := []struct {
		name   string
		by     *rbac.Enforcer
		change func(e *rbac.Enforcer)
		sub    rbac.Subject
		perm   rbac.Permission
	}{
		{"RevokeBuiltIn", b, func(e *rbac.Enforcer) { revoke(t, e, "acme", bob, rbac.Admin) }, bob, rbac.P(rbac.Users, rbac.Manage)},
		{"RevokeCustom", a, func(e *rbac.Enforcer) { revoke(t, e, "acme", ada, rbac.Member) }, ada, rbac.P(rbac.Campaigns, rbac.Send)},
		{"NarrowRole", b, func(e *rbac.Enforcer) { define(t, e, "acme", "crm", rbac.P(rbac.Contacts, rbac.Read)) }, ada, rbac.P(rbac.Contacts, rbac.Write)},
		{"DeleteRole", a, func(e *rbac.Enforcer) {
			if _, err := e.DeleteRole(ctx, e.AllPerms(), "acme", "crm"); err != nil {
				t.Fatal(err)
			}
		}, ada, rbac.P(rbac.Contacts, rbac.Read)},
	}
	for _, s := range steps {
		t.Run(s.name, func(t *testing.T) {
			s.change(s.by)
			for i, e := range []*rbac.Enforcer{a, b} {
				if allowed(t, e, "acme", s.sub, s.perm.Section, s.perm.Action) {
					t.Errorf("replica %d still allows %s %s on the next check", i, s.sub, s.perm)
				}
			}
		})
	}
	// A grant is in force on the next check too, and DecideAt with the
	// version read for the request sees it.
	grant(t, b, "acme", cleo, rbac.ReportsOnly)
	v, err := a.Version(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	d, err := a.DecideAt(ctx, "acme", v, cleo, rbac.Reports, rbac.Read)
	if err != nil || !d.Allowed || d.Version != v {
		t.Errorf("DecideAt(version %d) = %+v, %v; want allowed at that version", v, d, err)
	}
	revoke(t, b, "acme", cleo, rbac.ReportsOnly)
	v2, _ := a.Version(ctx, "acme")
	if d, err := a.DecideAt(ctx, "acme", v2, cleo, rbac.Reports, rbac.Read); err != nil || d.Allowed {
		t.Errorf("DecideAt(version %d) after revocation = %+v, %v; want denied", v2, d, err)
	}
}

func TestCatchUpWithoutHistoryReloads(t *testing.T) {
	for name, rig := range map[string]func(f *faultyStore){
		"HistoryGone": func(f *faultyStore) { f.set("Changes", rbac.ErrHistoryGone) },
		"Gap": func(f *faultyStore) {
			f.changes = func(ch []rbac.Change) []rbac.Change { return ch[1:] }
		},
		"Lagging": func(f *faultyStore) {
			f.changes = func([]rbac.Change) []rbac.Change { return nil }
		},
	} {
		t.Run(name, func(t *testing.T) {
			st := newFaulty(nil)
			a, b := newEnforcer(t, st), newEnforcer(t, st)
			grant(t, a, "acme", ada, rbac.Admin)
			wantAllowed(t, b, "acme", ada, rbac.Users, rbac.Manage, true)
			rig(st)
			revoke(t, a, "acme", ada, rbac.Admin)
			grant(t, a, "acme", ada, rbac.ReportsOnly)
			loads := st.count("Policy")
			wantAllowed(t, b, "acme", ada, rbac.Users, rbac.Manage, false)
			wantAllowed(t, b, "acme", ada, rbac.Reports, rbac.Read, true)
			if st.count("Policy") != loads+1 {
				t.Errorf("replica b loaded the policy %d times, want once", st.count("Policy")-loads)
			}
		})
	}
}

func TestCatchUpUsesTheChangeLog(t *testing.T) {
	st := newFaulty(nil)
	a, b := newEnforcer(t, st), newEnforcer(t, st)
	grant(t, a, "acme", ada, rbac.Admin)
	wantAllowed(t, b, "acme", ada, rbac.Users, rbac.Manage, true)
	loads := st.count("Policy")
	for i := range 10 {
		grant(t, a, "acme", rbac.User(fmt.Sprint("u", i)), rbac.Member)
	}
	wantAllowed(t, b, "acme", rbac.User("u9"), rbac.Contacts, rbac.Write, true)
	if st.count("Policy") != loads {
		t.Errorf("a replica reloaded the whole policy instead of applying the change log")
	}
}

// SECURITY-CHECKLIST RB-8.
func TestEnforcerErrorsDeny(t *testing.T) {
	t.Run("Version", func(t *testing.T) {
		st := newFaulty(nil)
		e := newEnforcer(t, st)
		grant(t, e, "acme", ada, rbac.Owner)
		wantAllowed(t, e, "acme", ada, rbac.Billing, rbac.Manage, true)
		st.set("Version", errBroken)
		d, err := e.Decide(ctx, "acme", ada, rbac.Billing, rbac.Manage)
		if !errors.Is(err, errBroken) || d != (rbac.Decision{}) {
			t.Errorf("Decide with the store down = %+v, %v; want the zero Decision and the store's error", d, err)
		}
		if _, err := e.Permissions(ctx, "acme", ada); !errors.Is(err, errBroken) {
			t.Errorf("Permissions with the store down = %v", err)
		}
		if err := e.Grant(ctx, e.AllPerms(), "acme", bob, rbac.Member); !errors.Is(err, errBroken) {
			t.Errorf("Grant with the store down = %v", err)
		}
	})
	t.Run("Load", func(t *testing.T) {
		st := newFaulty(nil)
		seed := newEnforcer(t, st)
		grant(t, seed, "acme", ada, rbac.Owner)
		e := newEnforcer(t, st)
		st.set("Policy", errBroken)
		if d, err := e.Decide(ctx, "acme", ada, rbac.Reports, rbac.Read); !errors.Is(err, errBroken) || d.Allowed {
			t.Errorf("Decide with a failing load = %+v, %v", d, err)
		}
		st.set("Policy", nil)
		wantAllowed(t, e, "acme", ada, rbac.Reports, rbac.Read, true)
	})
	t.Run("Changes", func(t *testing.T) {
		st := newFaulty(nil)
		a, b := newEnforcer(t, st), newEnforcer(t, st)
		grant(t, a, "acme", ada, rbac.Owner)
		grant(t, a, "acme", bob, rbac.Admin)
		wantAllowed(t, b, "acme", bob, rbac.Users, rbac.Manage, true)
		revoke(t, a, "acme", bob, rbac.Admin)
		st.set("Changes", errBroken)
		if d, err := b.Decide(ctx, "acme", bob, rbac.Users, rbac.Manage); !errors.Is(err, errBroken) || d.Allowed {
			t.Errorf("Decide with a failing catch-up = %+v, %v; want an error, not the stale allow", d, err)
		}
		st.set("Changes", nil)
		wantAllowed(t, b, "acme", bob, rbac.Users, rbac.Manage, false)
	})
	t.Run("Update", func(t *testing.T) {
		st := newFaulty(nil)
		e := newEnforcer(t, st)
		st.set("Update", errBroken)
		if err := e.Grant(ctx, e.AllPerms(), "acme", ada, rbac.Owner); !errors.Is(err, errBroken) {
			t.Errorf("Grant with a failing Update = %v", err)
		}
		st.set("Update", nil)
		wantAllowed(t, e, "acme", ada, rbac.Reports, rbac.Read, false)
	})
	t.Run("StoreBehindItsVersion", func(t *testing.T) {
		// The store reports version 2 but serves the policy at version 1.
		inner := memstore.NewPolicies()
		seed := newEnforcer(t, inner)
		grant(t, seed, "acme", ada, rbac.Owner)
		grant(t, seed, "acme", bob, rbac.Member)
		st := &staleStore{PolicyStore: inner}
		e := newEnforcer(t, st)
		if d, err := e.Decide(ctx, "acme", ada, rbac.Reports, rbac.Read); err == nil || d.Allowed {
			t.Errorf("Decide on a store behind its version = %+v, %v; want an error", d, err)
		}
	})
	t.Run("CorruptRule", func(t *testing.T) {
		for name, r := range map[string]rbac.Rule{
			"UnknownType":        {Type: "deny", Role: "x", Section: rbac.Contacts, Action: rbac.Read},
			"WildcardSection":    {Type: rbac.RulePermission, Role: "x", Section: "*", Action: rbac.Read},
			"WildcardAction":     {Type: rbac.RulePermission, Role: "x", Section: rbac.Contacts, Action: "*"},
			"BuiltInPermission":  {Type: rbac.RulePermission, Role: rbac.Admin, Section: rbac.Billing, Action: rbac.Read},
			"BadRole":            {Type: rbac.RuleGrant, Role: "a,b", Subject: "user:ada"},
			"BadSubject":         {Type: rbac.RuleGrant, Role: rbac.Owner, Subject: "user:*"},
			"SubjectWithoutKind": {Type: rbac.RuleGrant, Role: rbac.Owner, Subject: "ada"},
			"GrantWithSection":   {Type: rbac.RuleGrant, Role: rbac.Owner, Subject: "user:ada", Section: rbac.Billing},
			"ApprovalWithRole":   {Type: rbac.RuleApproval, Role: "x", Section: rbac.Campaigns, Action: rbac.Send},
		} {
			t.Run(name, func(t *testing.T) {
				st := memstore.NewPolicies()
				if err := st.Update(ctx, "acme", 0, nil, []rbac.Rule{r, {Type: rbac.RuleGrant, Role: rbac.Owner, Subject: "user:bob"}}); err != nil {
					t.Fatal(err)
				}
				e := newEnforcer(t, st)
				d, err := e.Decide(ctx, "acme", bob, rbac.Reports, rbac.Read)
				var re *rbac.RuleError
				if !errors.As(err, &re) || d.Allowed {
					t.Errorf("Decide with a corrupt rule = %+v, %v; want a *RuleError and deny", d, err)
				}
				// The same rule arriving through the change log.
				st2 := memstore.NewPolicies()
				e2 := newEnforcer(t, st2)
				grant(t, e2, "acme", bob, rbac.Owner)
				wantAllowed(t, e2, "acme", bob, rbac.Reports, rbac.Read, true)
				if err := st2.Update(ctx, "acme", 1, nil, []rbac.Rule{r}); err != nil {
					t.Fatal(err)
				}
				if d, err := e2.Decide(ctx, "acme", bob, rbac.Reports, rbac.Read); !errors.As(err, &re) || d.Allowed {
					t.Errorf("Decide after a corrupt change = %+v, %v; want a *RuleError and deny", d, err)
				}
			})
		}
	})
	t.Run("UnknownHostSectionIsSkipped", func(t *testing.T) {
		// A rule naming a host section another replica has: this replica
		// ignores it and keeps deciding.
		st := memstore.NewPolicies()
		wide := newEnforcer(t, st, "automations")
		define(t, wide, "acme", "auto", rbac.P("automations", rbac.Write), rbac.P(rbac.Reports, rbac.Read))
		grant(t, wide, "acme", ada, "auto")
		narrow := newEnforcer(t, st)
		wantAllowed(t, narrow, "acme", ada, rbac.Reports, rbac.Read, true)
		wantAllowed(t, wide, "acme", ada, "automations", rbac.Write, true)
		if _, err := narrow.Decide(ctx, "acme", ada, "automations", rbac.Write); err == nil {
			t.Error("a replica without the section decided on it")
		}
	})
}

// staleStore reports one version more than the policy it serves.
type staleStore struct{ rbac.PolicyStore }

func (s *staleStore) Version(ctx2 context.Context, tenant string) (uint64, error) {
	v, err := s.PolicyStore.Version(ctx2, tenant)
	return v + 1, err
}
