package guard_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/rbac"
)

// hookedDeactivate runs hook (once) just before the first status write of
// a deactivation (auth.UserUpdater.Deactivate).
type hookedDeactivate struct {
	auth.UserUpdater
	once sync.Once
	hook func()
}

func (h *hookedDeactivate) Deactivate(ctx context.Context, tenant, id string) (bool, error) {
	h.once.Do(func() {
		if h.hook != nil {
			h.hook()
		}
	})
	return h.UserUpdater.Deactivate(ctx, tenant, id)
}

// hookedRBACUpdate runs hook (once) just before the first role-grant
// write once armed.
type hookedRBACUpdate struct {
	rbac.PolicyStore
	mu   sync.Mutex
	hook func()
}

func (h *hookedRBACUpdate) Update(ctx context.Context, tenant string, expect uint64, remove, add []rbac.Rule) error {
	h.mu.Lock()
	hook := h.hook
	h.hook = nil
	h.mu.Unlock()
	if hook != nil {
		hook()
	}
	return h.PolicyStore.Update(ctx, tenant, expect, remove, add)
}

// Policy.BreakGlassUser: "While RequireSSO is on, the user cannot lose the
// owner role, be deactivated or deleted, nor lose their last confirmed
// second factor, even to removals made at once (ErrBreakGlassUser)". The
// factor removal writes, then reads the policy again (each side writes,
// then reads the other's: TestBreakGlassNamingRacesFactorRemoval); a
// deactivation, a deletion and a revocation of the owner role read the
// policy only before their write. A SetPolicy naming the owner that lands
// between that read and the write checks the owner (still active, still
// an owner) and stands; the removal then goes through, and the tenant
// requires SSO with a break-glass owner who cannot sign in.
func TestReviewBreakGlassNamingRacesOwnerRemoval(t *testing.T) {
	sys := guard.System("test")
	setup := func(t *testing.T, st guard.Stores) (*ssoSite, guard.User, int64) {
		s := newSSOSiteOn(t, st)
		s.userWithTOTP(t, "first@corp.example", rbac.Owner) // another owner: the last-owner rule does not apply
		bg, _ := s.userWithTOTP(t, "bg@corp.example", rbac.Owner)
		tn, err := s.g.Tenant(t.Context(), tenantID)
		if err != nil {
			t.Fatal(err)
		}
		return s, bg, tn.Version
	}
	check := func(t *testing.T, s *ssoSite, bg guard.User, setErr, err error, what string) {
		t.Helper()
		if setErr != nil {
			t.Fatalf("SetPolicy naming the owner: %v", setErr)
		}
		tn, terr := s.g.Tenant(t.Context(), tenantID)
		if terr != nil {
			t.Fatal(terr)
		}
		if !tn.Policy.RequireSSO || tn.Policy.BreakGlassUser != bg.ID {
			return // the policy was put back: fine
		}
		if !errors.Is(err, guard.ErrBreakGlassUser) {
			t.Errorf("%s of the owner named break-glass owner meanwhile: %v, want ErrBreakGlassUser", what, err)
		}
		u, uerr := s.g.User(t.Context(), sys, tenantID, bg.ID)
		if uerr != nil || u.Status != auth.StatusActive {
			t.Errorf("the break-glass owner after %s: %+v, %v; want active", what, u, uerr)
		}
		roles, rerr := s.g.RolesOf(t.Context(), sys, tenantID, "user:"+bg.ID)
		if rerr != nil || len(roles) != 1 || roles[0] != rbac.Owner {
			t.Errorf("the break-glass owner's roles after %s: %v, %v; want [owner]", what, roles, rerr)
		}
	}
	for _, what := range []string{"DeactivateUser", "DeleteUser"} {
		t.Run(what, func(t *testing.T) {
			st := newMem()
			hu := &hookedDeactivate{UserUpdater: st.UserUpdates}
			st.UserUpdates = hu
			s, bg, v := setup(t, st)
			var setErr error
			hu.hook = func() { // the policy names them between the removal's read of it and its write
				_, setErr = s.g.SetPolicy(t.Context(), sys, tenantID, guard.Policy{RequireSSO: true, BreakGlassUser: bg.ID}, v)
			}
			var err error
			if what == "DeactivateUser" {
				err = s.g.DeactivateUser(t.Context(), sys, tenantID, bg.ID)
			} else {
				err = s.g.DeleteUser(t.Context(), sys, tenantID, bg.ID)
			}
			check(t, s, bg, setErr, err, what)
		})
	}
	t.Run("RevokeRole owner", func(t *testing.T) {
		st := newMem()
		hp := &hookedRBACUpdate{PolicyStore: st.Policies}
		st.Policies = hp
		s, bg, v := setup(t, st)
		var setErr error
		hp.mu.Lock()
		hp.hook = func() {
			_, setErr = s.g.SetPolicy(t.Context(), sys, tenantID, guard.Policy{RequireSSO: true, BreakGlassUser: bg.ID}, v)
		}
		hp.mu.Unlock()
		err := s.g.RevokeRole(t.Context(), sys, tenantID, "user:"+bg.ID, rbac.Owner)
		check(t, s, bg, setErr, err, "RevokeRole owner")
	})
}
