package guard_test

import (
	"context"
	"errors"
	"io"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/sso"
	"github.com/guardhq/guard/store/memstore"
)

// CreateTenant refuses RequireSSO on ring-fenced tenants as elsewhere, with
// a *PolicyError (a new tenant has no IdP), not ErrUnavailable from looking
// for an IdP connection in stores that cannot be opened before the tenant
// exists.
func TestCreateTenantRequireSSOFenced(t *testing.T) {
	dbs := map[string]*memstore.Store{}
	open := func(_ context.Context, tenant string) (guard.Stores, io.Closer, error) {
		if dbs[tenant] == nil {
			dbs[tenant] = memstore.New()
		}
		return dbs[tenant].Stores(), nil, nil
	}
	spKey, spCert := keyPair(t, "sp")
	g, err := guard.New(guard.Config{Stores: memstore.New().Stores().Shared(), AuditKey: auditKey, Hasher: fastHasher, OpenTenant: open,
		SSO: &sso.Config{BaseURL: "https://sp.example.test", Key: spKey, Certificate: spCert}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	_, err = g.CreateTenant(t.Context(), guard.System("test"), betaTenant, "Beta", guard.Policy{RequireSSO: true})
	var pe *guard.PolicyError
	if !errors.As(err, &pe) || pe.Field != "RequireSSO" {
		t.Errorf("CreateTenant with RequireSSO, tenants ring-fenced: %v, want a *PolicyError on RequireSSO", err)
	}
	if _, err := g.Tenant(t.Context(), betaTenant); !errors.Is(err, guard.ErrTenantNotFound) {
		t.Errorf("tenant after the refused CreateTenant: %v, want ErrTenantNotFound", err)
	}
}
