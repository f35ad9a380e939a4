package sqlitestore_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"testing"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/store/sqlitestore"
)

// Append splits a batch into multi-row INSERTs of 64, 32… 1 events: every
// size comes back whole and in order.
func TestAppendBatchSizes(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	var head audit.Link
	total := 0
	for _, n := range []int{1, 2, 3, 7, 8, 63, 64, 65, 127, 130, 256} {
		evs := make([]audit.Event, n)
		prev := head.MAC
		for i := range evs {
			seq := head.Seq + uint64(i) + 1
			mac := sha256.Sum256(fmt.Appendf(nil, "%d", seq))
			evs[i] = audit.Event{ID: fmt.Sprint("e", seq), Tenant: "acme", Seq: seq, Time: t0.Add(time.Duration(seq) * time.Microsecond),
				Action: audit.LoginFailed, Outcome: audit.Failure, Meta: map[string]string{"n": fmt.Sprint(n)}, PrevMAC: prev, MAC: mac[:]}
			prev = evs[i].MAC
		}
		if err := s.Audit.Append(ctx, "acme", evs); err != nil {
			t.Fatalf("Append of %d events: %v", n, err)
		}
		got, err := s.Audit.Query(ctx, "acme", audit.Query{After: head.Seq, Limit: audit.MaxLimit})
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != n {
			t.Fatalf("batch of %d: %d events stored", n, len(got))
		}
		for i := range got {
			if got[i].ID != evs[i].ID || got[i].Seq != evs[i].Seq || !got[i].Time.Equal(evs[i].Time) || got[i].Meta["n"] != fmt.Sprint(n) {
				t.Fatalf("batch of %d, event %d: got %+v, want %+v", n, i, got[i], evs[i])
			}
		}
		head = audit.Link{Seq: evs[n-1].Seq, MAC: evs[n-1].MAC}
		total += n
	}
	if h, err := s.Audit.Head(ctx, "acme"); err != nil || h.Seq != uint64(total) {
		t.Fatalf("Head = %+v, %v; want Seq %d", h, err, total)
	}
}

// Purge removes events from the indexed table and from the tail alike,
// with the checkpoint in either, and the chain goes on across both.
func TestPurgeAcrossTheTail(t *testing.T) {
	ctx := context.Background()
	for _, name := range []string{"InIndexed", "InTail"} {
		t.Run(name, func(t *testing.T) {
			s := openStore(t)
			var head audit.Link
			appendN := func(n int) {
				evs := make([]audit.Event, n)
				prev := head.MAC
				for i := range evs {
					seq := head.Seq + uint64(i) + 1
					mac := sha256.Sum256(fmt.Appendf(nil, "%d", seq))
					evs[i] = audit.Event{ID: fmt.Sprint("e", seq), Tenant: "acme", Seq: seq, Time: t0.Add(time.Duration(seq) * time.Second),
						Action: audit.LoginFailed, Outcome: audit.Failure, PrevMAC: prev, MAC: mac[:]}
					prev = evs[i].MAC
				}
				if err := s.Audit.Append(ctx, "acme", evs); err != nil {
					t.Fatal(err)
				}
				head = audit.Link{Seq: evs[n-1].Seq, MAC: evs[n-1].MAC}
			}
			for head.Seq < sqlitestore.AuditTail+100 {
				appendN(10)
			}
			var indexed uint64
			if err := s.DB().QueryRow(`SELECT indexed_upto FROM guard_audit_heads`).Scan(&indexed); err != nil || indexed == 0 || indexed == head.Seq {
				t.Fatalf("indexed up to %d of %d, %v: want some events in each table", indexed, head.Seq, err)
			}
			cpSeq := indexed - 10
			if name == "InTail" {
				cpSeq = indexed + 10
			}
			all, err := s.Audit.Query(ctx, "acme", audit.Query{After: cpSeq - 1, Limit: 1})
			if err != nil || len(all) != 1 {
				t.Fatal(all, err)
			}
			cp := audit.Checkpoint{Seq: cpSeq, MAC: all[0].MAC, At: t0}
			if err := s.Audit.Purge(ctx, "acme", cp); err != nil {
				t.Fatal(err)
			}
			appendN(sqlitestore.AuditTail) // indexes the tail again
			got, err := s.Audit.Query(ctx, "acme", audit.Query{Limit: audit.MaxLimit})
			if err != nil {
				t.Fatal(err)
			}
			if uint64(len(got)) != head.Seq-cpSeq || got[0].Seq != cpSeq+1 {
				t.Fatalf("after purging up to %d: %d events from Seq %d, want %d from %d", cpSeq, len(got), got[0].Seq, head.Seq-cpSeq, cpSeq+1)
			}
			for i := 1; i < len(got); i++ {
				if got[i].Seq != got[i-1].Seq+1 {
					t.Fatalf("Seq %d follows %d", got[i].Seq, got[i-1].Seq)
				}
			}
		})
	}
}
