package memstore_test

import (
	"context"
	"fmt"
	"net/netip"
	"testing"

	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/ipfilter/ipfiltertest"
	"github.com/guardhq/guard/store/memstore"
)

func newIPLists(*testing.T) ipfilter.Store { return memstore.NewIPLists() }

func TestIPLists(t *testing.T) { ipfiltertest.Run(t, newIPLists) }

func TestIPListsConcurrent(t *testing.T) { ipfiltertest.RunConcurrent(t, newIPLists) }

func TestIPListsVersionAllocatesNothing(t *testing.T) {
	s := memstore.NewIPLists()
	ctx := context.Background()
	if _, err := s.Replace(ctx, "acme", ipfilter.Users, ipfilter.Rules{Entries: []string{"203.0.113.0/24"}}, 0); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _, _ = s.Version(ctx, "acme") }); n != 0 {
		t.Errorf("Version allocates %v times", n)
	}
}

// BenchmarkIPListsCheck is the facade's per-request allow-list check on
// memstore: ipfilter.Filter.Check with 1,000 prefixes in the tenant's
// Users list (version read, cache hit, match).
func BenchmarkIPListsCheck(b *testing.B) {
	ctx := context.Background()
	s := memstore.NewIPLists()
	f, err := ipfilter.New(ipfilter.Config{Store: s})
	if err != nil {
		b.Fatal(err)
	}
	entries := make([]string, 1000)
	for i := range entries {
		entries[i] = fmt.Sprintf("10.%d.%d.0/24", i>>8, i&255)
	}
	if _, err := f.Replace(ctx, ipfilter.Change{Tenant: "acme", Scope: ipfilter.Users, Entries: entries, NoLockoutCheck: true}); err != nil {
		b.Fatal(err)
	}
	addrs := []netip.Addr{netip.MustParseAddr("10.1.2.3"), netip.MustParseAddr("203.0.113.5")}
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			if _, err := f.Check(ctx, "acme", ipfilter.Users, addrs[i&1]); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			i := 0
			for pb.Next() {
				if _, err := f.Check(ctx, "acme", ipfilter.Users, addrs[i&1]); err != nil {
					b.Error(err)
					return
				}
				i++
			}
		})
	})
}
