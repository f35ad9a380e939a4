package rbactest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/guardhq/guard/rbac"
)

// Rules the suite stores: one of each type, and families by number.
var (
	permRule  = rbac.Rule{Type: rbac.RulePermission, Role: "editor", Section: rbac.Campaigns, Action: rbac.Write}
	grantRule = rbac.Rule{Type: rbac.RuleGrant, Role: "editor", Subject: "user:u1"}
	apprRule  = rbac.Rule{Type: rbac.RuleApproval, Section: rbac.Campaigns, Action: rbac.Send}
)

func grantN(i int) rbac.Rule {
	return rbac.Rule{Type: rbac.RuleGrant, Role: "member", Subject: fmt.Sprintf("user:u%d", i)}
}

// pc wraps a PolicyStore with checking helpers.
type pc struct {
	t  *testing.T
	st rbac.PolicyStore
}

func (c pc) update(tenant string, expect uint64, remove, add []rbac.Rule) {
	c.t.Helper()
	if err := c.st.Update(c.t.Context(), tenant, expect, remove, add); err != nil {
		c.t.Fatalf("Update(%s, expect %d): %v", tenant, expect, err)
	}
}

func (c pc) wantPolicy(tenant string, version uint64, rules ...rbac.Rule) {
	c.t.Helper()
	got, v, err := c.st.Policy(c.t.Context(), tenant)
	if err != nil {
		c.t.Fatalf("Policy(%s): %v", tenant, err)
	}
	if v != version {
		c.t.Errorf("Policy(%s) version = %d, want %d", tenant, v, version)
	}
	if !sameRules(got, rules) {
		c.t.Errorf("Policy(%s) rules =\n%s\nwant\n%s", tenant, fmtRules(got), fmtRules(rules))
	}
	if gv, err := c.st.Version(c.t.Context(), tenant); err != nil || gv != version {
		c.t.Errorf("Version(%s) = %d, %v; want %d", tenant, gv, err, version)
	}
}

func (c pc) changes(tenant string, since uint64) []rbac.Change {
	c.t.Helper()
	ch, err := c.st.Changes(c.t.Context(), tenant, since)
	if err != nil {
		c.t.Fatalf("Changes(%s, %d): %v", tenant, since, err)
	}
	return ch
}

func (c pc) wantChanges(tenant string, since uint64, want ...rbac.Change) {
	c.t.Helper()
	got := c.changes(tenant, since)
	if len(got) != len(want) {
		c.t.Fatalf("Changes(%s, %d) returned %d changes, want %d", tenant, since, len(got), len(want))
	}
	for i := range got {
		if got[i].Version != want[i].Version || !slices.Equal(got[i].Remove, want[i].Remove) || !slices.Equal(got[i].Add, want[i].Add) {
			c.t.Errorf("Changes(%s, %d)[%d] = %s, want %s", tenant, since, i, fmtChange(got[i]), fmtChange(want[i]))
		}
	}
}

// sameRules compares two rule lists as multisets.
func sameRules(a, b []rbac.Rule) bool {
	if len(a) != len(b) {
		return false
	}
	key := func(r rbac.Rule) string {
		return fmt.Sprintf("%q", []string{string(r.Type), r.Role, r.Subject, string(r.Section), string(r.Action)})
	}
	ka, kb := make([]string, len(a)), make([]string, len(b))
	for i := range a {
		ka[i], kb[i] = key(a[i]), key(b[i])
	}
	slices.Sort(ka)
	slices.Sort(kb)
	return slices.Equal(ka, kb)
}

func fmtRules(rs []rbac.Rule) string {
	var b strings.Builder
	for _, r := range rs {
		fmt.Fprintf(&b, "  %+v\n", r)
	}
	return b.String()
}

func fmtChange(c rbac.Change) string {
	return fmt.Sprintf("{Version %d Remove %v Add %v}", c.Version, c.Remove, c.Add)
}

var policyGroups = []group[rbac.PolicyStore]{
	{"Policy", []test[rbac.PolicyStore]{
		{"NeverUpdatedIsEmptyAtVersion0", func(t *testing.T, st rbac.PolicyStore) {
			c := pc{t, st}
			c.wantPolicy("acme", 0)
		}},
		{"RulesAndVersion", func(t *testing.T, st rbac.PolicyStore) {
			c := pc{t, st}
			c.update("acme", 0, nil, []rbac.Rule{permRule, grantRule, apprRule})
			c.wantPolicy("acme", 1, permRule, grantRule, apprRule)
			c.update("acme", 1, []rbac.Rule{grantRule}, []rbac.Rule{grantN(1)})
			c.wantPolicy("acme", 2, permRule, apprRule, grantN(1))
		}},
		{"EveryFieldRoundTrips", func(t *testing.T, st rbac.PolicyStore) {
			c := pc{t, st}
			long := func(n int, s string) string { return (strings.Repeat(s, n))[:n] }
			rules := []rbac.Rule{
				{Type: rbac.RulePermission, Role: "r" + long(rbac.MaxRoleLen-1, "a-_9z"), Section: rbac.Section("s" + long(rbac.MaxSectionLen-1, "x_-0")), Action: rbac.Manage},
				{Type: rbac.RuleGrant, Role: rbac.ReportsOnly, Subject: "key:" + long(rbac.MaxSubjectIDLen, "AbZ09-_")},
				{Type: rbac.RuleGrant, Role: "x", Subject: "user:0"},
				{Type: rbac.RuleApproval, Section: rbac.APIKeys, Action: rbac.Delete},
			}
			tenant := long(rbac.MaxTenantLen, "t-0_")
			c.update(tenant, 0, nil, rules)
			c.wantPolicy(tenant, 1, rules...)
			c.wantChanges(tenant, 0, rbac.Change{Version: 1, Add: rules})
		}},
	}},
	{"Version", []test[rbac.PolicyStore]{
		{"CountsUpdates", func(t *testing.T, st rbac.PolicyStore) {
			c := pc{t, st}
			for i := range 3 {
				c.update("acme", uint64(i), nil, []rbac.Rule{grantN(i)})
			}
			c.wantPolicy("acme", 3, grantN(0), grantN(1), grantN(2))
		}},
	}},
	{"Update", []test[rbac.PolicyStore]{
		{"RemovesThenAdds", func(t *testing.T, st rbac.PolicyStore) {
			c := pc{t, st}
			c.update("acme", 0, nil, []rbac.Rule{permRule, grantRule})
			// grantRule is both removed and added: it is there afterwards.
			c.update("acme", 1, []rbac.Rule{grantRule, permRule}, []rbac.Rule{grantRule, apprRule})
			c.wantPolicy("acme", 2, grantRule, apprRule)
		}},
		{"IsASet", func(t *testing.T, st rbac.PolicyStore) {
			c := pc{t, st}
			c.update("acme", 0, nil, []rbac.Rule{permRule, permRule, grantRule})
			c.wantPolicy("acme", 1, permRule, grantRule)
			c.update("acme", 1, nil, []rbac.Rule{permRule})
			c.wantPolicy("acme", 2, permRule, grantRule)
			c.update("acme", 2, []rbac.Rule{apprRule, grantN(7)}, nil)
			c.wantPolicy("acme", 3, permRule, grantRule)
			c.update("acme", 3, []rbac.Rule{grantRule, grantRule}, nil)
			c.wantPolicy("acme", 4, permRule)
		}},
		{"RulesDifferingInOneFieldAreDistinct", func(t *testing.T, st rbac.PolicyStore) {
			c := pc{t, st}
			base := rbac.Rule{Type: rbac.RulePermission, Role: "a", Section: rbac.Contacts, Action: rbac.Read}
			variants := []rbac.Rule{base}
			for _, f := range []func(*rbac.Rule){
				func(r *rbac.Rule) { r.Role = "b" },
				func(r *rbac.Rule) { r.Section = rbac.Reports },
				func(r *rbac.Rule) { r.Action = rbac.Write },
				func(r *rbac.Rule) { r.Type = rbac.RuleApproval; r.Role = "" },
				func(r *rbac.Rule) { r.Type = rbac.RuleGrant; r.Section, r.Action, r.Subject = "", "", "user:a" },
				func(r *rbac.Rule) { r.Type = rbac.RuleGrant; r.Section, r.Action, r.Subject = "", "", "key:a" },
			} {
				r := base
				f(&r)
				variants = append(variants, r)
			}
			c.update("acme", 0, nil, variants)
			c.wantPolicy("acme", 1, variants...)
			c.update("acme", 1, []rbac.Rule{base}, nil)
			c.wantPolicy("acme", 2, variants[1:]...)
		}},
		{"ConflictChangesNothing", func(t *testing.T, st rbac.PolicyStore) {
			c := pc{t, st}
			for _, expect := range []uint64{1, 5} {
				if err := st.Update(t.Context(), "acme", expect, nil, []rbac.Rule{permRule}); !errors.Is(err, rbac.ErrConflict) {
					t.Errorf("Update of a new tenant expecting version %d = %v, want ErrConflict", expect, err)
				}
			}
			c.wantPolicy("acme", 0)
			c.wantChanges("acme", 0)
			c.update("acme", 0, nil, []rbac.Rule{permRule})
			c.update("acme", 1, nil, []rbac.Rule{grantRule})
			for _, expect := range []uint64{0, 1, 3} {
				err := st.Update(t.Context(), "acme", expect, []rbac.Rule{permRule, grantRule}, []rbac.Rule{apprRule})
				if !errors.Is(err, rbac.ErrConflict) {
					t.Errorf("Update expecting version %d at version 2 = %v, want ErrConflict", expect, err)
				}
			}
			c.wantPolicy("acme", 2, permRule, grantRule)
			c.wantChanges("acme", 0,
				rbac.Change{Version: 1, Add: []rbac.Rule{permRule}},
				rbac.Change{Version: 2, Add: []rbac.Rule{grantRule}})
		}},
		{"NoRulesStillMovesTheVersion", func(t *testing.T, st rbac.PolicyStore) {
			c := pc{t, st}
			c.update("acme", 0, nil, nil)
			c.wantPolicy("acme", 1)
			c.update("acme", 1, []rbac.Rule{}, []rbac.Rule{})
			c.wantPolicy("acme", 2)
			c.wantChanges("acme", 0, rbac.Change{Version: 1}, rbac.Change{Version: 2})
		}},
	}},
	{"Changes", []test[rbac.PolicyStore]{
		{"AscendingAsGiven", func(t *testing.T, st rbac.PolicyStore) {
			c := pc{t, st}
			c.update("acme", 0, nil, []rbac.Rule{grantN(2), grantN(1), permRule})
			c.update("acme", 1, []rbac.Rule{grantN(9), grantN(1)}, []rbac.Rule{apprRule})
			c.update("acme", 2, []rbac.Rule{permRule}, nil)
			want := []rbac.Change{
				{Version: 1, Add: []rbac.Rule{grantN(2), grantN(1), permRule}},
				{Version: 2, Remove: []rbac.Rule{grantN(9), grantN(1)}, Add: []rbac.Rule{apprRule}},
				{Version: 3, Remove: []rbac.Rule{permRule}},
			}
			c.wantChanges("acme", 0, want...)
			c.wantChanges("acme", 1, want[1:]...)
			c.wantChanges("acme", 2, want[2:]...)
		}},
		{"NoneAtOrAboveTheVersion", func(t *testing.T, st rbac.PolicyStore) {
			c := pc{t, st}
			c.wantChanges("acme", 0)
			c.wantChanges("acme", 3)
			c.update("acme", 0, nil, []rbac.Rule{permRule})
			c.update("acme", 1, nil, []rbac.Rule{grantRule})
			c.wantChanges("acme", 2)
			c.wantChanges("acme", 3)
			c.wantChanges("acme", 1<<63)
		}},
		{"KeepsMinHistory", func(t *testing.T, st rbac.PolicyStore) {
			c := pc{t, st}
			const extra = 20
			n := rbac.MinHistory + extra
			var want []rbac.Change
			for i := range n {
				c.update("acme", uint64(i), nil, []rbac.Rule{grantN(i)})
				want = append(want, rbac.Change{Version: uint64(i + 1), Add: []rbac.Rule{grantN(i)}})
			}
			c.wantChanges("acme", extra, want[extra:]...)
			c.wantChanges("acme", uint64(n-1), want[n-1:]...)
			// Older changes may be gone; if they are returned, they are
			// all there.
			for _, since := range []uint64{0, 1, extra - 1} {
				got, err := st.Changes(t.Context(), "acme", since)
				switch {
				case errors.Is(err, rbac.ErrHistoryGone):
				case err != nil:
					t.Errorf("Changes(%d) = %v, want changes or ErrHistoryGone", since, err)
				default:
					if len(got) != n-int(since) || got[0].Version != since+1 {
						t.Errorf("Changes(%d) returned %d changes from version %d; want all %d from %d or ErrHistoryGone",
							since, len(got), got[0].Version, n-int(since), since+1)
					}
				}
			}
			rules := make([]rbac.Rule, n)
			for i := range n {
				rules[i] = grantN(i)
			}
			c.wantPolicy("acme", uint64(n), rules...)
		}},
	}},
	{"Tenants", []test[rbac.PolicyStore]{
		{"Independent", func(t *testing.T, st rbac.PolicyStore) {
			c := pc{t, st}
			c.update("acme", 0, nil, []rbac.Rule{permRule, grantRule})
			c.update("acme", 1, nil, []rbac.Rule{apprRule})
			c.wantPolicy("globex", 0)
			c.wantChanges("globex", 0)
			// globex starts at version 0 whatever acme's version is.
			if err := st.Update(t.Context(), "globex", 2, nil, []rbac.Rule{grantN(1)}); !errors.Is(err, rbac.ErrConflict) {
				t.Errorf("Update(globex, expect 2) = %v, want ErrConflict", err)
			}
			c.update("globex", 0, []rbac.Rule{permRule}, []rbac.Rule{grantN(1)})
			c.wantPolicy("acme", 2, permRule, grantRule, apprRule)
			c.wantPolicy("globex", 1, grantN(1))
			c.wantChanges("globex", 0, rbac.Change{Version: 1, Remove: []rbac.Rule{permRule}, Add: []rbac.Rule{grantN(1)}})
			c.wantChanges("acme", 1, rbac.Change{Version: 2, Add: []rbac.Rule{apprRule}})
			// Tenant names are compared exactly.
			c.wantPolicy("acm", 0)
			c.wantPolicy("acme-", 0)
		}},
	}},
}
