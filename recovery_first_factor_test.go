package guard_test

import (
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// Severity: high. Recovery codes a user was given before they had a
// confirmed factor (RegenerateRecoveryCodes with none, say) survived the
// enrolment of their first factor: confirmFactor made a first set only
// when the user had no codes left, so it made none, and the earlier codes
// (proved by nothing more than the password, or by whoever held the
// session then) went on standing in for the new factor at sign-in. The
// first factor now makes a fresh first set, replacing any earlier one,
// and returns it as it returns a first set (ConfirmFactor's codes,
// LoginResult.RecoveryCodes of CompletePendingEnrolment).
func TestAuditRecoveryCodes_FirstFactorReplacesEarlierCodes(t *testing.T) {
	// earlier gives Ada, signed in without a factor, a set of recovery
	// codes, and returns it with her principal.
	earlier := func(t *testing.T, f *mfaFixture) ([]string, guard.Principal) {
		t.Helper()
		f.createUser(t, adaEmail, ownerPW)
		_, p := f.signIn(t, adaEmail, ownerPW)
		old, err := f.g.RegenerateRecoveryCodes(f.ctx, p)
		if err != nil || len(old) == 0 {
			t.Fatalf("RegenerateRecoveryCodes without a factor = %d codes, %v", len(old), err)
		}
		return old, p
	}
	// check signs in with an old code (refused), then with a new one.
	check := func(t *testing.T, f *mfaFixture, old, fresh []string) {
		t.Helper()
		if _, err := f.complete(guard.MethodRecovery, f.pending(t, adaEmail, ownerPW).Token, old[0]); !errors.Is(err, guard.ErrInvalidCode) {
			t.Errorf("recovery code from before the first factor = %v, want ErrInvalidCode", err)
		}
		if len(fresh) != 10 {
			t.Fatalf("first factor gave %d recovery codes, want a fresh set of 10", len(fresh))
		}
		if _, err := f.complete(guard.MethodRecovery, f.pending(t, adaEmail, ownerPW).Token, fresh[0]); err != nil {
			t.Errorf("recovery code given at the first factor: %v", err)
		}
		evs := f.events(t, audit.RecoveryReset)
		if len(evs) != 2 {
			t.Fatalf("%d %s events, want 2 (the earlier set, the first factor's)", len(evs), audit.RecoveryReset)
		}
		if e := evs[1]; e.Outcome != audit.Success || e.Target == "" || e.Meta["replaced"] != "10" {
			t.Errorf("first factor's %s event %+v, want a success naming the user, Meta replaced 10", audit.RecoveryReset, e)
		}
	}

	t.Run("ConfirmFactor", func(t *testing.T) {
		f := newMFAFixture(t)
		old, p := earlier(t, f)
		_, fresh := f.enrolTOTP(t, p)
		check(t, f, old, fresh)
	})

	t.Run("CompletePendingEnrolment", func(t *testing.T) {
		f := newMFAFixture(t)
		old, _ := earlier(t, f)
		f.requireMFA(t, 0)
		pend := f.pending(t, adaEmail, ownerPW)
		if !pend.Enrol {
			t.Fatalf("pending sign-in %+v, want an enrolment", pend)
		}
		en, err := f.g.BeginPendingTOTP(f.ctx, pend.Token, "203.0.113.5", "test", "Phone")
		if err != nil {
			t.Fatal(err)
		}
		res, err := f.g.CompletePendingEnrolment(f.ctx, guard.SecondFactor{Pending: pend.Token, FactorID: en.Factor.ID, Code: f.code(t, en.Secret), IP: "203.0.113.5", UserAgent: "test"})
		if err != nil {
			t.Fatalf("CompletePendingEnrolment: %v", err)
		}
		check(t, f, old, res.RecoveryCodes)
	})
}
