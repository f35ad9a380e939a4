package rbac_test

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/store/memstore"
)

// TestEquivalentToCasbin checks the compiled decision tables against
// casbin's own Enforce on the same policy, loaded through the Adapter into
// one casbin enforcer holding two tenants. The policies are random: custom
// roles over random permissions (including a host section), grants of
// built-in and custom roles to users and keys, grants of roles that have
// no permission, approval rules; they change in random batches written
// straight to the store, and the Enforcers follow through the change log
// (a replica that keeps deciding) or a fresh load (a new replica).
func TestEquivalentToCasbin(t *testing.T) {
	rounds, triples := 20, 200
	if testing.Short() {
		rounds, triples = 8, 100
	}
	rng := rand.New(rand.NewPCG(1, 2))
	st := memstore.NewPolicies()
	sections := append(rbac.BuiltInSections(), "automations")
	follower := newEnforcer(t, st, "automations")
	tenants := []string{"acme", "globex"}
	roleNames := []string{rbac.Owner, rbac.Admin, rbac.Manager, rbac.Member, rbac.ReportsOnly, "r0", "r1", "r2", "r3", "r4", "r5", "empty"}
	var subjects []rbac.Subject
	for i := range 12 {
		subjects = append(subjects, rbac.User(fmt.Sprint("u", i)))
	}
	subjects = append(subjects, rbac.Key("u0"), rbac.Key("k1"), rbac.Key("k2"))
	randPerm := func() rbac.Permission {
		return rbac.P(sections[rng.IntN(len(sections))], rbac.Actions()[rng.IntN(6)])
	}
	randRule := func() rbac.Rule {
		switch rng.IntN(10) {
		case 0:
			p := randPerm()
			return rbac.Rule{Type: rbac.RuleApproval, Section: p.Section, Action: p.Action}
		case 1, 2, 3, 4:
			p := randPerm()
			return rbac.Rule{Type: rbac.RulePermission, Role: fmt.Sprint("r", rng.IntN(6)), Section: p.Section, Action: p.Action}
		default:
			return rbac.Rule{Type: rbac.RuleGrant, Role: roleNames[rng.IntN(len(roleNames))], Subject: subjects[rng.IntN(len(subjects))].String()}
		}
	}
	held := map[string][]rbac.Rule{}
	compared, allowedCount := 0, 0
	for round := range rounds {
		for _, tn := range tenants {
			var remove, add []rbac.Rule
			for range rng.IntN(12) {
				add = append(add, randRule())
			}
			for range rng.IntN(6) {
				if h := held[tn]; len(h) > 0 {
					remove = append(remove, h[rng.IntN(len(h))])
				}
			}
			v, _ := st.Version(ctx, tn)
			if err := st.Update(ctx, tn, v, remove, add); err != nil {
				t.Fatal(err)
			}
			rules, _, _ := st.Policy(ctx, tn)
			held[tn] = rules
		}
		ce, err := follower.Casbin(ctx, tenants[0])
		if err != nil {
			t.Fatal(err)
		}
		if err := ce.LoadIncrementalFilteredPolicy(rbac.Filter{Tenant: tenants[1]}); err != nil {
			t.Fatal(err)
		}
		fresh := newEnforcer(t, st, "automations")
		for range triples {
			tn := tenants[rng.IntN(2)]
			sub := subjects[rng.IntN(len(subjects))]
			p := randPerm()
			want, err := ce.Enforce(sub.String(), tn, string(p.Section), string(p.Action))
			if err != nil {
				t.Fatal(err)
			}
			wantApproval, _ := ce.HasNamedPolicy("p2", tn, string(p.Section), string(p.Action))
			for name, e := range map[string]*rbac.Enforcer{"follower": follower, "fresh": fresh} {
				d, err := e.Decide(ctx, tn, sub, p.Section, p.Action)
				if err != nil {
					t.Fatal(err)
				}
				if d.Allowed != want || d.NeedsApproval != wantApproval {
					t.Fatalf("round %d, %s: Decide(%s, %s, %s) = %+v; casbin allows: %v, approval rule: %v",
						round, name, tn, sub, p, d, want, wantApproval)
				}
			}
			compared++
			if want {
				allowedCount++
			}
		}
	}
	if allowedCount == 0 || allowedCount == compared {
		t.Fatalf("%d of %d decisions allowed: the random policies do not exercise both outcomes", allowedCount, compared)
	}
	t.Logf("%d decisions compared with casbin, %d allowed", compared, allowedCount)
}
