package guard_test

import (
	"errors"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// refusalsOf counts the failed action events of actor id with reason.
func refusalsOf(t *testing.T, f *fixture, action audit.Action, id, reason string) int {
	t.Helper()
	n := 0
	for _, e := range f.events(t, action) {
		if e.Outcome == audit.Failure && e.Actor.ID == id && e.Reason == reason {
			n++
		}
	}
	return n
}

// fileApprovals files n approval requests by p one after another and
// returns how many were refused with ErrTooManyAttempts; any other error
// fails the test.
func fileApprovals(t *testing.T, f *fixture, p guard.Principal, n int) (limited int) {
	t.Helper()
	for i := range n {
		target := "c" + string(rune('A'+i%26)) + string(rune('a'+i/26))
		_, err := f.g.RequestApproval(f.ctx, p, "campaigns:send", target, []byte(target), time.Hour)
		switch {
		case errors.Is(err, guard.ErrTooManyAttempts):
			limited++
		case err != nil:
			t.Fatalf("RequestApproval: %v", err)
		}
	}
	return limited
}

// One requester looping past MaxApprovalRequestsPerHour fills only their
// own count of recorded rate_limited refusals: another requester's first
// refusal of the same minute is still on record.
func TestRequestApprovalRefusalsRecordedPerRequester(t *testing.T) {
	f := newFixture(t)
	owner, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	ann, _ := f.userWithRoles(t, "ann@example.test", rbac.Manager)

	if n := fileApprovals(t, f, owner, approvalRequestBound+40); n != 40 {
		t.Fatalf("owner: %d refused, want 40", n)
	}
	if n := refusalsOf(t, f, audit.ApprovalRequested, owner.UserID, guard.ReasonRateLimited); n != 30 {
		t.Fatalf("owner's rate_limited refusals recorded: %d, want 30", n)
	}
	if n := fileApprovals(t, f, ann, approvalRequestBound+1); n != 1 {
		t.Fatalf("ann: %d refused, want 1", n)
	}
	if n := refusalsOf(t, f, audit.ApprovalRequested, ann.UserID, guard.ReasonRateLimited); n != 1 {
		t.Errorf("ann's rate_limited refusal recorded %d times, want 1 (the owner's flood silenced it)", n)
	}
}
