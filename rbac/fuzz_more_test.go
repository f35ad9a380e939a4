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
// UTF-8 without control characters; an ID is 32 lower-case hex digits.
func FuzzApprovalInput(f *testing.F) {
	for _, s := range []string{"", "user:u1", "0123456789abcdef0123456789abcdef", "0123456789ABCDEF0123456789abcdef",
		"a\nb", "a\u0085b", "\xff", strings.Repeat("a", 300), "\u202e"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var ie *InputError
		if err := checkTarget(s); err != nil {
			if !errors.As(err, &ie) {
				t.Fatalf("checkTarget(%q) = %#v", s, err)
			}
		} else if s == "" || len(s) > MaxTargetLen || !utf8.ValidString(s) || strings.ContainsFunc(s, unicode.IsControl) {
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
