package guard_test

import (
	"errors"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// RevokeUserSessions returns, and records as sessions_ended, the live
// sessions it ended: an expired one the store removes with them is not
// counted, as no other revocation counts it.
func TestRevokeUserSessionsCountsLiveOnly(t *testing.T) {
	eachStore(t, func(t *testing.T, st guard.Stores) {
		f := newLifecycleFixture(t, st, manySessions)
		f.createUser(t, adaEmail, ownerPW)
		f.signIn(t, adaEmail, ownerPW)
		f.clock.Advance(23 * time.Hour)
		_, p := f.signIn(t, adaEmail, ownerPW)
		f.clock.Advance(2 * time.Hour) // the first session is past the idle timeout (24 h), the second live
		n, err := f.g.RevokeUserSessions(f.ctx, guard.System("test"), tenantID, p.UserID)
		if err != nil || n != 1 {
			t.Errorf("RevokeUserSessions = %d, %v; want 1 (the live session)", n, err)
		}
		evs := f.events(t, audit.SessionRevoked)
		if len(evs) != 1 || evs[0].Meta["sessions_ended"] != "1" {
			t.Errorf("session.revoked events = %+v, want one with sessions_ended 1", evs)
		}
	})
}

// RemoveFactor records as sessions_ended the live sessions it ended, not
// an expired one the store removed with them.
func TestRemoveFactorCountsLiveSessionsOnly(t *testing.T) {
	f := newMFAFixture(t, manySessions)
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	fa := f.enrolEmail(t, p, "ada.second@example.test")
	f.clock.Advance(23 * time.Hour)
	if _, err := f.withEmailCode(t, adaEmail, ownerPW, fa); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Hour) // the enrolling session is past the idle timeout (24 h), the second live
	if err := f.g.RemoveFactor(f.ctx, guard.System("test"), tenantID, p.UserID, fa.ID); err != nil {
		t.Fatal(err)
	}
	evs := f.events(t, audit.MFARemoved)
	if len(evs) != 1 || evs[0].Meta["sessions_ended"] != "1" {
		t.Errorf("mfa.removed events = %+v, want one with sessions_ended 1", evs)
	}
}

// A RequestEmailChange whose mail fails leaves no usable link and says so
// in the log: its user.email_change_requested is followed by a failed one
// (reason send_failed), as SendInvitation's is.
func TestRequestEmailChangeMailFailureRecorded(t *testing.T) {
	fm := &failingMail{outbox: &outbox{}}
	f := newMFAFixture(t, func(c *guard.Config) { c.Recovery.Email = fm })
	f.createUser(t, adaEmail, ownerPW)
	res, p := f.signIn(t, adaEmail, ownerPW)
	p, _ = f.stepUp(t, p, res.Token)
	fm.down.Store(true)
	if err := f.g.RequestEmailChange(f.ctx, p, newAdaEmail); !errors.Is(err, guard.ErrUnavailable) {
		t.Fatalf("RequestEmailChange with mail down = %v, want ErrUnavailable", err)
	}
	evs := f.events(t, audit.UserEmailChangeRequested)
	if len(evs) != 2 || evs[0].Outcome != audit.Success || evs[1].Outcome != audit.Failure || evs[1].Reason != "send_failed" {
		t.Errorf("user.email_change_requested events = %+v, want the request then a failure with reason send_failed", evs)
	}
}
