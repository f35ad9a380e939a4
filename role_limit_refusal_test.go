package guard_test

import (
	"errors"
	"fmt"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// A custom role past the tenant's bound (rbac.DefaultMaxCustomRoles) is
// refused with rbac.ErrTooManyRoles, and the refusal is on record as a
// failed role.defined with reason limit, as CreateAPIKey records one past
// Config.MaxAPIKeys.
func TestDefineRoleLimitRefusalRecorded(t *testing.T) {
	f := newFixture(t)
	sys := guard.System("test")
	for i := range rbac.DefaultMaxCustomRoles {
		if err := f.g.DefineRole(f.ctx, sys, tenantID, fmt.Sprintf("r%d", i), []string{"reports:read"}); err != nil {
			t.Fatal(err)
		}
	}
	err := f.g.DefineRole(f.ctx, sys, tenantID, "one-too-many", []string{"reports:read"})
	if !errors.Is(err, rbac.ErrTooManyRoles) {
		t.Fatalf("DefineRole past the bound = %v, want rbac.ErrTooManyRoles", err)
	}
	for _, e := range f.events(t, audit.RoleDefined) {
		if e.Target == "one-too-many" && e.Outcome == audit.Failure && e.Reason == "limit" {
			return
		}
	}
	t.Errorf("no failed role.defined (reason limit) recorded for the role refused past the bound")
}
