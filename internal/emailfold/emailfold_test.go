package emailfold

import (
	"strings"
	"testing"
)

const foldsReason = "contains a character that folds to a different, plain one"

// asciiBytes counts the bytes of s inside ASCII.
func asciiBytes(s string) int {
	n := 0
	for i := 0; i < len(s); i++ {
		if s[i] < 0x80 {
			n++
		}
	}
	return n
}

func TestCanonical(t *testing.T) {
	for _, c := range []struct{ in, want, reason string }{
		{" Ann@Example.COM ", "ann@example.com", ""},
		{"re\u0301my@example.com", "r\u00e9my@example.com", ""}, // decomposed accent composed
		{"", "", "empty"},
		{"a\xffb@example.com", "", "not valid UTF-8"},
		{"a\u200bb@example.com", "", "contains space or control characters"},
		{"Ann <ann@example.com>", "", "contains space or control characters"},
		{"<ann@example.com>", "", "not an email address"},
		{"ann", "", "not an email address"},
		// A character outside ASCII that folds into it is refused, not
		// taken for the plain letter: another mailbox, another domain.
		{"\u0130an@corp.example", "", foldsReason},           // İ lowers to i
		{"I\u0307an@corp.example", "", foldsReason},          // I and a dot above compose to İ
		{"eve@\u0130nfo.example", "", foldsReason},           // an IDN, not info.example
		{"\u212Aate@example.com", "", foldsReason},           // the Kelvin sign normalises to K
		{"\u017Fam@example.com", "\u017Fam@example.com", ""}, // ſ stays ſ (lowers to itself)
		{"\u00C9ve@example.com", "\u00E9ve@example.com", ""}, // É lowers to é, outside ASCII
	} {
		got, reason := Canonical(c.in)
		if got != c.want || reason != c.reason {
			t.Errorf("Canonical(%q) = %q, %q; want %q, %q", c.in, got, reason, c.want, c.reason)
		}
	}
}

// A canonical address is its own canonical form, and Fold gives it too.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{"Ann@Example.com", "İ@example.com", "i\u0307@example.com", " x@y ", "I\u0307@example.com", "\u212A@example.com", "e\u0301\u212A@example.com"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		e, reason := Canonical(s)
		if reason != "" {
			if e != "" {
				t.Fatalf("Canonical(%q) refused (%s) but returned %q", s, reason, e)
			}
			return
		}
		if Fold(s) != e {
			t.Fatalf("Fold(%q) = %q, Canonical gave %q", s, Fold(s), e)
		}
		// Folding never makes a plain character out of another one (it
		// may compose a plain letter and a mark into one outside ASCII).
		if n, in := asciiBytes(e), asciiBytes(strings.TrimSpace(s)); n > in {
			t.Fatalf("Canonical(%q) = %q: %d plain bytes out of %d", s, e, n, in)
		}
		if again, r := Canonical(e); again != e || r != "" {
			t.Fatalf("Canonical(%q) = %q, %q: not a fixed point of %q", e, again, r, s)
		}
	})
}
