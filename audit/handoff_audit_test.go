package audit_test

// Tests of Verify while a full purge (every event older than a cut-off in
// the future: the whole chain, head included, leaves for a checkpoint)
// runs at the same time (task HANDOFF-1).

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/internal/sqlitetest"
	"github.com/guardhq/guard/store/memstore"
)

// hammerVerifyWhilePurging runs, for d, writers recording events of one
// tenant, full purges by the Log that records them and by another replica,
// and Verifies by the recording Log, all at once over s. Only legitimate
// operations run, so every Verify must pass and every Purge succeed, but for
// the rare one that gives up (ErrConflict) because purges overtook each of
// its walks: none may report tampering. The
// race it looks for: a Verify walk reads the checkpoint, a purge then
// deletes every event (the one this Log appended last included) and moves
// the checkpoint, and the walk, finding no events after the checkpoint it
// read, ends short of what this Log appended: "missing events".
func hammerVerifyWhilePurging(t *testing.T, s audit.Store, d time.Duration) {
	ctx := context.Background()
	l := newLog(t, s)
	other := newLog(t, s)
	const tenant = "acme"
	recordN(t, l, tenant, 5)

	var (
		wg                                          sync.WaitGroup
		stop                                        atomic.Bool
		records, verifies, purges, empty, overtaken atomic.Int64
	)
	// Report the first few failures of a kind only: a broken Verify fails
	// thousands of times.
	var mu sync.Mutex
	failures := map[string]int{}
	fail := func(kind, format string, args ...any) {
		mu.Lock()
		defer mu.Unlock()
		if failures[kind]++; failures[kind] <= 3 {
			t.Errorf(format, args...)
		}
	}
	for range 2 {
		wg.Go(func() {
			for !stop.Load() {
				if _, err := l.Record(ctx, loginEvent(tenant)); err != nil {
					fail("record", "Record while purging: %v", err)
				}
				records.Add(1)
			}
		})
	}
	for _, p := range []*audit.Log{l, other} {
		wg.Go(func() {
			for !stop.Load() {
				n, err := p.Purge(ctx, tenant, time.Now().Add(time.Hour))
				switch {
				case errors.Is(err, audit.ErrConflict):
					overtaken.Add(1) // overtaken in every walk: no verdict, allowed
				case err != nil:
					fail("purge", "full Purge while recording and verifying: %v", err)
				}
				if n > 0 {
					purges.Add(1)
				}
				time.Sleep(time.Millisecond) // let events gather between purges
			}
		})
	}
	for range 2 {
		wg.Go(func() {
			for !stop.Load() {
				rep, err := l.Verify(ctx, tenant)
				switch {
				case errors.Is(err, audit.ErrConflict):
					overtaken.Add(1)
				case err != nil:
					fail("verify error", "Verify while purging: %v", err)
				case !rep.OK:
					fail("verify report", "Verify while only Record and full Purges ran = %+v, want OK (a legitimate purge is no tampering)", rep)
				case rep.Checked == 0:
					empty.Add(1)
				}
				verifies.Add(1)
			}
		})
	}
	time.Sleep(d)
	stop.Store(true)
	wg.Wait()
	t.Logf("%d Records, %d Verifies (%d of a fully purged chain), %d purges that deleted events, %d gave up overtaken, failures %v",
		records.Load(), verifies.Load(), empty.Load(), purges.Load(), overtaken.Load(), failures)
	if purges.Load() == 0 || verifies.Load() == 0 || 2*overtaken.Load() > verifies.Load() {
		t.Fatalf("%d purges, %d verifies, %d gave up: the hammer raced nothing", purges.Load(), verifies.Load(), overtaken.Load())
	}
	rep, err := l.Verify(ctx, tenant)
	if err != nil || !rep.OK {
		t.Errorf("Verify once the hammer stopped = %+v, %v; want OK", rep, err)
	}
}

func TestHandoffVerifyWhileFullPurgeMemstore(t *testing.T) {
	hammerVerifyWhilePurging(t, memstore.NewAudit(), 1500*time.Millisecond)
}

func TestHandoffVerifyWhileFullPurgeSQLite(t *testing.T) {
	if testing.Short() {
		t.Skip("a few seconds against a database file")
	}
	hammerVerifyWhilePurging(t, sqlitetest.Open(t).Audit, 3*time.Second)
}

// duringQuery wraps a Store and calls during with the number of the Query
// (from 1) before each Query reaches the store: a purge made there lands in
// the middle of a walk, after it read the checkpoint or between two pages.
type duringQuery struct {
	audit.Store
	n      atomic.Int64
	during func(n int64)
}

func (d *duringQuery) Query(ctx context.Context, tenant string, q audit.Query) ([]audit.Event, error) {
	d.during(d.n.Add(1))
	return d.Store.Query(ctx, tenant, q)
}

// farFuture is a Purge cut-off after every event: a full purge.
func farFuture() time.Time { return time.Now().Add(time.Hour) }

// A full purge by another replica that lands while Verify walks the chain,
// after it read the checkpoint (before its first page) or between two
// pages, deletes the events the walk was about to read, the last one this
// Log appended included: the walk ends at the checkpoint it read, or at the
// last event of its first page, short of that event. That is no truncation:
// the purge left a checkpoint past it. Verify must find the checkpoint moved
// and walk again from it, rather than report "missing events".
func TestHandoffVerifyFullPurgeDuringWalk(t *testing.T) {
	for _, tc := range []struct {
		name   string
		events int
		at     int64 // the Query before which the purge lands
	}{
		{"BeforeFirstPage", 5, 1},
		{"BetweenPages", audit.MaxLimit + 500, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			inner := memstore.NewAudit()
			other := newLog(t, inner)
			s := &duringQuery{Store: inner}
			s.during = func(n int64) {
				if n != tc.at {
					return
				}
				if got, err := other.Purge(ctx, "acme", farFuture()); err != nil || got != tc.events {
					t.Errorf("the other replica's full Purge = %d, %v; want %d", got, err, tc.events)
				}
			}
			l := newLog(t, s)
			evs := make([]audit.Event, 0, tc.events)
			for len(evs) < tc.events {
				batch := make([]audit.Event, min(audit.DefaultMaxBatch, tc.events-len(evs)))
				for i := range batch {
					batch[i] = loginEvent("acme")
				}
				got, err := l.RecordAll(ctx, batch...)
				if err != nil {
					t.Fatalf("RecordAll: %v", err)
				}
				evs = append(evs, got...)
			}
			rep, err := l.Verify(ctx, "acme")
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			last := uint64(tc.events)
			if !rep.OK || rep.Checked != 0 || rep.Head.Seq != last || rep.Checkpoint.Seq != last {
				t.Errorf("Verify while another replica purged every event = %+v; want OK, 0 checked, head and checkpoint at Seq %d", rep, last)
			}
		})
	}
}

// Purges that land during every walk of a Verify (or of a Purge) move the
// checkpoint each time: Verify gives up after a bounded number of walks.
// What it then has is a walk that a purge cut short, which proves nothing
// about the chain: it must not be reported as tampering (a Report that is
// not OK, or Purge's ErrTampered) but as an error, ErrConflict, as Record
// gives up after repeated conflicts. Here another replica purges every
// event and records one more before each Query: each walk finds the event
// after the checkpoint it read purged, a "sequence gap".
func TestHandoffPurgeDuringEveryWalk(t *testing.T) {
	ctx := context.Background()
	inner := memstore.NewAudit()
	other := newLog(t, inner)
	s := &duringQuery{Store: inner}
	s.during = func(int64) {
		if _, err := other.Purge(ctx, "acme", farFuture()); err != nil {
			t.Errorf("the other replica's full Purge: %v", err)
		}
		recordAsync(t, other, loginEvent("acme"))
	}
	l := newLog(t, s)
	recordN(t, l, "acme", 5)
	rep, err := l.Verify(ctx, "acme")
	if !errors.Is(err, audit.ErrConflict) {
		t.Errorf("Verify overtaken by a purge in every walk = %+v, %v; want ErrConflict, no tampering reported", rep, err)
	}
	n, err := l.Purge(ctx, "acme", farFuture())
	if !errors.Is(err, audit.ErrConflict) || errors.Is(err, audit.ErrTampered) || n != 0 {
		t.Errorf("Purge overtaken by a purge in every walk = %d, %v; want 0, ErrConflict, not ErrTampered", n, err)
	}
}

// dropSeqs makes s's Query leave out the events for which drop returns
// true, as if whoever can write to the store had deleted them (no purge:
// the checkpoint stays).
func dropSeqs(s *hookStore, drop func(seq uint64) bool) {
	s.onQuery = func(_ audit.Query, got []audit.Event) ([]audit.Event, error) {
		return slices.DeleteFunc(got, func(e audit.Event) bool { return drop(e.Seq) }), nil
	}
}

// Deleting events after a full purge, with no purge of its own, is still
// tampering that Verify reports: the checkpoint has not moved, so the walk
// is not taken again and its failure stands.
func TestHandoffTamperingAfterFullPurge(t *testing.T) {
	for _, tc := range []struct {
		name     string
		drop     func(seq uint64) bool
		firstBad uint64
		reason   string
	}{
		{"TailCut", func(seq uint64) bool { return seq > 6 }, 7, "missing events"},
		{"AllAfterCheckpoint", func(uint64) bool { return true }, 6, "missing events"},
		{"RowDeleted", func(seq uint64) bool { return seq == 7 }, 7, "sequence gap"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := &hookStore{Store: memstore.NewAudit()}
			l := newLog(t, s)
			recordN(t, l, "acme", 5)
			if n, err := l.Purge(context.Background(), "acme", farFuture()); err != nil || n != 5 {
				t.Fatalf("full Purge = %d, %v; want 5", n, err)
			}
			recordN(t, l, "acme", 3) // Seq 6, 7, 8
			dropSeqs(s, tc.drop)
			rep, err := l.Verify(context.Background(), "acme")
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if rep.OK || rep.FirstBad != tc.firstBad || rep.Reason != tc.reason {
				t.Errorf("Verify = %+v; want FirstBad %d, %s", rep, tc.firstBad, tc.reason)
			}
		})
	}
}

// Events deleted without a purge are reported even when a legitimate purge
// lands during the walk: the walk is taken again from the new checkpoint and
// fails the same way, now with the checkpoint still. Another replica (which
// never appended the deleted events) purges every event it finds past a cut
// tail, or fails to purge past a deleted row (ErrTampered), or purges the
// events before one.
func TestHandoffTamperingDuringPurge(t *testing.T) {
	for _, tc := range []struct {
		name     string
		drop     func(seq uint64) bool
		cut      int // the other replica purges events older than event cut (0: every event)
		purged   int // what its Purge returns
		firstBad uint64
		reason   string
	}{
		{"TailCutFullPurge", func(seq uint64) bool { return seq > 6 }, 0, 6, 7, "missing events"},
		{"RowDeletedFullPurge", func(seq uint64) bool { return seq == 7 }, 0, -1, 7, "sequence gap"},
		{"RowDeletedPartialPurge", func(seq uint64) bool { return seq == 7 }, 4, 3, 7, "sequence gap"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			c := newClock()
			hs := &hookStore{Store: memstore.NewAudit()}
			other := newLog(t, hs, withClock(c))
			s := &duringQuery{Store: hs}
			var evs []audit.Event
			s.during = func(n int64) {
				if n != 1 {
					return
				}
				cut := farFuture().Add(1000 * time.Hour)
				if tc.cut > 0 {
					cut = evs[tc.cut-1].Time
				}
				got, err := other.Purge(ctx, "acme", cut)
				switch {
				case tc.purged < 0 && !errors.Is(err, audit.ErrTampered):
					t.Errorf("the other replica's Purge past a deleted row = %d, %v; want ErrTampered", got, err)
				case tc.purged >= 0 && (err != nil || got != tc.purged):
					t.Errorf("the other replica's Purge = %d, %v; want %d", got, err, tc.purged)
				}
			}
			l := newLog(t, s, withClock(c))
			evs = recordDaily(t, l, c, "acme", 8)
			dropSeqs(hs, tc.drop)
			rep, err := l.Verify(ctx, "acme")
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if rep.OK || rep.FirstBad != tc.firstBad || rep.Reason != tc.reason {
				t.Errorf("Verify = %+v; want FirstBad %d, %s", rep, tc.firstBad, tc.reason)
			}
		})
	}
}
