package guard_test

import (
	"errors"
	"testing"
	"time"

	"github.com/guardhq/guard/rbac"
)

// An approval's target is free text a requester writes that Guard keeps
// and shows to the approvers (Approvals, the console) and records in the
// audit log (approval.requested, Meta target). Like every other such text
// (tenant and API key names, user agents, factor labels: see
// text_input_test.go and auth.Printable) it must not hold what changes how
// the text around it is shown: a bidirectional override or isolate, or a
// line or paragraph separator. Otherwise a requester files "send campaign
// <U+202E>…" that reads to the approver as another target than the one
// the approval is bound to. RequestApproval should refuse it as bad input
// (*rbac.InputError) and store nothing; rbac's checkTarget refuses only
// control characters, so the request is filed.
func TestApprovalTargetRefusesDisplayControls(t *testing.T) {
	f := newFixture(t)
	rob, _ := f.userWithRoles(t, "rob@example.test", rbac.Manager)
	for _, target := range []string{"campaign-\u202e7-ngiapmac", "campaign-1\u2028approved: campaign-2", "campaign-\u20661\u2069"} {
		ap, err := f.g.RequestApproval(f.ctx, rob, "campaigns:send", target, []byte("p"), time.Hour)
		var ie *rbac.InputError
		if !errors.As(err, &ie) {
			t.Errorf("RequestApproval(target %q) = %+v, %v; want an *rbac.InputError", target, ap.ID, err)
		}
	}
	if got, err := f.g.Approvals(f.ctx, rob, rbac.ApprovalQuery{}); err != nil || len(got) != 0 {
		t.Errorf("approvals filed from bad targets: %d, %v; want none", len(got), err)
	}
}
