package mfa_test

import (
	"encoding/base32"
	"errors"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/store/memstore"
)

func TestNewConfig(t *testing.T) {
	st := memstore.NewMFA().Stores()
	keys := newKeyring(t, "k1", "k1")
	ok := mfa.Config{Stores: st, Keyring: keys, Issuer: "I"}
	if _, err := mfa.New(ok); err != nil {
		t.Fatalf("New(minimal) = %v", err)
	}
	noCodes := st
	noCodes.Codes, noCodes.Rates = nil, nil
	if _, err := mfa.New(mfa.Config{Stores: noCodes, Keyring: keys, Issuer: "I"}); err != nil {
		t.Errorf("New without code stores and senders = %v", err)
	}
	for name, mod := range map[string]func(*mfa.Config){
		"NoFactors":        func(c *mfa.Config) { c.Stores.Factors = nil },
		"NoUpdates":        func(c *mfa.Config) { c.Stores.FactorUpdates = nil },
		"NoEnrolments":     func(c *mfa.Config) { c.Stores.Enrolments = nil },
		"NoRecovery":       func(c *mfa.Config) { c.Stores.Recovery = nil },
		"NoTransactions":   func(c *mfa.Config) { c.Stores.Transactions = nil },
		"SenderNoCodes":    func(c *mfa.Config) { c.Stores.Codes = nil; c.Email = &sink{} },
		"SenderNoRates":    func(c *mfa.Config) { c.Stores.Rates = nil; c.SMS = &sink{} },
		"NoKeyring":        func(c *mfa.Config) { c.Keyring = nil },
		"NoIssuer":         func(c *mfa.Config) { c.Issuer = "" },
		"ColonIssuer":      func(c *mfa.Config) { c.Issuer = "a:b" },
		"ShortCodeKey":     func(c *mfa.Config) { c.CodeKey = make([]byte, 31) },
		"Skew3":            func(c *mfa.Config) { c.Skew = 3 },
		"SkewMinus2":       func(c *mfa.Config) { c.Skew = -2 },
		"CodeTTL11m":       func(c *mfa.Config) { c.CodeTTL = 11 * time.Minute },
		"CodeDigits5":      func(c *mfa.Config) { c.CodeDigits = 5 },
		"CodeDigits10":     func(c *mfa.Config) { c.CodeDigits = 10 },
		"CodeTries11":      func(c *mfa.Config) { c.CodeTries = 11 },
		"NegativeCoolDown": func(c *mfa.Config) { c.ResendCoolDown = -1 },
		"NegativeLimit":    func(c *mfa.Config) { c.Limits.PerIP = -1 },
		"NegativeTenant":   func(c *mfa.Config) { c.Limits.PerTenant = -1 },
		"NegativeEnrolTTL": func(c *mfa.Config) { c.EnrolTTL = -1 },
		"Recovery101":      func(c *mfa.Config) { c.RecoveryCodes = 101 },
		"NegativeMax":      func(c *mfa.Config) { c.MaxFactors = -1 },
		"NegativeTxnTTL":   func(c *mfa.Config) { c.TransactionTTL = -1 },
		"HugeQR":           func(c *mfa.Config) { c.QRSize = 5000 },
		"BadPrefix":        func(c *mfa.Config) { c.SMSPrefixes = []string{"+1a"} },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := ok
			mod(&cfg)
			_, err := mfa.New(cfg)
			var ce *mfa.ConfigError
			if !errors.As(err, &ce) {
				t.Errorf("New = %v, want a *ConfigError", err)
			}
		})
	}
}

func TestRemoveFactor(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t)
	a, _ := f.enrolTOTP(t, "u")
	s := f.enrolOOB(t, "u", mfa.KindSMS, "+447700900123")
	codes, _ := f.m.GenerateRecoveryCodes(ctx, "t", "u")
	removed, left, err := f.m.RemoveFactor(ctx, "t", "u", a.ID)
	if err != nil || removed.ID != a.ID || removed.Secret != nil || left != 1 {
		t.Fatalf("RemoveFactor = %+v, %d, %v", removed, left, err)
	}
	if r, _ := f.m.RecoveryCodesLeft(ctx, "t", "u"); r.Left != 10 {
		t.Errorf("recovery codes left %d, want 10 while a factor remains", r.Left)
	}
	// The last confirmed factor takes the recovery codes with it.
	if _, left, err := f.m.RemoveFactor(ctx, "t", "u", s.ID); err != nil || left != 0 {
		t.Fatalf("RemoveFactor(last) = %d, %v", left, err)
	}
	_, err = f.m.UseRecoveryCode(ctx, "t", "u", codes[0])
	wantErr(t, "recovery code after the last factor went", err, mfa.ErrInvalidCode)
	_, _, err = f.m.RemoveFactor(ctx, "t", "u", a.ID)
	wantErr(t, "RemoveFactor twice", err, mfa.ErrNotFound)
}

// RemoveFactorKeeping removes a factor only while the user keeps keep
// confirmed factors besides it; a refusal (ErrLastFactor) removes nothing
// and leaves the recovery codes.
func TestRemoveFactorKeeping(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t)
	a, _ := f.enrolTOTP(t, "u")
	e := f.enrolOOB(t, "u", mfa.KindEmail, "ada@example.com")
	_, _ = f.m.GenerateRecoveryCodes(ctx, "t", "u")
	_, _, err := f.m.RemoveFactorKeeping(ctx, "t", "u", a.ID, 2)
	wantErr(t, "RemoveFactorKeeping(keep 2 of 2)", err, mfa.ErrLastFactor)
	removed, left, err := f.m.RemoveFactorKeeping(ctx, "t", "u", a.ID, 1)
	if err != nil || removed.ID != a.ID || removed.Secret != nil || left != 1 {
		t.Fatalf("RemoveFactorKeeping(keep 1 of 2) = %+v, %d, %v", removed, left, err)
	}
	_, _, err = f.m.RemoveFactorKeeping(ctx, "t", "u", e.ID, 1)
	wantErr(t, "RemoveFactorKeeping(the last, keep 1)", err, mfa.ErrLastFactor)
	if fs, _ := f.m.Factors(ctx, "t", "u"); len(fs) != 1 || fs[0].ID != e.ID {
		t.Errorf("factors after the refusal: %v, want the email factor", fs)
	}
	if r, _ := f.m.RecoveryCodesLeft(ctx, "t", "u"); r.Left != 10 {
		t.Errorf("recovery codes left %d after the refusal, want 10", r.Left)
	}
	_, _, err = f.m.RemoveFactorKeeping(ctx, "t", "u", a.ID, 1)
	wantErr(t, "RemoveFactorKeeping(a removed factor)", err, mfa.ErrNotFound)
	_, _, err = f.m.RemoveFactorKeeping(ctx, "t", "u", "", 1)
	wantInputError(t, "RemoveFactorKeeping(no id)", err)
	if _, left, err := f.m.RemoveFactorKeeping(ctx, "t", "u", e.ID, 0); err != nil || left != 0 {
		t.Errorf("RemoveFactorKeeping(the last, keep 0) = %d, %v", left, err)
	}
}

func TestDeleteUser(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t)
	f.enrolTOTP(t, "u")
	f.enrolOOB(t, "u", mfa.KindEmail, "ada@example.com")
	_, _ = f.m.BeginTOTP(ctx, "t", "u", "a", "")
	_, _ = f.m.GenerateRecoveryCodes(ctx, "t", "u")
	v, _ := f.enrolTOTP(t, "v")
	if err := f.m.DeleteUser(ctx, "t", "u"); err != nil {
		t.Fatal(err)
	}
	if fs, _ := f.m.Factors(ctx, "t", "u"); len(fs) != 0 {
		t.Errorf("%d factors left", len(fs))
	}
	if r, _ := f.m.RecoveryCodesLeft(ctx, "t", "u"); r.Left != 0 {
		t.Errorf("%d recovery codes left", r.Left)
	}
	if fs, _ := f.m.Factors(ctx, "t", "v"); len(fs) != 1 || fs[0].ID != v.ID {
		t.Errorf("another user's factors changed: %v", fs)
	}
}

func TestFactorsHidesSecrets(t *testing.T) {
	f := newFixture(t)
	f.enrolTOTP(t, "u")
	fs, err := f.m.Factors(t.Context(), "t", "u")
	if err != nil || len(fs) != 1 || fs[0].Secret != nil || fs[0].KeyID != "k1" {
		t.Errorf("Factors = %+v, %v", fs, err)
	}
}

func TestMaxFactors(t *testing.T) {
	f := newFixture(t, func(c *mfa.Config) { c.MaxFactors = 2 })
	f.enrolTOTP(t, "u")
	f.enrolTOTP(t, "u")
	_, err := f.m.BeginTOTP(t.Context(), "t", "u", "a", "")
	wantErr(t, "BeginTOTP beyond MaxFactors", err, mfa.ErrLimit)
}

func TestEnrolmentsAndSatisfies(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t)
	f.enrolTOTP(t, "alice")
	f.enrolOOB(t, "bob", mfa.KindEmail, "bob@example.com")
	f.enrolOOB(t, "carol", mfa.KindSMS, "+447700900123")
	_, _ = f.m.BeginTOTP(ctx, "t", "dave", "dave", "") // pending only
	es, err := f.m.Enrolments(ctx, "t", "", 10)
	if err != nil || len(es) != 3 {
		t.Fatalf("Enrolments = %v, %v", es, err)
	}
	want := map[string][2]bool{"alice": {true, true}, "bob": {false, true}, "carol": {true, true}}
	for _, e := range es {
		if got := [2]bool{e.Satisfies(false), e.Satisfies(true)}; got != want[e.UserID] {
			t.Errorf("%s: Satisfies(no email, email) = %v, want %v", e.UserID, got, want[e.UserID])
		}
	}
	for _, lim := range []int{0, 1001} {
		_, err := f.m.Enrolments(ctx, "t", "", lim)
		wantInputError(t, "Enrolments(limit)", err)
	}
	fs, _ := f.m.Factors(ctx, "t", "alice")
	if k := mfa.ConfirmedKinds(fs); len(k) != 1 || k[0] != mfa.KindTOTP {
		t.Errorf("ConfirmedKinds = %v", k)
	}
}

// TestEndToEnd walks the whole MFA half of a login: enrol an
// authenticator app from the otpauth URI alone (as a phone would), keep
// recovery codes, then sign in: the password step starts a transaction,
// the code generated from the enrolment secret is verified, and the
// transaction is consumed once.
func TestEndToEnd(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t)
	enrol, err := f.m.BeginTOTP(ctx, "acme", "u-1", "ada@acme.example", "Ada's phone")
	if err != nil {
		t.Fatal(err)
	}
	// The "phone": reads the URI, generates codes with pquerna/otp.
	key, err := mfa.ParseURI(enrol.URI)
	if err != nil {
		t.Fatal(err)
	}
	phoneSecret := base32.StdEncoding.EncodeToString(key.Secret)
	phone := func() string {
		c, err := totp.GenerateCode(phoneSecret, f.clk.Now())
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	if _, err := f.m.ConfirmTOTP(ctx, "acme", "u-1", enrol.Factor.ID, phone()); err != nil {
		t.Fatalf("ConfirmTOTP: %v", err)
	}
	recovery, err := f.m.GenerateRecoveryCodes(ctx, "acme", "u-1")
	if err != nil {
		t.Fatal(err)
	}
	f.clk.Add(time.Minute)

	// Sign in: password accepted by the facade, then the second factor.
	token, _, err := f.m.StartTransaction(ctx, mfa.TransactionOptions{Tenant: "acme", UserID: "u-1", Binding: "client-1", Purpose: "login"})
	if err != nil {
		t.Fatal(err)
	}
	x, err := f.m.LookupTransaction(ctx, token, "client-1")
	if err != nil {
		t.Fatal(err)
	}
	fac, err := f.m.VerifyTOTP(ctx, x.Tenant, x.UserID, "", phone())
	if err != nil || fac.ID != enrol.Factor.ID || fac.Label != "Ada's phone" {
		t.Fatalf("VerifyTOTP = %+v, %v", fac, err)
	}
	if _, err := f.m.ConsumeTransaction(ctx, token, "client-1"); err != nil {
		t.Fatalf("ConsumeTransaction: %v", err)
	}
	// The same code cannot open a second login.
	token2, x2, _ := f.m.StartTransaction(ctx, mfa.TransactionOptions{Tenant: "acme", UserID: "u-1", Binding: "client-1"})
	_, err = f.m.VerifyTOTP(ctx, x2.Tenant, x2.UserID, "", phone())
	wantErr(t, "the same TOTP code for a second login", err, mfa.ErrReplay)
	// A recovery code can.
	if r, err := f.m.UseRecoveryCode(ctx, "acme", "u-1", recovery[0]); err != nil || r.Left != 9 {
		t.Fatalf("UseRecoveryCode = %+v, %v", r, err)
	}
	if _, err := f.m.ConsumeTransaction(ctx, token2, "client-1"); err != nil {
		t.Fatal(err)
	}
}
