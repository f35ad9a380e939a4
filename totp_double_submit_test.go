package guard_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/mfa"
)

// readHookedFactors runs before, when set, once, ahead of a read of a
// user's factors (the read VerifyTOTP makes to check a code).
type readHookedFactors struct {
	mfa.FactorStore
	before func()
}

func (s *readHookedFactors) Factors(ctx context.Context, tenant, userID string) ([]mfa.Factor, error) {
	if before := s.before; before != nil {
		s.before = nil
		before()
	}
	return s.FactorStore.Factors(ctx, tenant, userID)
}

// One pending sign-in's form submitted twice at once with the same
// authenticator code (a double click): the first request completes the
// sign-in, the second checks the code after that and finds its step used.
// That is the second request losing the race, not a code someone else
// used: it ends as a lost race does (ErrLoginExpired, mfa.failed reason
// login_expired) and the user is not told that "someone who had your
// password" tried a used code. It used to be recorded as reuse, with that
// notice. The same code checked for another pending sign-in, racing or
// not, is still reuse, noticed.
func TestTOTPDoubleSubmitIsNoReuse(t *testing.T) {
	hf := &readHookedFactors{}
	f := newMFAFixture(t, manySessions, func(c *guard.Config) {
		hf.FactorStore = c.Stores.MFA.Factors
		c.Stores.MFA.Factors = hf
	})
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	secret, _ := f.enrolTOTP(t, p)
	reuseNotices := func() (n int) {
		for _, m := range f.mailTo(adaEmail) {
			if strings.Contains(m.Subject, "used again") {
				n++
			}
		}
		return n
	}
	// race completes first with code before second's code is checked,
	// and returns second's answer and the mfa.failed events it recorded.
	race := func(first, second, code string) ([]string, error) {
		t.Helper()
		hf.before = func() {
			if _, err := f.complete(guard.MethodTOTP, first, code); err != nil {
				t.Errorf("the first request: %v", err)
			}
		}
		before := len(f.events(t, audit.MFAFailed))
		_, err := f.complete(guard.MethodTOTP, second, code)
		if hf.before != nil {
			t.Fatal("the first request did not run")
		}
		var got []string
		for _, e := range f.events(t, audit.MFAFailed)[before:] {
			got = append(got, e.Reason+"/"+e.Meta["kind"])
		}
		return got, err
	}

	f.clock.Advance(31 * time.Second)
	pend := f.pending(t, adaEmail, ownerPW)
	got, err := race(pend.Token, pend.Token, f.code(t, secret))
	if !errors.Is(err, guard.ErrLoginExpired) {
		t.Errorf("the same sign-in submitted twice with one code: %v, want ErrLoginExpired", err)
	}
	if want := guard.ReasonLoginExpired + "/totp"; len(got) != 1 || got[0] != want {
		t.Errorf("the same sign-in submitted twice: mfa.failed (reason/kind) %q, want one %q", got, want)
	}
	if n := reuseNotices(); n != 0 {
		t.Errorf("the same sign-in submitted twice: %d reuse notices, want none", n)
	}

	// Two sign-ins, one code: the second is a reuse, told.
	told := reuseNotices()
	f.clock.Advance(30 * time.Second)
	one, two := f.pending(t, adaEmail, ownerPW), f.pending(t, adaEmail, ownerPW)
	got, err = race(one.Token, two.Token, f.code(t, secret))
	if !errors.Is(err, guard.ErrInvalidCode) {
		t.Errorf("another sign-in with the code just used: %v, want ErrInvalidCode", err)
	}
	if want := guard.ReasonCodeReuse + "/totp"; len(got) != 1 || got[0] != want {
		t.Errorf("another sign-in with the code just used: mfa.failed (reason/kind) %q, want one %q", got, want)
	}
	if n := reuseNotices(); n != told+1 {
		t.Errorf("another sign-in with the code just used: %d new reuse notices, want 1", n-told)
	}
}
