package rbac

import (
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzApprovalInput: an approval's target (free text from the request to
// approve) and ID (from an approver's link) are refused with an
// *InputError, or meet their rules: a target is 1 to MaxTargetLen bytes of
// UTF-8 without control characters, line or paragraph separators, or
// bidirectional embeddings, overrides or isolates (auth.Printable's rule);
// an ID is 32 lower-case hex digits.
func FuzzApprovalInput(f *testing.F) {
	for _, s := range []string{"", "user:u1", "0123456789abcdef0123456789abcdef", "0123456789ABCDEF0123456789abcdef",
		"a\nb", "a\u0085b", "\xff", strings.Repeat("a", 300), "\u202e", "a\u2028b", "\u2066x\u2069", "\u200b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var ie *InputError
		if err := checkTarget(s); err != nil {
			if !errors.As(err, &ie) {
				t.Fatalf("checkTarget(%q) = %#v", s, err)
			}
		} else if s == "" || len(s) > MaxTargetLen || !utf8.ValidString(s) || strings.ContainsFunc(s, shapesText) {
			t.Fatalf("checkTarget accepted %q", s)
		}
		if err := checkID(s); err != nil {
			if !errors.As(err, &ie) {
				t.Fatalf("checkID(%q) = %#v", s, err)
			}
		} else if len(s) != 32 || strings.Trim(s, "0123456789abcdef") != "" {
			t.Fatalf("checkID accepted %q", s)
		}
	})
}

// shapesText reports whether r changes how the text around it is shown: a
// control character, a line or paragraph separator, a bidirectional
// embedding, override or isolate.
func shapesText(r rune) bool {
	return unicode.IsControl(r) || r == '\u2028' || r == '\u2029' ||
		'\u202a' <= r && r <= '\u202e' || '\u2066' <= r && r <= '\u2069'
}
