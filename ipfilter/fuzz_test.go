package ipfilter_test

import (
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/guardhq/guard/ipfilter"
)

// FuzzParsePrefix: no panic; a refusal is a *ParseError; an accepted
// entry is masked, never mapped, never /0 without AllowAll, and its
// canonical text is a fixed point. SECURITY-CHECKLIST RL-6 (the CIDR
// configuration parser, with FuzzParseList; the 10 minutes are the
// README's nightly GUARD_FUZZTIME=10m .ci/run).
func FuzzParsePrefix(f *testing.F) {
	for _, s := range []string{
		"203.0.113.0/24", "203.0.113.77/24", "198.51.100.7", " 10.0.0.0/8 ", "2001:db8::/32", "2001:db8::1",
		"::ffff:203.0.113.0/120", "::ffff:0:0/96", "::/64", "::/0", "0.0.0.0/0", "64:ff9b::/96",
		"010.1.2.3", "10.0.0.0/08", "0x7f.0.0.1", "127.1", "1.2.3.4.", "fe80::1%eth0", "fe80::%eth0/64",
		"1.2.3.4:80", "[::1]", `"1.2.3.4"`, "", "/", "1.2.3.4/33", "::ffff:1.2.3.4.5", "1:2:3:4:5:6:7:8/128",
	} {
		f.Add(s, false)
		f.Add(s, true)
	}
	f.Fuzz(func(t *testing.T, s string, allowAll bool) {
		p, adj, err := ipfilter.ParsePrefix(s, ipfilter.ParseOptions{AllowAll: allowAll})
		if err != nil {
			var pe *ipfilter.ParseError
			if !errors.As(err, &pe) || len(pe.Entry) > ipfilter.MaxEntryLen {
				t.Fatalf("ParsePrefix(%q): %#v is not a *ParseError with a short Entry", s, err)
			}
			if p.IsValid() {
				t.Fatalf("ParsePrefix(%q) returned %s with an error", s, p)
			}
			return
		}
		if !p.IsValid() || p != p.Masked() || p.Addr().Is4In6() || p.Addr().Zone() != "" {
			t.Fatalf("ParsePrefix(%q) = %s: not a clean prefix", s, p)
		}
		if p.Bits() == 0 && !allowAll {
			t.Fatalf("ParsePrefix(%q) = %s without AllowAll", s, p)
		}
		if len(s) > ipfilter.MaxEntryLen {
			t.Fatalf("ParsePrefix accepted %d bytes", len(s))
		}
		// Only the strict forms of netip are accepted, after trimming.
		trimmed := strings.Trim(s, " \t")
		if _, err := netip.ParsePrefix(trimmed); err != nil {
			if _, err := netip.ParseAddr(trimmed); err != nil {
				t.Fatalf("ParsePrefix(%q) accepted what netip refuses", s)
			}
		}
		c := ipfilter.Canonical(p)
		q, adj2, err := ipfilter.ParsePrefix(c, ipfilter.ParseOptions{AllowAll: allowAll})
		if err != nil || q != p || adj2 != 0 {
			t.Fatalf("canonical %q of %q reparses as %s, %v, %v", c, s, q, adj2, err)
		}
		_ = adj
	})
}

// FuzzParseList: no panic; an accepted list matches an address exactly
// when one of its prefixes does (SECURITY-CHECKLIST RL-6).
func FuzzParseList(f *testing.F) {
	f.Add("203.0.113.0/24\n2001:db8::/32\n198.51.100.7", "203.0.113.5")
	f.Add("10.0.0.0/8\n10.1.0.0/16\n10.0.0.0/8", "::ffff:10.1.2.3")
	f.Add("::ffff:192.0.2.0/120\n0.0.0.0/0", "192.0.2.1")
	f.Add("fe80::/10\n::1", "fe80::1%eth0")
	f.Add("1.2.3.4/32\n1.2.3.5\n1.2.3.6/31", "1.2.3.7")
	f.Add("garbage\n1.2.3.4", "1.2.3.4")
	f.Fuzz(func(t *testing.T, list, addr string) {
		entries := strings.Split(list, "\n")
		set, warnings, err := ipfilter.ParseList(entries, ipfilter.ParseOptions{AllowAll: true, MaxEntries: 64})
		if err != nil {
			var pe *ipfilter.ParseError
			if !errors.As(err, &pe) && !errors.Is(err, ipfilter.ErrTooManyEntries) {
				t.Fatalf("ParseList error %#v", err)
			}
			if pe != nil && (pe.Index < 0 || pe.Index >= len(entries)) {
				t.Fatalf("ParseError index %d of %d entries", pe.Index, len(entries))
			}
			return
		}
		if set.Len() > len(entries) || len(warnings) > len(entries) {
			t.Fatalf("%d entries gave %d prefixes and %d warnings", len(entries), set.Len(), len(warnings))
		}
		a, err := netip.ParseAddr(addr)
		if err != nil {
			return
		}
		want := false
		for _, p := range set.Prefixes() {
			want = want || p.Contains(a.Unmap().WithZone(""))
		}
		if got := set.Contains(a); got != want {
			t.Fatalf("list %q: Contains(%s) = %v, want %v", set.Entries(), a, got, want)
		}
	})
}

// FuzzResolveXForwardedFor: no panic; an untrusted peer always gets its
// own address; from the trusted proxy, the result is either an error or
// the rightmost value outside the trusted range, found by the obvious
// split-everything implementation, and is a clean address.
// SECURITY-CHECKLIST RL-6 (the X-Forwarded-For parser).
func FuzzResolveXForwardedFor(f *testing.F) {
	for _, s := range []string{
		"192.0.2.9, 203.0.113.5", "203.0.113.5", "203.0.113.5, 198.51.100.10", "unknown", "_hidden",
		"010.1.2.3", "0x7f.0.0.1", "1.2.3.4.", "203.0.113.5:443", "[2001:db8::1]:443", `"203.0.113.5"`,
		" 203.0.113.5 ", "fe80::1%eth0", "203.0.113.5,", ",", "", "203.0.113.5\n192.0.2.1", "::ffff:1.2.3.4",
		"[2001:db8::1", "0.0.0.0", "198.51.100.10, 198.51.100.10",
	} {
		f.Add(s)
	}
	trusted := netip.MustParsePrefix("198.51.100.0/24")
	r, err := ipfilter.NewResolver(ipfilter.ResolverConfig{TrustedProxies: []netip.Prefix{trusted}})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, header string) {
		lines := strings.Split(header, "\n") // one header line per text line
		if a, err := r.Resolve("192.0.2.200:1", lines); err != nil || a != netip.MustParseAddr("192.0.2.200") {
			t.Fatalf("untrusted peer resolved to %v, %v", a, err)
		}
		got, err := r.Resolve("198.51.100.10:1", lines)
		values := strings.Split(strings.Join(lines, ","), ",")
		var want netip.Addr
		for i := len(values) - 1; i >= 0 && i >= len(values)-ipfilter.MaxHops; i-- {
			a, ok := referenceNode(values[i])
			if !ok {
				break
			}
			if !trusted.Contains(a) {
				want = a
				break
			}
		}
		if err != nil {
			if !errors.Is(err, ipfilter.ErrUnidentified) {
				t.Fatalf("error %v does not wrap ErrUnidentified", err)
			}
			if want.IsValid() {
				t.Fatalf("Resolve(%q) failed (%v); the reference found %s", lines, err, want)
			}
			return
		}
		if got != want {
			t.Fatalf("Resolve(%q) = %s; the reference found %v", lines, got, want)
		}
		if !got.IsValid() || got.Is4In6() || got.Zone() != "" || got.IsUnspecified() {
			t.Fatalf("Resolve(%q) = %s: not a clean address", lines, got)
		}
	})
}

// referenceNode is a slow, independent reading of one X-Forwarded-For
// value by the documented rules.
func referenceNode(v string) (netip.Addr, bool) {
	v = strings.Trim(v, " \t")
	if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
		v = v[1 : len(v)-1]
	}
	if strings.Contains(v, "%") {
		return netip.Addr{}, false
	}
	var a netip.Addr
	if ap, err := netip.ParseAddrPort(v); err == nil && len(v) > 0 && !strings.Contains(v[strings.LastIndexByte(v, ':')+1:], "+") {
		port := v[strings.LastIndexByte(v, ':')+1:]
		if port == "" || len(port) > 5 || strings.Trim(port, "0123456789") != "" {
			return netip.Addr{}, false
		}
		a = ap.Addr()
		if !a.Is4() && !strings.HasPrefix(v, "[") {
			return netip.Addr{}, false
		}
	} else if strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]") {
		b, err := netip.ParseAddr(v[1 : len(v)-1])
		if err != nil || !b.Is6() {
			return netip.Addr{}, false
		}
		a = b
	} else if b, err := netip.ParseAddr(v); err == nil {
		a = b
	} else {
		return netip.Addr{}, false
	}
	a = a.Unmap()
	return a, a.IsValid() && !a.IsUnspecified()
}

// FuzzResolveForwarded: no panic, and a result is a clean address that
// is not a trusted proxy. SECURITY-CHECKLIST RL-6 (the Forwarded parser).
func FuzzResolveForwarded(f *testing.F) {
	for _, s := range []string{
		`for="[2001:db8::1]:4711"`, "for=203.0.113.5;proto=https", "for=unknown", "for=_hidden",
		"for=192.0.2.43, for=198.51.100.17", `for=192.0.2.1;x="a,b", for=203.0.113.5`, `for="203.0.113.5`,
		"proto=https", "for=1.2.3.4;for=5.6.7.8", "", ",", ";", "=", `x="\"";for=203.0.113.5`, "for=203.0.113.5\nfor=192.0.2.1",
	} {
		f.Add(s)
	}
	trusted := netip.MustParsePrefix("198.51.100.0/24")
	r, err := ipfilter.NewResolver(ipfilter.ResolverConfig{TrustedProxies: []netip.Prefix{trusted}, Header: ipfilter.Forwarded})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, header string) {
		lines := strings.Split(header, "\n")
		got, err := r.Resolve("198.51.100.10:1", lines)
		if err != nil {
			if !errors.Is(err, ipfilter.ErrUnidentified) {
				t.Fatalf("error %v does not wrap ErrUnidentified", err)
			}
			return
		}
		if !got.IsValid() || got.Is4In6() || got.Zone() != "" || got.IsUnspecified() || trusted.Contains(got) {
			t.Fatalf("Resolve(%q) = %s", lines, got)
		}
		if !strings.Contains(strings.ToLower(header), "for=") {
			t.Fatalf("Resolve(%q) = %s without any for=", lines, got)
		}
	})
}
