package pgstore_test

import (
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
)

// A policy naming a break-glass user with a NUL byte (no user ID can hold
// one: PostgreSQL text cannot) is bad input: SetPolicy must refuse it with
// a *PolicyError, as it refuses an overlong or non-UTF-8 one, not report
// an outage (ErrUnavailable) because jsonb refuses "\u0000".
func TestReviewPolicyBreakGlassNULIsPolicyError(t *testing.T) {
	st := newStore(t)
	g := newFacade(t, st.Stores(), nil)
	ctx := t.Context()
	tn, err := g.Tenant(ctx, facadeTenant)
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.SetPolicy(ctx, guard.System("test"), facadeTenant, guard.Policy{BreakGlassUser: "ann\x00"}, tn.Version)
	var pe *guard.PolicyError
	if !errors.As(err, &pe) {
		t.Errorf("SetPolicy with a BreakGlassUser holding a NUL byte = %v (ErrUnavailable: %v), want a *PolicyError",
			err, errors.Is(err, guard.ErrUnavailable))
	}
	_, err = g.CreateTenant(ctx, guard.System("test"), "beta", "Beta", guard.Policy{BreakGlassUser: "ann\x00"})
	if !errors.As(err, &pe) {
		t.Errorf("CreateTenant with a BreakGlassUser holding a NUL byte = %v (ErrUnavailable: %v), want a *PolicyError",
			err, errors.Is(err, guard.ErrUnavailable))
	}
}
