package guard_test

import (
	"errors"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
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
