package guard_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// A signed-in approver looping refused decisions (a made-up request, their
// own request) is refused every time, but at most 30 of each kind (actor,
// action, reason) are recorded a minute, the 30th marked
// recording_paused; a refusal of another reason, or of another approver,
// is still on record, and so is the first after the minute.
func TestApprovalRefusalsBoundedPerApproverAndReason(t *testing.T) {
	f := newFixture(t)
	rob, _ := f.userWithRoles(t, "rob@example.test", rbac.Manager)
	ann, _ := f.userWithRoles(t, "ann@example.test", rbac.Manager)
	own, err := f.g.RequestApproval(f.ctx, rob, "campaigns:send", "c1", []byte("p"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	const loops = 45
	for i := range loops {
		id := fmt.Sprintf("%032x", i+1)
		if _, err := f.g.ApproveRequest(f.ctx, rob, id); !errors.Is(err, rbac.ErrNotFound) {
			t.Fatalf("ApproveRequest of a made-up request #%d = %v, want rbac.ErrNotFound", i, err)
		}
		if _, err := f.g.ApproveRequest(f.ctx, rob, own.ID); !errors.Is(err, rbac.ErrSelfApproval) {
			t.Fatalf("ApproveRequest of one's own request #%d = %v, want rbac.ErrSelfApproval", i, err)
		}
	}
	paused := 0
	for _, e := range f.events(t, audit.ApprovalApproved) {
		if e.Meta["recording_paused"] == "true" {
			paused++
		}
	}
	for _, reason := range []string{"not_found", "self_approval"} {
		if n := refusalsOf(t, f, audit.ApprovalApproved, rob.UserID, reason); n != 30 {
			t.Errorf("%d refusals of reason %s looped: %d recorded, want 30", loops, reason, n)
		}
	}
	if paused != 2 {
		t.Errorf("%d refusals marked recording_paused, want 2 (one for each reason)", paused)
	}
	// Rejecting is a kind of its own; so is another approver's refusal.
	if _, err := f.g.RejectRequest(f.ctx, rob, own.ID); !errors.Is(err, rbac.ErrSelfApproval) {
		t.Fatalf("RejectRequest of one's own request = %v, want rbac.ErrSelfApproval", err)
	}
	if n := refusalsOf(t, f, audit.ApprovalRejected, rob.UserID, "self_approval"); n != 1 {
		t.Errorf("the self-rejection recorded %d times, want 1", n)
	}
	if _, err := f.g.ApproveRequest(f.ctx, ann, "0123456789abcdef0123456789abcdef"); !errors.Is(err, rbac.ErrNotFound) {
		t.Fatalf("ann's ApproveRequest of a made-up request = %v, want rbac.ErrNotFound", err)
	}
	if n := refusalsOf(t, f, audit.ApprovalApproved, ann.UserID, "not_found"); n != 1 {
		t.Errorf("another approver's refusal recorded %d times, want 1", n)
	}
	// A minute after the 30th, the kind is recorded again.
	f.clock.Advance(time.Minute + time.Second)
	if _, err := f.g.ApproveRequest(f.ctx, rob, own.ID); !errors.Is(err, rbac.ErrSelfApproval) {
		t.Fatalf("ApproveRequest of one's own request a minute on = %v, want rbac.ErrSelfApproval", err)
	}
	if n := refusalsOf(t, f, audit.ApprovalApproved, rob.UserID, "self_approval"); n != 31 {
		t.Errorf("self-approvals recorded after a minute: %d, want 31", n)
	}
}
