package guard_test

import (
	"net/netip"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/rbac"
)

// Approvals lists a caller's own requests and those they may decide, page
// by page as the store does, and nothing else.
func TestApprovalsListsOwnAndDecidable(t *testing.T) {
	f := newFixture(t)
	owner, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	mia, _ := f.userWithRoles(t, "mia@example.test", rbac.Member)
	rob, _ := f.userWithRoles(t, "rob@example.test", rbac.Manager)
	ann, _ := f.userWithRoles(t, "ann@example.test", rbac.Manager)
	ask := func(p guard.Principal, target string) rbac.Approval {
		t.Helper()
		ap, err := f.g.RequestApproval(f.ctx, p, "campaigns:send", target, []byte(target), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Second)
		return ap
	}
	mine := ask(mia, "m1")
	for _, target := range []string{"r1", "r2", "r3"} {
		ask(rob, target)
	}
	key, _, err := f.g.CreateAPIKey(f.ctx, owner, guard.NewAPIKey{Tenant: tenantID, Name: "ci", Roles: []string{rbac.Member}})
	if err != nil {
		t.Fatal(err)
	}
	kp, err := f.g.AuthenticateAPIKey(f.ctx, key, netip.MustParseAddr("203.0.113.5"))
	if err != nil {
		t.Fatal(err)
	}
	keys := ask(kp, "k1")
	list := func(p guard.Principal, q rbac.ApprovalQuery) []string {
		t.Helper()
		as, err := f.g.Approvals(f.ctx, p, q)
		if err != nil {
			t.Fatal(err)
		}
		var targets []string
		for _, a := range as {
			targets = append(targets, a.Target)
		}
		return targets
	}
	for name, c := range map[string]struct {
		p    guard.Principal
		want int
	}{"a requester without approve": {mia, 1}, "an approver": {ann, 5}, "a requesting approver": {rob, 5}, "the owner": {owner, 5}, "a key": {kp, 1}} {
		if got := list(c.p, rbac.ApprovalQuery{}); len(got) != c.want {
			t.Errorf("Approvals by %s = %v, want %d", name, got, c.want)
		}
	}
	// Paging passes over what the caller may not see.
	if got := list(mia, rbac.ApprovalQuery{Limit: 1}); len(got) != 1 || got[0] != mine.Target {
		t.Errorf("mia's first page of 1 = %v, want [m1]", got)
	}
	if got := list(kp, rbac.ApprovalQuery{Limit: 1}); len(got) != 1 || got[0] != keys.Target {
		t.Errorf("the key's first page of 1 = %v, want [k1]", got)
	}
	if got := list(ann, rbac.ApprovalQuery{Limit: 2, Before: keys.ID}); len(got) != 2 || got[0] != "r3" || got[1] != "r2" {
		t.Errorf("ann's page of 2 before k1 = %v, want [r3 r2]", got)
	}
}
