package ipfilter

import (
	"net/netip"
	"slices"

	"github.com/gaissmai/bart"
)

// Set is a compiled allow-list: an immutable set of IPv4 and IPv6
// prefixes. Build one with ParseList. A Set is safe for concurrent use
// and never changes; a new list is a new Set, swapped in whole (see
// Filter).
//
// The prefixes are held in a bart.Lite (github.com/gaissmai/bart), a
// multibit trie with 8-bit strides: Contains visits at most 4 nodes for
// IPv4 and 16 for IPv6, whatever the length of the list, and allocates
// nothing. (bench_test.go measures it against sorted ranges searched by
// binary search; see the package documentation.)
//
// The nil *Set is an empty Set.
type Set struct {
	prefixes []netip.Prefix // canonical, in the order given
	table    *bart.Lite     // read-only once built
}

// compile builds a Set from prefixes that normalize has accepted
// (masked, unmapped, valid). It keeps prefixes.
func compile(prefixes []netip.Prefix) *Set {
	t := new(bart.Lite)
	for _, p := range prefixes {
		t.Insert(p)
	}
	return &Set{prefixes: prefixes, table: t}
}

// Contains reports whether a is inside one of the prefixes of s.
//
// An IPv4-mapped IPv6 address (::ffff:203.0.113.5) is unmapped first and
// matched as IPv4; a zone is ignored. NAT64 (64:ff9b::/96), 6to4
// (2002::/16) and IPv4-compatible (::a.b.c.d) addresses are IPv6
// addresses and are not matched by IPv4 prefixes. The zero Addr is in no
// Set. Contains allocates nothing.
func (s *Set) Contains(a netip.Addr) bool {
	if s == nil || !a.IsValid() {
		return false
	}
	return s.table.Contains(a.Unmap())
}

// Len returns the number of prefixes in s (after duplicates were dropped).
func (s *Set) Len() int {
	if s == nil {
		return 0
	}
	return len(s.prefixes)
}

// Empty reports whether s has no prefix. An empty allow-list restricts
// nothing: Rule.Check allows every address.
func (s *Set) Empty() bool { return s.Len() == 0 }

// Prefixes returns the canonical prefixes of s in the order they were
// given, without duplicates. The slice is a copy.
func (s *Set) Prefixes() []netip.Prefix {
	if s == nil {
		return nil
	}
	return slices.Clone(s.prefixes)
}

// Entries returns the canonical text of each prefix (see Canonical), in
// order: what a store should keep.
func (s *Set) Entries() []string {
	if s.Len() == 0 {
		return nil
	}
	out := make([]string, len(s.prefixes))
	for i, p := range s.prefixes {
		out[i] = Canonical(p)
	}
	return out
}

// WouldLockOut reports whether enforcing s would deny admin: s is not
// empty and does not contain admin. An invalid admin address is locked
// out by every non-empty list.
func WouldLockOut(s *Set, admin netip.Addr) bool {
	return !s.Empty() && !s.Contains(admin)
}
