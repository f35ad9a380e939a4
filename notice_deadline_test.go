package guard_test

import (
	"context"
	"testing"
	"time"

	"github.com/guardhq/guard/audit"
)

// With every slot taken, the wait for a notice slot ends at the
// context's deadline when it comes before NoticeSlotWait (the host's own
// bound on the request), and the notice is dropped and counted; a
// context cancelled without a deadline (the client hung up) still waits
// NoticeSlotWait.
func TestNoticeWaitEndsAtDeadline(t *testing.T) {
	f, gate, owner := newGatedFixture(t)
	f.fillNoticePool(t, gate, owner)
	bob := f.createUser(t, "bob@example.test", ownerPW)
	ann := f.createUser(t, "ann@example.test", ownerPW)

	const deadline = 200 * time.Millisecond
	ctx, cancel := context.WithTimeout(f.ctx, deadline)
	defer cancel()
	start := time.Now()
	if err := f.g.ExpirePassword(ctx, owner, tenantID, bob.ID); err != nil {
		t.Fatalf("ExpirePassword whose notice found no slot by its deadline = %v, want nil (the password is expired)", err)
	}
	if d := time.Since(start); d >= slotWait {
		t.Errorf("ExpirePassword with a %v deadline returned after %v, want it to stop waiting for a slot at its deadline", deadline, d)
	}
	if n := f.g.DroppedNotices(); n != 1 {
		t.Errorf("DroppedNotices = %d, want 1 (the notice that found no slot by its deadline)", n)
	}

	// Cancelled once the change is on record, while the notice waits.
	expired := len(f.events(t, audit.PasswordExpired))
	ctx, cancel = context.WithCancel(f.ctx)
	defer cancel()
	start = time.Now()
	done := make(chan error, 1)
	go func() { done <- f.g.ExpirePassword(ctx, owner, tenantID, ann.ID) }()
	for len(f.events(t, audit.PasswordExpired)) == expired {
		if time.Since(start) > 10*time.Second {
			t.Fatal("ExpirePassword never recorded the change")
		}
		time.Sleep(5 * time.Millisecond)
	}
	cancel() // the client hangs up
	if err := <-done; err != nil {
		t.Fatalf("ExpirePassword cancelled: %v", err)
	}
	if d := time.Since(start); d < slotWait || d > slotWait+2*time.Second {
		t.Errorf("ExpirePassword cancelled without a deadline returned after %v, want it to wait %v for a slot", d, slotWait)
	}
	if n := f.g.DroppedNotices(); n != 2 {
		t.Errorf("DroppedNotices = %d, want 2", n)
	}
	if n := f.g.DroppedResetMails(); n != 0 {
		t.Errorf("DroppedResetMails = %d, want 0 (only security notices were dropped)", n)
	}
}
