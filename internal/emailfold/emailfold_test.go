package emailfold

import "testing"

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
	} {
		got, reason := Canonical(c.in)
		if got != c.want || reason != c.reason {
			t.Errorf("Canonical(%q) = %q, %q; want %q, %q", c.in, got, reason, c.want, c.reason)
		}
	}
}

// A canonical address is its own canonical form, and Fold gives it too.
func FuzzCanonical(f *testing.F) {
	for _, s := range []string{"Ann@Example.com", "İ@example.com", "i\u0307@example.com", " x@y "} {
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
		if again, r := Canonical(e); again != e || r != "" {
			t.Fatalf("Canonical(%q) = %q, %q: not a fixed point of %q", e, again, r, s)
		}
	})
}
