package guard_test

import (
	"errors"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/mfa"
)

// Under RequireMFA without MFAAllowEmail, a user who has an authenticator
// app signs in with it: their email code would be refused. So a pending
// sign-in does not offer their email factor, and SendLoginCode sends it no
// code (an InputError on the factor, recorded as mfa.failed with reason
// email_code_not_accepted), rather than mail a code that can only fail.
// With MFAAllowEmail, and for a user with no app, the email factor is
// offered and sent as before.
func TestEmailFactorNotOfferedBesideAnApp(t *testing.T) {
	for _, tc := range []struct {
		name      string
		pol       guard.Policy
		app       bool
		wantOffer bool
	}{
		{"required, app", guard.Policy{RequireMFA: true}, true, false},
		{"required with email, app", guard.Policy{RequireMFA: true, MFAAllowEmail: true}, true, true},
		{"not required, app", guard.Policy{}, true, true},
		{"required, no app", guard.Policy{RequireMFA: true, MFAGrace: time.Hour}, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newMFAFixture(t)
			f.createUser(t, adaEmail, ownerPW)
			_, p := f.signIn(t, adaEmail, ownerPW)
			if tc.app {
				f.enrolTOTP(t, p)
			}
			const addr = "ada.codes@example.test"
			email := f.enrolEmail(t, p, addr)
			setPolicyAsSystem(t, f, tc.pol)
			f.clock.Advance(time.Minute)

			pend := f.pending(t, adaEmail, ownerPW)
			offered := false
			for _, x := range pend.Factors {
				if x.ID == email.ID {
					offered = true
				}
			}
			if offered != tc.wantOffer {
				t.Errorf("email factor offered = %v, want %v (factors %+v)", offered, tc.wantOffer, pend.Factors)
			}
			before, sentEvents := len(f.mailTo(addr)), len(f.events(t, audit.MFACodeSent))
			err := f.g.SendLoginCode(f.ctx, pend.Token, email.ID, "203.0.113.5", "test")
			sent := len(f.mailTo(addr)) - before
			if tc.wantOffer {
				if err != nil || sent != 1 {
					t.Fatalf("SendLoginCode = %v, %d mails; want a code sent", err, sent)
				}
				return
			}
			var ie *guard.InputError
			if !errors.As(err, &ie) || ie.Field != "factor" || sent != 0 {
				t.Fatalf("SendLoginCode = %v, %d mails; want an InputError on the factor and no mail", err, sent)
			}
			evs := f.events(t, audit.MFAFailed)
			if len(evs) == 0 || evs[len(evs)-1].Reason != guard.ReasonEmailCodeNotAccepted ||
				evs[len(evs)-1].Meta["kind"] != string(mfa.KindEmail) {
				t.Errorf("mfa.failed events %+v, want the last with reason %s, kind email", evs, guard.ReasonEmailCodeNotAccepted)
			}
			if evs := f.events(t, audit.MFACodeSent); len(evs) != sentEvents {
				t.Errorf("mfa.code_sent recorded: %+v", evs[sentEvents:])
			}
		})
	}
}
