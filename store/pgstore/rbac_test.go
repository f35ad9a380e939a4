package pgstore_test

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/store/pgstore"
)

func grantRule(i int) rbac.Rule {
	return rbac.Rule{Type: rbac.RuleGrant, Role: rbac.Member, Subject: fmt.Sprintf("user:u%d", i)}
}

// update runs st.Policies.Update and fails t on an error.
func update(t *testing.T, st *pgstore.Store, tenant string, expect uint64, remove, add []rbac.Rule) {
	t.Helper()
	if err := st.Policies.Update(t.Context(), tenant, expect, remove, add); err != nil {
		t.Fatalf("Update(%s, expect %d): %v", tenant, expect, err)
	}
}

// changeRows returns the number of logged changes of tenant.
func changeRows(t *testing.T, st *pgstore.Store, tenant string) int {
	t.Helper()
	var n int
	err := testPool(t).QueryRow(t.Context(), `SELECT count(*) FROM `+pgx.Identifier{st.Schema(), "rbac_changes"}.Sanitize()+` WHERE tenant = $1`, []byte(tenant)).Scan(&n)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// The log keeps the latest PolicyHistory changes of a tenant: older ones
// are pruned (ErrHistoryGone), the kept ones come back complete, and
// another tenant's log is untouched. The first PolicyHistory-1 updates
// (update i adds rule i) are seeded with one COPY per table, in the
// layout rbac_update writes, rather than sent one by one; the last four
// are Updates.
func TestPolicyHistoryPruned(t *testing.T) {
	st := newStore(t)
	ctx := t.Context()
	const extra = 3
	n := pgstore.PolicyHistory + extra
	seeded := pgstore.PolicyHistory - 1
	var logRows, ruleRows [][]any
	for i := range seeded {
		r := grantRule(i)
		logRows = append(logRows, []any{[]byte("acme"), int64(i + 1), [][]byte{},
			[][]byte{[]byte(r.Type), []byte(r.Role), []byte(r.Subject), {}, {}}})
		ruleRows = append(ruleRows, []any{[]byte("acme"), []byte(r.Type), []byte(r.Role), []byte(r.Subject), []byte{}, []byte{}})
	}
	for _, c := range []struct {
		table string
		cols  []string
		rows  [][]any
	}{
		{"rbac_versions", []string{"tenant", "version"}, [][]any{{[]byte("acme"), int64(seeded)}}},
		{"rbac_changes", []string{"tenant", "version", "remove_rules", "add_rules"}, logRows},
		{"rbac_rules", []string{"tenant", "rule_type", "role", "subject", "section", "action"}, ruleRows},
	} {
		if _, err := testPool(t).CopyFrom(ctx, pgx.Identifier{st.Schema(), c.table}, c.cols, pgx.CopyFromRows(c.rows)); err != nil {
			t.Fatalf("seeding %s: %v", c.table, err)
		}
	}
	if ch, err := st.Policies.Changes(ctx, "acme", 0); err != nil || len(ch) != seeded || ch[seeded-1].Add[0] != grantRule(seeded-1) {
		t.Fatalf("Changes of the seeded log = %d changes, %v", len(ch), err)
	}
	for i := seeded; i < n; i++ {
		update(t, st, "acme", uint64(i), nil, []rbac.Rule{grantRule(i)})
	}
	update(t, st, "globex", 0, nil, []rbac.Rule{grantRule(0)})
	if got := changeRows(t, st, "acme"); got != pgstore.PolicyHistory {
		t.Errorf("%d changes logged after %d updates, want %d", got, n, pgstore.PolicyHistory)
	}
	for _, since := range []uint64{0, 1, extra - 1} {
		if ch, err := st.Policies.Changes(ctx, "acme", since); !errors.Is(err, rbac.ErrHistoryGone) {
			t.Errorf("Changes(%d) = %d changes, %v; want ErrHistoryGone", since, len(ch), err)
		}
	}
	ch, err := st.Policies.Changes(ctx, "acme", extra)
	if err != nil || len(ch) != pgstore.PolicyHistory {
		t.Fatalf("Changes(%d) = %d changes, %v; want %d", extra, len(ch), err, pgstore.PolicyHistory)
	}
	for i, c := range ch {
		v := extra + 1 + i
		if c.Version != uint64(v) || len(c.Remove) != 0 || len(c.Add) != 1 || c.Add[0] != grantRule(v-1) {
			t.Fatalf("change %d = %+v, want version %d adding rule %d", i, c, v, v-1)
		}
	}
	if ch, err := st.Policies.Changes(ctx, "globex", 0); err != nil || len(ch) != 1 {
		t.Errorf("Changes(globex, 0) = %v, %v; want its one change", ch, err)
	}
	// Pruning the log loses no rule.
	rules, v, err := st.Policies.Policy(ctx, "acme")
	if err != nil || v != uint64(n) || len(rules) != n {
		t.Errorf("Policy = %d rules at version %d, %v; want %d at %d", len(rules), v, err, n, n)
	}
}

// Pruning is bounded work: an Update deletes at most GCBatch old
// changes, however many are due (here after the number kept is lowered).
func TestPolicyHistoryPruneBounded(t *testing.T) {
	st := newStore(t)
	const n = 30
	for i := range n {
		update(t, st, "acme", uint64(i), nil, []rbac.Rule{grantRule(i)})
	}
	const keep = 5
	pgstore.SetPolicyHistory(st.Policies, keep)
	rows := n
	for v := uint64(n); rows > keep; v++ {
		update(t, st, "acme", v, nil, nil)
		want := max(rows+1-pgstore.GCBatch, keep)
		if got := changeRows(t, st, "acme"); got != want {
			t.Fatalf("after the update to version %d: %d changes logged, want %d", v+1, got, want)
		}
		rows = want
	}
	v, err := st.Policies.Version(t.Context(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if ch, err := st.Policies.Changes(t.Context(), "acme", v-keep); err != nil || len(ch) != keep {
		t.Errorf("Changes of the last %d = %d, %v", keep, len(ch), err)
	}
	if _, err := st.Policies.Changes(t.Context(), "acme", v-keep-1); !errors.Is(err, rbac.ErrHistoryGone) {
		t.Errorf("Changes beyond the kept ones = %v, want ErrHistoryGone", err)
	}
}

// The stores hold strings as given: any byte, NUL and invalid UTF-8
// included, in tenants, rules, IDs and targets; IDs order byte by byte.
func TestRBACAnyBytes(t *testing.T) {
	st := newStore(t)
	ctx := t.Context()
	odd := []string{"", "a\x00b", "\xff\xfe", "ünï", "x,y::*"}
	for i, tenant := range odd {
		var rules []rbac.Rule
		for _, s := range odd {
			rules = append(rules, rbac.Rule{Type: rbac.RuleType(s), Role: s + "r", Subject: "s" + s, Section: rbac.Section(s), Action: rbac.Action(s + "\x00")})
		}
		update(t, st, tenant, 0, nil, rules)
		update(t, st, tenant, 1, rules[:1], []rbac.Rule{{}})
		got, v, err := st.Policies.Policy(ctx, tenant)
		want := append(slices.Clone(rules[1:]), rbac.Rule{})
		if err != nil || v != 2 || !sameRuleSet(got, want) {
			t.Errorf("tenant %d: Policy = %q at %d, %v; want %q at 2", i, got, v, err, want)
		}
		ch, err := st.Policies.Changes(ctx, tenant, 0)
		if err != nil || len(ch) != 2 || !slices.Equal(ch[0].Add, rules) || !slices.Equal(ch[1].Remove, rules[:1]) || !slices.Equal(ch[1].Add, []rbac.Rule{{}}) {
			t.Errorf("tenant %d: Changes = %+v, %v", i, ch, err)
		}
	}
	// Tenants differing in one byte are distinct.
	if v, err := st.Policies.Version(ctx, "a\x00"); err != nil || v != 0 {
		t.Errorf("Version(a NUL) = %d, %v; want 0", v, err)
	}

	ids := []string{"\xff", "a", "a\x00", "\x00", "\x7f", "\x80"}
	for i, id := range ids {
		a := rbac.Approval{ID: id, Tenant: "t\x00", Requester: rbac.User("u\x00\xff"), Permission: rbac.P("s\x00", "a\xff"),
			Target: fmt.Sprintf("target\x00%d\xfe", i), PayloadHash: sha256.Sum256([]byte(id)), CreatedAt: replicaNow,
			ExpiresAt: replicaNow.Add(time.Hour), Status: rbac.StatusPending}
		if err := st.Approvals.CreateApproval(ctx, a); err != nil {
			t.Fatal(err)
		}
		got, err := st.Approvals.Approval(ctx, a.Tenant, id)
		if err != nil || got.Target != a.Target || got.Requester != a.Requester || got.Permission != a.Permission {
			t.Errorf("Approval(%q) = %+v, %v", id, got, err)
		}
		c := rbac.Claim{Requester: a.Requester, Permission: a.Permission, Target: a.Target, PayloadHash: a.PayloadHash}
		if _, err := st.Approvals.DecideApproval(ctx, a.Tenant, id, rbac.User("u\x00"), rbac.StatusApproved, replicaNow); err != nil {
			t.Errorf("DecideApproval(%q): %v", id, err)
		}
		if _, err := st.Approvals.ConsumeApproval(ctx, a.Tenant, id, c, replicaNow); err != nil {
			t.Errorf("ConsumeApproval(%q): %v", id, err)
		}
	}
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	slices.Reverse(sorted)
	for _, q := range []rbac.ApprovalQuery{{}, {Before: "\x80"}, {Before: "a\x00", Status: rbac.StatusConsumed, Limit: 2}} {
		want := slices.DeleteFunc(slices.Clone(sorted), func(id string) bool { return q.Before != "" && id >= q.Before })
		if q.Limit > 0 {
			want = want[:q.Limit]
		}
		got, err := st.Approvals.ListApprovals(ctx, "t\x00", q)
		if err != nil {
			t.Fatal(err)
		}
		gotIDs := make([]string, len(got))
		for i := range got {
			gotIDs[i] = got[i].ID
		}
		if !slices.Equal(gotIDs, want) {
			t.Errorf("ListApprovals(%+v) = %q, want %q", q, gotIDs, want)
		}
	}
}

// sameRuleSet compares rule lists as sets.
func sameRuleSet(a, b []rbac.Rule) bool {
	set := func(rs []rbac.Rule) map[rbac.Rule]bool {
		m := make(map[rbac.Rule]bool)
		for _, r := range rs {
			m[r] = true
		}
		return m
	}
	sa, sb := set(a), set(b)
	if len(sa) != len(sb) || len(a) != len(sa) {
		return false
	}
	for r := range sa {
		if !sb[r] {
			return false
		}
	}
	return true
}

// DecideApproval takes only StatusApproved and StatusRejected: any other
// status is an *rbac.InputError and changes nothing.
func TestDecideApprovalStatus(t *testing.T) {
	st := newStore(t)
	ctx := t.Context()
	a := rbac.Approval{ID: "0001", Tenant: "acme", Requester: rbac.User("alice"), Permission: rbac.P(rbac.Campaigns, rbac.Send),
		Target: "c1", CreatedAt: replicaNow, ExpiresAt: replicaNow.Add(time.Hour), Status: rbac.StatusPending}
	if err := st.Approvals.CreateApproval(ctx, a); err != nil {
		t.Fatal(err)
	}
	for _, s := range []rbac.Status{rbac.StatusConsumed, rbac.StatusPending, rbac.StatusExpired, "", "APPROVED"} {
		var ie *rbac.InputError
		if _, err := st.Approvals.DecideApproval(ctx, "acme", a.ID, rbac.User("bob"), s, replicaNow); !errors.As(err, &ie) {
			t.Errorf("DecideApproval(status %q) = %v, want *rbac.InputError", s, err)
		}
	}
	if got, err := st.Approvals.Approval(ctx, "acme", a.ID); err != nil || got.Status != rbac.StatusPending || !got.DecidedAt.IsZero() {
		t.Errorf("Approval after refused decisions = %+v, %v; want it pending", got, err)
	}
}

// Of 20 Updates from the same version on two replicas, exactly one wins,
// both for a tenant's first update (an insert of its version row) and for
// a later one; the policy and the log then hold the winner's change.
func TestReplicasPolicyUpdate(t *testing.T) {
	a, b := twoReplicas(t)
	ctx := t.Context()
	update(t, a, "acme", 0, nil, []rbac.Rule{grantRule(-1)})
	for _, st := range []*pgstore.Store{a, b} { // prepares Update on every connection
		parallel(6, func(int) {
			if err := st.Policies.Update(ctx, "acme", 99, nil, nil); !errors.Is(err, rbac.ErrConflict) {
				t.Errorf("Update from a wrong version = %v, want ErrConflict", err)
			}
		})
	}
	for _, tc := range []struct {
		tenant string
		expect uint64
		before []rbac.Rule
	}{{"globex", 0, nil}, {"acme", 1, []rbac.Rule{grantRule(-1)}}} {
		const n = 20
		var mu sync.Mutex
		var winners []int
		parallel(n, func(i int) {
			st := a
			if i%2 == 1 {
				st = b
			}
			switch err := st.Policies.Update(ctx, tc.tenant, tc.expect, tc.before, []rbac.Rule{grantRule(i)}); {
			case err == nil:
				mu.Lock()
				winners = append(winners, i)
				mu.Unlock()
			case !errors.Is(err, rbac.ErrConflict):
				t.Errorf("Update %d of %s from version %d: %v", i, tc.tenant, tc.expect, err)
			}
		})
		if len(winners) != 1 {
			t.Fatalf("%s from version %d: %d Updates won (%v), want exactly 1", tc.tenant, tc.expect, len(winners), winners)
		}
		w := grantRule(winners[0])
		for _, st := range []*pgstore.Store{a, b} {
			rules, v, err := st.Policies.Policy(ctx, tc.tenant)
			if err != nil || v != tc.expect+1 || len(rules) != 1 || rules[0] != w {
				t.Errorf("%s after the race: Policy = %v at %d, %v; want only %v at %d", tc.tenant, rules, v, err, w, tc.expect+1)
			}
			ch, err := st.Policies.Changes(ctx, tc.tenant, tc.expect)
			if err != nil || len(ch) != 1 || ch[0].Version != tc.expect+1 || len(ch[0].Add) != 1 || ch[0].Add[0] != w {
				t.Errorf("%s after the race: Changes = %+v, %v; want the winner's alone", tc.tenant, ch, err)
			}
		}
	}
}

// approvalFixture is a pending approval of acme by alice, valid for an
// hour from replicaNow.
func approvalFixture() rbac.Approval {
	return rbac.Approval{ID: "00065f0e3a1c2b3d4e5f60718293a4b5", Tenant: "acme", Requester: rbac.User("alice"),
		Permission: rbac.P(rbac.Campaigns, rbac.Send), Target: "c-42", PayloadHash: sha256.Sum256([]byte("payload")),
		CreatedAt: replicaNow, ExpiresAt: replicaNow.Add(time.Hour), Status: rbac.StatusPending}
}

// primeApprovals calls DecideApproval and ConsumeApproval for a missing
// approval on every connection of each store's pool (6), so that pgx has
// prepared them everywhere: the calls that race next then reach the
// server together.
func primeApprovals(t *testing.T, stores ...*pgstore.Store) {
	t.Helper()
	for _, st := range stores {
		parallel(6, func(int) {
			if _, err := st.Approvals.DecideApproval(t.Context(), "acme", "missing", rbac.User("x"), rbac.StatusApproved, replicaNow); !errors.Is(err, rbac.ErrNotFound) {
				t.Errorf("DecideApproval of a missing approval = %v, want ErrNotFound", err)
			}
			if _, err := st.Approvals.ConsumeApproval(t.Context(), "acme", "missing", rbac.Claim{}, replicaNow); !errors.Is(err, rbac.ErrNotFound) {
				t.Errorf("ConsumeApproval of a missing approval = %v, want ErrNotFound", err)
			}
		})
	}
}

// An approval is decided once, whichever replica the deciders reach.
func TestReplicasDecideApproval(t *testing.T) {
	a, b := twoReplicas(t)
	ap := approvalFixture()
	if err := a.Approvals.CreateApproval(t.Context(), ap); err != nil {
		t.Fatal(err)
	}
	primeApprovals(t, a, b)
	var i atomic.Int32
	onceOnReplicas(t, a, b, "DecideApproval", rbac.ErrNotPending, func(st *pgstore.Store) error {
		k := i.Add(1)
		status := rbac.StatusApproved
		if k%2 == 0 {
			status = rbac.StatusRejected
		}
		by := rbac.User(fmt.Sprint("approver", k))
		got, err := st.Approvals.DecideApproval(t.Context(), "acme", ap.ID, by, status, replicaNow.Add(time.Minute))
		if err == nil && (got.Status != status || got.Decider != by) {
			return fmt.Errorf("decided %+v", got)
		}
		return err
	})
}

// An approved approval is consumed once, whichever replica the consumers
// reach.
func TestReplicasConsumeApproval(t *testing.T) {
	a, b := twoReplicas(t)
	ap := approvalFixture()
	if err := a.Approvals.CreateApproval(t.Context(), ap); err != nil {
		t.Fatal(err)
	}
	if _, err := a.Approvals.DecideApproval(t.Context(), "acme", ap.ID, rbac.User("bob"), rbac.StatusApproved, replicaNow); err != nil {
		t.Fatal(err)
	}
	primeApprovals(t, a, b)
	claim := rbac.Claim{Requester: ap.Requester, Permission: ap.Permission, Target: ap.Target, PayloadHash: ap.PayloadHash}
	onceOnReplicas(t, a, b, "ConsumeApproval", rbac.ErrConsumed, func(st *pgstore.Store) error {
		got, err := st.Approvals.ConsumeApproval(t.Context(), "acme", ap.ID, claim, replicaNow.Add(time.Minute))
		if err == nil && (got.Status != rbac.StatusConsumed || !got.ConsumedAt.Equal(replicaNow.Add(time.Minute))) {
			return fmt.Errorf("consumed %+v", got)
		}
		return err
	})
	got, err := b.Approvals.Approval(t.Context(), "acme", ap.ID)
	if err != nil || got.Status != rbac.StatusConsumed {
		t.Errorf("after the race: %+v, %v; want consumed", got, err)
	}
}
