package rbac_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/store/memstore"
)

// newEnforcer returns an Enforcer on store (a fresh memstore if nil).
func newEnforcer(t testing.TB, store rbac.PolicyStore, sections ...rbac.Section) *rbac.Enforcer {
	t.Helper()
	if store == nil {
		store = memstore.NewPolicies()
	}
	e, err := rbac.New(rbac.Config{Store: store, Sections: sections})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

var ctx = context.Background()

func grant(t testing.TB, e *rbac.Enforcer, tenant string, sub rbac.Subject, role string) {
	t.Helper()
	if err := e.Grant(ctx, e.AllPerms(), tenant, sub, role); err != nil {
		t.Fatalf("Grant(%s, %s, %s): %v", tenant, sub, role, err)
	}
}

func revoke(t testing.TB, e *rbac.Enforcer, tenant string, sub rbac.Subject, role string) {
	t.Helper()
	if err := e.Revoke(ctx, e.AllPerms(), tenant, sub, role); err != nil {
		t.Fatalf("Revoke(%s, %s, %s): %v", tenant, sub, role, err)
	}
}

// define is DefineRole by AllPerms, failing the test on an error.
func define(t testing.TB, e *rbac.Enforcer, tenant, role string, perms ...rbac.Permission) rbac.Redefinition {
	t.Helper()
	r, err := e.DefineRole(ctx, e.AllPerms(), tenant, role, perms)
	if err != nil {
		t.Fatalf("DefineRole(%s, %s): %v", tenant, role, err)
	}
	return r
}

func allowed(t testing.TB, e *rbac.Enforcer, tenant string, sub rbac.Subject, s rbac.Section, a rbac.Action) bool {
	t.Helper()
	d, err := e.Decide(ctx, tenant, sub, s, a)
	if err != nil {
		t.Fatalf("Decide(%s, %s, %s:%s): %v", tenant, sub, s, a, err)
	}
	return d.Allowed
}

func wantAllowed(t testing.TB, e *rbac.Enforcer, tenant string, sub rbac.Subject, s rbac.Section, a rbac.Action, want bool) {
	t.Helper()
	if got := allowed(t, e, tenant, sub, s, a); got != want {
		t.Errorf("Decide(%s, %s, %s:%s).Allowed = %v, want %v", tenant, sub, s, a, got, want)
	}
}

func perms(t testing.TB, e *rbac.Enforcer, tenant string, sub rbac.Subject) rbac.Perms {
	t.Helper()
	p, err := e.Permissions(ctx, tenant, sub)
	if err != nil {
		t.Fatalf("Permissions(%s, %s): %v", tenant, sub, err)
	}
	return p
}

// faultyStore wraps a PolicyStore and fails the methods named in fail.
type faultyStore struct {
	rbac.PolicyStore
	mu      sync.Mutex
	fail    map[string]error
	changes func([]rbac.Change) []rbac.Change // rewrites what Changes returns
	rules   func([]rbac.Rule) []rbac.Rule     // rewrites what Policy returns
	calls   map[string]int
}

var errBroken = errors.New("store is down")

func newFaulty(st rbac.PolicyStore) *faultyStore {
	if st == nil {
		st = memstore.NewPolicies()
	}
	return &faultyStore{PolicyStore: st, fail: map[string]error{}, calls: map[string]int{}}
}

func (f *faultyStore) set(method string, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err == nil {
		delete(f.fail, method)
	} else {
		f.fail[method] = err
	}
}

func (f *faultyStore) check(method string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls[method]++
	return f.fail[method]
}

func (f *faultyStore) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls[method]
}

func (f *faultyStore) Policy(ctx context.Context, tenant string) ([]rbac.Rule, uint64, error) {
	if err := f.check("Policy"); err != nil {
		return nil, 0, err
	}
	rules, v, err := f.PolicyStore.Policy(ctx, tenant)
	if f.rules != nil {
		rules = f.rules(rules)
	}
	return rules, v, err
}

func (f *faultyStore) Version(ctx context.Context, tenant string) (uint64, error) {
	if err := f.check("Version"); err != nil {
		return 0, err
	}
	return f.PolicyStore.Version(ctx, tenant)
}

func (f *faultyStore) Update(ctx context.Context, tenant string, expect uint64, remove, add []rbac.Rule) error {
	if err := f.check("Update"); err != nil {
		return err
	}
	return f.PolicyStore.Update(ctx, tenant, expect, remove, add)
}

func (f *faultyStore) Changes(ctx context.Context, tenant string, since uint64) ([]rbac.Change, error) {
	if err := f.check("Changes"); err != nil {
		return nil, err
	}
	ch, err := f.PolicyStore.Changes(ctx, tenant, since)
	if f.changes != nil && err == nil {
		ch = f.changes(ch)
	}
	return ch, err
}

// errOf returns the error of a call that returns a value and an error.
func errOf[T any](_ T, err error) error { return err }
