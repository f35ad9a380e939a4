package guard_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
)

// hookedIdle runs hook (once) just before the first dormant deactivation
// write (auth.UserUpdater.DeactivateIdle).
type hookedIdle struct {
	auth.UserUpdater
	once sync.Once
	hook func()
}

func (h *hookedIdle) DeactivateIdle(ctx context.Context, tenant, id string, idleSince time.Time) error {
	h.once.Do(func() {
		if h.hook != nil {
			h.hook()
		}
	})
	return h.UserUpdater.DeactivateIdle(ctx, tenant, id, idleSince)
}

// Without RBAC the break-glass owner is any active user with a second
// factor, and no owner rule keeps them from DeactivateDormant: a SetPolicy
// naming a dormant user while the run deactivates them has the
// deactivation set back, recorded as a failed user.deactivated with reason
// break_glass_user, and the user passed over.
func TestBreakGlassNamingRacesDormantDeactivation(t *testing.T) {
	sys := guard.System("test")
	st := newMem()
	st.Policies, st.Approvals = nil, nil // no RBAC
	hi := &hookedIdle{UserUpdater: st.UserUpdates}
	st.UserUpdates = hi
	clk := &clock{t: time.Now().UTC()}
	s := newSSOSiteOn(t, st, func(c *guard.Config) { c.Now = clk.Now })
	bg, err := s.g.CreateUser(t.Context(), sys, guard.NewUser{Tenant: tenantID, Email: "bg@corp.example", Password: ownerPW})
	if err != nil {
		t.Fatal(err)
	}
	s.enrolTOTP(t, "bg@corp.example", ownerPW)
	tn, err := s.g.Tenant(t.Context(), tenantID)
	if err != nil {
		t.Fatal(err)
	}
	pol := tn.Policy
	pol.AutoDeactivateDormant, pol.DormantAfter = true, 30*24*time.Hour
	v, err := s.g.SetPolicy(t.Context(), sys, tenantID, pol, tn.Version)
	if err != nil {
		t.Fatal(err)
	}
	clk.Advance(31 * 24 * time.Hour)
	var setErr error
	hi.hook = func() { // the policy names them between the run's read of it and its write
		p := pol
		p.RequireSSO, p.BreakGlassUser = true, bg.ID
		_, setErr = s.g.SetPolicy(t.Context(), sys, tenantID, p, v)
	}
	done, err := s.g.DeactivateDormant(t.Context(), guard.System("cron"), tenantID)
	if setErr != nil {
		t.Fatalf("SetPolicy naming the user: %v", setErr)
	}
	if err != nil || slices.Contains(done, bg.ID) {
		t.Errorf("DeactivateDormant = %v, %v; want the break-glass owner passed over, no error", done, err)
	}
	if u, err := s.g.User(t.Context(), sys, tenantID, bg.ID); err != nil || u.Status != auth.StatusActive {
		t.Errorf("the break-glass owner after DeactivateDormant: %v, %v; want active", u.Status, err)
	}
	page, qerr := s.g.QueryAudit(t.Context(), sys, tenantID, audit.Query{Action: string(audit.UserDeactivated)})
	if qerr != nil {
		t.Fatal(qerr)
	}
	evs := page.Events
	if len(evs) != 1 || evs[0].Outcome != audit.Failure || evs[0].Reason != "break_glass_user" || evs[0].Target != bg.ID {
		t.Errorf("user.deactivated events %+v; want one, failed, reason break_glass_user", evs)
	}
}
