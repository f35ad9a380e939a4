package guard_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// Under RequireMFA, a password sign-in of a user without a second factor
// gets a pending enrolment. Once the user has confirmed a factor of their
// own since it started, that pending enrolment is over: whoever holds it
// proved only the password, and can neither begin nor complete adding an
// authenticator of their own (ErrLoginExpired, recorded as mfa.failed
// factor_added); the user's session lives on.
func TestPendingEnrolmentEndsOnceUserEnrolled(t *testing.T) {
	f := newMFAFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	if _, err := f.g.SetPolicy(f.ctx, guard.System("test"), tenantID, guard.Policy{RequireMFA: true}, 1); err != nil {
		t.Fatal(err)
	}
	const ip = "203.0.113.9"
	att, err := f.g.Login(f.ctx, guard.LoginRequest{Tenant: tenantID, Email: adaEmail, Password: ownerPW, IP: ip, UserAgent: "attacker"})
	if err != nil || att.Pending == nil || !att.Pending.Enrol {
		t.Fatalf("password-only login: %+v, %v; want a pending enrolment", att, err)
	}
	// The attacker begins an enrolment before the user enrols (its
	// completion is refused too), and the user then enrols their own app.
	early, err := f.g.BeginPendingTOTP(f.ctx, att.Pending.Token, ip, "attacker", "Evil")
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Second)
	pend := f.pending(t, adaEmail, ownerPW)
	en, err := f.g.BeginPendingTOTP(f.ctx, pend.Token, "203.0.113.5", "test", "Phone")
	if err != nil {
		t.Fatal(err)
	}
	mine, err := f.g.CompletePendingEnrolment(f.ctx, guard.SecondFactor{Pending: pend.Token, FactorID: en.Factor.ID,
		Code: f.code(t, en.Secret), IP: "203.0.113.5", UserAgent: "test"})
	if err != nil || mine.Token == "" {
		t.Fatalf("the user's enrolment: %+v, %v", mine, err)
	}
	f.clock.Advance(time.Minute)
	if _, err := f.g.BeginPendingTOTP(f.ctx, att.Pending.Token, ip, "attacker", "Evil 2"); !errors.Is(err, guard.ErrLoginExpired) {
		t.Errorf("BeginPendingTOTP on the older pending enrolment: %v, want ErrLoginExpired", err)
	}
	if _, err := f.g.CompletePendingEnrolment(f.ctx, guard.SecondFactor{Pending: att.Pending.Token, FactorID: early.Factor.ID,
		Code: f.code(t, early.Secret), IP: ip, UserAgent: "attacker"}); !errors.Is(err, guard.ErrLoginExpired) {
		t.Errorf("CompletePendingEnrolment on the older pending enrolment: %v, want ErrLoginExpired", err)
	}
	if _, err := f.g.Authenticate(f.ctx, mine.Token); err != nil {
		t.Errorf("the user's session after the refusals: %v", err)
	}
	fs, err := f.g.Factors(f.ctx, guard.System("test"), tenantID, mine.Session.UserID)
	if err != nil {
		t.Fatal(err)
	}
	confirmed := 0
	for _, fa := range fs {
		if fa.Confirmed() {
			confirmed++
		}
	}
	if confirmed != 1 {
		t.Errorf("%d confirmed factors, want the user's one", confirmed)
	}
	if r := reasons(f.events(t, audit.MFAFailed)); r[guard.ReasonFactorAdded] != 2 {
		t.Errorf("mfa.failed reasons %v, want two factor_added", r)
	}
}

// A pending enrolment's form submitted several times at once with the
// right code completes once; the other submissions find the factor
// confirmed (by loadPending, or by the confirmation itself when they
// raced past it) and get ErrLoginExpired, recorded as factor_added, never
// ErrUnavailable nor an "unavailable" record.
func TestPendingEnrolmentSubmittedTwiceAtOnce(t *testing.T) {
	f := newMFAFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	if _, err := f.g.SetPolicy(f.ctx, guard.System("test"), tenantID, guard.Policy{RequireMFA: true}, 1); err != nil {
		t.Fatal(err)
	}
	pend := f.pending(t, adaEmail, ownerPW)
	en, err := f.g.BeginPendingTOTP(f.ctx, pend.Token, "203.0.113.5", "test", "Phone")
	if err != nil {
		t.Fatal(err)
	}
	sf := guard.SecondFactor{Pending: pend.Token, FactorID: en.Factor.ID, Code: f.code(t, en.Secret), IP: "203.0.113.5", UserAgent: "test"}
	errs := make([]error, 4)
	var wg sync.WaitGroup
	for i := range errs {
		wg.Go(func() { _, errs[i] = f.g.CompletePendingEnrolment(f.ctx, sf) })
	}
	wg.Wait()
	done := 0
	for _, err := range errs {
		switch {
		case err == nil:
			done++
		case !errors.Is(err, guard.ErrLoginExpired):
			t.Errorf("a second submission: %v, want ErrLoginExpired", err)
		}
	}
	if r := reasons(f.events(t, audit.MFAFailed)); done != 1 || r[guard.ReasonUnavailable] != 0 {
		t.Errorf("%d enrolments completed (want 1), mfa.failed reasons %v (want none unavailable)", done, r)
	}
}
