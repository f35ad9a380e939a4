package guard

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/rbac"
)

// ClientAddr resolves the client IP of r: the connection's peer, unless
// the peer is one of Config.Proxies' trusted proxies, and then the
// rightmost untrusted X-Forwarded-For address (see ipfilter.Resolver). An
// error means the client cannot be identified: deny the request.
func (g *Guard) ClientAddr(r *http.Request) (netip.Addr, error) {
	return g.resolver.ClientIP(r)
}

// UnidentifiedIP is what ClientIP returns for a request whose client IP
// cannot be identified (ClientAddr's error: a trusted proxy sent a
// garbled X-Forwarded-For, say). It is not an address, so it matches no
// allow-list, and every per-IP limit (login throttling and its CAPTCHA,
// reset links, one-time codes, SSO starts) counts all such requests in
// one shared bucket. An empty IP would skip those limits, which are meant
// for callers with no network client at all.
const UnidentifiedIP = "unidentified"

// ClientIP returns the resolved client IP of r as a string, for the IP of
// a LoginRequest, ForgotRequest and the like, or UnidentifiedIP when it
// cannot be identified (see ClientAddr). It never returns "".
func (g *Guard) ClientIP(r *http.Request) string {
	a, err := g.resolver.ClientIP(r)
	if err != nil {
		return UnidentifiedIP
	}
	return a.String()
}

// checkIP applies tenant's allow-list for scope to a client address. A
// denial is recorded (ip.denied, with the resolved address) and returned
// as ErrIPNotAllowed; a report-only list records the would-be denial and
// lets the request through. Store failures deny.
func (g *Guard) checkIP(ctx context.Context, tenant string, scope ipfilter.Scope, addr netip.Addr, actor audit.Actor, ua string) error {
	return g.applyIPList(ctx, tenant, scope, addr, actor, ua, nil)
}

// applyIPList is checkIP, except that a denial is recorded by recordIfDue,
// when not nil, in place of the record (ipRecordIfDue, keyRefusalRecord:
// only if due; a refusal not due is returned all the same, without a
// record); an error from recordIfDue is returned.
func (g *Guard) applyIPList(ctx context.Context, tenant string, scope ipfilter.Scope, addr netip.Addr, actor audit.Actor, ua string, recordIfDue func(audit.Event) error) error {
	if g.ipf == nil {
		return nil
	}
	pol, err := g.ipf.Policy(ctx, tenant)
	var d ipfilter.Decision
	if err == nil {
		d = pol.Check(scope, addr)
		if !addr.IsValid() && pol.Rule(scope).Set.Empty() {
			// No address (a login that did not come over a network) and
			// no list: nothing to enforce.
			d = ipfilter.Unrestricted
		}
	}
	if err != nil {
		if errors.Is(err, ErrTenantNotFound) {
			return ErrTenantNotFound
		}
		return unavailable("ip allow-list", err)
	}
	switch d {
	case ipfilter.Allowed, ipfilter.Unrestricted:
		return nil
	}
	e := audit.Event{Tenant: tenant, Actor: actor, Action: audit.IPDenied, Target: scope.String(),
		IP: addrString(addr), UserAgent: clip(ua, 512), Outcome: audit.Failure, Reason: "not_in_allow_list"}
	if d == ipfilter.WouldDeny {
		e.Outcome, e.Reason = audit.Success, "report_only"
		// A report-only list is checked on every request of a session:
		// its would-be denials are recorded once a minute for each
		// actor and address, not once a request.
		return g.ipRecordIfDue(ctx, e)
	}
	if recordIfDue == nil {
		recordIfDue = func(e audit.Event) error { return g.record(ctx, e) }
	}
	return cmp.Or(recordIfDue(e), ErrIPNotAllowed)
}

// ipRecordIfDue records e, an ip.denied event, if it is due: the first of
// its kind (tenant, scope, actor, client, reason) in a minute is
// (recordIfDue), so that a session refused, or let through by a
// report-only list, at each of its requests does not write an event per
// request. The client is its address, an IPv6 one's Config.IPv6Prefix
// (throttleIP), so that stepping through its block does not either; the
// event keeps the exact address. A record that fails does not count: the
// next of its kind is due. A store failure is ErrUnavailable.
func (g *Guard) ipRecordIfDue(ctx context.Context, e audit.Event) error {
	k := sha256.Sum256([]byte(strings.Join([]string{e.Tenant, e.Target, string(e.Actor.Kind), e.Actor.ID, g.throttleIP(e.IP), e.Reason}, "\x00")))
	return g.recordIfDue(ctx, "ip-denied:"+hex.EncodeToString(k[:16]), g.now(), refusalRecordLimit, e)
}

// checkIPString is checkIP for an address given as text (LoginRequest.IP),
// taken as givenAddr takes one. An empty or unparsable address, or an
// unspecified one (0.0.0.0, ::), is a client that cannot be identified:
// denied when the tenant has a list.
func (g *Guard) checkIPString(ctx context.Context, tenant string, scope ipfilter.Scope, ip string, actor audit.Actor, ua string) error {
	if g.ipf == nil {
		return nil
	}
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		addr = netip.Addr{} // an invalid address matches no list
	}
	return g.checkIP(ctx, tenant, scope, givenAddr(addr), actor, ua)
}

// givenAddr is the client address a host that is not net/http gives
// (AuthenticateFrom, AuthenticateAPIKey), taken as AuthenticateRequest
// resolves a request's: an IPv4-mapped address as the IPv4 address it
// holds, without a zone, and the unspecified addresses (0.0.0.0, ::),
// which no client has, as the zero Addr: a client that cannot be
// identified.
func givenAddr(a netip.Addr) netip.Addr {
	if a = a.Unmap().WithZone(""); a.IsUnspecified() {
		return netip.Addr{}
	}
	return a
}

// throttleIP is the part of a per-IP limit's key that names the client
// at ip (the client IP as the facade has it: text, resolved), so that
// the limit counts a client, not an address: an IPv4 address, or an
// IPv4-mapped IPv6 one, as the IPv4 address; an IPv6 address as its
// prefix of Config.IPv6Prefix bits (a /64 by default, the smallest block
// one subscriber is given), so that a client cannot step through the
// 2^64 addresses of its own block and start afresh at each. Text that is
// not an address (the facade accepts any short text as a client IP) is
// its own key, as it always was; "" stays "" (no client IP: the callers
// skip the limit). Audit events keep the exact address.
func (g *Guard) throttleIP(ip string) string { return throttleIPKey(ip, g.ipv6Bits) }

// throttleIPKey is throttleIP with an IPv6 prefix of bits (0 to 128).
func throttleIPKey(ip string, bits int) string {
	addr, err := netip.ParseAddr(ip)
	if err != nil {
		return ip
	}
	// A zone names the host's own interface, not the client: dropped, as
	// AuthenticateFrom drops it.
	addr = addr.Unmap().WithZone("")
	if addr.Is4() {
		return addr.String()
	}
	p, err := addr.Prefix(bits)
	if err != nil {
		return ip // bits out of range: New allows none
	}
	return p.String()
}

func addrString(a netip.Addr) string {
	if !a.IsValid() {
		return ""
	}
	return a.String()
}

// maxIPBytes is the longest client IP a request may give (LoginRequest.IP
// and the like): room for any address as text, with an IPv6 zone, and
// for UnidentifiedIP.
const maxIPBytes = 64

// checkClientIP validates the client IP a request gives (LoginRequest.IP,
// SecondFactor.IP, SSOResponse.IP, SSOStart.IP and the like): text of at
// most maxIPBytes, as an *InputError for field IP. It does not parse it:
// the host may pass UnidentifiedIP, or a label of its own for a client
// that has no address. Check it before anything is evaluated or counted;
// an event recording the refusal carries the IP clipped to maxIPBytes.
func checkClientIP(ip string) error { return checkText("IP", ip, maxIPBytes) }

// clip makes s, a value from the request or the host, fit an audit
// event: at most n bytes, and valid UTF-8 whatever its length, so that
// audit.Log.Record (which refuses invalid UTF-8) never fails on it. A
// value longer than n is cut and loses its invalid bytes and a character
// cut through at the end; in a shorter one each invalid byte sequence
// becomes U+FFFD.
func clip(s string, n int) string {
	if len(s) > n {
		s = strings.ToValidUTF8(s[:n], "")
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
		if len(s) > n {
			s = strings.ToValidUTF8(s[:n], "")
		}
	}
	return s
}

// IPAllowLists returns a tenant's allow-lists (for people and for API
// keys) and their version, to edit with SetIPAllowList.
func (g *Guard) IPAllowLists(ctx context.Context, by Principal, tenant string) (ipfilter.Lists, error) {
	if err := g.may(ctx, by, tenant, rbac.Settings, rbac.Read); err != nil {
		return ipfilter.Lists{}, err
	}
	if g.ipf == nil {
		return ipfilter.Lists{}, ErrIPListsNotConfigured
	}
	l, err := g.ipf.Lists(ctx, tenant)
	if err != nil {
		return ipfilter.Lists{}, unavailable("ip allow-lists", err)
	}
	return l, nil
}

// IPListChange is a new allow-list for one scope of a tenant.
type IPListChange struct {
	Scope ipfilter.Scope // ipfilter.Users or ipfilter.APIKeys
	// Entries are IPs and CIDR ranges, IPv4 or IPv6 (see ipfilter.ParseList
	// for the strict rules). Empty lifts the restriction.
	Entries []string
	// ReportOnly records would-be denials without blocking, for rollout:
	// ip.denied with reason report_only, once a minute for each actor and
	// address (the list is checked at every request of a session).
	ReportOnly bool
	// Version is the version read with IPAllowLists (ErrConflict if it
	// moved).
	Version uint64
}

// SetIPAllowList replaces one of a tenant's allow-lists. It needs a recent
// authentication. A list of people that would shut out the administrator
// making the change (their current IP, by.Addr) is refused with
// ipfilter.ErrSelfLockout unless it is report-only; a malformed entry is an
// *ipfilter.ParseError naming it. The change is in force on the next
// request on every replica, or within milliseconds on one that keeps
// versions in memory (pgstore's Watch; see "Concurrency" in the package
// doc).
//
// A change that cannot be recorded in the audit log does not stand: the
// scope's previous list is put back (a new version), and ErrUnavailable
// returned. If that fails (a store failure, or another change made
// meanwhile, which is not overwritten), ErrUnavailable is returned too and
// the new list stays, unrecorded.
//
// Without an allow-list store (Stores.IPLists, or, ring-fenced, in the
// tenant's stores: TenantOpener) it is ErrIPListsNotConfigured.
func (g *Guard) SetIPAllowList(ctx context.Context, by Principal, tenant string, c IPListChange) (ipfilter.Applied, error) {
	if err := g.may(ctx, by, tenant, rbac.Settings, rbac.Manage); err != nil {
		return ipfilter.Applied{}, err
	}
	if g.ipf == nil {
		return ipfilter.Applied{}, ErrIPListsNotConfigured
	}
	if err := g.requireRecentAuth(ctx, by, rbac.Settings, rbac.Manage); err != nil {
		return ipfilter.Applied{}, err
	}
	if _, err := g.EffectivePolicy(ctx, tenant); err != nil {
		return ipfilter.Applied{}, err
	}
	// The list replaced, to put back if the change cannot be recorded.
	prev, err := g.ipf.Lists(ctx, tenant)
	if err != nil {
		return ipfilter.Applied{}, unavailable("ip allow-lists", err)
	}
	if prev.Version != c.Version {
		return ipfilter.Applied{}, ErrConflict
	}
	ch := ipfilter.Change{Tenant: tenant, Scope: c.Scope, Entries: c.Entries, ReportOnly: c.ReportOnly,
		AdminIP: by.Addr, Version: c.Version}
	// The system, and an administrator editing the API-key list, are not
	// subject to the list being changed.
	ch.NoLockoutCheck = by.Kind != KindUser || c.Scope != ipfilter.Users
	ap, err := g.ipf.Replace(ctx, ch)
	if err != nil {
		var pe *ipfilter.ParseError
		var ie *ipfilter.InputError
		switch {
		case errors.As(err, &pe), errors.As(err, &ie), errors.Is(err, ipfilter.ErrSelfLockout),
			errors.Is(err, ipfilter.ErrTooManyEntries):
			return ipfilter.Applied{}, err
		case errors.Is(err, ipfilter.ErrConflict):
			return ipfilter.Applied{}, ErrConflict
		case errors.Is(err, ErrIPListsNotConfigured):
			// Ring-fenced, the tenant's stores have no allow-list store
			// (routedIPLists): answered as on a Guard without one.
			return ipfilter.Applied{}, ErrIPListsNotConfigured
		}
		return ipfilter.Applied{}, unavailable("set ip allow-list", err)
	}
	e := g.adminEvent(by, tenant, audit.IPListChanged, c.Scope.String())
	e.Meta = map[string]string{"version": strconv.FormatUint(ap.Version, 10), "entries": strconv.Itoa(len(ap.Entries)),
		"report_only": strconv.FormatBool(c.ReportOnly)}
	listMeta(e.Meta, "list", ap.Entries, " ")
	if err := g.record(ctx, e); err != nil {
		old := prev.Rules(c.Scope)
		_, _ = g.ipf.Restore(context.WithoutCancel(ctx), tenant, c.Scope, old, ap.Version)
		return ipfilter.Applied{}, err
	}
	return ap, nil
}

// apiKeyIdle is how often a key's LastUsedAt is written at most.
const apiKeyTouchEvery = time.Minute
