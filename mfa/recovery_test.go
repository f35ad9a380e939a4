package mfa_test

import (
	"crypto/rand"
	"errors"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guardhq/guard/mfa"
)

var recoveryFormat = regexp.MustCompile(`^[0-9a-hjkmnp-tv-z]{4}(-[0-9a-hjkmnp-tv-z]{4}){5}$`)

// SECURITY-CHECKLIST MF-17.
func TestRecoveryCodes(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t)
	codes, err := f.m.GenerateRecoveryCodes(ctx, "t", "u")
	if err != nil {
		t.Fatal(err)
	}
	if len(codes) != 10 {
		t.Fatalf("%d codes, want 10", len(codes))
	}
	seen := map[string]bool{}
	for _, c := range codes {
		if !recoveryFormat.MatchString(c) {
			t.Errorf("code %q is not six groups of four Crockford base32 characters", c)
		}
		if seen[c] {
			t.Errorf("code %q twice", c)
		}
		seen[c] = true
	}
	if r, _ := f.m.RecoveryCodesLeft(ctx, "t", "u"); r.Left != 10 || r.Low {
		t.Errorf("RecoveryCodesLeft = %+v", r)
	}
	// Each works once, forgivingly typed; the count goes down and is
	// reported low at 3.
	for i, c := range codes {
		typed := c
		if i%2 == 1 {
			typed = " " + strings.ToUpper(strings.ReplaceAll(c, "-", " ")) + " "
		}
		r, err := f.m.UseRecoveryCode(ctx, "t", "u", typed)
		if err != nil || r.Left != 9-i || r.Low != (9-i <= 3) {
			t.Errorf("use %d = %+v, %v", i, r, err)
		}
		_, err = f.m.UseRecoveryCode(ctx, "t", "u", c)
		wantErr(t, "second use", err, mfa.ErrInvalidCode)
	}
}

// SECURITY-CHECKLIST MF-18.
func TestRecoveryCodesRegenerate(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t)
	old, _ := f.m.GenerateRecoveryCodes(ctx, "t", "u")
	nu, _ := f.m.GenerateRecoveryCodes(ctx, "t", "u")
	for _, c := range old {
		_, err := f.m.UseRecoveryCode(ctx, "t", "u", c)
		wantErr(t, "a code of the replaced set", err, mfa.ErrInvalidCode)
	}
	if _, err := f.m.UseRecoveryCode(ctx, "t", "u", nu[0]); err != nil {
		t.Errorf("a code of the new set: %v", err)
	}
	// Another user's code does not work for u.
	other, _ := f.m.GenerateRecoveryCodes(ctx, "t", "v")
	_, err := f.m.UseRecoveryCode(ctx, "t", "u", other[0])
	wantErr(t, "v's code for u", err, mfa.ErrInvalidCode)
}

// SECURITY-CHECKLIST MF-17.
func TestRecoveryCodeConcurrent(t *testing.T) {
	f := newFixture(t)
	codes, _ := f.m.GenerateRecoveryCodes(t.Context(), "t", "u")
	const n = 50
	var mu sync.Mutex
	ok := 0
	var wg sync.WaitGroup
	start := make(chan struct{})
	for range n {
		wg.Go(func() {
			<-start
			_, err := f.m.UseRecoveryCode(t.Context(), "t", "u", codes[3])
			if err == nil {
				mu.Lock()
				ok++
				mu.Unlock()
			} else if !errors.Is(err, mfa.ErrInvalidCode) {
				t.Errorf("UseRecoveryCode: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if ok != 1 {
		t.Errorf("%d of %d concurrent uses succeeded, want 1", ok, n)
	}
}

func TestParseRecoveryCode(t *testing.T) {
	const canon = "0123456789abcdefghjkmnpq"
	for _, tc := range []struct{ in, want string }{
		{"0123-4567-89ab-cdef-ghjk-mnpq", canon},
		{"0123 4567 89AB CDEF GHJK MNPQ", canon},
		{"o123-4567-89ab-cdef-ghjk-mnpq", canon}, // o reads as 0
		{"O1I3-4567-89ab-cdef-ghjk-mnpq", "0113456789abcdefghjkmnpq"},
		{"l123456789abcdefghjkmnpq", "1123456789abcdefghjkmnpq"},
		{"\t0123-4567-89ab-cdef-ghjk-mnpq\n", canon},
		{"0123-4567-89ab-cdef-ghjk-mnp", ""},   // 23
		{"0123-4567-89ab-cdef-ghjk-mnpqr", ""}, // 25
		{"0123-4567-89ab-cdef-ghjk-mnpu", ""},  // u is not base32
		{"0123-4567-89ab-cdef-ghjk-mnp_", ""},  // punctuation
		{"0123-4567-89ab-cdef-ghjk-mnp١", ""},  // Arabic-Indic digit
		{strings.Repeat("0", 10<<10), ""},      // 10 KB
		{strings.Repeat("-", 100) + canon, ""}, // too long even if mostly dashes
		{"", ""},
	} {
		got, err := mfa.ParseRecoveryCode(tc.in)
		if tc.want == "" {
			var ie *mfa.InputError
			if !errors.As(err, &ie) || got != "" {
				t.Errorf("ParseRecoveryCode(%.40q) = %q, %v; want an *InputError", tc.in, got, err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParseRecoveryCode(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
}

func FuzzParseRecoveryCode(f *testing.F) {
	for _, s := range []string{"0123-4567-89ab-cdef-ghjk-mnpq", "O1I3 4567 89AB CDEF GHJK MNPQ", "", "uuuu", "١"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, err := mfa.ParseRecoveryCode(s)
		if err != nil {
			return
		}
		if len(got) != 24 || len(s) > mfa.MaxInputBytes {
			t.Fatalf("ParseRecoveryCode(%q) = %q", s, got)
		}
		if again, err := mfa.ParseRecoveryCode(got); err != nil || again != got {
			t.Fatalf("canonical form %q does not parse to itself: %q, %v", got, again, err)
		}
	})
}

// constReader is a broken Config.Rand: every byte is b.
type constReader byte

func (c constReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(c)
	}
	return len(p), nil
}

// breakable is crypto/rand until broken, then constant bytes.
type breakable struct{ broken atomic.Bool }

func (b *breakable) Read(p []byte) (int, error) {
	if b.broken.Load() {
		return constReader(0x42).Read(p)
	}
	return rand.Read(p)
}

// within runs fn and fails the test if it does not return within a few
// seconds (it would loop forever).
func within(t *testing.T, fn func() error) error {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		return err
	case <-time.After(30 * time.Second): // a liveness bound, not a timing
		t.Fatal("did not return: retries a broken Config.Rand forever")
		return nil
	}
}

// A Config.Rand that returns constant bytes repeats every recovery code:
// GenerateRecoveryCodes gives up with an error, in bounded time, and
// keeps the earlier set; SendCode (through BeginOOB) gives up likewise
// when every draw for a one-time code is out of range (all 0xFF).
func TestBrokenRandGivesUp(t *testing.T) {
	t.Run("RecoveryCodes", func(t *testing.T) {
		r := new(breakable)
		f := newFixture(t, func(c *mfa.Config) { c.Rand = r })
		first, err := f.m.GenerateRecoveryCodes(t.Context(), "t", "u")
		if err != nil {
			t.Fatal(err)
		}
		r.broken.Store(true)
		err = within(t, func() error {
			_, err := f.m.GenerateRecoveryCodes(t.Context(), "t", "u")
			return err
		})
		if err == nil {
			t.Fatal("GenerateRecoveryCodes with a constant Rand: no error")
		}
		if left, err := f.m.RecoveryCodesLeft(t.Context(), "t", "u"); err != nil || left.Left != len(first) {
			t.Errorf("RecoveryCodesLeft after the failure = %d, %v; want the earlier set's %d", left.Left, err, len(first))
		}
	})
	t.Run("OneTimeCode", func(t *testing.T) {
		f := newFixture(t, func(c *mfa.Config) { c.Rand = constReader(0xff) })
		err := within(t, func() error {
			_, _, err := f.m.BeginOOB(t.Context(), mfa.OOBRequest{Tenant: "t", UserID: "u", Kind: mfa.KindEmail, Destination: "ada@example.com"})
			return err
		})
		if err == nil {
			t.Fatal("BeginOOB with a Rand of 0xFF bytes: no error")
		}
		if n := f.email.count(); n != 0 {
			t.Errorf("%d message(s) sent", n)
		}
	})
}

// ReplaceRecoverySet stores its set only in place of the set read (or
// what is left of it once codes were used): a stale read (another set
// stored since) gives ErrConflict and leaves the user's set as it is; of
// replacements of one set at once exactly one is stored, and its codes
// work.
func TestReplaceRecoverySet(t *testing.T) {
	ctx := t.Context()
	f := newFixture(t)
	none, err := f.m.RecoverySet(ctx, "t", "u")
	if err != nil || none.Left() != 0 {
		t.Fatalf("RecoverySet of a user without codes = %d codes, %v", none.Left(), err)
	}
	first, err := f.m.ReplaceRecoverySet(ctx, none)
	if err != nil || len(first) != 10 {
		t.Fatalf("ReplaceRecoverySet of no set = %d codes, %v; want 10", len(first), err)
	}
	if codes, err := f.m.ReplaceRecoverySet(ctx, none); !errors.Is(err, mfa.ErrConflict) || codes != nil {
		t.Errorf("ReplaceRecoverySet of no set once a set is stored = %d codes, %v; want ErrConflict", len(codes), err)
	}
	read, err := f.m.RecoverySet(ctx, "t", "u")
	if err != nil || read.Left() != 10 {
		t.Fatalf("RecoverySet = %d codes, %v; want 10", read.Left(), err)
	}
	if _, err := f.m.UseRecoveryCode(ctx, "t", "u", first[0]); err != nil {
		t.Fatal(err)
	}
	second, err := f.m.ReplaceRecoverySet(ctx, read)
	if err != nil || len(second) != 10 {
		t.Fatalf("ReplaceRecoverySet of the set read, a code used since = %d codes, %v", len(second), err)
	}
	_, err = f.m.UseRecoveryCode(ctx, "t", "u", first[2])
	wantErr(t, "a code of the replaced set", err, mfa.ErrInvalidCode)
	if _, err := f.m.ReplaceRecoverySet(ctx, read); !errors.Is(err, mfa.ErrConflict) {
		t.Errorf("ReplaceRecoverySet of a set read before another was stored = %v, want ErrConflict", err)
	}
	if r, err := f.m.UseRecoveryCode(ctx, "t", "u", second[1]); err != nil || r.Left != 9 {
		t.Errorf("a code of the set kept = %+v, %v", r, err)
	}

	read, err = f.m.RecoverySet(ctx, "t", "u")
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var won [][]string
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes, err := f.m.ReplaceRecoverySet(ctx, read)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				won = append(won, codes)
			case !errors.Is(err, mfa.ErrConflict):
				t.Errorf("ReplaceRecoverySet: %v", err)
			}
		}()
	}
	wg.Wait()
	if len(won) != 1 {
		t.Fatalf("%d of 8 replacements of one set at once stored, want 1", len(won))
	}
	for _, c := range won[0] {
		if _, err := f.m.UseRecoveryCode(ctx, "t", "u", c); err != nil {
			t.Errorf("a code of the replacement stored: %v", err)
		}
	}
	var ie *mfa.InputError
	if _, err := f.m.ReplaceRecoverySet(ctx, mfa.RecoverySet{}); !errors.As(err, &ie) {
		t.Errorf("ReplaceRecoverySet of the zero RecoverySet = %v, want an *InputError", err)
	}
}
