package audit_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/store/memstore"
)

// An export that a purge overtakes between two pages, deleting events it has
// still to write, fails with ErrConflict: also a filtered export (no
// sequence to follow, so it checks the checkpoint) and an ascending one
// whose rest the purge took whole (its next page is empty, not a gap). A
// purge that deletes only events an ascending export already wrote takes
// nothing from it: the export is of the chain as it was, whole and
// verifiable.
func TestExportOvertakenByPurgeConflicts(t *testing.T) {
	for _, tc := range []struct {
		name     string
		q        audit.Query
		purge    func(c *clock, evs []audit.Event) time.Time
		conflict bool
	}{
		{"FilteredAscending", audit.Query{Action: string(audit.LoginSucceeded)},
			func(_ *clock, evs []audit.Event) time.Time { return evs[1800].Time }, true},
		{"FilteredDescending", audit.Query{Action: string(audit.LoginSucceeded), Desc: true},
			func(_ *clock, evs []audit.Event) time.Time { return evs[1800].Time }, true},
		{"AscendingRestPurged", audit.Query{},
			func(c *clock, _ []audit.Event) time.Time { return c.Now().Add(time.Hour) }, true},
		{"AscendingWrittenPurged", audit.Query{},
			func(_ *clock, evs []audit.Event) time.Time { return evs[500].Time }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			c := newClock()
			mem := memstore.NewAudit()
			l := newLog(t, mem, withClock(c))
			evs := recordDaily(t, l, c, "acme", 2500)
			replica := newLog(t, mem, withClock(c))
			during := &duringQuery{Store: mem, during: func(k int64) {
				if k == 2 { // between the export's first and second page
					if _, err := replica.Purge(ctx, "acme", tc.purge(c, evs)); err != nil {
						t.Errorf("replica's Purge: %v", err)
					}
				}
			}}
			exporter := newLog(t, during, withClock(c))
			var buf bytes.Buffer
			err := exporter.Export(ctx, "acme", tc.q, &buf, audit.JSONLines)
			if !tc.conflict {
				if err != nil {
					t.Fatalf("Export = %v; want nil", err)
				}
				if got, err := verifyOffline(testKey, "acme", buf.String()); err != nil || got != 2500 {
					t.Fatalf("offline verification = %d, %v; want the 2500 events", got, err)
				}
				return
			}
			if !errors.Is(err, audit.ErrConflict) {
				t.Fatalf("Export overtaken by a purge = %v; want ErrConflict", err)
			}
		})
	}
}

// gapStore is a stored chain missing one event (tampering), seen through
// Query.
type gapStore struct {
	audit.Store
	missing     uint64
	checkpoints atomic.Int64
}

func (s *gapStore) Query(ctx context.Context, tenant string, q audit.Query) ([]audit.Event, error) {
	evs, err := s.Store.Query(ctx, tenant, q)
	return slices.DeleteFunc(evs, func(e audit.Event) bool { return e.Seq == s.missing }), err
}

func (s *gapStore) Checkpoint(ctx context.Context, tenant string) (audit.Checkpoint, error) {
	s.checkpoints.Add(1)
	return s.Store.Checkpoint(ctx, tenant)
}

// A gap in the stored chain with no purge behind it (the checkpoint
// unmoved) is no conflict: Export writes the chain as it is stored, for
// a verifier to report. An unfiltered export follows Seq and reads the
// checkpoint only when it sees a gap and at its end.
func TestExportOfGapConflictsNot(t *testing.T) {
	for _, tc := range []struct {
		name    string
		desc    bool
		missing uint64 // the first event of the second page
		reads   int64  // checkpoint reads: at the start, at the gap, at the end
	}{
		{"Ascending", false, 1001, 3},
		{"Descending", true, 1500, 2},
		{"AscendingWhole", false, 0, 2},
		{"DescendingWhole", true, 0, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			c := newClock()
			mem := memstore.NewAudit()
			recordDaily(t, newLog(t, mem, withClock(c)), c, "acme", 2500)
			s := &gapStore{Store: mem, missing: tc.missing}
			var buf bytes.Buffer
			if err := newLog(t, s, withClock(c)).Export(ctx, "acme", audit.Query{Desc: tc.desc}, &buf, audit.JSONLines); err != nil {
				t.Fatalf("Export = %v; want nil", err)
			}
			if got := strings.Count(buf.String(), "\n"); got != 2500-min(int(tc.missing), 1) {
				t.Errorf("Export wrote %d events", got)
			}
			if got := s.checkpoints.Load(); got != tc.reads {
				t.Errorf("Export read the checkpoint %d times; want %d", got, tc.reads)
			}
		})
	}
}
