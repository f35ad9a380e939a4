package guard_test

import (
	"cmp"
	"errors"
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
// over session.Config.MaxTouchGap, for a net/http host (Middleware) and
// one that gives the client's address (AuthenticateFrom).
func TestAuditHTTPMW2_RefusedByAllowListDoesNotKeepSessionAlive(t *testing.T) {
	const (
		idle    = 10 * time.Minute
		outside = "198.51.100.7"
		inside  = "192.0.2.10"
	)
	touchCases(t, idle, func(t *testing.T, f *fixture, tok string, host sessionHost, every time.Duration) {
		f.allowPeopleFrom(t, "192.0.2.0/24")
		// refusedFor sends a request from outside the allow-list every
		// `every` for d, then lets the rest of d pass.
		refusedFor := func(d time.Duration) {
			t.Helper()
			at := time.Duration(0)
			for ; at+every < d; at += every {
				f.clock.Advance(every)
				if err := host.use(f, tok, outside, ""); !errors.Is(err, guard.ErrIPNotAllowed) {
					t.Fatalf("request from outside the allow-list: %v, want ErrIPNotAllowed", err)
				}
			}
			f.clock.Advance(d - at)
		}

		// An allowed request halfway through the idle timeout keeps the
		// session alive past it, refused requests around it or not.
		refusedFor(idle / 2)
		if err := host.use(f, tok, inside, ""); err != nil {
			t.Fatalf("allowed request %v after the sign-in: %v", idle/2, err)
		}
		refusedFor(idle/2 + time.Second)
		if err := host.use(f, tok, inside, ""); err != nil {
			t.Fatalf("allowed request %v after the sign-in, %v after an allowed one: %v",
				idle+time.Second, idle/2+time.Second, err)
		}
		// Only refused requests for the whole idle timeout: the session
		// is expired, for an allowed client too.
		refusedFor(idle + time.Second)
		if err := host.use(f, tok, inside, ""); !errors.Is(err, guard.ErrUnauthenticated) {
			t.Errorf("allowed request after %v of refused requests only, under a %v idle timeout: %v, want ErrUnauthenticated",
				idle+time.Second, idle, err)
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

// The allow-list, applied within the session check, still comes after the
// tenant's policy: a session the policy no longer allows (MFA required
// since its sign-in) is ended (401, policy_changed; ErrPolicyChanged) from
// outside the list as from inside, or from a client with no address, not
// merely refused (403) and left to live; for either host.
func TestAllowListAfterPolicyEnd(t *testing.T) {
	for _, host := range sessionHosts {
		for _, from := range []string{"198.51.100.7", ""} {
			t.Run(host.name+"/from "+cmp.Or(from, "no address"), func(t *testing.T) {
				f := newMFAFixture(t, behindProxy).fixture
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
				if err := host.use(f, tok, from, ""); !errors.Is(err, guard.ErrPolicyChanged) {
					t.Errorf("password-only session under RequireMFA, from %s: %v, want ErrPolicyChanged", cmp.Or(from, "no address"), err)
				}
				if _, err := f.g.Authenticate(f.ctx, tok); !errors.Is(err, guard.ErrUnauthenticated) {
					t.Errorf("the session afterwards: %v, want ended", err)
				}
				if n := len(f.events(t, audit.IPDenied)); n != 0 {
					t.Errorf("%d ip.denied events for a session the policy ended", n)
				}
			})
		}
	}
}

// allowPeopleFrom sets the tenant's allow-list for people to entries (by
// the system, which no list shuts out).
func (f *fixture) allowPeopleFrom(t *testing.T, entries ...string) {
	t.Helper()
	f.setPeopleList(t, false, entries...)
}

// setPeopleList sets the tenant's allow-list for people to entries,
// report-only or not (by the system).
func (f *fixture) setPeopleList(t *testing.T, reportOnly bool, entries ...string) {
	t.Helper()
	sys := guard.System("test")
	lists, err := f.g.IPAllowLists(f.ctx, sys, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.SetIPAllowList(f.ctx, sys, tenantID, guard.IPListChange{Scope: ipfilter.Users,
		Entries: entries, ReportOnly: reportOnly, Version: lists.Version}); err != nil {
		t.Fatal(err)
	}
}
