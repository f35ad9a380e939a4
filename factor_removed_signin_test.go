package guard_test

import (
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/mfa"
)

// TestSecondFactorRemovedBeforeSession: a factor an administrator removes
// between a second step's check and its session's creation refuses the
// sign-in (login.failed, reason factor_removed) when the sign-in stood on
// it: the factor whose code it proved, or, for a recovery code, the
// user's last confirmed factor or the last that made the code count as
// MFA. A recovery code whose standing the removal leaves as it was still
// signs in.
func TestSecondFactorRemovedBeforeSession(t *testing.T) {
	sys := guard.System("test")
	for _, tc := range []struct {
		name string
		// setUp enrols the user's factors and returns the one to remove
		// and the second step to submit on the pending sign-in.
		setUp  func(t *testing.T, f *mfaFixture, p guard.Principal) (remove string, submit func(pend string) (guard.LoginResult, error))
		refuse bool
	}{
		{"email code of the factor removed", func(t *testing.T, f *mfaFixture, p guard.Principal) (string, func(string) (guard.LoginResult, error)) {
			fa := f.enrolEmail(t, p, "ada.codes@example.test")
			return fa.ID, func(pend string) (guard.LoginResult, error) {
				if err := f.g.SendLoginCode(f.ctx, pend, fa.ID, "203.0.113.5", "test"); err != nil {
					t.Fatal(err)
				}
				return f.complete(guard.MethodCode, pend, f.out.lastCodeTo(t, fa.Destination))
			}
		}, true},
		{"recovery code, the last factor removed", func(t *testing.T, f *mfaFixture, p guard.Principal) (string, func(string) (guard.LoginResult, error)) {
			_, codes := f.enrolTOTP(t, p)
			return f.factorOf(t, p, mfa.KindTOTP), func(pend string) (guard.LoginResult, error) {
				return f.complete(guard.MethodRecovery, pend, codes[0])
			}
		}, true},
		{"recovery code, the app removed, an email factor left", func(t *testing.T, f *mfaFixture, p guard.Principal) (string, func(string) (guard.LoginResult, error)) {
			_, codes := f.enrolTOTP(t, p)
			f.enrolEmail(t, p, "ada.codes@example.test")
			return f.factorOf(t, p, mfa.KindTOTP), func(pend string) (guard.LoginResult, error) {
				return f.complete(guard.MethodRecovery, pend, codes[0])
			}
		}, true},
		{"recovery code, an SMS factor removed, the app left", func(t *testing.T, f *mfaFixture, p guard.Principal) (string, func(string) (guard.LoginResult, error)) {
			_, codes := f.enrolTOTP(t, p)
			fa := f.enrolSMS(t, p, "+15555550123")
			return fa.ID, func(pend string) (guard.LoginResult, error) {
				return f.complete(guard.MethodRecovery, pend, codes[0])
			}
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var h *hookTxns
			f := newMFAFixture(t, func(c *guard.Config) {
				h = &hookTxns{TransactionStore: c.Stores.MFA.Transactions}
				c.Stores.MFA.Transactions = h
			})
			f.createUser(t, adaEmail, ownerPW)
			_, p := f.signIn(t, adaEmail, ownerPW)
			remove, submit := tc.setUp(t, f, p)
			f.clock.Advance(30e9)
			pend := f.pending(t, adaEmail, ownerPW)
			h.before = func() {
				if err := f.g.RemoveFactor(f.ctx, sys, tenantID, p.UserID, remove); err != nil {
					t.Errorf("RemoveFactor: %v", err)
				}
			}
			res, err := submit(pend.Token)
			n := reasons(f.events(t, audit.LoginFailed))[guard.ReasonFactorRemoved]
			if !tc.refuse {
				if err != nil || n != 0 {
					t.Fatalf("CompleteLogin = %v, %d factor_removed; want a session", err, n)
				}
				if _, err := f.g.Authenticate(f.ctx, res.Token); err != nil {
					t.Errorf("the session: %v", err)
				}
				return
			}
			if !errors.Is(err, guard.ErrInvalidCredentials) || res.Token != "" {
				t.Fatalf("CompleteLogin = %+v, %v; want ErrInvalidCredentials, no session", res, err)
			}
			if n != 1 {
				t.Errorf("login.failed factor_removed: %d, want 1", n)
			}
			if live, err := f.g.UserSessions(f.ctx, sys, tenantID, p.UserID); err != nil || len(live) != 0 {
				t.Errorf("sessions left: %v, %v", live, err)
			}
		})
	}
}

// factorOf returns the ID of p's confirmed factor of kind k.
func (f *mfaFixture) factorOf(t *testing.T, p guard.Principal, k mfa.Kind) string {
	t.Helper()
	fs, err := f.g.Factors(f.ctx, p, tenantID, p.UserID)
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range fs {
		if x.Kind == k && x.Confirmed() {
			return x.ID
		}
	}
	t.Fatalf("no confirmed %s factor among %v", k, fs)
	return ""
}
