package guard_test

import (
	"context"
	"strconv"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/rbac"
)

// A flood of security notices holds at most MaxBackgroundNotices
// background sends at once.
// With that many stuck on a slow mail server, the next notice's caller
// waits for a slot as long as its context lasts: one whose context ends
// first returns (what it changed stays done) and its notice is dropped,
// counted in DroppedNotices;
// one that may wait gets a slot once the sends end, and its notice goes
// out. A lock notice waits for no slot (the wait would be a real
// account's alone, and tell that the address has one): with every slot
// taken, the locking sign-in is answered at once and the notice dropped
// (and counted).
// Close waits for every notice sent.
func TestNoticesBackgroundBounded(t *testing.T) {
	const maxNotices = guard.MaxBackgroundNotices
	gate := &gateSender{open: make(chan struct{})}
	f := newFixture(t, func(c *guard.Config) {
		c.Recovery = guard.RecoveryConfig{Email: gate, BaseURL: "https://app.example.test"}
	})
	t.Cleanup(func() { gate.release(); f.g.Close() })
	owner, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	bob := f.createUser(t, "bob@example.test", ownerPW)
	f.createUser(t, "ann@example.test", ownerPW)
	// Each ExpirePassword mails bob "Please change your password".
	expire := func(ctx context.Context) error { return f.g.ExpirePassword(ctx, owner, tenantID, bob.ID) }

	for i := range maxNotices {
		if err := expire(f.ctx); err != nil {
			t.Fatalf("ExpirePassword %d: %v", i, err)
		}
	}
	gate.waitInFlight(t, maxNotices)

	// Every slot is taken: the next caller waits, until its context ends.
	const wait = 100 * time.Millisecond
	ctx, cancel := context.WithTimeout(f.ctx, wait)
	start := time.Now()
	err := expire(ctx)
	cancel()
	if err != nil {
		t.Errorf("ExpirePassword whose notice found no slot = %v, want nil (the password is expired)", err)
	}
	if d := time.Since(start); d < wait {
		t.Errorf("ExpirePassword with every slot taken returned after %v, want it to wait for a slot until its context ended (%v)", d, wait)
	}
	if n := f.g.DroppedNotices(); n != 1 {
		t.Errorf("DroppedNotices = %d after a notice found no slot in time, want 1", n)
	}

	// A lock notice waits for none: the locking sign-in is answered at once.
	locked := make(chan struct{})
	go func() {
		defer close(locked)
		for i := range guard.DefaultAccountLimit.Max {
			_, _ = f.g.Login(f.ctx, guard.LoginRequest{Tenant: tenantID, Email: "ann@example.test", Password: "wrong guess",
				IP: "198.51.100." + strconv.Itoa(i+1), UserAgent: "probe"})
		}
	}()
	select {
	case <-locked:
	case <-time.After(10 * time.Second):
		t.Fatal("a sign-in that locks an account waits for a notice slot")
	}
	time.Sleep(50 * time.Millisecond) // a notice started by mistake would be in flight by now
	if in, _ := gate.counts(); in != maxNotices {
		t.Errorf("%d sends in flight after the refused notices, want %d", in, maxNotices)
	}
	if n := f.g.DroppedNotices(); n != 2 {
		t.Errorf("DroppedNotices = %d after the lock notice found no slot, want 2", n)
	}

	// One that may wait gets a slot once the sends end.
	gate.waitsForSlot(t, "ExpirePassword", func() error { return expire(f.ctx) })
	f.g.Close()
	if _, peak := gate.counts(); peak > maxNotices {
		t.Errorf("%d sends at once, want at most %d", peak, maxNotices)
	}
	if n := gate.sent(); n != maxNotices+1 {
		t.Errorf("%d notices sent by Close, want %d (the first %d and the one that waited)", n, maxNotices+1, maxNotices)
	}
	if n := f.g.DroppedNotices(); n != 2 {
		t.Errorf("DroppedNotices = %d at the end, want 2", n)
	}
}
