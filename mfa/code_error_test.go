package mfa_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/guardhq/guard/mfa"
)

// VerifyCode's refusal of a code it found for the user is a *CodeError
// that carries the kind of the factor that sent the code, around the
// refusal (errors.Is still sees it, and the message is the refusal's); a
// code it did not find, for this user, carries none.
func TestVerifyCodeErrorCarriesKind(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, func(c *mfa.Config) { c.CodeTries = 1 })
	email := f.enrolOOB(t, "u", mfa.KindEmail, "ada@example.com")
	sms := f.enrolOOB(t, "u", mfa.KindSMS, "+447700900123")
	wantKind := func(what string, err, want error, kind mfa.Kind) {
		t.Helper()
		wantErr(t, what, err, want)
		var ce *mfa.CodeError
		switch {
		case kind == "" && errors.As(err, &ce):
			t.Errorf("%s = %v, a CodeError of kind %q; want no kind", what, err, ce.Kind)
		case kind != "" && (!errors.As(err, &ce) || ce.Kind != kind):
			t.Errorf("%s = %v (%T), want a CodeError of kind %q", what, err, err, kind)
		case kind != "" && err.Error() != want.Error():
			t.Errorf("%s says %q, want %q", what, err, want)
		}
	}
	wrong := func(code string) string { return fmt.Sprintf("%06d", (atoi(code)+1)%1_000_000) }

	txn := f.login(t, "u")
	f.send(t, "u", email.ID, txn, "")
	right := f.email.lastCode(t)
	_, err := f.m.VerifyCode(ctx, "t", "u", txn, wrong(right))
	wantKind("a wrong email code", err, mfa.ErrInvalidCode, mfa.KindEmail)
	_, err = f.m.VerifyCode(ctx, "t", "u", txn, right)
	wantKind("an email code out of tries", err, mfa.ErrTooManyTries, mfa.KindEmail)

	f.clk.Add(time.Minute)
	txn = f.login(t, "u")
	f.send(t, "u", sms.ID, txn, "")
	f.clk.Add(10*time.Minute + time.Second)
	_, err = f.m.VerifyCode(ctx, "t", "u", txn, f.sms.lastCode(t))
	wantKind("an expired SMS code", err, mfa.ErrExpired, mfa.KindSMS)
	_, err = f.m.VerifyCode(ctx, "t", "u", txn, f.sms.lastCode(t))
	wantKind("no code (the expired one removed)", err, mfa.ErrNotFound, "")

	// Another user's code tells nothing of it: for v there is no code
	// under u's transaction ID.
	txn = f.login(t, "u")
	f.send(t, "u", sms.ID, txn, "")
	_, err = f.m.VerifyCode(ctx, "t", "v", txn, wrong(f.sms.lastCode(t)))
	wantKind("a wrong code of another user's", err, mfa.ErrNotFound, "")

	// The factor that sent the code has gone meanwhile.
	f.clk.Add(time.Minute)
	txn = f.login(t, "u")
	f.send(t, "u", sms.ID, txn, "")
	if _, _, err := f.m.RemoveFactor(ctx, "t", "u", sms.ID); err != nil {
		t.Fatal(err)
	}
	_, err = f.m.VerifyCode(ctx, "t", "u", txn, f.sms.lastCode(t))
	wantKind("the code of a removed factor", err, mfa.ErrNotFound, mfa.KindSMS)
}
