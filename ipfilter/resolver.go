package ipfilter

import (
	"net/http"
	"net/netip"
	"strings"
)

// Header names the one forwarding header a Resolver reads from trusted
// proxies. Exactly one is consulted: reading several (X-Real-IP,
// True-Client-IP, …) would let a client pick the one its proxy does not
// overwrite.
type Header uint8

const (
	// XForwardedFor is the de facto standard X-Forwarded-For header: a
	// comma-separated list of addresses, each proxy appending the address
	// it received the request from. The default.
	XForwardedFor Header = iota
	// Forwarded is the RFC 7239 Forwarded header; its for= parameters
	// are read like the X-Forwarded-For list.
	Forwarded
)

func (h Header) String() string {
	switch h {
	case XForwardedFor:
		return "X-Forwarded-For"
	case Forwarded:
		return "Forwarded"
	}
	return "Header(" + itoa(int(h)) + ")"
}

// MaxHops bounds how many forwarding-header values a Resolver walks
// through, from the right, before it finds the client: a request that
// passed more trusted proxies than this is unidentified.
const MaxHops = 32

// ResolverConfig configures a Resolver. The zero value trusts no proxy:
// the client IP is always the connection's peer.
type ResolverConfig struct {
	// TrustedProxies are the addresses of your own reverse proxies and
	// load balancers. A forwarding header is read only when the
	// connection's peer is inside one of them; from any other peer it is
	// ignored, however it looks. The prefixes are normalised like
	// allow-list entries (IPv4-mapped forms unmapped, host bits cleared);
	// 0.0.0.0/0 and ::/0 are refused, since trusting every peer lets any
	// client choose its address. List only the proxies: a client whose own
	// address is inside TrustedProxies (a too-wide private range, say) is
	// skipped like a proxy, and can then choose the address it is seen as.
	TrustedProxies []netip.Prefix
	// TrustedHops, when above zero, is the exact number of proxies in
	// front of the application, each appending one value to the header:
	// the client is then the TrustedHops-th value from the right, whatever
	// the addresses of the inner proxies, and a header with fewer values
	// is unidentified. When zero (the default), the header is read from
	// the right skipping every value inside TrustedProxies, and the first
	// value outside them is the client. Either way the peer itself must be
	// inside TrustedProxies.
	TrustedHops int
	// Header is the forwarding header to read (default XForwardedFor).
	Header Header
}

// Resolver finds the client IP of a request: the connection's peer,
// unless the peer is a trusted proxy, and then the rightmost untrusted
// address of the forwarding header (rightmost-trusted-range, or
// rightmost-trusted-count with TrustedHops).
//
// The rules, in order:
//
//  1. The peer is RemoteAddr ("ip:port", or a bare IP), unmapped, zone
//     dropped. If it cannot be parsed, or is 0.0.0.0 or ::, the request is
//     unidentified.
//  2. If the peer is not inside TrustedProxies, it is the client. Headers
//     are not read at all, so a spoofed X-Forwarded-For, even one saying
//     127.0.0.1, changes nothing.
//  3. Otherwise every line of the header forms one list (a proxy may add
//     a line rather than extend the last one), read from the right. Each
//     value walked must be a valid address, else the request is
//     unidentified: the parser never skips an invalid value to reach one
//     further left, which the client wrote.
//  4. The first value outside TrustedProxies (or the TrustedHops-th from
//     the right) is the client. No header, an empty one, a header made
//     only of trusted addresses, or fewer values than TrustedHops: the
//     request is unidentified. (The peer is not used in its place: a proxy
//     that forgot to append would otherwise make every client look like
//     the proxy.)
//
// A value is accepted, and reduced to the bare address, when it is an
// IPv4 or IPv6 address, optionally surrounded by blanks, optionally in
// double quotes, optionally with a port (203.0.113.5:443,
// [2001:db8::1]:443) or IPv6 brackets without a port. Refused: empty
// values, "unknown", obfuscated identifiers (_hidden), leading zeros,
// octal or hex octets (010.1.2.3, 0x7f.1), short forms (127.1), a
// trailing dot, zones (fe80::1%eth0), ports above 65535, unbalanced quotes
// or brackets, and the unspecified addresses 0.0.0.0 and ::. IPv4-mapped
// IPv6 addresses are unmapped; NAT64, 6to4 and IPv4-compatible addresses
// stay IPv6.
//
// With Header set to Forwarded, the list is that of the for= parameters
// of the RFC 7239 elements (one element per hop, across all lines);
// quoted values, ports and brackets are read as above, and an element
// without for=, or with two, is invalid where it is walked. A header that
// does not follow the RFC 7239 syntax is unidentified as a whole.
//
// A Resolver is immutable and safe for concurrent use. Resolve and
// ClientIP allocate nothing when the peer is not a trusted proxy, nor
// for the usual forwarded request.
type Resolver struct {
	trusted *Set
	hops    int
	header  Header
	key     string // canonical header key
}

// NewResolver validates cfg and returns a Resolver. Errors are
// *ConfigError.
func NewResolver(cfg ResolverConfig) (*Resolver, error) {
	switch {
	case cfg.TrustedHops < 0:
		return nil, &ConfigError{Field: "TrustedHops", Reason: "must not be negative"}
	case cfg.TrustedHops > MaxHops:
		return nil, &ConfigError{Field: "TrustedHops", Reason: "must be at most " + itoa(MaxHops)}
	case cfg.TrustedHops > 0 && len(cfg.TrustedProxies) == 0:
		return nil, &ConfigError{Field: "TrustedProxies", Reason: "must name the peer proxies when TrustedHops is set"}
	case cfg.Header != XForwardedFor && cfg.Header != Forwarded:
		return nil, &ConfigError{Field: "Header", Reason: "unknown header"}
	}
	ps := make([]netip.Prefix, 0, len(cfg.TrustedProxies))
	for i, p := range cfg.TrustedProxies {
		n, _, err := normalize(p, rules{allowUnspecified: true})
		if err != nil {
			return nil, &ConfigError{Field: "TrustedProxies[" + itoa(i) + "]", Reason: trimPrefix(err.Error())}
		}
		ps = append(ps, n)
	}
	return &Resolver{trusted: compile(ps), hops: cfg.TrustedHops, header: cfg.Header, key: cfg.Header.String()}, nil
}

// ClientIP returns the client IP of r (see Resolver for the rules), or a
// *ResolveError wrapping ErrUnidentified. On error the request must be
// denied.
func (rs *Resolver) ClientIP(r *http.Request) (netip.Addr, error) {
	return rs.Resolve(r.RemoteAddr, r.Header[rs.key])
}

// Resolve is ClientIP over its inputs: remoteAddr as in
// http.Request.RemoteAddr, and lines, every line of the configured
// forwarding header in the order received (http.Header values of its
// canonical key).
func (rs *Resolver) Resolve(remoteAddr string, lines []string) (netip.Addr, error) {
	peer, ok := parsePeer(remoteAddr)
	if !ok {
		return netip.Addr{}, resolveErr("RemoteAddr", remoteAddr, "not an IP address")
	}
	if !rs.trusted.Contains(peer) {
		return peer, nil
	}
	if rs.header == Forwarded {
		return rs.walkForwarded(lines)
	}
	return rs.walkXFF(lines)
}

// TrustedPeer reports whether a is inside the resolver's TrustedProxies.
func (rs *Resolver) TrustedPeer(a netip.Addr) bool { return rs.trusted.Contains(a) }

func resolveErr(source, value, reason string) error {
	if len(value) > maxEcho {
		value = value[:maxEcho]
	}
	return &ResolveError{Source: source, Value: value, Reason: reason}
}

// parsePeer reads RemoteAddr: "ip:port", "[ipv6]:port" or a bare IP. A
// zone with a bracket or a '%' in it ("[::1%]]:0", which netip reads as
// zone "]") is refused: no listener writes one, and net.SplitHostPort
// refuses it.
func parsePeer(s string) (netip.Addr, bool) {
	var a netip.Addr
	if ap, err := netip.ParseAddrPort(s); err == nil {
		a = ap.Addr()
	} else if a, err = netip.ParseAddr(s); err != nil {
		return netip.Addr{}, false
	}
	if strings.ContainsAny(a.Zone(), "[]%") {
		return netip.Addr{}, false
	}
	a = a.Unmap().WithZone("")
	return a, !a.IsUnspecified()
}

// walker keeps the state of a right-to-left walk over header values.
type walker struct {
	rs   *Resolver
	seen int // values walked so far
}

// step examines the next value from the right. It returns the client
// when v is it, done when the walk is over (client found or error).
func (w *walker) step(source, v string) (client netip.Addr, done bool, err error) {
	w.seen++
	a, reason := parseNode(v)
	if reason != "" {
		return netip.Addr{}, true, resolveErr(source, v, reason)
	}
	if w.rs.hops > 0 {
		if w.seen == w.rs.hops {
			return a, true, nil
		}
	} else if !w.rs.trusted.Contains(a) {
		return a, true, nil
	}
	if w.seen >= MaxHops {
		return netip.Addr{}, true, resolveErr(source, "", "more than "+itoa(MaxHops)+" trusted hops")
	}
	return netip.Addr{}, false, nil
}

// end is the error for a walk that ran out of values.
func (w *walker) end(source string) error {
	switch {
	case w.seen == 0:
		return resolveErr(source, "", "missing from a trusted proxy")
	case w.rs.hops > 0:
		return resolveErr(source, "", "fewer values than the "+itoa(w.rs.hops)+" trusted hops")
	}
	return resolveErr(source, "", "every address is a trusted proxy")
}

func (rs *Resolver) walkXFF(lines []string) (netip.Addr, error) {
	const source = "X-Forwarded-For"
	w := walker{rs: rs}
	for i := len(lines) - 1; i >= 0; i-- {
		s := lines[i]
		for {
			j := strings.LastIndexByte(s, ',')
			if a, done, err := w.step(source, s[j+1:]); done {
				return a, err
			}
			if j < 0 {
				break
			}
			s = s[:j]
		}
	}
	return netip.Addr{}, w.end(source)
}

// parseNode reads one forwarded address (see Resolver). It returns the
// address, or a reason why v is not one.
func parseNode(v string) (netip.Addr, string) {
	s := strings.Trim(v, " \t")
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	if s == "" {
		return netip.Addr{}, "empty"
	}
	if s[0] == '_' || strings.EqualFold(s, "unknown") {
		return netip.Addr{}, "obfuscated or unknown"
	}
	if strings.IndexByte(s, '%') >= 0 {
		return netip.Addr{}, "zone not allowed"
	}
	host := s
	if s[0] == '[' {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return netip.Addr{}, "unbalanced bracket"
		}
		host = s[1:end]
		if rest := s[end+1:]; rest != "" {
			if rest[0] != ':' || !validPort(rest[1:]) {
				return netip.Addr{}, "bad port"
			}
		}
		if strings.IndexByte(host, ':') < 0 {
			return netip.Addr{}, "brackets around a non-IPv6 address"
		}
	} else if i := strings.IndexByte(s, ':'); i >= 0 && strings.IndexByte(s[i+1:], ':') < 0 {
		// One colon: IPv4 with a port. (IPv6 has at least two.)
		host = s[:i]
		if !validPort(s[i+1:]) {
			return netip.Addr{}, "bad port"
		}
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}, "not an IP address"
	}
	a = a.Unmap()
	if a.IsUnspecified() {
		return netip.Addr{}, "unspecified address"
	}
	return a, ""
}

// validPort reports whether s is a decimal port number, 0 to 65535.
func validPort(s string) bool {
	if s == "" || len(s) > 5 {
		return false
	}
	n := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < '0' || c > '9' {
			return false
		}
		n = n*10 + int(c-'0')
	}
	return n <= 65535
}
