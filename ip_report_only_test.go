package guard_test

import (
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/rbac"
)

// A report-only list lets every request through and records the would-be
// denials, once a minute for each user and address: it is checked at each
// request of a session, and used to write an event per request (a page of
// ten requests, ten events) into the tenant's audit chain. For either
// host: Middleware, and AuthenticateFrom given the client's address.
func TestReportOnlyDenialsRecordedOnceAMinute(t *testing.T) {
	for _, host := range sessionHosts {
		t.Run(host.name, func(t *testing.T) {
			f := newFixture(t, behindProxy)
			owner, tok := f.userWithRoles(t, "ada@example.test", rbac.Owner)
			lists, err := f.g.IPAllowLists(f.ctx, owner, tenantID)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.g.SetIPAllowList(f.ctx, owner, tenantID, guard.IPListChange{Scope: ipfilter.Users,
				Entries: []string{"192.0.2.0/24"}, ReportOnly: true, Version: lists.Version}); err != nil {
				t.Fatal(err)
			}
			reportOnly := func() int {
				t.Helper()
				n := 0
				for _, e := range f.events(t, audit.IPDenied) {
					if e.Reason == "report_only" && e.IP == "198.51.100.7" {
						if e.Outcome != audit.Success || e.Actor.ID != owner.UserID || e.UserAgent != "cli" {
							t.Errorf("report_only event %+v, want a success of the owner's with user agent cli", e)
						}
						n++
					}
				}
				return n
			}
			for i := range 10 {
				if err := host.use(f, tok, "198.51.100.7", "cli"); err != nil {
					t.Fatalf("request %d from outside a report-only list: %v", i, err)
				}
			}
			if n := reportOnly(); n != 1 {
				t.Errorf("%d report_only events after ten requests in a minute, want 1", n)
			}
			f.clock.Advance(time.Minute)
			if err := host.use(f, tok, "198.51.100.7", "cli"); err != nil {
				t.Fatalf("a request a minute later: %v", err)
			}
			if n := reportOnly(); n != 2 {
				t.Errorf("%d report_only events a minute later, want 2", n)
			}
		})
	}
}
