package guard_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// beforeUpdate wraps a PolicyStore and runs a hook, once, before the
// next Update it is given: a change another caller (or replica) makes
// just before that Update lands, so that it lands on a moved version and
// the Enforcer plans its change again.
type beforeUpdate struct {
	rbac.PolicyStore
	mu   sync.Mutex
	hook func()
}

// arm runs hook before the next Update (and not again).
func (s *beforeUpdate) arm(hook func()) {
	s.mu.Lock()
	s.hook = hook
	s.mu.Unlock()
}

func (s *beforeUpdate) Update(ctx context.Context, tenant string, expect uint64, remove, add []rbac.Rule) error {
	s.mu.Lock()
	hook := s.hook
	s.hook = nil
	s.mu.Unlock()
	if hook != nil {
		hook()
	}
	return s.PolicyStore.Update(ctx, tenant, expect, remove, add)
}

// withBeforeUpdate wraps the policy store in a beforeUpdate, stored in
// *pol.
func withBeforeUpdate(pol **beforeUpdate) func(*guard.Config) {
	return func(c *guard.Config) {
		*pol = &beforeUpdate{PolicyStore: c.Stores.Policies}
		c.Stores.Policies = *pol
	}
}

// slowPolicies is a PolicyStore a network away: each Version and
// Update takes a while, as on a database server, which widens the
// windows between one caller's reads and writes where another's land.
type slowPolicies struct {
	rbac.PolicyStore
}

const policyLatency = 200 * time.Microsecond

func (s slowPolicies) Version(ctx context.Context, tenant string) (uint64, error) {
	time.Sleep(policyLatency)
	return s.PolicyStore.Version(ctx, tenant)
}

func (s slowPolicies) Update(ctx context.Context, tenant string, expect uint64, remove, add []rbac.Rule) error {
	time.Sleep(policyLatency)
	return s.PolicyStore.Update(ctx, tenant, expect, remove, add)
}

// roleDeletedFor returns the targets of the successful role.revoked
// events of role with reason role_deleted, each as often as recorded.
func (f *fixture) roleDeletedFor(t testing.TB, role string) map[string]int {
	t.Helper()
	got := map[string]int{}
	for _, e := range f.events(t, audit.RoleRevoked) {
		if e.Outcome == audit.Success && e.Meta["role"] == role && e.Meta["reason"] == "role_deleted" {
			got[e.Target]++
		}
	}
	return got
}

// A grant of the role that lands after DeleteRole began, but before the
// deletion (which removes it), is one of the grants the deletion takes
// away: the holder's loss is on record (role.revoked, reason
// role_deleted) and the session the holder started while holding the
// role ends, as for a holder of long standing. Here the grant (and the
// holder's sign-in) lands just before the deletion's write, which then
// meets a moved version and is planned again.
func TestDeleteRoleRecordsAGrantLandingMeanwhile(t *testing.T) {
	var pol *beforeUpdate
	f := newFixture(t, withBeforeUpdate(&pol))
	sys := guard.System("test")
	if err := f.g.DefineRole(f.ctx, sys, tenantID, "helper", []string{"reports:read"}); err != nil {
		t.Fatal(err)
	}
	bob, _ := f.userWithRoles(t, "bob@example.test", "helper") // a holder of long standing
	_, bobTok := f.signIn(t, "bob@example.test")
	carl, _ := f.userWithRoles(t, "carl@example.test", rbac.Member)
	var carlTok string
	var hookErr error
	pol.arm(func() {
		if hookErr = f.g.GrantRole(f.ctx, sys, tenantID, rbac.User(carl.UserID).String(), "helper"); hookErr != nil {
			return
		}
		_, carlTok = f.signIn(t, "carl@example.test")
	})
	if err := f.g.DeleteRole(f.ctx, sys, tenantID, "helper"); err != nil {
		t.Fatal(err)
	}
	if hookErr != nil || carlTok == "" {
		t.Fatalf("the grant meanwhile did not happen: %v", hookErr)
	}
	if rs, err := f.g.RolesOf(f.ctx, sys, tenantID, rbac.User(carl.UserID).String()); err != nil || slices.Contains(rs, "helper") {
		t.Fatalf("carl's roles after the deletion = %v, %v; want no helper (the deletion removes the grant)", rs, err)
	}
	got := f.roleDeletedFor(t, "helper")
	for _, who := range []guard.Principal{bob, carl} {
		if n := got[rbac.User(who.UserID).String()]; n != 1 {
			t.Errorf("%d role.revoked (role_deleted) of %s, want 1 (recorded: %v)", n, who.UserID, got)
		}
	}
	for name, tok := range map[string]string{"bob": bobTok, "carl": carlTok} {
		if _, err := f.g.Authenticate(f.ctx, tok); err == nil {
			t.Errorf("%s's session, started while holding the role, outlives its deletion", name)
		}
	}
}

// Many grants of a role race its deletion: every grant that succeeded
// landed before the deletion (a later one finds no role) and so is taken
// away by it: each such grantee, and no one else, has its loss on record
// (one role.revoked, reason role_deleted), and a session the grantee
// started before the deletion began has ended when DeleteRole returns.
func TestDeleteRoleRacingGrants(t *testing.T) {
	f := newFixture(t, func(c *guard.Config) {
		c.Defaults = guard.Policy{SessionLimit: 3}
		c.Stores.Policies = slowPolicies{c.Stores.Policies}
	})
	sys := guard.System("test")
	const users, rounds = 16, 24
	ids := make([]string, users)
	emails := make([]string, users)
	for i := range users {
		emails[i] = fmt.Sprintf("u%02d@example.test", i)
		p, _ := f.userWithRoles(t, emails[i], rbac.Member)
		ids[i] = p.UserID
	}
	var grants, refused, early int // over all rounds
	for r := range rounds {
		role := fmt.Sprintf("helper%d", r)
		if err := f.g.DefineRole(f.ctx, sys, tenantID, role, []string{"reports:read"}); err != nil {
			t.Fatal(err)
		}
		var (
			started atomic.Bool  // the deletion has begun
			granted atomic.Int32 // grants done (succeeded or not)
			ok      = make([]bool, users)
			before  = make([]string, users) // a session started before the deletion began
			errs    = make([]error, users)
			wg      sync.WaitGroup
		)
		for i := range users {
			wg.Add(1)
			go func() {
				defer wg.Done()
				err := f.g.GrantRole(f.ctx, sys, tenantID, rbac.User(ids[i]).String(), role)
				granted.Add(1)
				if err != nil {
					// Refused once the role is gone, or (rarely) after
					// too many concurrent changes: not granted.
					if !errors.Is(err, rbac.ErrRoleNotFound) && !errors.Is(err, guard.ErrConflict) {
						errs[i] = err
					}
					return
				}
				ok[i] = true
				res, err := f.login(emails[i], ownerPW)
				if err != nil {
					errs[i] = err
					return
				}
				if !started.Load() {
					before[i] = res.Token
				}
			}()
		}
		// The deletion once a few grants are through, while others run.
		for granted.Load() < users/4 {
			runtime.Gosched()
		}
		started.Store(true)
		derr := f.g.DeleteRole(f.ctx, sys, tenantID, role)
		for errors.Is(derr, guard.ErrConflict) {
			derr = f.g.DeleteRole(f.ctx, sys, tenantID, role)
		}
		wg.Wait()
		if derr != nil {
			t.Fatalf("round %d: DeleteRole: %v", r, derr)
		}
		for i, err := range errs {
			if err != nil {
				t.Fatalf("round %d: user %d: %v", r, i, err)
			}
		}
		got := f.roleDeletedFor(t, role)
		for i := range users {
			sub := rbac.User(ids[i]).String()
			switch n := got[sub]; {
			case ok[i] && n != 1:
				t.Errorf("round %d: %s's grant succeeded and the deletion took it: %d role.revoked (role_deleted), want 1", r, sub, n)
			case !ok[i] && n != 0:
				t.Errorf("round %d: %s was never granted the role: %d role.revoked (role_deleted), want 0", r, sub, n)
			}
			if ok[i] {
				grants++
			} else {
				refused++
			}
			if before[i] != "" {
				early++
				if _, err := f.g.Authenticate(f.ctx, before[i]); err == nil {
					t.Errorf("round %d: %s's session, started holding the role before the deletion, outlives it", r, sub)
				}
			}
		}
	}
	t.Logf("%d grants taken by the deletion, %d refused (the role gone), %d sessions started before it", grants, refused, early)
	if grants == 0 {
		t.Error("no grant succeeded: the race was not run")
	}
}
