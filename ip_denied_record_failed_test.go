package guard_test

import (
	"errors"
	"net/netip"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/store/memstore"
)

// Severity: low. A refusal recorded at most once a minute (ip.denied of a
// session or an API key from outside its tenant's allow-list, or from a
// client that cannot be identified, and a report-only list's would-be
// denial) is counted as recorded before its event is written: when the
// write failed (the request got ErrUnavailable), the next refusals of the
// same user or key and address went unrecorded for the rest of the
// minute, so that the log showed no trace of them. A record that fails no
// longer counts: the next refusal is recorded in its place. Found by
// TestFaultSweepLookupTouch (Request/refused/*/06_Audit.Append).
func TestRefusalRecordFailedDoesNotSilenceTheNext(t *testing.T) {
	const (
		outside = "198.51.100.7"
		inside  = "192.0.2.10"
	)
	type refusal struct {
		// use makes the request; want is its answer without a fault.
		use  func(f *fixture, tok, key string) error
		want error
		// recorded: the event that records it.
		actor  audit.ActorKind
		reason string
		ip     string
	}
	// addrOf parses addr; "": the zero Addr, a client that cannot be
	// identified.
	addrOf := func(addr string) netip.Addr {
		if addr == "" {
			return netip.Addr{}
		}
		return netip.MustParseAddr(addr)
	}
	session := func(addr string) func(f *fixture, tok, key string) error {
		return func(f *fixture, tok, _ string) error {
			_, err := f.g.AuthenticateFrom(f.ctx, tok, addrOf(addr), "test")
			return err
		}
	}
	key := func(addr string) func(f *fixture, tok, key string) error {
		return func(f *fixture, _, k string) error {
			_, err := f.g.AuthenticateAPIKey(f.ctx, k, addrOf(addr))
			return err
		}
	}
	for _, tc := range []struct {
		name       string
		reportOnly bool
		refusal
	}{
		{"session outside the allow-list", false, refusal{session(outside), guard.ErrIPNotAllowed, audit.ActorUser, "not_in_allow_list", outside}},
		{"session from an unidentified client", false, refusal{session(""), guard.ErrIPNotAllowed, audit.ActorUser, "unidentified", ""}},
		{"session outside a report-only list", true, refusal{session(outside), nil, audit.ActorUser, "report_only", outside}},
		{"API key outside the allow-list", false, refusal{key(outside), guard.ErrIPNotAllowed, audit.ActorAPIKey, "not_in_allow_list", outside}},
		{"API key from an unidentified client", false, refusal{key(""), guard.ErrIPNotAllowed, audit.ActorAPIKey, "unidentified", ""}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var fa *failingAudit
			f := newFixture(t, func(c *guard.Config) {
				fa = &failingAudit{Audit: c.Stores.Audit.(*memstore.Audit)}
				c.Stores.Audit = fa
			})
			admin, tok := f.userWithRoles(t, "ada@example.test", rbac.Owner)
			k, _, err := f.g.CreateAPIKey(f.ctx, admin, guard.NewAPIKey{Tenant: tenantID, Name: "reporting", Roles: []string{rbac.ReportsOnly}})
			if err != nil {
				t.Fatal(err)
			}
			f.setPeopleList(t, tc.reportOnly, inside+"/32")
			lists, err := f.g.IPAllowLists(f.ctx, guard.System("test"), tenantID)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.g.SetIPAllowList(f.ctx, guard.System("test"), tenantID, guard.IPListChange{Scope: ipfilter.APIKeys,
				Entries: []string{inside}, Version: lists.Version}); err != nil {
				t.Fatal(err)
			}

			fa.set(true)
			err = tc.use(f, tok, k)
			fa.set(false)
			if !errors.Is(err, guard.ErrUnavailable) {
				t.Fatalf("refusal whose record failed: %v, want ErrUnavailable", err)
			}
			f.clock.Advance(10e9) // 10 s: within the minute
			if err := tc.use(f, tok, k); !errors.Is(err, tc.want) {
				t.Fatalf("the next request: %v, want %v", err, tc.want)
			}
			n := 0
			for _, e := range f.events(t, audit.IPDenied) {
				if e.Actor.Kind == tc.actor && e.Reason == tc.reason && e.IP == tc.ip {
					n++
				}
			}
			if n != 1 {
				t.Errorf("ip.denied (%s, reason %s) recorded %d times for the refusal whose record failed and the next, want once",
					tc.actor, tc.reason, n)
			}
		})
	}
}
