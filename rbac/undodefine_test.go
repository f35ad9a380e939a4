package rbac_test

import (
	"errors"
	"slices"
	"testing"

	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/store/memstore"
)

// rolePerms returns the permissions of tenant's role name, sorted, and
// whether the tenant has it.
func rolePerms(t *testing.T, e *rbac.Enforcer, tenant, name string) ([]string, bool) {
	t.Helper()
	rs, err := e.Roles(ctx, tenant)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(rs, func(r rbac.RoleInfo) bool { return r.Name == name })
	if i < 0 {
		return nil, false
	}
	return sortedStrings(rs[i].Permissions), true
}

// UndoDefineRole puts back the permissions a definition replaced, or
// deletes the role it created with every grant of it (returning their
// holders), while the role is as that definition left it.
func TestUndoDefineRole(t *testing.T) {
	e := tenantWith(t)
	contacts, reports, billing := rbac.P(rbac.Contacts, rbac.Read), rbac.P(rbac.Reports, rbac.Read), rbac.P(rbac.Billing, rbac.Read)
	define(t, e, "acme", "crm", contacts)
	grant(t, e, "acme", dan, "crm")
	r := define(t, e, "acme", "crm", contacts, billing)
	if ps := perms(t, e, "acme", dan); !ps.Has(rbac.Billing, rbac.Read) {
		t.Fatalf("dan's permissions after the definition = %v, want billing:read", ps)
	}
	holders, err := e.UndoDefineRole(ctx, e.AllPerms(), "acme", "crm", []rbac.Permission{billing, contacts}, r.Prev)
	if err != nil || holders != nil {
		t.Fatalf("UndoDefineRole of a replacement = %v, %v; want no subject and no error", holders, err)
	}
	if got, _ := rolePerms(t, e, "acme", "crm"); !slices.Equal(got, []string{"contacts:read"}) {
		t.Errorf("crm after the undo = %v, want [contacts:read]", got)
	}
	if ps := perms(t, e, "acme", dan); !ps.Has(rbac.Contacts, rbac.Read) || ps.Has(rbac.Billing, rbac.Read) {
		t.Errorf("dan's permissions after the undo = %v, want contacts:read and not billing:read", ps)
	}

	r = define(t, e, "acme", "sales", reports)
	grant(t, e, "acme", bob, "sales")
	grant(t, e, "acme", key1, "sales")
	holders, err = e.UndoDefineRole(ctx, e.AllPerms(), "acme", "sales", []rbac.Permission{reports}, r.Prev)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := sortedStrings(holders), sortedStrings([]rbac.Subject{bob, key1}); !slices.Equal(got, want) {
		t.Errorf("UndoDefineRole of a new role returned %v, want %v (the grants it removed)", got, want)
	}
	if _, ok := rolePerms(t, e, "acme", "sales"); ok {
		t.Error("the new role is still there after the undo")
	}
	if rs, err := e.RolesOf(ctx, "acme", bob); err != nil || slices.Contains(rs, "sales") {
		t.Errorf("bob's roles after the undo = %v, %v; want no sales", rs, err)
	}
}

// A change landing after the definition to undo stands: the undo writes
// nothing and says so with ErrRoleChanged, whether the role was
// redefined since, deleted, or (created by the definition) redefined by
// another writer. Bad arguments are refused before anything is read.
func TestUndoDefineRoleKeepsALaterChange(t *testing.T) {
	mem := memstore.NewPolicies()
	e := newEnforcer(t, mem)
	contacts, reports, billing := rbac.P(rbac.Contacts, rbac.Read), rbac.P(rbac.Reports, rbac.Read), rbac.P(rbac.Billing, rbac.Read)
	define(t, e, "acme", "crm", contacts)
	r := define(t, e, "acme", "crm", reports)
	define(t, e, "acme", "crm", billing) // another definition, after
	v, err := e.Version(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	undo := func(name string, set []rbac.Permission, prev []rbac.Permission) {
		t.Helper()
		if holders, err := e.UndoDefineRole(ctx, e.AllPerms(), "acme", name, set, prev); !errors.Is(err, rbac.ErrRoleChanged) || holders != nil {
			t.Errorf("UndoDefineRole(%s) after a later change = %v, %v; want ErrRoleChanged", name, holders, err)
		}
	}
	undo("crm", []rbac.Permission{reports}, r.Prev)
	undo("crm", []rbac.Permission{reports}, nil)
	undo("gone", []rbac.Permission{reports}, nil) // deleted since (never there)
	if got, _ := rolePerms(t, e, "acme", "crm"); !slices.Equal(got, []string{"billing:read"}) {
		t.Errorf("crm after the refused undos = %v, want [billing:read] (the later definition)", got)
	}
	if v2, err := e.Version(ctx, "acme"); err != nil || v2 != v {
		t.Errorf("policy version %d after refused undos, was %d (%v): something was written", v2, v, err)
	}

	grant(t, e, "acme", dan, "crm")
	member := perms(t, e, "acme", dan)
	for name, call := range map[string]func() ([]rbac.Subject, error){
		"by a member": func() ([]rbac.Subject, error) {
			return e.UndoDefineRole(ctx, member, "acme", "crm", []rbac.Permission{billing}, []rbac.Permission{contacts})
		},
		"of a built-in role": func() ([]rbac.Subject, error) {
			return e.UndoDefineRole(ctx, e.AllPerms(), "acme", rbac.Admin, []rbac.Permission{billing}, nil)
		},
		"with no permission": func() ([]rbac.Subject, error) {
			return e.UndoDefineRole(ctx, e.AllPerms(), "acme", "crm", nil, []rbac.Permission{contacts})
		},
		"of an unknown section": func() ([]rbac.Subject, error) {
			return e.UndoDefineRole(ctx, e.AllPerms(), "acme", "crm", []rbac.Permission{billing}, []rbac.Permission{{Section: "nope", Action: rbac.Read}})
		},
	} {
		if holders, err := call(); err == nil || errors.Is(err, rbac.ErrRoleChanged) || holders != nil {
			t.Errorf("UndoDefineRole %s = %v, %v; want its own error", name, holders, err)
		}
	}
	if got, _ := rolePerms(t, e, "acme", "crm"); !slices.Equal(got, []string{"billing:read"}) {
		t.Errorf("crm after refused undos = %v, want [billing:read]", got)
	}
}
