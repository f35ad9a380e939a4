package rbac

import "math/bits"

// pmap is a persistent hash map (a hash array mapped trie): set and del
// return a new map that shares all but the changed path with the old one,
// which stays valid and unchanged. Lookups take no lock and allocate
// nothing, so an immutable decision table can hold a large map and still
// be updated in O(log n) when one subject's grants change.
//
// The caller supplies each key's 64-bit hash. Keys whose hashes collide
// completely live in a collision node below the last level.
//
// An edit token makes a run of updates cheap: nodes created under a token
// are changed in place by later updates under the same token (they are
// not yet visible to anyone else). Use nil for ordinary persistent
// updates, and a fresh token per batch whose result is published only
// when the batch is done.
type pmap[K comparable, V any] struct {
	root *pnode[K, V]
	n    int
}

type pnode[K comparable, V any] struct {
	edit    *edit
	dataMap uint32 // slots holding an entry
	nodeMap uint32 // slots holding a child node
	entries []pentry[K, V]
	nodes   []*pnode[K, V]
}

type pentry[K comparable, V any] struct {
	hash uint64
	key  K
	val  V
}

// edit is a batch token; it has a size so that tokens are distinct.
type edit struct{ _ byte }

const (
	pbits    = 5
	pmask    = 1<<pbits - 1
	maxShift = 64 // at or beyond: a collision node, entries only
)

func slot(h uint64, shift uint) uint32 { return 1 << ((h >> shift) & pmask) }

func index(bitmap, bit uint32) int { return bits.OnesCount32(bitmap & (bit - 1)) }

// Len returns the number of entries.
func (m pmap[K, V]) Len() int { return m.n }

// get returns the value of k, whose hash is h.
func (m pmap[K, V]) get(h uint64, k K) (V, bool) {
	n := m.root
	for shift := uint(0); n != nil; shift += pbits {
		if shift >= maxShift {
			for i := range n.entries {
				if n.entries[i].key == k {
					return n.entries[i].val, true
				}
			}
			break
		}
		bit := slot(h, shift)
		if n.dataMap&bit != 0 {
			e := &n.entries[index(n.dataMap, bit)]
			if e.hash == h && e.key == k {
				return e.val, true
			}
			break
		}
		if n.nodeMap&bit == 0 {
			break
		}
		n = n.nodes[index(n.nodeMap, bit)]
	}
	var zero V
	return zero, false
}

// set returns m with k (hash h) mapped to v.
func (m pmap[K, V]) set(ed *edit, h uint64, k K, v V) pmap[K, V] {
	root := m.root
	if root == nil {
		root = &pnode[K, V]{edit: ed}
	}
	nr, added := root.set(ed, 0, pentry[K, V]{h, k, v})
	if added {
		m.n++
	}
	m.root = nr
	return m
}

// del returns m without k (hash h).
func (m pmap[K, V]) del(ed *edit, h uint64, k K) pmap[K, V] {
	if m.root == nil {
		return m
	}
	nr, removed := m.root.del(ed, 0, h, k)
	if removed {
		m.n--
		m.root = nr
	}
	return m
}

// each calls f for every entry until f returns false, in no particular
// order.
func (m pmap[K, V]) each(f func(K, V) bool) {
	if m.root != nil {
		m.root.each(f)
	}
}

func (n *pnode[K, V]) each(f func(K, V) bool) bool {
	for i := range n.entries {
		if !f(n.entries[i].key, n.entries[i].val) {
			return false
		}
	}
	for _, c := range n.nodes {
		if !c.each(f) {
			return false
		}
	}
	return true
}

// writable returns n itself if it belongs to ed, or a copy that does.
func (n *pnode[K, V]) writable(ed *edit) *pnode[K, V] {
	if ed != nil && n.edit == ed {
		return n
	}
	return &pnode[K, V]{
		edit:    ed,
		dataMap: n.dataMap,
		nodeMap: n.nodeMap,
		entries: append([]pentry[K, V](nil), n.entries...),
		nodes:   append([]*pnode[K, V](nil), n.nodes...),
	}
}

func (n *pnode[K, V]) set(ed *edit, shift uint, e pentry[K, V]) (*pnode[K, V], bool) {
	if shift >= maxShift {
		for i := range n.entries {
			if n.entries[i].key == e.key {
				w := n.writable(ed)
				w.entries[i] = e
				return w, false
			}
		}
		w := n.writable(ed)
		w.entries = append(w.entries, e)
		return w, true
	}
	bit := slot(e.hash, shift)
	switch {
	case n.dataMap&bit != 0:
		i := index(n.dataMap, bit)
		old := n.entries[i]
		w := n.writable(ed)
		if old.hash == e.hash && old.key == e.key {
			w.entries[i] = e
			return w, false
		}
		// Push both entries one level down.
		child := merge(ed, shift+pbits, old, e)
		w.entries = append(w.entries[:i], w.entries[i+1:]...)
		w.dataMap &^= bit
		j := index(w.nodeMap, bit)
		w.nodes = append(w.nodes, nil)
		copy(w.nodes[j+1:], w.nodes[j:])
		w.nodes[j] = child
		w.nodeMap |= bit
		return w, true
	case n.nodeMap&bit != 0:
		j := index(n.nodeMap, bit)
		child, added := n.nodes[j].set(ed, shift+pbits, e)
		if child == n.nodes[j] {
			return n, added
		}
		w := n.writable(ed)
		w.nodes[j] = child
		return w, added
	default:
		w := n.writable(ed)
		i := index(w.dataMap, bit)
		w.entries = append(w.entries, pentry[K, V]{})
		copy(w.entries[i+1:], w.entries[i:])
		w.entries[i] = e
		w.dataMap |= bit
		return w, true
	}
}

// merge returns a node at shift holding a and b, whose keys differ.
func merge[K comparable, V any](ed *edit, shift uint, a, b pentry[K, V]) *pnode[K, V] {
	if shift >= maxShift {
		return &pnode[K, V]{edit: ed, entries: []pentry[K, V]{a, b}}
	}
	ba, bb := slot(a.hash, shift), slot(b.hash, shift)
	if ba == bb {
		return &pnode[K, V]{edit: ed, nodeMap: ba, nodes: []*pnode[K, V]{merge(ed, shift+pbits, a, b)}}
	}
	if index(ba|bb, ba) > 0 {
		a, b = b, a
	}
	return &pnode[K, V]{edit: ed, dataMap: ba | bb, entries: []pentry[K, V]{a, b}}
}

// del returns n without k; removed reports whether k was there. A node
// left with a single entry and no children is folded into its parent, so
// the trie stays as shallow as its contents need.
func (n *pnode[K, V]) del(ed *edit, shift uint, h uint64, k K) (*pnode[K, V], bool) {
	if shift >= maxShift {
		for i := range n.entries {
			if n.entries[i].key == k {
				w := n.writable(ed)
				w.entries = append(w.entries[:i], w.entries[i+1:]...)
				return w, true
			}
		}
		return n, false
	}
	bit := slot(h, shift)
	switch {
	case n.dataMap&bit != 0:
		i := index(n.dataMap, bit)
		if e := n.entries[i]; e.hash != h || e.key != k {
			return n, false
		}
		w := n.writable(ed)
		w.entries = append(w.entries[:i], w.entries[i+1:]...)
		w.dataMap &^= bit
		return w, true
	case n.nodeMap&bit != 0:
		j := index(n.nodeMap, bit)
		child, removed := n.nodes[j].del(ed, shift+pbits, h, k)
		if !removed {
			return n, false
		}
		w := n.writable(ed)
		switch {
		case len(child.nodes) == 0 && len(child.entries) == 0:
			w.nodes = append(w.nodes[:j], w.nodes[j+1:]...)
			w.nodeMap &^= bit
		case len(child.nodes) == 0 && len(child.entries) == 1:
			// Fold the lone entry into this node's slot.
			w.nodes = append(w.nodes[:j], w.nodes[j+1:]...)
			w.nodeMap &^= bit
			i := index(w.dataMap, bit)
			w.entries = append(w.entries, pentry[K, V]{})
			copy(w.entries[i+1:], w.entries[i:])
			w.entries[i] = child.entries[0]
			w.dataMap |= bit
		default:
			w.nodes[j] = child
		}
		return w, true
	}
	return n, false
}
