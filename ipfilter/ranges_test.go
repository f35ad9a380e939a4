package ipfilter

// The alternative to bart measured by BenchmarkContains: the prefixes
// merged into sorted, disjoint address ranges, one array per family,
// searched by binary search. It is also a second, independent
// implementation that TestSetMatchesRanges checks Set against.

import (
	"cmp"
	"encoding/binary"
	"math"
	"net/netip"
	"slices"
)

// rangeSet is the sorted-range matcher.
type rangeSet struct {
	v4 []span4 // sorted by lo, disjoint, not adjacent
	v6 []span6 // likewise
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

// compileRanges builds a rangeSet from masked, unmapped prefixes.
func compileRanges(prefixes []netip.Prefix) *rangeSet {
	s := &rangeSet{}
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

// contains is Set.Contains for a rangeSet.
func (s *rangeSet) contains(a netip.Addr) bool {
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
