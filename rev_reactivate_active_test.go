package guard_test

import (
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// TestReactivateActiveUserEndsPendingSignIn: ReactivateUser of a user who is
// active (no deactivation ever came: an idempotent "make active" call, as a
// provisioning sync makes) still moves ReactivatedAt, and loadPending then
// ends the user's pending sign-in as if a deactivation had come and gone
// (ErrLoginExpired, mfa.failed reason deactivated). The new rule is that "a
// deactivation ends pending sign-ins"; here there was none.
func TestReactivateActiveUserEndsPendingSignIn(t *testing.T) {
	f := newMFAFixture(t)
	sys := guard.System("test")
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	secret, _ := f.enrolTOTP(t, p)
	f.clock.Advance(30 * time.Second)
	pend := f.pending(t, adaEmail, ownerPW)
	f.clock.Advance(time.Second)
	if err := f.g.ReactivateUser(f.ctx, sys, tenantID, p.UserID); err != nil {
		t.Fatalf("ReactivateUser of an active user: %v", err)
	}
	if _, err := f.complete(guard.MethodTOTP, pend.Token, f.code(t, secret)); err != nil {
		t.Errorf("CompleteLogin after a ReactivateUser of the (active, never deactivated) user: %v; want a session (mfa.failed reasons %v)",
			err, reasons(f.events(t, audit.MFAFailed)))
	}
}
