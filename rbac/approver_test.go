package rbac_test

import (
	"context"
	"errors"
	"testing"
	"time"

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

// ApprovalConfig.DeciderActive is asked by Consume about a matching
// approved approval, with its decider and decision time:
// ErrApproverRevoked refuses it and leaves it unconsumed; another error is
// returned as it is (a store failure).
func TestApprovalConsumeAsksDeciderActive(t *testing.T) {
	r := newApprovalRig(t)
	var answer error
	var asked []rbac.Subject
	ap, err := rbac.NewApprovals(rbac.ApprovalConfig{Store: r.store, Enforcer: r.e, Now: r.clock.Now, TTL: time.Hour,
		DeciderActive: func(_ context.Context, tenant string, ap rbac.Approval) error {
			if ap.DecidedAt.IsZero() {
				t.Errorf("DeciderActive asked about %+v, with no decision time", ap)
			}
			asked = append(asked, ap.Decider)
			return answer
		}})
	if err != nil {
		t.Fatal(err)
	}
	r.ap = ap
	a := r.request(t)
	if _, err := r.ap.Approve(ctx, "acme", a.ID, cleo); err != nil {
		t.Fatal(err)
	}
	answer = rbac.ErrApproverRevoked
	if _, err := r.ap.Consume(ctx, "acme", a.ID, claim("campaign-spring", campaignSum)); !errors.Is(err, rbac.ErrApproverRevoked) {
		t.Fatalf("Consume with the decider no longer active = %v, want ErrApproverRevoked", err)
	}
	injected := errors.New("user store down")
	answer = injected
	if _, err := r.ap.Consume(ctx, "acme", a.ID, claim("campaign-spring", campaignSum)); !errors.Is(err, injected) {
		t.Fatalf("Consume with the decider check failing = %v, want its error", err)
	}
	answer = nil
	if got, err := r.ap.Consume(ctx, "acme", a.ID, claim("campaign-spring", campaignSum)); err != nil || got.Status != rbac.StatusConsumed {
		t.Errorf("Consume with the decider active = %+v, %v", got, err)
	}
	if len(asked) != 3 || asked[0] != cleo {
		t.Errorf("DeciderActive asked about %v, want cleo three times", asked)
	}
}

// ApprovalConfig.RequesterStands is asked by Consume about a matching
// approved approval: ErrWithdrawn refuses it and leaves it unconsumed;
// another error is returned as it is (a store failure). A claim that
// does not match never reaches it.
func TestApprovalConsumeAsksRequesterStands(t *testing.T) {
	r := newApprovalRig(t)
	var answer error
	var asked []string
	ap, err := rbac.NewApprovals(rbac.ApprovalConfig{Store: r.store, Enforcer: r.e, Now: r.clock.Now, TTL: time.Hour,
		RequesterStands: func(_ context.Context, tenant string, a rbac.Approval) error {
			asked = append(asked, tenant+" "+a.ID+" "+a.Requester.String())
			return answer
		}})
	if err != nil {
		t.Fatal(err)
	}
	r.ap = ap
	a := r.request(t)
	if _, err := r.ap.Approve(ctx, "acme", a.ID, cleo); err != nil {
		t.Fatal(err)
	}
	answer = rbac.ErrWithdrawn
	if _, err := r.ap.Consume(ctx, "acme", a.ID, claim("other", campaignSum)); !errors.Is(err, rbac.ErrMismatch) {
		t.Errorf("Consume with another target = %v, want ErrMismatch", err)
	}
	if _, err := r.ap.Consume(ctx, "acme", a.ID, claim("campaign-spring", campaignSum)); !errors.Is(err, rbac.ErrWithdrawn) {
		t.Fatalf("Consume with the request withdrawn = %v, want ErrWithdrawn", err)
	}
	injected := errors.New("user store down")
	answer = injected
	if _, err := r.ap.Consume(ctx, "acme", a.ID, claim("campaign-spring", campaignSum)); !errors.Is(err, injected) {
		t.Fatalf("Consume with the requester check failing = %v, want its error", err)
	}
	answer = nil
	if got, err := r.ap.Consume(ctx, "acme", a.ID, claim("campaign-spring", campaignSum)); err != nil || got.Status != rbac.StatusConsumed {
		t.Errorf("Consume with the request standing = %+v, %v", got, err)
	}
	want := "acme " + a.ID + " " + dan.String()
	if len(asked) != 3 || asked[0] != want {
		t.Errorf("RequesterStands asked about %q, want %q three times", asked, want)
	}
}
