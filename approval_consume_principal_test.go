package guard_test

import (
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// Only a user or an API key consumes an approval, as only they request
// one: ConsumeApproval refuses any other principal with ErrForbidden, as
// RequestApproval, ApproveRequest and Approvals do, recorded as
// access.denied (invalid_principal) with an anonymous actor for a
// principal Guard did not make, never as a refusal by the user that
// principal names; the system (which has no tenant to record in) gets
// ErrForbidden alone.
func TestConsumeApprovalRefusesOtherPrincipals(t *testing.T) {
	f := newFixture(t)
	olga, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	const id = "0123456789abcdef0123456789abcdef"
	forged := guard.Principal{Tenant: tenantID, UserID: olga.UserID}
	if _, err := f.g.ConsumeApproval(f.ctx, forged, id, "campaigns:send", "c1", nil); !errors.Is(err, guard.ErrForbidden) {
		t.Errorf("ConsumeApproval by a principal Guard did not make = %v; want ErrForbidden", err)
	}
	for _, e := range f.events(t, audit.ApprovalConsumed) {
		if e.Actor.Kind == audit.ActorUser && e.Actor.ID == olga.UserID {
			t.Errorf("a forged principal's refusal is recorded as Olga's: %+v", e)
		}
	}
	if evs := f.events(t, audit.AccessDenied); len(evs) != 1 || evs[0].Reason != "invalid_principal" || evs[0].Actor.Kind != audit.ActorAnonymous {
		t.Errorf("access.denied events %+v; want one, reason invalid_principal, by an anonymous actor", evs)
	}
	if _, err := f.g.ConsumeApproval(f.ctx, guard.System("test"), id, "campaigns:send", "c1", nil); !errors.Is(err, guard.ErrForbidden) {
		t.Errorf("ConsumeApproval by the system = %v; want ErrForbidden", err)
	}
}
