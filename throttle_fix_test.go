package guard_test

import (
	"errors"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// wantNoFailures checks that the account of user id has no failures and
// no lock: an attempt refused for a store failure was given back.
func (f *mfaFixture) wantNoFailures(t *testing.T, id string) {
	t.Helper()
	st, err := f.g.LockState(f.ctx, guard.System("test"), tenantID, id)
	if err != nil {
		t.Fatal(err)
	}
	if st.Failures != 0 || st.Locked(f.clock.Now()) {
		t.Errorf("account after a right code refused for a store failure: %+v, want no failures", st)
	}
}

// A right code whose pending sign-in cannot be used up (the MFA store
// fails) is recorded (TestAuditThrottle_SecondStepConsumeFailureUnrecorded)
// and is not counted as a failure: the account has no failures after it.
func TestSecondStepConsumeFailureGivenBack(t *testing.T) {
	tx := &consumeFailing{}
	f := newMFAFixture(t, func(c *guard.Config) {
		tx.TransactionStore = c.Stores.MFA.Transactions
		c.Stores.MFA.Transactions = tx
	})
	u := f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	secret, _ := f.enrolTOTP(t, p)
	f.clock.Advance(time.Minute)
	pend := f.pending(t, adaEmail, ownerPW)
	tx.fail.Store(true)
	_, err := f.complete(guard.MethodTOTP, pend.Token, f.code(t, secret))
	tx.fail.Store(false)
	if !errors.Is(err, guard.ErrUnavailable) {
		t.Fatalf("CompleteLogin with the pending store down: %v, want ErrUnavailable", err)
	}
	if r := reasons(f.events(t, audit.MFAFailed)); r[guard.ReasonUnavailable] != 1 {
		t.Errorf("mfa.failed reasons %v, want one unavailable", r)
	}
	f.wantNoFailures(t, u.ID)
}

// CompletePendingEnrolment had the same gap as CompleteLogin: a right
// first code whose pending enrolment could not be used up (the MFA store
// fails) returned ErrUnavailable with nothing on record, and stayed
// counted as a failure. It is recorded as mfa.failed (reason
// unavailable), given back, and the factor stays enrolled (on record as
// mfa.enrolled): the user signs in with it.
func TestPendingEnrolmentConsumeFailureRecorded(t *testing.T) {
	tx := &consumeFailing{}
	f := newMFAFixture(t, func(c *guard.Config) {
		tx.TransactionStore = c.Stores.MFA.Transactions
		c.Stores.MFA.Transactions = tx
	})
	u := f.createUser(t, adaEmail, ownerPW)
	if _, err := f.g.SetPolicy(f.ctx, guard.System("test"), tenantID, guard.Policy{RequireMFA: true}, 1); err != nil {
		t.Fatal(err)
	}
	pend, en := f.pendingTOTP(t)
	before := len(f.events(t, audit.MFAFailed)) + len(f.events(t, audit.LoginFailed))
	tx.fail.Store(true)
	_, err := f.g.CompletePendingEnrolment(f.ctx, guard.SecondFactor{Pending: pend.Token, FactorID: en.Factor.ID,
		Code: f.code(t, en.Secret), IP: "203.0.113.5", UserAgent: "test"})
	tx.fail.Store(false)
	if !errors.Is(err, guard.ErrUnavailable) {
		t.Fatalf("CompletePendingEnrolment with the pending store down: %v, want ErrUnavailable", err)
	}
	failed := f.events(t, audit.MFAFailed)
	if after := len(failed) + len(f.events(t, audit.LoginFailed)); after != before+1 {
		t.Fatalf("%d mfa.failed/login.failed events for the refused enrolment, want 1", after-before)
	}
	if e := failed[len(failed)-1]; e.Reason != guard.ReasonUnavailable || e.Meta["kind"] != "totp" {
		t.Errorf("mfa.failed = %+v, want reason unavailable, kind totp", e)
	}
	if n := len(f.events(t, audit.MFAEnrolled)); n != 1 {
		t.Errorf("%d mfa.enrolled events, want 1: the factor stays enrolled", n)
	}
	f.wantNoFailures(t, u.ID)
	f.clock.Advance(time.Minute)
	pend = f.pending(t, adaEmail, ownerPW)
	if pend.Enrol {
		t.Fatalf("pending sign-in after the enrolment: %+v, want the second factor asked for", pend)
	}
	if _, err := f.complete(guard.MethodTOTP, pend.Token, f.code(t, en.Secret)); err != nil {
		t.Errorf("sign-in with the enrolled factor: %v", err)
	}
}
