package guard_test

import (
	"strings"
	"testing"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// rbac accepts an approval target of up to rbac.MaxTargetLen (256) bytes,
// but approval.requested and approval.consumed record Meta target clipped to
// 200 bytes. Two requests (or two consumed approvals) whose targets differ
// only past byte 200 are recorded alike: the log cannot say which target a
// four-eyes approved action was done to. The record should hold the whole
// target (it fits the audit field limit), or a digest beside the clip.
func TestRevApprovalRecordClipsTheTarget(t *testing.T) {
	f := newFixture(t)
	rob, _ := f.userWithRoles(t, "rob@example.test", rbac.Manager)
	ann, _ := f.userWithRoles(t, "ann@example.test", rbac.Manager)
	prefix := "campaign:" + strings.Repeat("x", 200)
	targets := []string{prefix + ":to-customers", prefix + ":to-everyone"}
	for _, target := range targets {
		if len(target) > rbac.MaxTargetLen {
			t.Fatalf("target of %d bytes", len(target))
		}
		ap, err := f.g.RequestApproval(f.ctx, rob, "campaigns:send", target, []byte("p"), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.g.ApproveRequest(f.ctx, ann, ap.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.g.ConsumeApproval(f.ctx, rob, ap.ID, "campaigns:send", target, []byte("p")); err != nil {
			t.Fatal(err)
		}
	}
	for _, action := range []audit.Action{audit.ApprovalRequested, audit.ApprovalConsumed} {
		evs := f.events(t, action)
		if len(evs) != 2 {
			t.Fatalf("%s events: %d, want 2", action, len(evs))
		}
		for i, e := range evs {
			if e.Meta["target"] != targets[0] && e.Meta["target"] != targets[1] {
				t.Errorf("%s #%d: Meta target is %d bytes (%q…), not the %d-byte target approved; the two targets are recorded alike: %v",
					action, i, len(e.Meta["target"]), e.Meta["target"][len(e.Meta["target"])-12:], len(targets[0]),
					evs[0].Meta["target"] == evs[1].Meta["target"])
			}
		}
	}
}
