package guard_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/mfa"
)

// holdSender passes every email to out, but holds those to hold until
// open is closed (a mail server slow for them).
type holdSender struct {
	out  *outbox
	hold string
	open chan struct{}
	held atomic.Int32
}

func (s *holdSender) SendEmail(ctx context.Context, m mfa.Message) error {
	if m.To == s.hold {
		s.held.Add(1)
		<-s.open
	}
	return s.out.SendEmail(ctx, m)
}

// waitFor polls cond for up to ten seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(2 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

// A ForgotPassword whose email found every email slot taken (a slow mail
// server, a burst of requests for other accounts) was dropped, but its
// link had been stored first, and a newer link voids the older one: the
// link the account had been mailed a moment before stopped working, and
// no new one came. Whoever can fill the slots could so void any
// account's mailed link by asking for another. A dropped email's link
// must not be made: the link mailed before keeps working.
func TestForgotPasswordDroppedMailKeepsMailedLink(t *testing.T) {
	mine := &outbox{}
	hs := &holdSender{out: mine, hold: "bob@example.test", open: make(chan struct{})}
	f := newMFAFixture(t, func(c *guard.Config) {
		c.Recovery.Email = hs
		c.Recovery.Limits = guard.LinkLimits{PerAccount: 1000, PerDestination: 1000, PerIP: 1000}
	})
	t.Cleanup(func() { close(hs.open); f.g.Close() })
	ada := f.createUser(t, adaEmail, ownerPW)
	f.createUser(t, "bob@example.test", ownerPW)
	forgot := func(email string) {
		t.Helper()
		if err := f.g.ForgotPassword(f.ctx, guard.ForgotRequest{Tenant: tenantID, Email: email, IP: "203.0.113.5"}); err != nil {
			t.Fatalf("ForgotPassword(%s): %v", email, err)
		}
	}
	adaMail := func() []mfa.Message {
		mine.mu.Lock()
		defer mine.mu.Unlock()
		var out []mfa.Message
		for _, m := range mine.mail {
			if m.To == adaEmail {
				out = append(out, m)
			}
		}
		return out
	}

	forgot(adaEmail)
	waitFor(t, "Ada's reset link", func() bool { return len(adaMail()) == 1 })
	link := resetLink(t, adaMail()[0])

	// Every email slot taken by a link to Bob that the mail server holds.
	for range guard.MaxBackgroundResets {
		forgot("bob@example.test")
	}
	waitFor(t, "every email slot taken", func() bool { return int(hs.held.Load()) == guard.MaxBackgroundResets })

	forgot(adaEmail)
	waitFor(t, "the email dropped", func() bool { return f.g.DroppedResetMails() == 1 })
	var dropped audit.Event
	waitFor(t, "the drop recorded", func() bool {
		for _, e := range f.events(t, audit.PasswordResetRequested) {
			if e.Target == ada.ID && e.Meta["dropped"] == "true" {
				dropped = e
				return true
			}
		}
		return false
	})
	if dropped.Outcome != audit.Failure || dropped.Reason != "send_failed" {
		t.Errorf("the dropped request's record: %+v, want a failure, send_failed", dropped)
	}
	if n := len(adaMail()); n != 1 {
		t.Errorf("%d emails to Ada, want the first link only", n)
	}
	const newPW = "an entirely new passphrase"
	if err := f.g.ResetPassword(f.ctx, resetTo(link, newPW)); err != nil {
		t.Fatalf("the link mailed before the dropped request: %v, want it to work", err)
	}
	if _, err := f.login(adaEmail, newPW); err != nil {
		t.Errorf("login with the new password: %v", err)
	}
	if _, err := f.login(adaEmail, ownerPW); !errors.Is(err, guard.ErrInvalidCredentials) {
		t.Errorf("login with the old password: %v, want ErrInvalidCredentials", err)
	}
}
