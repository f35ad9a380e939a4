package rbac

import "math/bits"

// pmap is a persistent hash map (a hash array mapped trie): set and del
// return a new map that shares all but the changed path with the old one,
// which stays valid and unchanged. Lookups take no lock and allocate
// nothing, so an immutable decision table can hold a large map and still
// be updated in O(log n) when one subject's grants change.
//
// A node has 64 slots, each an entry or a child node. A child's header
// (its bitmaps and its slot array) is kept inside the parent's slot, so a
// lookup touches one slot array per level: three levels for 100,000 keys.
//
// The caller supplies each key's 64-bit hash. Keys whose hashes collide
// completely live in a collision node below the last level.
//
// An edit token makes a run of updates cheap: slot arrays created under a
// token are changed in place by later updates under the same token (they
// are not yet visible to anyone else). Use nil for ordinary persistent
// updates, and a fresh token per batch whose result is published only
// when the batch is done.
type pmap[K comparable, V any] struct {
	root pnode[K, V]
	n    int
}

// pnode is a node's header: which slots hold entries and which hold
// children, and the slots, in slot order.
type pnode[K comparable, V any] struct {
	edit  *edit // the batch that owns slots, if any
	data  uint64
	kids  uint64
	slots []pslot[K, V]
}

// pslot is an entry (hash, key, val) or a child node.
type pslot[K comparable, V any] struct {
	hash  uint64
	key   K
	val   V
	child pnode[K, V]
}

// edit is a batch token; it has a size so that tokens are distinct.
type edit struct{ _ byte }

const (
	pbits    = 6
	pmask    = 1<<pbits - 1
	maxShift = 64 // at or beyond: a collision node, entries only, unordered
)

func slot(h uint64, shift uint) uint64 { return 1 << ((h >> shift) & pmask) }

// pos is the position in slots of the slot bit.
func (n *pnode[K, V]) pos(bit uint64) int { return bits.OnesCount64((n.data | n.kids) & (bit - 1)) }

// Len returns the number of entries.
func (m pmap[K, V]) Len() int { return m.n }

// get returns the value of k, whose hash is h.
func (m *pmap[K, V]) get(h uint64, k K) (V, bool) {
	n := &m.root
	for shift := uint(0); ; shift += pbits {
		if shift >= maxShift {
			for i := range n.slots {
				if n.slots[i].key == k {
					return n.slots[i].val, true
				}
			}
			break
		}
		bit := slot(h, shift)
		if (n.data|n.kids)&bit == 0 {
			break
		}
		s := &n.slots[n.pos(bit)]
		if n.data&bit != 0 {
			if s.hash == h && s.key == k {
				return s.val, true
			}
			break
		}
		n = &s.child
	}
	var zero V
	return zero, false
}

// set returns m with k (hash h) mapped to v.
func (m pmap[K, V]) set(ed *edit, h uint64, k K, v V) pmap[K, V] {
	if m.root.set(ed, 0, h, k, v) {
		m.n++
	}
	return m
}

// del returns m without k (hash h).
func (m pmap[K, V]) del(ed *edit, h uint64, k K) pmap[K, V] {
	if m.root.del(ed, 0, h, k) {
		m.n--
	}
	return m
}

// each calls f for every entry until f returns false, in no particular
// order.
func (m pmap[K, V]) each(f func(K, V) bool) { m.root.each(f, 0) }

func (n *pnode[K, V]) each(f func(K, V) bool, shift uint) bool {
	if shift >= maxShift {
		for i := range n.slots {
			if !f(n.slots[i].key, n.slots[i].val) {
				return false
			}
		}
		return true
	}
	occupied := n.data | n.kids
	for i := range n.slots {
		bit := occupied & -occupied
		occupied &^= bit
		s := &n.slots[i]
		if n.data&bit != 0 {
			if !f(s.key, s.val) {
				return false
			}
		} else if !s.child.each(f, shift+pbits) {
			return false
		}
	}
	return true
}

// own makes n's slot array belong to ed, copying it unless it already
// does. The header n itself is always the caller's copy.
func (n *pnode[K, V]) own(ed *edit) {
	if ed != nil && n.edit == ed {
		return
	}
	n.slots = append([]pslot[K, V](nil), n.slots...)
	n.edit = ed
}

// set maps k to v in the subtree n (a header the caller owns, possibly a
// copy) and reports whether k is new.
func (n *pnode[K, V]) set(ed *edit, shift uint, h uint64, k K, v V) bool {
	if shift >= maxShift {
		n.own(ed)
		for i := range n.slots {
			if n.slots[i].key == k {
				n.slots[i].val = v
				return false
			}
		}
		n.slots = append(n.slots, pslot[K, V]{hash: h, key: k, val: v})
		return true
	}
	bit := slot(h, shift)
	i := n.pos(bit)
	switch {
	case n.data&bit != 0:
		n.own(ed)
		s := &n.slots[i]
		if s.hash == h && s.key == k {
			s.val = v
			return false
		}
		// Push both entries one level down into a new child.
		var child pnode[K, V]
		child.edit = ed
		child.set(ed, shift+pbits, s.hash, s.key, s.val)
		child.set(ed, shift+pbits, h, k, v)
		*s = pslot[K, V]{child: child}
		n.data &^= bit
		n.kids |= bit
		return true
	case n.kids&bit != 0:
		n.own(ed)
		return n.slots[i].child.set(ed, shift+pbits, h, k, v)
	default:
		n.own(ed)
		n.slots = append(n.slots, pslot[K, V]{})
		copy(n.slots[i+1:], n.slots[i:])
		n.slots[i] = pslot[K, V]{hash: h, key: k, val: v}
		n.data |= bit
		return true
	}
}

// del removes k from the subtree n (a header the caller owns) and reports
// whether it was there. A child left with a single entry and no children
// is folded into its parent's slot, so the trie stays as shallow as its
// contents need.
func (n *pnode[K, V]) del(ed *edit, shift uint, h uint64, k K) bool {
	if shift >= maxShift {
		for i := range n.slots {
			if n.slots[i].key == k {
				n.own(ed)
				n.slots = append(n.slots[:i], n.slots[i+1:]...)
				return true
			}
		}
		return false
	}
	bit := slot(h, shift)
	i := n.pos(bit)
	switch {
	case n.data&bit != 0:
		if s := &n.slots[i]; s.hash != h || s.key != k {
			return false
		}
		n.own(ed)
		n.slots = append(n.slots[:i], n.slots[i+1:]...)
		n.data &^= bit
		return true
	case n.kids&bit != 0:
		child := n.slots[i].child // a copy of the header: the original is shared
		if !child.del(ed, shift+pbits, h, k) {
			return false
		}
		n.own(ed)
		switch {
		case len(child.slots) == 0:
			n.slots = append(n.slots[:i], n.slots[i+1:]...)
			n.kids &^= bit
		case len(child.slots) == 1 && (child.kids == 0 || shift+pbits >= maxShift):
			// One entry left (a collision node's entries have no kids bits).
			e := child.slots[0]
			n.slots[i] = pslot[K, V]{hash: e.hash, key: e.key, val: e.val}
			n.kids &^= bit
			n.data |= bit
		default:
			n.slots[i].child = child
		}
		return true
	}
	return false
}
