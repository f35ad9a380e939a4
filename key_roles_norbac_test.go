package guard_test

import (
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// Without roles configured (no Stores.Policies), CreateAPIKey cannot grant
// the roles asked for. The request is refused, so it must change nothing:
// no key stored (not even a revoked one, which counts in the list and in
// access reviews), no apikey.created and apikey.revoked pair in the log.
// Today the key is stored and recorded as created, then revoked by the
// rollback of the failed GrantRole.
func TestCreateAPIKeyRolesWithoutRBACChangesNothing(t *testing.T) {
	f := newFixture(t, func(c *guard.Config) { c.Stores.Policies, c.Stores.Approvals = nil, nil })
	f.createUser(t, "olga@example.test", ownerPW)
	by, _ := f.signIn(t, "olga@example.test")
	before := len(f.events(t, ""))
	_, _, err := f.g.CreateAPIKey(f.ctx, by, guard.NewAPIKey{Tenant: tenantID, Name: "sync", Roles: []string{"admin"}})
	if err == nil {
		t.Fatal("CreateAPIKey with roles and no RBAC succeeded")
	}
	if !errors.Is(err, guard.ErrRolesNotConfigured) {
		t.Logf("err = %v", err)
	}
	ks, lerr := f.g.ListAPIKeys(f.ctx, guard.System("test"), tenantID)
	if lerr != nil {
		t.Fatal(lerr)
	}
	if len(ks) != 0 {
		t.Errorf("refused CreateAPIKey (%v) left %d key(s) stored: %+v", err, len(ks), ks)
	}
	if evs := f.events(t, "")[before:]; len(evs) != 0 {
		var as []audit.Action
		for _, e := range evs {
			as = append(as, e.Action)
		}
		t.Errorf("refused CreateAPIKey (%v) recorded %v", err, as)
	}
}
