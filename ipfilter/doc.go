// Package ipfilter restricts where a tenant's users and API keys may
// connect from: per-tenant allow-lists of IPv4 and IPv6 addresses and
// CIDR ranges, checked at sign-in and on every request, and the client-IP
// resolution that decides which address to check.
//
// # What is inside
//
//   - Resolver (NewResolver) finds a request's client IP: the
//     connection's peer, or, when the peer is one of your trusted proxies,
//     the rightmost untrusted address of X-Forwarded-For (or RFC 7239
//     Forwarded). An address it cannot establish is an error, never a
//     guess.
//   - ParsePrefix and ParseList read allow-list entries strictly and
//     compile them into a Set, an immutable matcher whose Contains
//     allocates nothing. Warnings tell the administrator what was
//     normalised. SplitList cuts typed text into entries.
//   - Filter (New) is what the facade uses on every request: Check looks
//     a client up in a tenant's compiled lists, kept in memory and
//     refreshed when the tenant's version in the Store moves. Replace
//     validates and stores a new list, refusing one that would lock out
//     the administrator making it (ErrSelfLockout, WouldLockOut).
//   - Store is the storage contract: each tenant's two lists (Scope Users
//     and APIKeys) and a version, replaced atomically. store/memstore
//     implements it; package ipfiltertest is the conformance suite every
//     backend runs.
//
// # Scopes, empty lists and report-only mode
//
// Each tenant has one list for people (Users) and one for API keys
// (APIKeys); they are independent. An empty list restricts nothing
// (Decision Unrestricted). A list in report-only mode lets every request
// through but reports those it would have refused (WouldDeny), so that a
// list can be rolled out safely. The facade decides what to do with each
// Decision: refuse Denied, log WouldDeny, audit both (ip.denied with the
// resolved client IP).
//
// # Parsing rules
//
// Entries are IPv4 or IPv6 addresses or CIDR prefixes, trimmed of
// surrounding blanks. Leading zeros, octal and hex forms, short forms,
// trailing dots, ports, brackets, quotes and zones are refused. Host bits
// are cleared, with a Warning (203.0.113.77/24 becomes 203.0.113.0/24).
// IPv4-mapped IPv6 entries are rewritten in IPv4 form; IPv6 prefixes
// shorter than /96 that cover the mapped range are refused. 0.0.0.0/0 and
// ::/0 are refused unless ParseOptions.AllowAll (an empty list is how to
// allow every address), and so are the unspecified addresses 0.0.0.0 and
// ::, which no client has (ErrUnspecified). A list holds at most
// DefaultMaxEntries entries by default, each at most MaxEntryLen bytes.
//
// Clients are unmapped (::ffff:203.0.113.5 is 203.0.113.5) before
// matching. NAT64 (64:ff9b::/96), 6to4 (2002::/16) and IPv4-compatible
// (::a.b.c.d) addresses are IPv6 addresses like any other: an IPv4 entry
// does not match them, even when the IPv4 address embedded in them is
// inside it.
//
// # Client IP
//
// See Resolver for the exact rules. In short: a forwarding header is
// believed only from a trusted proxy; its values, over every header line,
// are read right to left, skipping trusted proxies; an invalid value where
// the client should be, a missing header, or a list made only of proxies
// makes the request unidentified (ErrUnidentified), which must be denied.
// Deny on error is also the rule for a request whose peer address cannot
// be parsed.
//
// # Matching structure
//
// A Set keeps its prefixes in a bart.Lite from github.com/gaissmai/bart,
// a multibit trie with 8-bit strides and popcount-compressed nodes:
// Contains costs at most 4 node visits for IPv4 and 16 for IPv6,
// independent of the list length, and allocates nothing. BenchmarkContains
// compares it with the alternative, sorted disjoint ranges searched by
// binary search (ranges_test.go), at 1,000 and 100,000 prefixes: the trie
// was 2 to 3 times faster on this machine for IPv4 and mixed lists, at
// about 3 times the memory (some 7 MB against 2 MB for 100,000 prefixes;
// under 1 KB for a list of ten).
//
// # Concurrency
//
// Set, Policy and Resolver are immutable and safe for concurrent use.
// Filter is safe for concurrent use: each tenant's compiled lists sit
// behind an atomic pointer and are replaced whole, both scopes at once,
// so a request never sees a half-updated list. By default Check reads the
// tenant's version from the Store on every call, so a change made on any
// replica is in force on the next request; Config.MaxStale relaxes this
// for stores that answer over the network.
//
// # Writing a backend
//
// Implement Store so that Replace is one conditional write (compare the
// version, write the scope, increment the version) and Version is one
// cheap indexed read: Filter calls it on every request. Run
// ipfiltertest.Run and RunConcurrent in the backend's tests.
//
// # Errors
//
// Compare errors with errors.Is and errors.As:
//
//   - *ParseError (wrapping ErrSyntax, ErrZone, ErrMatchesAll,
//     ErrUnspecified or ErrMappedRange) and ErrTooManyEntries: a bad
//     allow-list. The error names the entry (IP addresses are not
//     secrets); show it to the administrator.
//   - ErrUnidentified, as a *ResolveError: the client IP of a request
//     cannot be established. Deny the request; the Value it carries came
//     from the request and is untrusted.
//   - ErrSelfLockout: Replace refused a list that would block the
//     administrator's own address.
//   - ErrConflict: the lists changed since the version a Change was based
//     on. Reload and retry.
//   - ErrCorrupt: a stored list does not compile; Check denies.
//   - *ConfigError: New or NewResolver was given an unacceptable config.
//   - *InputError: an empty tenant, an invalid scope, a missing AdminIP.
//
// Any other error from Filter wraps a Store failure. Check then returns
// Denied: deny the request (fail closed).
package ipfilter
