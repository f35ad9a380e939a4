package mfa_test

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/guardhq/guard/mfa"
)

func TestParseCode(t *testing.T) {
	for _, tc := range []struct {
		name, in string
		digits   int
		want     string // "" means refused
	}{
		{"Six", "123456", 6, "123456"},
		{"LeadingZeros", "000001", 6, "000001"},
		{"Trimmed", " \t123456\r\n", 6, "123456"},
		{"Eight", "12345678", 8, "12345678"},
		{"Nine", "123456789", 9, "123456789"},
		{"Empty", "", 6, ""},
		{"Spaces", "      ", 6, ""},
		{"Five", "12345", 6, ""},
		{"Seven", "1234567", 6, ""},
		{"InnerSpace", "123 456", 6, ""},
		{"Dash", "123-456", 6, ""},
		{"Letter", "12345a", 6, ""},
		{"Plus", "+12345", 6, ""},
		{"Minus", "-12345", 6, ""},
		{"ArabicIndic", "١٢٣٤٥٦", 6, ""},
		{"ExtendedArabicIndic", "۱۲۳۴۵۶", 6, ""},
		{"Devanagari", "१२३४५६", 6, ""},
		{"FullWidth", "１２３４５６", 6, ""},
		{"NBSPTrim", "\u00a0123456", 6, ""},
		{"NUL", "12345\x00", 6, ""},
		{"InvalidUTF8", "12345\xff", 6, ""},
		{"10KB", strings.Repeat("1", 10<<10), 6, ""},
		{"Exactly64Spaces", strings.Repeat(" ", 29) + "123456" + strings.Repeat(" ", 29), 6, "123456"},
		{"65Bytes", strings.Repeat(" ", 30) + "123456" + strings.Repeat(" ", 29), 6, ""},
		{"DigitsTooFew", "12345", 5, ""},
		{"DigitsTooMany", "1234567890", 10, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := mfa.ParseCode(tc.in, tc.digits)
			if tc.want != "" {
				if err != nil || got != tc.want {
					t.Errorf("ParseCode = %q, %v; want %q", got, err, tc.want)
				}
				return
			}
			var ie *mfa.InputError
			if !errors.As(err, &ie) || got != "" {
				t.Fatalf("ParseCode = %q, %v; want an *InputError", got, err)
			}
			if ie.Field != "code" || (len(tc.in) > 3 && strings.Contains(err.Error(), tc.in)) {
				t.Errorf("error %q: wrong field or echoes the input", err)
			}
		})
	}
}

// FuzzParseCode: no panic; a refusal is an *InputError, and an accepted
// code is the input trimmed, of the asked number of ASCII digits.
// SECURITY-CHECKLIST RL-6 (the OTP input parser; the 10 minutes are the
// README's nightly GUARD_FUZZTIME=10m .ci/run).
func FuzzParseCode(f *testing.F) {
	for _, s := range []string{"123456", " 123456 ", "12345", "1234567", "١٢٣٤٥٦", "１２３４５６", "12a456", "", "\x00\x00\x00\x00\x00\x00", strings.Repeat("9", 100)} {
		f.Add(s, 6)
	}
	f.Add("12345678", 8)
	f.Fuzz(func(t *testing.T, s string, digits int) {
		got, err := mfa.ParseCode(s, digits)
		if err != nil {
			var ie *mfa.InputError
			if !errors.As(err, &ie) || got != "" {
				t.Fatalf("ParseCode(%q, %d) = %q, %v; want an *InputError and nothing", s, digits, got, err)
			}
			return
		}
		if len(got) != digits || digits < 6 || digits > 9 || len(s) > mfa.MaxInputBytes {
			t.Fatalf("ParseCode(%q, %d) accepted %q", s, digits, got)
		}
		for i := 0; i < len(got); i++ {
			if got[i] < '0' || got[i] > '9' {
				t.Fatalf("ParseCode(%q) accepted a non-ASCII digit: %q", s, got)
			}
		}
		if !strings.Contains(s, got) || strings.Trim(s, " \t\r\n") != got || !utf8.ValidString(got) {
			t.Fatalf("ParseCode(%q) = %q is not the input trimmed", s, got)
		}
	})
}
