package ipfilter_test

import (
	"errors"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"

	"github.com/guardhq/guard/ipfilter"
)

// The harness of the security checklist (§8.0): trusted proxy
// 198.51.100.10/32.
const proxy = "198.51.100.10"

func newResolver(t testing.TB, cfg ipfilter.ResolverConfig) *ipfilter.Resolver {
	t.Helper()
	r, err := ipfilter.NewResolver(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func prefixes(ss ...string) []netip.Prefix {
	out := make([]netip.Prefix, len(ss))
	for i, s := range ss {
		if !strings.Contains(s, "/") {
			s += "/" + map[bool]string{true: "32", false: "128"}[strings.Contains(s, ".")]
		}
		out[i] = netip.MustParsePrefix(s)
	}
	return out
}

type resolveCase struct {
	name   string
	remote string
	lines  []string
	want   string // "" means unidentified (error)
}

func runResolve(t *testing.T, r *ipfilter.Resolver, cases []resolveCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := r.Resolve(tc.remote, tc.lines)
			if tc.want == "" {
				if !errors.Is(err, ipfilter.ErrUnidentified) {
					t.Fatalf("Resolve(%q, %q) = %v, %v; want ErrUnidentified", tc.remote, tc.lines, got, err)
				}
				var re *ipfilter.ResolveError
				if !errors.As(err, &re) || len(re.Value) > 64 {
					t.Errorf("error %#v is not a *ResolveError with a short Value", err)
				}
				if got.IsValid() {
					t.Errorf("an address (%s) came with the error", got)
				}
				return
			}
			if err != nil || got != netip.MustParseAddr(tc.want) {
				t.Errorf("Resolve(%q, %q) = %v, %v; want %s", tc.remote, tc.lines, got, err, tc.want)
			}
		})
	}
}

func TestResolveUntrustedPeer(t *testing.T) {
	// Headers from a peer that is not a trusted proxy change nothing
	// (IP-1, IP-2 and every spoofing form).
	r := newResolver(t, ipfilter.ResolverConfig{TrustedProxies: prefixes(proxy)})
	none := newResolver(t, ipfilter.ResolverConfig{})
	cases := []resolveCase{
		{"NoHeader", "192.0.2.9:52000", nil, "192.0.2.9"},
		{"SpoofedClient", "192.0.2.9:52000", []string{"203.0.113.5"}, "192.0.2.9"},
		{"SpoofedLoopback", "192.0.2.9:52000", []string{"127.0.0.1"}, "192.0.2.9"},
		{"SpoofedTrustedProxy", "192.0.2.9:52000", []string{"203.0.113.5, " + proxy}, "192.0.2.9"},
		{"SpoofedGarbage", "192.0.2.9:52000", []string{"unknown, _hidden, 010.1.2.3"}, "192.0.2.9"},
		{"LoopbackPeerIsNotTrusted", "127.0.0.1:52000", []string{"203.0.113.5"}, "127.0.0.1"},
		{"IPv6LoopbackPeer", "[::1]:52000", []string{"203.0.113.5"}, "::1"},
		{"IPv6Peer", "[2001:db8::9]:443", []string{"203.0.113.5"}, "2001:db8::9"},
		{"MappedPeer", "[::ffff:192.0.2.9]:52000", nil, "192.0.2.9"},
		{"ZonedPeer", "[fe80::1%eth0]:52000", nil, "fe80::1"},
		{"PeerWithoutPort", "192.0.2.9", nil, "192.0.2.9"},
		{"IPv6PeerWithoutPort", "2001:db8::9", nil, "2001:db8::9"},
		{"NeighbourOfProxy", "198.51.100.11:52000", []string{"203.0.113.5"}, "198.51.100.11"},
		{"EmptyRemoteAddr", "", nil, ""},
		{"UnixSocket", "@", nil, ""},
		{"GarbageRemoteAddr", "not-an-ip:80", nil, ""},
		{"UnspecifiedPeer", "0.0.0.0:80", nil, ""},
		{"LeadingZeroPeer", "010.0.0.1:80", nil, ""},
	}
	runResolve(t, r, cases)
	t.Run("NoTrustedProxies", func(t *testing.T) { runResolve(t, none, cases) })
}

func TestResolveXForwardedFor(t *testing.T) {
	r := newResolver(t, ipfilter.ResolverConfig{TrustedProxies: prefixes(proxy)})
	peer := proxy + ":40000"
	runResolve(t, r, []resolveCase{
		// IP-3: the rightmost untrusted value is the client.
		{"Rightmost", peer, []string{"192.0.2.9, 203.0.113.5"}, "203.0.113.5"},
		{"Single", peer, []string{"203.0.113.5"}, "203.0.113.5"},
		{"SkipsTrusted", peer, []string{"192.0.2.9, 203.0.113.5, " + proxy}, "203.0.113.5"},
		{"MappedTrustedPeer", "[::ffff:" + proxy + "]:40000", []string{"203.0.113.5"}, "203.0.113.5"},
		// Several lines form one list; the last line holds the rightmost.
		{"LastLineWins", peer, []string{"203.0.113.5", "192.0.2.9"}, "192.0.2.9"},
		{"AcrossLines", peer, []string{"192.0.2.1, 203.0.113.5", proxy}, "203.0.113.5"},
		{"AcrossLinesComma", peer, []string{"192.0.2.1", "203.0.113.5, " + proxy}, "203.0.113.5"},
		// IP-12: surrounding blanks, ports, brackets and quotes.
		{"Blanks", peer, []string{" 203.0.113.5 "}, "203.0.113.5"},
		{"Tabs", peer, []string{"192.0.2.1,\t203.0.113.5\t"}, "203.0.113.5"},
		{"IPv4Port", peer, []string{"203.0.113.5:443"}, "203.0.113.5"},
		{"IPv6Port", peer, []string{"[2001:db8::1]:443"}, "2001:db8::1"},
		{"IPv6Brackets", peer, []string{"[2001:db8::1]"}, "2001:db8::1"},
		{"Quoted", peer, []string{`"203.0.113.5"`}, "203.0.113.5"},
		{"QuotedIPv6Port", peer, []string{`"[2001:db8::1]:443"`}, "2001:db8::1"},
		{"IPv6", peer, []string{"2001:db8::1"}, "2001:db8::1"},
		{"Mapped", peer, []string{"::ffff:203.0.113.5"}, "203.0.113.5"},
		{"NAT64StaysIPv6", peer, []string{"64:ff9b::cb00:7105"}, "64:ff9b::cb00:7105"},
		{"PortZero", peer, []string{"203.0.113.5:0"}, "203.0.113.5"},
		// Values left of the client are never parsed.
		{"GarbageLeftIgnored", peer, []string{"not an ip, 010.1.2.3, 203.0.113.5"}, "203.0.113.5"},
		{"LoopbackLeftIgnored", peer, []string{"127.0.0.1, 203.0.113.5"}, "203.0.113.5"},
		// Invalid where the client should be: deny, never skip left.
		{"Garbage", peer, []string{"203.0.113.5, garbage"}, ""},
		{"Unknown", peer, []string{"203.0.113.5, unknown"}, ""},
		{"UnknownUpper", peer, []string{"203.0.113.5, UNKNOWN"}, ""},
		{"Obfuscated", peer, []string{"203.0.113.5, _hidden"}, ""},
		{"LeadingZeros", peer, []string{"203.0.113.5, 010.1.2.3"}, ""},
		{"Octal", peer, []string{"0177.0.0.1"}, ""},
		{"Hex", peer, []string{"0x7f.0.0.1"}, ""},
		{"HexWhole", peer, []string{"0x7f000001"}, ""},
		{"Decimal", peer, []string{"2130706433"}, ""},
		{"ShortForm", peer, []string{"127.1"}, ""},
		{"TrailingDot", peer, []string{"203.0.113.5."}, ""},
		{"TrailingDotPort", peer, []string{"203.0.113.5.:443"}, ""},
		{"PortTooBig", peer, []string{"203.0.113.5:65536"}, ""},
		{"PortEmpty", peer, []string{"203.0.113.5:"}, ""},
		{"PortNotDigits", peer, []string{"203.0.113.5:https"}, ""},
		{"PortSign", peer, []string{"203.0.113.5:+443"}, ""},
		{"IPv6UnbracketedPortIsAnAddress", peer, []string{"2001:db8::1:443"}, "2001:db8::1:443"},
		{"UnclosedBracket", peer, []string{"[2001:db8::1"}, ""},
		{"BracketedIPv4", peer, []string{"[203.0.113.5]"}, ""},
		{"BracketJunk", peer, []string{"[2001:db8::1]x"}, ""},
		{"UnbalancedQuote", peer, []string{`"203.0.113.5`}, ""},
		{"QuoteInside", peer, []string{`203.0.113."5"`}, ""},
		{"SingleQuotes", peer, []string{"'203.0.113.5'"}, ""},
		{"Zone", peer, []string{"fe80::1%eth0"}, ""},
		{"Unspecified4", peer, []string{"0.0.0.0"}, ""},
		{"Unspecified6", peer, []string{"::"}, ""},
		{"Hostname", peer, []string{"localhost"}, ""},
		{"EmptyValue", peer, []string{"203.0.113.5, "}, ""},
		{"TrailingComma", peer, []string{"203.0.113.5,"}, ""},
		{"EmptyBetween", peer, []string{"203.0.113.5,," + proxy}, ""},
		{"EmptyLastLine", peer, []string{"203.0.113.5", ""}, ""},
		{"Semicolon", peer, []string{"203.0.113.5;"}, ""},
		{"SpaceInside", peer, []string{"203.0.113.5 192.0.2.1"}, ""},
		{"NUL", peer, []string{"203.0.113.5\x00"}, ""},
		{"Newline", peer, []string{"203.0.113.5\n"}, ""},
		// Missing, or only trusted values: deny (the peer is not used).
		{"Missing", peer, nil, ""},
		{"EmptyLine", peer, []string{""}, ""},
		{"OnlyTrusted", peer, []string{proxy}, ""},
		{"OnlyTrustedTwice", peer, []string{proxy + ", " + proxy}, ""},
	})
}

func TestResolveTrustedRanges(t *testing.T) {
	// IP-6 with two ranges.
	r := newResolver(t, ipfilter.ResolverConfig{TrustedProxies: prefixes(proxy, "198.51.100.11", "2001:db8:ffff::/48")})
	runResolve(t, r, []resolveCase{
		{"TwoHops", proxy + ":1", []string{"198.51.100.99, 203.0.113.5, 198.51.100.11"}, "203.0.113.5"},
		{"IPv6Proxy", "[2001:db8:ffff::2]:1", []string{"203.0.113.5, 2001:db8:ffff::1"}, "203.0.113.5"},
		{"InnerProxyIPv6Port", proxy + ":1", []string{"203.0.113.5, [2001:db8:ffff::1]:80"}, "203.0.113.5"},
		{"InvalidInnerHop", proxy + ":1", []string{"203.0.113.5, 198.51.100.011"}, ""},
	})
	t.Run("TooManyHops", func(t *testing.T) {
		r := newResolver(t, ipfilter.ResolverConfig{TrustedProxies: prefixes("10.0.0.0/8")})
		within := "203.0.113.5" + strings.Repeat(", 10.0.0.1", ipfilter.MaxHops-1)
		if a, err := r.Resolve("10.0.0.2:1", []string{within}); err != nil || a.String() != "203.0.113.5" {
			t.Errorf("%d hops: %v, %v", ipfilter.MaxHops-1, a, err)
		}
		beyond := "203.0.113.5" + strings.Repeat(", 10.0.0.1", ipfilter.MaxHops)
		if _, err := r.Resolve("10.0.0.2:1", []string{beyond}); !errors.Is(err, ipfilter.ErrUnidentified) {
			t.Errorf("%d hops: err = %v, want ErrUnidentified", ipfilter.MaxHops, err)
		}
	})
}

func TestResolveTrustedHops(t *testing.T) {
	// IP-6 with a count: the client is the 2nd value from the right.
	r := newResolver(t, ipfilter.ResolverConfig{TrustedProxies: prefixes(proxy), TrustedHops: 2})
	runResolve(t, r, []resolveCase{
		{"TwoHops", proxy + ":1", []string{"198.51.100.99, 203.0.113.5, 198.51.100.11"}, "203.0.113.5"},
		{"InnerProxyAnyAddress", proxy + ":1", []string{"203.0.113.5, 192.0.2.200"}, "203.0.113.5"},
		{"ClientMayLookTrusted", proxy + ":1", []string{proxy + ", 192.0.2.200"}, proxy},
		{"AcrossLines", proxy + ":1", []string{"203.0.113.5", "192.0.2.200"}, "203.0.113.5"},
		// One hop fewer than configured: fail closed.
		{"OneHopFewer", proxy + ":1", []string{"203.0.113.5"}, ""},
		{"Missing", proxy + ":1", nil, ""},
		{"InvalidInnerHop", proxy + ":1", []string{"203.0.113.5, unknown"}, ""},
		{"InvalidClient", proxy + ":1", []string{"1.2.3.4, _x, 192.0.2.200"}, ""},
		// The peer must still be a trusted proxy.
		{"UntrustedPeer", "192.0.2.9:1", []string{"203.0.113.5, 192.0.2.200"}, "192.0.2.9"},
	})
}

func TestResolveForwarded(t *testing.T) {
	r := newResolver(t, ipfilter.ResolverConfig{TrustedProxies: prefixes(proxy), Header: ipfilter.Forwarded})
	peer := proxy + ":1"
	runResolve(t, r, []resolveCase{
		// IP-7.
		{"QuotedIPv6Port", peer, []string{`for="[2001:db8::1]:4711"`}, "2001:db8::1"},
		{"WithProto", peer, []string{"for=203.0.113.5;proto=https"}, "203.0.113.5"},
		{"Unknown", peer, []string{"for=unknown"}, ""},
		{"Obfuscated", peer, []string{"for=_hidden"}, ""},
		{"ObfuscatedQuoted", peer, []string{`for="_gazonk"`}, ""},
		// RFC 7239 examples and variations.
		{"RFCExample", peer, []string{"for=192.0.2.60;proto=http;by=203.0.113.43"}, "192.0.2.60"},
		{"TwoElements", peer, []string{"for=192.0.2.43, for=198.51.100.17"}, "198.51.100.17"},
		{"SkipsTrusted", peer, []string{"for=192.0.2.43, for=" + proxy}, "192.0.2.43"},
		{"CaseInsensitiveName", peer, []string{"For=203.0.113.5"}, "203.0.113.5"},
		{"ForNotFirst", peer, []string{"proto=https;for=203.0.113.5;host=example.com"}, "203.0.113.5"},
		{"Blanks", peer, []string{" for=192.0.2.1 , for=203.0.113.5 ; proto=https "}, "203.0.113.5"},
		{"AcrossLines", peer, []string{"for=192.0.2.1", "for=203.0.113.5"}, "203.0.113.5"},
		{"QuotedIPv4", peer, []string{`for="203.0.113.5"`}, "203.0.113.5"},
		{"QuotedIPv4Port", peer, []string{`for="203.0.113.5:8080"`}, "203.0.113.5"},
		{"UnquotedBracketsLenient", peer, []string{"for=[2001:db8::1]:80"}, "2001:db8::1"},
		{"QuotedComma", peer, []string{`for=192.0.2.1;x="a,b", for=203.0.113.5`}, "203.0.113.5"},
		{"EscapeInOtherParam", peer, []string{`x="a\"b";for=203.0.113.5`}, "203.0.113.5"},
		{"LeftGarbageElement", peer, []string{`for=010.1.2.3, for=203.0.113.5`}, "203.0.113.5"},
		// Invalid where the client should be, or malformed: deny.
		{"NoFor", peer, []string{"proto=https"}, ""},
		{"NoForRightmost", peer, []string{"for=203.0.113.5, proto=https"}, ""},
		{"TwoFor", peer, []string{"for=192.0.2.1;for=203.0.113.5"}, ""},
		{"EmptyElement", peer, []string{"for=203.0.113.5,"}, ""},
		{"EmptyLine", peer, []string{""}, ""},
		{"Unterminated", peer, []string{`for="203.0.113.5`}, ""},
		{"UnterminatedEscape", peer, []string{`for="203.0.113.5\`}, ""},
		{"EscapeInValue", peer, []string{`for="203.0.113\.5"`}, ""},
		{"NoValue", peer, []string{"for="}, ""},
		{"NoEquals", peer, []string{"for"}, ""},
		{"BadName", peer, []string{"f(r=203.0.113.5"}, ""},
		{"JunkAfterQuote", peer, []string{`for="203.0.113.5"x`}, ""},
		{"LeadingZeros", peer, []string{"for=010.1.2.3"}, ""},
		{"Zone", peer, []string{`for="[fe80::1%eth0]"`}, ""},
		{"Missing", peer, nil, ""},
		{"OnlyTrusted", peer, []string{"for=" + proxy}, ""},
		{"MalformedLeftLine", peer, []string{`for="x`, "for=203.0.113.5"}, "203.0.113.5"},
		// The X-Forwarded-For header is not consulted in Forwarded mode
		// (Resolve is given only the Forwarded lines; see ClientIP test).
		{"UntrustedPeer", "192.0.2.9:1", []string{"for=203.0.113.5"}, "192.0.2.9"},
	})
}

func TestClientIP(t *testing.T) {
	xff := newResolver(t, ipfilter.ResolverConfig{TrustedProxies: prefixes(proxy)})
	fwd := newResolver(t, ipfilter.ResolverConfig{TrustedProxies: prefixes(proxy), Header: ipfilter.Forwarded})
	req := httptest.NewRequest("GET", "/", nil)
	req.RemoteAddr = proxy + ":40000"
	// Go's Header.Get would return the first line, which the client wrote.
	req.Header.Add("X-Forwarded-For", "198.51.100.99")
	req.Header.Add("X-Forwarded-For", "192.0.2.1, 203.0.113.5")
	req.Header.Set("Forwarded", "for=192.0.2.77")
	req.Header.Set("X-Real-IP", "192.0.2.66")
	req.Header.Set("True-Client-IP", "192.0.2.55")
	if a, err := xff.ClientIP(req); err != nil || a.String() != "203.0.113.5" {
		t.Errorf("X-Forwarded-For resolver: %v, %v; want 203.0.113.5", a, err)
	}
	if a, err := fwd.ClientIP(req); err != nil || a.String() != "192.0.2.77" {
		t.Errorf("Forwarded resolver: %v, %v; want 192.0.2.77", a, err)
	}
	if !xff.TrustedPeer(netip.MustParseAddr(proxy)) || xff.TrustedPeer(netip.MustParseAddr("192.0.2.1")) {
		t.Error("TrustedPeer is wrong")
	}
}

func TestResolveAllocatesNothing(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    ipfilter.ResolverConfig
		remote string
		lines  []string
	}{
		{"UntrustedPeer", ipfilter.ResolverConfig{TrustedProxies: prefixes(proxy)}, "192.0.2.9:52000", []string{"203.0.113.5"}},
		{"UntrustedIPv6Peer", ipfilter.ResolverConfig{}, "[2001:db8::9]:52000", nil},
		{"XForwardedFor", ipfilter.ResolverConfig{TrustedProxies: prefixes(proxy)}, proxy + ":1", []string{"192.0.2.9, 203.0.113.5"}},
		{"XForwardedForIPv6", ipfilter.ResolverConfig{TrustedProxies: prefixes(proxy)}, proxy + ":1", []string{"[2001:db8::1]:443"}},
		{"Forwarded", ipfilter.ResolverConfig{TrustedProxies: prefixes(proxy), Header: ipfilter.Forwarded}, proxy + ":1", []string{`for=192.0.2.9, for="[2001:db8::1]:4711";proto=https`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newResolver(t, tc.cfg)
			if _, err := r.Resolve(tc.remote, tc.lines); err != nil {
				t.Fatal(err)
			}
			if n := testing.AllocsPerRun(100, func() { _, _ = r.Resolve(tc.remote, tc.lines) }); n != 0 {
				t.Errorf("Resolve allocates %v times", n)
			}
		})
	}
}

func TestNewResolverRefuses(t *testing.T) {
	for _, tc := range []struct {
		name  string
		cfg   ipfilter.ResolverConfig
		field string
	}{
		{"TrustAllIPv4", ipfilter.ResolverConfig{TrustedProxies: prefixes("0.0.0.0/0")}, "TrustedProxies[0]"},
		{"TrustAllIPv6", ipfilter.ResolverConfig{TrustedProxies: prefixes(proxy, "::/0")}, "TrustedProxies[1]"},
		{"TrustAllMapped", ipfilter.ResolverConfig{TrustedProxies: prefixes("::ffff:0:0/96")}, "TrustedProxies[0]"},
		{"CoversMapped", ipfilter.ResolverConfig{TrustedProxies: prefixes("::/64")}, "TrustedProxies[0]"},
		{"InvalidPrefix", ipfilter.ResolverConfig{TrustedProxies: []netip.Prefix{{}}}, "TrustedProxies[0]"},
		{"NegativeHops", ipfilter.ResolverConfig{TrustedProxies: prefixes(proxy), TrustedHops: -1}, "TrustedHops"},
		{"TooManyHops", ipfilter.ResolverConfig{TrustedProxies: prefixes(proxy), TrustedHops: ipfilter.MaxHops + 1}, "TrustedHops"},
		{"HopsWithoutProxies", ipfilter.ResolverConfig{TrustedHops: 1}, "TrustedProxies"},
		{"UnknownHeader", ipfilter.ResolverConfig{Header: 9}, "Header"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ipfilter.NewResolver(tc.cfg)
			var ce *ipfilter.ConfigError
			if !errors.As(err, &ce) || ce.Field != tc.field {
				t.Errorf("NewResolver = %v, want a *ConfigError for %s", err, tc.field)
			}
		})
	}
	// Mapped and host-bit forms of a trusted proxy are normalised.
	r := newResolver(t, ipfilter.ResolverConfig{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("::ffff:198.51.100.10/128"), netip.MustParsePrefix("10.1.2.3/8")}})
	for _, a := range []string{proxy, "10.9.9.9"} {
		if !r.TrustedPeer(netip.MustParseAddr(a)) {
			t.Errorf("%s not trusted", a)
		}
	}
}
