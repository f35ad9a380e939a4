package guard_test

import (
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/rbac"
)

// A role change refused for its name whatever the session's age (defining
// or deleting a built-in role, defining one under a name that is refused
// or reads as a built-in one) is refused for its name (an input error,
// recorded nowhere, as before) without a step-up first: asking a stale
// session to confirm its identity only to refuse the change after it
// would waste the user's step-up. A change the name allows still needs
// the step-up.
func TestRoleChangeRefusedForNameWithoutStepUp(t *testing.T) {
	f := newStepUpFixture(t)
	for _, c := range []struct {
		what string
		call func() error
		want func(error) bool
	}{
		{"DeleteRole owner", func() error { return f.g.DeleteRole(f.ctx, f.stale, tenantID, rbac.Owner) },
			func(err error) bool { return errors.Is(err, rbac.ErrBuiltInRole) }},
		{"DefineRole admin", func() error { return f.g.DefineRole(f.ctx, f.stale, tenantID, rbac.Admin, []string{"audit:read"}) },
			func(err error) bool { return errors.Is(err, rbac.ErrBuiltInRole) }},
		{"DefineRole Own-er", func() error { return f.g.DefineRole(f.ctx, f.stale, tenantID, "own-er", []string{"audit:read"}) },
			func(err error) bool { var ie *rbac.InputError; return errors.As(err, &ie) }},
	} {
		if err := c.call(); !c.want(err) {
			t.Errorf("%s by a stale session: %v, want the name's refusal, not a step-up", c.what, err)
		}
	}
	if err := f.g.DeleteRole(f.ctx, f.stale, tenantID, "auditor"); !errors.Is(err, guard.ErrStepUpRequired) {
		t.Errorf("DeleteRole auditor by a stale session: %v, want ErrStepUpRequired", err)
	}
	if err := f.g.DefineRole(f.ctx, f.stale, tenantID, "viewer", []string{"audit:read"}); !errors.Is(err, guard.ErrStepUpRequired) {
		t.Errorf("DefineRole viewer by a stale session: %v, want ErrStepUpRequired", err)
	}
}
