package guard_test

import (
	"testing"

	guard "github.com/guardhq/guard"
)

// A flood of security notices to many addresses holds at most
// MaxBackgroundNotices background sends at once. With that many stuck on
// a slow mail server, the next notice's caller waits for a slot (see
// TestNoticeWaitOutlivesTheCaller for one that finds none in
// NoticeSlotWait), and gets one once the sends end: its notice goes out.
// Close waits for every notice sent.
func TestNoticesBackgroundBounded(t *testing.T) {
	const maxNotices = guard.MaxBackgroundNotices
	f, gate, owner := newGatedFixture(t)
	f.fillNoticePool(t, gate, owner)
	bob := f.createUser(t, "bob@example.test", ownerPW)

	done := make(chan error, 1)
	go func() { done <- f.g.ExpirePassword(f.ctx, owner, tenantID, bob.ID) }()
	waitsUntil(t, "ExpirePassword", done, gate.release)
	f.g.Close()
	if peak := gate.peakAll(); peak > maxNotices {
		t.Errorf("%d sends at once, want at most %d", peak, maxNotices)
	}
	if n := gate.sent(); n != maxNotices+1 {
		t.Errorf("%d notices sent by Close, want %d (the first %d and the one that waited)", n, maxNotices+1, maxNotices)
	}
	if n := f.g.DroppedNotices(); n != 0 {
		t.Errorf("DroppedNotices = %d, want 0", n)
	}
}
