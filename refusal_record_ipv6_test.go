package guard_test

import (
	"errors"
	"net/netip"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/ipfilter"
)

// v6Client returns the n-th address of one IPv6 client's /64
// (2001:db8:7:7::/64): one client as every per-IP limit counts it
// (Config.IPv6Prefix, default 64).
func v6Client(n int) netip.Addr {
	b := netip.MustParseAddr("2001:db8:7:7::").As16()
	b[14], b[15] = byte(n>>8), byte(n)
	return netip.AddrFrom16(b)
}

// A credential refused by its tenant's allow-list is recorded at most once
// a minute for each key (or user) and client, so that one used in a loop
// cannot flood its tenant's log; an IPv6 client is one client per /64, as
// for every per-IP limit, so stepping through the addresses of its block
// writes no more.
func TestAllowListRefusalRecordsCountIPv6ClientPerPrefix(t *testing.T) {
	const uses = 100
	count := func(t *testing.T, f *fixture, actor string) int {
		n := 0
		for _, e := range f.events(t, audit.IPDenied) {
			if e.Actor.ID == actor && e.Reason == "not_in_allow_list" {
				n++
			}
		}
		return n
	}

	t.Run("APIKey", func(t *testing.T) {
		f := newFixture(t)
		key := restrictedKey(t, f, "198.51.100.7")
		p, err := f.g.AuthenticateAPIKey(f.ctx, key, netip.MustParseAddr("198.51.100.7"))
		if err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= uses; i++ {
			if _, err := f.g.AuthenticateAPIKey(f.ctx, key, v6Client(i)); !errors.Is(err, guard.ErrIPNotAllowed) {
				t.Fatalf("key from %s: %v, want ErrIPNotAllowed", v6Client(i), err)
			}
		}
		if n := count(t, f, p.KeyID); n != 1 {
			t.Errorf("%d uses of one key from one /64 outside the list within a second wrote %d ip.denied events, want 1", uses, n)
		}
	})

	t.Run("Session", func(t *testing.T) {
		f := newFixture(t)
		p, tok := f.userWithRoles(t, "ada@example.test")
		sys := guard.System("test")
		lists, err := f.g.IPAllowLists(f.ctx, sys, tenantID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.g.SetIPAllowList(f.ctx, sys, tenantID, guard.IPListChange{Scope: ipfilter.Users, Entries: []string{"198.51.100.7"}, Version: lists.Version}); err != nil {
			t.Fatal(err)
		}
		for i := 1; i <= uses; i++ {
			if _, err := f.g.AuthenticateFrom(f.ctx, tok, v6Client(i), "loop"); !errors.Is(err, guard.ErrIPNotAllowed) {
				t.Fatalf("session from %s: %v, want ErrIPNotAllowed", v6Client(i), err)
			}
		}
		if n := count(t, f, p.UserID); n != 1 {
			t.Errorf("%d requests of one session from one /64 outside the list within a second wrote %d ip.denied events, want 1", uses, n)
		}
	})

	t.Run("ThrottledRevokedKey", func(t *testing.T) {
		// Once the invalid-key throttle (which counts the /64) locks the
		// client out, a revoked key's further uses are recorded once a
		// minute (apikey.denied, Meta throttled), not once an address.
		f := newFixture(t)
		sys := guard.System("test")
		key, k, err := f.g.CreateAPIKey(f.ctx, sys, guard.NewAPIKey{Tenant: tenantID, Name: "leaked"})
		if err != nil {
			t.Fatal(err)
		}
		if err := f.g.RevokeAPIKey(f.ctx, sys, tenantID, k.ID); err != nil {
			t.Fatal(err)
		}
		throttled := 0
		for i := 1; i <= 220; i++ {
			_, err := f.g.AuthenticateAPIKey(f.ctx, key, v6Client(i))
			switch {
			case errors.Is(err, guard.ErrTooManyAttempts):
				throttled++
			case !errors.Is(err, guard.ErrUnauthenticated):
				t.Fatalf("use %d: %v, want ErrUnauthenticated or ErrTooManyAttempts", i, err)
			}
		}
		if throttled < 150 {
			t.Fatalf("%d of 220 uses throttled, want the /64 locked after 20", throttled)
		}
		n := 0
		for _, e := range f.events(t, audit.APIKeyDenied) {
			if e.Meta["throttled"] == "true" {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d throttled uses of one revoked key by one locked IPv6 client (one /64) within a second wrote %d throttled apikey.denied events, want 1", throttled, n)
		}
	})
}
