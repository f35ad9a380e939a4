package auth

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"
)

func TestCanonicalEmail(t *testing.T) {
	long254 := "a@" + strings.Repeat("b", 252)
	tests := []struct {
		name   string
		in     string
		want   string // "" means refused
		reason string // InputError.Reason when refused
	}{
		{"Plain", "ada@example.test", "ada@example.test", ""},
		{"Upper", "Ada.Lovelace@Example.TEST", "ada.lovelace@example.test", ""},
		{"Trimmed", "  ada@example.test\t\n", "ada@example.test", ""},
		{"TrimmedNBSPAndNEL", "\u00a0ada@example.test\u0085", "ada@example.test", ""},
		{"Plus", "Ada+Tag@example.test", "ada+tag@example.test", ""},
		{"NonASCIIFolded", "ÄDA@BÜRO.TEST", "äda@büro.test", ""},
		{"DecomposedComposed", "jose\u0301@corp.example", "jos\u00e9@corp.example", ""},
		{"DecomposedUpperComposed", "JOSE\u0301@B\u0055\u0308RO.TEST", "jos\u00e9@b\u00fcro.test", ""},
		{"ComposedKept", "jos\u00e9@corp.example", "jos\u00e9@corp.example", ""},
		{"KelvinSignRefused", "\u212a@x.test", "", foldsIntoASCII},
		{"DottedCapitalIRefused", "\u0130an@x.test", "", foldsIntoASCII},
		{"DecomposedDottedCapitalIRefused", "I\u0307an@x.test", "", foldsIntoASCII},
		{"DottedCapitalIInDomainRefused", "eve@\u0130nfo.test", "", foldsIntoASCII},
		{"AngstromSignComposed", "\u212b@x.test", "\u00e5@x.test", ""},
		{"DomainLiteral", "ada@[192.0.2.1]", "ada@[192.0.2.1]", ""},
		{"Exactly254", long254, long254, ""},
		{"Exactly254AfterTrim", "  " + strings.ToUpper(long254) + " ", long254, ""},

		{"Empty", "", "", "empty"},
		{"OnlySpaces", " \t\n ", "", "empty"},
		{"Over254", long254 + "b", "", "too long"},
		{"InvalidUTF8", "ada\xff@example.test", "", "not valid UTF-8"},
		{"InvalidUTF8Trailing", "ada@example.test\xc3", "", "not valid UTF-8"},
		{"DisplayName", "Ada <ada@example.test>", "", "contains space or control characters"},
		{"QuotedDisplayName", `"Ada"<ada@example.test>`, "", "not an email address"},
		{"AngleBrackets", "<ada@example.test>", "", "not an email address"},
		{"CommentAfter", "ada@example.test(Ada)", "", "not an email address"},
		{"CommentAfterSpaced", "ada@example.test (Ada)", "", "contains space or control characters"},
		{"CommentBefore", "(Ada)ada@example.test", "", "not an email address"},
		{"CommentInLocal", "ada(x)@example.test", "", "not an email address"},
		{"QuotedLocal", `"ada"@example.test`, "", "not an email address"},
		{"SpaceInside", "ada lovelace@example.test", "", "contains space or control characters"},
		{"TabInside", "ada\t@example.test", "", "contains space or control characters"},
		{"NUL", "ada\x00@example.test", "", "contains space or control characters"},
		{"DEL", "ada\x7f@example.test", "", "contains space or control characters"},
		{"C1", "ada\u0080@example.test", "", "contains space or control characters"},
		{"ZeroWidthSpace", "ada\u200b@example.test", "", "contains space or control characters"},
		{"ZeroWidthJoiner", "ada\u200d@example.test", "", "contains space or control characters"},
		{"LineSeparator", "ada@example.test\u2028x", "", "contains space or control characters"},
		{"ParagraphSeparator", "ada\u2029@example.test", "", "contains space or control characters"},
		{"RightToLeftOverride", "ada\u202e@example.test", "", "contains space or control characters"},
		{"BOM", "\ufeffada@example.test", "", "contains space or control characters"},
		{"SoftHyphen", "ad\u00ada@example.test", "", "contains space or control characters"},
		{"NoAt", "ada.example.test", "", "not an email address"},
		{"NoLocal", "@example.test", "", "not an email address"},
		{"NoDomain", "ada@", "", "not an email address"},
		{"TwoAts", "ada@b@example.test", "", "not an email address"},
		{"TwoAddresses", "ada@example.test,bob@example.test", "", "not an email address"},
		{"TrailingDot", "ada@example.test.", "", "not an email address"},
		{"DoubleDot", "ada@example..test", "", "not an email address"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := CanonicalEmail(tc.in)
			if tc.want != "" {
				if err != nil || got != tc.want {
					t.Fatalf("CanonicalEmail(%q) = %q, %v; want %q, nil", tc.in, got, err, tc.want)
				}
				return
			}
			var ie *InputError
			if got != "" || !errors.As(err, &ie) {
				t.Fatalf("CanonicalEmail(%q) = %q, %v; want \"\", *InputError", tc.in, got, err)
			}
			if ie.Field != "email" || ie.Reason != tc.reason {
				t.Errorf("InputError = %+v, want Field email, Reason %q", ie, tc.reason)
			}
			checkInputErrorText(t, err, tc.in)
		})
	}
}

// emailReasons are the reasons CanonicalEmail gives; an error made only of
// them cannot echo the input.
var emailReasons = map[string]bool{
	"not valid UTF-8": true, "empty": true, "too long": true,
	"contains space or control characters": true, "not an email address": true,
	foldsIntoASCII: true,
}

const foldsIntoASCII = "contains a character that folds to a different, plain one"

func checkInputErrorText(t *testing.T, err error, value string) {
	t.Helper()
	var ie *InputError
	if !errors.As(err, &ie) {
		t.Fatalf("error %v is not an *InputError", err)
	}
	msg := err.Error()
	if want := "auth: invalid " + ie.Field + ": " + ie.Reason; msg != want {
		t.Errorf("Error() = %q, want %q", msg, want)
	}
	if v := strings.TrimSpace(value); len(v) >= 3 && strings.Contains(msg, v) {
		t.Errorf("Error() %q contains the value %q", msg, value)
	}
}

func FuzzCanonicalEmail(f *testing.F) {
	for _, s := range []string{
		"ada@example.test", " Ada@Example.TEST ", "Ada <ada@example.test>", "<a@b>", "a@b(c)",
		"ÄDA@BÜRO.TEST", "ada\u200b@x.test", "ada\u202e@x.test", "\xff@x", "a@[1.2.3.4]", `"a b"@x.test`,
		"İ@x.test", "K@x.test", "ǅ@x.test", "a@" + strings.Repeat("b", 252), "=?utf-8?q?a?=@x.test",
		"jose\u0301@x.test", "\u212b@x.test", "a\u0323\u0307@x.test", "\u1e9b\u0323@x.test", "a@" + strings.Repeat("e\u0301", 84),
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		out, err := CanonicalEmail(in)
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) || ie.Field != "email" || !emailReasons[ie.Reason] {
				t.Fatalf("CanonicalEmail(%q) error %#v is not an email *InputError with a known reason", in, err)
			}
			if msg := err.Error(); msg != "auth: invalid email: "+ie.Reason {
				t.Errorf("Error() = %q", msg)
			}
			if out != "" {
				t.Errorf("CanonicalEmail(%q) = %q with an error", in, out)
			}
			return
		}
		again, err := CanonicalEmail(out)
		if err != nil || again != out {
			t.Errorf("CanonicalEmail(%q) = %q, but CanonicalEmail(%q) = %q, %v", in, out, out, again, err)
		}
		if !norm.NFC.IsNormalString(out) {
			t.Errorf("CanonicalEmail(%q) = %q, not in NFC", in, out)
		}
		if nfc, err := CanonicalEmail(norm.NFD.String(in)); err == nil && nfc != out {
			t.Errorf("CanonicalEmail(%q) = %q, but of its NFD form %q", in, out, nfc)
		}
		if out == "" || len(out) > MaxEmailBytes || !utf8.ValidString(out) || !strings.Contains(out, "@") {
			t.Errorf("CanonicalEmail(%q) = %q, not a plausible address", in, out)
		}
		for _, r := range out {
			if 'A' <= r && r <= 'Z' || unicode.IsSpace(r) || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
				t.Errorf("CanonicalEmail(%q) = %q contains %U", in, out, r)
			}
		}
	})
}

func TestCheckName(t *testing.T) {
	tests := []struct {
		name   string
		in     string
		reason string // "" means accepted
	}{
		{"Plain", "Ada Lovelace", ""},
		{"Empty", "", ""},
		{"NonASCII", "Zoë O'Brien-Ñúñez", ""},
		{"CJK", "山田 太郎", ""},
		{"Emoji", "Ada 🦊", ""},
		{"RTLScript", "محمد", ""},
		{"Exactly200", strings.Repeat("é", 100), ""},
		{"Over200", strings.Repeat("é", 100) + "x", "too long"},
		{"Over200ASCII", strings.Repeat("x", 201), "too long"},
		{"InvalidUTF8", "Ada\xff", "not valid UTF-8"},
		{"Newline", "Ada\nLovelace", "contains control characters"},
		{"CR", "Ada\rLovelace", "contains control characters"},
		{"Tab", "Ada\tLovelace", "contains control characters"},
		{"NUL", "Ada\x00", "contains control characters"},
		{"Escape", "Ada\x1b[31m", "contains control characters"},
		{"DEL", "Ada\x7f", "contains control characters"},
		{"C1NEL", "Ada\u0085Lovelace", "contains control characters"},
		{"C1CSI", "Ada\u009b31m", "contains control characters"},
		{"LineSeparator", "Ada\u2028Lovelace", "contains control characters"},
		{"ParagraphSeparator", "Ada\u2029Lovelace", "contains control characters"},
		{"LRE", "Ada\u202a", "contains control characters"},
		{"RLE", "Ada\u202b", "contains control characters"},
		{"PDF", "Ada\u202c", "contains control characters"},
		{"LRO", "Ada\u202d", "contains control characters"},
		{"RLO", "Ada\u202eecalevoL", "contains control characters"},
		{"LRI", "Ada\u2066", "contains control characters"},
		{"RLI", "Ada\u2067", "contains control characters"},
		{"FSI", "Ada\u2068", "contains control characters"},
		{"PDI", "Ada\u2069", "contains control characters"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := CheckName(tc.in)
			if tc.reason == "" {
				if err != nil {
					t.Fatalf("CheckName(%q) = %v, want nil", tc.in, err)
				}
				return
			}
			var ie *InputError
			if !errors.As(err, &ie) {
				t.Fatalf("CheckName(%q) = %v, want *InputError", tc.in, err)
			}
			if ie.Field != "name" || ie.Reason != tc.reason {
				t.Errorf("InputError = %+v, want Field name, Reason %q", ie, tc.reason)
			}
			checkInputErrorText(t, err, tc.in)
		})
	}
}

func TestStatusValid(t *testing.T) {
	tests := []struct {
		s    Status
		want bool
	}{
		{StatusActive, true},
		{StatusDeactivated, true},
		{"", false},
		{"Active", false},
		{"deleted", false},
	}
	for _, tc := range tests {
		t.Run(string(tc.s), func(t *testing.T) {
			if got := tc.s.Valid(); got != tc.want {
				t.Errorf("Status(%q).Valid() = %v, want %v", tc.s, got, tc.want)
			}
		})
	}
}
