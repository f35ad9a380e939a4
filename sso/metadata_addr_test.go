package sso

import "testing"

// The default metadata client refuses to connect to non-public addresses
// (a tenant owner chooses MetadataURL: SSRF), and so to IPv6 addresses
// that embed an IPv4 one, which a NAT64 gateway, 6to4 or Teredo relay or
// an IPv4-compatible route on the host's network may carry to the
// instance metadata service (169.254.169.254) or to loopback (SIIT's
// IPv4-translated form too). An
// ordinary public IPv6 address beside those prefixes stays public.
func TestMetadataFetchRefusesEmbeddedIPv4(t *testing.T) {
	for _, tc := range []struct {
		name, ip string
		public   bool
	}{
		{"NAT64 well-known to 169.254.169.254", "64:ff9b::a9fe:a9fe", false},
		{"NAT64 well-known to a public address", "64:ff9b::808:808", false},
		{"NAT64 local-use to 169.254.169.254", "64:ff9b:1::a9fe:a9fe", false},
		{"NAT64 local-use, another /96 of the /48, to 10.0.0.1", "64:ff9b:1:ffff::a00:1", false},
		{"6to4 to 169.254.169.254", "2002:a9fe:a9fe::1", false},
		{"6to4 to 127.0.0.1", "2002:7f00:1::1", false},
		{"Teredo with server 169.254.169.254", "2001:0:a9fe:a9fe::1", false},
		{"Teredo with client 127.0.0.1", "2001:0:4136:e378:8000:63bf:80ff:fffe", false},
		{"IPv4-compatible 169.254.169.254", "::a9fe:a9fe", false},
		{"IPv4-compatible 127.0.0.1", "::7f00:1", false},
		{"IPv4-translated (SIIT) 169.254.169.254", "::ffff:0:a9fe:a9fe", false},
		{"IPv4-translated (SIIT) 127.0.0.1", "::ffff:0:7f00:1", false},
		{"IPv4-translated (SIIT) 10.0.0.1", "::ffff:0:a00:1", false},
		{"public beside Teredo", "2001:4860:4860::8888", true},
		{"public beside NAT64", "64:ff9c::1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := publicAddr(mustAddr(tc.ip)); got != tc.public {
				t.Errorf("publicAddr(%s) = %v; want %v", tc.ip, got, tc.public)
			}
		})
	}
}
