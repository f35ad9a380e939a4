package guard_test

import (
	"errors"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/mfa"
)

// BeginOOB to a number outside mfa.Config.SMSPrefixes enrols nothing: the
// signed-in user is told (*InputError) and the refusal is on record as a
// failed mfa.enrol_started, reason destination_not_allowed.
func TestBeginOOBRefusedNumberRecorded(t *testing.T) {
	f := newMFAFixture(t, func(c *guard.Config) { c.MFA.SMSPrefixes = []string{"+44"} })
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	fa, err := f.g.BeginOOB(f.ctx, p, mfa.KindSMS, "+15555550123", "")
	var ie *guard.InputError
	if !errors.As(err, &ie) || ie.Field != "destination" || fa.ID != "" {
		t.Errorf("BeginOOB to a number outside SMSPrefixes: factor %q, %v; want an InputError for the destination", fa.ID, err)
	}
	evs := f.events(t, audit.MFAEnrolStarted)
	if len(evs) != 1 || evs[0].Outcome != audit.Failure || evs[0].Reason != "destination_not_allowed" || evs[0].Meta["kind"] != "sms" {
		t.Errorf("mfa.enrol_started events %+v, want one failed, reason destination_not_allowed", evs)
	}
	if fs, err := f.g.Factors(f.ctx, p, tenantID, p.UserID); err != nil || len(fs) != 0 {
		t.Errorf("factors after the refusal: %v, %v", fs, err)
	}
	if _, err := f.g.BeginOOB(f.ctx, p, mfa.KindSMS, "+447700900123", ""); err != nil {
		t.Errorf("BeginOOB to a number inside SMSPrefixes: %v", err)
	}
}

// A pending sign-in kept without the password's state (begun by an older
// Guard, whose transactions hold the bare purpose) still completes, and
// still ends with a password change after it began, compared by time.
func TestPendingWithoutPasswordStampComparedByTime(t *testing.T) {
	var cfg guard.Config
	f := newMFAFixture(t, func(c *guard.Config) { cfg = *c })
	p, secret, _ := f.adaWithApp(t)
	mc := *cfg.MFA
	mc.Stores, mc.Now = cfg.Stores.MFA, f.clock.Now
	old, err := mfa.New(mc)
	if err != nil {
		t.Fatal(err)
	}
	begin := func() string {
		tok, _, err := old.StartTransaction(f.ctx, mfa.TransactionOptions{Tenant: tenantID, UserID: p.UserID, Binding: "test", Purpose: "login"})
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	f.clock.Advance(time.Minute)
	if res, err := f.complete(guard.MethodTOTP, begin(), f.code(t, secret)); err != nil || res.Token == "" {
		t.Fatalf("completing a pending sign-in of an older Guard: %v", err)
	}
	tok := begin()
	f.clock.Advance(time.Second)
	if err := f.g.ChangePassword(f.ctx, p, guard.PasswordChange{Current: ownerPW, New: "an entirely new passphrase"}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(31 * time.Second)
	if res, err := f.complete(guard.MethodTOTP, tok, f.code(t, secret)); !errors.Is(err, guard.ErrLoginExpired) || res.Token != "" {
		t.Errorf("completing an older Guard's pending sign-in after a password change: session %t, %v; want ErrLoginExpired", res.Token != "", err)
	}
}

// Under RequireMFA (email codes not allowed) a user with an authenticator
// app, an SMS factor and an email factor removes the app and the SMS
// factor at once: each removal checked the other factor still there
// before its deletion, and the store's count keeps one factor (the email
// one), so only the facade's check after each deletion keeps one that
// meets the policy. Here the SMS factor's removal runs whole between the
// app's check and its deletion: it stands, and the app's is refused, the
// app put back.
func TestOwnStrongFactorsRemovedAtOnceUnderRequireMFA(t *testing.T) {
	hooked := &hookedFactors{}
	f := newMFAFixture(t, withHookedFactors(hooked))
	p, secret, app := f.adaWithApp(t)
	sms, err := f.g.BeginOOB(f.ctx, p, mfa.KindSMS, "+447700900123", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.ConfirmFactor(f.ctx, p, sms.ID, f.out.lastSMSCode(t)); err != nil {
		t.Fatal(err)
	}
	f.enrolEmail(t, p, "ada.codes@example.test")
	f.requireMFA(t, 0)
	f.clock.Advance(31 * time.Second)
	p, _ = f.totpSignIn(t, secret)
	var smsErr error
	hooked.before = func() { smsErr = f.g.RemoveFactor(f.ctx, p, tenantID, p.UserID, sms.ID) }
	appErr := f.g.RemoveFactor(f.ctx, p, tenantID, p.UserID, app)
	fs, err := f.g.Factors(f.ctx, p, tenantID, p.UserID)
	if err != nil {
		t.Fatal(err)
	}
	if kinds := mfa.ConfirmedKinds(fs); smsErr != nil || !errors.Is(appErr, guard.ErrFactorRequired) || !mfa.Satisfies(kinds, false) {
		t.Errorf("removing the SMS factor (%v) while the app was removed (%v) left kinds %v; want the first to stand, "+
			"the second refused (ErrFactorRequired) and the app kept", smsErr, appErr, kinds)
	}
}

// RequireMFA switched on (email codes not allowed) while a user removes
// their authenticator app, an email factor beside it: the policy read
// again once the app is gone refuses the removal and puts the app back,
// as for the last factor of all.
func TestOwnStrongFactorRemovalRacesRequireMFA(t *testing.T) {
	hooked := &hookedFactors{}
	f := newMFAFixture(t, withHookedFactors(hooked))
	p, secret, app := f.adaWithApp(t)
	f.enrolEmail(t, p, "ada.codes@example.test")
	f.clock.Advance(31 * time.Second)
	p, _ = f.totpSignIn(t, secret)
	hooked.before = func() { f.requireMFA(t, 0) }
	err := f.g.RemoveFactor(f.ctx, p, tenantID, p.UserID, app)
	fs, _ := f.g.Factors(f.ctx, p, tenantID, p.UserID)
	if !errors.Is(err, guard.ErrFactorRequired) || !mfa.Satisfies(mfa.ConfirmedKinds(fs), false) {
		t.Errorf("own app removed while RequireMFA was switched on: %v, kinds left %v; want ErrFactorRequired and the app kept",
			err, mfa.ConfirmedKinds(fs))
	}
	if r := reasons(f.events(t, audit.MFARemoved)); r["mfa_required"] != 1 {
		t.Errorf("mfa.removed reasons %v, want one mfa_required", r)
	}
	// The app put back signs in with a later code.
	f.clock.Advance(31 * time.Second)
	f.totpSignIn(t, secret)
}

// Inside the grace period of RequireMFA a user cancels their pending
// enrolment while it is being confirmed (another tab): the removal, begun
// for a pending factor, deletes a confirmed one, their only factor. The
// check after the deletion refuses it and puts the factor back.
func TestPendingFactorRemovalRacesItsConfirmation(t *testing.T) {
	hooked := &hookedFactors{}
	f := newMFAFixture(t, withHookedFactors(hooked))
	f.createUser(t, adaEmail, ownerPW)
	f.requireMFA(t, 24*time.Hour)
	f.clock.Advance(time.Second)
	_, p := f.signIn(t, adaEmail, ownerPW)
	en, err := f.g.BeginTOTP(f.ctx, p, "Phone")
	if err != nil {
		t.Fatal(err)
	}
	hooked.before = func() {
		if _, err := f.g.ConfirmFactor(f.ctx, p, en.Factor.ID, f.code(t, en.Secret)); err != nil {
			t.Errorf("ConfirmFactor during the removal: %v", err)
		}
	}
	err = f.g.RemoveFactor(f.ctx, p, tenantID, p.UserID, en.Factor.ID)
	fs, _ := f.g.Factors(f.ctx, p, tenantID, p.UserID)
	if !errors.Is(err, guard.ErrFactorRequired) || len(fs) != 1 || !fs[0].Confirmed() {
		t.Errorf("removing a pending factor confirmed meanwhile, the only one, under RequireMFA: %v, factors %+v; "+
			"want ErrFactorRequired and the factor kept, confirmed", err, fs)
	}
}

// BeginOOB with an email address that auth.CanonicalEmail refuses (here
// with characters that reorder or break the text where it is shown)
// enrols nothing and sends nothing: the refusal is CanonicalEmail's
// *auth.InputError, on record as a failed mfa.enrol_started, reason
// bad_input. (It used to pass the address on as typed, for mfa to refuse,
// which it did not.)
func TestBeginOOBRefusedAddressRecorded(t *testing.T) {
	for _, d := range []string{"ada@ex\u202eelpmaxe.com", "ada@ex\u2028ample.com", "ada@ex\u0085ample.com", "ada@ex\u2067ample.com", "not an address"} {
		f := newMFAFixture(t)
		f.createUser(t, adaEmail, ownerPW)
		_, p := f.signIn(t, adaEmail, ownerPW)
		fa, err := f.g.BeginOOB(f.ctx, p, mfa.KindEmail, d, "")
		var ie *auth.InputError
		if !errors.As(err, &ie) || fa.ID != "" {
			t.Errorf("BeginOOB(%q): factor %q, %v; want an *auth.InputError", d, fa.ID, err)
		}
		evs := f.events(t, audit.MFAEnrolStarted)
		if len(evs) != 1 || evs[0].Outcome != audit.Failure || evs[0].Reason != guard.ReasonBadInput || evs[0].Meta["kind"] != "email" {
			t.Errorf("BeginOOB(%q): mfa.enrol_started events %+v, want one failed, reason bad_input", d, evs)
		}
		if fs, err := f.g.Factors(f.ctx, p, tenantID, p.UserID); err != nil || len(fs) != 0 {
			t.Errorf("BeginOOB(%q): factors after the refusal: %v, %v", d, fs, err)
		}
		f.g.Close()
		f.out.mu.Lock()
		for _, m := range f.out.mail {
			if m.To != adaEmail {
				t.Errorf("BeginOOB(%q): a message went to %q", d, m.To)
			}
		}
		f.out.mu.Unlock()
	}
}

// With mfa.Config.MaxFactors 1, a user who began two factors confirms one;
// the other's confirmation, with its right code, is mfa.ErrLimit, counts
// no failure and is not recorded as an enrolment: the user keeps one
// confirmed factor.
func TestConfirmFactorOverLimit(t *testing.T) {
	f := newMFAFixture(t, func(c *guard.Config) { c.MFA.MaxFactors = 1 })
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	en, err := f.g.BeginTOTP(f.ctx, p, "")
	if err != nil {
		t.Fatal(err)
	}
	fa, err := f.g.BeginOOB(f.ctx, p, mfa.KindEmail, "ada.second@example.test", "")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.ConfirmFactor(f.ctx, p, fa.ID, f.out.lastCodeTo(t, "ada.second@example.test")); err != nil {
		t.Fatalf("ConfirmFactor(email): %v", err)
	}
	if _, err := f.g.ConfirmFactor(f.ctx, p, en.Factor.ID, f.code(t, en.Secret)); !errors.Is(err, mfa.ErrLimit) {
		t.Errorf("ConfirmFactor(totp) over MaxFactors = %v, want mfa.ErrLimit", err)
	}
	if evs := f.events(t, audit.MFAEnrolled); len(evs) != 1 || evs[0].Target != fa.ID {
		t.Errorf("mfa.enrolled events %+v, want one, for the email factor", evs)
	}
	if evs := f.events(t, audit.MFAFailed); len(evs) != 0 {
		t.Errorf("mfa.failed events %+v, want none", evs)
	}
	fs, err := f.g.Factors(f.ctx, p, tenantID, p.UserID)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, x := range fs {
		if x.Confirmed() {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d confirmed factors, want 1", n)
	}
}
