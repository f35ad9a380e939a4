package audit_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/store/memstore"
)

// An export of more than one page that a retention purge (another
// replica's, or Maintain's) overtakes between two pages reports success, yet
// the export it wrote skips the purged events: an offline verifier of the
// export (doc.go) finds a sequence gap and reports tampering of an intact
// chain. Export should either write a verifiable export (start over, or stop
// with an error) or fail; it never checks that the checkpoint it anchored to
// is still where the following pages start.
func TestRevExportOvertakenByPurgeVerifiesOffline(t *testing.T) {
	for _, desc := range []bool{false, true} {
		name := "Ascending"
		if desc {
			name = "Descending"
		}
		t.Run(name, func(t *testing.T) {
			ctx := context.Background()
			c := newClock()
			mem := memstore.NewAudit()
			l := newLog(t, mem, withClock(c))
			evs := recordDaily(t, l, c, "acme", 2500)
			replica := newLog(t, mem, withClock(c))
			during := &duringQuery{Store: mem, during: func(k int64) {
				if k == 2 { // between the export's first and second page
					if got, err := replica.Purge(ctx, "acme", evs[1800].Time); err != nil || got != 1800 {
						t.Errorf("replica's Purge = %d, %v", got, err)
					}
				}
			}}
			exporter := newLog(t, during, withClock(c))
			var buf bytes.Buffer
			err := exporter.Export(ctx, "acme", audit.Query{Desc: desc}, &buf, audit.JSONLines)
			if err != nil {
				return // refusing is fine
			}
			out := buf.String()
			if desc {
				lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
				for i, j := 0, len(lines)-1; i < j; i, j = i+1, j-1 {
					lines[i], lines[j] = lines[j], lines[i]
				}
				out = strings.Join(lines, "\n") + "\n"
			}
			if got, verr := verifyOffline(testKey, "acme", out); verr != nil {
				t.Fatalf("Export returned nil, but its export of an intact chain fails offline verification after %d events: %v", got, verr)
			}
		})
	}
}
