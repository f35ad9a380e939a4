package guard_test

import (
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/mfa"
)

// A pending sign-in names the user's factors to someone who has shown
// only the password: what each is and where its codes go (masked), not
// the factor's bookkeeping. LastStep, the authenticator's last accepted
// time step, tells when the user last signed in with it, to the half
// minute; KeyID names the key that seals its secret.
func TestPendingFactorsHoldNoBookkeeping(t *testing.T) {
	f := newMFAFixture(t, manySessions)
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	secret, _ := f.enrolTOTP(t, p) // confirming the app records its step
	pend := f.pending(t, adaEmail, ownerPW)
	var app *mfa.Factor
	for i, fa := range pend.Factors {
		if fa.Kind == mfa.KindTOTP {
			app = &pend.Factors[i]
		}
	}
	if app == nil {
		t.Fatalf("Pending.Factors %+v: no authenticator app", pend.Factors)
	}
	if app.LastStep != 0 || app.KeyID != "" || app.Secret != nil {
		t.Errorf("Pending.Factors app: LastStep %d, KeyID %q, Secret %d bytes; want none of them", app.LastStep, app.KeyID, len(app.Secret))
	}
	if !app.Confirmed() || app.ID == "" {
		t.Errorf("Pending.Factors app %+v: want its ID and confirmed", *app)
	}
	// The factor still signs in.
	f.clock.Advance(31e9)
	if _, err := f.complete(guard.MethodTOTP, pend.Token, f.code(t, secret)); err != nil {
		t.Fatalf("CompleteLogin with the app: %v", err)
	}
}
