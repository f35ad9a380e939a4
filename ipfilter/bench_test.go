package ipfilter

import (
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"net/netip"
	"testing"
)

// benchPrefixes returns n distinct random prefixes, masked and valid for
// an allow-list: family "v4", "v6" or "mixed" (half each), IPv4 lengths
// /16 to /32 (mostly /24 to /32, like real allow-lists), IPv6 /32 to
// /128. The generator is seeded, so every run measures the same lists.
func benchPrefixes(n int, family string) []netip.Prefix {
	r := rand.New(rand.NewPCG(uint64(n), 42))
	seen := make(map[netip.Prefix]bool, n)
	out := make([]netip.Prefix, 0, n)
	for len(out) < n {
		v6 := family == "v6" || family == "mixed" && len(out)%2 == 1
		var p netip.Prefix
		if v6 {
			var b [16]byte
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			b[0] = 0x20 // 2000::/3, like real global unicast addresses
			bits := []int{32, 48, 56, 64, 64, 64, 128, 128}[r.IntN(8)]
			p = netip.PrefixFrom(netip.AddrFrom16(b), bits).Masked()
		} else {
			var b [4]byte
			for i := range b {
				b[i] = byte(r.Uint32())
			}
			bits := []int{16, 20, 24, 24, 28, 29, 32, 32, 32}[r.IntN(9)]
			p = netip.PrefixFrom(netip.AddrFrom4(b), bits).Masked()
		}
		if p.Bits() == 0 || seen[p] {
			continue
		}
		seen[p] = true
		out = append(out, p)
	}
	return out
}

// benchAddrs returns 4096 query addresses of the family mix: half inside
// a random prefix of ps, half random (mostly outside).
func benchAddrs(ps []netip.Prefix, family string) []netip.Addr {
	r := rand.New(rand.NewPCG(7, 7))
	out := make([]netip.Addr, 4096)
	for i := range out {
		if i%2 == 0 {
			p := ps[r.IntN(len(ps))]
			b := p.Addr().AsSlice()
			for j := p.Bits()/8 + 1; j < len(b); j++ {
				b[j] = byte(r.Uint32())
			}
			a, _ := netip.AddrFromSlice(b)
			out[i] = a
			continue
		}
		v6 := family == "v6" || family == "mixed" && i%4 == 1
		if v6 {
			var b [16]byte
			for j := range b {
				b[j] = byte(r.Uint32())
			}
			b[0] = 0x20
			out[i] = netip.AddrFrom16(b)
		} else {
			var b [4]byte
			for j := range b {
				b[j] = byte(r.Uint32())
			}
			out[i] = netip.AddrFrom4(b)
		}
	}
	return out
}

// BenchmarkContains measures Set.Contains (bart.Lite, the chosen
// structure) against the alternative, sorted ranges searched by binary
// search (ranges_test.go), on the same lists and queries, at 1,000 and
// 100,000 prefixes of IPv4, IPv6 and both. Half the queries hit.
func BenchmarkContains(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		for _, family := range []string{"v4", "v6", "mixed"} {
			ps := benchPrefixes(n, family)
			addrs := benchAddrs(ps, family)
			set := compile(ps)
			ranges := compileRanges(ps)
			for _, a := range addrs { // the two must agree
				if set.Contains(a) != ranges.contains(a) {
					b.Fatalf("Set and ranges disagree on %s", a)
				}
			}
			b.Run(fmt.Sprintf("n=%d/%s/impl=bart", n, family), func(b *testing.B) {
				b.ReportAllocs()
				hits, i := 0, 0
				for b.Loop() {
					if set.Contains(addrs[i&4095]) {
						hits++
					}
					i++
				}
				sink = hits
			})
			b.Run(fmt.Sprintf("n=%d/%s/impl=ranges", n, family), func(b *testing.B) {
				b.ReportAllocs()
				hits, i := 0, 0
				for b.Loop() {
					if ranges.contains(addrs[i&4095]) {
						hits++
					}
					i++
				}
				sink = hits
			})
		}
	}
}

var sink int

// BenchmarkParseList is the cost of compiling a list from its stored
// entries, paid once per tenant and version.
func BenchmarkParseList(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		ps := benchPrefixes(n, "mixed")
		entries := make([]string, n)
		for i, p := range ps {
			entries[i] = Canonical(p)
		}
		b.Run(fmt.Sprintf("n=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, _, err := ParseList(entries, ParseOptions{}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkResolve is client-IP resolution: a direct client (the
// common case without a proxy), and through one trusted proxy with
// X-Forwarded-For and Forwarded.
func BenchmarkResolve(b *testing.B) {
	trusted := []netip.Prefix{netip.MustParsePrefix("198.51.100.10/32"), netip.MustParsePrefix("10.0.0.0/8")}
	for _, tc := range []struct {
		name   string
		cfg    ResolverConfig
		remote string
		lines  []string
	}{
		{"direct", ResolverConfig{TrustedProxies: trusted}, "192.0.2.9:52000", []string{"203.0.113.5"}},
		{"direct-ipv6", ResolverConfig{TrustedProxies: trusted}, "[2001:db8::9]:52000", nil},
		{"xff", ResolverConfig{TrustedProxies: trusted}, "198.51.100.10:40000", []string{"192.0.2.1, 203.0.113.5"}},
		{"xff-3-hops", ResolverConfig{TrustedProxies: trusted}, "10.0.0.1:40000", []string{"192.0.2.1, 203.0.113.5, 10.1.1.1", "10.2.2.2"}},
		{"forwarded", ResolverConfig{TrustedProxies: trusted, Header: Forwarded}, "198.51.100.10:40000", []string{`for=192.0.2.1, for="[2001:db8::1]:4711";proto=https`}},
	} {
		r, err := NewResolver(tc.cfg)
		if err != nil {
			b.Fatal(err)
		}
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := r.Resolve(tc.remote, tc.lines); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkClientIP is Resolve as the facade calls it, from an
// *http.Request behind one trusted proxy.
func BenchmarkClientIP(b *testing.B) {
	r, err := NewResolver(ResolverConfig{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("198.51.100.10/32")}})
	if err != nil {
		b.Fatal(err)
	}
	req := httptest.NewRequest("GET", "/", nil)
	req.RemoteAddr = "198.51.100.10:40000"
	req.Header.Set("X-Forwarded-For", "192.0.2.1, 203.0.113.5")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := r.ClientIP(req); err != nil {
			b.Fatal(err)
		}
	}
}

// TestSetMatchesRanges checks Set (bart) against the independent range
// implementation on the benchmark lists.
func TestSetMatchesRanges(t *testing.T) {
	for _, family := range []string{"v4", "v6", "mixed"} {
		ps := benchPrefixes(5_000, family)
		set, ranges := compile(ps), compileRanges(ps)
		for _, a := range benchAddrs(ps, family) {
			for _, q := range []netip.Addr{a, a.Next(), a.Prev(), netip.AddrFrom16(a.As16())} {
				if set.Contains(q) != ranges.contains(q) {
					t.Fatalf("%s: Set.Contains(%s) = %v, ranges say %v", family, q, set.Contains(q), ranges.contains(q))
				}
			}
		}
	}
}
