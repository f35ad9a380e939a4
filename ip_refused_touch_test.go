package guard_test

import (
	"errors"
	"net/http"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/ipfilter"
)

// Severity: medium. A session cookie sent from a client IP outside the
// tenant's allow-list for people is refused (403), yet the session check,
// which ran before the allow-list (the tenant, and so its list, is known
// only from the session), had written the session's last-seen: refused
// requests kept a session alive past its idle timeout, for as long as
// whoever holds the cookie (a stolen one, say) sends one from outside the
// allowed networks every half minute or so. A refused request no longer
// keeps the session alive; an allowed one still does. On the embedded
// store (lookup, then touch) and on one that looks up and touches in one
// step (sqlitestore, a session.LookupToucher), at a cadence under and
// over session.Config.MaxTouchGap.
func TestAuditHTTPMW2_RefusedByAllowListDoesNotKeepSessionAlive(t *testing.T) {
	const (
		idle    = 10 * time.Minute
		outside = "198.51.100.7:1"
		inside  = "192.0.2.10:1"
	)
	for _, b := range touchBackends {
		for _, every := range []time.Duration{45 * time.Second, 4 * time.Minute} {
			t.Run(b.name+"/every "+every.String(), func(t *testing.T) {
				f := newFixture(t, func(c *guard.Config) { c.Stores = b.stores(t) })
				_, tok := f.userWithRoles(t, "ada@example.test")
				sys := guard.System("test")
				tn, err := f.g.Tenant(f.ctx, tenantID)
				if err != nil {
					t.Fatal(err)
				}
				pol := tn.Policy
				pol.IdleTimeout = idle
				if _, err := f.g.SetPolicy(f.ctx, sys, tenantID, pol, tn.Version); err != nil {
					t.Fatal(err)
				}
				f.allowPeopleFrom(t, "192.0.2.0/24")
				h := f.g.Middleware(guard.RequireSession(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
					w.WriteHeader(http.StatusNoContent)
				})))
				// refusedFor sends a request from outside the allow-list
				// every `every` for d, then lets the rest of d pass.
				refusedFor := func(d time.Duration) {
					t.Helper()
					at := time.Duration(0)
					for ; at+every < d; at += every {
						f.clock.Advance(every)
						if code := serveHandler(h, "/", tok, outside).Code; code != http.StatusForbidden {
							t.Fatalf("request from outside the allow-list: %d, want 403", code)
						}
					}
					f.clock.Advance(d - at)
				}

				// An allowed request halfway through the idle timeout
				// keeps the session alive past it, refused requests
				// around it or not.
				refusedFor(idle / 2)
				if code := serveHandler(h, "/", tok, inside).Code; code != http.StatusNoContent {
					t.Fatalf("allowed request %v after the sign-in: %d, want 204", idle/2, code)
				}
				refusedFor(idle/2 + time.Second)
				if code := serveHandler(h, "/", tok, inside).Code; code != http.StatusNoContent {
					t.Fatalf("allowed request %v after the sign-in, %v after an allowed one: %d, want 204",
						idle+time.Second, idle/2+time.Second, code)
				}
				// Only refused requests for the whole idle timeout: the
				// session is expired, for an allowed client too.
				refusedFor(idle + time.Second)
				if code := serveHandler(h, "/", tok, inside).Code; code != http.StatusUnauthorized {
					t.Errorf("allowed request after %v of refused requests only, under a %v idle timeout: %d, want 401",
						idle+time.Second, idle, code)
				}
				if _, err := f.g.Authenticate(f.ctx, tok); !errors.Is(err, guard.ErrUnauthenticated) {
					t.Errorf("Authenticate after the idle timeout: %v, want ErrUnauthenticated", err)
				}
				// The refusals are recorded as before.
				if n := reasons(f.events(t, audit.IPDenied))["not_in_allow_list"]; n == 0 {
					t.Error("no ip.denied (not_in_allow_list) recorded for the refused requests")
				}
			})
		}
	}
}

// The allow-list, applied within the session check, still comes after the
// tenant's policy: a session the policy no longer allows (MFA required
// since its sign-in) is ended (401, policy_changed) from outside the list
// as from inside, not merely refused (403) and left to live.
func TestAllowListAfterPolicyEnd(t *testing.T) {
	f := newMFAFixture(t).fixture
	_, tok := f.userWithRoles(t, "ada@example.test")
	sys := guard.System("test")
	f.allowPeopleFrom(t, "192.0.2.0/24")
	tn, err := f.g.Tenant(f.ctx, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.SetPolicy(f.ctx, sys, tenantID, guard.Policy{RequireMFA: true}, tn.Version); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute) // past the policy cache
	h := f.g.Middleware(guard.RequireSession(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusNoContent)
	})))
	w := serveHandler(h, "/", tok, "198.51.100.7:1")
	if w.Code != http.StatusUnauthorized || w.Header().Get(guard.ReasonHeader) != guard.ReasonPolicyChanged {
		t.Errorf("password-only session under RequireMFA, from outside the allow-list: %d %q, want 401 %q",
			w.Code, w.Header().Get(guard.ReasonHeader), guard.ReasonPolicyChanged)
	}
	if _, err := f.g.Authenticate(f.ctx, tok); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("the session afterwards: %v, want ended", err)
	}
	if n := len(f.events(t, audit.IPDenied)); n != 0 {
		t.Errorf("%d ip.denied events for a session the policy ended", n)
	}
}

// allowPeopleFrom sets the tenant's allow-list for people to entries (by
// the system, which no list shuts out).
func (f *fixture) allowPeopleFrom(t *testing.T, entries ...string) {
	t.Helper()
	sys := guard.System("test")
	lists, err := f.g.IPAllowLists(f.ctx, sys, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.SetIPAllowList(f.ctx, sys, tenantID, guard.IPListChange{Scope: ipfilter.Users,
		Entries: entries, Version: lists.Version}); err != nil {
		t.Fatal(err)
	}
}
