package ipfilter

import (
	"errors"
	"fmt"
	"strconv"
)

// Sentinels. Compare with errors.Is: the typed errors below wrap them.
var (
	// ErrSyntax: an allow-list entry or trusted-proxy prefix that is not an
	// IP address or CIDR prefix in the strict form ParsePrefix accepts
	// (empty, too long, leading zeros, hex or octal, trailing dot, bad
	// mask, stray characters).
	ErrSyntax = errors.New("ipfilter: not an IP address or CIDR prefix")
	// ErrZone: an entry carries an IPv6 zone ("fe80::1%eth0"); zones are
	// local to one host and never belong in an allow-list.
	ErrZone = errors.New("ipfilter: IPv6 zone not allowed")
	// ErrMatchesAll: an entry matches every address of its family
	// (0.0.0.0/0, ::/0) and the caller did not set ParseOptions.AllowAll
	// (or Change.AllowAll). The message speaks to the administrator who
	// typed the entry: to let every address in, clear the list (an empty
	// list restricts nothing).
	ErrMatchesAll = errors.New("ipfilter: entry matches every address; to allow every address, leave the list empty")
	// ErrUnspecified: an entry is an unspecified address (0.0.0.0, ::,
	// with or without /32 or /128), which no client ever has: the entry
	// would match nothing. It is usually "any" written as in a bind
	// address; an empty list is what allows every address.
	ErrUnspecified = errors.New("ipfilter: entry is an unspecified address, which matches no client; to allow every address, leave the list empty")
	// ErrMappedRange: an IPv6 entry shorter than /96 that covers the
	// IPv4-mapped range ::ffff:0:0/96 (for example ::/64). Clients are
	// unmapped before matching, so such an entry would silently not match
	// the IPv4 clients it seems to cover; write IPv4 ranges in IPv4 form.
	ErrMappedRange = errors.New("ipfilter: IPv6 entry covers the IPv4-mapped range; write IPv4 ranges in IPv4 form")
	// ErrTooManyEntries: a list longer than the limit (ParseOptions.MaxEntries).
	ErrTooManyEntries = errors.New("ipfilter: too many entries")

	// ErrUnidentified: the client IP of a request cannot be determined
	// (unparsable peer address; from a trusted proxy: no forwarding
	// header, an invalid value where the client should be, only trusted
	// addresses, fewer hops than configured). Every *ResolveError wraps
	// it. The request must be denied.
	ErrUnidentified = errors.New("ipfilter: client IP cannot be identified")

	// ErrSelfLockout: Filter.Replace refused a list that would block the
	// administrator's own address (Change.AdminIP). Nothing was changed.
	ErrSelfLockout = errors.New("ipfilter: the new list would lock out the administrator making the change")
	// ErrConflict: the tenant's lists changed since the version the
	// change was based on (another administrator, another replica).
	// Nothing was changed; read the lists again and retry.
	ErrConflict = errors.New("ipfilter: allow-lists changed concurrently")
	// ErrCorrupt: a stored list could not be compiled (an entry that is
	// not valid any more, or that was written around Filter.Replace).
	// Check fails closed with an error wrapping it and a *ParseError.
	ErrCorrupt = errors.New("ipfilter: stored allow-list is invalid")
)

// maxEcho bounds how much of an offending value an error repeats.
const maxEcho = 64

// echo returns s quoted (so control characters cannot forge log lines)
// and cut to maxEcho bytes.
func echo(s string) string {
	if len(s) > maxEcho {
		return strconv.Quote(s[:maxEcho]) + "…"
	}
	return strconv.Quote(s)
}

// ParseError reports an allow-list entry or trusted-proxy prefix that
// cannot be used. IP addresses are not secrets, so the entry is kept (cut
// to MaxEntryLen bytes) and shown quoted. Err is one of ErrSyntax,
// ErrZone, ErrMatchesAll, ErrUnspecified or ErrMappedRange; Unwrap
// returns it.
type ParseError struct {
	// Index is the position of the entry in the list given to ParseList
	// (from 0), or -1 for ParsePrefix. The message counts from 1, as a
	// person reading a list does ("entry 1" is Index 0).
	Index int
	// Entry is the offending entry as given, cut to MaxEntryLen bytes.
	Entry string
	// Err is the rule that was broken.
	Err error
	// Detail says more about a syntax error ("leading zero", "mask out
	// of range"), possibly empty.
	Detail string
}

func (e *ParseError) Error() string {
	s := "ipfilter: "
	if e.Index >= 0 {
		s += "entry " + strconv.Itoa(e.Index+1) + " "
	}
	s += echo(e.Entry) + ": " + trimPrefix(e.Err.Error())
	if e.Detail != "" {
		s += " (" + e.Detail + ")"
	}
	return s
}

func (e *ParseError) Unwrap() error { return e.Err }

// trimPrefix drops the "ipfilter: " of a sentinel's message.
func trimPrefix(s string) string {
	const p = "ipfilter: "
	if len(s) >= len(p) && s[:len(p)] == p {
		return s[len(p):]
	}
	return s
}

// ResolveError reports why the client IP of a request cannot be
// determined. It wraps ErrUnidentified. Value is the offending value (not
// a secret), cut and quoted in Error; it may be attacker-chosen, so log it
// escaped and labelled as untrusted.
type ResolveError struct {
	// Source is where the value came from: "RemoteAddr",
	// "X-Forwarded-For" or "Forwarded".
	Source string
	// Value is the offending value, cut to 64 bytes ("" when missing).
	Value string
	// Reason says what is wrong with it.
	Reason string
}

func (e *ResolveError) Error() string {
	s := "ipfilter: client IP cannot be identified: " + e.Source
	if e.Value != "" {
		s += " value " + echo(e.Value)
	}
	return s + ": " + e.Reason
}

func (e *ResolveError) Unwrap() error { return ErrUnidentified }

// ConfigError reports an unacceptable Config or ResolverConfig field.
type ConfigError struct {
	Field, Reason string
}

func (e *ConfigError) Error() string { return "ipfilter: invalid config " + e.Field + ": " + e.Reason }

// InputError reports an unacceptable argument (a tenant, a scope, a
// Change field). It names the field and does not echo its value.
type InputError struct {
	Field, Reason string
}

func (e *InputError) Error() string { return "ipfilter: invalid " + e.Field + ": " + e.Reason }

// tooMany is the error for a list of n entries above max.
func tooMany(n, max int) error {
	return fmt.Errorf("%w: %d, at most %d", ErrTooManyEntries, n, max)
}
