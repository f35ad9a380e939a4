package ipfilter_test

import (
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/guardhq/guard/ipfilter"
)

func TestParsePrefixAccepts(t *testing.T) {
	for _, tc := range []struct {
		name, in, want string
		adj            ipfilter.Adjustment
		allowAll       bool
	}{
		{"IPv4Prefix", "203.0.113.0/24", "203.0.113.0/24", 0, false},
		{"IPv4Address", "198.51.100.7", "198.51.100.7", 0, false},
		{"IPv4Slash32", "198.51.100.7/32", "198.51.100.7", 0, false},
		{"BlanksTrimmed", " \t203.0.113.0/24 \t", "203.0.113.0/24", 0, false},
		{"IPv6Prefix", "2001:db8::/32", "2001:db8::/32", 0, false},
		{"IPv6UpperCase", "2001:DB8::/32", "2001:db8::/32", 0, false},
		{"IPv6Long", "2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1", 0, false},
		{"IPv6Slash128", "2001:db8::1/128", "2001:db8::1", 0, false},
		{"IPv4Zero", "0.0.0.0/8", "0.0.0.0/8", 0, false},
		{"Loopback", "127.0.0.1", "127.0.0.1", 0, false},
		// IP-14: host bits are cleared, with a warning.
		{"HostBitsMasked", "203.0.113.77/24", "203.0.113.0/24", ipfilter.Masked, false},
		{"HostBitsMaskedIPv6", "2001:db8::1/64", "2001:db8::/64", ipfilter.Masked, false},
		// IP-9: IPv4-mapped forms become IPv4.
		{"MappedPrefix", "::ffff:203.0.113.0/120", "203.0.113.0/24", ipfilter.Unmapped, false},
		{"MappedHex", "::ffff:cb00:7100/120", "203.0.113.0/24", ipfilter.Unmapped, false},
		{"MappedAddress", "::ffff:203.0.113.5", "203.0.113.5", ipfilter.Unmapped, false},
		{"MappedMasked", "::ffff:203.0.113.77/120", "203.0.113.0/24", ipfilter.Unmapped | ipfilter.Masked, false},
		{"MappedSlash96AllowAll", "::ffff:0:0/96", "0.0.0.0/0", ipfilter.Unmapped, true},
		// IP-15: embedded-IPv4 forms other than mapped stay IPv6.
		{"NAT64", "64:ff9b::/96", "64:ff9b::/96", 0, false},
		{"NAT64Embedded", "64:ff9b::cb00:7100/120", "64:ff9b::cb00:7100/120", 0, false},
		{"SixToFour", "2002:cb00:7100::/40", "2002:cb00:7100::/40", 0, false},
		{"IPv4Compatible", "::203.0.113.0/120", "::cb00:7100/120", 0, false},
		{"IPv6Loopback", "::1", "::1", 0, false},
		{"ShortIPv6NotCoveringMapped", "::/81", "::/81", 0, false},
		// IP-14: /0 only with AllowAll.
		{"AllIPv4AllowAll", "0.0.0.0/0", "0.0.0.0/0", 0, true},
		{"AllIPv6AllowAll", "::/0", "::/0", 0, true},
		{"SlashZeroMaskedAllowAll", "10.1.2.3/0", "0.0.0.0/0", ipfilter.Masked, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, adj, err := ipfilter.ParsePrefix(tc.in, ipfilter.ParseOptions{AllowAll: tc.allowAll})
			if err != nil {
				t.Fatalf("ipfilter.ParsePrefix(%q): %v", tc.in, err)
			}
			if got := ipfilter.Canonical(p); got != tc.want || adj != tc.adj {
				t.Errorf("ipfilter.ParsePrefix(%q) = %s (%v), want %s (%v)", tc.in, got, adj, tc.want, tc.adj)
			}
			if p != p.Masked() || p.Addr().Is4In6() {
				t.Errorf("ipfilter.ParsePrefix(%q) = %s: not masked or still mapped", tc.in, p)
			}
			// The canonical form is a fixed point.
			q, adj2, err := ipfilter.ParsePrefix(ipfilter.Canonical(p), ipfilter.ParseOptions{AllowAll: tc.allowAll})
			if err != nil || q != p || adj2 != 0 {
				t.Errorf("ipfilter.ParsePrefix(%q) = %s, %v, %v; want %s unchanged", ipfilter.Canonical(p), q, adj2, err, p)
			}
		})
	}
}

func TestParsePrefixRefuses(t *testing.T) {
	long := strings.Repeat("1", ipfilter.MaxEntryLen+1)
	for _, tc := range []struct {
		name, in string
		want     error
	}{
		{"Empty", "", ipfilter.ErrSyntax},
		{"Blank", " \t ", ipfilter.ErrSyntax},
		{"TooLong", long, ipfilter.ErrSyntax},
		{"TooLongWithBlanks", strings.Repeat(" ", ipfilter.MaxEntryLen) + "1.2.3.4", ipfilter.ErrSyntax},
		{"LeadingZeroOctet", "010.1.2.3", ipfilter.ErrSyntax},
		{"LeadingZeroOctetPrefix", "010.1.2.0/24", ipfilter.ErrSyntax},
		{"LeadingZeroLast", "1.2.3.04", ipfilter.ErrSyntax},
		{"OctalOctet", "0177.0.0.1", ipfilter.ErrSyntax},
		{"HexOctet", "0x7f.0.0.1", ipfilter.ErrSyntax},
		{"HexWhole", "0x7f000001", ipfilter.ErrSyntax},
		{"Decimal", "2130706433", ipfilter.ErrSyntax},
		{"ShortForm", "127.1", ipfilter.ErrSyntax},
		{"ThreeOctets", "10.0.0/24", ipfilter.ErrSyntax},
		{"TrailingDot", "1.2.3.4.", ipfilter.ErrSyntax},
		{"TrailingDotPrefix", "1.2.3.0./24", ipfilter.ErrSyntax},
		{"OctetTooBig", "1.2.3.256", ipfilter.ErrSyntax},
		{"MaskLeadingZero", "10.0.0.0/08", ipfilter.ErrSyntax},
		{"MaskDoubleZero", "10.0.0.0/00", ipfilter.ErrSyntax},
		{"MaskPlus", "10.0.0.0/+8", ipfilter.ErrSyntax},
		{"MaskNegative", "10.0.0.0/-1", ipfilter.ErrSyntax},
		{"MaskTooLong", "10.0.0.0/33", ipfilter.ErrSyntax},
		{"MaskTooLongIPv6", "2001:db8::/129", ipfilter.ErrSyntax},
		{"MaskHuge", "10.0.0.0/4294967304", ipfilter.ErrSyntax},
		{"MaskEmpty", "10.0.0.0/", ipfilter.ErrSyntax},
		{"MaskDotted", "10.0.0.0/255.0.0.0", ipfilter.ErrSyntax},
		{"NoAddress", "/24", ipfilter.ErrSyntax},
		{"TwoSlashes", "10.0.0.0/8/16", ipfilter.ErrSyntax},
		{"Port", "1.2.3.4:80", ipfilter.ErrSyntax},
		{"Brackets", "[2001:db8::1]", ipfilter.ErrSyntax},
		{"BracketsPort", "[2001:db8::1]:443", ipfilter.ErrSyntax},
		{"Quoted", `"1.2.3.4"`, ipfilter.ErrSyntax},
		{"Wildcard", "10.0.0.*", ipfilter.ErrSyntax},
		{"Range", "10.0.0.1-10.0.0.9", ipfilter.ErrSyntax},
		{"TwoEntries", "1.2.3.4 5.6.7.8", ipfilter.ErrSyntax},
		{"TwoEntriesComma", "1.2.3.4,5.6.7.8", ipfilter.ErrSyntax},
		{"Newline", "1.2.3.4\n", ipfilter.ErrSyntax},
		{"NUL", "1.2.3.4\x00", ipfilter.ErrSyntax},
		{"Hostname", "localhost", ipfilter.ErrSyntax},
		{"Unknown", "unknown", ipfilter.ErrSyntax},
		{"FullwidthDigits", "１.２.３.４", ipfilter.ErrSyntax},
		{"IPv6TooManyGroups", "1:2:3:4:5:6:7:8:9", ipfilter.ErrSyntax},
		{"IPv6TwoDoubleColons", "2001::db8::1", ipfilter.ErrSyntax},
		{"MappedTooLong", "::ffff:1.2.3.4.5", ipfilter.ErrSyntax},
		{"Zone", "fe80::1%eth0", ipfilter.ErrZone},
		{"ZonePrefix", "fe80::%eth0/64", ipfilter.ErrZone},
		{"ZoneEncoded", "fe80::1%25eth0", ipfilter.ErrZone},
		{"AllIPv4", "0.0.0.0/0", ipfilter.ErrMatchesAll},
		{"AllIPv6", "::/0", ipfilter.ErrMatchesAll},
		{"AllViaMask", "203.0.113.5/0", ipfilter.ErrMatchesAll},
		{"AllMapped", "::ffff:0:0/96", ipfilter.ErrMatchesAll},
		{"AllMappedHostBits", "::ffff:1.2.3.4/96", ipfilter.ErrMatchesAll},
		{"CoversMapped64", "::/64", ipfilter.ErrMappedRange},
		{"CoversMapped80", "::/80", ipfilter.ErrMappedRange},
		{"CoversMapped1", "::/1", ipfilter.ErrMappedRange},
		{"CoversMapped95", "::ffff:0:0/95", ipfilter.ErrMappedRange},
		{"MappedShortPrefix", "::ffff:1.2.3.4/90", ipfilter.ErrMappedRange},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, _, err := ipfilter.ParsePrefix(tc.in, ipfilter.ParseOptions{})
			if !errors.Is(err, tc.want) {
				t.Fatalf("ipfilter.ParsePrefix(%q) = %v, %v; want %v", tc.in, p, err, tc.want)
			}
			var pe *ipfilter.ParseError
			if !errors.As(err, &pe) || pe.Index != -1 || len(pe.Entry) > ipfilter.MaxEntryLen {
				t.Errorf("error %#v is not a *ipfilter.ParseError with Index -1 and a short Entry", err)
			}
			if strings.ContainsAny(err.Error(), "\n\x00") {
				t.Errorf("error message %q contains a raw control character", err)
			}
		})
	}
}

func TestParseList(t *testing.T) {
	set, warnings, err := ipfilter.ParseList([]string{
		"203.0.113.0/24",
		" 198.51.100.7 ",
		"203.0.113.77/24", // same as entry 0 once masked
		"::ffff:192.0.2.0/120",
		"2001:db8::/32",
		"2001:DB8::/32", // duplicate
	}, ipfilter.ParseOptions{})
	if err != nil {
		t.Fatal(err)
	}
	wantEntries := []string{"203.0.113.0/24", "198.51.100.7", "192.0.2.0/24", "2001:db8::/32"}
	if got := set.Entries(); !slices.Equal(got, wantEntries) {
		t.Errorf("Entries = %q, want %q", got, wantEntries)
	}
	if set.Len() != 4 || len(set.Prefixes()) != 4 {
		t.Errorf("Len = %d, Prefixes %d; want 4", set.Len(), len(set.Prefixes()))
	}
	wantWarnings := []ipfilter.Warning{
		{Index: 2, Entry: "203.0.113.77/24", Canonical: "203.0.113.0/24", Adjusted: ipfilter.Masked | ipfilter.Duplicate},
		{Index: 3, Entry: "::ffff:192.0.2.0/120", Canonical: "192.0.2.0/24", Adjusted: ipfilter.Unmapped},
		{Index: 5, Entry: "2001:DB8::/32", Canonical: "2001:db8::/32", Adjusted: ipfilter.Duplicate},
	}
	if !slices.Equal(warnings, wantWarnings) {
		t.Errorf("warnings = %v, want %v", warnings, wantWarnings)
	}
	for _, w := range warnings {
		if w.String() == "" || !strings.Contains(w.String(), w.Canonical) {
			t.Errorf("ipfilter.Warning.String() = %q", w.String())
		}
	}
	// The stored form parses back to itself, without warnings.
	again, warnings, err := ipfilter.ParseList(set.Entries(), ipfilter.ParseOptions{})
	if err != nil || len(warnings) != 0 || !slices.Equal(again.Entries(), wantEntries) {
		t.Errorf("ipfilter.ParseList(Entries) = %q, %v, %v", again.Entries(), warnings, err)
	}
}

func TestParseListErrors(t *testing.T) {
	t.Run("IndexOfBadEntry", func(t *testing.T) {
		_, _, err := ipfilter.ParseList([]string{"10.0.0.0/8", "192.0.2.1", "010.0.0.1", "garbage"}, ipfilter.ParseOptions{})
		var pe *ipfilter.ParseError
		if !errors.As(err, &pe) || pe.Index != 2 || pe.Entry != "010.0.0.1" || !errors.Is(err, ipfilter.ErrSyntax) {
			t.Fatalf("err = %v, want a *ipfilter.ParseError at index 2", err)
		}
		if msg := err.Error(); !strings.Contains(msg, `entry 3 "010.0.0.1"`) || !strings.Contains(msg, "leading zero") {
			t.Errorf("message %q does not name the entry and the rule", msg)
		}
	})
	t.Run("AllowAllOnlyWhenAsked", func(t *testing.T) {
		if _, _, err := ipfilter.ParseList([]string{"10.0.0.0/8", "0.0.0.0/0"}, ipfilter.ParseOptions{}); !errors.Is(err, ipfilter.ErrMatchesAll) {
			t.Errorf("err = %v, want ipfilter.ErrMatchesAll", err)
		}
		set, _, err := ipfilter.ParseList([]string{"0.0.0.0/0", "::/0"}, ipfilter.ParseOptions{AllowAll: true})
		if err != nil || !set.Contains(netip.MustParseAddr("8.8.8.8")) || !set.Contains(netip.MustParseAddr("2001:db8::1")) {
			t.Errorf("AllowAll list: %v", err)
		}
	})
	t.Run("TooMany", func(t *testing.T) {
		list := []string{"10.0.0.1", "10.0.0.2", "10.0.0.3", "10.0.0.4"}
		if _, _, err := ipfilter.ParseList(list, ipfilter.ParseOptions{MaxEntries: 3}); !errors.Is(err, ipfilter.ErrTooManyEntries) {
			t.Errorf("err = %v, want ipfilter.ErrTooManyEntries", err)
		}
		if _, _, err := ipfilter.ParseList(list, ipfilter.ParseOptions{MaxEntries: 4}); err != nil {
			t.Errorf("4 entries with MaxEntries 4: %v", err)
		}
		if _, _, err := ipfilter.ParseList(list, ipfilter.ParseOptions{MaxEntries: -1}); err != nil {
			t.Errorf("MaxEntries -1: %v", err)
		}
		big := make([]string, ipfilter.DefaultMaxEntries+1)
		if _, _, err := ipfilter.ParseList(big, ipfilter.ParseOptions{}); !errors.Is(err, ipfilter.ErrTooManyEntries) {
			t.Errorf("default limit: err = %v, want ipfilter.ErrTooManyEntries", err)
		}
	})
	t.Run("EntryEchoIsQuotedAndCut", func(t *testing.T) {
		bad := "1.2.3.4\r\nforged: log line" + strings.Repeat("x", 200)
		_, _, err := ipfilter.ParseList([]string{bad}, ipfilter.ParseOptions{})
		var pe *ipfilter.ParseError
		if !errors.As(err, &pe) || len(pe.Entry) != ipfilter.MaxEntryLen {
			t.Fatalf("err = %#v, want Entry cut to %d bytes", err, ipfilter.MaxEntryLen)
		}
		if strings.ContainsAny(err.Error(), "\r\n") {
			t.Errorf("message %q has a raw line break", err)
		}
	})
	t.Run("Empty", func(t *testing.T) {
		for _, l := range [][]string{nil, {}} {
			set, w, err := ipfilter.ParseList(l, ipfilter.ParseOptions{})
			if err != nil || !set.Empty() || w != nil || set.Entries() != nil {
				t.Errorf("ipfilter.ParseList(%#v) = %v, %v, %v", l, set, w, err)
			}
		}
	})
}

func TestAdjustmentString(t *testing.T) {
	if s := ipfilter.Adjustment(0).String(); s != "none" {
		t.Errorf("zero ipfilter.Adjustment = %q", s)
	}
	if s := (ipfilter.Masked | ipfilter.Unmapped | ipfilter.Duplicate).String(); strings.Count(s, ",") != 2 {
		t.Errorf("all flags = %q", s)
	}
}

func TestSplitList(t *testing.T) {
	got := ipfilter.SplitList("203.0.113.0/24\r\n198.51.100.7, 2001:db8::/32,,\t10.0.0.0/8\n\n  ")
	want := []string{"203.0.113.0/24", "198.51.100.7", "2001:db8::/32", "10.0.0.0/8"}
	if !slices.Equal(got, want) {
		t.Errorf("SplitList = %q, want %q", got, want)
	}
	if got := ipfilter.SplitList(" \n, "); len(got) != 0 {
		t.Errorf("SplitList of blanks = %q", got)
	}
	// Only separators are interpreted: the rest is ParseList's job.
	if _, _, err := ipfilter.ParseList(ipfilter.SplitList("10.0.0.0/8;192.0.2.1"), ipfilter.ParseOptions{}); !errors.Is(err, ipfilter.ErrSyntax) {
		t.Errorf("semicolon-separated: %v", err)
	}
}
