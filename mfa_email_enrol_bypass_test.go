package guard_test

import (
	"errors"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/mfa"
)

// Under RequireMFA without MFAAllowEmail an email code leads a user
// without an authenticator app to enrol one. A user who has an app signs
// in with it: their email code is refused, before and after the grace
// period, or whoever held the password and the mailbox could add an app
// of their own beside the user's and get a session.
func TestEmailCodeDoesNotEnrolBesideAnApp(t *testing.T) {
	for _, grace := range []time.Duration{0, time.Hour} {
		t.Run("grace "+grace.String(), func(t *testing.T) {
			f := newMFAFixture(t)
			f.createUser(t, adaEmail, ownerPW)
			_, p := f.signIn(t, adaEmail, ownerPW)
			f.enrolTOTP(t, p)
			const addr = "ada.codes@example.test"
			email := f.enrolEmail(t, p, addr)
			// The code is sent before the tenant requires MFA (none is
			// sent after: TestEmailFactorNotOfferedBesideAnApp).
			pend := f.pending(t, adaEmail, ownerPW)
			if err := f.g.SendLoginCode(f.ctx, pend.Token, email.ID, "203.0.113.5", "test"); err != nil {
				t.Fatal(err)
			}
			setPolicyAsSystem(t, f, guard.Policy{RequireMFA: true, MFAGrace: grace})
			f.clock.Advance(time.Minute)
			res, err := f.complete(guard.MethodCode, pend.Token, f.out.lastCodeTo(t, addr))
			if !errors.Is(err, guard.ErrInvalidCode) || res.Token != "" || res.Pending != nil {
				t.Fatalf("CompleteLogin with the email code of a user with an app = %+v, %v; want ErrInvalidCode", res, err)
			}
			evs := f.events(t, audit.MFAFailed)
			if len(evs) == 0 || evs[len(evs)-1].Reason != guard.ReasonEmailCodeNotAccepted {
				t.Errorf("last mfa.failed: %+v, want reason %s", evs, guard.ReasonEmailCodeNotAccepted)
			}
			fs, err := f.g.Factors(f.ctx, guard.System("t"), tenantID, p.UserID)
			if err != nil {
				t.Fatal(err)
			}
			n := 0
			for _, x := range fs {
				if x.Kind == mfa.KindTOTP {
					n++
				}
			}
			if n != 1 {
				t.Errorf("%d TOTP factors, want the user's one", n)
			}
		})
	}
}
