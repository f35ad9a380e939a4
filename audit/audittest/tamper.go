package audittest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guardhq/guard/audit"
)

// Tamper writes to a backend's storage behind the audit.Store contract, as
// whoever can write to its database can. A backend's test gives it to
// RunTamper.
type Tamper struct {
	// Truncate deletes tenant's events with a Seq above seq and sets the
	// tenant's head to the event at seq; with seq 0 it also deletes the
	// head and the checkpoint, as if the tenant never had events.
	Truncate func(tenant string, seq uint64) error
	// Insert stores e under e.Tenant as it is, whatever its Seq, PrevMAC
	// and MAC, and leaves the head and the checkpoint as they are.
	Insert func(e audit.Event) error
	// SetMeta, if not nil, replaces the stored Meta of tenant's event at
	// seq with raw, text that need not decode as Meta. A backend that
	// does not keep Meta as text leaves it nil.
	SetMeta func(tenant string, seq uint64, raw string) error
}

var tamperKey = bytes.Repeat([]byte{0x5a}, audit.MinKeySize)

// RunTamper checks that an audit.Log over the store finds what Tamper does
// to it: Record refuses (audit.ErrTampered) to continue a chain cut below
// the last event the Log appended, even after a failed Append, while
// another replica's appends are no tampering; Verify reports the cut, and
// an event stored at or below the checkpoint, which Query and Export do not
// show; and an event whose stored Meta was edited so that it no longer
// decodes is reported by Verify (a MAC mismatch at its Seq), not an error
// of Verify, Query or Export. newStore must return a fresh, empty store and
// its Tamper on every call.
func RunTamper(t *testing.T, newStore func(t *testing.T) (audit.Store, Tamper)) {
	// A Log that appended Seq 1…5 finds the chain cut back to 3: Verify
	// reports the missing events, and Record refuses to reuse Seq 4.
	t.Run("TruncationRefusesRecord", func(t *testing.T) {
		s, tp := newStore(t)
		l := tamperLog(t, s, nil)
		recordEvents(t, l, "acme", 5)
		recordEvents(t, l, "other", 5)
		mustTamper(t, tp.Truncate("acme", 3))
		wantReport(t, l, "acme", 4, "missing events")
		wantRefused(t, l, s, "acme", 3)
		wantReport(t, l, "acme", 4, "missing events")
		recordEvents(t, l, "other", 1) // other tenants go on
		wantReport(t, l, "other", 0, "")
	})
	// The whole chain and its head are gone: the Log does not start again
	// at Seq 1.
	t.Run("DeletedChainRefusesRecord", func(t *testing.T) {
		s, tp := newStore(t)
		l := tamperLog(t, s, nil)
		recordEvents(t, l, "acme", 3)
		mustTamper(t, tp.Truncate("acme", 0))
		wantReport(t, l, "acme", 1, "missing events")
		wantRefused(t, l, s, "acme", 0)
	})
	// One failed Append does not make the Log forget what it appended.
	t.Run("FailedAppendKeepsTruncationCheck", func(t *testing.T) {
		s, tp := newStore(t)
		fs := &failingStore{Store: s}
		l := tamperLog(t, fs, nil)
		recordEvents(t, l, "acme", 5)
		fs.fail.Store(true)
		if _, err := l.Record(bg(), tamperEvent("acme")); !errors.Is(err, errInjected) {
			t.Fatalf("Record with a failing Append = %v, want the store's error", err)
		}
		mustTamper(t, tp.Truncate("acme", 3))
		wantReport(t, l, "acme", 4, "missing events")
		wantRefused(t, l, s, "acme", 3)
	})
	// After the cut, another replica (which never saw Seq 4 and 5) appends
	// two events: the head is back at Seq 5, but not the event this Log
	// appended there.
	t.Run("ReplacedHeadRefusesRecord", func(t *testing.T) {
		s, tp := newStore(t)
		l := tamperLog(t, s, nil)
		recordEvents(t, l, "acme", 5)
		mustTamper(t, tp.Truncate("acme", 3))
		recordEvents(t, tamperLog(t, s, nil), "acme", 2)
		wantReport(t, l, "acme", 5, "replaced event")
		wantRefused(t, l, s, "acme", 5)
	})
	// Replicas sharing the store raise the head above what each appended:
	// that is no tampering.
	t.Run("ReplicasAreNoTampering", func(t *testing.T) {
		s, _ := newStore(t)
		a, b := tamperLog(t, s, nil), tamperLog(t, s, nil)
		for range 3 {
			recordEvents(t, a, "acme", 2)
			recordEvents(t, b, "acme", 3)
		}
		wantReport(t, a, "acme", 0, "")
		wantReport(t, b, "acme", 0, "")
		if h := mustHead(t, s, "acme"); h.Seq != 15 {
			t.Errorf("Head.Seq = %d, want 15", h.Seq)
		}
	})
	// Seq 2's Meta is edited into text that is not an object of strings:
	// the event fails its MAC, and the log can still be read and exported.
	t.Run("UndecodableMetaIsMACMismatch", func(t *testing.T) {
		s, tp := newStore(t)
		if tp.SetMeta == nil {
			t.Skip("the backend keeps Meta as it is")
		}
		l := tamperLog(t, s, nil)
		for range 3 {
			e := tamperEvent("acme")
			e.Meta = map[string]string{"k": "v"}
			if _, err := l.Record(bg(), e); err != nil {
				t.Fatal(err)
			}
		}
		for _, raw := range []string{`{"k":1}`, `not json`} {
			mustTamper(t, tp.SetMeta("acme", 2, raw))
			wantReport(t, l, "acme", 2, "mac mismatch")
			if p, err := l.Query(bg(), "acme", audit.Query{}); err != nil || len(p.Events) != 3 {
				t.Errorf("Query with Seq 2's Meta %s = %d events, %v; want 3", raw, len(p.Events), err)
			}
			if err := l.Export(bg(), "acme", audit.Query{}, io.Discard, audit.JSONLines); err != nil {
				t.Errorf("Export with Seq 2's Meta %s: %v", raw, err)
			}
		}
	})
	// After a purge to Seq 3, a made-up event is stored at Seq 2 (or 3):
	// Verify reports it, Purge refuses, and Query and Export, which show
	// only what Verify checks, do not show it.
	for _, seq := range []uint64{2, 3} {
		t.Run(fmt.Sprintf("ForgedEventAtSeq%dBelowCheckpoint", seq), func(t *testing.T) {
			s, tp := newStore(t)
			now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			l := tamperLog(t, s, func() time.Time { return now })
			for range 5 {
				now = now.Add(time.Hour)
				recordEvents(t, l, "acme", 1)
			}
			if n, err := l.Purge(bg(), "acme", now.Add(-90*time.Minute)); err != nil || n != 3 {
				t.Fatalf("Purge = %d, %v; want 3", n, err)
			}
			wantReport(t, l, "acme", 0, "")
			evs := mustQuery(t, s, "acme", audit.Query{})
			forged := evs[0] // Seq 4
			forged.Seq, forged.ID, forged.IP = seq, "forged", "203.0.113.66"
			forged.Actor = audit.Actor{Kind: audit.ActorUser, ID: "alice", Email: "alice@example.com"}
			mustTamper(t, tp.Insert(forged))
			wantReport(t, l, "acme", seq, "event below checkpoint")
			for _, q := range []audit.Query{{}, {Desc: true}, {Actor: "alice"}, {Desc: true, After: 5}, {Limit: 1}} {
				p, err := l.Query(bg(), "acme", q)
				if err != nil {
					t.Fatalf("Query(%+v): %v", q, err)
				}
				want := []uint64{4, 5}
				switch {
				case q.Actor != "":
					want = nil
				case q.After == 5:
					want = []uint64{4}
				case q.Limit == 1:
					want = []uint64{4}
				case q.Desc:
					want = []uint64{5, 4}
				}
				if got := seqs(p.Events); !slices.Equal(got, want) {
					t.Errorf("Query(%+v) = Seqs %v, want %v", q, got, want)
				}
				if q.Desc && p.Next != 0 {
					t.Errorf("Query(%+v).Next = %d, want 0: nothing follows above the checkpoint", q, p.Next)
				}
			}
			for _, q := range []audit.Query{{}, {Desc: true}} {
				var buf bytes.Buffer
				if err := l.Export(bg(), "acme", q, &buf, audit.JSONLines); err != nil {
					t.Fatalf("Export: %v", err)
				}
				// Seq 4 and 5, and the checkpoint record (the export
				// reaches the chain's start).
				if out := buf.String(); strings.Contains(out, "forged") || strings.Count(out, "\n") != 3 ||
					!strings.Contains(out, `"id":"`+audit.ExportCheckpointID+`"`) {
					t.Errorf("Export(%+v) =\n%s\nwant Seq 4 and 5 and the checkpoint only", q, out)
				}
			}
			if _, err := l.Purge(bg(), "acme", now.Add(time.Hour)); !errors.Is(err, audit.ErrTampered) {
				t.Errorf("Purge over a forged event = %v, want ErrTampered", err)
			}
		})
	}
}

var errInjected = errors.New("audittest: injected store failure")

// failingStore fails one Append when fail is set.
type failingStore struct {
	audit.Store
	fail atomic.Bool
}

func (f *failingStore) Append(ctx context.Context, tenant string, events []audit.Event) error {
	if f.fail.CompareAndSwap(true, false) {
		return errInjected
	}
	return f.Store.Append(ctx, tenant, events)
}

func tamperLog(t *testing.T, s audit.Store, now func() time.Time) *audit.Log {
	t.Helper()
	l, err := audit.New(audit.Config{Store: s, Key: tamperKey, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func tamperEvent(tenant string) audit.Event {
	return audit.Event{Tenant: tenant, Actor: audit.Actor{Kind: audit.ActorUser, ID: "u1", Email: "u1@example.com"},
		Action: audit.LoginFailed, IP: "192.0.2.1", Outcome: audit.Failure, Reason: "bad_password"}
}

func recordEvents(t *testing.T, l *audit.Log, tenant string, n int) {
	t.Helper()
	for range n {
		if _, err := l.Record(bg(), tamperEvent(tenant)); err != nil {
			t.Fatalf("Record(%s): %v", tenant, err)
		}
	}
}

func mustTamper(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatalf("tampering: %v", err)
	}
}

// wantReport fails t unless l's Verify of tenant reports firstBad with
// reason, or OK when reason is empty.
func wantReport(t *testing.T, l *audit.Log, tenant string, firstBad uint64, reason string) {
	t.Helper()
	rep, err := l.Verify(bg(), tenant)
	if err != nil {
		t.Fatalf("Verify(%s): %v", tenant, err)
	}
	if rep.OK != (reason == "") || rep.FirstBad != firstBad || rep.Reason != reason {
		t.Errorf("Verify(%s) = %+v, want FirstBad %d, Reason %q", tenant, rep, firstBad, reason)
	}
}

// wantRefused fails t unless Record of tenant on l fails with ErrTampered
// and leaves the store's head at Seq head.
func wantRefused(t *testing.T, l *audit.Log, s audit.Store, tenant string, head uint64) {
	t.Helper()
	for range 2 { // and again: the Log does not come to terms with it
		e, err := l.Record(bg(), tamperEvent(tenant))
		if !errors.Is(err, audit.ErrTampered) {
			t.Fatalf("Record(%s) on a cut chain = Seq %d, %v; want ErrTampered", tenant, e.Seq, err)
		}
	}
	if h := mustHead(t, s, tenant); h.Seq != head {
		t.Errorf("Head(%s).Seq = %d after a refused Record, want %d", tenant, h.Seq, head)
	}
}
