package guard_test

import (
	"context"
	"errors"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/mfa"
)

// checkHookedCodes runs before, when set, once, ahead of a check of a
// sent code (the check VerifyCode makes).
type checkHookedCodes struct {
	mfa.CodeStore
	before func()
}

func (s *checkHookedCodes) CheckCode(ctx context.Context, tenant, txn string, h mfa.Hash, now time.Time) (mfa.Code, error) {
	if before := s.before; before != nil {
		s.before = nil
		before()
	}
	return s.CodeStore.CheckCode(ctx, tenant, txn, h, now)
}

// One pending sign-in's form submitted twice at once with the same
// emailed code (a double click): the first request completes the sign-in
// and uses the code up, the second checks the code after that and finds
// none. That is the second request losing the race, not a wrong code: it
// ends as a lost race does (ErrLoginExpired, mfa.failed reason
// login_expired) and adds no failure to the account's lockout, as for an
// authenticator code (TestTOTPDoubleSubmitIsNoReuse).
func TestEmailCodeDoubleSubmitIsNoGuess(t *testing.T) {
	hc := &checkHookedCodes{}
	f := newMFAFixture(t, manySessions, func(c *guard.Config) {
		hc.CodeStore = c.Stores.MFA.Codes
		c.Stores.MFA.Codes = hc
	})
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	fa := f.enrolEmail(t, p, "ada.codes@example.com")

	pend := f.pending(t, adaEmail, ownerPW)
	if err := f.g.SendLoginCode(f.ctx, pend.Token, fa.ID, "203.0.113.5", "test"); err != nil {
		t.Fatal(err)
	}
	code := f.out.lastCodeTo(t, fa.Destination)
	before := f.failures(t, p.UserID)
	hc.before = func() {
		if _, err := f.complete(guard.MethodCode, pend.Token, code); err != nil {
			t.Errorf("the first request: %v", err)
		}
	}
	failed := len(f.events(t, audit.MFAFailed))
	_, err := f.complete(guard.MethodCode, pend.Token, code)
	if hc.before != nil {
		t.Fatal("the first request did not run")
	}
	if !errors.Is(err, guard.ErrLoginExpired) {
		t.Errorf("the same sign-in submitted twice with one code: %v, want ErrLoginExpired", err)
	}
	var got []string
	for _, e := range f.events(t, audit.MFAFailed)[failed:] {
		got = append(got, e.Reason)
	}
	if len(got) != 1 || got[0] != guard.ReasonLoginExpired {
		t.Errorf("the same sign-in submitted twice: mfa.failed reasons %q, want one %q", got, guard.ReasonLoginExpired)
	}
	if after := f.failures(t, p.UserID); after > before {
		t.Errorf("the second submit counted as a failure: %d failures, were %d", after, before)
	}
}
