package sqlitestore_test

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/store/sqlitestore"
)

// appendBatches appends n batches of 8 events to tenant's chain, which
// starts empty, calling after(i) after the i-th.
func appendBatches(t *testing.T, a *sqlitestore.Audit, tenant string, n int, after func(i int)) {
	t.Helper()
	ctx := context.Background()
	var head audit.Link
	evs := make([]audit.Event, 8)
	for b := range n {
		prev := head.MAC
		for i := range evs {
			seq := head.Seq + uint64(i) + 1
			mac := sha256.Sum256(binary.BigEndian.AppendUint64([]byte(tenant), seq))
			evs[i] = audit.Event{ID: fmt.Sprint("e", seq), Tenant: tenant, Seq: seq, Time: time.Unix(int64(seq), 0),
				Actor:  audit.Actor{Kind: audit.ActorUser, ID: fmt.Sprint("u", i), Email: fmt.Sprint("u", i, "@example.com")},
				Action: audit.LoginFailed, Target: "u1", IP: "203.0.113.5", UserAgent: "test", Outcome: audit.Failure,
				Reason: "bad_password", PrevMAC: prev, MAC: mac[:]}
			prev = evs[i].MAC
		}
		if err := a.Append(ctx, tenant, evs); err != nil {
			t.Fatalf("batch %d: %v", b, err)
		}
		head = audit.Link{Seq: evs[7].Seq, MAC: evs[7].MAC}
		after(b)
	}
}

// The writer does not checkpoint, the Store's checkpointer does: under
// continuous writes, with readers, the WAL still starts over rather than
// grow with everything written.
func TestWALStaysBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("writes ~100 MB of WAL frames")
	}
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "guard.db")
	st, err := sqlitestore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	// Readers keep read transactions coming, as a console would.
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := st.Audit.Query(ctx, "acme", audit.Query{Desc: true, Limit: 50}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	const batches = 3000 // about 23,000 frames of 4 KiB
	var largest int64
	appendBatches(t, st.Audit, "acme", batches, func(int) {
		fi, err := os.Stat(path + "-wal")
		if err != nil {
			t.Fatal(err)
		}
		largest = max(largest, fi.Size())
	})
	close(stop)
	wg.Wait()
	const frame = 24 + 4096
	t.Logf("largest WAL: %d frames", largest/frame)
	if limit := int64(3 * 4000 * frame); largest > limit {
		t.Errorf("the WAL grew to %d bytes (%d frames), want at most %d: it is not started over", largest, largest/frame, limit)
	}
	evs, err := st.Audit.Query(ctx, "acme", audit.Query{Desc: true, Limit: 1})
	if err != nil || len(evs) != 1 || evs[0].Seq != 8*batches {
		t.Fatalf("newest event = %v, %v; want Seq %d", evs, err, 8*batches)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	// Everything is in the file once the Store is closed.
	st, err = sqlitestore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h, err := st.Audit.Head(ctx, "acme")
	if err != nil || h.Seq != 8*batches {
		t.Fatalf("Head after reopening = %v, %v; want Seq %d", h, err, 8*batches)
	}
}

// Close stops the checkpointer, also while it is checkpointing.
func TestCloseStopsCheckpointer(t *testing.T) {
	ctx := context.Background()
	before := runtime.NumGoroutine()
	for i := range 3 {
		st, err := sqlitestore.Open(ctx, filepath.Join(t.TempDir(), "guard.db"))
		if err != nil {
			t.Fatal(err)
		}
		if err := st.Migrate(ctx); err != nil {
			t.Fatal(err)
		}
		// Enough commits for a checkpoint or two, then Close at once.
		appendBatches(t, st.Audit, "acme", 300*(i+1), func(int) {})
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before {
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines after closing the Stores, %d before:\n%s", runtime.NumGoroutine(), before, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A few commits, far fewer than a checkpoint's worth, still reach the
// database file soon after: readers then read their pages through mmap
// rather than from the WAL.
func TestIdleCheckpoint(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "guard.db")
	st, err := sqlitestore.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	size := func() int64 {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		return fi.Size()
	}
	time.Sleep(300 * time.Millisecond) // the migration's pages settle
	before := size()
	appendBatches(t, st.Audit, "acme", 20, func(int) {}) // ~64 KiB of events, 20 commits
	deadline := time.Now().Add(5 * time.Second)
	for size() < before+16*4096 {
		if time.Now().After(deadline) {
			t.Fatalf("the database file is %d bytes 5 s after 20 commits (%d before): the WAL was not checkpointed", size(), before)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
