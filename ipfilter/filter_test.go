package ipfilter_test

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guardhq/guard/ipfilter"
)

var (
	office  = netip.MustParseAddr("203.0.113.5")   // user U's office (§8.0)
	keyHost = netip.MustParseAddr("198.51.100.7")  // API key K's host
	outside = netip.MustParseAddr("198.51.100.8")  // neither
	home    = netip.MustParseAddr("2001:db8:1::9") // an IPv6 client
)

func newFilter(t testing.TB, st ipfilter.Store, cfg ipfilter.Config) *ipfilter.Filter {
	t.Helper()
	cfg.Store = st
	f, err := ipfilter.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// replace sets a scope's list through the Filter, checking no lockout.
func replace(t testing.TB, f *ipfilter.Filter, tenant string, s ipfilter.Scope, reportOnly bool, entries ...string) ipfilter.Applied {
	t.Helper()
	l, err := f.Lists(context.Background(), tenant)
	if err != nil {
		t.Fatal(err)
	}
	a, err := f.Replace(context.Background(), ipfilter.Change{Tenant: tenant, Scope: s, Entries: entries, ReportOnly: reportOnly, NoLockoutCheck: true, Version: l.Version})
	if err != nil {
		t.Fatalf("Replace(%s, %q): %v", s, entries, err)
	}
	return a
}

func check(t testing.TB, f *ipfilter.Filter, tenant string, s ipfilter.Scope, a netip.Addr) ipfilter.Decision {
	t.Helper()
	d, err := f.Check(context.Background(), tenant, s, a)
	if err != nil {
		t.Fatalf("Check(%s, %s, %s): %v", tenant, s, a, err)
	}
	return d
}

func TestCheckDecisions(t *testing.T) {
	st := newFake()
	f := newFilter(t, st, ipfilter.Config{})
	// No list: unrestricted.
	if d := check(t, f, "acme", ipfilter.Users, outside); d != ipfilter.Unrestricted || !d.Allows() {
		t.Errorf("no list: %v", d)
	}
	replace(t, f, "acme", ipfilter.Users, false, "203.0.113.0/24", "2001:db8:1::/48")
	replace(t, f, "acme", ipfilter.APIKeys, false, "198.51.100.7/32")
	for _, tc := range []struct {
		scope ipfilter.Scope
		addr  netip.Addr
		want  ipfilter.Decision
	}{
		{ipfilter.Users, office, ipfilter.Allowed},
		{ipfilter.Users, netip.MustParseAddr("::ffff:203.0.113.5"), ipfilter.Allowed},
		{ipfilter.Users, home, ipfilter.Allowed},
		{ipfilter.Users, outside, ipfilter.Denied},
		{ipfilter.Users, keyHost, ipfilter.Denied}, // scopes are separate
		// IP-19.
		{ipfilter.APIKeys, keyHost, ipfilter.Allowed},
		{ipfilter.APIKeys, outside, ipfilter.Denied},
		{ipfilter.APIKeys, office, ipfilter.Denied},
		// IP-15.
		{ipfilter.Users, netip.MustParseAddr("64:ff9b::cb00:7105"), ipfilter.Denied},
		{ipfilter.Users, netip.MustParseAddr("2002:cb00:7105::1"), ipfilter.Denied},
		{ipfilter.Users, netip.MustParseAddr("::cb00:7105"), ipfilter.Denied},
		// An unresolved client is denied.
		{ipfilter.Users, netip.Addr{}, ipfilter.Denied},
	} {
		if d := check(t, f, "acme", tc.scope, tc.addr); d != tc.want || d.Allows() != (tc.want != ipfilter.Denied) {
			t.Errorf("Check(%s, %s) = %v, want %v", tc.scope, tc.addr, d, tc.want)
		}
	}
	// Another tenant is unaffected.
	if d := check(t, f, "globex", ipfilter.Users, outside); d != ipfilter.Unrestricted {
		t.Errorf("other tenant: %v", d)
	}
	// Report-only: would deny, but allows.
	replace(t, f, "acme", ipfilter.Users, true, "203.0.113.0/24")
	if d := check(t, f, "acme", ipfilter.Users, outside); d != ipfilter.WouldDeny || !d.Allows() {
		t.Errorf("report-only outside: %v", d)
	}
	if d := check(t, f, "acme", ipfilter.Users, office); d != ipfilter.Allowed {
		t.Errorf("report-only inside: %v", d)
	}
	if d := check(t, f, "acme", ipfilter.Users, netip.Addr{}); d != ipfilter.WouldDeny {
		t.Errorf("report-only, no address: %v", d)
	}
	if d := check(t, f, "acme", ipfilter.APIKeys, outside); d != ipfilter.Denied {
		t.Errorf("the other scope is still enforced: %v", d)
	}
	// An empty list lifts the restriction, except for an unresolved client.
	replace(t, f, "acme", ipfilter.Users, false)
	if d := check(t, f, "acme", ipfilter.Users, outside); d != ipfilter.Unrestricted {
		t.Errorf("emptied list: %v", d)
	}
	if d := check(t, f, "acme", ipfilter.Users, netip.Addr{}); d != ipfilter.Denied {
		t.Errorf("empty list, no address: %v", d)
	}
}

func TestDecisionString(t *testing.T) {
	for d, s := range map[ipfilter.Decision]string{ipfilter.Denied: "denied", ipfilter.Allowed: "allowed", ipfilter.Unrestricted: "unrestricted", ipfilter.WouldDeny: "would_deny", 9: "Decision(9)"} {
		if d.String() != s {
			t.Errorf("%d.String() = %q", d, d.String())
		}
	}
	var zero ipfilter.Decision
	if zero != ipfilter.Denied || zero.Allows() {
		t.Error("the zero Decision must deny")
	}
	if ipfilter.Users.String() != "users" || ipfilter.APIKeys.String() != "api_keys" || ipfilter.Scope(0).Valid() {
		t.Error("Scope names")
	}
}

func TestCheckInputErrors(t *testing.T) {
	f := newFilter(t, newFake(), ipfilter.Config{})
	var ie *ipfilter.InputError
	if d, err := f.Check(t.Context(), "", ipfilter.Users, office); !errors.As(err, &ie) || d != ipfilter.Denied {
		t.Errorf("empty tenant: %v, %v", d, err)
	}
	for _, s := range []ipfilter.Scope{0, 3, 255} {
		if d, err := f.Check(t.Context(), "acme", s, office); !errors.As(err, &ie) || d != ipfilter.Denied {
			t.Errorf("scope %d: %v, %v", s, d, err)
		}
	}
}

// IP-21: a change is in force on the next request, on this replica and
// on another one sharing the store.
func TestChangeInForceOnNextRequest(t *testing.T) {
	st := newFake()
	a := newFilter(t, st, ipfilter.Config{})
	b := newFilter(t, st, ipfilter.Config{})
	replace(t, a, "acme", ipfilter.Users, false, "203.0.113.0/24", "192.0.2.0/24")
	for _, f := range []*ipfilter.Filter{a, b} {
		if d := check(t, f, "acme", ipfilter.Users, office); d != ipfilter.Allowed {
			t.Fatalf("before: %v", d)
		}
	}
	replace(t, a, "acme", ipfilter.Users, false, "192.0.2.0/24")
	for i, f := range []*ipfilter.Filter{a, b} {
		if d := check(t, f, "acme", ipfilter.Users, office); d != ipfilter.Denied {
			t.Errorf("replica %d after removing 203.0.113.0/24: %v", i, d)
		}
	}
}

func TestCacheLoadsOncePerVersion(t *testing.T) {
	st := newFake()
	f := newFilter(t, st, ipfilter.Config{})
	replace(t, f, "acme", ipfilter.Users, false, "203.0.113.0/24")
	_, loads0 := st.calls()
	for range 100 {
		check(t, f, "acme", ipfilter.Users, office)
		check(t, f, "acme", ipfilter.APIKeys, office)
	}
	versions, loads := st.calls()
	if loads-loads0 != 1 {
		t.Errorf("200 checks loaded the lists %d times, want 1", loads-loads0)
	}
	if versions != 200 {
		t.Errorf("200 checks read the version %d times, want 200", versions)
	}
	replace(t, f, "acme", ipfilter.Users, false, "192.0.2.0/24")
	check(t, f, "acme", ipfilter.Users, office)
	check(t, f, "acme", ipfilter.Users, office)
	if _, l := st.calls(); l-loads != 2 { // one by replace's Lists, one reload
		t.Errorf("after a change: %d loads, want 2", l-loads)
	}
	// A tenant never written (version 0) is unrestricted without a load.
	_, loads = st.calls()
	for i := range 100 {
		if d := check(t, f, fmt.Sprint("new-", i), ipfilter.Users, office); d != ipfilter.Unrestricted {
			t.Fatalf("tenant without lists: %v", d)
		}
	}
	if p, err := f.PolicyAt(t.Context(), "new-0", 0); err != nil || p.Version() != 0 || p.Check(ipfilter.APIKeys, office) != ipfilter.Unrestricted {
		t.Errorf("PolicyAt(version 0) = %v, %v", p, err)
	}
	if _, l := st.calls(); l != loads {
		t.Errorf("tenants without lists caused %d loads", l-loads)
	}
}

func TestStoreErrorsFailClosed(t *testing.T) {
	st := newFake()
	f := newFilter(t, st, ipfilter.Config{})
	replace(t, f, "acme", ipfilter.Users, false, "203.0.113.0/24")
	check(t, f, "acme", ipfilter.Users, office) // cached
	boom := errors.New("database is down")
	st.fail(boom)
	for _, tenant := range []string{"acme", "globex"} { // cached and not
		d, err := f.Check(t.Context(), tenant, ipfilter.Users, office)
		if !errors.Is(err, boom) || d != ipfilter.Denied {
			t.Errorf("%s: Check = %v, %v; want Denied and the store error", tenant, d, err)
		}
	}
	if _, err := f.Replace(t.Context(), ipfilter.Change{Tenant: "acme", Scope: ipfilter.Users, NoLockoutCheck: true, Version: 1}); !errors.Is(err, boom) {
		t.Errorf("Replace: %v", err)
	}
	if _, err := f.Lists(t.Context(), "acme"); !errors.Is(err, boom) {
		t.Errorf("Lists: %v", err)
	}
	st.fail(nil)
	// A failing Lists behind a moved version.
	st2 := &failingLists{fakeStore: newFake(), err: boom}
	st2.put("acme", ipfilter.Lists{Version: 3})
	f2 := newFilter(t, st2, ipfilter.Config{})
	if d, err := f2.Check(t.Context(), "acme", ipfilter.Users, office); !errors.Is(err, boom) || d != ipfilter.Denied {
		t.Errorf("Lists failing: %v, %v", d, err)
	}
}

type failingLists struct {
	*fakeStore
	err error
}

func (s *failingLists) Lists(context.Context, string) (ipfilter.Lists, error) {
	return ipfilter.Lists{}, s.err
}

func TestCorruptListFailsClosed(t *testing.T) {
	st := newFake()
	f := newFilter(t, st, ipfilter.Config{})
	st.put("acme", ipfilter.Lists{Version: 7, Users: ipfilter.Rules{Entries: []string{"203.0.113.0/24", "010.0.0.1"}}})
	for range 3 {
		d, err := f.Check(t.Context(), "acme", ipfilter.APIKeys, office)
		var pe *ipfilter.ParseError
		if !errors.Is(err, ipfilter.ErrCorrupt) || !errors.As(err, &pe) || pe.Index != 1 || d != ipfilter.Denied {
			t.Fatalf("Check = %v, %v; want Denied, ErrCorrupt naming entry 1", d, err)
		}
	}
	if _, loads := st.calls(); loads != 1 {
		t.Errorf("the corrupt version was loaded %d times, want 1 (cached)", loads)
	}
	// Stored entries are compiled leniently otherwise: /0 and host bits
	// were accepted when written.
	st.put("acme", ipfilter.Lists{Version: 8, Users: ipfilter.Rules{Entries: []string{"0.0.0.0/0", "2001:db8::1/64"}}})
	if d := check(t, f, "acme", ipfilter.Users, outside); d != ipfilter.Allowed {
		t.Errorf("after repair: %v", d)
	}
}

func TestReplace(t *testing.T) {
	ctx := context.Background()
	st := newFake()
	f := newFilter(t, st, ipfilter.Config{MaxEntries: 5})
	admin := office
	change := func(c ipfilter.Change) (ipfilter.Applied, error) {
		c.Tenant = "acme"
		if c.Scope == 0 {
			c.Scope = ipfilter.Users
		}
		return f.Replace(ctx, c)
	}
	wantUnchanged := func(v uint64, users []string) {
		t.Helper()
		l, _ := st.Lists(ctx, "acme")
		if l.Version != v || !slices.Equal(l.Users.Entries, users) {
			t.Errorf("store holds v%d %q, want v%d %q", l.Version, l.Users.Entries, v, users)
		}
	}

	a, err := change(ipfilter.Change{Entries: []string{"203.0.113.77/24", " 2001:db8::/32", "::ffff:192.0.2.1"}, AdminIP: admin})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"203.0.113.0/24", "2001:db8::/32", "192.0.2.1"}
	if a.Version != 1 || !slices.Equal(a.Entries, want) || len(a.Warnings) != 2 {
		t.Errorf("Applied = %+v", a)
	}
	wantUnchanged(1, want)

	t.Run("SelfLockout", func(t *testing.T) {
		_, err := change(ipfilter.Change{Entries: []string{"192.0.2.0/24"}, AdminIP: admin, Version: 1})
		if !errors.Is(err, ipfilter.ErrSelfLockout) {
			t.Errorf("err = %v, want ErrSelfLockout", err)
		}
		// A mapped admin address is the same address.
		if _, err := change(ipfilter.Change{Entries: []string{"192.0.2.0/24"}, AdminIP: netip.MustParseAddr("::ffff:203.0.113.5"), Version: 1}); !errors.Is(err, ipfilter.ErrSelfLockout) {
			t.Errorf("mapped admin: err = %v, want ErrSelfLockout", err)
		}
		wantUnchanged(1, want)
	})
	t.Run("MissingAdminIP", func(t *testing.T) {
		for _, ip := range []netip.Addr{{}, netip.IPv4Unspecified(), netip.IPv6Unspecified()} {
			var ie *ipfilter.InputError
			if _, err := change(ipfilter.Change{Entries: []string{"192.0.2.0/24"}, AdminIP: ip, Version: 1}); !errors.As(err, &ie) || ie.Field != "AdminIP" {
				t.Errorf("AdminIP %v: err = %v, want an *InputError for AdminIP", ip, err)
			}
		}
		wantUnchanged(1, want)
	})
	t.Run("BadList", func(t *testing.T) {
		var pe *ipfilter.ParseError
		if _, err := change(ipfilter.Change{Entries: []string{"203.0.113.0/24", "1.2.3.4:80"}, AdminIP: admin, Version: 1}); !errors.As(err, &pe) || pe.Index != 1 {
			t.Errorf("err = %v, want a *ParseError for entry 1", err)
		}
		if _, err := change(ipfilter.Change{Entries: []string{"203.0.113.0/24", "0.0.0.0/0"}, AdminIP: admin, Version: 1}); !errors.Is(err, ipfilter.ErrMatchesAll) {
			t.Errorf("err = %v, want ErrMatchesAll", err)
		}
		if _, err := change(ipfilter.Change{Entries: make([]string, 6), AdminIP: admin, Version: 1}); !errors.Is(err, ipfilter.ErrTooManyEntries) {
			t.Errorf("err = %v, want ErrTooManyEntries (MaxEntries 5)", err)
		}
		wantUnchanged(1, want)
	})
	t.Run("Conflict", func(t *testing.T) {
		if _, err := change(ipfilter.Change{Entries: []string{"203.0.113.5"}, AdminIP: admin, Version: 0}); !errors.Is(err, ipfilter.ErrConflict) {
			t.Errorf("err = %v, want ErrConflict", err)
		}
		wantUnchanged(1, want)
	})
	t.Run("BadInput", func(t *testing.T) {
		var ie *ipfilter.InputError
		if _, err := f.Replace(ctx, ipfilter.Change{Scope: ipfilter.Users, NoLockoutCheck: true, Version: 1}); !errors.As(err, &ie) || ie.Field != "Tenant" {
			t.Errorf("no tenant: %v", err)
		}
		if _, err := f.Replace(ctx, ipfilter.Change{Tenant: "acme", Scope: 7, NoLockoutCheck: true, Version: 1}); !errors.As(err, &ie) || ie.Field != "Scope" {
			t.Errorf("bad scope: %v", err)
		}
		wantUnchanged(1, want)
	})
	t.Run("Allowed", func(t *testing.T) {
		steps := []struct {
			name string
			c    ipfilter.Change
		}{
			{"ReportOnlyMayExcludeAdmin", ipfilter.Change{Entries: []string{"192.0.2.0/24"}, ReportOnly: true, AdminIP: admin}},
			{"EmptyListLocksNobodyOut", ipfilter.Change{AdminIP: admin}},
			{"NoLockoutCheck", ipfilter.Change{Scope: ipfilter.APIKeys, Entries: []string{"198.51.100.7"}, NoLockoutCheck: true}},
			{"AllowAll", ipfilter.Change{Entries: []string{"0.0.0.0/0", "::/0"}, AllowAll: true, AdminIP: admin}},
			{"AdminInside", ipfilter.Change{Entries: []string{"203.0.113.5"}, AdminIP: admin}},
		}
		for i, s := range steps {
			s.c.Version = uint64(1 + i)
			a, err := change(s.c)
			if err != nil || a.Version != uint64(2+i) {
				t.Errorf("%s: %+v, %v", s.name, a, err)
			}
		}
		l, _ := f.Lists(ctx, "acme")
		if !slices.Equal(l.Users.Entries, []string{"203.0.113.5"}) || l.Users.ReportOnly || !slices.Equal(l.APIKeys.Entries, []string{"198.51.100.7"}) {
			t.Errorf("stored %+v", l)
		}
	})
}

func TestMaxStale(t *testing.T) {
	st := newFake()
	var now atomic.Int64
	now.Store(time.Date(2099, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	clock := func() time.Time { return time.Unix(0, now.Load()) }
	a := newFilter(t, st, ipfilter.Config{MaxStale: time.Second, Now: clock})
	b := newFilter(t, st, ipfilter.Config{MaxStale: time.Second, Now: clock})
	replace(t, a, "acme", ipfilter.Users, false, "203.0.113.0/24")
	check(t, a, "acme", ipfilter.Users, office)
	check(t, b, "acme", ipfilter.Users, office)
	v0, _ := st.calls()
	for range 10 {
		check(t, b, "acme", ipfilter.Users, office)
	}
	if v, _ := st.calls(); v != v0 {
		t.Errorf("within MaxStale the version was read %d times", v-v0)
	}
	replace(t, a, "acme", ipfilter.Users, false, "192.0.2.0/24")
	// The replica that made the change sees it at once…
	if d := check(t, a, "acme", ipfilter.Users, office); d != ipfilter.Denied {
		t.Errorf("own change: %v", d)
	}
	// …another within MaxStale.
	if d := check(t, b, "acme", ipfilter.Users, office); d != ipfilter.Allowed {
		t.Errorf("other replica within MaxStale: %v (the test expects the documented staleness)", d)
	}
	now.Add(int64(time.Second))
	if d := check(t, b, "acme", ipfilter.Users, office); d != ipfilter.Denied {
		t.Errorf("other replica after MaxStale: %v", d)
	}
}

func TestPolicyAt(t *testing.T) {
	st := newFake()
	f := newFilter(t, st, ipfilter.Config{})
	replace(t, f, "acme", ipfilter.Users, false, "203.0.113.0/24")
	v0, _ := st.calls()
	p, err := f.PolicyAt(t.Context(), "acme", 1)
	if err != nil || p.Version() != 1 || p.Check(ipfilter.Users, office) != ipfilter.Allowed || p.Check(ipfilter.APIKeys, office) != ipfilter.Unrestricted {
		t.Fatalf("PolicyAt = %+v, %v", p, err)
	}
	if v, _ := st.calls(); v != v0 {
		t.Error("PolicyAt read the version")
	}
	if _, err := f.PolicyAt(t.Context(), "", 1); err == nil {
		t.Error("PolicyAt with no tenant")
	}
	// A caller-supplied version that differs reloads.
	replace(t, f, "acme", ipfilter.Users, false, "192.0.2.0/24")
	if p, err := f.PolicyAt(t.Context(), "acme", 2); err != nil || p.Version() != 2 || p.Check(ipfilter.Users, office) != ipfilter.Denied {
		t.Errorf("PolicyAt(2) = %+v, %v", p, err)
	}
	if r := p.Rule(9); !r.Set.Empty() || r.ReportOnly {
		t.Error("Rule of an invalid scope")
	}
}

func TestMaxTenants(t *testing.T) {
	st := newFake()
	f := newFilter(t, st, ipfilter.Config{MaxTenants: 2})
	for i := range 5 {
		tenant := fmt.Sprint("t", i)
		replace(t, f, tenant, ipfilter.Users, false, fmt.Sprintf("10.0.0.%d", i))
	}
	for round := range 3 {
		for i := range 5 {
			tenant := fmt.Sprint("t", i)
			if d := check(t, f, tenant, ipfilter.Users, netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})); d != ipfilter.Allowed {
				t.Errorf("round %d %s: %v", round, tenant, d)
			}
			if d := check(t, f, tenant, ipfilter.Users, netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)})); d != ipfilter.Denied {
				t.Errorf("round %d %s: %v", round, tenant, d)
			}
		}
	}
	f.Forget("t1")
	if d := check(t, f, "t1", ipfilter.Users, netip.MustParseAddr("10.0.0.1")); d != ipfilter.Allowed {
		t.Errorf("after Forget: %v", d)
	}
}

func TestNewRefuses(t *testing.T) {
	for _, tc := range []struct {
		cfg   ipfilter.Config
		field string
	}{
		{ipfilter.Config{}, "Store"},
		{ipfilter.Config{Store: newFake(), MaxStale: -1}, "MaxStale"},
		{ipfilter.Config{Store: newFake(), MaxTenants: -1}, "MaxTenants"},
		{ipfilter.Config{Store: newFake(), MaxEntries: -1}, "MaxEntries"},
	} {
		_, err := ipfilter.New(tc.cfg)
		var ce *ipfilter.ConfigError
		if !errors.As(err, &ce) || ce.Field != tc.field {
			t.Errorf("New(%+v) = %v, want a *ConfigError for %s", tc.cfg, err, tc.field)
		}
	}
}

func TestCheckAllocatesNothing(t *testing.T) {
	st := newFake()
	f := newFilter(t, st, ipfilter.Config{})
	replace(t, f, "acme", ipfilter.Users, false, "203.0.113.0/24", "2001:db8::/32")
	ctx := context.Background()
	check(t, f, "acme", ipfilter.Users, office)
	if n := testing.AllocsPerRun(100, func() { _, _ = f.Check(ctx, "acme", ipfilter.Users, office) }); n != 0 {
		t.Errorf("Check allocates %v times on a cache hit", n)
	}
}

// TestConcurrentSwap hammers Check while the lists change. The writer
// alternates the tenant between two states, A (both scopes allow only
// 10.0.0.0/8) and B (both allow only 192.168.0.0/16), so a reader that
// sees one scope of A and the other of B has seen a half-updated list.
// Each writer step also checks, itself, that its change is in force on
// its next request.
func TestConcurrentSwap(t *testing.T) {
	st := newFake()
	f := newFilter(t, st, ipfilter.Config{})
	ctx := context.Background()
	a := netip.MustParseAddr("10.1.2.3")
	// Both scopes change in one write (the fake's put): two Replace
	// calls would legitimately show the version in between.
	setBoth := func(v uint64, entry string) uint64 {
		v++
		st.put("acme", ipfilter.Lists{Version: v, Users: ipfilter.Rules{Entries: []string{entry}}, APIKeys: ipfilter.Rules{Entries: []string{entry}}})
		return v
	}
	var v uint64
	v = setBoth(v, "10.0.0.0/8")
	const readers = 6
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var checks atomic.Int64
	for range readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				p, err := f.Policy(ctx, "acme")
				if err != nil {
					t.Error(err)
					return
				}
				u, k := p.Check(ipfilter.Users, a), p.Check(ipfilter.APIKeys, a)
				if u != k {
					t.Errorf("version %d: users %v, api keys %v: half-updated", p.Version(), u, k)
					return
				}
				if want := map[bool]ipfilter.Decision{true: ipfilter.Allowed, false: ipfilter.Denied}[p.Version()%2 == 1]; u != want {
					t.Errorf("version %d decided %v, want %v", p.Version(), u, want)
					return
				}
				d, err := f.Check(ctx, "acme", ipfilter.Users, a)
				if err != nil || !(d == ipfilter.Allowed || d == ipfilter.Denied) {
					t.Errorf("Check = %v, %v", d, err)
					return
				}
				checks.Add(1)
			}
		}()
	}
	deadline := time.Now().Add(5 * time.Second)
	for i := 0; i < 400 || checks.Load() < 2000 && time.Now().Before(deadline); i++ {
		entry := "192.168.0.0/16"
		if i%2 == 1 {
			entry = "10.0.0.0/8"
		}
		v = setBoth(v, entry)
		want := ipfilter.Denied
		if v%2 == 1 {
			want = ipfilter.Allowed
		}
		if d := check(t, f, "acme", ipfilter.Users, a); d != want {
			t.Fatalf("writer: version %d not in force on the next request: %v", v, d)
		}
	}
	close(stop)
	wg.Wait()
	if checks.Load() == 0 {
		t.Error("no reader ran")
	}
}

// TestConcurrentReplace: administrators racing from the same version
// get exactly one success; the rest ErrConflict.
func TestConcurrentReplace(t *testing.T) {
	st := newFake()
	f := newFilter(t, st, ipfilter.Config{})
	const n = 20
	var ok atomic.Int32
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := f.Replace(context.Background(), ipfilter.Change{Tenant: "acme", Scope: ipfilter.Users, Entries: []string{fmt.Sprintf("10.0.0.%d", i)}, AdminIP: netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})})
			switch {
			case err == nil:
				ok.Add(1)
			case !errors.Is(err, ipfilter.ErrConflict):
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 {
		t.Errorf("%d concurrent Replace calls from version 0 succeeded, want 1", ok.Load())
	}
}

// BenchmarkCheck is the per-request cost on a cache hit: the version
// read (the test store: a map under a mutex, like memstore), the cache
// lookup and Set.Contains, with 1,000 and 100,000 prefixes in the
// tenant's Users list and 1,000 tenants cached.
func BenchmarkCheck(b *testing.B) {
	for _, n := range []int{1_000, 100_000} {
		st := newFake()
		f := newFilter(b, st, ipfilter.Config{})
		entries := make([]string, n)
		for i := range entries {
			if i%2 == 0 {
				entries[i] = fmt.Sprintf("10.%d.%d.0/24", i>>16&255, i>>8&255^i&255)
			} else {
				entries[i] = fmt.Sprintf("2001:db8:%x:%x::/64", i>>16, i&0xffff)
			}
		}
		for i := range 1000 {
			tenant := fmt.Sprint("tenant-", i)
			l := entries[:1]
			if i == 0 {
				l = entries
			}
			replace(b, f, tenant, ipfilter.Users, false, l...)
			check(b, f, tenant, ipfilter.Users, office)
		}
		addrs := []netip.Addr{netip.MustParseAddr("10.0.0.1"), office, netip.MustParseAddr("2001:db8:0:1::1"), home}
		ctx := context.Background()
		b.Run(fmt.Sprintf("prefixes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				if _, err := f.Check(ctx, "tenant-0", ipfilter.Users, addrs[i&3]); err != nil {
					b.Fatal(err)
				}
				i++
			}
		})
		b.Run(fmt.Sprintf("prefixes=%d/parallel", n), func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					if _, err := f.Check(ctx, "tenant-0", ipfilter.Users, addrs[i&3]); err != nil {
						b.Error(err)
						return
					}
					i++
				}
			})
		})
	}
}

// TestConcurrentEviction checks many tenants from many goroutines
// through a cache smaller than the tenant count: every decision stays
// right while entries are evicted and reloaded.
func TestConcurrentEviction(t *testing.T) {
	st := newFake()
	f := newFilter(t, st, ipfilter.Config{MaxTenants: 4})
	const tenants = 16
	for i := range tenants {
		replace(t, f, fmt.Sprint("t", i), ipfilter.Users, false, fmt.Sprintf("10.0.0.%d", i))
	}
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 300 {
				i := (g*7 + j) % tenants
				tenant := fmt.Sprint("t", i)
				if d, err := f.Check(context.Background(), tenant, ipfilter.Users, netip.AddrFrom4([4]byte{10, 0, 0, byte(i)})); err != nil || d != ipfilter.Allowed {
					t.Errorf("%s own address: %v, %v", tenant, d, err)
					return
				}
				if d, err := f.Check(context.Background(), tenant, ipfilter.Users, netip.AddrFrom4([4]byte{10, 0, 0, byte(i + 1)})); err != nil || d != ipfilter.Denied {
					t.Errorf("%s other address: %v, %v", tenant, d, err)
					return
				}
				if j%50 == 0 {
					f.Forget(tenant)
				}
			}
		}()
	}
	wg.Wait()
}
