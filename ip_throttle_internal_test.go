package guard

import (
	"net/netip"
	"testing"
)

// throttleIPKey names the client a per-IP limit counts: an IPv4 address
// (an IPv4-mapped one too) as itself, an IPv6 address as its prefix, and
// text that is no address as it is.
func TestThrottleIPKey(t *testing.T) {
	for _, tc := range []struct {
		ip   string
		bits int
		want string
	}{
		{"", 64, ""},
		{"198.51.100.7", 64, "198.51.100.7"},
		{"198.51.100.7", 128, "198.51.100.7"},
		{"::ffff:198.51.100.7", 64, "198.51.100.7"},
		{"::ffff:c633:6407", 64, "198.51.100.7"},
		{"2001:db8:1:2::1", 64, "2001:db8:1:2::/64"},
		{"2001:db8:1:2:abcd:ef01:2345:6789", 64, "2001:db8:1:2::/64"},
		{"2001:DB8:1:2::1", 64, "2001:db8:1:2::/64"},
		{"2001:db8:1:2::1", 128, "2001:db8:1:2::1/128"},
		{"2001:db8:1:2::1", 56, "2001:db8:1::/56"},
		{"2001:db8:1:2ff::1", 56, "2001:db8:1:200::/56"},
		{"2001:db8:1:2::1", 48, "2001:db8:1::/48"},
		{"fe80::1%eth0", 64, "fe80::/64"},
		{"::1", 64, "::/64"},
		{"::", 64, "::/64"},
		{"not an address", 64, "not an address"},
		{"010.1.2.3", 64, "010.1.2.3"},
		{"2001:db8::/64", 64, "2001:db8::/64"},
	} {
		if got := throttleIPKey(tc.ip, tc.bits); got != tc.want {
			t.Errorf("throttleIPKey(%q, %d) = %q, want %q", tc.ip, tc.bits, got, tc.want)
		}
	}
}

// Whatever text it is given, throttleIPKey does not panic, returns an
// IPv4 address as its unmapped form, an IPv6 address as a masked prefix
// of the configured length holding it, and anything else unchanged.
func FuzzThrottleIPKey(f *testing.F) {
	for _, s := range []string{"", "198.51.100.7", "::ffff:198.51.100.7", "2001:db8:1:2::1", "fe80::1%eth0",
		"fe80::1%", "::", "1.2.3.4.5", "2001:db8::/64", "\xff"} {
		f.Add(s, uint8(32))
		f.Add(s, uint8(255))
	}
	f.Fuzz(func(t *testing.T, ip string, b uint8) {
		bits := 32 + int(b)%97 // what New allows: 32 to 128
		got := throttleIPKey(ip, bits)
		addr, err := netip.ParseAddr(ip)
		if err != nil {
			if got != ip {
				t.Fatalf("throttleIPKey(%q, %d) = %q, want the text as given", ip, bits, got)
			}
			return
		}
		if u := addr.Unmap(); u.Is4() {
			if got != u.String() {
				t.Fatalf("throttleIPKey(%q, %d) = %q, want %q", ip, bits, got, u)
			}
			return
		}
		p, err := netip.ParsePrefix(got)
		switch {
		case err != nil:
			t.Fatalf("throttleIPKey(%q, %d) = %q, not a prefix: %v", ip, bits, got, err)
		case p.Bits() != bits || p != p.Masked() || !p.Addr().Is6() || p.String() != got:
			t.Fatalf("throttleIPKey(%q, %d) = %q, want a masked IPv6 /%d", ip, bits, got, bits)
		case !p.Contains(addr.WithZone("")):
			t.Fatalf("throttleIPKey(%q, %d) = %q, which does not hold the address", ip, bits, got)
		}
	})
}
