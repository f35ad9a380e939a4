package guard_test

import (
	"errors"
	"testing"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// An approval given by an approver since stripped of the approve
// permission is refused at consumption, on record, and left unconsumed.
func TestConsumeApprovalRefusedWhenApproverLosesRole(t *testing.T) {
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
	if err := f.g.GrantRole(f.ctx, owner, tenantID, "user:"+ann.UserID, rbac.Member); err != nil {
		t.Fatal(err)
	}
	if err := f.g.RevokeRole(f.ctx, owner, tenantID, "user:"+ann.UserID, rbac.Manager); err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.ConsumeApproval(f.ctx, rob, ap.ID, "campaigns:send", "c1", []byte("p")); !errors.Is(err, rbac.ErrApproverRevoked) {
		t.Fatalf("ConsumeApproval after the approver lost campaigns:approve = %v, want rbac.ErrApproverRevoked", err)
	}
	evs := f.events(t, audit.ApprovalConsumed)
	if len(evs) != 1 || evs[0].Outcome != audit.Failure || evs[0].Reason != "approver_revoked" {
		t.Errorf("approval.consumed events = %+v, want one failure approver_revoked", evs)
	}
	if err := f.g.GrantRole(f.ctx, owner, tenantID, "user:"+ann.UserID, rbac.Manager); err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.ConsumeApproval(f.ctx, rob, ap.ID, "campaigns:send", "c1", []byte("p")); err != nil {
		t.Errorf("ConsumeApproval with the approver's role back = %v", err)
	}
}
