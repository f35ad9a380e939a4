package guard_test

import (
	"errors"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// A four-eyes rule is a security setting like the policy and the IP
// allow-lists: an admin on an old session must step up to change it, and
// an API key may not change it at all, or a stolen session or key could
// take an action out of approval and then take it alone.
func TestApprovalRuleNeedsStepUp(t *testing.T) {
	f := newFixture(t)
	sys := guard.System("test")
	if err := f.g.SetApprovalRequired(f.ctx, sys, tenantID, "campaigns:send", true); err != nil {
		t.Fatal(err)
	}
	admin, _ := f.userWithRoles(t, "adam@example.test", rbac.Admin)
	key := f.keyWithRole(t, rbac.Admin)
	member, _ := f.userWithRoles(t, "mia@example.test", rbac.Member)
	f.clock.Advance(guard.DefaultStepUpWindow + time.Minute)

	for _, required := range []bool{false, true} {
		if err := f.g.SetApprovalRequired(f.ctx, admin, tenantID, "campaigns:send", required); !errors.Is(err, guard.ErrStepUpRequired) {
			t.Errorf("SetApprovalRequired(%v) by an admin's old session = %v, want ErrStepUpRequired", required, err)
		}
	}
	if _, err := f.g.Authorize(f.ctx, admin, rbac.Campaigns, rbac.Send); !errors.Is(err, guard.ErrApprovalRequired) {
		t.Errorf("after the refusals: Authorize(campaigns:send) = %v, want ErrApprovalRequired (the rule stands)", err)
	}

	denied := len(f.events(t, audit.AccessDenied))
	if err := f.g.SetApprovalRequired(f.ctx, key, tenantID, "campaigns:send", false); !errors.Is(err, guard.ErrForbidden) {
		t.Errorf("SetApprovalRequired by an admin's API key = %v, want ErrForbidden", err)
	}
	if evs := f.events(t, audit.AccessDenied)[denied:]; len(evs) != 1 || evs[0].Reason != "api_key" || evs[0].Actor.Kind != audit.ActorAPIKey {
		t.Errorf("access.denied events after the key's attempt: %+v; want one, reason api_key", evs)
	}
	if _, err := f.g.Authorize(f.ctx, key, rbac.Campaigns, rbac.Send); !errors.Is(err, guard.ErrApprovalRequired) {
		t.Errorf("after the key's attempt: Authorize(campaigns:send) = %v, want ErrApprovalRequired", err)
	}

	// One who may not change rules is refused for the permission, not
	// sent to step up for a change they may not make at all.
	if err := f.g.SetApprovalRequired(f.ctx, member, tenantID, "campaigns:send", false); !errors.Is(err, guard.ErrForbidden) || errors.Is(err, guard.ErrStepUpRequired) {
		t.Errorf("SetApprovalRequired by a member's old session = %v, want ErrForbidden", err)
	}

	// After a step-up the admin changes the rule.
	fresh := admin
	fresh.AuthAt = f.clock.Now()
	if err := f.g.SetApprovalRequired(f.ctx, fresh, tenantID, "campaigns:send", false); err != nil {
		t.Errorf("SetApprovalRequired by a recent authentication: %v", err)
	}
}
