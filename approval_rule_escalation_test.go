package guard_test

import (
	"errors"
	"slices"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// An approval rule is changed only by someone who may take the action it
// governs: an admin (settings:manage, no billing:manage) can neither put
// billing:manage under four-eyes approval (stalling the owners' billing
// work) nor take it out (letting one person do what needed two). Each
// refusal is ErrForbidden, recorded as a failed approval_rule.changed with
// reason escalation, and leaves the rules as they were; an owner may.
func TestApprovalRuleNeedsThePermission(t *testing.T) {
	f := newFixture(t)
	sys := guard.System("test")
	adam, _ := f.userWithRoles(t, "adam@example.test", rbac.Admin)
	const billing = "billing:manage"
	if err := f.g.SetApprovalRequired(f.ctx, adam, tenantID, billing, true); !errors.Is(err, guard.ErrForbidden) {
		t.Fatalf("admin puts billing:manage under approval: %v, want ErrForbidden", err)
	}
	if err := f.g.SetApprovalRequired(f.ctx, sys, tenantID, billing, true); err != nil {
		t.Fatal(err)
	}
	if err := f.g.SetApprovalRequired(f.ctx, adam, tenantID, billing, false); !errors.Is(err, guard.ErrForbidden) {
		t.Fatalf("admin takes billing:manage out of approval: %v, want ErrForbidden", err)
	}
	rules, err := f.g.ApprovalRules(f.ctx, adam, tenantID)
	if err != nil || !slices.ContainsFunc(rules, func(p rbac.Permission) bool { return p.String() == billing }) {
		t.Fatalf("rules after the refusals = %v, %v: billing:manage must still need approval", rules, err)
	}
	failed := 0
	for _, e := range f.events(t, audit.ApprovalRuleChanged) {
		if e.Outcome == audit.Failure {
			failed++
			if e.Reason != "escalation" || e.Target != billing {
				t.Errorf("refusal recorded as %q on %q, want escalation on %s", e.Reason, e.Target, billing)
			}
		}
	}
	if failed != 2 {
		t.Errorf("%d refusals recorded, want 2", failed)
	}
	// An admin still sets rules on what an admin may do.
	if err := f.g.SetApprovalRequired(f.ctx, adam, tenantID, "campaigns:send", true); err != nil {
		t.Errorf("admin puts campaigns:send under approval: %v", err)
	}
}
