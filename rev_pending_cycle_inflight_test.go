package guard_test

import (
	"errors"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
)

// TestPendingSignInCycleDuringSecondStep: DeactivateUser now "ends their
// pending sign-ins (one begun before is refused at its next step ... even
// once the user is reactivated)". loadPending compares the stamped
// ReactivatedAt, but createSession does not: a deactivation and a
// reactivation that land while CompleteLogin runs (after loadPending, here
// at ConsumeTransaction) leave the sign-in begun before the deactivation to
// complete into a live session. createSession re-reads the user
// (RecordLogin) and compares the password (passwordMoved), not
// ReactivatedAt.
func TestPendingSignInCycleDuringSecondStep(t *testing.T) {
	var h *hookTxns
	f := newMFAFixture(t, func(c *guard.Config) {
		h = &hookTxns{TransactionStore: c.Stores.MFA.Transactions}
		c.Stores.MFA.Transactions = h
	})
	sys := guard.System("test")
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	secret, _ := f.enrolTOTP(t, p)
	f.clock.Advance(30 * time.Second)
	pend := f.pending(t, adaEmail, ownerPW)
	h.before = func() {
		f.clock.Advance(time.Second)
		if err := f.g.DeactivateUser(f.ctx, sys, tenantID, p.UserID); err != nil {
			t.Errorf("DeactivateUser: %v", err)
		}
		if err := f.g.ReactivateUser(f.ctx, sys, tenantID, p.UserID); err != nil {
			t.Errorf("ReactivateUser: %v", err)
		}
	}
	res, err := f.complete(guard.MethodTOTP, pend.Token, f.code(t, secret))
	if err != nil {
		if !errors.Is(err, guard.ErrLoginExpired) && !errors.Is(err, guard.ErrInvalidCredentials) {
			t.Fatalf("CompleteLogin: %v", err)
		}
		return
	}
	if _, err := f.g.Authenticate(f.ctx, res.Token); err == nil {
		t.Errorf("a pending sign-in begun before a deactivation completed into a live session after the reactivation (the cycle landed during its second step)")
	}
}
