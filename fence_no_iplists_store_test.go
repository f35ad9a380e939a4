package guard_test

import (
	"context"
	"errors"
	"io"
	"sync"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/store/memstore"
)

// A ring-fenced tenant whose stores have no IP allow-list store "has no IP
// allow-lists" (TenantOpener). Setting one is then refused as on a Guard
// without Stores.IPLists: ErrIPListsNotConfigured, a configuration answer,
// not ErrUnavailable (503, "try again"), which routedIPLists.Replace's
// ErrIPListsNotConfigured becomes in SetIPAllowList
// (unavailable("set ip allow-list", …)).
func TestFencedTenantWithoutIPListStoreSaysNotConfigured(t *testing.T) {
	g, err := guard.New(guard.Config{Stores: memstore.New().Stores().Shared(), AuditKey: auditKey, Hasher: fastHasher,
		OpenTenant: openerWithout(func(st *guard.Stores) { st.IPLists = nil })}) // this tenant has no IP allow-lists
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	ctx := context.Background()
	sys := guard.System("test")
	if _, err := g.CreateTenant(ctx, sys, "acme", "Acme", guard.Policy{}); err != nil {
		t.Fatal(err)
	}
	_, err = g.SetIPAllowList(ctx, sys, "acme", guard.IPListChange{Scope: ipfilter.Users, Entries: []string{"192.0.2.0/24"}})
	if !errors.Is(err, guard.ErrIPListsNotConfigured) || errors.Is(err, guard.ErrUnavailable) {
		t.Errorf("SetIPAllowList on a tenant without allow-lists = %v, want ErrIPListsNotConfigured, not ErrUnavailable", err)
	}
}

// openerWithout is a TenantOpener giving each tenant a memstore of its
// own (the same one at every open), with strip applied to its Stores.
func openerWithout(strip func(*guard.Stores)) guard.TenantOpener {
	var mu sync.Mutex
	dbs := map[string]*memstore.Store{}
	return func(_ context.Context, tenant string) (guard.Stores, io.Closer, error) {
		mu.Lock()
		defer mu.Unlock()
		if dbs[tenant] == nil {
			dbs[tenant] = memstore.New()
		}
		st := dbs[tenant].Stores()
		strip(&st)
		return st, nil, nil
	}
}
