package mfa_test

import (
	"context"
	"errors"
	"testing"

	"github.com/guardhq/guard/mfa"
)

// relabelCodes stores every code as if the factor from had sent it: it
// stands for a code left in a store under an enrolment's transaction by
// another factor.
type relabelCodes struct {
	mfa.CodeStore
	from *mfa.Factor // nil: store codes as given
}

func (s *relabelCodes) PutCode(ctx context.Context, c mfa.Code) error {
	if s.from != nil {
		c.FactorID, c.Kind = s.from.ID, s.from.Kind
	}
	return s.CodeStore.PutCode(ctx, c)
}

// enrolPair gives user "u" a confirmed email factor and a pending SMS
// factor, to a number nobody here controls.
func enrolPair(t *testing.T, f *fixture) (email, phone mfa.Factor) {
	t.Helper()
	ctx := context.Background()
	email, _, err := f.m.BeginOOB(ctx, mfa.OOBRequest{Tenant: "t", UserID: "u", Kind: mfa.KindEmail, Destination: "u@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if email, err = f.m.ConfirmOOB(ctx, "t", "u", email.ID, f.email.lastCode(t)); err != nil {
		t.Fatal(err)
	}
	phone, _, err = f.m.BeginOOB(ctx, mfa.OOBRequest{Tenant: "t", UserID: "u", Kind: mfa.KindSMS, Destination: "+447700900999"})
	if err != nil {
		t.Fatal(err)
	}
	f.clk.Add(mfa.DefaultResendCoolDown)
	return email, phone
}

// wantPending fails unless the factor id of user "u" is still pending.
func wantPending(t *testing.T, f *fixture, id string) {
	t.Helper()
	got, err := f.st.Factor(context.Background(), "t", "u", id)
	if err != nil || got.Confirmed() {
		t.Fatalf("factor %s = %+v, %v; want it pending", id, got, err)
	}
}

// An enrolment code proves the destination of the pending factor it was
// sent to, and only that one (BeginOOB: only a destination the user
// controls becomes a factor). The transactions of enrolment codes
// ("enrol:<factor ID>") are not a caller's to name: SendCode and
// VerifyCode refuse them with an *InputError, sending nothing and
// spending no code; and ConfirmOOB takes only a code that the factor it
// confirms sent.
func TestEnrolCodeBoundToItsFactor(t *testing.T) {
	ctx := context.Background()

	t.Run("SendCodeRefusesEnrolTxn", func(t *testing.T) {
		f := newFixture(t)
		email, phone := enrolPair(t, f)
		mails, texts := f.email.count(), f.sms.count()
		res, err := f.m.SendCode(ctx, mfa.SendRequest{Tenant: "t", UserID: "u", FactorID: email.ID, Txn: "enrol:" + phone.ID})
		var ie *mfa.InputError
		if !errors.As(err, &ie) || res.Sent || f.email.count() != mails || f.sms.count() != texts {
			t.Fatalf("SendCode to the email factor for the phone's enrolment = %+v, %v (%d mails, %d texts sent); want an InputError and nothing sent",
				res, err, f.email.count()-mails, f.sms.count()-texts)
		}
		wantPending(t, f, phone.ID)
	})

	t.Run("VerifyCodeRefusesEnrolTxn", func(t *testing.T) {
		f := newFixture(t)
		_, phone := enrolPair(t, f)
		code := f.sms.lastCode(t)
		_, err := f.m.VerifyCode(ctx, "t", "u", "enrol:"+phone.ID, code)
		var ie *mfa.InputError
		if !errors.As(err, &ie) {
			t.Fatalf("VerifyCode with the phone's enrolment code = %v; want an InputError", err)
		}
		if _, err := f.m.ConfirmOOB(ctx, "t", "u", phone.ID, code); err != nil {
			t.Fatalf("ConfirmOOB after VerifyCode was refused: %v; want the code unspent", err)
		}
	})

	for _, tc := range []struct {
		name string
		from func(email, phone mfa.Factor) mfa.Factor
	}{
		{"ConfirmOOBRefusesAnotherFactorsCode", func(email, _ mfa.Factor) mfa.Factor { return email }},
		{"ConfirmOOBRefusesAnotherKindsCode", func(email, phone mfa.Factor) mfa.Factor {
			phone.Kind = email.Kind
			return phone
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cs := &relabelCodes{}
			f := newFixture(t, func(c *mfa.Config) {
				cs.CodeStore = c.Stores.Codes
				c.Stores.Codes = cs
			})
			email, phone := enrolPair(t, f)
			from := tc.from(email, phone)
			cs.from = &from
			if res, err := f.m.SendCode(ctx, mfa.SendRequest{Tenant: "t", UserID: "u", FactorID: phone.ID}); err != nil || !res.Sent {
				t.Fatalf("SendCode to the pending phone = %+v, %v", res, err)
			}
			_, err := f.m.ConfirmOOB(ctx, "t", "u", phone.ID, f.sms.lastCode(t))
			if !errors.Is(err, mfa.ErrInvalidCode) {
				t.Fatalf("ConfirmOOB with a code stored as sent by %s (%s) = %v; want ErrInvalidCode", from.ID, from.Kind, err)
			}
			wantPending(t, f, phone.ID)
		})
	}
}
