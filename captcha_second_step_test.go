package guard_test

import (
	"errors"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// TestSecondStepFailuresNeedCaptchaAtPasswordStep: CompleteLogin asks for
// no CAPTCHA (SecondFactor has no token; Config.Captcha), but its wrong
// codes count as failures of the account: after CaptchaAfter of them the
// password step asks for one, and the second step's guesses end at the
// account lock, the right code refused then too.
func TestSecondStepFailuresNeedCaptchaAtPasswordStep(t *testing.T) {
	f := newMFAFixture(t, func(c *guard.Config) { c.Captcha = humanCaptcha })
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	secret, _ := f.enrolTOTP(t, p)
	f.clock.Advance(time.Minute)
	pend := f.pending(t, adaEmail, ownerPW)
	for i := range 3 { // CaptchaAfter, by default
		if _, err := f.complete(guard.MethodTOTP, pend.Token, "000000"); !errors.Is(err, guard.ErrInvalidCode) {
			t.Fatalf("wrong code %d: %v", i, err)
		}
	}
	if _, err := f.login(adaEmail, ownerPW); !errors.Is(err, guard.ErrCaptchaRequired) {
		t.Fatalf("the password step after 3 wrong codes = %v, want ErrCaptchaRequired", err)
	}
	// The pending sign-in's step takes codes without a CAPTCHA, up to the
	// lock.
	for i := 3; i < guard.DefaultAccountLimit.Max; i++ {
		if _, err := f.complete(guard.MethodTOTP, pend.Token, "000000"); !errors.Is(err, guard.ErrInvalidCode) {
			t.Fatalf("wrong code %d: %v", i, err)
		}
	}
	if _, err := f.complete(guard.MethodTOTP, pend.Token, f.code(t, secret)); !errors.Is(err, guard.ErrInvalidCode) {
		t.Errorf("the right code once the account is locked = %v, want ErrInvalidCode", err)
	}
	if r := reasons(f.events(t, audit.MFAFailed)); r[guard.ReasonLocked] != 1 {
		t.Errorf("mfa.failed reasons %v, want one locked", r)
	}
}
