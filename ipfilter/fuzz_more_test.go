package ipfilter_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/guardhq/guard/ipfilter"
)

// FuzzSplitList: SplitList (an allow-list as an admin types it) gives no
// empty entry and no entry holding a separator; joining the entries with
// newlines and splitting again gives the same entries; and ParseList on the
// result either succeeds or fails with a *ParseError / ErrTooManyEntries,
// never a panic.
func FuzzSplitList(f *testing.F) {
	for _, s := range []string{"", "10.0.0.0/8, 192.168.1.1\n2001:db8::/32", ",,, \t\r\n", "1.2.3.4\v5.6.7.8\f::1",
		"\u00a01.2.3.4", "1.2.3.4\u2028::1", "a,b c\td", "\xff,\xfe"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		parts := ipfilter.SplitList(s)
		for _, p := range parts {
			if p == "" || strings.ContainsAny(p, ", \t\n\r\v\f") {
				t.Fatalf("SplitList(%q) gave entry %q", s, p)
			}
		}
		again := ipfilter.SplitList(strings.Join(parts, "\n"))
		if strings.Join(again, "\x00") != strings.Join(parts, "\x00") {
			t.Fatalf("SplitList not stable: %q vs %q", parts, again)
		}
		set, _, err := ipfilter.ParseList(parts, ipfilter.ParseOptions{})
		if err != nil {
			var pe *ipfilter.ParseError
			if !errors.As(err, &pe) && !errors.Is(err, ipfilter.ErrTooManyEntries) {
				t.Fatalf("ParseList(%q) = %#v: not typed", parts, err)
			}
			if set != nil && !set.Empty() {
				t.Fatalf("ParseList returned a non-empty set with an error")
			}
			return
		}
		if set.Len() > len(parts) {
			t.Fatalf("ParseList made %d prefixes from %d entries", set.Len(), len(parts))
		}
	})
}
