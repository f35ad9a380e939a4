package mfa

import (
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

func wantInputError(t *testing.T, what, in string, err error) {
	t.Helper()
	var ie *InputError
	if !errors.As(err, &ie) || ie.Field == "" || ie.Reason == "" {
		t.Fatalf("%s(%q) = %#v: not an *InputError", what, in, err)
	}
}

// FuzzParseTransactionToken: a pending sign-in (transaction) token is
// accepted only as the canonical base64url of 32 bytes; anything else is an
// *InputError.
func FuzzParseTransactionToken(f *testing.F) {
	for _, s := range []string{"", strings.Repeat("A", 43), strings.Repeat("A", 42) + "B", strings.Repeat("_", 43),
		strings.Repeat("A", 42) + "=", strings.Repeat("A", 44), strings.Repeat("+", 43), strings.Repeat("A", 42) + "\n"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		h, err := parseTransactionToken(s)
		if err != nil {
			wantInputError(t, "parseTransactionToken", s, err)
			if h != (Hash{}) {
				t.Fatal("non-zero hash with an error")
			}
			return
		}
		raw, derr := base64.RawURLEncoding.Strict().DecodeString(s)
		if derr != nil || len(raw) != 32 || base64.RawURLEncoding.EncodeToString(raw) != s {
			t.Fatalf("parseTransactionToken accepted non-canonical %q", s)
		}
		if h != transactionHash(raw) {
			t.Fatal("hash mismatch")
		}
	})
}

// FuzzCheckDestination: an email address or phone number for an
// out-of-band factor is refused with an *InputError, or is stored exactly
// as given: an SMS destination is E.164 ("+" and 7 to 15 digits, no
// leading 0), an email one a bare address of at most 254 bytes without
// white space, control or format characters (bidirectional overrides and
// isolates, line and paragraph separators among them), as
// auth.CanonicalEmail requires. The default label built from it passes
// checkLabel unchanged.
func FuzzCheckDestination(f *testing.F) {
	for _, s := range []string{"", "+14155550123", "+0123456789", "+1234567", "+1234567890123456", "14155550123",
		"+1 415 555", "ada@example.com", "Ada <ada@example.com>", "ada@example.com\r\nBcc: x@y", "\"a b\"@example.com",
		"ada@[127.0.0.1]", "ü@example.com", "a@b", "(c)ada@example.com", "ada@example.com\x00",
		"ada@ex\u202eelpmaxe.com", "\u202eada@example.com", "ada@ex\u2028ample.com", "ada@ex\u0085ample.com",
		"ada@ex\u2067ample.com", "ada@ex\u200bample.com", "ada@ex\u00a0ample.com", "ada@ex\xffample.com"} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, d string, sms bool) {
		kind := KindEmail
		if sms {
			kind = KindSMS
		}
		got, err := checkDestination(kind, d)
		if err != nil {
			wantInputError(t, "checkDestination", d, err)
			if got != "" {
				t.Fatal("destination returned with an error")
			}
			return
		}
		if got != d {
			t.Fatalf("checkDestination(%q) = %q", d, got)
		}
		if sms {
			if len(d) < 8 || len(d) > 16 || d[0] != '+' || d[1] == '0' || strings.Trim(d[1:], "0123456789") != "" {
				t.Fatalf("accepted SMS destination %q", d)
			}
		} else if len(d) > 254 || !utf8.ValidString(d) || !strings.Contains(d, "@") || strings.ContainsFunc(d, func(r rune) bool {
			return unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.In(r, unicode.Zl, unicode.Zp)
		}) {
			t.Fatalf("accepted email destination %q", d)
		}
		def := defaultLabel(kind, d)
		if l, err := checkLabel("", def); err != nil || l != def {
			t.Fatalf("defaultLabel(%q) = %q: checkLabel gives %q, %v", d, def, l, err)
		}
	})
}

// FuzzCheckIDs: tenant/user IDs, factor IDs, transaction names and labels
// (all from requests) are refused with an *InputError or meet their rules.
func FuzzCheckIDs(f *testing.F) {
	for _, s := range []string{"", "acme", "u_1", "a b", "a\x00", "a\u0085", "\xff", "é", strings.Repeat("x", 129),
		"  padded  ", "\u202e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if err := checkUser(s, "u1"); err != nil {
			wantInputError(t, "checkUser", s, err)
		} else if s == "" || len(s) > MaxIDLen || !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl) {
			t.Fatalf("checkUser accepted tenant %q", s)
		}
		if err := checkFactorID(s); err != nil {
			wantInputError(t, "checkFactorID", s, err)
		} else if s == "" || len(s) > 64 || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r > '~' }) {
			t.Fatalf("checkFactorID accepted %q", s)
		}
		if err := checkTxn(s); err != nil {
			wantInputError(t, "checkTxn", s, err)
		} else if s == "" || len(s) > 128 || strings.ContainsFunc(s, func(r rune) bool { return r <= ' ' || r > '~' }) {
			t.Fatalf("checkTxn accepted %q", s)
		}
		l, err := checkLabel(s, "default")
		if err != nil {
			wantInputError(t, "checkLabel", s, err)
			return
		}
		if l == "" || len(l) > MaxLabelLen || !utf8.ValidString(l) || strings.ContainsFunc(l, func(r rune) bool {
			return unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp) || '\u202a' <= r && r <= '\u202e' || '\u2066' <= r && r <= '\u2069'
		}) {
			t.Fatalf("checkLabel(%q) = %q", s, l)
		}
		if l2, err := checkLabel(l, "default"); err != nil || l2 != l {
			t.Fatalf("checkLabel not idempotent on %q: %q, %v", l, l2, err)
		}
	})
}
