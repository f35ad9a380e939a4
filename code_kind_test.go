package guard_test

import (
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/mfa"
)

// A one-time code sent by email or SMS and refused once it was looked up
// (wrong, expired, or out of tries) was recorded as mfa.failed without
// Meta kind: CompleteLogin took the kind from the factor VerifyCode
// returns, the zero Factor on a refusal. The stored code knows the kind
// of the factor that sent it, and VerifyCode's error now carries it
// (*mfa.CodeError), so the event says which factor the code was for, as
// it does for an authenticator app's code or a recovery code.
func TestRefusedOneTimeCodeRecordsItsKind(t *testing.T) {
	f := newMFAFixture(t, func(c *guard.Config) {
		c.MFA.CodeTTL, c.MFA.CodeTries = time.Minute, 1
		c.MFA.Limits = mfa.SendLimits{PerDestination: 100, PerIP: 100, PerAccount: 100}
		c.AccountLimit = auth.Limit{Max: 100, ResetAfter: time.Hour, LockFor: time.Minute, MaxLockFor: time.Hour}
	})
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	email := f.enrolEmail(t, p, "ada.codes@example.test")
	sms := f.enrolSMS(t, p, "+447700900123")
	lastCode := map[mfa.Kind]func() string{
		mfa.KindEmail: func() string { return f.out.lastCodeTo(t, email.Destination) },
		mfa.KindSMS:   func() string { return f.out.lastSMSCode(t) },
	}

	for _, fa := range []mfa.Factor{email, sms} {
		for _, c := range []struct {
			name, reason string
			tries        func(code string) []string // the codes presented
			wait         time.Duration              // between the send and the tries
		}{
			{"wrong", guard.ReasonBadCode, func(code string) []string { return []string{wrongCode(code)} }, 0},
			{"expired", guard.ReasonCodeExpired, func(code string) []string { return []string{code} }, 2 * time.Minute},
			{"out of tries", guard.ReasonTooManyTries, func(code string) []string { return []string{wrongCode(code), code} }, 0},
		} {
			f.clock.Advance(time.Minute) // past the resend cool-down
			pend := f.pending(t, adaEmail, ownerPW)
			if err := f.g.SendLoginCode(f.ctx, pend.Token, fa.ID, "203.0.113.5", "test"); err != nil {
				t.Fatal(err)
			}
			tries := c.tries(lastCode[fa.Kind]())
			f.clock.Advance(c.wait)
			before := len(f.events(t, audit.MFAFailed))
			for _, code := range tries {
				if _, err := f.complete(guard.MethodCode, pend.Token, code); err == nil {
					t.Fatalf("%s code %s: accepted", fa.Kind, c.name)
				}
			}
			evs := f.events(t, audit.MFAFailed)[before:]
			if len(evs) != len(tries) {
				t.Fatalf("%s code %s: %d mfa.failed events, want %d", fa.Kind, c.name, len(evs), len(tries))
			}
			for _, e := range evs {
				if e.Meta["kind"] != string(fa.Kind) {
					t.Errorf("%s code %s: mfa.failed (reason %q) with Meta kind %q, want %q", fa.Kind, c.name, e.Reason, e.Meta["kind"], fa.Kind)
				}
			}
			if r := evs[len(evs)-1].Reason; r != c.reason {
				t.Errorf("%s code %s: mfa.failed reason %q, want %q", fa.Kind, c.name, r, c.reason)
			}
		}
	}
}

// wrongCode is a six-digit code other than code.
func wrongCode(code string) string {
	if code == "000000" {
		return "111111"
	}
	return "000000"
}
