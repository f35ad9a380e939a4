package guard_test

import (
	"context"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// ForgotPassword's look-ups hold at most MaxBackgroundResets slots, but a
// reset link's email left its slot before it was sent, in the goroutine
// that made it: with a slow mail server, a burst of requests for real
// accounts (within the link limits, which many accounts and addresses
// widen) kept a goroutine per email, with no bound. The emails now take
// slots of their own, MaxBackgroundResets of them, and wait for none (a
// wait would hold the look-up's slot, and tell the next request that an
// earlier one named an account): with every one taken, the email is
// dropped, counted in DroppedResetMails (not in DroppedNotices, which
// counts security notices alone), and the request recorded as a
// refused password.reset_requested (send_failed, Meta dropped), its link
// never made. The caller's answer is the same either way.
func TestForgotPasswordMailsBounded(t *testing.T) {
	const maxMails, extra = guard.MaxBackgroundResets, 8
	gate := &gateSender{open: make(chan struct{})}
	f := newFixture(t, func(c *guard.Config) {
		c.Recovery = guard.RecoveryConfig{Email: gate, BaseURL: "https://app.example.test",
			Limits: guard.LinkLimits{PerAccount: 1000, PerDestination: 1000, PerIP: 1000}}
	})
	t.Cleanup(func() { gate.release(); f.g.Close() })
	ada := f.createUser(t, "ada@example.test", ownerPW)

	for i := range maxMails + extra {
		ctx, cancel := context.WithTimeout(f.ctx, 10*time.Second)
		err := f.g.ForgotPassword(ctx, guard.ForgotRequest{Tenant: tenantID, Email: "ada@example.test", IP: "203.0.113.5"})
		cancel()
		if err != nil {
			t.Fatalf("request %d: %v", i+1, err)
		}
	}
	// Every request's work ends with its email sent (held by the gate)
	// or dropped.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		in, _ := gate.counts()
		if in+int(f.g.DroppedResetMails()) == maxMails+extra {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d emails in flight and %d dropped, want %d in all", in, f.g.DroppedResetMails(), maxMails+extra)
		}
	}
	time.Sleep(50 * time.Millisecond) // an email started by mistake would be in flight by now
	if in, _ := gate.counts(); in > maxMails {
		t.Errorf("%d reset emails in flight at once, want at most %d", in, maxMails)
	}
	if n := f.g.DroppedResetMails(); n != extra {
		t.Errorf("DroppedResetMails = %d, want %d (the emails beyond the slots)", n, extra)
	}
	if n := f.g.DroppedNotices(); n != 0 {
		t.Errorf("DroppedNotices = %d, want 0 (no security notice was dropped)", n)
	}

	gate.release()
	f.g.Close()
	if _, peak := gate.counts(); peak > maxMails {
		t.Errorf("%d reset emails at once, want at most %d", peak, maxMails)
	}
	if n := gate.sent(); n != maxMails {
		t.Errorf("%d reset emails sent, want %d", n, maxMails)
	}
	var ok, dropped int
	for _, e := range f.events(t, audit.PasswordResetRequested) {
		switch {
		case e.Target != ada.ID:
			t.Errorf("event of another target: %+v", e)
		case e.Outcome == audit.Success:
			ok++
		case e.Reason == "send_failed" && e.Meta["dropped"] == "true":
			dropped++
		default:
			t.Errorf("unexpected event: %+v", e)
		}
	}
	if ok != maxMails || dropped != extra {
		t.Errorf("%d links recorded and %d dropped emails, want %d and %d", ok, dropped, maxMails, extra)
	}
}
