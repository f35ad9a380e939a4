package guard_test

import (
	"context"
	"errors"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// duplicateApprovals is an approval store whose CreateApproval reports
// every ID as taken (rbac.ErrDuplicate: a broken Rand), an internal
// fault, not anything the requester sent.
type duplicateApprovals struct{ rbac.ApprovalStore }

func (duplicateApprovals) CreateApproval(context.Context, rbac.Approval) error {
	return rbac.ErrDuplicate
}

// An approval step that fails for a reason of Guard's own, not the
// caller's, is not recorded as the caller's bad input and does not stand:
// ErrUnavailable (fail closed), recorded with reason error; a malformed
// request is still bad_input.
func TestApprovalUnexpectedErrorIsNotBadInput(t *testing.T) {
	f := newFixture(t, func(c *guard.Config) { c.Stores.Approvals = duplicateApprovals{c.Stores.Approvals} })
	ann, _ := f.userWithRoles(t, "ann@example.test", rbac.Member)
	_, err := f.g.RequestApproval(f.ctx, ann, "campaigns:send", "spring", []byte("spring"), time.Hour)
	if !errors.Is(err, guard.ErrUnavailable) {
		t.Errorf("RequestApproval on a store that reports a duplicate ID = %v, want ErrUnavailable", err)
	}
	if _, err := f.g.RequestApproval(f.ctx, ann, "campaigns:send", "spring", []byte("spring"), 1000*24*time.Hour); err == nil || errors.Is(err, guard.ErrUnavailable) {
		t.Errorf("RequestApproval with an overlong ttl = %v, want a bad-input error", err)
	}
	got := reasons(f.events(t, audit.ApprovalRequested))
	if got["bad_input"] != 1 || got["error"] != 1 || len(got) != 2 {
		t.Errorf("approval.requested reasons = %v, want one bad_input (the ttl) and one error (the store)", got)
	}
}
