package ipfilter

import (
	"cmp"
	"encoding/binary"
	"math"
	"net/netip"
	"slices"
)

// Set is a compiled allow-list: an immutable set of IPv4 and IPv6
// prefixes. Build one with ParseList. A Set is safe for concurrent use
// and never changes; a new list is a new Set, swapped in whole (see
// Filter).
//
// Internally the prefixes are merged into sorted, disjoint address
// ranges, one array per family, searched by binary search: Contains
// costs O(log n) and allocates nothing. (bench_test.go compares this
// with github.com/gaissmai/bart; see the package documentation.)
//
// The nil *Set is an empty Set.
type Set struct {
	prefixes []netip.Prefix // canonical, in the order given
	v4       []span4        // sorted by lo, disjoint, not adjacent
	v6       []span6        // likewise
}

type span4 struct{ lo, hi uint32 }

// u128 is an IPv6 address as a number.
type u128 struct{ hi, lo uint64 }

func (a u128) less(b u128) bool { return a.hi < b.hi || a.hi == b.hi && a.lo < b.lo }

func (a u128) cmp(b u128) int {
	if c := cmp.Compare(a.hi, b.hi); c != 0 {
		return c
	}
	return cmp.Compare(a.lo, b.lo)
}

// next returns a+1 and whether it did not overflow.
func (a u128) next() (u128, bool) {
	if a.lo != math.MaxUint64 {
		return u128{a.hi, a.lo + 1}, true
	}
	if a.hi != math.MaxUint64 {
		return u128{a.hi + 1, 0}, true
	}
	return u128{}, false
}

type span6 struct{ lo, hi u128 }

func u128Of(a netip.Addr) u128 {
	b := a.As16()
	return u128{binary.BigEndian.Uint64(b[:8]), binary.BigEndian.Uint64(b[8:])}
}

// hostMask returns the host bits of an IPv6 prefix of length bits.
func hostMask(bits int) u128 {
	switch {
	case bits <= 0:
		return u128{math.MaxUint64, math.MaxUint64}
	case bits < 64:
		return u128{math.MaxUint64 >> bits, math.MaxUint64}
	case bits < 128:
		return u128{0, math.MaxUint64 >> (bits - 64)}
	}
	return u128{}
}

// compile builds a Set from prefixes that normalize has accepted
// (masked, unmapped, valid). It keeps prefixes.
func compile(prefixes []netip.Prefix) *Set {
	s := &Set{prefixes: prefixes}
	for _, p := range prefixes {
		a := p.Addr()
		if a.Is4() {
			b := a.As4()
			lo := binary.BigEndian.Uint32(b[:])
			hi := lo | uint32(uint64(math.MaxUint32)>>p.Bits())
			s.v4 = append(s.v4, span4{lo, hi})
		} else {
			lo, m := u128Of(a), hostMask(p.Bits())
			s.v6 = append(s.v6, span6{lo, u128{lo.hi | m.hi, lo.lo | m.lo}})
		}
	}
	slices.SortFunc(s.v4, func(a, b span4) int { return cmp.Compare(a.lo, b.lo) })
	merged4 := s.v4[:0]
	for _, r := range s.v4 {
		if n := len(merged4); n > 0 && (merged4[n-1].hi == math.MaxUint32 || r.lo <= merged4[n-1].hi+1) {
			merged4[n-1].hi = max(merged4[n-1].hi, r.hi)
			continue
		}
		merged4 = append(merged4, r)
	}
	s.v4 = slices.Clip(merged4)
	slices.SortFunc(s.v6, func(a, b span6) int { return a.lo.cmp(b.lo) })
	merged6 := s.v6[:0]
	for _, r := range s.v6 {
		if n := len(merged6); n > 0 {
			last := &merged6[n-1]
			if next, ok := last.hi.next(); !ok || !next.less(r.lo) {
				if last.hi.less(r.hi) {
					last.hi = r.hi
				}
				continue
			}
		}
		merged6 = append(merged6, r)
	}
	s.v6 = slices.Clip(merged6)
	return s
}

// Contains reports whether a is inside one of the prefixes of s.
//
// An IPv4-mapped IPv6 address (::ffff:203.0.113.5) is unmapped first and
// matched as IPv4; a zone is ignored. NAT64 (64:ff9b::/96), 6to4
// (2002::/16) and IPv4-compatible (::a.b.c.d) addresses are IPv6
// addresses and are not matched by IPv4 prefixes. The zero Addr is in no
// Set. Contains allocates nothing.
func (s *Set) Contains(a netip.Addr) bool {
	if s == nil {
		return false
	}
	a = a.Unmap()
	if a.Is4() {
		b := a.As4()
		return contains4(s.v4, binary.BigEndian.Uint32(b[:]))
	}
	if a.Is6() {
		return contains6(s.v6, u128Of(a))
	}
	return false
}

// contains4 finds the last span starting at or before x by a binary
// search without early exit (the compiler turns the step into a
// conditional move), then checks its end.
func contains4(spans []span4, x uint32) bool {
	n := len(spans)
	if n == 0 {
		return false
	}
	base := 0
	for n > 1 {
		half := n / 2
		if spans[base+half].lo <= x {
			base += half
		}
		n -= half
	}
	r := spans[base]
	return r.lo <= x && x <= r.hi
}

func contains6(spans []span6, x u128) bool {
	n := len(spans)
	if n == 0 {
		return false
	}
	base := 0
	for n > 1 {
		half := n / 2
		if !x.less(spans[base+half].lo) {
			base += half
		}
		n -= half
	}
	r := spans[base]
	return !x.less(r.lo) && !r.hi.less(x)
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
