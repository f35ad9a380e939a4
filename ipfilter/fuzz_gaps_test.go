package ipfilter_test

import (
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/guardhq/guard/ipfilter"
)

// FuzzResolvePeer: http.Request.RemoteAddr ("ip:port", "[ipv6]:port", a
// bare IP, or whatever a host's listener or test puts there). Resolve
// gives a *ResolveError wrapping ErrUnidentified, or an address that is
// valid, unmapped, without a zone and not unspecified, the one the
// RemoteAddr names; a peer inside TrustedProxies is never its own
// answer, in any spelling (IPv4-mapped, zone, port), so a forwarded
// header is always read for it.
func FuzzResolvePeer(f *testing.F) {
	for _, s := range []string{"192.0.2.1:443", "[2001:db8::1]:443", "192.0.2.1", "2001:db8::1", "[::ffff:198.51.100.7]:1",
		"::ffff:198.51.100.7", "[fe80::1%eth0]:80", "fe80::1%eth0", "0.0.0.0:1", "[::]:1", "198.51.100.7:99999", "", ":80",
		"198.51.100.7:", "[198.51.100.7]:1", "localhost:80", "198.51.100.007:1", "@", "[::ffff:0.0.0.0]:1"} {
		f.Add(s)
	}
	trusted := netip.MustParsePrefix("198.51.100.0/24")
	r, err := ipfilter.NewResolver(ipfilter.ResolverConfig{TrustedProxies: []netip.Prefix{trusted}})
	if err != nil {
		f.Fatal(err)
	}
	const client = "203.0.113.9"
	f.Fuzz(func(t *testing.T, remote string) {
		got, err := r.Resolve(remote, []string{client})
		if err != nil {
			var re *ipfilter.ResolveError
			if !errors.As(err, &re) || !errors.Is(err, ipfilter.ErrUnidentified) {
				t.Fatalf("Resolve(%q) = %#v", remote, err)
			}
			return
		}
		if !got.IsValid() || got.Is4In6() || got.Zone() != "" || got.IsUnspecified() {
			t.Fatalf("Resolve(%q) = %v: not a clean address", remote, got)
		}
		// The address RemoteAddr names, read the usual way.
		host := remote
		if h, _, err := net.SplitHostPort(remote); err == nil {
			host = h
		}
		if i := strings.IndexByte(host, '%'); i >= 0 {
			host = host[:i]
		}
		want, err := netip.ParseAddr(host)
		if err != nil {
			t.Fatalf("Resolve accepted RemoteAddr %q, which names no IP address", remote)
		}
		want = want.Unmap()
		if trusted.Contains(want) {
			if got != netip.MustParseAddr(client) {
				t.Fatalf("trusted peer %q resolved to %v, not the forwarded client", remote, got)
			}
			return
		}
		if got != want {
			t.Fatalf("Resolve(%q) = %v, want %v", remote, got, want)
		}
	})
}
