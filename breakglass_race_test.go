package guard_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/rbac"
)

// hookedFactorDelete runs hook (once) just before the first factor deletion.
type hookedFactorDelete struct {
	mfa.FactorStore
	once sync.Once
	hook func()
}

func (h *hookedFactorDelete) DeleteFactor(ctx context.Context, tenant, userID, id string) (mfa.Factor, error) {
	h.once.Do(func() {
		if h.hook != nil {
			h.hook()
		}
	})
	return h.FactorStore.DeleteFactor(ctx, tenant, userID, id)
}

// hookedPolicy runs hook (once) just before the first policy write.
type hookedPolicy struct {
	guard.TenantStore
	once sync.Once
	hook func()
}

func (h *hookedPolicy) SetPolicy(ctx context.Context, id string, p guard.Policy, version int64) (int64, error) {
	h.once.Do(func() {
		if h.hook != nil {
			h.hook()
		}
	})
	return h.TenantStore.SetPolicy(ctx, id, p, version)
}

// Naming a break-glass owner while their last factor is being removed
// never leaves a break-glass owner without a factor, whichever comes
// first: each side writes, then reads the other's.
func TestBreakGlassNamingRacesFactorRemoval(t *testing.T) {
	sys := guard.System("test")
	t.Run("the removal read the policy before it named the owner", func(t *testing.T) {
		st := newMem()
		fs := &hookedFactorDelete{FactorStore: st.MFA.Factors}
		st.MFA.Factors = fs
		s := newSSOSiteOn(t, st)
		ctx := t.Context()
		owner, _ := s.userWithTOTP(t, "owner@corp.example", rbac.Owner)
		tn, _ := s.g.Tenant(ctx, tenantID)
		var setErr error
		fs.hook = func() { // the policy is written between the removal's read of it and its delete
			_, setErr = s.g.SetPolicy(ctx, sys, tenantID, guard.Policy{RequireSSO: true, BreakGlassUser: owner.ID}, tn.Version)
		}
		factors, err := s.g.Factors(ctx, sys, tenantID, owner.ID)
		if err != nil || len(factors) != 1 {
			t.Fatalf("factors %v, %v", factors, err)
		}
		err = s.g.RemoveFactor(ctx, sys, tenantID, owner.ID, factors[0].ID)
		if setErr != nil {
			t.Fatalf("SetPolicy naming the owner: %v", setErr)
		}
		if !errors.Is(err, guard.ErrBreakGlassUser) {
			t.Errorf("RemoveFactor of the owner named meanwhile: %v, want ErrBreakGlassUser", err)
		}
		if left, _ := s.g.Factors(ctx, sys, tenantID, owner.ID); len(left) != 1 || !left[0].Confirmed() {
			t.Errorf("the break-glass owner's factors %v, want their one, confirmed", left)
		}
		if r := reasons(s.events(t, audit.MFARemoved)); r["break_glass_user"] != 1 || r[""] != 0 {
			t.Errorf("mfa.removed reasons %v, want one break_glass_user refusal", r)
		}
	})
	t.Run("the policy checked the factors before the removal", func(t *testing.T) {
		st := newMem()
		ts := &hookedPolicy{TenantStore: st.Tenants}
		st.Tenants = ts
		s := newSSOSiteOn(t, st)
		ctx := t.Context()
		owner, _ := s.userWithTOTP(t, "owner@corp.example", rbac.Owner)
		tn, _ := s.g.Tenant(ctx, tenantID)
		factors, err := s.g.Factors(ctx, sys, tenantID, owner.ID)
		if err != nil || len(factors) != 1 {
			t.Fatalf("factors %v, %v", factors, err)
		}
		var rmErr error
		ts.hook = func() { // the factor goes between SetPolicy's check and its write
			rmErr = s.g.RemoveFactor(ctx, sys, tenantID, owner.ID, factors[0].ID)
		}
		_, err = s.g.SetPolicy(ctx, sys, tenantID, guard.Policy{RequireSSO: true, BreakGlassUser: owner.ID}, tn.Version)
		if rmErr != nil {
			t.Fatalf("RemoveFactor: %v", rmErr)
		}
		var pe *guard.PolicyError
		if !errors.As(err, &pe) || pe.Field != "BreakGlassUser" {
			t.Errorf("SetPolicy naming an owner whose last factor went meanwhile: %v, want a PolicyError on BreakGlassUser", err)
		}
		tn2, err := s.g.Tenant(ctx, tenantID)
		if err != nil {
			t.Fatal(err)
		}
		if tn2.Policy.RequireSSO || tn2.Policy.BreakGlassUser != "" {
			t.Errorf("policy after the refusal %+v, want the one before", tn2.Policy)
		}
	})
}
