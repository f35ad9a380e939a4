package guard_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/store/memstore"
)

// hookedRecovery runs after, when set, once a recovery code is used.
type hookedRecovery struct {
	mfa.RecoveryStore
	after func()
}

func (r *hookedRecovery) UseRecoveryCode(ctx context.Context, tenant, userID string, h mfa.Hash) (int, error) {
	left, err := r.RecoveryStore.UseRecoveryCode(ctx, tenant, userID, h)
	if err == nil && r.after != nil {
		after := r.after
		r.after = nil
		after()
	}
	return left, err
}

// A recovery code is used up by CompleteLogin before the pending sign-in
// is: when another request completes the same sign-in in between (two
// sign-ins racing), the code is gone and this one ends with
// ErrLoginExpired. The use is on record all the same, as a failed
// mfa.recovery_used (reason login_expired, Meta left); it used to leave no
// trace but the missing code.
func TestRecoveryCodeUsedByLostRaceRecorded(t *testing.T) {
	f, _ := recoveryCodeLosingRace(t)
	evs := f.events(t, audit.RecoveryUsed)
	if len(evs) != 1 {
		t.Fatalf("recovery code used up by a sign-in that lost the race: %d mfa.recovery_used events, want 1", len(evs))
	}
	if e := evs[0]; e.Outcome != audit.Failure || e.Reason != "login_expired" || e.Meta["left"] != "9" {
		t.Errorf("mfa.recovery_used = %+v, want failed, reason login_expired, 9 left", e)
	}
}

// recoveryCodeLosingRace enrols an authenticator app for ann, then spends
// her first recovery code on a pending sign-in that another request
// completes meanwhile (with the app's code): ErrLoginExpired. It returns
// the fixture and ann's recovery codes.
func recoveryCodeLosingRace(t *testing.T) (*mfaFixture, []string) {
	t.Helper()
	rec := &hookedRecovery{}
	f := newMFAFixture(t, func(c *guard.Config) {
		rec.RecoveryStore = c.Stores.MFA.Recovery
		c.Stores.MFA.Recovery = rec
	})
	f.createUser(t, "ann@acme.test", ownerPW)
	_, p := f.signIn(t, "ann@acme.test", ownerPW)
	secret, codes := f.enrolTOTP(t, p)
	f.clock.Advance(31 * time.Second)
	pend := f.pending(t, "ann@acme.test", ownerPW)
	rec.after = func() {
		if _, err := f.complete(guard.MethodTOTP, pend.Token, f.code(t, secret)); err != nil {
			t.Errorf("the racing sign-in: %v", err)
		}
	}
	if _, err := f.complete(guard.MethodRecovery, pend.Token, codes[0]); !errors.Is(err, guard.ErrLoginExpired) {
		t.Fatalf("recovery code on a sign-in completed meanwhile: %v, want ErrLoginExpired", err)
	}
	return f, codes
}

// toggledThrottle fails ReserveAll while reserve is set, and Settle while
// settle is set.
type toggledThrottle struct {
	*memstore.Throttle
	reserve, settle atomic.Bool
}

func (s *toggledThrottle) ReserveAll(ctx context.Context, now time.Time, keys []auth.ThrottleKey) ([]auth.Reservation, error) {
	if s.reserve.Load() {
		return nil, errDown
	}
	return s.Throttle.ReserveAll(ctx, now, keys)
}

func (s *toggledThrottle) Settle(ctx context.Context, keys []auth.Settlement) error {
	if s.settle.Load() {
		return errDown
	}
	return s.Throttle.Settle(ctx, keys)
}

// Login records a throttle-store failure (login.failed, reason
// unavailable); so do the other steps that reserve an attempt: the second
// step of a sign-in (CompleteLogin, CompletePendingEnrolment: mfa.failed,
// or login.failed once the code was right), the confirmation of a new
// factor (ConfirmFactor: mfa.failed) and the step-up (Reauthenticate:
// reauthenticated). They used to return ErrUnavailable unrecorded.
func TestThrottleFailuresOfCredentialStepsRecorded(t *testing.T) {
	th := &toggledThrottle{}
	f := newMFAFixture(t, func(c *guard.Config) {
		th.Throttle = c.Stores.Throttle.(*memstore.Throttle)
		c.Stores.Throttle = th
	})
	f.createUser(t, "ann@acme.test", ownerPW)
	res, p := f.signIn(t, "ann@acme.test", ownerPW)
	en, err := f.g.BeginTOTP(f.ctx, p, "Phone")
	if err != nil {
		t.Fatal(err)
	}
	step := func(name string, fail *atomic.Bool, action audit.Action, call func() error) {
		t.Helper()
		before := len(f.events(t, action))
		fail.Store(true)
		err := call()
		fail.Store(false)
		if !errors.Is(err, guard.ErrUnavailable) {
			t.Errorf("%s with the throttle store down: %v, want ErrUnavailable", name, err)
		}
		evs := f.events(t, action)[before:]
		if len(evs) != 1 || evs[0].Outcome != audit.Failure || evs[0].Reason != guard.ReasonUnavailable {
			t.Errorf("%s with the throttle store down: new %s events %+v, want one failed with reason unavailable", name, action, evs)
		}
	}
	step("ConfirmFactor (reserve)", &th.reserve, audit.MFAFailed, func() error {
		_, err := f.g.ConfirmFactor(f.ctx, p, en.Factor.ID, f.code(t, en.Secret))
		return err
	})
	step("Reauthenticate (reserve)", &th.reserve, audit.Reauthenticated, func() error {
		_, _, err := f.g.Reauthenticate(f.ctx, p, res.Token, guard.Proof{Password: ownerPW})
		return err
	})
	step("Reauthenticate (settle)", &th.settle, audit.Reauthenticated, func() error {
		_, _, err := f.g.Reauthenticate(f.ctx, p, res.Token, guard.Proof{Password: ownerPW})
		return err
	})
	if _, err := f.g.ConfirmFactor(f.ctx, p, en.Factor.ID, f.code(t, en.Secret)); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(31 * time.Second)
	pend := f.pending(t, "ann@acme.test", ownerPW)
	step("CompleteLogin (reserve)", &th.reserve, audit.MFAFailed, func() error {
		_, err := f.complete(guard.MethodTOTP, pend.Token, f.code(t, en.Secret))
		return err
	})
	step("CompleteLogin (settle)", &th.settle, audit.LoginFailed, func() error {
		_, err := f.complete(guard.MethodTOTP, pend.Token, f.code(t, en.Secret))
		return err
	})

	enrol := f.bobSentToEnrol(t)
	step("CompletePendingEnrolment (reserve)", &th.reserve, audit.MFAFailed, enrol)
	step("CompletePendingEnrolment (settle)", &th.settle, audit.LoginFailed, enrol)
}

// bobSentToEnrol creates Bob, sent to enrol an authenticator app at
// sign-in (the tenant's RequireMFA on, without grace), begins his
// enrolment and returns its last step: CompletePendingEnrolment with the
// app's code at the clock's current step.
func (f *mfaFixture) bobSentToEnrol(t *testing.T) func() error {
	t.Helper()
	f.createUser(t, "bob@acme.test", ownerPW)
	f.requireMFA(t, 0)
	f.clock.Advance(time.Second)
	pend := f.pending(t, "bob@acme.test", ownerPW)
	pen, err := f.g.BeginPendingTOTP(f.ctx, pend.Token, "203.0.113.5", "test", "")
	if err != nil {
		t.Fatal(err)
	}
	return func() error {
		_, err := f.g.CompletePendingEnrolment(f.ctx, guard.SecondFactor{Pending: pend.Token, FactorID: pen.Factor.ID,
			Code: f.code(t, pen.Secret), IP: "203.0.113.5", UserAgent: "test"})
		return err
	}
}
