package guard_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// An administrator's invitations to one user are limited to
// Recovery.Limits.PerAccount an hour: one more is refused with
// ErrTooManyAttempts, recorded as a failed user.invited (rate_limited),
// nothing mailed and the last link still valid; the next hour they go
// out again. Anyone's ForgotPassword requests for the address do not
// count against them.
func TestSendInvitationLimited(t *testing.T) {
	eachStore(t, func(t *testing.T, st guard.Stores) {
		f := newLifecycleFixture(t, st)
		ada := f.createUser(t, adaEmail, ownerPW)
		admin := guard.System("test")
		for range 8 {
			if err := f.g.ForgotPassword(f.ctx, guard.ForgotRequest{Tenant: tenantID, Email: adaEmail, IP: "203.0.113.9"}); err != nil {
				t.Fatal(err)
			}
		}
		// ForgotPassword sends in the background: done before the
		// invitations, so that no reset link comes after the last of them.
		f.mailTo(adaEmail)
		for i := range 5 {
			if err := f.g.SendInvitation(f.ctx, admin, tenantID, ada.ID); err != nil {
				t.Fatalf("invitation %d: %v", i+1, err)
			}
		}
		before := len(f.mailTo(adaEmail))
		link := lastResetLink(t, f.mailTo(adaEmail))
		if err := f.g.SendInvitation(f.ctx, admin, tenantID, ada.ID); !errors.Is(err, guard.ErrTooManyAttempts) {
			t.Fatalf("sixth invitation in the hour = %v, want ErrTooManyAttempts", err)
		}
		if n := len(f.mailTo(adaEmail)); n != before {
			t.Errorf("%d emails after the refused invitation, want %d", n, before)
		}
		var limited int
		for _, e := range f.events(t, audit.UserInvited) {
			if e.Outcome == audit.Failure && e.Reason == guard.ReasonRateLimited && e.Target == ada.ID {
				limited++
			}
		}
		if limited != 1 {
			t.Errorf("%d user.invited events with reason rate_limited, want 1", limited)
		}
		// The refusal left the last link valid.
		if err := f.g.ResetPassword(f.ctx, resetTo(link, "a brand new passphrase 42")); err != nil {
			t.Errorf("the last invitation after the refusal: %v", err)
		}
		f.clock.Advance(time.Hour)
		if err := f.g.SendInvitation(f.ctx, admin, tenantID, ada.ID); err != nil {
			t.Fatalf("invitation the next hour: %v", err)
		}
	})
}

// Concurrent invitations to one user never pass the limit.
func TestSendInvitationLimitConcurrent(t *testing.T) {
	f := newMFAFixture(t)
	ada := f.createUser(t, adaEmail, ownerPW)
	var sent, refused atomic.Int32
	var wg sync.WaitGroup
	for range 40 {
		wg.Go(func() {
			switch err := f.g.SendInvitation(f.ctx, guard.System("test"), tenantID, ada.ID); {
			case err == nil:
				sent.Add(1)
			case errors.Is(err, guard.ErrTooManyAttempts):
				refused.Add(1)
			default:
				t.Errorf("SendInvitation: %v", err)
			}
		})
	}
	wg.Wait()
	if sent.Load() != 5 || refused.Load() != 35 {
		t.Errorf("%d invitations sent and %d refused, want 5 and 35", sent.Load(), refused.Load())
	}
	if n := len(f.mailTo(adaEmail)); n != 5 {
		t.Errorf("%d emails, want 5", n)
	}
}
