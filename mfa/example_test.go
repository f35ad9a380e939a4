package mfa_test

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/store/memstore"
)

// counterRand is a deterministic stand-in for crypto/rand, so that the
// examples' output is fixed. Never use anything like it outside tests.
type counterRand struct{ n byte }

func (r *counterRand) Read(p []byte) (int, error) {
	for i := range p {
		r.n++
		p[i] = r.n * 37
	}
	return len(p), nil
}

func ExampleManager_VerifyTOTP() {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 5, 0, time.UTC)
	hostKey := sha256.Sum256([]byte("from the host's secret manager"))
	keys, _ := mfa.NewKeyring(mfa.KeyringConfig{Keys: map[string][]byte{"2026-03": hostKey[:]}, Current: "2026-03"})
	m, err := mfa.New(mfa.Config{
		Stores:  memstore.NewMFA().Stores(),
		Keyring: keys,
		Issuer:  "Example CRM",
		Now:     func() time.Time { return now },
		Rand:    &counterRand{},
	})
	if err != nil {
		panic(err)
	}

	// Enrolment: show e.QRPNG (or e.URI) once; the user scans it.
	e, _ := m.BeginTOTP(ctx, "acme", "user-42", "ada@acme.example", "")
	fmt.Println("scan:", e.URI)

	// The app's first code activates the factor.
	code, _ := totp.GenerateCode(e.Secret, now)
	f, err := m.ConfirmTOTP(ctx, "acme", "user-42", e.Factor.ID, code)
	fmt.Println("confirmed:", f.Confirmed(), err)

	// At sign-in, a code is accepted once.
	now = now.Add(30 * time.Second)
	code, _ = totp.GenerateCode(e.Secret, now)
	_, err = m.VerifyTOTP(ctx, "acme", "user-42", "", code)
	fmt.Println("sign-in:", err)
	_, err = m.VerifyTOTP(ctx, "acme", "user-42", "", code)
	fmt.Println("same code again:", err, errors.Is(err, mfa.ErrReplay))
	// Output:
	// scan: otpauth://totp/Example%20CRM:ada@acme.example?algorithm=SHA1&digits=6&issuer=Example%20CRM&period=30&secret=OWNL7ZAJFZJXRHOC44GDCVT3UDC6UDZU
	// confirmed: true <nil>
	// sign-in: <nil>
	// same code again: mfa: code already used true
}

func ExampleParseCode() {
	for _, in := range []string{" 123456\n", "12345", "123 456", "١٢٣٤٥٦"} {
		code, err := mfa.ParseCode(in, 6)
		fmt.Printf("%q %v\n", code, err)
	}
	// Output:
	// "123456" <nil>
	// "" mfa: invalid code: must be 6 digits
	// "" mfa: invalid code: must be 6 digits
	// "" mfa: invalid code: must be 6 digits
}

func ExampleParseURI() {
	k, err := mfa.ParseURI("otpauth://totp/ACME%20Co:ada@acme.example?secret=JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP&issuer=ACME%20Co&digits=8")
	fmt.Println(k.Issuer, k.Account, len(k.Secret)*8, "bits", k.Algorithm, k.Digits, k.Period, err)
	_, err = mfa.ParseURI("otpauth://totp/ada?secret=JBSWY3DPEHPK3PXP") // 80-bit secret
	fmt.Println(err)
	// Output:
	// ACME Co ada@acme.example 160 bits SHA1 8 30 <nil>
	// mfa: invalid otpauth URI: secret shorter than 112 bits
}

// printSMS is an SMSSender that prints, as a development console would.
type printSMS struct{}

func (printSMS) SendSMS(_ context.Context, to, text string) error {
	fmt.Printf("SMS to %s: %s\n", to, text)
	return nil
}

func ExampleManager_SendCode() {
	ctx := context.Background()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	hostKey := sha256.Sum256([]byte("from the host's secret manager"))
	keys, _ := mfa.NewKeyring(mfa.KeyringConfig{Keys: map[string][]byte{"k1": hostKey[:]}, Current: "k1"})
	st := memstore.NewMFA()
	m, _ := mfa.New(mfa.Config{
		Stores: st.Stores(), Keyring: keys, Issuer: "Example CRM", SMS: printSMS{},
		Now: func() time.Time { return now }, Rand: &counterRand{},
	})
	// The user adds a phone and proves it with the code sent to it (read
	// here from the printed SMS).
	f, _, _ := m.BeginOOB(ctx, mfa.OOBRequest{Tenant: "acme", UserID: "user-42", Kind: mfa.KindSMS, Destination: "+447700900123"})
	_, err := m.ConfirmOOB(ctx, "acme", "user-42", f.ID, "075940")
	fmt.Println("phone confirmed:", err)

	// At sign-in: a code for this login transaction only.
	_, txn, _ := m.StartTransaction(ctx, mfa.TransactionOptions{Tenant: "acme", UserID: "user-42"})
	res, _ := m.SendCode(ctx, mfa.SendRequest{Tenant: "acme", UserID: "user-42", FactorID: f.ID, Txn: txn.ID(), IP: "192.0.2.7"})
	fmt.Println("sent:", res.Sent)
	// A second request within the cool-down is suppressed: the sender is
	// not called, and the facade answers the user exactly as if it had been.
	res, _ = m.SendCode(ctx, mfa.SendRequest{Tenant: "acme", UserID: "user-42", FactorID: f.ID, Txn: txn.ID(), IP: "192.0.2.7"})
	fmt.Println("sent:", res.Sent, "suppressed:", res.Suppressed)
	// Output:
	// SMS to +447700900123: Your verification code is 075940. It expires in 10 minutes. Do not share it.
	// phone confirmed: <nil>
	// SMS to +447700900123: Your verification code is 912152. It expires in 10 minutes. Do not share it.
	// sent: true
	// sent: false suppressed: mfa: resend cool-down
}
