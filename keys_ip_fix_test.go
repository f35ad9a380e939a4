package guard_test

// Fixes of the API-key and IP allow-list audit (keys_ip_audit_test.go):
// the behaviour around each fix, beyond the auditor's reproductions.

import (
	"errors"
	"net/netip"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/ipfilter"
)

// A valid key refused by the allow-list is recorded once a minute for
// each key and address: another address, or the next minute, is recorded
// again; every use is refused. The event carries the unmapped address.
func TestAPIKeyAllowListDenialBound(t *testing.T) {
	f := newFixture(t)
	key := restrictedKey(t, f, "198.51.100.0/28")
	for _, a := range []string{"::ffff:203.0.113.66", "203.0.113.66", "203.0.113.66", "203.0.113.67"} {
		if _, err := f.g.AuthenticateAPIKey(f.ctx, key, netip.MustParseAddr(a)); !errors.Is(err, guard.ErrIPNotAllowed) {
			t.Fatalf("key from %s: %v, want ErrIPNotAllowed", a, err)
		}
	}
	evs := f.events(t, audit.IPDenied)
	if len(evs) != 2 || evs[0].IP != "203.0.113.66" || evs[1].IP != "203.0.113.67" {
		t.Fatalf("ip.denied events %+v, want one for 203.0.113.66 (unmapped) and one for 203.0.113.67", evs)
	}
	f.clock.Advance(time.Minute)
	if _, err := f.g.AuthenticateAPIKey(f.ctx, key, netip.MustParseAddr("203.0.113.66")); !errors.Is(err, guard.ErrIPNotAllowed) {
		t.Fatalf("a minute later: %v, want ErrIPNotAllowed", err)
	}
	if n := len(f.events(t, audit.IPDenied)); n != 3 {
		t.Errorf("%d ip.denied events a minute later, want 3", n)
	}
	if _, err := f.g.AuthenticateAPIKey(f.ctx, key, netip.MustParseAddr("::ffff:198.51.100.7")); err != nil {
		t.Errorf("key from its allowed address, IPv4-mapped: %v", err)
	}
}

// restrictedKey restricts the API keys of tenantID to entries and returns
// a new key, both done by the system.
func restrictedKey(t *testing.T, f *fixture, entries ...string) string {
	t.Helper()
	by := guard.System("provisioning")
	lists, err := f.g.IPAllowLists(f.ctx, by, tenantID)
	if err == nil {
		_, err = f.g.SetIPAllowList(f.ctx, by, tenantID, guard.IPListChange{Scope: ipfilter.APIKeys, Entries: entries, Version: lists.Version})
	}
	if err != nil {
		t.Fatalf("restricting API keys to %v: %v", entries, err)
	}
	key, _, err := f.g.CreateAPIKey(f.ctx, by, guard.NewAPIKey{Tenant: tenantID, Name: "restricted"})
	if err != nil {
		t.Fatal(err)
	}
	return key
}
