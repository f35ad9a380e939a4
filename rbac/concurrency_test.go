package rbac_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/store/memstore"
)

// TestRevocationUnderLoad: replicas decide in a loop while one of them
// revokes; every decision that starts after Revoke returned denies.
func TestRevocationUnderLoad(t *testing.T) {
	st := memstore.NewPolicies()
	a, b := newEnforcer(t, st), newEnforcer(t, st)
	for i := range 200 {
		grant(t, a, "acme", rbac.User(fmt.Sprint("u", i)), rbac.Member)
	}
	grant(t, a, "acme", ada, rbac.Admin)
	var revoked atomic.Bool
	var stale, checks atomic.Int64
	done := make(chan struct{})
	var wg sync.WaitGroup
	for g := range 8 {
		e := []*rbac.Enforcer{a, b}[g%2]
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-done:
					return
				default:
				}
				sub := ada
				if i%2 == 1 {
					sub = rbac.User(fmt.Sprint("u", i%200))
				}
				after := revoked.Load()
				d, err := e.Decide(ctx, "acme", sub, rbac.Users, rbac.Manage)
				if err != nil {
					t.Error(err)
					return
				}
				if sub == ada {
					checks.Add(1)
					if after && d.Allowed {
						stale.Add(1)
					}
				}
			}
		})
	}
	for i := range 20 {
		grant(t, b, "acme", rbac.User(fmt.Sprint("x", i)), rbac.ReportsOnly) // churn
	}
	revoke(t, a, "acme", ada, rbac.Admin)
	revoked.Store(true)
	for i := range 20 {
		grant(t, b, "acme", rbac.User(fmt.Sprint("y", i)), rbac.ReportsOnly)
	}
	close(done)
	wg.Wait()
	if stale.Load() > 0 {
		t.Fatalf("%d decisions started after the revocation still allowed", stale.Load())
	}
	t.Logf("%d checks of the revoked admin", checks.Load())
}

// TestConcurrentChangesConverge: writers on two replicas grant, revoke and
// redefine roles at once; no change is lost, and every replica ends with
// the policy a fresh load sees.
func TestConcurrentChangesConverge(t *testing.T) {
	st := memstore.NewPolicies()
	reps := []*rbac.Enforcer{newEnforcer(t, st), newEnforcer(t, st)}
	grant(t, reps[0], "acme", ada, rbac.Owner)
	const writers, each = 8, 25
	var wg sync.WaitGroup
	var conflicts atomic.Int64
	for w := range writers {
		e := reps[w%2]
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(w), 7))
			for i := range each {
				sub := rbac.User(fmt.Sprintf("w%d-%d", w, i%5))
				var err error
				switch rng.IntN(4) {
				case 0:
					_, err = e.DefineRole(ctx, e.AllPerms(), "acme", fmt.Sprint("r", rng.IntN(3)),
						[]rbac.Permission{rbac.P(rbac.BuiltInSections()[rng.IntN(8)], rbac.Read)})
				case 1:
					err = e.Revoke(ctx, e.AllPerms(), "acme", sub, rbac.Member)
				default:
					err = e.Grant(ctx, e.AllPerms(), "acme", sub, []string{rbac.Member, rbac.Manager, rbac.ReportsOnly}[rng.IntN(3)])
				}
				if errors.Is(err, rbac.ErrConflict) {
					conflicts.Add(1)
				} else if err != nil {
					t.Error(err)
				}
				// Decisions interleave with the writes.
				if _, err := e.Decide(ctx, "acme", sub, rbac.Contacts, rbac.Read); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if conflicts.Load() > 0 {
		t.Errorf("%d changes gave up with ErrConflict", conflicts.Load())
	}
	want, err := newEnforcer(t, st).Assignments(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range reps {
		got, err := e.Assignments(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("replica %d: Assignments = %v\nfresh load: %v", i, got, want)
		}
		r1, _ := e.Roles(ctx, "acme")
		r2, _ := newEnforcer(t, st).Roles(ctx, "acme")
		if !reflect.DeepEqual(r1, r2) {
			t.Errorf("replica %d: Roles = %v\nfresh load: %v", i, r1, r2)
		}
	}
}

// TestConcurrentGrantsAllLand: 50 grants at once through two replicas all
// land (the compare-and-set retries, it never loses a change).
func TestConcurrentGrantsAllLand(t *testing.T) {
	st := memstore.NewPolicies()
	reps := []*rbac.Enforcer{newEnforcer(t, st), newEnforcer(t, st)}
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range 50 {
		wg.Go(func() {
			<-start
			e := reps[i%2]
			if err := e.Grant(ctx, e.AllPerms(), "acme", rbac.User(fmt.Sprint("u", i)), rbac.Member); err != nil {
				t.Error(err)
			}
		})
	}
	close(start)
	wg.Wait()
	for _, e := range reps {
		as, err := e.Assignments(ctx, "acme")
		if err != nil || len(as) != 50 {
			t.Errorf("Assignments: %d, %v; want 50", len(as), err)
		}
	}
	if v, _ := st.Version(ctx, "acme"); v != 50 {
		t.Errorf("version %d after 50 grants", v)
	}
}

// TestConcurrentOwnersKeepOne: owners revoking each other at once never
// leave the tenant without an owner.
func TestConcurrentOwnersKeepOne(t *testing.T) {
	for round := range 20 {
		st := memstore.NewPolicies()
		reps := []*rbac.Enforcer{newEnforcer(t, st), newEnforcer(t, st)}
		owners := []rbac.Subject{ada, bob, cleo}
		for _, o := range owners {
			grant(t, reps[0], "acme", o, rbac.Owner)
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i, by := range owners {
			e := reps[i%2]
			p := perms(t, e, "acme", by) // read before the race: stale on purpose
			for _, target := range owners {
				wg.Go(func() {
					<-start
					// p was read before the race; it is checked as the
					// revoker's permissions when the revocation lands, so
					// an owner already demoted is refused.
					err := e.Revoke(ctx, p, "acme", target, rbac.Owner)
					if err != nil && !errors.Is(err, rbac.ErrLastOwner) && !errors.Is(err, rbac.ErrDenied) && !errors.Is(err, rbac.ErrEscalation) {
						t.Error(err)
					}
				})
			}
		}
		close(start)
		wg.Wait()
		w, err := newEnforcer(t, st).Assignments(ctx, "acme")
		if err != nil {
			t.Fatal(err)
		}
		if len(w) != 1 {
			t.Fatalf("round %d: %d owners left, want exactly 1: %v", round, len(w), w)
		}
	}
}

// TestGrantRacesRoleWidening: an admin grants a role while the owner adds
// billing to it. The grant's escalation check holds when the grant lands:
// it lands before the widening, or is refused.
func TestGrantRacesRoleWidening(t *testing.T) {
	landed, refused := 0, 0
	for round := range 40 {
		st := memstore.NewPolicies()
		owner, admin := newEnforcer(t, st), newEnforcer(t, st)
		grant(t, owner, "acme", ada, rbac.Owner)
		grant(t, owner, "acme", bob, rbac.Admin)
		define(t, owner, "acme", "r", rbac.P(rbac.Reports, rbac.Read))
		byOwner, byAdmin := perms(t, owner, "acme", ada), perms(t, admin, "acme", bob)
		v0, _ := st.Version(ctx, "acme")
		var wg sync.WaitGroup
		start := make(chan struct{})
		var grantErr error
		wg.Go(func() {
			<-start
			if _, err := owner.DefineRole(ctx, byOwner, "acme", "r", []rbac.Permission{rbac.P(rbac.Reports, rbac.Read), rbac.P(rbac.Billing, rbac.Read)}); err != nil {
				t.Error(err)
			}
		})
		wg.Go(func() {
			<-start
			grantErr = admin.Grant(ctx, byAdmin, "acme", cleo, "r")
		})
		close(start)
		wg.Wait()
		changes, err := st.Changes(ctx, "acme", v0)
		if err != nil {
			t.Fatal(err)
		}
		var widened, granted uint64
		for _, ch := range changes {
			for _, r := range ch.Add {
				switch r.Type {
				case rbac.RulePermission:
					widened = ch.Version
				case rbac.RuleGrant:
					granted = ch.Version
				}
			}
		}
		switch {
		case grantErr == nil && (granted == 0 || granted > widened):
			t.Fatalf("round %d: the admin's grant landed at version %d, after the role gained billing at %d", round, granted, widened)
		case grantErr == nil:
			landed++
		case errors.Is(grantErr, rbac.ErrEscalation) && granted == 0:
			refused++
		default:
			t.Fatalf("round %d: Grant = %v, grant at version %d", round, grantErr, granted)
		}
	}
	t.Logf("%d grants landed first, %d refused after the widening", landed, refused)
}
