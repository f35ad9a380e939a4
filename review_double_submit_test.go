package guard_test

import (
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// The same review submitted twice (a double click, two tabs), the second
// planned before the first has written, deactivates the user once: one
// of the two results counts it (ReviewResult.Deactivated) and one
// successful user.deactivated is recorded.
func TestReviewDoubleSubmitDeactivatesOnce(t *testing.T) {
	hook := &beforeStatusWrite{}
	f := newMFAFixture(t, func(c *guard.Config) {
		hook.UserUpdater = c.Stores.UserUpdates
		c.Stores.UserUpdates = hook
	})
	sys := guard.System("test")
	owner, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	u, err := f.g.CreateUser(f.ctx, sys, guard.NewUser{Tenant: tenantID, Email: "mel@example.test", Name: "Mel", Password: ownerPW, Roles: []string{rbac.Member}})
	if err != nil {
		t.Fatal(err)
	}
	before := len(f.events(t, audit.UserDeactivated))
	ds := []guard.Decision{{UserID: u.ID, Deactivate: true}}
	var second guard.ReviewResult
	var serr error
	// The second submission runs whole between the first's plan and write.
	hook.arm(func() { second, serr = f.g.ApplyReview(f.ctx, owner, tenantID, ds) })
	first, err := f.g.ApplyReview(f.ctx, owner, tenantID, ds)
	if err != nil || serr != nil {
		t.Fatalf("ApplyReview: %v, %v", err, serr)
	}
	if n := first.Deactivated + second.Deactivated; n != 1 {
		t.Errorf("two submissions of one review report %d deactivations of one user (%d + %d), want 1", n, first.Deactivated, second.Deactivated)
	}
	var ok int
	for _, e := range f.events(t, audit.UserDeactivated)[before:] {
		if e.Target == u.ID && e.Outcome == audit.Success {
			ok++
		}
	}
	if ok != 1 {
		t.Errorf("%d successful user.deactivated records for one deactivation, want 1", ok)
	}
}
