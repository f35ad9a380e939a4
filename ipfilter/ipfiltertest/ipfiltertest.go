// Package ipfiltertest checks that an allow-list store keeps the contract
// of ipfilter.Store. Every backend's tests call Run and RunConcurrent:
//
//	func TestIPLists(t *testing.T) {
//		ipfiltertest.Run(t, func(t *testing.T) ipfilter.Store { return memstore.NewIPLists() })
//	}
//	func TestIPListsConcurrent(t *testing.T) {
//		ipfiltertest.RunConcurrent(t, func(t *testing.T) ipfilter.Store { return memstore.NewIPLists() })
//	}
//
// Each sentence of the ipfilter.Store doc comment has a named subtest.
// Every subtest asks newStore for a fresh, empty store and needs nothing
// else from it. The store holds no times, so the suite never needs the
// clock. A nil and an empty Entries are equivalent.
package ipfiltertest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/guardhq/guard/ipfilter"
)

// Run runs the conformance tests of ipfilter.Store against the stores
// that newStore returns, one fresh empty store per subtest.
func Run(t *testing.T, newStore func(t *testing.T) ipfilter.Store) {
	t.Helper()
	for _, g := range []struct {
		name  string
		tests []test
	}{
		{"Lists", listsTests},
		{"Version", versionTests},
		{"Replace", replaceTests},
		{"Store", storeTests},
	} {
		t.Run(g.name, func(t *testing.T) {
			for _, tc := range g.tests {
				t.Run(tc.name, func(t *testing.T) {
					tc.run(t, &checker{t: t, st: newStore(t)})
				})
			}
		})
	}
}

type test struct {
	name string
	run  func(t *testing.T, c *checker)
}

// Sample canonical entries, as ParseList writes them.
var (
	officeV4 = []string{"203.0.113.0/24", "198.51.100.7", "192.0.2.128/25"}
	officeV6 = []string{"2001:db8::/32", "2001:db8:1::1", "::ffff:0:0/120"}
	keysList = []string{"198.51.100.7", "2001:db8:cafe::/48"}
)

var listsTests = []test{
	{"UnknownTenantIsZero", func(t *testing.T, c *checker) {
		// A tenant never written has the zero Lists, and that is not an error.
		c.wantLists("never-written", ipfilter.Lists{})
	}},
	{"BothScopesAndVersion", func(t *testing.T, c *checker) {
		// Lists returns both scopes of tenant and the tenant's version.
		c.replace("t", ipfilter.Users, ipfilter.Rules{Entries: officeV4}, 0)
		c.replace("t", ipfilter.APIKeys, ipfilter.Rules{Entries: keysList, ReportOnly: true}, 1)
		c.wantLists("t", ipfilter.Lists{
			Version: 2,
			Users:   ipfilter.Rules{Entries: officeV4},
			APIKeys: ipfilter.Rules{Entries: keysList, ReportOnly: true},
		})
	}},
	{"EntriesBelongToCaller", func(t *testing.T, c *checker) {
		// The returned Entries belong to the caller.
		c.replace("t", ipfilter.Users, ipfilter.Rules{Entries: officeV4}, 0)
		l := c.lists("t")
		for i := range l.Users.Entries {
			l.Users.Entries[i] = "10.9.9.9"
		}
		c.wantLists("t", ipfilter.Lists{Version: 1, Users: ipfilter.Rules{Entries: officeV4}})
	}},
}

var versionTests = []test{
	{"UnknownTenantIsZero", func(t *testing.T, c *checker) {
		// Version returns 0 for a tenant never written.
		c.wantVersion("never-written", 0)
	}},
	{"AsListsWould", func(t *testing.T, c *checker) {
		// Version returns tenant's version, as Lists would.
		for i := range 5 {
			c.replace("t", ipfilter.Scopes[i%2], ipfilter.Rules{Entries: officeV4[:i%3]}, uint64(i))
			c.wantVersion("t", uint64(i+1))
			if l := c.lists("t"); l.Version != uint64(i+1) {
				t.Errorf("Lists.Version = %d after %d changes", l.Version, i+1)
			}
		}
	}},
}

var replaceTests = []test{
	{"SetsOneScope", func(t *testing.T, c *checker) {
		// Replace sets the rules of one scope of tenant to r.
		c.replace("t", ipfilter.APIKeys, ipfilter.Rules{Entries: keysList, ReportOnly: true}, 0)
		c.wantLists("t", ipfilter.Lists{Version: 1, APIKeys: ipfilter.Rules{Entries: keysList, ReportOnly: true}})
		c.replace("t", ipfilter.APIKeys, ipfilter.Rules{Entries: officeV6}, 1)
		c.wantLists("t", ipfilter.Lists{Version: 2, APIKeys: ipfilter.Rules{Entries: officeV6}})
	}},
	{"EntriesVerbatimInOrder", func(t *testing.T, c *checker) {
		// Entries verbatim and in the given order: no sorting, no
		// rewriting of "198.51.100.7" to "198.51.100.7/32", of
		// "::ffff:0:0/120" to an IPv4 form, or of case.
		entries := []string{"2001:db8:1::1", "203.0.113.0/24", "::ffff:0:0/120", "198.51.100.7", "10.0.0.0/8", "2001:db8::/32", "1.2.3.4", "fe80::/10"}
		c.replace("t", ipfilter.Users, ipfilter.Rules{Entries: entries}, 0)
		c.wantLists("t", ipfilter.Lists{Version: 1, Users: ipfilter.Rules{Entries: entries}})
		reversed := slices.Clone(entries)
		slices.Reverse(reversed)
		c.replace("t", ipfilter.Users, ipfilter.Rules{Entries: reversed}, 1)
		c.wantLists("t", ipfilter.Lists{Version: 2, Users: ipfilter.Rules{Entries: reversed}})
	}},
	{"EmptyClears", func(t *testing.T, c *checker) {
		// Setting empty rules clears the scope (and still counts as a change).
		c.replace("t", ipfilter.Users, ipfilter.Rules{Entries: officeV4, ReportOnly: true}, 0)
		c.replace("t", ipfilter.Users, ipfilter.Rules{}, 1)
		c.wantLists("t", ipfilter.Lists{Version: 2})
		c.replace("t", ipfilter.Users, ipfilter.Rules{Entries: []string{}}, 2)
		c.wantLists("t", ipfilter.Lists{Version: 3})
	}},
	{"ReportOnlyKept", func(t *testing.T, c *checker) {
		c.replace("t", ipfilter.Users, ipfilter.Rules{Entries: officeV4, ReportOnly: true}, 0)
		c.wantLists("t", ipfilter.Lists{Version: 1, Users: ipfilter.Rules{Entries: officeV4, ReportOnly: true}})
		c.replace("t", ipfilter.Users, ipfilter.Rules{Entries: officeV4}, 1)
		c.wantLists("t", ipfilter.Lists{Version: 2, Users: ipfilter.Rules{Entries: officeV4}})
	}},
	{"IncrementsVersionByOne", func(t *testing.T, c *checker) {
		// ... increments the tenant's version by one, even when nothing
		// changes.
		for i := range uint64(4) {
			c.replace("t", ipfilter.Users, ipfilter.Rules{Entries: officeV4}, i)
			c.wantVersion("t", i+1)
		}
	}},
	{"ReturnsNewVersion", func(t *testing.T, c *checker) {
		// It returns the new version, prev+1.
		for i := range uint64(3) {
			if v := c.replace("t", ipfilter.Scopes[i%2], ipfilter.Rules{Entries: keysList}, i); v != i+1 {
				t.Errorf("Replace(prev %d) returned version %d, want %d", i, v, i+1)
			}
		}
	}},
	{"ConflictChangesNothing", func(t *testing.T, c *checker) {
		// If the version is not prev, it returns ErrConflict and changes
		// nothing.
		c.replaceErr("new", ipfilter.Users, ipfilter.Rules{Entries: officeV4}, 1, ipfilter.ErrConflict)
		c.wantLists("new", ipfilter.Lists{})
		c.replace("t", ipfilter.Users, ipfilter.Rules{Entries: officeV4}, 0)
		c.replace("t", ipfilter.APIKeys, ipfilter.Rules{Entries: keysList}, 1)
		want := ipfilter.Lists{Version: 2, Users: ipfilter.Rules{Entries: officeV4}, APIKeys: ipfilter.Rules{Entries: keysList}}
		for _, prev := range []uint64{0, 1, 3, 1 << 40} {
			for _, s := range ipfilter.Scopes {
				c.replaceErr("t", s, ipfilter.Rules{Entries: officeV6, ReportOnly: true}, prev, ipfilter.ErrConflict)
			}
		}
		c.wantLists("t", want)
		c.wantVersion("t", 2)
	}},
	{"OtherScopeLeftAlone", func(t *testing.T, c *checker) {
		// The other scope is left alone.
		c.replace("t", ipfilter.Users, ipfilter.Rules{Entries: officeV4, ReportOnly: true}, 0)
		c.replace("t", ipfilter.APIKeys, ipfilter.Rules{Entries: keysList}, 1)
		c.replace("t", ipfilter.APIKeys, ipfilter.Rules{Entries: officeV6}, 2)
		c.wantLists("t", ipfilter.Lists{Version: 3,
			Users:   ipfilter.Rules{Entries: officeV4, ReportOnly: true},
			APIKeys: ipfilter.Rules{Entries: officeV6}})
		c.replace("t", ipfilter.Users, ipfilter.Rules{}, 3)
		c.wantLists("t", ipfilter.Lists{Version: 4, APIKeys: ipfilter.Rules{Entries: officeV6}})
	}},
	{"EntriesNotRetained", func(t *testing.T, c *checker) {
		// r.Entries is not retained.
		entries := slices.Clone(officeV4)
		c.replace("t", ipfilter.Users, ipfilter.Rules{Entries: entries}, 0)
		for i := range entries {
			entries[i] = "10.9.9.9"
		}
		c.wantLists("t", ipfilter.Lists{Version: 1, Users: ipfilter.Rules{Entries: officeV4}})
	}},
}

var storeTests = []test{
	{"TenantsIsolated", func(t *testing.T, c *checker) {
		// Tenants never see each other's lists, including tenants whose
		// names are prefixes of one another or contain separators.
		tenants := []string{"a", "a:b", "a:", "ab", "A", "tenant-ü", "a/b", "a b"}
		for i, tn := range tenants {
			c.replace(tn, ipfilter.Scopes[i%2], ipfilter.Rules{Entries: []string{fmt.Sprintf("10.0.0.%d", i)}}, 0)
			for range i % 3 {
				v := c.version(tn)
				c.replace(tn, ipfilter.Scopes[i%2], ipfilter.Rules{Entries: []string{fmt.Sprintf("10.0.0.%d", i)}}, v)
			}
		}
		for i, tn := range tenants {
			var want ipfilter.Lists
			want.Version = uint64(1 + i%3)
			r := ipfilter.Rules{Entries: []string{fmt.Sprintf("10.0.0.%d", i)}}
			if ipfilter.Scopes[i%2] == ipfilter.Users {
				want.Users = r
			} else {
				want.APIKeys = r
			}
			c.wantLists(tn, want)
			c.wantVersion(tn, want.Version)
		}
		c.wantLists("b", ipfilter.Lists{})
	}},
	{"OpaqueEntries", func(t *testing.T, c *checker) {
		// Entries are opaque strings to a store. (Callers pass canonical
		// entries; the store must not depend on that.)
		odd := []string{"not-an-ip", "", "1.2.3.4/32", "2001:DB8::/32", "'; DROP TABLE x; --", "\x00\n\t", "ü"}
		c.replace("t", ipfilter.Users, ipfilter.Rules{Entries: odd}, 0)
		c.wantLists("t", ipfilter.Lists{Version: 1, Users: ipfilter.Rules{Entries: odd}})
	}},
	{"HoldsMaxEntries", func(t *testing.T, c *checker) {
		// A scope holds at least DefaultMaxEntries entries.
		big := make([]string, ipfilter.DefaultMaxEntries)
		for i := range big {
			if i%2 == 0 {
				big[i] = entry(i)
			} else {
				big[i] = fmt.Sprintf("2001:db8:%x:%x::/64", i>>16, i&0xffff)
			}
		}
		c.replace("t", ipfilter.Users, ipfilter.Rules{Entries: big}, 0)
		c.replace("t", ipfilter.APIKeys, ipfilter.Rules{Entries: big[:10]}, 1)
		c.wantLists("t", ipfilter.Lists{Version: 2, Users: ipfilter.Rules{Entries: big}, APIKeys: ipfilter.Rules{Entries: big[:10]}})
	}},
}

// RunConcurrent checks the atomicity sentences of ipfilter.Store under
// concurrent callers. Run it with -race.
func RunConcurrent(t *testing.T, newStore func(t *testing.T) ipfilter.Store) {
	t.Helper()
	t.Run("ReplaceOnlyIfPrev", func(t *testing.T) {
		// Of N writers racing from the same prev, exactly one wins; the
		// others get ErrConflict and change nothing.
		st := newStore(t)
		const n = 50
		wins := make([]bool, n)
		parallel(n, func(i int) {
			_, err := st.Replace(t.Context(), "t", ipfilter.Users, ipfilter.Rules{Entries: []string{entry(i)}}, 0)
			switch {
			case err == nil:
				wins[i] = true
			case !errors.Is(err, ipfilter.ErrConflict):
				t.Errorf("Replace %d: %v, want nil or ErrConflict", i, err)
			}
		})
		winner := slices.Index(wins, true)
		if winner < 0 || slices.Index(wins[winner+1:], true) >= 0 {
			t.Fatalf("%d writers succeeded, want exactly 1", count(wins))
		}
		c := &checker{t: t, st: st}
		c.wantLists("t", ipfilter.Lists{Version: 1, Users: ipfilter.Rules{Entries: []string{entry(winner)}}})
	})
	t.Run("IncrementsWithoutLoss", func(t *testing.T) {
		// Writers retrying on ErrConflict each get a distinct version, and
		// the final version counts every successful Replace.
		st := newStore(t)
		const n, each = 8, 25
		got := make([][]uint64, n)
		parallel(n, func(i int) {
			for j := 0; j < each; {
				v, err := st.Version(t.Context(), "t")
				if err != nil {
					t.Errorf("Version: %v", err)
					return
				}
				nv, err := st.Replace(t.Context(), "t", ipfilter.Scopes[i%2], ipfilter.Rules{Entries: []string{entry(i), entry(j)}}, v)
				if errors.Is(err, ipfilter.ErrConflict) {
					continue
				}
				if err != nil {
					t.Errorf("Replace: %v", err)
					return
				}
				if nv != v+1 {
					t.Errorf("Replace(prev %d) returned %d", v, nv)
				}
				got[i] = append(got[i], nv)
				j++
			}
		})
		all := slices.Concat(got...)
		slices.Sort(all)
		for k, v := range all {
			if v != uint64(k+1) {
				t.Fatalf("versions returned %v..., want 1..%d each once", all[:min(len(all), k+2)], n*each)
			}
		}
		if v, _ := st.Version(t.Context(), "t"); v != n*each {
			t.Errorf("final version %d, want %d", v, n*each)
		}
	})
	t.Run("ListsAtomic", func(t *testing.T) {
		// Lists never returns the rules of one version with the number of
		// another: the writer stores, at version v, the entry naming v in
		// one scope and v's successor count in the other.
		st := newStore(t)
		const writes = 300
		var wg sync.WaitGroup
		wg.Add(1)
		done := make(chan struct{})
		go func() {
			defer wg.Done()
			defer close(done)
			for v := range uint64(writes) {
				s := ipfilter.Scopes[v%2]
				if _, err := st.Replace(t.Context(), "t", s, ipfilter.Rules{Entries: []string{entry(int(v + 1))}, ReportOnly: v%4 < 2}, v); err != nil {
					t.Errorf("Replace(prev %d): %v", v, err)
					return
				}
			}
		}()
		parallel(4, func(int) {
			for {
				select {
				case <-done:
					return
				default:
				}
				l, err := st.Lists(t.Context(), "t")
				if err != nil {
					t.Errorf("Lists: %v", err)
					return
				}
				if want := expectAt(l.Version); !equalLists(l, want) {
					t.Errorf("Lists returned %s, want %s", show(l), show(want))
					return
				}
			}
		})
		wg.Wait()
	})
}

// expectAt is the state of the ListsAtomic tenant at version v: the
// change to version k (from 1) set scope Scopes[(k-1)%2] to entry(k),
// report-only when (k-1)%4 < 2.
func expectAt(v uint64) ipfilter.Lists {
	l := ipfilter.Lists{Version: v}
	for k := uint64(1); k <= v; k++ {
		r := ipfilter.Rules{Entries: []string{entry(int(k))}, ReportOnly: (k-1)%4 < 2}
		if (k-1)%2 == 0 {
			l.Users = r
		} else {
			l.APIKeys = r
		}
	}
	return l
}

func entry(i int) string { return fmt.Sprintf("10.%d.%d.%d", i>>16&255, i>>8&255, i&255) }

func count(b []bool) (n int) {
	for _, x := range b {
		if x {
			n++
		}
	}
	return n
}

func parallel(n int, f func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			f(i)
		}()
	}
	close(start)
	wg.Wait()
}

type checker struct {
	t  *testing.T
	st ipfilter.Store
}

func (c *checker) replace(tenant string, s ipfilter.Scope, r ipfilter.Rules, prev uint64) uint64 {
	c.t.Helper()
	v, err := c.st.Replace(c.t.Context(), tenant, s, r, prev)
	if err != nil {
		c.t.Fatalf("Replace(%q, %s, prev %d): %v", tenant, s, prev, err)
	}
	return v
}

func (c *checker) replaceErr(tenant string, s ipfilter.Scope, r ipfilter.Rules, prev uint64, want error) {
	c.t.Helper()
	v, err := c.st.Replace(c.t.Context(), tenant, s, r, prev)
	if !errors.Is(err, want) {
		c.t.Errorf("Replace(%q, %s, prev %d) = %d, %v; want %v", tenant, s, prev, v, err, want)
	}
}

func (c *checker) lists(tenant string) ipfilter.Lists {
	c.t.Helper()
	l, err := c.st.Lists(c.t.Context(), tenant)
	if err != nil {
		c.t.Fatalf("Lists(%q): %v", tenant, err)
	}
	return l
}

func (c *checker) version(tenant string) uint64 {
	c.t.Helper()
	v, err := c.st.Version(c.t.Context(), tenant)
	if err != nil {
		c.t.Fatalf("Version(%q): %v", tenant, err)
	}
	return v
}

func (c *checker) wantLists(tenant string, want ipfilter.Lists) {
	c.t.Helper()
	if got := c.lists(tenant); !equalLists(got, want) {
		c.t.Errorf("Lists(%q) = %s, want %s", tenant, show(got), show(want))
	}
}

func (c *checker) wantVersion(tenant string, want uint64) {
	c.t.Helper()
	if got := c.version(tenant); got != want {
		c.t.Errorf("Version(%q) = %d, want %d", tenant, got, want)
	}
}

func equalLists(a, b ipfilter.Lists) bool {
	return a.Version == b.Version && equalRules(a.Users, b.Users) && equalRules(a.APIKeys, b.APIKeys)
}

// equalRules treats nil and empty Entries alike.
func equalRules(a, b ipfilter.Rules) bool {
	return a.ReportOnly == b.ReportOnly && slices.Equal(a.Entries, b.Entries)
}

// show prints l briefly: long lists by length.
func show(l ipfilter.Lists) string {
	r := func(r ipfilter.Rules) string {
		s := fmt.Sprintf("%q", r.Entries)
		if len(r.Entries) > 10 {
			s = fmt.Sprintf("[%d entries %q…]", len(r.Entries), r.Entries[:3])
		}
		if r.ReportOnly {
			s += " report-only"
		}
		return s
	}
	return fmt.Sprintf("{v%d users %s api_keys %s}", l.Version, r(l.Users), r(l.APIKeys))
}
