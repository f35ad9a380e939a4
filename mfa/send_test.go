package mfa_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/guardhq/guard/mfa"
)

// enrolOOB enrols and confirms an email or SMS factor for t/user.
func (f *fixture) enrolOOB(t testing.TB, user string, kind mfa.Kind, dest string) mfa.Factor {
	t.Helper()
	ctx := context.Background()
	s := f.email
	if kind == mfa.KindSMS {
		s = f.sms
	}
	fac, res, err := f.m.BeginOOB(ctx, mfa.OOBRequest{Tenant: "t", UserID: user, Kind: kind, Destination: dest, IP: "192.0.2.1"})
	if err != nil || !res.Sent {
		t.Fatalf("BeginOOB = %+v, %v", res, err)
	}
	fac, err = f.m.ConfirmOOB(ctx, "t", user, fac.ID, s.lastCode(t))
	if err != nil {
		t.Fatalf("ConfirmOOB: %v", err)
	}
	return fac
}

// login starts a transaction for user and returns its ID.
func (f *fixture) login(t *testing.T, user string) string {
	t.Helper()
	_, x, err := f.m.StartTransaction(t.Context(), mfa.TransactionOptions{Tenant: "t", UserID: user})
	if err != nil {
		t.Fatal(err)
	}
	return x.ID()
}

func (f *fixture) send(t *testing.T, user, factorID, txn, ip string) mfa.SendResult {
	t.Helper()
	res, err := f.m.SendCode(t.Context(), mfa.SendRequest{Tenant: "t", UserID: user, FactorID: factorID, Txn: txn, IP: ip})
	if err != nil {
		t.Fatalf("SendCode: %v", err)
	}
	return res
}

// TestOOBEnrolment: an SMS factor is pending until its code proves the
// number. SECURITY-CHECKLIST MF-16 (an unverified phone or email is no
// factor: its code does not sign in and it is not enrolled).
func TestOOBEnrolment(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t)
	fac, res, err := f.m.BeginOOB(ctx, mfa.OOBRequest{Tenant: "t", UserID: "u", Kind: mfa.KindSMS, Destination: "+447700900123"})
	if err != nil || !res.Sent || res.ExpiresAt != t0.Add(10*time.Minute) {
		t.Fatalf("BeginOOB = %+v, %v", res, err)
	}
	if fac.Confirmed() || fac.Label != "Phone ending 0123" || fac.Destination != "+447700900123" {
		t.Errorf("pending factor %+v", fac)
	}
	if f.sms.sent[0].To != "+447700900123" || !strings.Contains(f.sms.sent[0].Text, "expires in 10 minutes") {
		t.Errorf("sent %+v", f.sms.sent[0])
	}
	// A pending factor is not a factor: its code does not sign in, and a
	// login code cannot be sent to it (the send goes to the enrolment).
	txn := f.login(t, "u")
	_, err = f.m.VerifyCode(ctx, "t", "u", txn, f.sms.lastCode(t))
	wantErr(t, "VerifyCode with the enrolment code", err, mfa.ErrNotFound)
	if e, _ := f.m.Enrolments(ctx, "t", "", 10); len(e) != 0 {
		t.Errorf("pending factor counted as enrolled: %v", e)
	}
	// Wrong code, then the right one.
	_, err = f.m.ConfirmOOB(ctx, "t", "u", fac.ID, "000000")
	if f.sms.lastCode(t) != "000000" {
		wantErr(t, "ConfirmOOB(wrong)", err, mfa.ErrInvalidCode)
	}
	got, err := f.m.ConfirmOOB(ctx, "t", "u", fac.ID, f.sms.lastCode(t))
	if err != nil || !got.Confirmed() {
		t.Fatalf("ConfirmOOB = %+v, %v", got, err)
	}
	_, err = f.m.ConfirmOOB(ctx, "t", "u", fac.ID, f.sms.lastCode(t))
	wantErr(t, "second ConfirmOOB", err, mfa.ErrConflict)
	if e, _ := f.m.Enrolments(ctx, "t", "", 10); len(e) != 1 || e[0].Kinds[0] != mfa.KindSMS {
		t.Errorf("Enrolments = %v", e)
	}
}

func TestOOBEnrolmentExpired(t *testing.T) {
	f := newFixture(t)
	fac, _, _ := f.m.BeginOOB(t.Context(), mfa.OOBRequest{Tenant: "t", UserID: "u", Kind: mfa.KindEmail, Destination: "ada@example.com"})
	code := f.email.lastCode(t)
	f.clk.Add(mfa.DefaultEnrolTTL)
	_, err := f.m.ConfirmOOB(t.Context(), "t", "u", fac.ID, code)
	wantErr(t, "ConfirmOOB after EnrolTTL", err, mfa.ErrExpired)
	// Refused, not deleted (a confirmation landing meanwhile would go with
	// it): it stays pending and is refused again, until a new enrolment of
	// the kind voids it.
	_, err = f.m.ConfirmOOB(t.Context(), "t", "u", fac.ID, code)
	wantErr(t, "ConfirmOOB of the expired factor, again", err, mfa.ErrExpired)
	if _, _, err := f.m.BeginOOB(t.Context(), mfa.OOBRequest{Tenant: "t", UserID: "u", Kind: mfa.KindEmail, Destination: "ada@example.com"}); err != nil {
		t.Fatal(err)
	}
	_, err = f.m.ConfirmOOB(t.Context(), "t", "u", fac.ID, code)
	wantErr(t, "ConfirmOOB of the voided factor", err, mfa.ErrNotFound)
}

func TestOOBEnrolmentInput(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct {
		name string
		kind mfa.Kind
		dest string
	}{
		{"TOTPKind", mfa.KindTOTP, "ada@example.com"},
		{"NoKind", "", "ada@example.com"},
		{"DisplayName", mfa.KindEmail, "Ada <ada@example.com>"},
		{"HeaderInjection", mfa.KindEmail, "ada@example.com\r\nBcc: eve@example.com"},
		{"NoAt", mfa.KindEmail, "ada"},
		{"LongEmail", mfa.KindEmail, strings.Repeat("a", 250) + "@example.com"},
		{"NoPlus", mfa.KindSMS, "447700900123"},
		{"Letters", mfa.KindSMS, "+44770090012a"},
		{"TooShort", mfa.KindSMS, "+44123"},
		{"TooLong", mfa.KindSMS, "+4477009001234567"},
		{"LeadingZero", mfa.KindSMS, "+0447700900123"},
		{"Spaces", mfa.KindSMS, "+44 7700 900123"},
		{"ArabicDigits", mfa.KindSMS, "+٤٤٧٧٠٠٩٠٠١٢٣"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := f.m.BeginOOB(t.Context(), mfa.OOBRequest{Tenant: "t", UserID: "u", Kind: tc.kind, Destination: tc.dest})
			wantInputError(t, "BeginOOB", err)
		})
	}
	if f.email.count()+f.sms.count() != 0 {
		t.Error("bad input sent a message")
	}
	if fs, _ := f.m.Factors(t.Context(), "t", "u"); len(fs) != 0 {
		t.Errorf("bad input stored %d factors", len(fs))
	}
}

func TestSendAndVerify(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t)
	fac := f.enrolOOB(t, "u", mfa.KindEmail, "ada@example.com")
	txn := f.login(t, "u")
	res := f.send(t, "u", fac.ID, txn, "192.0.2.1")
	if !res.Sent || res.Suppressed != nil || res.Factor.ID != fac.ID {
		t.Fatalf("SendCode = %+v", res)
	}
	m := f.email.sent[len(f.email.sent)-1]
	if m.To != "ada@example.com" || m.Subject != "Your verification code" {
		t.Errorf("message %+v", m)
	}
	code := f.email.lastCode(t)
	got, err := f.m.VerifyCode(ctx, "t", "u", txn, code)
	if err != nil || got.ID != fac.ID || got.Kind != mfa.KindEmail {
		t.Fatalf("VerifyCode = %+v, %v", got, err)
	}
	// Once only.
	_, err = f.m.VerifyCode(ctx, "t", "u", txn, code)
	wantErr(t, "VerifyCode twice", err, mfa.ErrNotFound)
}

func TestCodeBoundToTransaction(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t)
	fac := f.enrolOOB(t, "u", mfa.KindSMS, "+447700900123")
	a, b := f.login(t, "u"), f.login(t, "u")
	f.send(t, "u", fac.ID, a, "")
	codeA := f.sms.lastCode(t)
	f.send(t, "u", fac.ID, b, "")
	codeB := f.sms.lastCode(t)
	if codeA == codeB {
		t.Skip("two random codes collided")
	}
	_, err := f.m.VerifyCode(ctx, "t", "u", b, codeA)
	wantErr(t, "A's code in B", err, mfa.ErrInvalidCode)
	if _, err := f.m.VerifyCode(ctx, "t", "u", a, codeA); err != nil {
		t.Errorf("A's code in A: %v", err)
	}
	if _, err := f.m.VerifyCode(ctx, "t", "u", b, codeB); err != nil {
		t.Errorf("B's code in B: %v", err)
	}
	// A transaction of another user cannot use the code.
	c := f.login(t, "u")
	f.clk.Add(time.Minute)
	f.send(t, "u", fac.ID, c, "")
	_, err = f.m.VerifyCode(ctx, "t", "v", c, f.sms.lastCode(t))
	wantErr(t, "u's code for user v", err, mfa.ErrNotFound)
}

func TestNewCodeVoidsOld(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t, func(c *mfa.Config) { c.ResendCoolDown = time.Second })
	fac := f.enrolOOB(t, "u", mfa.KindSMS, "+447700900123")
	txn := f.login(t, "u")
	f.send(t, "u", fac.ID, txn, "")
	old := f.sms.lastCode(t)
	f.clk.Add(time.Second)
	f.send(t, "u", fac.ID, txn, "")
	nu := f.sms.lastCode(t)
	if old == nu {
		t.Skip("two random codes collided")
	}
	_, err := f.m.VerifyCode(ctx, "t", "u", txn, old)
	wantErr(t, "the voided code", err, mfa.ErrInvalidCode)
	if _, err := f.m.VerifyCode(ctx, "t", "u", txn, nu); err != nil {
		t.Errorf("the new code: %v", err)
	}
}

// SECURITY-CHECKLIST MF-12.
func TestCodeTries(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t)
	fac := f.enrolOOB(t, "u", mfa.KindEmail, "ada@example.com")
	txn := f.login(t, "u")
	f.send(t, "u", fac.ID, txn, "")
	right := f.email.lastCode(t)
	wrong := fmt.Sprintf("%06d", (atoi(right)+1)%1_000_000)
	for i := range 5 {
		_, err := f.m.VerifyCode(ctx, "t", "u", txn, wrong)
		wantErr(t, fmt.Sprintf("wrong try %d", i+1), err, mfa.ErrInvalidCode)
	}
	_, err := f.m.VerifyCode(ctx, "t", "u", txn, right)
	wantErr(t, "the right code after 5 wrong tries", err, mfa.ErrTooManyTries)
	// Malformed input does not use a try, and is refused.
	f.clk.Add(time.Minute)
	txn2 := f.login(t, "u")
	f.send(t, "u", fac.ID, txn2, "")
	for _, bad := range []string{"12345", "1234567", "١٢٣٤٥٦", strings.Repeat("1", 10<<10), "abcdef"} {
		_, err := f.m.VerifyCode(ctx, "t", "u", txn2, bad)
		wantInputError(t, "VerifyCode(malformed)", err)
	}
	if _, err := f.m.VerifyCode(ctx, "t", "u", txn2, f.email.lastCode(t)); err != nil {
		t.Errorf("right code after malformed input: %v", err)
	}
}

// SECURITY-CHECKLIST MF-10.
func TestCodeExpiry(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t)
	fac := f.enrolOOB(t, "u", mfa.KindSMS, "+447700900123")
	txn := f.login(t, "u")
	f.send(t, "u", fac.ID, txn, "")
	f.clk.Add(10*time.Minute + time.Second)
	_, err := f.m.VerifyCode(ctx, "t", "u", txn, f.sms.lastCode(t))
	wantErr(t, "code after 10 min + 1 s", err, mfa.ErrExpired)

	txn2 := f.login(t, "u")
	f.send(t, "u", fac.ID, txn2, "")
	f.clk.Add(10*time.Minute - time.Second)
	if _, err := f.m.VerifyCode(ctx, "t", "u", txn2, f.sms.lastCode(t)); err != nil {
		t.Errorf("code after 10 min - 1 s: %v", err)
	}
}

// SECURITY-CHECKLIST MF-14.
func TestCodeStoredHashed(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t)
	fac := f.enrolOOB(t, "u", mfa.KindSMS, "+447700900123")
	txn := f.login(t, "u")
	f.send(t, "u", fac.ID, txn, "")
	code := f.sms.lastCode(t)
	// What the store holds (seen through CheckCode's returned record) is
	// neither the code nor its plain SHA-256.
	c, err := f.st.CheckCode(ctx, "t", mfa.CodeTxn("u", txn), mfa.Hash{}, f.clk.Now())
	wantErr(t, "CheckCode(zero hash)", err, mfa.ErrInvalidCode)
	if strings.Contains(fmt.Sprintf("%+v", c), code) || c.Hash.IsZero() {
		t.Errorf("stored code record %+v holds the code", c)
	}
	// With another HMAC key the same code does not verify.
	other := newFixture(t, func(cfg *mfa.Config) { cfg.CodeKey = make([]byte, 32); cfg.Stores = f.st.Stores() })
	_, err = other.m.VerifyCode(ctx, "t", "u", txn, code)
	wantErr(t, "VerifyCode under another code key", err, mfa.ErrInvalidCode)
}

// SECURITY-CHECKLIST MF-13.
func TestCodesUniform(t *testing.T) {
	// 10,000 codes: six digits, first digit and last digit uniform
	// (chi-square over 10 cells, 9 degrees of freedom, p > 0.001 means
	// below 27.88), and no code repeats the one before.
	f := newFixture(t, func(c *mfa.Config) {
		c.ResendCoolDown = time.Nanosecond
		c.Limits = mfa.SendLimits{PerDestination: 1 << 30, PerAccount: 1 << 30, PerIP: 1 << 30, PerTenant: 1 << 30}
	})
	fac := f.enrolOOB(t, "u", mfa.KindSMS, "+447700900123")
	txn := f.login(t, "u")
	const n = 10_000
	var first, last [10]int
	prev := ""
	for range n {
		f.clk.Add(time.Microsecond)
		f.send(t, "u", fac.ID, txn, "")
		c := f.sms.lastCode(t)
		if len(c) != 6 {
			t.Fatalf("code %q", c)
		}
		if c == prev {
			t.Errorf("code %s repeated", c)
		}
		prev = c
		first[c[0]-'0']++
		last[c[5]-'0']++
	}
	for name, cells := range map[string][10]int{"first": first, "last": last} {
		chi := 0.0
		for _, o := range cells {
			d := float64(o) - n/10
			chi += d * d / (n / 10)
		}
		if chi > 27.88 || math.IsNaN(chi) {
			t.Errorf("%s digit: chi-square %.1f over %v", name, chi, cells)
		}
	}
}

func TestResendCoolDown(t *testing.T) {
	f := newFixture(t)
	fac := f.enrolOOB(t, "u", mfa.KindEmail, "ada@example.com")
	txn := f.login(t, "u")
	f.send(t, "u", fac.ID, txn, "")
	code := f.email.lastCode(t)
	sent := f.email.count()
	f.clk.Add(29 * time.Second)
	res := f.send(t, "u", fac.ID, txn, "")
	if res.Sent || !errors.Is(res.Suppressed, mfa.ErrCoolDown) || f.email.count() != sent {
		t.Errorf("resend within the cool-down = %+v, %d sent", res, f.email.count()-sent)
	}
	// The earlier code still works, and after the cool-down a new one goes.
	f.clk.Add(time.Second)
	res = f.send(t, "u", fac.ID, txn, "")
	if !res.Sent || f.email.count() != sent+1 {
		t.Errorf("resend after the cool-down = %+v", res)
	}
	// Another transaction is not cooled down.
	if res := f.send(t, "u", fac.ID, f.login(t, "u"), ""); !res.Sent {
		t.Errorf("send for another transaction = %+v", res)
	}
	_ = code
}

// SECURITY-CHECKLIST MF-15.
func TestSendLimits(t *testing.T) {
	for _, tc := range []struct {
		name   string
		limits mfa.SendLimits
		scope  string
		vary   func(i int) (user, ip string) // per request
		allow  int
	}{
		{"PerIP", mfa.SendLimits{PerIP: 3}, "ip", func(i int) (string, string) { return fmt.Sprint("u", i), "198.51.100.7" }, 3},
		{"PerAccount", mfa.SendLimits{PerAccount: 4}, "account", func(i int) (string, string) { return "u", fmt.Sprint("198.51.100.", i) }, 4},
		{"PerDestination", mfa.SendLimits{PerDestination: 2}, "destination", func(i int) (string, string) { return fmt.Sprint("u", i), fmt.Sprint("198.51.100.", i) }, 2},
		{"PerTenant", mfa.SendLimits{PerTenant: 3, PerDestination: 100}, "tenant", func(i int) (string, string) { return fmt.Sprint("u", i), fmt.Sprint("198.51.100.", i) }, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, func(c *mfa.Config) { c.Limits = tc.limits })
			factors := map[string]mfa.Factor{}
			for i := range 8 {
				u, _ := tc.vary(i)
				if _, ok := factors[u]; !ok {
					f.clk.Add(time.Hour) // enrolment sends do not count into this window
					factors[u] = f.enrolOOB(t, u, mfa.KindSMS, "+447700900123")
				}
			}
			f.clk.Add(2 * time.Hour)
			before := f.sms.count()
			for i := range 8 {
				u, ip := tc.vary(i)
				res := f.send(t, u, factors[u].ID, f.login(t, u), ip)
				var rl *mfa.RateLimitError
				switch {
				case i < tc.allow && !res.Sent:
					t.Errorf("request %d suppressed: %v", i, res.Suppressed)
				case i >= tc.allow && (res.Sent || !errors.As(res.Suppressed, &rl) || rl.Scope != tc.scope || !errors.Is(res.Suppressed, mfa.ErrRateLimited)):
					t.Errorf("request %d over the limit = %+v, want suppressed for %s", i, res, tc.scope)
				}
			}
			if got := f.sms.count() - before; got != tc.allow {
				t.Errorf("the sender was called %d times, want %d", got, tc.allow)
			}
			// After the window the limit starts again.
			f.clk.Add(time.Hour)
			u, ip := tc.vary(7)
			if res := f.send(t, u, factors[u].ID, f.login(t, u), ip); !res.Sent {
				t.Errorf("after the window: %+v", res)
			}
		})
	}
}

// SECURITY-CHECKLIST MF-15.
func TestSMSPrefixes(t *testing.T) {
	f := newFixture(t, func(c *mfa.Config) { c.SMSPrefixes = []string{"+44", "+1"} })
	_, res, err := f.m.BeginOOB(t.Context(), mfa.OOBRequest{Tenant: "t", UserID: "u", Kind: mfa.KindSMS, Destination: "+2347000000000"})
	if err != nil || res.Sent || !errors.Is(res.Suppressed, mfa.ErrDestinationNotAllowed) || f.sms.count() != 0 {
		t.Errorf("BeginOOB to a number outside the prefixes = %+v, %v; %d sent", res, err, f.sms.count())
	}
	if fs, _ := f.m.Factors(t.Context(), "t", "u"); len(fs) != 0 {
		t.Errorf("a factor was stored: %v", fs)
	}
	f.enrolOOB(t, "u", mfa.KindSMS, "+15555550100")
	if _, err := mfa.New(mfa.Config{Stores: f.st.Stores(), Keyring: f.keys, Issuer: "x", SMSPrefixes: []string{"44"}}); err == nil {
		t.Error("a prefix without + was accepted")
	}
}

func TestSenderFailure(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t)
	fac := f.enrolOOB(t, "u", mfa.KindSMS, "+447700900123")
	txn := f.login(t, "u")
	f.send(t, "u", fac.ID, txn, "")
	code := f.sms.lastCode(t)
	f.sms.fail = errors.New("gateway down")
	f.clk.Add(time.Minute)
	res, err := f.m.SendCode(ctx, mfa.SendRequest{Tenant: "t", UserID: "u", FactorID: fac.ID, Txn: txn})
	var se *mfa.SendError
	if !errors.As(err, &se) || res.Sent || se.Channel != "sms" {
		t.Fatalf("SendCode with a failing sender = %+v, %v; want a *SendError", res, err)
	}
	// Fails visibly and opens nothing: no code is pending for txn now.
	_, err = f.m.VerifyCode(ctx, "t", "u", txn, code)
	wantErr(t, "VerifyCode after a failed send", err, mfa.ErrNotFound)
}

func TestSendUnavailable(t *testing.T) {
	f := newFixture(t, func(c *mfa.Config) { c.SMS = nil })
	_, _, err := f.m.BeginOOB(t.Context(), mfa.OOBRequest{Tenant: "t", UserID: "u", Kind: mfa.KindSMS, Destination: "+447700900123"})
	wantErr(t, "BeginOOB without an SMS sender", err, mfa.ErrUnavailable)
}

func TestSendCodeToTOTPFactor(t *testing.T) {
	f := newFixture(t)
	fac, _ := f.enrolTOTP(t, "u")
	_, err := f.m.SendCode(t.Context(), mfa.SendRequest{Tenant: "t", UserID: "u", FactorID: fac.ID, Txn: f.login(t, "u")})
	wantErr(t, "SendCode to a TOTP factor", err, mfa.ErrNotFound)
}

func TestVerifyCodeConcurrent(t *testing.T) {
	f := newFixture(t)
	fac := f.enrolOOB(t, "u", mfa.KindSMS, "+447700900123")
	txn := f.login(t, "u")
	f.send(t, "u", fac.ID, txn, "")
	code := f.sms.lastCode(t)
	const n = 50
	var mu sync.Mutex
	var ok int
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			_, err := f.m.VerifyCode(t.Context(), "t", "u", txn, code)
			if err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			} else if !errors.Is(err, mfa.ErrNotFound) {
				t.Errorf("VerifyCode: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if ok != 1 {
		t.Errorf("%d of %d concurrent checks of the right code succeeded, want 1", ok, n)
	}
}

func TestSendStoreFailureFailsClosed(t *testing.T) {
	f := newFixture(t)
	fac := f.enrolOOB(t, "u", mfa.KindSMS, "+447700900123")
	boom := errors.New("rate store down")
	st := f.st.Stores()
	st.Rates = failingRates{boom}
	m, err := mfa.New(mfa.Config{Stores: st, Keyring: f.keys, Issuer: "x", SMS: f.sms, Now: f.clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	before := f.sms.count()
	_, err = m.SendCode(t.Context(), mfa.SendRequest{Tenant: "t", UserID: "u", FactorID: fac.ID, Txn: f.login(t, "u")})
	if !errors.Is(err, boom) || f.sms.count() != before {
		t.Errorf("SendCode with a failing rate store = %v, %d sent; want the store error and no send", err, f.sms.count()-before)
	}
}

type failingRates struct{ err error }

func (r failingRates) Hit(context.Context, string, time.Time, time.Duration) (int, error) {
	return 0, r.err
}

func (r failingRates) Forget(context.Context, string, time.Time, time.Duration) error { return r.err }

// Anyone can start an enrolment to any address, in any tenant, and so
// use up that address's count of enrolment codes; the codes that sign in
// the address's owner, whose factor is confirmed, count apart and are
// still sent (a stranger cannot lock an email or SMS user out by
// enrolling their address). Enrolments stay bounded.
func TestStrangersEnrolmentsDoNotStopSignInCodes(t *testing.T) {
	const victim = "+447700900123"
	f := newFixture(t, func(c *mfa.Config) { c.Limits = mfa.SendLimits{PerDestination: 2, PerIP: 1 << 30, PerAccount: 1 << 30} })
	fac := f.enrolOOB(t, "victim", mfa.KindSMS, victim)
	f.clk.Add(2 * time.Hour)
	enrolled := 0
	for i := range 5 {
		_, res, err := f.m.BeginOOB(t.Context(), mfa.OOBRequest{Tenant: fmt.Sprint("evil", i), UserID: "mallory", Kind: mfa.KindSMS, Destination: victim})
		if err != nil {
			t.Fatal(err)
		}
		if res.Sent {
			enrolled++
		}
	}
	if enrolled != 2 {
		t.Errorf("%d enrolment codes sent to one address, want the limit, 2", enrolled)
	}
	for i := range 2 {
		if res := f.send(t, "victim", fac.ID, f.login(t, "victim"), fmt.Sprint("198.51.100.", i)); !res.Sent {
			t.Errorf("sign-in code %d after strangers' enrolments: %+v", i, res.Suppressed)
		}
	}
	var rl *mfa.RateLimitError
	if res := f.send(t, "victim", fac.ID, f.login(t, "victim"), "198.51.100.9"); res.Sent || !errors.As(res.Suppressed, &rl) || rl.Scope != "destination" {
		t.Errorf("a third sign-in code = %+v, want suppressed for destination", res)
	}
}

// The per-destination limit counts an email address whatever its case:
// a caller that passes addresses as typed does not give each
// capitalisation of one mailbox a count of its own.
func TestDestinationLimitIgnoresCase(t *testing.T) {
	f := newFixture(t, func(c *mfa.Config) { c.Limits = mfa.SendLimits{PerDestination: 2, PerIP: 1 << 30, PerAccount: 1 << 30} })
	sent := 0
	for i, d := range []string{"victim@example.test", "Victim@example.test", "VICTIM@example.test", "victim@EXAMPLE.test"} {
		_, res, err := f.m.BeginOOB(t.Context(), mfa.OOBRequest{Tenant: "t", UserID: fmt.Sprint("u", i), Kind: mfa.KindEmail, Destination: d})
		if err != nil {
			t.Fatal(err)
		}
		if res.Sent {
			sent++
		}
	}
	if sent != 2 || f.email.count() != 2 {
		t.Errorf("%d enrolment codes sent (%d mails) to one mailbox spelt four ways, want the limit, 2", sent, f.email.count())
	}
}

// A factor's label is shown to the user and to administrators: besides
// control characters, it may hold no line separator and no bidirectional
// override (what auth.CheckName refuses in a name). Refused, nothing is
// stored and nothing sent.
func TestLabelRefusesSeparatorsAndBidi(t *testing.T) {
	f := newFixture(t)
	for _, label := range []string{"Work\u2028phone", "Work\u202ephone", "Work\u0085phone"} {
		_, _, err := f.m.BeginOOB(t.Context(), mfa.OOBRequest{Tenant: "t", UserID: "u", Kind: mfa.KindSMS, Destination: "+447700900123", Label: label})
		var ie *mfa.InputError
		if !errors.As(err, &ie) || ie.Field != "label" {
			t.Errorf("BeginOOB with label %q = %v; want an InputError on label", label, err)
		}
	}
	if fs, _ := f.m.Factors(t.Context(), "t", "u"); len(fs) != 0 || f.sms.count() != 0 {
		t.Errorf("%d factors stored, %d codes sent", len(fs), f.sms.count())
	}
}

func TestMaskDestination(t *testing.T) {
	for _, tc := range []struct {
		kind    mfa.Kind
		d, want string
	}{
		{mfa.KindSMS, "+447700900123", "…0123"},
		{mfa.KindEmail, "ada@example.com", "a…@example.com"},
		{mfa.KindEmail, "a@example.com", "a…@example.com"},
		{mfa.KindEmail, "élodie@example.com", "é…@example.com"},
		{mfa.KindEmail, `"a@b"@example.com`, `"…@example.com`},
		{mfa.KindEmail, "", ""},
		{mfa.KindTOTP, "", ""},
	} {
		if got := mfa.MaskDestination(tc.kind, tc.d); got != tc.want {
			t.Errorf("MaskDestination(%s, %q) = %q, want %q", tc.kind, tc.d, got, tc.want)
		}
	}
}

// A send that fails gives the resend cool-down back (a retry goes out at
// once, and its code works), but still counts against the send limits; a
// send that succeeds starts the cool-down as before. The code sent before
// the failed send is gone with it (SendCode's doc).
func TestFailedSendGivesCoolDownBack(t *testing.T) {
	f := newFixture(t, func(c *mfa.Config) { c.Limits = mfa.SendLimits{PerAccount: 4} })
	fac := f.enrolOOB(t, "u", mfa.KindSMS, "+447700900123")
	txn := f.login(t, "u")
	if res := f.send(t, "u", fac.ID, txn, ""); !res.Sent {
		t.Fatalf("first send: %+v", res)
	}
	earlier := f.sms.lastCode(t)
	f.clk.Add(time.Minute)
	f.sms.fail = errors.New("gateway down")
	var se *mfa.SendError
	if _, err := f.m.SendCode(t.Context(), mfa.SendRequest{Tenant: "t", UserID: "u", FactorID: fac.ID, Txn: txn}); !errors.As(err, &se) {
		t.Fatalf("send with the gateway down = %v, want a *SendError", err)
	}
	f.sms.fail = nil
	if _, err := f.m.VerifyCode(t.Context(), "t", "u", txn, earlier); !errors.Is(err, mfa.ErrNotFound) {
		t.Errorf("the code before the failed send = %v, want ErrNotFound (replaced, then deleted)", err)
	}
	f.clk.Add(time.Second)
	if res := f.send(t, "u", fac.ID, txn, ""); !res.Sent {
		t.Fatalf("retry after the failed send: %+v, want it sent", res)
	}
	if _, err := f.m.VerifyCode(t.Context(), "t", "u", txn, f.sms.lastCode(t)); err != nil {
		t.Errorf("the retry's code: %v", err)
	}
	if res := f.send(t, "u", fac.ID, txn, ""); !errors.Is(res.Suppressed, mfa.ErrCoolDown) {
		t.Errorf("a send right after the retry: %+v, want ErrCoolDown", res)
	}
	// The enrolment's code, the first, the failed one and the retry: the
	// account's four of the hour (the send held back by the cool-down
	// counted in no other limit).
	f.clk.Add(time.Minute)
	if res := f.send(t, "u", fac.ID, txn, ""); !errors.Is(res.Suppressed, mfa.ErrRateLimited) {
		t.Errorf("a send past PerAccount: %+v, want ErrRateLimited", res)
	}
}
