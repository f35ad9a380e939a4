package guard_test

import (
	"context"
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/rbac"
)

// beforeStatusWrite runs its hook, once armed, before the next status
// write it serves (SetStatus or Deactivate): in ApplyReview, between the
// plan and the write of a deactivation.
type beforeStatusWrite struct {
	auth.UserUpdater
	onceHook
}

func (s *beforeStatusWrite) Deactivate(ctx context.Context, tenant, id string) (bool, error) {
	s.run()
	return s.UserUpdater.Deactivate(ctx, tenant, id)
}

func (s *beforeStatusWrite) SetStatus(ctx context.Context, tenant, id string, st auth.Status) error {
	s.run()
	return s.UserUpdater.SetStatus(ctx, tenant, id, st)
}

// reviewRaceFixture is a tenant with an owner, an admin (the reviewer),
// a role beyond the admin (payer) and Mel, a member; status writes go
// through hook.
func reviewRaceFixture(t *testing.T) (f *mfaFixture, hook *beforeStatusWrite, admin guard.Principal, mel guard.User) {
	t.Helper()
	hook = &beforeStatusWrite{}
	f = newMFAFixture(t, func(c *guard.Config) {
		hook.UserUpdater = c.Stores.UserUpdates
		c.Stores.UserUpdates = hook
	})
	sys := guard.System("test")
	if err := f.g.DefineRole(f.ctx, sys, tenantID, "payer", []string{"billing:manage"}); err != nil {
		t.Fatal(err)
	}
	f.userWithRoles(t, "olga@example.test", rbac.Owner)
	admin, _ = f.userWithRoles(t, "adam@example.test", rbac.Admin)
	mel, err := f.g.CreateUser(f.ctx, sys, guard.NewUser{Tenant: tenantID, Email: "mel@example.test", Name: "Mel", Password: ownerPW, Roles: []string{rbac.Member}})
	if err != nil {
		t.Fatal(err)
	}
	return f, hook, admin, mel
}

// A review deactivation refused by the check after its write (a role
// beyond the reviewer granted meanwhile) undoes only what it wrote: a
// user another administrator deactivated between the review's plan and
// its write stays deactivated, not reactivated by the undo.
func TestReviewRefusedDeactivationLeavesUserDeactivatedMeanwhile(t *testing.T) {
	f, hook, admin, mel := reviewRaceFixture(t)
	sys := guard.System("test")
	// After the plan (Mel active, a member), before the write: the
	// owners make Mel a billing manager, then deactivate the account.
	hook.arm(func() {
		if err := f.g.GrantRole(f.ctx, sys, tenantID, "user:"+mel.ID, "payer"); err != nil {
			t.Errorf("GrantRole: %v", err)
		}
		if err := f.g.DeactivateUser(f.ctx, sys, tenantID, mel.ID); err != nil {
			t.Errorf("DeactivateUser: %v", err)
		}
	})
	if _, err := f.g.ApplyReview(f.ctx, admin, tenantID, []guard.Decision{{UserID: mel.ID, Deactivate: true}}); !errors.Is(err, guard.ErrForbidden) {
		t.Errorf("ApplyReview = %v, want ErrForbidden (a role beyond the reviewer)", err)
	}
	got, err := f.g.User(f.ctx, sys, tenantID, mel.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != auth.StatusDeactivated {
		t.Errorf("after a refused review deactivation, the user another administrator deactivated meanwhile is %s; want deactivated", got.Status)
	}
}

// The mirror case: a user deactivated when the review was planned,
// reactivated and given a role beyond the reviewer meanwhile. The review
// writes the deactivation, the check after it refuses it, and the undo
// puts back the status the write replaced: active.
func TestReviewRefusedDeactivationRestoresUserReactivatedMeanwhile(t *testing.T) {
	f, hook, admin, mel := reviewRaceFixture(t)
	sys := guard.System("test")
	if err := f.g.DeactivateUser(f.ctx, sys, tenantID, mel.ID); err != nil {
		t.Fatal(err)
	}
	// After the plan (Mel deactivated, a member), before the write: the
	// owners bring Mel back as a billing manager.
	hook.arm(func() {
		if err := f.g.ReactivateUser(f.ctx, sys, tenantID, mel.ID); err != nil {
			t.Errorf("ReactivateUser: %v", err)
		}
		if err := f.g.GrantRole(f.ctx, sys, tenantID, "user:"+mel.ID, "payer"); err != nil {
			t.Errorf("GrantRole: %v", err)
		}
	})
	_, err := f.g.ApplyReview(f.ctx, admin, tenantID, []guard.Decision{{UserID: mel.ID, Deactivate: true}})
	if !errors.Is(err, guard.ErrForbidden) {
		t.Errorf("ApplyReview = %v, want ErrForbidden (a role beyond the reviewer)", err)
	}
	got, gerr := f.g.User(f.ctx, sys, tenantID, mel.ID)
	if gerr != nil {
		t.Fatal(gerr)
	}
	if got.Status != auth.StatusActive {
		t.Errorf("after a refused review deactivation, the user reactivated meanwhile is %s; want active", got.Status)
	}
}
