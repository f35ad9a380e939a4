package mfa_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base32"
	"errors"
	"fmt"
	"image/png"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/hotp"
	"github.com/pquerna/otp/totp"

	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/store/memstore"
)

func TestBeginTOTP(t *testing.T) {
	f := newFixture(t, func(c *mfa.Config) { c.QRSize = 0 })
	e, err := f.m.BeginTOTP(t.Context(), "t", "u", "ada@example.com", "")
	if err != nil {
		t.Fatal(err)
	}
	// 160-bit secret, in the URI and in the returned Secret.
	raw, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(e.Secret)
	if err != nil || len(raw) != 20 {
		t.Errorf("Secret decodes to %d bytes, %v; want 20", len(raw), err)
	}
	k, err := mfa.ParseURI(e.URI)
	if err != nil {
		t.Fatalf("ParseURI(enrolment URI): %v", err)
	}
	if k.Issuer != "Guard Test" || k.Account != "ada@example.com" || !bytes.Equal(k.Secret, raw) ||
		k.Algorithm != "SHA1" || k.Digits != 6 || k.Period != 30 {
		t.Errorf("enrolment URI = %+v", k)
	}
	img, err := png.Decode(bytes.NewReader(e.QRPNG))
	if err != nil {
		t.Fatalf("QR code is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() != 256 || b.Dy() != 256 {
		t.Errorf("QR code is %v, want 256x256", b)
	}
	// Pending, sealed, labelled; the stored secret is not the secret.
	if e.Factor.Confirmed() || e.Factor.Kind != mfa.KindTOTP || e.Factor.Label != "Authenticator app" || e.Factor.Secret != nil {
		t.Errorf("enrolment factor = %+v", e.Factor)
	}
	stored, err := f.st.Factor(t.Context(), "t", "u", e.Factor.ID)
	if err != nil {
		t.Fatal(err)
	}
	if stored.KeyID != "k1" || len(stored.Secret) == 0 || bytes.Contains(stored.Secret, raw) ||
		bytes.Contains(stored.Secret, []byte(e.Secret)) {
		t.Errorf("stored secret is not sealed: key %q, %x", stored.KeyID, stored.Secret)
	}
	// A pending factor does not sign in.
	_, err = f.m.VerifyTOTP(t.Context(), "t", "u", e.Factor.ID, codeAt(t, e.Secret, f.clk.Now()))
	wantErr(t, "VerifyTOTP with a pending factor", err, mfa.ErrNotFound)
	_, err = f.m.VerifyTOTP(t.Context(), "t", "u", "", codeAt(t, e.Secret, f.clk.Now()))
	wantErr(t, "VerifyTOTP without a confirmed factor", err, mfa.ErrNotFound)
}

func TestBeginTOTPInput(t *testing.T) {
	f := newFixture(t)
	for _, tc := range []struct{ name, tenant, user, account, label string }{
		{"NoTenant", "", "u", "a", ""},
		{"NoUser", "t", "", "a", ""},
		{"NoAccount", "t", "u", "", ""},
		{"ColonInAccount", "t", "u", "a:b", ""},
		{"ControlInAccount", "t", "u", "a\nb", ""},
		{"LongLabel", "t", "u", "a", strings.Repeat("x", 101)},
		{"ControlInLabel", "t", "u", "a", "x\x00"},
		{"LongUser", "t", strings.Repeat("u", 129), "a", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.m.BeginTOTP(t.Context(), tc.tenant, tc.user, tc.account, tc.label)
			wantInputError(t, "BeginTOTP", err)
		})
	}
	if fs, _ := f.st.Factors(t.Context(), "t", "u"); len(fs) != 0 {
		t.Errorf("bad input stored %d factors", len(fs))
	}
}

func TestConfirmTOTP(t *testing.T) {
	ctx := t.Context()
	t.Run("WrongCodeKeepsItPending", func(t *testing.T) {
		f := newFixture(t)
		e, _ := f.m.BeginTOTP(ctx, "t", "u", "a", "")
		right := codeAt(t, e.Secret, f.clk.Now())
		wrong := fmt.Sprintf("%06d", (atoi(right)+1)%1_000_000)
		_, err := f.m.ConfirmTOTP(ctx, "t", "u", e.Factor.ID, wrong)
		wantErr(t, "ConfirmTOTP(wrong)", err, mfa.ErrInvalidCode)
		got, _ := f.st.Factor(ctx, "t", "u", e.Factor.ID)
		if got.Confirmed() {
			t.Error("a wrong code confirmed the factor")
		}
		fac, err := f.m.ConfirmTOTP(ctx, "t", "u", e.Factor.ID, right)
		if err != nil || !fac.Confirmed() || fac.LastStep != f.clk.Now().Unix()/30 {
			t.Errorf("ConfirmTOTP = %+v, %v", fac, err)
		}
		// The confirmation code cannot then sign in.
		_, err = f.m.VerifyTOTP(ctx, "t", "u", e.Factor.ID, right)
		wantErr(t, "VerifyTOTP with the confirmation code", err, mfa.ErrReplay)
		_, err = f.m.ConfirmTOTP(ctx, "t", "u", e.Factor.ID, right)
		wantErr(t, "second ConfirmTOTP", err, mfa.ErrConflict)
	})
	t.Run("Expired", func(t *testing.T) {
		f := newFixture(t)
		e, _ := f.m.BeginTOTP(ctx, "t", "u", "a", "")
		f.clk.Add(mfa.DefaultEnrolTTL)
		_, err := f.m.ConfirmTOTP(ctx, "t", "u", e.Factor.ID, codeAt(t, e.Secret, f.clk.Now()))
		wantErr(t, "ConfirmTOTP after EnrolTTL", err, mfa.ErrExpired)
		// Refused, not deleted (a confirmation landing meanwhile would go
		// with it): it stays pending, never to be confirmed, until a new
		// enrolment voids it.
		if got, err := f.st.Factor(ctx, "t", "u", e.Factor.ID); err != nil || got.Confirmed() {
			t.Errorf("expired pending factor = %+v, %v; want it kept pending", got, err)
		}
		_, err = f.m.ConfirmTOTP(ctx, "t", "u", e.Factor.ID, codeAt(t, e.Secret, f.clk.Now()))
		wantErr(t, "ConfirmTOTP after EnrolTTL, again", err, mfa.ErrExpired)
		if _, err := f.m.BeginTOTP(ctx, "t", "u", "a", ""); err != nil {
			t.Fatal(err)
		}
		if _, err := f.st.Factor(ctx, "t", "u", e.Factor.ID); !errors.Is(err, mfa.ErrNotFound) {
			t.Errorf("expired pending factor after a new enrolment: %v, want ErrNotFound (voided)", err)
		}
	})
	t.Run("NewEnrolmentVoidsPending", func(t *testing.T) {
		f := newFixture(t)
		e1, _ := f.m.BeginTOTP(ctx, "t", "u", "a", "")
		e2, _ := f.m.BeginTOTP(ctx, "t", "u", "a", "")
		_, err := f.m.ConfirmTOTP(ctx, "t", "u", e1.Factor.ID, codeAt(t, e1.Secret, f.clk.Now()))
		wantErr(t, "ConfirmTOTP of a voided enrolment", err, mfa.ErrNotFound)
		if _, err := f.m.ConfirmTOTP(ctx, "t", "u", e2.Factor.ID, codeAt(t, e2.Secret, f.clk.Now())); err != nil {
			t.Errorf("ConfirmTOTP of the newer enrolment: %v", err)
		}
	})
}

func atoi(s string) int {
	n := 0
	for _, c := range s {
		n = n*10 + int(c-'0')
	}
	return n
}

// SECURITY-CHECKLIST MF-1.
func TestVerifyTOTPReuse(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	fac, secret := f.enrolTOTP(t, "u")
	c := codeAt(t, secret, f.clk.Now())
	got, err := f.m.VerifyTOTP(ctx, "t", "u", fac.ID, c)
	if err != nil {
		t.Fatalf("VerifyTOTP: %v", err)
	}
	if got.ID != fac.ID || got.Secret != nil || got.LastStep != f.clk.Now().Unix()/30 {
		t.Errorf("VerifyTOTP returned %+v", got)
	}
	// The same code again, in the same step and in the next one (where
	// it is still within the skew): refused as a replay.
	_, err = f.m.VerifyTOTP(ctx, "t", "u", fac.ID, c)
	wantErr(t, "VerifyTOTP reused", err, mfa.ErrReplay)
	f.clk.Add(30 * time.Second)
	_, err = f.m.VerifyTOTP(ctx, "t", "u", "", c)
	wantErr(t, "VerifyTOTP reused a step later", err, mfa.ErrReplay)
	// The next step's code works.
	if _, err := f.m.VerifyTOTP(ctx, "t", "u", "", codeAt(t, secret, f.clk.Now())); err != nil {
		t.Errorf("VerifyTOTP of the next step: %v", err)
	}
}

func TestVerifyTOTPEarlierStep(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	fac, secret := f.enrolTOTP(t, "u")
	now := f.clk.Now()
	// The code of T+1 (a fast phone) is accepted; then the code of T,
	// though within the skew and never used, is refused: it is earlier.
	if _, err := f.m.VerifyTOTP(ctx, "t", "u", fac.ID, codeAt(t, secret, now.Add(30*time.Second))); err != nil {
		t.Fatalf("VerifyTOTP(T+1): %v", err)
	}
	_, err := f.m.VerifyTOTP(ctx, "t", "u", fac.ID, codeAt(t, secret, now))
	wantErr(t, "VerifyTOTP(T) after T+1", err, mfa.ErrReplay)
	_, err = f.m.VerifyTOTP(ctx, "t", "u", fac.ID, codeAt(t, secret, now.Add(-30*time.Second)))
	wantErr(t, "VerifyTOTP(T-1) after T+1", err, mfa.ErrReplay)
}

// SECURITY-CHECKLIST MF-4.
func TestVerifyTOTPWindow(t *testing.T) {
	for _, tc := range []struct {
		name   string
		skew   int
		accept []int // steps relative to now
		refuse []int
	}{
		{"DefaultSkew", 0, []int{-1, 0, 1}, []int{-2, 2, -3, 3, -10}},
		{"SkewNone", mfa.SkewNone, []int{0}, []int{-1, 1, -2, 2}},
		{"Skew2", 2, []int{-2, -1, 0, 1, 2}, []int{-3, 3}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, d := range tc.accept {
				f := newFixture(t, func(c *mfa.Config) { c.Skew = tc.skew })
				fac, secret := f.enrolTOTP(t, "u")
				f.clk.Add(10 * time.Minute) // far from the confirmation step
				c := codeAt(t, secret, f.clk.Now().Add(time.Duration(d)*30*time.Second))
				if _, err := f.m.VerifyTOTP(t.Context(), "t", "u", fac.ID, c); err != nil {
					t.Errorf("code of step T%+d: %v, want accepted", d, err)
				}
			}
			f := newFixture(t, func(c *mfa.Config) { c.Skew = tc.skew })
			fac, secret := f.enrolTOTP(t, "u")
			f.clk.Add(10 * time.Minute)
			for _, d := range tc.refuse {
				c := codeAt(t, secret, f.clk.Now().Add(time.Duration(d)*30*time.Second))
				if c == codeAt(t, secret, f.clk.Now()) {
					continue // a collision of 6-digit codes (1 in 10^6)
				}
				_, err := f.m.VerifyTOTP(t.Context(), "t", "u", fac.ID, c)
				wantErr(t, fmt.Sprintf("code of step T%+d", d), err, mfa.ErrInvalidCode)
			}
		})
	}
}

// SECURITY-CHECKLIST MF-7.
func TestVerifyTOTPStepBoundary(t *testing.T) {
	// With SkewNone the code of a step works from its first second to its
	// last and not a second beyond: the server's clock decides.
	f := newFixture(t, func(c *mfa.Config) { c.Skew = mfa.SkewNone })
	fac, secret := f.enrolTOTP(t, "u")
	start := time.Unix((f.clk.Now().Unix()/30+20)*30, 0).UTC()
	c := codeAt(t, secret, start)
	f.clk.Set(start.Add(30 * time.Second))
	_, err := f.m.VerifyTOTP(t.Context(), "t", "u", fac.ID, c)
	wantErr(t, "code just after its step", err, mfa.ErrInvalidCode)
	f.clk.Set(start.Add(29*time.Second + 999*time.Millisecond))
	if _, err := f.m.VerifyTOTP(t.Context(), "t", "u", fac.ID, c); err != nil {
		t.Errorf("code in the last instant of its step: %v", err)
	}
}

func TestVerifyTOTPConcurrentSameCode(t *testing.T) {
	f := newFixture(t)
	fac, secret := f.enrolTOTP(t, "u")
	for round := range 5 {
		c := codeAt(t, secret, f.clk.Now())
		const n = 50
		var mu sync.Mutex
		var ok, replay int
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range n {
			wg.Go(func() {
				<-start
				_, err := f.m.VerifyTOTP(t.Context(), "t", "u", fac.ID, c)
				mu.Lock()
				defer mu.Unlock()
				switch {
				case err == nil:
					ok++
				case errors.Is(err, mfa.ErrReplay):
					replay++
				default:
					t.Errorf("VerifyTOTP: %v", err)
				}
			})
		}
		close(start)
		wg.Wait()
		if ok != 1 || replay != n-1 {
			t.Errorf("round %d: %d successes and %d replays, want 1 and %d", round, ok, replay, n-1)
		}
		f.clk.Add(30 * time.Second)
	}
}

func TestVerifyTOTPSeveralApps(t *testing.T) {
	f := newFixture(t)
	ctx := t.Context()
	a, sa := f.enrolTOTP(t, "u")
	b, sb := f.enrolTOTP(t, "u")
	got, err := f.m.VerifyTOTP(ctx, "t", "u", "", codeAt(t, sb, f.clk.Now()))
	if err != nil || got.ID != b.ID {
		t.Errorf("VerifyTOTP with app b = %s, %v; want factor b", got.ID, err)
	}
	got, err = f.m.VerifyTOTP(ctx, "t", "u", "", codeAt(t, sa, f.clk.Now()))
	if err != nil || got.ID != a.ID {
		t.Errorf("VerifyTOTP with app a = %s, %v; want factor a", got.ID, err)
	}
	// Naming a factor checks only that one.
	f.clk.Add(30 * time.Second)
	_, err = f.m.VerifyTOTP(ctx, "t", "u", a.ID, codeAt(t, sb, f.clk.Now()))
	wantErr(t, "b's code against factor a", err, mfa.ErrInvalidCode)
	// Another user's factor is not found.
	_, err = f.m.VerifyTOTP(ctx, "t", "v", a.ID, codeAt(t, sa, f.clk.Now()))
	wantErr(t, "a's factor through another user", err, mfa.ErrNotFound)
}

// SECURITY-CHECKLIST MF-9.
func TestVerifyTOTPBadInput(t *testing.T) {
	f := newFixture(t)
	fac, secret := f.enrolTOTP(t, "u")
	right := codeAt(t, secret, f.clk.Now())
	for _, tc := range []struct{ name, code string }{
		{"Empty", ""},
		{"FiveDigits", right[:5]},
		{"SevenDigits", right + "0"},
		{"Letters", "12a456"},
		{"InnerSpace", right[:3] + " " + right[3:]},
		{"Sign", "+" + right[1:]},
		{"ArabicIndic", "١٢٣٤٥٦"},
		{"FullWidth", "１２３４５６"},
		{"Superscript", "¹²³⁴⁵⁶"},
		{"NUL", right[:5] + "\x00"},
		{"10KB", strings.Repeat("1", 10<<10)},
		{"10KBSpaces", right + strings.Repeat(" ", 10<<10)},
		{"InvalidUTF8", "\xff\xfe" + right[:4]},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := f.m.VerifyTOTP(t.Context(), "t", "u", fac.ID, tc.code)
			wantInputError(t, "VerifyTOTP", err)
		})
	}
	// Nothing changed: the right code still works, with surrounding
	// spaces trimmed.
	if _, err := f.m.VerifyTOTP(t.Context(), "t", "u", fac.ID, " \t"+right+"\r\n"); err != nil {
		t.Errorf("VerifyTOTP after bad input: %v", err)
	}
	for _, id := range []string{"", strings.Repeat("x", 65), "a b", "\u00e9"} {
		_, err := f.m.ConfirmTOTP(t.Context(), "t", "u", id, right)
		wantInputError(t, fmt.Sprintf("ConfirmTOTP(factor %q)", id), err)
	}
}

func TestTamperedSecret(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t)
	fac, secret := f.enrolTOTP(t, "u")
	stored, _ := f.st.Factor(ctx, "t", "u", fac.ID)
	for i := range stored.Secret {
		bad := bytes.Clone(stored.Secret)
		bad[i] ^= 0x01
		if err := f.st.ResealSecret(ctx, "t", "u", fac.ID, stored.Secret, stored.KeyID, bad); err != nil {
			t.Fatal(err)
		}
		_, err := f.m.VerifyTOTP(ctx, "t", "u", fac.ID, codeAt(t, secret, f.clk.Now()))
		if !errors.Is(err, mfa.ErrUnseal) {
			t.Fatalf("VerifyTOTP with byte %d flipped = %v, want ErrUnseal", i, err)
		}
		if err := f.st.ResealSecret(ctx, "t", "u", fac.ID, bad, stored.KeyID, stored.Secret); err != nil {
			t.Fatal(err)
		}
	}
	// Truncated, empty and unknown key.
	for _, bad := range [][]byte{stored.Secret[:len(stored.Secret)-1], stored.Secret[:5], nil} {
		_ = f.st.ResealSecret(ctx, "t", "u", fac.ID, stored.Secret, stored.KeyID, bad)
		_, err := f.m.VerifyTOTP(ctx, "t", "u", fac.ID, codeAt(t, secret, f.clk.Now()))
		wantErr(t, "VerifyTOTP with a cut secret", err, mfa.ErrUnseal)
		_ = f.st.ResealSecret(ctx, "t", "u", fac.ID, bad, stored.KeyID, stored.Secret)
	}
	_ = f.st.ResealSecret(ctx, "t", "u", fac.ID, stored.Secret, "k9", stored.Secret)
	_, err := f.m.VerifyTOTP(ctx, "t", "u", fac.ID, codeAt(t, secret, f.clk.Now()))
	wantErr(t, "VerifyTOTP with an unknown key id", err, mfa.ErrUnknownKey)
	// No step was spent by the failures: restored, the code works.
	_ = f.st.ResealSecret(ctx, "t", "u", fac.ID, stored.Secret, "k1", stored.Secret)
	if _, err := f.m.VerifyTOTP(ctx, "t", "u", fac.ID, codeAt(t, secret, f.clk.Now())); err != nil {
		t.Errorf("VerifyTOTP after restoring: %v", err)
	}
}

func TestSecretBoundToFactor(t *testing.T) {
	// A ciphertext copied to another user's (or tenant's, or factor's)
	// record does not open there: the AAD binds tenant, user and factor.
	ctx := t.Context()
	f := newFixture(t)
	a, secretA := f.enrolTOTP(t, "alice")
	m, _ := f.enrolTOTP(t, "mallory")
	storedA, _ := f.st.Factor(ctx, "t", "alice", a.ID)
	storedM, _ := f.st.Factor(ctx, "t", "mallory", m.ID)
	if err := f.st.ResealSecret(ctx, "t", "mallory", m.ID, storedM.Secret, storedA.KeyID, storedA.Secret); err != nil {
		t.Fatal(err)
	}
	_, err := f.m.VerifyTOTP(ctx, "t", "mallory", m.ID, codeAt(t, secretA, f.clk.Now()))
	wantErr(t, "alice's sealed secret under mallory", err, mfa.ErrUnseal)

	// Same user and ID in another tenant.
	other := storedA
	other.Tenant = "t2"
	if err := f.st.CreateFactor(ctx, other, 0); err != nil {
		t.Fatal(err)
	}
	_, err = f.m.VerifyTOTP(ctx, "t2", "alice", a.ID, codeAt(t, secretA, f.clk.Now()))
	wantErr(t, "alice's sealed secret in another tenant", err, mfa.ErrUnseal)
}

func TestKeyRotation(t *testing.T) {
	ctx := t.Context()
	st := memstore.NewMFA()
	clk := &clock{now: t0}
	newManager := func(current string, ids ...string) *mfa.Manager {
		m, err := mfa.New(mfa.Config{Stores: st.Stores(), Keyring: newKeyring(t, current, ids...), Issuer: "I", Now: clk.Now})
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	m1 := newManager("k1", "k1")
	e, _ := m1.BeginTOTP(ctx, "t", "u", "a", "")
	if _, err := m1.ConfirmTOTP(ctx, "t", "u", e.Factor.ID, codeAt(t, e.Secret, clk.Now())); err != nil {
		t.Fatal(err)
	}
	sealed1, _ := st.Factor(ctx, "t", "u", e.Factor.ID)
	if sealed1.KeyID != "k1" {
		t.Fatalf("sealed with %q, want k1", sealed1.KeyID)
	}
	// k2 becomes current; k1 still opens what it sealed.
	m2 := newManager("k2", "k1", "k2")
	clk.Add(30 * time.Second)
	if _, err := m2.VerifyTOTP(ctx, "t", "u", "", codeAt(t, e.Secret, clk.Now())); err != nil {
		t.Fatalf("VerifyTOTP with the old key still present: %v", err)
	}
	// Reseal gives k2's id, a new ciphertext, and the code still works.
	n, err := m2.Reseal(ctx, "t", "u")
	if err != nil || n != 1 {
		t.Fatalf("Reseal = %d, %v; want 1", n, err)
	}
	sealed2, _ := st.Factor(ctx, "t", "u", e.Factor.ID)
	if sealed2.KeyID != "k2" || bytes.Equal(sealed2.Secret, sealed1.Secret) || sealed2.LastStep != sealed1.LastStep+1 {
		t.Errorf("after Reseal: key %q, LastStep %d (was %d)", sealed2.KeyID, sealed2.LastStep, sealed1.LastStep)
	}
	if n, err := m2.Reseal(ctx, "t", "u"); err != nil || n != 0 {
		t.Errorf("second Reseal = %d, %v; want 0", n, err)
	}
	// Now k1 can go.
	m3 := newManager("k2", "k2")
	clk.Add(30 * time.Second)
	if _, err := m3.VerifyTOTP(ctx, "t", "u", "", codeAt(t, e.Secret, clk.Now())); err != nil {
		t.Errorf("VerifyTOTP after dropping k1: %v", err)
	}
	// Without k1, a secret still sealed by k1 is ErrUnknownKey.
	if err := st.ResealSecret(ctx, "t", "u", e.Factor.ID, sealed2.Secret, sealed1.KeyID, sealed1.Secret); err != nil {
		t.Fatal(err)
	}
	clk.Add(30 * time.Second)
	_, err = m3.VerifyTOTP(ctx, "t", "u", "", codeAt(t, e.Secret, clk.Now()))
	wantErr(t, "VerifyTOTP of a k1 secret without k1", err, mfa.ErrUnknownKey)
}

// TestHOTPMatchesPquerna checks our constant-time code computation against
// pquerna/otp for random secrets and counters, and against RFC 6238's
// SHA-1 test vectors.
func TestHOTPMatchesPquerna(t *testing.T) {
	// RFC 6238 appendix B, SHA-1, 8 digits; the last 6 digits are the
	// 6-digit code.
	secret := base32.StdEncoding.EncodeToString([]byte("12345678901234567890"))
	for _, v := range []struct {
		unix int64
		code string
	}{{59, "94287082"}, {1111111109, "07081804"}, {1111111111, "14050471"}, {1234567890, "89005924"}, {2000000000, "69279037"}, {20000000000, "65353130"}} {
		f := newFixture(t, func(c *mfa.Config) { c.Skew = mfa.SkewNone })
		id := importSecret(t, f, []byte("12345678901234567890"))
		f.clk.Set(time.Unix(v.unix, 0))
		if _, err := f.m.VerifyTOTP(t.Context(), "t", "u", id, v.code[2:]); err != nil {
			t.Errorf("RFC 6238 vector T=%d: %v", v.unix, err)
		}
		if c, _ := totp.GenerateCodeCustom(secret, time.Unix(v.unix, 0), totp.ValidateOpts{Digits: otp.DigitsEight}); c != v.code {
			t.Errorf("pquerna at T=%d gives %s, want %s", v.unix, c, v.code)
		}
	}
	// Random secrets: the code pquerna's hotp computes for a step is the
	// one VerifyTOTP accepts at that step.
	for range 50 {
		raw := make([]byte, 20)
		rand.Read(raw)
		f := newFixture(t, func(c *mfa.Config) { c.Skew = mfa.SkewNone })
		id := importSecret(t, f, raw)
		step := int64(50_000_000 + mrand(1_000_000))
		f.clk.Set(time.Unix(step*30+7, 0))
		c, err := hotp.GenerateCode(base32.StdEncoding.EncodeToString(raw), uint64(step))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.m.VerifyTOTP(t.Context(), "t", "u", id, c); err != nil {
			t.Errorf("pquerna's code for step %d refused: %v", step, err)
		}
	}
}

func mrand(n int) int {
	var b [4]byte
	rand.Read(b[:])
	return int(uint32(b[0])<<24|uint32(b[1])<<16|uint32(b[2])<<8|uint32(b[3])) % n
}

// importSecret stores a confirmed TOTP factor with a known raw secret,
// sealed as the Manager seals, directly in the store.
func importSecret(t *testing.T, f *fixture, raw []byte) string {
	t.Helper()
	const id = "imported"
	keyID, sealed, err := f.keys.Seal(raw, mfa.SecretAAD("t", "u", id))
	if err != nil {
		t.Fatal(err)
	}
	fac := mfa.Factor{ID: id, Tenant: "t", UserID: "u", Kind: mfa.KindTOTP, KeyID: keyID, Secret: sealed,
		CreatedAt: t0, ConfirmedAt: t0}
	if err := f.st.CreateFactor(t.Context(), fac, 0); err != nil {
		t.Fatal(err)
	}
	return id
}
