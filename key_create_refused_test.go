package guard_test

import (
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// A refused escalation changes nothing (CreateUser checks the roles
// before it creates anything, "so that a refused creation leaves nothing
// behind, not even for a moment"). CreateAPIKey with a role the creator
// lacks was refused only after the key was stored and recorded: the
// tenant was left with a key (revoked), and apikey.created and
// apikey.revoked events, for a creation that was refused. Now the roles
// are checked first, and the refusal is one failed apikey.created.
func TestRefusedKeyCreationLeavesNoKey(t *testing.T) {
	f := newFixture(t)
	admin, _ := f.userWithRoles(t, "adam@example.test", rbac.Admin)
	_, _, err := f.g.CreateAPIKey(f.ctx, admin, guard.NewAPIKey{Tenant: tenantID, Name: "billing sync", Roles: []string{rbac.Owner}})
	if !errors.Is(err, guard.ErrForbidden) {
		t.Fatalf("admin creating an owner key: %v, want ErrForbidden", err)
	}
	ks, err := f.g.ListAPIKeys(f.ctx, guard.System("t"), tenantID)
	if err != nil {
		t.Fatal(err)
	}
	evs := f.events(t, audit.APIKeyCreated)
	if len(ks) != 0 || len(evs) != 1 || evs[0].Outcome != audit.Failure || evs[0].Reason != "escalation" ||
		evs[0].Target != "billing sync" || evs[0].Meta["role"] != rbac.Owner {
		t.Errorf("after a refused CreateAPIKey: %d keys listed, apikey.created events %+v; want no key and one failure (escalation, role owner)", len(ks), evs)
	}
	if n := len(f.events(t, audit.APIKeyRevoked)); n != 0 {
		t.Errorf("%d apikey.revoked events after a refused creation, want none", n)
	}
}
