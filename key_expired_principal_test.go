package guard_test

import (
	"errors"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/rbac"
)

// A Principal the host made for an API key (keyBound: "a Principal not
// made by AuthenticateAPIKey", read from the store when needed) may do
// nothing once its key is no longer usable: an expired key authenticates
// nothing, so a principal naming it must not act with its roles either.
// An expired key keeps its roles until it is purged (dropPurgedKeyGrants),
// and keyCreatorOf finds it in the tenant's list without checking
// UsableAt, so a host job queued by the key and run after its expiry, or
// any host-made principal naming it, is allowed everything the key's
// roles allow.
func TestHostMadePrincipalOfExpiredKeyMayDoNothing(t *testing.T) {
	f := newFixture(t)
	owner, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	key, k, err := f.g.CreateAPIKey(f.ctx, owner, guard.NewAPIKey{Tenant: tenantID, Name: "sync",
		ExpiresAt: f.clock.Now().Add(time.Hour), Roles: []string{rbac.ReportsOnly}})
	if err != nil {
		t.Fatal(err)
	}
	made := guard.Principal{Kind: guard.KindAPIKey, Tenant: tenantID, KeyID: k.ID}
	if _, err := f.g.Authorize(f.ctx, made, rbac.Reports, rbac.Read); err != nil {
		t.Fatalf("live key: Authorize = %v, want allowed", err)
	}
	f.clock.Advance(2 * time.Hour)
	if _, err := f.g.AuthenticateAPIKey(f.ctx, key, apikeyAuditAddr); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Fatalf("expired key: AuthenticateAPIKey = %v, want ErrUnauthenticated", err)
	}
	if d, err := f.g.Authorize(f.ctx, made, rbac.Reports, rbac.Read); !errors.Is(err, guard.ErrForbidden) {
		t.Errorf("host-made principal of the expired key: Authorize = %+v, %v; want ErrForbidden", d, err)
	}
	if ok, err := f.g.Can(f.ctx, made, rbac.Reports, rbac.Read); ok {
		t.Errorf("host-made principal of the expired key: Can = %v, %v; want false", ok, err)
	}
}
