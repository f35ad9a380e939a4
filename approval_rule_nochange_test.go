package guard_test

import (
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// Setting an approval rule to what it already is changes nothing (rbac:
// "Setting what is already set changes nothing"), and is not recorded as
// a change: taking an action out of four-eyes approval that was not under
// it must not read in the log as if an admin had just opened it up to one
// person. As GrantRole and RevokeRole, SetApprovalRequired records only a
// change that was made.
func TestApprovalRuleNoChangeNotRecorded(t *testing.T) {
	f := newFixture(t)
	sys := guard.System("test")
	if err := f.g.SetApprovalRequired(f.ctx, sys, tenantID, "campaigns:send", false); err != nil {
		t.Fatal(err)
	}
	if err := f.g.SetApprovalRequired(f.ctx, sys, tenantID, "campaigns:send", true); err != nil {
		t.Fatal(err)
	}
	if err := f.g.SetApprovalRequired(f.ctx, sys, tenantID, "campaigns:send", true); err != nil {
		t.Fatal(err)
	}
	var done []string
	for _, e := range f.events(t, audit.ApprovalRuleChanged) {
		if e.Outcome == audit.Success {
			done = append(done, e.Meta["required"])
		}
	}
	if len(done) != 1 || done[0] != "true" {
		t.Errorf("approval_rule.changed recorded as done: required %q; want only the one change, [true]", done)
	}
}
