package guard

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// clip is how request text (a User-Agent, a path, an X-Forwarded-For
// value) gets into audit events, which Record refuses when not UTF-8:
// whatever it is given, it returns valid UTF-8 of at most n bytes.
func TestClipGivesValidUTF8WithinBound(t *testing.T) {
	for _, tc := range []struct {
		name, s string
		n       int
		want    string
	}{
		{"short", "curl/8", 512, "curl/8"},
		{"long", strings.Repeat("x", 600), 512, strings.Repeat("x", 512)},
		{"rune at the cut", strings.Repeat("1", 63) + "€", 64, strings.Repeat("1", 63)},
		{"short, not UTF-8", "Mozilla/5.0 (\xff)", 512, "Mozilla/5.0 (\uFFFD)"},
		{"truncated rune", "a\xc3", 512, "a\uFFFD"},
		{"replacements beyond the bound", "\xff\xff\xff", 4, "\uFFFD"},
		{"long, not UTF-8", strings.Repeat("\xff", 600), 512, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := clip(tc.s, tc.n)
			if got != tc.want || !utf8.ValidString(got) || len(got) > tc.n {
				t.Errorf("clip(%q, %d) = %q; want %q", tc.s, tc.n, got, tc.want)
			}
		})
	}
}
