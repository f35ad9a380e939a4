package guard

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

type item struct {
	id  string
	val int
}

// TestIDList checks idList against a map: IDs added in order, out of
// order and twice, looked up in ascending order (the review's pass),
// again, backwards and at random, present or not.
func TestIDList(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for _, n := range []int{0, 1, 2, 7, 8, 9, 17, 100, 1000} {
		for _, order := range []string{"sorted", "shuffled", "duplicates"} {
			t.Run(fmt.Sprint(n, order), func(t *testing.T) {
				ids := make([]string, n)
				for i := range ids {
					ids[i] = fmt.Sprintf("u%04d", 2*i+1) // even numbers are absent
				}
				switch order {
				case "shuffled":
					r.Shuffle(n, func(i, j int) { ids[i], ids[j] = ids[j], ids[i] })
				case "duplicates":
					for i := 0; i+1 < n; i += 3 {
						ids[i+1] = ids[i]
					}
				}
				l := idList[item]{id: func(it *item) string { return it.id }}
				want := map[string]int{}
				// Added in batches of 1, 2, 3…
				var batch []item
				for i, id := range ids {
					batch = append(batch, item{id, i})
					want[id] = i
					if len(batch) == len(l.items)%7+1 || i == len(ids)-1 {
						l.addAll(batch)
						batch = nil
					}
				}
				var probes []string
				for i := range 2*n + 2 {
					probes = append(probes, fmt.Sprintf("u%04d", i))
				}
				check := func(what string, ps []string) {
					t.Helper()
					for _, p := range ps {
						if got, w := l.get(p), want[p]; got.val != w || got.val != 0 && got.id != p {
							t.Fatalf("%s: get(%q) = %+v, want %d", what, p, got, w)
						}
					}
				}
				check("ascending", probes)
				check("ascending again", probes)
				check("ascending, every 10th", slices.Collect(func(yield func(string) bool) {
					for i := 0; i < len(probes); i += 10 {
						if !yield(probes[i]) {
							return
						}
					}
				}))
				back := slices.Clone(probes)
				slices.Reverse(back)
				check("descending", back)
				r.Shuffle(len(probes), func(i, j int) { probes[i], probes[j] = probes[j], probes[i] })
				check("random", probes)
				check("absent", []string{"", "a", "u", "v", "u0000x"})
			})
		}
	}
}
