package audit_test

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/store/memstore"
)

// An export that a purge overtakes between two pages, deleting events it has
// still to write, fails with ErrConflict: also a filtered export (no
// sequence to follow, so it checks the checkpoint) and an ascending one
// whose rest the purge took whole (its next page is empty, not a gap).
func TestExportOvertakenByPurgeConflicts(t *testing.T) {
	for _, tc := range []struct {
		name  string
		q     audit.Query
		purge func(c *clock, evs []audit.Event) time.Time
	}{
		{"FilteredAscending", audit.Query{Action: string(audit.LoginSucceeded)},
			func(_ *clock, evs []audit.Event) time.Time { return evs[1800].Time }},
		{"FilteredDescending", audit.Query{Action: string(audit.LoginSucceeded), Desc: true},
			func(_ *clock, evs []audit.Event) time.Time { return evs[1800].Time }},
		{"AscendingRestPurged", audit.Query{},
			func(c *clock, _ []audit.Event) time.Time { return c.Now().Add(time.Hour) }},
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
			if !errors.Is(err, audit.ErrConflict) {
				t.Fatalf("Export overtaken by a purge = %v; want ErrConflict", err)
			}
		})
	}
}
