package guard_test

import (
	"errors"
	"testing"
	"time"

	"github.com/guardhq/guard"
)

// Validate refuses an idle timeout longer than the session lifetime when
// both are set; a zero field is a default it does not know.
func TestValidateIdleTimeoutWithinLifetime(t *testing.T) {
	for _, tc := range []struct {
		name  string
		p     guard.Policy
		field string // "": valid
	}{
		{"idle beyond lifetime", guard.Policy{IdleTimeout: 3 * time.Hour, SessionLifetime: 2 * time.Hour}, "IdleTimeout"},
		{"idle equal to lifetime", guard.Policy{IdleTimeout: 2 * time.Hour, SessionLifetime: 2 * time.Hour}, ""},
		{"idle within lifetime", guard.Policy{IdleTimeout: time.Hour, SessionLifetime: 2 * time.Hour}, ""},
		{"lifetime left to the default", guard.Policy{IdleTimeout: 30 * 24 * time.Hour}, ""},
		{"idle left to the default", guard.Policy{SessionLifetime: time.Hour}, ""},
		// Bounded far from where a time added to them would overflow.
		{"lifetime of five years", guard.Policy{SessionLifetime: 5 * 366 * 24 * time.Hour}, ""},
		{"lifetime over five years", guard.Policy{SessionLifetime: 290 * 365 * 24 * time.Hour}, "SessionLifetime"},
		{"idle over five years", guard.Policy{IdleTimeout: 6 * 366 * 24 * time.Hour}, "IdleTimeout"},
		{"password age over five years", guard.Policy{PasswordMaxAge: 6 * 366 * 24 * time.Hour}, "PasswordMaxAge"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate()
			var pe *guard.PolicyError
			if tc.field == "" && err != nil || tc.field != "" && (!errors.As(err, &pe) || pe.Field != tc.field) {
				t.Errorf("Validate(%+v) = %v, want a *PolicyError on %q (none if empty)", tc.p, err, tc.field)
			}
		})
	}
}

// SetPolicy and CreateTenant compare the idle timeout with the lifetime
// with the Guard's defaults (24 h idle, 7 days) filled in, and store
// nothing they refuse.
func TestPolicyIdleTimeoutWithinEffectiveLifetime(t *testing.T) {
	sys := guard.System("test")
	for _, tc := range []struct {
		name  string
		p     guard.Policy
		field string // "": accepted
	}{
		{"idle beyond lifetime", guard.Policy{IdleTimeout: 3 * time.Hour, SessionLifetime: 2 * time.Hour}, "IdleTimeout"},
		{"idle beyond the default lifetime", guard.Policy{IdleTimeout: 8 * 24 * time.Hour}, "IdleTimeout"},
		{"lifetime below the default idle timeout", guard.Policy{SessionLifetime: 2 * time.Hour}, "SessionLifetime"},
		{"idle within the default lifetime", guard.Policy{IdleTimeout: 7 * 24 * time.Hour}, ""},
		{"lifetime above the default idle timeout", guard.Policy{SessionLifetime: 24 * time.Hour}, ""},
		{"both within", guard.Policy{IdleTimeout: time.Hour, SessionLifetime: 2 * time.Hour}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			check := func(call string, err error) {
				t.Helper()
				var pe *guard.PolicyError
				if tc.field == "" && err != nil || tc.field != "" && (!errors.As(err, &pe) || pe.Field != tc.field) {
					t.Errorf("%s(%+v) = %v, want a *PolicyError on %q (none if empty)", call, tc.p, err, tc.field)
				}
			}
			_, err := f.g.SetPolicy(f.ctx, sys, tenantID, tc.p, 1)
			check("SetPolicy", err)
			if tn, err := f.g.Tenant(f.ctx, tenantID); err != nil || tc.field != "" && (tn.Version != 1 || tn.Policy != (guard.Policy{})) {
				t.Errorf("after a refused SetPolicy: %+v, %v; want the policy unchanged", tn, err)
			}
			_, err = f.g.CreateTenant(f.ctx, sys, "globex", "Globex", tc.p)
			check("CreateTenant", err)
			if _, err := f.g.Tenant(f.ctx, "globex"); tc.field != "" && !errors.Is(err, guard.ErrTenantNotFound) {
				t.Errorf("after a refused CreateTenant: %v, want ErrTenantNotFound", err)
			}
		})
	}
	// The Guard's own defaults are what a zero field is compared with.
	f := newFixture(t, func(c *guard.Config) {
		c.Defaults = guard.Policy{IdleTimeout: time.Hour, SessionLifetime: 2 * time.Hour}
	})
	if _, err := f.g.SetPolicy(f.ctx, sys, tenantID, guard.Policy{SessionLifetime: 90 * time.Minute}, 1); err != nil {
		t.Errorf("a lifetime above the Guard's default idle timeout: %v", err)
	}
	var pe *guard.PolicyError
	if _, err := f.g.SetPolicy(f.ctx, sys, tenantID, guard.Policy{IdleTimeout: 3 * time.Hour}, 2); !errors.As(err, &pe) || pe.Field != "IdleTimeout" {
		t.Errorf("an idle timeout beyond the Guard's default lifetime: %v, want a *PolicyError on IdleTimeout", err)
	}
}
