package guard_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/mfa"
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
	// codes (as an older Guard's RegenerateRecoveryCodes made them), and
	// returns it with her principal.
	earlier := func(t *testing.T, f *mfaFixture) ([]string, guard.Principal) {
		t.Helper()
		u := f.createUser(t, adaEmail, ownerPW)
		_, p := f.signIn(t, adaEmail, ownerPW)
		return f.legacyCodes(t, u.ID), p
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
		if len(evs) != 1 {
			t.Fatalf("%d %s events, want 1 (the first factor's)", len(evs), audit.RecoveryReset)
		}
		if e := evs[0]; e.Outcome != audit.Success || e.Target == "" || e.Meta["replaced"] != "10" {
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
		pend, en := f.pendingTOTP(t)
		res, err := f.g.CompletePendingEnrolment(f.ctx, guard.SecondFactor{Pending: pend.Token, FactorID: en.Factor.ID, Code: f.code(t, en.Secret), IP: "203.0.113.5", UserAgent: "test"})
		if err != nil {
			t.Fatalf("CompletePendingEnrolment: %v", err)
		}
		check(t, f, old, res.RecoveryCodes)
	})
}

// tickingClock moves on a microsecond at every reading, so that no two
// confirmations share an instant.
type tickingClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *tickingClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Microsecond)
	return c.t
}

// Two first factors confirmed at once (an authenticator app and an email
// address, in two tabs) each read the user's factors after their own
// confirmation: whatever order the reads come in, one of them counts as
// the first and replaces the codes made before it.
func TestAuditRecoveryCodes_FirstFactorsAtOnceReplaceEarlierCodes(t *testing.T) {
	for round := 0; round < 20; round++ {
		tc := &tickingClock{t: newClock().Now()}
		f := newMFAFixture(t, func(c *guard.Config) { c.Now = tc.Now })
		u := f.createUser(t, adaEmail, ownerPW)
		_, p := f.signIn(t, adaEmail, ownerPW)
		old := f.legacyCodes(t, u.ID)
		en, err := f.g.BeginTOTP(f.ctx, p, "Phone")
		if err != nil {
			t.Fatal(err)
		}
		fa, err := f.g.BeginOOB(f.ctx, p, mfa.KindEmail, "ada.codes@example.test", "")
		if err != nil {
			t.Fatal(err)
		}
		totpCode, mailCode := f.code(t, en.Secret), f.out.lastCodeTo(t, "ada.codes@example.test")
		var wg sync.WaitGroup
		var sets [2][]string
		var errs [2]error
		wg.Add(2)
		go func() { defer wg.Done(); sets[0], errs[0] = f.g.ConfirmFactor(f.ctx, p, en.Factor.ID, totpCode) }()
		go func() { defer wg.Done(); sets[1], errs[1] = f.g.ConfirmFactor(f.ctx, p, fa.ID, mailCode) }()
		wg.Wait()
		if errs[0] != nil || errs[1] != nil {
			t.Fatalf("round %d: ConfirmFactor = %v, %v", round, errs[0], errs[1])
		}
		if _, err := f.complete(guard.MethodRecovery, f.pending(t, adaEmail, ownerPW).Token, old[0]); !errors.Is(err, guard.ErrInvalidCode) {
			t.Fatalf("round %d: recovery code from before two first factors confirmed at once = %v, want ErrInvalidCode", round, err)
		}
		works := 0
		for _, set := range sets {
			if len(set) == 0 {
				continue
			}
			if _, err := f.complete(guard.MethodRecovery, f.pending(t, adaEmail, ownerPW).Token, set[0]); err == nil {
				works++
			}
		}
		if works == 0 {
			t.Fatalf("round %d: no recovery code returned by the two confirmations works (%d and %d returned)", round, len(sets[0]), len(sets[1]))
		}
	}
}
