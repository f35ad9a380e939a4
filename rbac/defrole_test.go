package rbac_test

import (
	"slices"
	"testing"

	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/store/memstore"
)

// DefineRole returns the role's permissions before the change (nil for
// a new role) and the subjects of the tenant holding it, users and API
// keys; the zero Redefinition with an error.
func TestDefineRoleReturnsWhatItReplaced(t *testing.T) {
	e := tenantWith(t)
	if r := define(t, e, "acme", "crm", rbac.P(rbac.Contacts, rbac.Read)); r.Prev != nil || len(r.Holders) != 0 {
		t.Errorf("DefineRole of a new role = %+v, want no permissions before and no holder", r)
	}
	grant(t, e, "acme", dan, "crm")
	grant(t, e, "acme", key1, "crm")
	define(t, e, "globex", "crm", rbac.P(rbac.Reports, rbac.Read))
	grant(t, e, "globex", ada, "crm")
	r := define(t, e, "acme", "crm", rbac.P(rbac.Contacts, rbac.Read), rbac.P(rbac.Reports, rbac.Read))
	if got, want := sortedStrings(r.Prev), []string{"contacts:read"}; !slices.Equal(got, want) {
		t.Errorf("Prev = %v, want %v", got, want)
	}
	if got, want := sortedStrings(r.Holders), sortedStrings([]rbac.Subject{dan, key1}); !slices.Equal(got, want) {
		t.Errorf("Holders = %v, want %v", got, want)
	}
	// A definition that changes nothing returns the role as it is.
	r = define(t, e, "acme", "crm", rbac.P(rbac.Reports, rbac.Read), rbac.P(rbac.Contacts, rbac.Read))
	if got, want := sortedStrings(r.Prev), []string{"contacts:read", "reports:read"}; !slices.Equal(got, want) {
		t.Errorf("Prev of an unchanged definition = %v, want %v", got, want)
	}
	if got, want := sortedStrings(r.Holders), sortedStrings([]rbac.Subject{dan, key1}); !slices.Equal(got, want) {
		t.Errorf("Holders of an unchanged definition = %v, want %v", got, want)
	}
	member := perms(t, e, "acme", dan)
	for name, call := range map[string]func() (rbac.Redefinition, error){
		"by a member": func() (rbac.Redefinition, error) {
			return e.DefineRole(ctx, member, "acme", "crm", []rbac.Permission{rbac.P(rbac.Contacts, rbac.Read)})
		},
		"of a built-in role": func() (rbac.Redefinition, error) {
			return e.DefineRole(ctx, e.AllPerms(), "acme", rbac.Admin, []rbac.Permission{rbac.P(rbac.Contacts, rbac.Read)})
		},
		"with no permission": func() (rbac.Redefinition, error) { return e.DefineRole(ctx, e.AllPerms(), "acme", "crm", nil) },
	} {
		if r, err := call(); err == nil || r.Prev != nil || r.Holders != nil {
			t.Errorf("DefineRole %s = %+v, %v; want the zero Redefinition and an error", name, r, err)
		}
	}
}

// Another writer (a replica) redefines the role and changes its grants
// just before the definition's write, which meets a moved version and is
// planned again: what DefineRole returns is what the attempt that landed
// found, the other definition as Prev, the grant made meanwhile among
// the holders, the grant taken back meanwhile not.
func TestDefineRoleReturnsTheRoleAsItLanded(t *testing.T) {
	mem := memstore.NewPolicies()
	st := &hookedUpdate{PolicyStore: mem}
	e := newEnforcer(t, st)
	other := newEnforcer(t, mem)
	define(t, e, "acme", "crm", rbac.P(rbac.Contacts, rbac.Read))
	grant(t, e, "acme", dan, "crm")
	grant(t, e, "acme", key1, "crm")
	st.arm(func() {
		define(t, other, "acme", "crm", rbac.P(rbac.Contacts, rbac.Read), rbac.P(rbac.Billing, rbac.Read))
		grant(t, other, "acme", bob, "crm")
		revoke(t, other, "acme", dan, "crm")
	})
	r := define(t, e, "acme", "crm", rbac.P(rbac.Reports, rbac.Read))
	if got, want := sortedStrings(r.Prev), []string{"billing:read", "contacts:read"}; !slices.Equal(got, want) {
		t.Errorf("Prev = %v, want %v (the role when the change landed)", got, want)
	}
	if got, want := sortedStrings(r.Holders), sortedStrings([]rbac.Subject{bob, key1}); !slices.Equal(got, want) {
		t.Errorf("Holders = %v, want %v (the holders when the change landed)", got, want)
	}
	if ps := perms(t, other, "acme", bob); !ps.Has(rbac.Reports, rbac.Read) || ps.Has(rbac.Contacts, rbac.Read) {
		t.Errorf("bob's permissions after the definition = %v, want reports:read and not contacts:read", ps)
	}
}
