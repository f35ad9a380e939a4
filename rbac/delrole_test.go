package rbac_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/store/memstore"
)

// hookedUpdate wraps a PolicyStore and runs a hook, once, before the
// next Update it is given.
type hookedUpdate struct {
	rbac.PolicyStore
	mu   sync.Mutex
	hook func()
}

func (s *hookedUpdate) arm(hook func()) {
	s.mu.Lock()
	s.hook = hook
	s.mu.Unlock()
}

func (s *hookedUpdate) Update(ctx context.Context, tenant string, expect uint64, remove, add []rbac.Rule) error {
	s.mu.Lock()
	hook := s.hook
	s.hook = nil
	s.mu.Unlock()
	if hook != nil {
		hook()
	}
	return s.PolicyStore.Update(ctx, tenant, expect, remove, add)
}

// sortedStrings returns the string forms of xs (subjects, permissions),
// sorted.
func sortedStrings[T fmt.Stringer](xs []T) []string {
	out := make([]string, 0, len(xs))
	for _, x := range xs {
		out = append(out, x.String())
	}
	slices.Sort(out)
	return out
}

// DeleteRole returns the subjects whose grant it removed, users and API
// keys, and only those; no subject with an error.
func TestDeleteRoleReturnsItsHolders(t *testing.T) {
	e := tenantWith(t)
	define(t, e, "acme", "crm", rbac.P(rbac.Contacts, rbac.Read))
	define(t, e, "acme", "other", rbac.P(rbac.Reports, rbac.Read))
	grant(t, e, "acme", dan, "crm")
	grant(t, e, "acme", key1, "crm")
	grant(t, e, "acme", bob, "other")
	define(t, e, "globex", "crm", rbac.P(rbac.Contacts, rbac.Read))
	grant(t, e, "globex", ada, "crm")
	got, err := e.DeleteRole(ctx, e.AllPerms(), "acme", "crm")
	if err != nil {
		t.Fatal(err)
	}
	if want := sortedStrings([]rbac.Subject{dan, key1}); !slices.Equal(sortedStrings(got), want) {
		t.Errorf("DeleteRole returned %v, want %v", sortedStrings(got), want)
	}
	define(t, e, "acme", "empty", rbac.P(rbac.Reports, rbac.Read))
	if got, err := e.DeleteRole(ctx, e.AllPerms(), "acme", "empty"); err != nil || len(got) != 0 {
		t.Errorf("DeleteRole of a role nobody holds = %v, %v; want no subject", got, err)
	}
	for _, name := range []string{"crm", rbac.Admin, "a,b"} {
		if got, err := e.DeleteRole(ctx, e.AllPerms(), "acme", name); err == nil || got != nil {
			t.Errorf("DeleteRole(%q) = %v, %v; want no subject and an error", name, got, err)
		}
	}
	member := perms(t, e, "acme", dan)
	if got, err := e.DeleteRole(ctx, member, "acme", "other"); !errors.Is(err, rbac.ErrDenied) || got != nil {
		t.Errorf("DeleteRole by a member = %v, %v; want no subject and ErrDenied", got, err)
	}
}

// Another writer (a replica) changes the role's grants just before the
// deletion's write, which meets a moved version and is planned again:
// the subjects returned are those of the attempt that landed, the grant
// made meanwhile among them, the grant taken back meanwhile not.
func TestDeleteRoleReturnsTheHoldersItRemoved(t *testing.T) {
	mem := memstore.NewPolicies()
	st := &hookedUpdate{PolicyStore: mem}
	e := newEnforcer(t, st)
	other := newEnforcer(t, mem)
	define(t, e, "acme", "crm", rbac.P(rbac.Contacts, rbac.Read))
	grant(t, e, "acme", dan, "crm")
	grant(t, e, "acme", key1, "crm")
	st.arm(func() {
		grant(t, other, "acme", bob, "crm")
		revoke(t, other, "acme", dan, "crm")
	})
	got, err := e.DeleteRole(ctx, e.AllPerms(), "acme", "crm")
	if err != nil {
		t.Fatal(err)
	}
	if want := sortedStrings([]rbac.Subject{bob, key1}); !slices.Equal(sortedStrings(got), want) {
		t.Errorf("DeleteRole returned %v, want %v (the holders when it landed)", sortedStrings(got), want)
	}
	for _, s := range []rbac.Subject{bob, dan, key1} {
		if rs, err := other.RolesOf(ctx, "acme", s); err != nil || slices.Contains(rs, "crm") {
			t.Errorf("RolesOf(%s) after the deletion = %v, %v; want no crm", s, rs, err)
		}
	}
}
