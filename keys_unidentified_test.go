package guard_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"reflect"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/ipfilter"
)

// noClientAddrs are the addresses a host that is not net/http gives
// AuthenticateAPIKey for a client it cannot identify: none at all (the
// zero netip.Addr), and the unspecified ones, which no client has.
var noClientAddrs = []struct {
	name string
	addr netip.Addr
}{
	{"zero", netip.Addr{}},
	{"0.0.0.0", netip.IPv4Unspecified()},
	{"::", netip.IPv6Unspecified()},
	{"::ffff:0.0.0.0", netip.MustParseAddr("::ffff:0.0.0.0")},
}

// An API key given to AuthenticateAPIKey with no client address is
// refused (ErrIPNotAllowed) whatever the key and whatever the tenant's
// allow-list for keys, even with none, as AuthenticateRequest refuses a
// key from a client whose IP cannot be resolved: a key that exists is
// recorded in its tenant (ip.denied, reason unidentified; apikey.denied
// once revoked) at most once a minute for each key, a request's
// unidentified client and an address the host did not give counting as
// one; a malformed or unknown key is recorded nowhere and not counted
// against any address.
func TestAuthenticateAPIKeyNoAddress(t *testing.T) {
	for _, c := range noClientAddrs {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, behindProxy)
			admin := guard.System("provisioning")
			key, k, err := f.g.CreateAPIKey(f.ctx, admin, guard.NewAPIKey{Tenant: tenantID, Name: "nightly export"})
			if err != nil {
				t.Fatal(err)
			}
			useN := func(what, key string, n int) {
				t.Helper()
				for range n {
					if p, err := f.g.AuthenticateAPIKey(f.ctx, key, c.addr); !errors.Is(err, guard.ErrIPNotAllowed) {
						t.Fatalf("%s from address %v: %+v, %v; want ErrIPNotAllowed", what, c.addr, p, err)
					}
				}
			}
			useN("valid key, no allow-list", key, 5)
			evs := f.events(t, audit.IPDenied)
			if len(evs) != 1 {
				t.Fatalf("%d ip.denied events for 5 uses within a second, want 1: %+v", len(evs), evs)
			}
			if e := evs[0]; e.Reason != "unidentified" || e.Target != ipfilter.APIKeys.String() || e.Outcome != audit.Failure ||
				e.Actor != (audit.Actor{Kind: audit.ActorAPIKey, ID: k.ID}) || e.IP != "" || e.UserAgent != "" || len(e.Meta) != 0 {
				t.Errorf("ip.denied event %+v, want reason unidentified, api_keys, key %s, no IP, user agent or Meta", e, k.ID)
			}

			// The same key from a request whose client cannot be
			// identified, in the same minute: not recorded again.
			h := f.g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
			if code := serveHandler(h, "/", "", "10.0.0.1:443", "Authorization", "Bearer "+key, "X-Forwarded-For", "garbage").Code; code != http.StatusForbidden {
				t.Fatalf("the key from an unidentified request: %d, want 403", code)
			}
			if n := len(f.events(t, audit.IPDenied)); n != 1 {
				t.Errorf("%d ip.denied events after the same key from an unidentified request in the same minute, want 1", n)
			}

			f.clock.Advance(time.Minute)
			useN("valid key a minute later", key, 1)
			if n := len(f.events(t, audit.IPDenied)); n != 2 {
				t.Errorf("%d ip.denied events a minute later, want 2", n)
			}

			// With an allow-list for keys: refused as unidentified, not
			// as an address outside the list.
			f.clock.Advance(time.Minute)
			lists, err := f.g.IPAllowLists(f.ctx, admin, tenantID)
			if err == nil {
				_, err = f.g.SetIPAllowList(f.ctx, admin, tenantID, guard.IPListChange{Scope: ipfilter.APIKeys, Entries: []string{"192.0.2.0/24"}, Version: lists.Version})
			}
			if err != nil {
				t.Fatal(err)
			}
			useN("valid key, with an allow-list", key, 3)
			evs = f.events(t, audit.IPDenied)
			if len(evs) != 3 || evs[2].Reason != "unidentified" {
				t.Errorf("ip.denied events %+v, want a third one, reason unidentified", evs)
			}

			// Revoked: apikey.denied, as AuthenticateRequest records it.
			if err := f.g.RevokeAPIKey(f.ctx, admin, tenantID, k.ID); err != nil {
				t.Fatal(err)
			}
			useN("revoked key", key, 3)
			den := f.events(t, audit.APIKeyDenied)
			if len(den) != 1 {
				t.Fatalf("%d apikey.denied events for 3 uses within a second, want 1: %+v", len(den), den)
			}
			if e := den[0]; e.Reason != "revoked" || e.IP != guard.UnidentifiedIP || e.Target != k.ID || e.UserAgent != "" || len(e.Meta) != 0 {
				t.Errorf("apikey.denied event %+v, want reason revoked, IP %q, no user agent or Meta", e, guard.UnidentifiedIP)
			}

			// Unknown or malformed: refused all the same, nothing
			// recorded, and not counted against an address (no
			// ErrTooManyAttempts however many).
			before := len(f.events(t, ""))
			for range 25 {
				useN("unknown key", "gk_junk", 1)
				useN("malformed key", "not a key", 1)
			}
			if n := len(f.events(t, "")) - before; n != 0 {
				t.Errorf("junk keys with no client address wrote %d events, want 0", n)
			}
		})
	}
}

// A store failure while looking up, bounding or recording the key given
// with no client address is ErrUnavailable: never a pass, never an
// unrecorded refusal reported as recorded.
func TestAuthenticateAPIKeyNoAddressStoreFailure(t *testing.T) {
	fx := newFaultFix(t, false)
	key, _, err := fx.g.CreateAPIKey(fx.ctx, guard.System("test"), guard.NewAPIKey{Tenant: tenantID, Name: "reporting"})
	if err != nil {
		t.Fatal(err)
	}
	for _, call := range []string{"APIKeys.APIKeyByHash", "Throttle.Reserve", "Audit.Append"} {
		fx.failing(t, call, func() error { _, err := fx.g.AuthenticateAPIKey(fx.ctx, key, netip.Addr{}); return err })
	}
}

// AuthenticateAPIKey returns what AuthenticateRequest returns for a request
// from the same client with the same key (and no user agent): the same
// principal (the address unmapped and without its zone) or the same
// error, a client with no address, or an unspecified one, being one that
// cannot be identified; with and without an allow-list for keys.
func TestAuthenticateAPIKeyAsRequest(t *testing.T) {
	for _, listed := range []bool{false, true} {
		name := "no allow-list"
		if listed {
			name = "allow-list"
		}
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			var key string
			if listed {
				key = restrictedKey(t, f, "192.0.2.0/24", "2001:db8::/32")
			} else {
				var err error
				if key, _, err = f.g.CreateAPIKey(f.ctx, guard.System("provisioning"), guard.NewAPIKey{Tenant: tenantID, Name: "open"}); err != nil {
					t.Fatal(err)
				}
			}
			outside := error(nil)
			if listed {
				outside = guard.ErrIPNotAllowed
			}
			for _, c := range []struct {
				name, addr, remote string
				want               error
			}{
				{"inside", "192.0.2.10", "192.0.2.10:1", nil},
				{"IPv4-mapped", "::ffff:192.0.2.10", "[::ffff:192.0.2.10]:1", nil},
				{"IPv6 with a zone", "2001:db8::1%eth0", "[2001:db8::1%eth0]:1", nil},
				{"outside", "198.51.100.7", "198.51.100.7:1", outside},
				{"unspecified IPv4", "0.0.0.0", "0.0.0.0:1", guard.ErrIPNotAllowed},
				{"unspecified IPv6", "::", "[::]:1", guard.ErrIPNotAllowed},
				{"no address", "", "", guard.ErrIPNotAllowed},
			} {
				t.Run(c.name, func(t *testing.T) {
					r := httptest.NewRequest("GET", "/", nil)
					r.RemoteAddr = c.remote
					r.Header.Set("Authorization", "Bearer "+key)
					want, werr := f.g.AuthenticateRequest(r)
					if !errors.Is(werr, c.want) || (c.want == nil) != (werr == nil) {
						t.Fatalf("AuthenticateRequest: %v, want %v", werr, c.want)
					}
					var addr netip.Addr
					if c.addr != "" {
						addr = netip.MustParseAddr(c.addr)
					}
					got, err := f.g.AuthenticateAPIKey(f.ctx, key, addr)
					if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
						t.Errorf("AuthenticateAPIKey: %v, want %v as AuthenticateRequest", err, c.want)
					}
					if !reflect.DeepEqual(got, want) {
						t.Errorf("AuthenticateAPIKey's principal %+v, want AuthenticateRequest's %+v", got, want)
					}
					if err == nil && (got.Kind != guard.KindAPIKey || got.IP != got.Addr.String() || got.Addr.Is4In6() ||
						got.Addr.Zone() != "" || got.UserAgent != "") {
						t.Errorf("principal %+v: want a key's, its address unmapped and without a zone, no user agent", got)
					}
				})
			}
		})
	}
}

// The events recording the refusal of a request's API key carry the
// request's user agent, whatever the refusal (outside the allow-list for
// keys, revoked), as those of a key from an unidentified client do.
func TestAPIKeyRefusalsCarryUserAgent(t *testing.T) {
	f := newFixture(t)
	key := restrictedKey(t, f, "192.0.2.0/24")
	h := f.g.Middleware(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	use := func() int {
		return serveHandler(h, "/", "", "198.51.100.7:1", "Authorization", "Bearer "+key, "User-Agent", "cli").Code
	}
	if code := use(); code != http.StatusForbidden {
		t.Fatalf("key from outside its allow-list: %d, want 403", code)
	}
	if evs := f.events(t, audit.IPDenied); len(evs) != 1 || evs[0].Reason != "not_in_allow_list" || evs[0].UserAgent != "cli" {
		t.Errorf("ip.denied events %+v, want one, not_in_allow_list, user agent cli", evs)
	}
	keys, err := f.g.ListAPIKeys(f.ctx, guard.System("test"), tenantID)
	if err != nil || len(keys) != 1 {
		t.Fatalf("ListAPIKeys: %v, %v", keys, err)
	}
	if err := f.g.RevokeAPIKey(f.ctx, guard.System("test"), tenantID, keys[0].ID); err != nil {
		t.Fatal(err)
	}
	if code := use(); code != http.StatusUnauthorized {
		t.Fatalf("revoked key: %d, want 401", code)
	}
	if evs := f.events(t, audit.APIKeyDenied); len(evs) != 1 || evs[0].Reason != "revoked" || evs[0].UserAgent != "cli" {
		t.Errorf("apikey.denied events %+v, want one, revoked, user agent cli", evs)
	}
}
