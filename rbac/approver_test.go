package rbac_test

import (
	"errors"
	"testing"

	"github.com/guardhq/guard/rbac"
)

// An approval stands only while its approver may still give it.
func TestApprovalConsumeNeedsApproverStill(t *testing.T) {
	r := newApprovalRig(t)
	a := r.request(t)
	if _, err := r.ap.Approve(ctx, "acme", a.ID, cleo); err != nil {
		t.Fatal(err)
	}
	revoke(t, r.e, "acme", cleo, rbac.Manager)
	if _, err := r.ap.Consume(ctx, "acme", a.ID, claim("campaign-spring", campaignSum)); !errors.Is(err, rbac.ErrApproverRevoked) {
		t.Fatalf("Consume after the approver lost campaigns:approve = %v, want ErrApproverRevoked", err)
	}
	// A claim that does not match learns nothing about the approver.
	if _, err := r.ap.Consume(ctx, "acme", a.ID, claim("other", campaignSum)); !errors.Is(err, rbac.ErrMismatch) {
		t.Errorf("Consume with another target = %v, want ErrMismatch", err)
	}
	// Left unconsumed: it stands again once the approver may approve.
	grant(t, r.e, "acme", cleo, rbac.Manager)
	if got, err := r.ap.Consume(ctx, "acme", a.ID, claim("campaign-spring", campaignSum)); err != nil || got.Status != rbac.StatusConsumed {
		t.Errorf("Consume with the approver's role back = %+v, %v", got, err)
	}
}
