package audit_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/store/memstore"
)

// FuzzQuery: an audit query's filters and cursor come from an admin's
// request. Query must never panic; a refusal is an *audit.InputError;
// a page holds at most the limit, only events matching the filters, in
// cursor order after q.After; and a query changes nothing (the chain still
// verifies, with the same number of events).
func FuzzQuery(f *testing.F) {
	f.Add("acme", "u1", "login.succeeded", "success", uint64(0), false, 0, int64(0), int64(0))
	f.Add("acme", "alice@example.com", "", "", uint64(2), true, 1, int64(0), int64(0))
	f.Add("", "", "", "", uint64(0), false, -1, int64(0), int64(0))
	f.Add("acme", "\xff", "x", "bogus", ^uint64(0), false, 1<<40, int64(1)<<62, int64(-1)<<62)
	f.Add("acme\x00", "", "", "", uint64(1), true, 2000, int64(1), int64(0))
	f.Fuzz(func(t *testing.T, tenant, actor, action, outcome string, after uint64, desc bool, limit int, from, to int64) {
		ctx := context.Background()
		l := newLog(t, memstore.NewAudit())
		for i := 0; i < 3; i++ {
			e := loginEvent("acme")
			if i == 1 {
				e.Outcome = audit.Failure
			}
			record(t, l, e)
		}
		q := audit.Query{Actor: actor, Action: action, Outcome: audit.Outcome(outcome), After: after, Desc: desc, Limit: limit}
		if from != 0 {
			q.From = time.Unix(0, from)
		}
		if to != 0 {
			q.To = time.Unix(0, to)
		}
		page, err := l.Query(ctx, tenant, q)
		if err != nil {
			var ie *audit.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("Query(%q, %+v) = %#v: not an *InputError", tenant, q, err)
			}
			if len(page.Events) != 0 || page.Next != 0 {
				t.Fatal("a page with an error")
			}
		} else {
			max := limit
			if max == 0 {
				max = audit.DefaultLimit
			}
			if len(page.Events) > max || len(page.Events) > audit.MaxLimit {
				t.Fatalf("%d events for limit %d", len(page.Events), limit)
			}
			for i, e := range page.Events {
				if e.Tenant != tenant ||
					actor != "" && e.Actor.ID != actor && e.Actor.Email != actor ||
					action != "" && string(e.Action) != action ||
					outcome != "" && string(e.Outcome) != outcome ||
					!q.From.IsZero() && e.Time.Before(q.From) ||
					!q.To.IsZero() && !e.Time.Before(q.To) {
					t.Fatalf("event %+v does not match %+v", e, q)
				}
				if after != 0 && (!desc && e.Seq <= after || desc && e.Seq >= after) {
					t.Fatalf("event %d is not after cursor %d (desc %v)", e.Seq, after, desc)
				}
				if i > 0 && (!desc && e.Seq <= page.Events[i-1].Seq || desc && e.Seq >= page.Events[i-1].Seq) {
					t.Fatal("events out of order")
				}
			}
			if page.Next != 0 && (len(page.Events) == 0 || page.Next != page.Events[len(page.Events)-1].Seq) {
				t.Fatalf("Next %d does not continue the page", page.Next)
			}
		}
		rep, err := l.Verify(ctx, "acme")
		if err != nil || !rep.OK || rep.Checked != 3 {
			t.Fatalf("after a query: %+v, %v", rep, err)
		}
	})
}
