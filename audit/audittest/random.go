package audittest

import (
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/guardhq/guard/audit"
)

// The randomized Query test: a store's answers to random queries must equal
// a reference computed here from the events appended, for every combination
// of filters, in both directions, from cursors anywhere in the chain (near
// its newest events and near multiples of 256 in particular), with small,
// default and over-the-cap limits. The chain is long enough (and appended
// in batches of random sizes) for the layouts backends keep internally —
// for example a tail table of the newest events moved in bulk into an
// indexed one — to be crossed, and queries run while it grows, after a
// partial Purge, and as it grows again after that.

const rqTenant = "t1"

// rqBase is the time of Seq 0; Seq n is n seconds later unless skewed. All
// events share the microsecond fraction, so skewed events can have exactly
// the Time of another event.
var rqBase = base.Add(123456 * time.Microsecond)

var rqActors = []audit.Actor{
	{Kind: audit.ActorUser, ID: "u1", Email: "a@example.com"},
	{Kind: audit.ActorUser, ID: "u2", Email: "b@example.com"},
	{Kind: audit.ActorAPIKey, ID: "key_3", Email: "u1"}, // Email equal to another actor's ID
	{Kind: audit.ActorSystem, ID: "cron"},               // only an ID
	{Kind: audit.ActorUser, ID: "same", Email: "same"},  // ID and Email equal
	{Kind: audit.ActorAnonymous},
}

// Actor filters: every ID and Email above, and near misses.
var rqActorFilters = []string{"u1", "u2", "a@example.com", "b@example.com", "key_3", "cron", "same", "U1", "nobody"}

var rqActions = []audit.Action{audit.LoginFailed, audit.LoginSucceeded, audit.SessionCreated}

const rqRareAction audit.Action = "rare.action" // about one event in 50

var rqActionFilters = []string{
	string(audit.LoginFailed), string(audit.LoginSucceeded), string(audit.SessionCreated),
	string(rqRareAction), string(rqRareAction), "login", // a prefix: no match
}

var rqZones = []*time.Location{time.UTC, time.FixedZone("UTC+5:30", 5*3600+1800), time.FixedZone("UTC-7", -7*3600)}

// The filters of a Query, one bit each: rqQuery sets those in its mask.
const (
	rqFrom = 1 << iota
	rqTo
	rqActor
	rqAction
	rqOutcome
	rqAfter
	rqAllFilters = 1<<iota - 1
)

type randomQueries struct {
	t       *testing.T
	s       audit.Store
	rnd     *rand.Rand
	events  []audit.Event // the tenant's stored events, in Seq order
	head    audit.Link
	queries int // queries checked
	hits    int // of which the reference answer was not empty
}

func runRandomQuery(t *testing.T, newStore func(t *testing.T) audit.Store) {
	r := &randomQueries{t: t, s: newStore(t), rnd: rand.New(rand.NewPCG(0x6775617264, 0x7175657279))}

	// Grow the chain to about 700 events, querying as it grows.
	r.grow(700, 2)
	// Every combination of filters, both directions.
	for mask := range rqAllFilters + 1 {
		for _, desc := range []bool{false, true} {
			for range 3 {
				r.check("grown", r.query(mask, desc))
			}
		}
	}
	r.pageAll("grown")

	// Purge the oldest events up to a random Seq, query what is left, then
	// grow the chain again past the next multiples of 256 (768, 1024).
	cp := checkpointAfter(r.events[200+r.rnd.IntN(200)])
	if err := r.s.Purge(bg(), rqTenant, cp); err != nil {
		t.Fatalf("Purge(Seq %d): %v", cp.Seq, err)
	}
	r.events = r.events[cp.Seq-r.events[0].Seq+1:]
	for mask := range rqAllFilters + 1 {
		r.check("purged", r.query(mask, r.rnd.IntN(2) == 0))
	}
	r.grow(1050, 1)
	for mask := range rqAllFilters + 1 {
		for _, desc := range []bool{false, true} {
			r.check("regrown", r.query(mask, desc))
		}
	}
	r.pageAll("regrown")

	t.Logf("%d queries agree with the reference (%d with events), %d events after Seq %d", r.queries, r.hits, len(r.events), cp.Seq)
	if r.hits < r.queries/4 {
		t.Fatalf("suite bug: only %d of %d queries select any event", r.hits, r.queries)
	}
}

// grow appends events in batches of 1 to 20 until the head reaches Seq
// upto, running perBatch random queries after each batch.
func (r *randomQueries) grow(upto uint64, perBatch int) {
	r.t.Helper()
	for r.head.Seq < upto {
		batch := make([]audit.Event, 1+r.rnd.IntN(20))
		prev := r.head.MAC
		for i := range batch {
			batch[i] = r.event(r.head.Seq+uint64(i)+1, prev)
			prev = batch[i].MAC
		}
		if err := r.s.Append(bg(), rqTenant, batch); err != nil {
			r.t.Fatalf("Append(Seq %d..%d): %v", batch[0].Seq, batch[len(batch)-1].Seq, err)
		}
		r.events = append(r.events, batch...)
		r.head = linkOf(batch[len(batch)-1])
		for range perBatch {
			r.check(fmt.Sprintf("at head %d", r.head.Seq), r.query(r.rnd.IntN(rqAllFilters+1), r.rnd.IntN(2) == 0))
		}
	}
}

// event returns the event with Seq seq after prev: a random actor, action
// and outcome, and a Time that grows with Seq but now and then is skewed by
// up to 90 s either way (replicas with skewed clocks).
func (r *randomQueries) event(seq uint64, prev []byte) audit.Event {
	e := newEvent("", rqTenant, seq, prev)
	e.Actor = rqActors[r.rnd.IntN(len(rqActors))]
	e.Action = rqActions[r.rnd.IntN(len(rqActions))]
	if r.rnd.IntN(50) == 0 {
		e.Action = rqRareAction
	}
	e.Outcome = audit.Success
	if r.rnd.IntN(3) == 0 {
		e.Outcome = audit.Failure
	}
	e.Time = rqBase.Add(time.Duration(seq) * time.Second)
	if r.rnd.IntN(6) == 0 {
		e.Time = e.Time.Add(time.Duration(r.rnd.IntN(181)-90) * time.Second)
	}
	return e
}

// query returns a random Query with the filters of mask set.
func (r *randomQueries) query(mask int, desc bool) audit.Query {
	q := audit.Query{Desc: desc, Limit: r.limit()}
	if mask&rqFrom != 0 {
		q.From = r.time()
	}
	if mask&rqTo != 0 {
		q.To = r.time()
		if mask&rqFrom != 0 {
			switch r.rnd.IntN(4) {
			case 0: // independent: often an empty range
			case 1:
				q.To = q.From.Add(time.Duration(r.rnd.IntN(120)) * time.Second)
			default:
				if q.To.Before(q.From) {
					q.From, q.To = q.To, q.From
				}
			}
		}
	}
	if mask&rqActor != 0 {
		q.Actor = rqActorFilters[r.rnd.IntN(len(rqActorFilters))]
	}
	if mask&rqAction != 0 {
		q.Action = rqActionFilters[r.rnd.IntN(len(rqActionFilters))]
	}
	if mask&rqOutcome != 0 {
		q.Outcome = []audit.Outcome{audit.Success, audit.Failure}[r.rnd.IntN(2)]
	}
	if mask&rqAfter != 0 {
		q.After = r.cursor()
	}
	return q
}

// limit returns 1, a small limit, 0 (the default), a larger one or one
// above MaxLimit.
func (r *randomQueries) limit() int {
	switch r.rnd.IntN(6) {
	case 0:
		return 1
	case 1, 2:
		return 2 + r.rnd.IntN(9)
	case 3:
		return 0
	case 4:
		return 11 + r.rnd.IntN(300)
	default:
		return []int{audit.MaxLimit, audit.MaxLimit + 1, 5000}[r.rnd.IntN(3)]
	}
}

// time returns the Time of a stored event, a microsecond beside one, or a
// random instant around the chain's, in a random location.
func (r *randomQueries) time() time.Time {
	var at time.Time
	switch n := r.rnd.IntN(4); {
	case n < 2 && len(r.events) > 0:
		at = r.events[r.rnd.IntN(len(r.events))].Time
	case n == 2 && len(r.events) > 0:
		at = r.events[r.rnd.IntN(len(r.events))].Time.Add(time.Duration(r.rnd.IntN(3)-1) * time.Microsecond)
	default:
		at = rqBase.Add(time.Duration(r.rnd.Int64N(int64(r.head.Seq+240)*1e6)-120e6) * time.Microsecond)
	}
	return at.In(rqZones[r.rnd.IntN(len(rqZones))])
}

// cursor returns a non-zero Seq: among the newest events or just past the
// head, near a multiple of 256, anywhere up to the head, or far beyond it.
func (r *randomQueries) cursor() uint64 {
	head := r.head.Seq
	var c uint64
	switch r.rnd.IntN(6) {
	case 0: // the newest few, the head, just past it
		c = head + 3 - min(head+2, uint64(r.rnd.IntN(10)))
	case 1: // among the newest 300
		c = head - min(head, uint64(r.rnd.IntN(300)))
	case 2, 3: // next to a multiple of 256
		return uint64(max(r.rnd.IntN(int(head/256)+2)*256+r.rnd.IntN(3)-1, 1))
	case 4:
		c = 1 + uint64(r.rnd.IntN(int(head)+1))
	default:
		c = head + 1 + uint64(r.rnd.IntN(1000))
	}
	return max(c, 1)
}

// want is the reference answer to q.
func (r *randomQueries) want(q audit.Query) []audit.Event {
	limit := q.Limit
	if limit == 0 {
		limit = audit.DefaultLimit
	}
	limit = min(limit, audit.MaxLimit)
	var out []audit.Event
	for i := range r.events {
		e := &r.events[i]
		if q.Desc {
			e = &r.events[len(r.events)-1-i]
		}
		if len(out) == limit {
			break
		}
		if rqMatch(e, &q) {
			out = append(out, *e)
		}
	}
	return out
}

func rqMatch(e *audit.Event, q *audit.Query) bool {
	switch {
	case !q.From.IsZero() && e.Time.Before(q.From):
		return false
	case !q.To.IsZero() && !e.Time.Before(q.To):
		return false
	case q.Actor != "" && e.Actor.ID != q.Actor && e.Actor.Email != q.Actor:
		return false
	case q.Action != "" && string(e.Action) != q.Action:
		return false
	case q.Outcome != "" && e.Outcome != q.Outcome:
		return false
	case q.After != 0 && !q.Desc && e.Seq <= q.After:
		return false
	case q.After != 0 && q.Desc && e.Seq >= q.After:
		return false
	}
	return true
}

// check fails the test unless the store answers q as the reference does.
func (r *randomQueries) check(phase string, q audit.Query) {
	r.t.Helper()
	got := mustQuery(r.t, r.s, rqTenant, q)
	want := r.want(q)
	r.compare(fmt.Sprintf("%s: Query(%s)", phase, rqString(q)), got, want)
	r.queries++
	if len(want) > 0 {
		r.hits++
	}
}

func (r *randomQueries) compare(what string, got, want []audit.Event) {
	r.t.Helper()
	if g, w := seqs(got), seqs(want); fmt.Sprint(g) != fmt.Sprint(w) {
		r.t.Fatalf("%s = %d events %v,\nwant %d %v\n(head %d, %d events stored)", what, len(g), g, len(w), w, r.head.Seq, len(r.events))
	}
	for i := range got {
		if d := diff(got[i], want[i]); d != "" {
			r.t.Fatalf("%s: event %d (Seq %d): %s", what, i, want[i].Seq, d)
		}
	}
}

// pageAll reads whole result sets page by page, each page starting after
// the last Seq of the one before, and checks that the pages add up to the
// reference, for a few combinations of filters, in both directions.
func (r *randomQueries) pageAll(phase string) {
	r.t.Helper()
	mid := r.events[len(r.events)/2].Time
	for _, f := range []audit.Query{
		{},
		{Actor: "u1"},
		{Action: string(audit.LoginFailed), Outcome: audit.Failure},
		{From: mid.Add(-150 * time.Second), To: mid.Add(150 * time.Second)},
		{From: mid, Actor: "cron", Outcome: audit.Success},
		{Action: string(rqRareAction)},
	} {
		for _, desc := range []bool{false, true} {
			q := f
			q.Desc = desc
			q.Limit = []int{3, 17, 0, 256}[r.rnd.IntN(4)]
			want := filter(r.events, func(e *audit.Event) bool { return rqMatch(e, &f) })
			if desc {
				want = reversed(want)
			}
			var got []audit.Event
			for pages := 0; ; pages++ {
				if pages > len(r.events)+1 {
					r.t.Fatalf("%s: paging Query(%s) does not end", phase, rqString(q))
				}
				page := mustQuery(r.t, r.s, rqTenant, q)
				r.queries++
				if len(page) == 0 {
					break
				}
				got = append(got, page...)
				q.After = page[len(page)-1].Seq
			}
			q.After = 0
			r.compare(fmt.Sprintf("%s: pages of Query(%s)", phase, rqString(q)), got, want)
		}
	}
}

// rqString describes q's non-zero fields.
func rqString(q audit.Query) string {
	var f []string
	if !q.From.IsZero() {
		f = append(f, "From: "+q.From.Format(time.RFC3339Nano))
	}
	if !q.To.IsZero() {
		f = append(f, "To: "+q.To.Format(time.RFC3339Nano))
	}
	if q.Actor != "" {
		f = append(f, fmt.Sprintf("Actor: %q", q.Actor))
	}
	if q.Action != "" {
		f = append(f, fmt.Sprintf("Action: %q", q.Action))
	}
	if q.Outcome != "" {
		f = append(f, fmt.Sprintf("Outcome: %q", q.Outcome))
	}
	if q.After != 0 {
		f = append(f, fmt.Sprint("After: ", q.After))
	}
	if q.Desc {
		f = append(f, "Desc: true")
	}
	f = append(f, fmt.Sprint("Limit: ", q.Limit))
	return strings.Join(f, ", ")
}
