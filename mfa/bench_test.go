package mfa_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"encoding/base32"
	"encoding/binary"
	"fmt"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/guardhq/guard/mfa"
)

// benchSecret is the raw TOTP secret of the benchmark factor.
var benchSecret = []byte("0123456789abcdefghij")

// codeFor is RFC 4226 for benchSecret, computed here so the benchmark can
// prepare its codes without timing them.
func codeFor(step int64) string {
	mac := hmac.New(sha1.New, benchSecret)
	var msg [8]byte
	binary.BigEndian.PutUint64(msg[:], uint64(step))
	mac.Write(msg[:])
	sum := mac.Sum(nil)
	off := sum[19] & 0xf
	return fmt.Sprintf("%06d", (binary.BigEndian.Uint32(sum[off:])&0x7fffffff)%1_000_000)
}

// BenchmarkTOTPVerify is a successful VerifyTOTP on memstore, replay check
// included: look up the factor, open its sealed secret, compare the code
// with the three steps of the default skew in constant time, and advance
// the last step atomically. Each iteration uses the next time step, so
// every verification succeeds.
func BenchmarkTOTPVerify(b *testing.B) {
	f := newFixture(b)
	id := benchFactor(b, f)
	start := t0.Unix()/30 + 1
	codes := make([]string, b.N)
	for i := range codes {
		codes[i] = codeFor(start + int64(i))
	}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		f.clk.Set(time.Unix((start+int64(i))*30+5, 0))
		if _, err := f.m.VerifyTOTP(ctx, "t", "u", id, codes[i]); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTOTPVerifyReplay is the reuse path: the right code of a step
// already accepted, refused by the store's compare-and-set.
func BenchmarkTOTPVerifyReplay(b *testing.B) {
	f := newFixture(b)
	id := benchFactor(b, f)
	ctx := context.Background()
	code := codeFor(t0.Unix() / 30)
	if _, err := f.m.VerifyTOTP(ctx, "t", "u", id, code); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.m.VerifyTOTP(ctx, "t", "u", id, code); err == nil {
			b.Fatal("replay accepted")
		}
	}
}

// BenchmarkPquernaValidate is pquerna/otp's own check of the same code
// (skew 1, no replay memory, secret decoded from base32 on every step),
// for comparison.
func BenchmarkPquernaValidate(b *testing.B) {
	secret := base32.StdEncoding.EncodeToString(benchSecret)
	now := t0
	code := codeFor(now.Unix() / 30)
	opts := totp.ValidateOpts{Period: 30, Skew: 1, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1}
	b.ReportAllocs()
	for b.Loop() {
		if ok, err := totp.ValidateCustom(code, secret, now, opts); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

func benchFactor(b *testing.B, f *fixture) string {
	const id = "bench-factor"
	keyID, sealed, err := f.keys.Seal(benchSecret, mfa.SecretAAD("t", "u", id))
	if err != nil {
		b.Fatal(err)
	}
	fac := mfa.Factor{ID: id, Tenant: "t", UserID: "u", Kind: mfa.KindTOTP, KeyID: keyID, Secret: sealed, CreatedAt: t0, ConfirmedAt: t0}
	if err := f.st.CreateFactor(context.Background(), fac, 0); err != nil {
		b.Fatal(err)
	}
	return id
}

func BenchmarkParseCode(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := mfa.ParseCode(" 123456 ", 6); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyCode is a successful email/SMS code check on memstore
// (HMAC, consume once, factor lookup); sending is not timed.
func BenchmarkVerifyCode(b *testing.B) {
	f := newFixture(b, func(c *mfa.Config) {
		c.ResendCoolDown = time.Nanosecond
		c.Limits = mfa.SendLimits{PerDestination: 1 << 30, PerAccount: 1 << 30, PerIP: 1 << 30, PerTenant: 1 << 30}
	})
	fac := f.enrolOOB(b, "u", mfa.KindSMS, "+447700900123")
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		b.StopTimer()
		f.clk.Add(time.Microsecond)
		if _, err := f.m.SendCode(ctx, mfa.SendRequest{Tenant: "t", UserID: "u", FactorID: fac.ID, Txn: "txn"}); err != nil {
			b.Fatal(err)
		}
		code := f.sms.lastCode(b)
		f.sms.sent = f.sms.sent[:0]
		b.StartTimer()
		if _, err := f.m.VerifyCode(ctx, "t", "u", "txn", code); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkUseRecoveryCodeWrong is the cost of a wrong recovery code
// (parse, hash, store miss).
func BenchmarkUseRecoveryCodeWrong(b *testing.B) {
	f := newFixture(b)
	ctx := context.Background()
	if _, err := f.m.GenerateRecoveryCodes(ctx, "t", "u"); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := f.m.UseRecoveryCode(ctx, "t", "u", "0000-0000-0000-0000-0000-0000"); err == nil {
			b.Fatal("accepted")
		}
	}
}
