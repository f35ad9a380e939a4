package guard_test

// Fixes of the API-key and IP allow-list audit (keys_ip_audit_test.go):
// the behaviour around each fix, beyond the auditor's reproductions.

import (
	"errors"
	"net/http"
	"net/netip"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/ipfilter"
)

// An API key from a client whose IP cannot be identified is refused (403)
// whatever the key; a key that exists is recorded in its tenant, once a
// minute at most; one that does not is recorded nowhere.
func TestAPIKeyUnidentifiedClient(t *testing.T) {
	f := newFixture(t, behindProxy)
	admin := guard.System("provisioning")
	key, k, err := f.g.CreateAPIKey(f.ctx, admin, guard.NewAPIKey{Tenant: tenantID, Name: "nightly export"})
	if err != nil {
		t.Fatal(err)
	}
	h := f.g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	use := func(key string) int {
		return serveHandler(h, "/", "", "10.0.0.1:443", "Authorization", "Bearer "+key, "X-Forwarded-For", "garbage", "User-Agent", "loop").Code
	}
	useN := func(what string, n int) {
		t.Helper()
		for range n {
			if code := use(key); code != http.StatusForbidden {
				t.Fatalf("%s, unidentified client: %d, want 403", what, code)
			}
		}
	}
	useN("valid key", 5)
	evs := f.events(t, audit.IPDenied)
	if len(evs) != 1 {
		t.Fatalf("%d ip.denied events for 5 uses within a second, want 1", len(evs))
	}
	if e := evs[0]; e.Reason != "unidentified" || e.Target != ipfilter.APIKeys.String() || e.Outcome != audit.Failure ||
		e.Actor != (audit.Actor{Kind: audit.ActorAPIKey, ID: k.ID}) || e.Meta["untrusted_x-forwarded-for"] != "garbage" || e.UserAgent != "loop" {
		t.Errorf("ip.denied event %+v, want reason unidentified, api_keys, key %s, the header labelled untrusted", e, k.ID)
	}
	f.clock.Advance(time.Minute)
	_ = use(key)
	if n := len(f.events(t, audit.IPDenied)); n != 2 {
		t.Errorf("%d ip.denied events a minute later, want 2", n)
	}

	// Revoked: apikey.denied, as AuthenticateAPIKey records it.
	if err := f.g.RevokeAPIKey(f.ctx, admin, tenantID, k.ID); err != nil {
		t.Fatal(err)
	}
	useN("revoked key", 3)
	den := f.events(t, audit.APIKeyDenied)
	if len(den) != 1 {
		t.Fatalf("%d apikey.denied events for 3 uses within a second, want 1", len(den))
	}
	if e := den[0]; e.Reason != "revoked" || e.IP != guard.UnidentifiedIP || e.Target != k.ID || e.Meta["untrusted_x-forwarded-for"] != "garbage" {
		t.Errorf("apikey.denied event %+v, want reason revoked, IP %q, the header labelled untrusted", e, guard.UnidentifiedIP)
	}

	// Unknown or malformed: 403 all the same, nothing recorded.
	before := len(f.events(t, ""))
	for _, junk := range []string{"gk_junk", "not a key"} {
		if code := use(junk); code != http.StatusForbidden {
			t.Errorf("key %q, unidentified client: %d, want 403", junk, code)
		}
	}
	if n := len(f.events(t, "")) - before; n != 0 {
		t.Errorf("junk keys from an unidentified client wrote %d events, want 0", n)
	}
}

// A store failure while looking up, bounding or recording the key of an
// unidentified client answers 503: never a pass, never an unrecorded
// refusal reported as recorded.
func TestAPIKeyUnidentifiedClientStoreFailure(t *testing.T) {
	fx := newFaultFix(t, false, behindProxy)
	key, _, err := fx.g.CreateAPIKey(fx.ctx, guard.System("test"), guard.NewAPIKey{Tenant: tenantID, Name: "reporting"})
	if err != nil {
		t.Fatal(err)
	}
	for _, call := range []string{"APIKeys.APIKeyByHash", "Throttle.Reserve", "Audit.Append"} {
		r, _ := http.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = "10.0.0.1:443"
		r.Header.Set("Authorization", "Bearer "+key)
		r.Header.Set("X-Forwarded-For", "garbage")
		fx.failing(t, call, func() error { _, err := fx.g.AuthenticateRequest(r); return err })
	}
}

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

// behindProxy trusts the proxies of 10.0.0.0/8.
func behindProxy(c *guard.Config) {
	c.Proxies = ipfilter.ResolverConfig{TrustedProxies: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}}
}
