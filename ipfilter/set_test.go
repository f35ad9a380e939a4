package ipfilter_test

import (
	"fmt"
	"math/rand/v2"
	"net/netip"
	"testing"

	"github.com/guardhq/guard/ipfilter"
)

func mustList(t testing.TB, opt ipfilter.ParseOptions, entries ...string) *ipfilter.Set {
	t.Helper()
	s, _, err := ipfilter.ParseList(entries, opt)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestContains(t *testing.T) {
	set := mustList(t, ipfilter.ParseOptions{},
		"203.0.113.0/24", "198.51.100.7", "10.0.0.0/8", "10.1.0.0/16", // nested
		"192.0.2.0/25", "192.0.2.128/25", // adjacent
		"255.255.255.255", "0.0.0.1/32",
		"2001:db8::/32", "2001:db8:1::1", "fe80::/10", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe/127", "::1",
	)
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"203.0.113.0", true}, {"203.0.113.5", true}, {"203.0.113.255", true},
		{"203.0.112.255", false}, {"203.0.114.0", false},
		{"198.51.100.7", true}, {"198.51.100.6", false}, {"198.51.100.8", false},
		{"10.255.255.255", true}, {"11.0.0.0", false}, {"9.255.255.255", false},
		{"192.0.2.0", true}, {"192.0.2.127", true}, {"192.0.2.128", true}, {"192.0.2.255", true}, {"192.0.3.0", false},
		{"255.255.255.255", true}, {"255.255.255.254", false}, {"0.0.0.1", true}, {"0.0.0.0", false}, {"0.0.0.2", false},
		{"2001:db8::", true}, {"2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", true}, {"2001:db9::", false}, {"2001:db7:ffff::", false},
		{"2001:db8:1::1", true}, {"fe80::1", true}, {"fe80::1%eth0", true}, {"fec0::", false},
		{"ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", true}, {"ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffd", false},
		{"::1", true}, {"::", false}, {"::2", false},
		// IPv4-mapped clients are unmapped first (checklist §5).
		{"::ffff:203.0.113.5", true}, {"::ffff:cb00:7105", true}, {"::ffff:10.1.2.3", true}, {"::ffff:11.0.0.1", false},
		// IP-15: NAT64, 6to4 and IPv4-compatible forms are not IPv4.
		{"64:ff9b::cb00:7105", false}, {"2002:cb00:7105::1", false}, {"::cb00:7105", false}, {"::203.0.113.5", false},
	} {
		if got := set.Contains(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("Contains(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
	if set.Contains(netip.Addr{}) {
		t.Error("Contains(zero Addr) = true")
	}
	var empty *ipfilter.Set
	if empty.Contains(netip.MustParseAddr("1.2.3.4")) || empty.Len() != 0 || !empty.Empty() || empty.Prefixes() != nil || empty.Entries() != nil {
		t.Error("nil Set is not empty")
	}
}

// TestContainsMatchesLinearScan compares Set.Contains with the obvious
// loop over netip.Prefix.Contains on random lists, with overlapping,
// nested and adjacent prefixes of both families.
func TestContainsMatchesLinearScan(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	randAddr := func(v6 bool) netip.Addr {
		if v6 {
			var b [16]byte
			for i := range b {
				b[i] = byte(r.IntN(3)) // few distinct values: many collisions
			}
			if r.IntN(4) == 0 {
				b[0], b[1] = 0xff, 0xff
			}
			return netip.AddrFrom16(b)
		}
		var b [4]byte
		for i := range b {
			b[i] = byte([]int{0, 1, 2, 127, 128, 255}[r.IntN(6)])
		}
		return netip.AddrFrom4(b)
	}
	for round := range 300 {
		var entries []string
		var prefixes []netip.Prefix
		for range 1 + r.IntN(12) {
			v6 := r.IntN(2) == 0
			a := randAddr(v6)
			bits := 1 + r.IntN(a.BitLen())
			if v6 && bits < 96 && bits > 0 {
				bits = 96 + r.IntN(33) // shorter ones may cover the mapped range
			}
			p := netip.PrefixFrom(a, bits).Masked()
			if p.Addr().Is4In6() {
				continue
			}
			entries = append(entries, p.String())
			prefixes = append(prefixes, p)
		}
		if round%50 == 0 {
			entries = append(entries, "0.0.0.0/0")
			prefixes = append(prefixes, netip.MustParsePrefix("0.0.0.0/0"))
		}
		set := mustList(t, ipfilter.ParseOptions{AllowAll: true}, entries...)
		for range 200 {
			a := randAddr(r.IntN(2) == 0)
			want := false
			for _, p := range prefixes {
				want = want || p.Contains(a)
			}
			if got := set.Contains(a); got != want {
				t.Fatalf("list %q: Contains(%s) = %v, want %v", entries, a, got, want)
			}
		}
	}
}

func TestContainsAllocatesNothing(t *testing.T) {
	set := mustList(t, ipfilter.ParseOptions{}, "203.0.113.0/24", "2001:db8::/32")
	addrs := []netip.Addr{netip.MustParseAddr("203.0.113.5"), netip.MustParseAddr("2001:db8::1"), netip.MustParseAddr("::ffff:203.0.113.5"), netip.MustParseAddr("192.0.2.1")}
	if n := testing.AllocsPerRun(100, func() {
		for _, a := range addrs {
			set.Contains(a)
		}
	}); n != 0 {
		t.Errorf("Contains allocates %v times", n)
	}
}

func TestWouldLockOut(t *testing.T) {
	office := mustList(t, ipfilter.ParseOptions{}, "203.0.113.0/24")
	for _, tc := range []struct {
		set   *ipfilter.Set
		admin string
		want  bool
	}{
		{office, "203.0.113.5", false},
		{office, "::ffff:203.0.113.5", false},
		{office, "198.51.100.1", true},
		{office, "", true},
		{nil, "198.51.100.1", false},
		{mustList(t, ipfilter.ParseOptions{}), "", false},
	} {
		var a netip.Addr
		if tc.admin != "" {
			a = netip.MustParseAddr(tc.admin)
		}
		if got := ipfilter.WouldLockOut(tc.set, a); got != tc.want {
			t.Errorf("WouldLockOut(%v, %q) = %v, want %v", tc.set.Entries(), tc.admin, got, tc.want)
		}
	}
}

func ExampleSet_Contains() {
	set, _, _ := ipfilter.ParseList([]string{"203.0.113.0/24", "2001:db8::/32"}, ipfilter.ParseOptions{})
	for _, a := range []string{"203.0.113.5", "::ffff:203.0.113.5", "64:ff9b::cb00:7105", "2001:db8::1", "192.0.2.1"} {
		fmt.Println(a, set.Contains(netip.MustParseAddr(a)))
	}
	// Output:
	// 203.0.113.5 true
	// ::ffff:203.0.113.5 true
	// 64:ff9b::cb00:7105 false
	// 2001:db8::1 true
	// 192.0.2.1 false
}
