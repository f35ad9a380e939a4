package guard_test

import (
	"context"
	"io"
	"sync"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/store/memstore"
)

// A tenant whose creation cannot be recorded is not created: CreateTenant
// returns ErrUnavailable and leaves no tenant behind, as CreateUser does,
// so that a retry once the audit log is back creates it and records
// tenant.created. So too with ring-fenced tenants, whose audit log is in
// the tenant's own stores.
func TestCreateTenantUnrecordedIsUndone(t *testing.T) {
	sys := guard.System("test")
	cases := []struct {
		name   string
		mutate func(fa **failingAudit) func(*guard.Config)
	}{
		{"shared", withFailingAudit},
		{"fenced", func(fa **failingAudit) func(*guard.Config) {
			*fa = &failingAudit{Audit: memstore.NewAudit()}
			return func(c *guard.Config) {
				var mu sync.Mutex
				dbs := map[string]guard.Stores{}
				c.OpenTenant = func(_ context.Context, tenant string) (guard.Stores, io.Closer, error) {
					mu.Lock()
					defer mu.Unlock()
					st, ok := dbs[tenant]
					if !ok {
						st = memstore.New().Stores()
						if tenant == betaTenant {
							st.Audit = *fa
						}
						dbs[tenant] = st
					}
					return st, nil, nil
				}
				c.Stores = c.Stores.Shared()
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var fa *failingAudit
			f := newFixture(t, c.mutate(&fa))
			fa.set(true)
			_, err := f.g.CreateTenant(f.ctx, sys, betaTenant, "Beta", guard.Policy{})
			fa.set(false)
			wantUnavailable(t, "CreateTenant", err)
			if _, err := f.g.Tenant(f.ctx, betaTenant); err == nil {
				t.Errorf("the tenant exists after CreateTenant failed to record its creation")
			}
			if _, err := f.g.CreateTenant(f.ctx, sys, betaTenant, "Beta", guard.Policy{}); err != nil {
				t.Fatalf("CreateTenant again, the audit log back: %v", err)
			}
			p, err := f.g.QueryAudit(f.ctx, sys, betaTenant, audit.Query{Action: string(audit.TenantCreated)})
			if err != nil || len(p.Events) != 1 {
				t.Errorf("tenant.created events: %d (%v), want 1", len(p.Events), err)
			}
		})
	}
}
