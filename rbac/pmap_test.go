package rbac

import (
	"fmt"
	"math/rand/v2"
	"testing"
)

// TestPmapMatchesMap runs random sets and deletes against a Go map, with
// hash functions from good to fully colliding, with and without batch
// tokens, and checks that older versions never change.
func TestPmapMatchesMap(t *testing.T) {
	hashes := map[string]func(int) uint64{
		"Mixed":         func(k int) uint64 { return uint64(k) * 0x9e3779b97f4a7c15 },
		"LowBitsOnly":   func(k int) uint64 { return uint64(k % 64) },
		"TopBitsOnly":   func(k int) uint64 { return uint64(k%16) << 60 },
		"FullCollision": func(int) uint64 { return 42 },
		"PairsCollide":  func(k int) uint64 { return uint64(k/2) * 0x9e3779b97f4a7c15 },
	}
	for name, hash := range hashes {
		for _, batched := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/batched=%v", name, batched), func(t *testing.T) {
				rng := rand.New(rand.NewPCG(3, 4))
				var m pmap[int, string]
				ref := map[int]string{}
				type snap struct {
					m   pmap[int, string]
					ref map[int]string
				}
				var snaps []snap
				var ed *edit
				for step := range 3000 {
					if batched && step%50 == 0 {
						ed = new(edit) // a new batch: earlier nodes are frozen
						snaps = append(snaps, snap{m, clone(ref)})
					} else if !batched && step%100 == 0 {
						snaps = append(snaps, snap{m, clone(ref)})
					}
					k := rng.IntN(300)
					if rng.IntN(3) == 0 {
						m = m.del(ed, hash(k), k)
						delete(ref, k)
					} else {
						v := fmt.Sprint(step)
						m = m.set(ed, hash(k), k, v)
						ref[k] = v
					}
				}
				check := func(m pmap[int, string], ref map[int]string) {
					t.Helper()
					if m.Len() != len(ref) {
						t.Fatalf("Len = %d, want %d", m.Len(), len(ref))
					}
					for k := range 300 {
						v, ok := m.get(hash(k), k)
						w, wok := ref[k]
						if ok != wok || v != w {
							t.Fatalf("get(%d) = %q, %v; want %q, %v", k, v, ok, w, wok)
						}
					}
					n := 0
					m.each(func(k int, v string) bool {
						n++
						if ref[k] != v {
							t.Fatalf("each: %d = %q, want %q", k, v, ref[k])
						}
						return true
					})
					if n != len(ref) {
						t.Fatalf("each visited %d entries, want %d", n, len(ref))
					}
				}
				check(m, ref)
				// Snapshots taken between batches are unchanged.
				for _, s := range snaps {
					check(s.m, s.ref)
				}
			})
		}
	}
}

func clone(m map[int]string) map[int]string {
	c := make(map[int]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

func TestPmapEachStops(t *testing.T) {
	var m pmap[int, int]
	for i := range 100 {
		m = m.set(nil, uint64(i)*0x9e3779b97f4a7c15, i, i)
	}
	n := 0
	m.each(func(int, int) bool { n++; return n < 10 })
	if n != 10 {
		t.Errorf("each visited %d entries after being told to stop at 10", n)
	}
}
