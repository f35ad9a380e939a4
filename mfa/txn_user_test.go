package mfa_test

import (
	"testing"

	"github.com/guardhq/guard/mfa"
)

// A transaction's code belongs to its user: VerifyCode or SendCode given
// the transaction ID with another user's ID reaches none of it. Another
// user's wrong codes use up none of its tries, another user's send neither
// replaces it nor holds the owner's next send back by the cool-down, and
// the owner's right code still works after both.
func TestTransactionCodeIsTheUsers(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	ada := f.enrolOOB(t, "ada", mfa.KindSMS, "+447700900123")
	eve := f.enrolOOB(t, "eve", mfa.KindSMS, "+447700900456")
	const txn = "login-1" // a host's own, guessable, transaction ID
	f.send(t, "ada", ada.ID, txn, "192.0.2.1")
	code := f.sms.lastCode(t)
	for range mfa.DefaultCodeTries + 1 {
		_, err := f.m.VerifyCode(ctx, "t", "eve", txn, "000000")
		wantErr(t, "VerifyCode of ada's transaction as eve", err, mfa.ErrNotFound)
	}
	if res := f.send(t, "eve", eve.ID, txn, "192.0.2.2"); !res.Sent {
		t.Fatalf("eve's send under ada's transaction ID: %+v (held back by ada's cool-down)", res)
	}
	got, err := f.m.VerifyCode(ctx, "t", "ada", txn, code)
	if err != nil || got.ID != ada.ID {
		t.Fatalf("ada's right code after eve's attempts and send: %+v, %v", got, err)
	}
}
