package guard_test

import (
	"errors"
	"testing"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// An approval stands only while its approver does: a deactivation of the
// approver (DeactivateUser: the tool an admin reaches for when an account
// is taken over) makes it refused (rbac.ErrApproverRevoked), and a
// reactivation does not bring it back, as it brings back none of the
// requests the deactivation withdrew from the requester: an approval
// given before the approver's last reactivation stays refused, each
// refusal recorded as a failed approval.consumed (approver_revoked), and
// it is left unconsumed.
func TestApprovalOfDeactivatedApproverStaysRevoked(t *testing.T) {
	f := newFixture(t)
	owner, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	rob, _ := f.userWithRoles(t, "rob@example.test", rbac.Manager)
	ann, _ := f.userWithRoles(t, "ann@example.test", rbac.Manager)
	ap, err := f.g.RequestApproval(f.ctx, rob, "campaigns:send", "c1", []byte("p"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.ApproveRequest(f.ctx, ann, ap.ID); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	if err := f.g.DeactivateUser(f.ctx, owner, tenantID, ann.UserID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.ConsumeApproval(f.ctx, rob, ap.ID, "campaigns:send", "c1", []byte("p")); !errors.Is(err, rbac.ErrApproverRevoked) {
		t.Fatalf("ConsumeApproval with the approver deactivated = %v, want rbac.ErrApproverRevoked", err)
	}
	f.clock.Advance(time.Minute)
	if err := f.g.ReactivateUser(f.ctx, owner, tenantID, ann.UserID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.ConsumeApproval(f.ctx, rob, ap.ID, "campaigns:send", "c1", []byte("p")); !errors.Is(err, rbac.ErrApproverRevoked) {
		t.Errorf("ConsumeApproval of an approval given before the approver's deactivation, after the reactivation = %v; want rbac.ErrApproverRevoked", err)
	}
	if n := refusalsOf(t, f, audit.ApprovalConsumed, rob.UserID, "approver_revoked"); n != 2 {
		t.Errorf("%d approval.consumed refusals with reason approver_revoked; want 2", n)
	}
	if got, err := f.g.Approvals(f.ctx, rob, rbac.ApprovalQuery{}); err != nil || len(got) != 1 || got[0].Status != rbac.StatusApproved {
		t.Errorf("rob's approvals after the refusals = %+v, %v; want the one, still approved", got, err)
	}
}
