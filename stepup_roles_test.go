package guard_test

import (
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// stepUpFixture has an admin whose session is older than the step-up
// window (stale), the same admin signed in again (recent), a member bob,
// a custom role "auditor" (held by bob), and an API key with the admin
// role created by the system.
type stepUpFixture struct {
	*fixture
	stale, recent guard.Principal
	bob           string
	key           guard.Principal
}

func newStepUpFixture(t *testing.T) *stepUpFixture {
	t.Helper()
	f := newFixture(t, func(c *guard.Config) { c.Defaults = guard.Policy{SessionLimit: 3} })
	sys := guard.System("test")
	if err := f.g.DefineRole(f.ctx, sys, tenantID, "auditor", []string{"audit:read"}); err != nil {
		t.Fatal(err)
	}
	stale, _ := f.userWithRoles(t, "adam@example.test", rbac.Admin)
	bob, _ := f.userWithRoles(t, "bob@example.test", rbac.Member, "auditor")
	key := f.keyWithRole(t, rbac.Admin)
	f.clock.Advance(guard.DefaultStepUpWindow + time.Minute)
	recent, _ := f.signIn(t, "adam@example.test")
	return &stepUpFixture{fixture: f, stale: stale, recent: recent, bob: "user:" + bob.UserID, key: key}
}

func (f *stepUpFixture) rolesOf(t *testing.T, subject string) []string {
	t.Helper()
	rs, err := f.g.RolesOf(f.ctx, guard.System("test"), tenantID, subject)
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(rs)
	return rs
}

// role returns the tenant's role name, if it has one.
func (f *stepUpFixture) role(t *testing.T, name string) (rbac.RoleInfo, bool) {
	t.Helper()
	rs, err := f.g.Roles(f.ctx, guard.System("test"), tenantID)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.IndexFunc(rs, func(r rbac.RoleInfo) bool { return r.Name == name })
	if i < 0 {
		return rbac.RoleInfo{}, false
	}
	return rs[i], true
}

// roleCalls are the calls that change who holds which role or what a
// role allows, each made by by.
var roleCalls = []struct {
	name   string
	action audit.Action
	call   func(f *stepUpFixture, by guard.Principal) error
	// changed reports whether the call's change is in place.
	changed func(t *testing.T, f *stepUpFixture) bool
}{
	{"GrantRole", audit.RoleGranted,
		func(f *stepUpFixture, by guard.Principal) error {
			return f.g.GrantRole(f.ctx, by, tenantID, f.bob, rbac.Admin)
		},
		func(t *testing.T, f *stepUpFixture) bool { return slices.Contains(f.rolesOf(t, f.bob), rbac.Admin) }},
	{"RevokeRole", audit.RoleRevoked,
		func(f *stepUpFixture, by guard.Principal) error {
			return f.g.RevokeRole(f.ctx, by, tenantID, f.bob, rbac.Member)
		},
		func(t *testing.T, f *stepUpFixture) bool { return !slices.Contains(f.rolesOf(t, f.bob), rbac.Member) }},
	{"DefineRole", audit.RoleDefined,
		func(f *stepUpFixture, by guard.Principal) error {
			return f.g.DefineRole(f.ctx, by, tenantID, "auditor", []string{"audit:read", "users:read"})
		},
		func(t *testing.T, f *stepUpFixture) bool {
			r, ok := f.role(t, "auditor")
			return ok && len(r.Permissions) == 2
		}},
	{"DefineRole new", audit.RoleDefined,
		func(f *stepUpFixture, by guard.Principal) error {
			return f.g.DefineRole(f.ctx, by, tenantID, "helpdesk", []string{"users:manage"})
		},
		func(t *testing.T, f *stepUpFixture) bool { _, ok := f.role(t, "helpdesk"); return ok }},
	{"DeleteRole", audit.RoleDeleted,
		func(f *stepUpFixture, by guard.Principal) error {
			return f.g.DeleteRole(f.ctx, by, tenantID, "auditor")
		},
		func(t *testing.T, f *stepUpFixture) bool { _, ok := f.role(t, "auditor"); return !ok }},
	{"CreateUser with roles", audit.UserCreated,
		func(f *stepUpFixture, by guard.Principal) error {
			_, err := f.g.CreateUser(f.ctx, by, guard.NewUser{Tenant: tenantID, Email: "eve@example.test", Name: "Eve", Roles: []string{rbac.Admin}})
			return err
		},
		func(t *testing.T, f *stepUpFixture) bool {
			_, err := f.g.UserByEmail(f.ctx, guard.System("test"), tenantID, "eve@example.test")
			return err == nil
		}},
}

// successes counts the successful events of action.
func (f *stepUpFixture) successes(t *testing.T, action audit.Action) int {
	t.Helper()
	n := 0
	for _, e := range f.events(t, action) {
		if e.Outcome == audit.Success {
			n++
		}
	}
	return n
}

// A stale user session of an admin changes no role: ErrStepUpRequired,
// checked before anything is written, and no success recorded; the same
// admin signed in again makes the change.
func TestStepUpRoleChanges_StaleSessionRefused(t *testing.T) {
	for _, c := range roleCalls {
		t.Run(c.name, func(t *testing.T) {
			f := newStepUpFixture(t)
			before := f.successes(t, c.action)
			granted := f.successes(t, audit.RoleGranted)
			ended := len(f.events(t, audit.SessionRevoked))
			if err := c.call(f, f.stale); !errors.Is(err, guard.ErrStepUpRequired) {
				t.Fatalf("%s with a stale session = %v, want ErrStepUpRequired", c.name, err)
			}
			if c.changed(t, f) {
				t.Errorf("%s with a stale session changed the roles", c.name)
			}
			if n := f.successes(t, c.action); n != before {
				t.Errorf("%s with a stale session recorded %d successful %s, want none", c.name, n-before, c.action)
			}
			if n := f.successes(t, audit.RoleGranted); n != granted {
				t.Errorf("%s with a stale session recorded %d role.granted", c.name, n-granted)
			}
			if n := len(f.events(t, audit.SessionRevoked)); n != ended {
				t.Errorf("%s with a stale session ended %d sessions", c.name, n-ended)
			}
			if err := c.call(f, f.recent); err != nil {
				t.Fatalf("%s with a recent session = %v", c.name, err)
			}
			if !c.changed(t, f) {
				t.Errorf("%s with a recent session changed nothing", c.name)
			}
		})
	}
}

// An API key keeps making role changes without a step-up (provisioning
// automation; a key cannot give one), within what it may grant.
func TestStepUpRoleChanges_APIKeyUnchanged(t *testing.T) {
	for _, c := range roleCalls {
		t.Run(c.name, func(t *testing.T) {
			f := newStepUpFixture(t)
			if err := c.call(f, f.key); err != nil {
				t.Fatalf("%s by an API key = %v", c.name, err)
			}
			if !c.changed(t, f) {
				t.Errorf("%s by an API key changed nothing", c.name)
			}
		})
	}
}

// A stale session without the permission is refused for the permission,
// as before: ErrForbidden, recorded as the call records it, not asked to
// step up.
func TestStepUpRoleChanges_NoPermissionFirst(t *testing.T) {
	for _, c := range roleCalls {
		t.Run(c.name, func(t *testing.T) {
			f := newStepUpFixture(t)
			max, _ := f.userWithRoles(t, "max@example.test", rbac.Member)
			f.clock.Advance(guard.DefaultStepUpWindow + time.Minute)
			denied := len(f.events(t, audit.AccessDenied))
			failed := len(f.events(t, c.action)) - f.successes(t, c.action)
			err := c.call(f, max)
			if !errors.Is(err, guard.ErrForbidden) || errors.Is(err, guard.ErrStepUpRequired) {
				t.Fatalf("%s by a member with a stale session = %v, want ErrForbidden", c.name, err)
			}
			recorded := len(f.events(t, audit.AccessDenied)) - denied + len(f.events(t, c.action)) - f.successes(t, c.action) - failed
			if recorded != 1 {
				t.Errorf("%s by a member: %d refusals recorded, want 1", c.name, recorded)
			}
			if c.changed(t, f) {
				t.Errorf("%s by a member changed the roles", c.name)
			}
		})
	}
}

// A user created without roles gives no privilege: a stale session may
// still do it, as before.
func TestStepUpRoleChanges_CreateUserWithoutRoles(t *testing.T) {
	f := newStepUpFixture(t)
	if _, err := f.g.CreateUser(f.ctx, f.stale, guard.NewUser{Tenant: tenantID, Email: "eve@example.test", Name: "Eve"}); err != nil {
		t.Fatalf("CreateUser without roles by a stale session = %v", err)
	}
}

// Many stale grants at once: every one refused, none lands.
func TestStepUpRoleChanges_StaleGrantsConcurrent(t *testing.T) {
	f := newStepUpFixture(t)
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for i := 0; i < 32; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			role := rbac.Admin
			if i%2 == 1 {
				role = rbac.Manager
			}
			errs <- f.g.GrantRole(f.ctx, f.stale, tenantID, f.bob, role)
		}(i)
	}
	wg.Wait()
	close(errs)
	wrong := 0
	var last error
	for err := range errs {
		if !errors.Is(err, guard.ErrStepUpRequired) {
			wrong, last = wrong+1, err
		}
	}
	if wrong > 0 {
		t.Errorf("%d of 32 concurrent stale GrantRole calls not refused with ErrStepUpRequired (last: %v)", wrong, last)
	}
	if rs := f.rolesOf(t, f.bob); !slices.Equal(rs, []string{"auditor", rbac.Member}) {
		t.Errorf("bob's roles after stale grants = %v, want unchanged", rs)
	}
}

// An access review needs no step-up (ApplyReview): a stale session of the
// reviewer applies its decisions.
func TestStepUpRoleChanges_ApplyReviewWithout(t *testing.T) {
	f := newStepUpFixture(t)
	id := f.bob[len("user:"):]
	if _, err := f.g.ApplyReview(f.ctx, f.stale, tenantID, []guard.Decision{{UserID: id, DowngradeTo: rbac.ReportsOnly}}); err != nil {
		t.Fatalf("ApplyReview by a stale session = %v", err)
	}
	if rs := f.rolesOf(t, f.bob); !slices.Equal(rs, []string{rbac.ReportsOnly}) {
		t.Errorf("bob's roles after the review = %v, want [reports-only]", rs)
	}
}

// A review's "downgrade" to a role that gives the user a permission they
// did not have is a promotion, and needs a recent authentication as
// GrantRole does: a stale session is refused with ErrStepUpRequired and
// nothing changes; a recent one applies it.
func TestStepUpRoleChanges_ApplyReviewPromotion(t *testing.T) {
	f := newStepUpFixture(t)
	id := f.bob[len("user:"):]
	promote := []guard.Decision{{UserID: id, DowngradeTo: rbac.Admin}}
	if _, err := f.g.ApplyReview(f.ctx, f.stale, tenantID, promote); !errors.Is(err, guard.ErrStepUpRequired) {
		t.Fatalf("ApplyReview promoting bob to admin by a stale session = %v, want ErrStepUpRequired", err)
	}
	if rs := f.rolesOf(t, f.bob); !slices.Equal(rs, []string{"auditor", rbac.Member}) {
		t.Errorf("bob's roles after a refused promotion = %v, want unchanged", rs)
	}
	if _, err := f.g.ApplyReview(f.ctx, f.recent, tenantID, promote); err != nil {
		t.Fatalf("ApplyReview promoting bob to admin by a recent session = %v", err)
	}
	if rs := f.rolesOf(t, f.bob); !slices.Equal(rs, []string{rbac.Admin}) {
		t.Errorf("bob's roles after the promotion = %v, want [admin]", rs)
	}
}
