package guard_test

import (
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
)

// An expiry more than a hundred years ahead is refused as bad input; one
// just within is accepted.
func TestCreateAPIKeyExpiryBound(t *testing.T) {
	f := newFixture(t)
	sys := guard.System("test")
	now := f.clock.Now()
	_, _, err := f.g.CreateAPIKey(f.ctx, sys, guard.NewAPIKey{Tenant: tenantID, Name: "far", ExpiresAt: now.AddDate(100, 0, 1)})
	var ie *guard.InputError
	if !errors.As(err, &ie) || ie.Field != "expiry" {
		t.Errorf("expiry 100 years and a day ahead: %v, want an *InputError for expiry", err)
	}
	if _, _, err := f.g.CreateAPIKey(f.ctx, sys, guard.NewAPIKey{Tenant: tenantID, Name: "near", ExpiresAt: now.AddDate(99, 0, 0)}); err != nil {
		t.Errorf("expiry 99 years ahead: %v", err)
	}
}
