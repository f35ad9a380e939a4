package guard_test

import (
	"errors"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// An email code that CompleteLogin refuses (RequireMFA without
// MFAAllowEmail, and the user has an authenticator app) is a refused
// second step and nothing else: ErrInvalidCode, recorded as mfa.failed
// (email_code_not_accepted), never as mfa.succeeded, and no success in
// the lockout, which would forget the wrong codes guessed before it. The
// sign-in is still pending: the user goes on with the app.
func TestRefusedEmailCodeIsNoSuccess(t *testing.T) {
	f := newMFAFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	secret, _ := f.enrolTOTP(t, p)
	const addr = "ada.codes@example.test"
	email := f.enrolEmail(t, p, addr)
	// The code is sent before the tenant requires MFA (none is sent
	// after: TestEmailFactorNotOfferedBesideAnApp).
	pend := f.pending(t, adaEmail, ownerPW)
	if err := f.g.SendLoginCode(f.ctx, pend.Token, email.ID, "203.0.113.5", "test"); err != nil {
		t.Fatal(err)
	}
	setPolicyAsSystem(t, f, guard.Policy{RequireMFA: true})
	f.clock.Advance(time.Minute)

	for range 2 {
		if _, err := f.complete(guard.MethodTOTP, pend.Token, wrongCode(f.code(t, secret))); !errors.Is(err, guard.ErrInvalidCode) {
			t.Fatalf("wrong TOTP code: %v", err)
		}
	}
	before := f.failures(t, p.UserID)
	if before < 2 {
		t.Fatalf("%d failures counted after two wrong codes, want 2 or more", before)
	}
	succeeded := len(f.events(t, audit.MFASucceeded))

	res, err := f.complete(guard.MethodCode, pend.Token, f.out.lastCodeTo(t, addr))
	if !errors.Is(err, guard.ErrInvalidCode) || res.Token != "" || res.Pending != nil {
		t.Fatalf("CompleteLogin with the refused email code = %+v, %v; want ErrInvalidCode", res, err)
	}
	if evs := f.events(t, audit.MFAFailed); len(evs) == 0 || evs[len(evs)-1].Reason != guard.ReasonEmailCodeNotAccepted {
		t.Errorf("last mfa.failed: %+v, want reason %s", evs, guard.ReasonEmailCodeNotAccepted)
	}
	if evs := f.events(t, audit.MFASucceeded); len(evs) != succeeded {
		t.Errorf("the refused email code was recorded as mfa.succeeded (%d events, kind %s)", len(evs)-succeeded, evs[len(evs)-1].Meta["kind"])
	}
	if after := f.failures(t, p.UserID); after != before {
		t.Errorf("the refused email code took the account's failure count from %d to %d; want it kept", before, after)
	}

	if res, err := f.complete(guard.MethodTOTP, pend.Token, f.code(t, secret)); err != nil || res.Token == "" {
		t.Errorf("CompleteLogin with the app after the refused email code: %v (session %t); want a session", err, res.Token != "")
	}
}
