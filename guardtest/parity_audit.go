package guardtest

import (
	"context"
	"testing"

	guard "github.com/guardhq/guard"
)

// runParityAudit holds the cases the store-parity audit added: points on
// which the backends were found to answer differently.
func runParityAudit(t *testing.T, newStore func(t *testing.T) guard.TenantStore) {
	ctx := context.Background()
	// ListTenants returns "at most limit tenants": a limit of 0 returns
	// none, as ListUsers does (see authtest's clarifications), on every
	// backend alike. A store that reads 0 as "no limit" hands a caller
	// who computed a remaining budget of 0 the whole tenant table.
	t.Run("AuditParity_ListTenantsLimitZeroListsNone", func(t *testing.T) {
		s := newStore(t)
		for _, id := range []string{"a", "b", "c"} {
			if err := s.CreateTenant(ctx, tenant(id)); err != nil {
				t.Fatal(err)
			}
		}
		for _, limit := range []int{0, -1} {
			page, err := s.ListTenants(ctx, "", limit)
			if err != nil {
				t.Fatalf("ListTenants(\"\", %d): %v", limit, err)
			}
			if len(page) != 0 {
				t.Errorf("ListTenants(\"\", %d) = %v, want no tenants (at most limit)", limit, ids(page))
			}
		}
	})
}
