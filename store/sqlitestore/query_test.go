package sqlitestore_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/store/memstore"
	"github.com/guardhq/guard/store/sqlitestore"
)

// Query picks the index itself for each combination of filters: every
// combination, in both directions and from many cursors, gives what the
// reference store gives, also when event times do not grow with Seq (two
// replicas with skewed clocks).
func TestQueryMatchesMemstore(t *testing.T) {
	t.Parallel() // like the sequential conformance suites (conformance_test.go)
	ctx := context.Background()
	s := openStore(t)
	mem := memstore.NewAudit()
	rnd := rand.New(rand.NewPCG(1, 2))
	actors := []audit.Actor{
		{Kind: audit.ActorUser, ID: "u1", Email: "a@example.com"},
		{Kind: audit.ActorUser, ID: "u2", Email: "b@example.com"},
		{Kind: audit.ActorAnonymous, Email: "u1"}, // an email equal to another actor's ID
		{Kind: audit.ActorSystem, ID: "cron"},
	}
	actions := []audit.Action{audit.LoginFailed, audit.LoginSucceeded, "user.created", "rare.action"}
	var head audit.Link
	const n = 600
	for head.Seq < n {
		batch := make([]audit.Event, 1+rnd.IntN(20))
		prev := head.MAC
		for i := range batch {
			seq := head.Seq + uint64(i) + 1
			mac := sha256.Sum256(fmt.Append(nil, seq))
			action := actions[rnd.IntN(3)]
			if rnd.IntN(50) == 0 {
				action = "rare.action"
			}
			outcome := audit.Success
			if rnd.IntN(4) == 0 {
				outcome = audit.Failure
			}
			// Mostly growing times, with a skewed replica now and then.
			at := t0.Add(time.Duration(seq)*time.Second + time.Duration(rnd.IntN(3)-1)*time.Duration(rnd.IntN(90))*time.Second)
			batch[i] = audit.Event{ID: fmt.Sprint("e", seq), Tenant: "acme", Seq: seq, Time: at, Actor: actors[rnd.IntN(len(actors))],
				Action: action, Outcome: outcome, PrevMAC: prev, MAC: mac[:]}
			prev = batch[i].MAC
		}
		for _, st := range []audit.Store{s.Audit, mem} {
			if err := st.Append(ctx, "acme", batch); err != nil {
				t.Fatal(err)
			}
		}
		head = audit.Link{Seq: batch[len(batch)-1].Seq, MAC: batch[len(batch)-1].MAC}
	}
	// Both the indexed table and the tail hold events: queries merge them,
	// and cursors at the boundary are tried.
	var indexed, tail uint64
	if err := s.DB().QueryRow(`SELECT indexed_upto, (SELECT count(*) FROM guard_audit_tail) FROM guard_audit_heads`).Scan(&indexed, &tail); err != nil {
		t.Fatal(err)
	}
	if indexed == 0 || tail == 0 {
		t.Fatalf("indexed up to %d, %d events in the tail: want both", indexed, tail)
	}
	times := []time.Time{{}, t0.Add(100 * time.Second), t0.Add(300 * time.Second), t0.Add(550 * time.Second)}
	queries := 0
	for _, actor := range []string{"", "u1", "b@example.com", "cron", "nobody"} {
		for _, action := range []string{"", string(audit.LoginFailed), "rare.action"} {
			for _, outcome := range []audit.Outcome{"", audit.Failure} {
				for fi, from := range times {
					for _, to := range times[fi:] {
						if !to.IsZero() && to.Equal(from) {
							continue
						}
						for _, desc := range []bool{false, true} {
							for _, after := range []uint64{0, 1, 250, indexed - 1, indexed, indexed + 1, 599} {
								q := audit.Query{From: from, To: to, Actor: actor, Action: action, Outcome: outcome, After: after, Desc: desc, Limit: 1 + rnd.IntN(40)}
								got, err := s.Audit.Query(ctx, "acme", q)
								if err != nil {
									t.Fatalf("Query(%+v): %v", q, err)
								}
								want, _ := mem.Query(ctx, "acme", q)
								if len(got) != len(want) {
									t.Fatalf("Query(%+v) = %d events, want %d", q, len(got), len(want))
								}
								for i := range got {
									if got[i].Seq != want[i].Seq {
										t.Fatalf("Query(%+v)[%d] = Seq %d, want %d", q, i, got[i].Seq, want[i].Seq)
									}
								}
								queries++
							}
						}
					}
				}
			}
		}
	}
	t.Logf("%d queries agree", queries)
}

// SubjectsByNameID reads one range of the index on (tenant, idp, name_id,
// user_id), already in order: no scan of the table, no sort.
// queryPlan returns the details of SQLite's plan for query with args.
func queryPlan(t *testing.T, s *sqlitestore.Store, query string, args ...any) []string {
	t.Helper()
	rs, err := s.DB().Query(`EXPLAIN QUERY PLAN `+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rs.Close()
	var plan []string
	for rs.Next() {
		var id, parent, unused int
		var detail string
		if err := rs.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rs.Err(); err != nil {
		t.Fatal(err)
	}
	return plan
}

func TestSubjectsByNameIDPlan(t *testing.T) {
	plan := queryPlan(t, openStore(t), sqlitestore.SubjectsByNameIDQuery, "acme", "https://idp.example/metadata", "n", 0)
	if len(plan) != 1 || !strings.Contains(plan[0], "USING INDEX guard_sso_subjects_idp_name_id (tenant=? AND idp=? AND name_id=?)") {
		t.Errorf("query plan %q, want one search of guard_sso_subjects_idp_name_id by tenant, idp and name_id", plan)
	}
}

// Listing a tenant's approvals of one status (the pending ones, among
// thousands decided) searches the status index, in id order: it never
// reads the tenant's other approvals.
func TestApprovalsByStatusPlan(t *testing.T) {
	s := openStore(t)
	for _, q := range sqlitestore.ApprovalsByStatusQueries {
		plan := queryPlan(t, s, q, "acme", "pending", "z", 50)
		if len(plan) != 1 || !strings.Contains(plan[0], "USING INDEX guard_rbac_approvals_status (tenant=? AND status=?") {
			t.Errorf("query plan %q, want one search of guard_rbac_approvals_status by tenant and status", plan)
		}
	}
}
