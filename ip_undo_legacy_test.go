package guard_test

import (
	"slices"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/ipfilter"
)

// Severity: low. SetIPAllowList undoes a change it cannot record by
// putting the scope's previous list back; that put-back goes through
// ipfilter.Filter.Replace, which parses the old entries with the strict
// rules of a new list. A list stored before ErrUnspecified existed (an
// entry 0.0.0.0 or ::, which ipfilter.Compile keeps accepting so that the
// tenant's lists stay usable) is refused by those rules, so the put-back
// fails silently: the new list stays in force, unrecorded, although no
// store failed and no other change was made meanwhile (the only cases
// the doc names).
func TestSetIPAllowListUnrecordedIsUndoneOverLegacyList(t *testing.T) {
	var fa *failingAudit
	f := newFixture(t, withFailingAudit(&fa))
	sys := guard.System("test")
	// A list written by an older version: 0.0.0.0 was accepted then.
	old := []string{"192.0.2.0/24", "0.0.0.0"}
	if _, err := f.mem.IPLists.Replace(f.ctx, tenantID, ipfilter.Users, ipfilter.Rules{Entries: old}, 0); err != nil {
		t.Fatal(err)
	}
	before, err := f.g.IPAllowLists(f.ctx, sys, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	fa.set(true)
	_, err = f.g.SetIPAllowList(f.ctx, sys, tenantID, guard.IPListChange{Scope: ipfilter.Users,
		Entries: []string{"198.51.100.0/24"}, Version: before.Version})
	fa.set(false)
	wantUnavailable(t, "SetIPAllowList", err)
	after, err := f.g.IPAllowLists(f.ctx, sys, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(after.Users.Entries, old) {
		t.Errorf("allow-list %v in force although the change could not be recorded, want the previous %v back", after.Users.Entries, old)
	}
	if n := len(f.events(t, audit.IPListChanged)); n != 0 {
		t.Errorf("%d ip_list.changed events, want 0", n)
	}
}
