package memstore

import (
	"bytes"
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/audit/audittest"
)

func TestAuditConformance(t *testing.T) {
	audittest.Run(t, func(*testing.T) audit.Store { return NewAudit() })
}

func TestAuditConformanceConcurrent(t *testing.T) {
	audittest.RunConcurrent(t, func(*testing.T) audit.Store { return NewAudit() })
}

var auditTestKey = bytes.Repeat([]byte{0x17}, audit.MinKeySize)

// auditTestClock is a Config.Now that moves one second per call, so that
// events have distinct times.
type auditTestClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *auditTestClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(time.Second)
	return c.t
}

func newAuditTestLog(t *testing.T, s *Audit, now func() time.Time) *audit.Log {
	t.Helper()
	l, err := audit.New(audit.Config{Store: s, Key: auditTestKey, Now: now})
	if err != nil {
		t.Fatalf("audit.New: %v", err)
	}
	return l
}

func auditTestEvent(tenant string, i int) audit.Event {
	return audit.Event{
		Tenant:  tenant,
		Actor:   audit.Actor{Kind: audit.ActorUser, ID: fmt.Sprint("u", i%4), Email: fmt.Sprintf("u%d@example.com", i%4)},
		Action:  audit.LoginFailed,
		Target:  fmt.Sprint("u", i%4),
		IP:      "203.0.113.5",
		Outcome: audit.Failure,
		Reason:  "bad_password",
		Meta:    map[string]string{"i": fmt.Sprint(i)},
	}
}

// recordConcurrently records n events for tenant from n goroutines and
// returns the Seqs Record gave back.
func recordConcurrently(t *testing.T, l *audit.Log, tenant string, n int) []uint64 {
	t.Helper()
	seqs := make([]uint64, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			e, err := l.Record(context.Background(), auditTestEvent(tenant, i))
			if err != nil {
				t.Errorf("Record %d: %v", i, err)
				return
			}
			seqs[i] = e.Seq
		})
	}
	wg.Wait()
	return seqs
}

// checkAuditSeqs fails t unless seqs are 1..n, each once.
func checkAuditSeqs(t *testing.T, seqs []uint64, n int) {
	t.Helper()
	seen := make([]bool, n+1)
	for _, s := range seqs {
		if s == 0 || s > uint64(n) || seen[s] {
			t.Fatalf("Seq %d given out of range or twice", s)
		}
		seen[s] = true
	}
	if len(seqs) != n {
		t.Fatalf("%d Seqs, want %d", len(seqs), n)
	}
}

// verifyAuditOK fails t unless tenant's chain verifies, with checked events
// after the checkpoint and its head at Seq head.
func verifyAuditOK(t *testing.T, l *audit.Log, tenant string, checked, head int) {
	t.Helper()
	rep, err := l.Verify(context.Background(), tenant)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !rep.OK || rep.Checked != checked || rep.Head.Seq != uint64(head) {
		t.Fatalf("Verify = %+v, want OK over %d events up to Seq %d", rep, checked, head)
	}
}

// checkStoredChain fails t unless the stored events of tenant are Seq 1..n,
// each linked to the one before.
func checkStoredChain(t *testing.T, s *Audit, tenant string, n int) {
	t.Helper()
	s.mu.RLock()
	defer s.mu.RUnlock()
	evs := s.tenants[tenant].events
	if len(evs) != n {
		t.Fatalf("%d stored events, want %d", len(evs), n)
	}
	for i, e := range evs {
		if e.Seq != uint64(i+1) || (i > 0 && !bytes.Equal(e.PrevMAC, evs[i-1].MAC)) {
			t.Fatalf("stored event %d: Seq %d, not linked to the one before", i, e.Seq)
		}
	}
}

// AU-10: 1,000 concurrent appends for one tenant give one contiguous chain
// that verifies.
func TestAuditLogConcurrentRecords(t *testing.T) {
	s := NewAudit()
	l := newAuditTestLog(t, s, nil)
	const n = 1000
	seqs := recordConcurrently(t, l, "acme", n)
	checkAuditSeqs(t, seqs, n)
	checkStoredChain(t, s, "acme", n)
	verifyAuditOK(t, l, "acme", n, n)
}

// Two replicas sharing one store, 500 Records each at once.
func TestAuditLogTwoReplicas(t *testing.T) {
	s := NewAudit()
	a, b := newAuditTestLog(t, s, nil), newAuditTestLog(t, s, nil)
	const each = 500
	var sa, sb []uint64
	var wg sync.WaitGroup
	wg.Go(func() { sa = recordConcurrently(t, a, "acme", each) })
	wg.Go(func() { sb = recordConcurrently(t, b, "acme", each) })
	wg.Wait()
	if t.Failed() {
		return
	}
	checkAuditSeqs(t, append(sa, sb...), 2*each)
	checkStoredChain(t, s, "acme", 2*each)
	verifyAuditOK(t, a, "acme", 2*each, 2*each)
	verifyAuditOK(t, b, "acme", 2*each, 2*each)
	verifyAuditOK(t, newAuditTestLog(t, s, nil), "acme", 2*each, 2*each)
}

// Verify and Purge on one tenant at the same time, with Records going on:
// Verify never reports tampering that is not there.
func TestAuditLogVerifyDuringPurge(t *testing.T) {
	s := NewAudit()
	c := &auditTestClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := newAuditTestLog(t, s, c.Now)
	ctx := context.Background()
	var wg sync.WaitGroup
	wg.Go(func() {
		for i := range 400 {
			if _, err := l.Record(ctx, auditTestEvent("acme", i)); err != nil {
				t.Errorf("Record: %v", err)
				return
			}
			if i%20 == 19 {
				if _, err := l.Purge(ctx, "acme", c.Now().Add(-10*time.Second)); err != nil {
					t.Errorf("Purge: %v", err)
					return
				}
			}
		}
	})
	wg.Go(func() {
		for range 200 {
			rep, err := l.Verify(ctx, "acme")
			if err != nil {
				t.Errorf("Verify: %v", err)
				return
			}
			if !rep.OK {
				t.Errorf("Verify during Purge = %+v", rep)
				return
			}
		}
	})
	wg.Wait()
}

// tamperChain calls f with tenant's stored chain under the store's lock:
// what an attacker with write access to the storage could do.
func (s *Audit) tamperChain(tenant string, f func(c *auditChain)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f(s.tenants[tenant])
}

// bySeq returns the stored event with Seq seq.
func (c *auditChain) bySeq(seq uint64) *audit.Event {
	for i := range c.events {
		if c.events[i].Seq == seq {
			return &c.events[i]
		}
	}
	panic(fmt.Sprint("no event ", seq))
}

// AU-4, AU-5, AU-6 and more: tampering with memstore's storage is reported
// at the right Seq.
func TestAuditLogTamper(t *testing.T) {
	const n, k = 10, 5
	tests := []struct {
		name     string
		purge    int // events to purge first
		tamper   func(s *Audit)
		firstBad uint64
		reason   string
	}{
		{"EditActor", 0, func(s *Audit) {
			s.tamperChain("acme", func(c *auditChain) { c.bySeq(k).Actor.Email = "mallory@example.com" })
		}, k, "mac mismatch"},
		{"EditOutcome", 0, func(s *Audit) {
			s.tamperChain("acme", func(c *auditChain) { c.bySeq(k).Outcome = audit.Success })
		}, k, "mac mismatch"},
		{"EditTime", 0, func(s *Audit) {
			s.tamperChain("acme", func(c *auditChain) { e := c.bySeq(k); e.Time = e.Time.Add(time.Hour) })
		}, k, "mac mismatch"},
		{"EditMeta", 0, func(s *Audit) {
			s.tamperChain("acme", func(c *auditChain) { c.bySeq(k).Meta["i"] = "x" })
		}, k, "mac mismatch"},
		{"EditFirst", 0, func(s *Audit) {
			s.tamperChain("acme", func(c *auditChain) { c.bySeq(1).IP = "10.0.0.1" })
		}, 1, "mac mismatch"},
		{"EditLast", 0, func(s *Audit) {
			s.tamperChain("acme", func(c *auditChain) { c.bySeq(n).Reason = "" })
		}, n, "mac mismatch"},
		{"DeleteMiddle", 0, func(s *Audit) {
			s.tamperChain("acme", func(c *auditChain) { c.events = append(c.events[:k-1:k-1], c.events[k:]...) })
		}, k, "sequence gap"},
		{"DeleteMiddleAndRenumber", 0, func(s *Audit) {
			s.tamperChain("acme", func(c *auditChain) {
				c.events = append(c.events[:k-1:k-1], c.events[k:]...)
				for i := k - 1; i < len(c.events); i++ {
					c.events[i].Seq--
				}
			})
		}, k, "prev mac mismatch"},
		{"DeleteFirst", 0, func(s *Audit) {
			s.tamperChain("acme", func(c *auditChain) { c.events = c.events[1:] })
		}, 1, "sequence gap"},
		{"SwapContents", 0, func(s *Audit) { // as in a SQL table keyed by Seq
			s.tamperChain("acme", func(c *auditChain) {
				a, b := c.bySeq(k), c.bySeq(k+1)
				*a, *b = *b, *a
				a.Seq, b.Seq = k, k+1
			})
		}, k, "prev mac mismatch"},
		{"SwapPositions", 0, func(s *Audit) {
			s.tamperChain("acme", func(c *auditChain) { c.events[k-1], c.events[k] = c.events[k], c.events[k-1] })
		}, k, "sequence gap"},
		{"CopyFromOtherTenant", 0, func(s *Audit) {
			other := cloneAuditEvent(s.tenants["other"].bySeq(k))
			s.tamperChain("acme", func(c *auditChain) { *c.bySeq(k) = other })
		}, k, "tenant mismatch"},
		{"CopyFromOtherTenantRelabelled", 0, func(s *Audit) {
			other := cloneAuditEvent(s.tenants["other"].bySeq(k))
			other.Tenant = "acme"
			s.tamperChain("acme", func(c *auditChain) { *c.bySeq(k) = other })
		}, k, "prev mac mismatch"},
		{"ForgedEventAppended", 0, func(s *Audit) {
			s.tamperChain("acme", func(c *auditChain) {
				forged := cloneAuditEvent(c.bySeq(n))
				forged.Seq, forged.PrevMAC, forged.Outcome = n+1, forged.MAC, audit.Success
				c.events = append(c.events, forged)
			})
		}, n + 1, "mac mismatch"},
		{"TruncateTail", 0, func(s *Audit) {
			s.tamperChain("acme", func(c *auditChain) { c.events = c.events[:n-2] })
		}, n - 1, "missing events"},
		{"EditCheckpointAt", 3, func(s *Audit) {
			s.tamperChain("acme", func(c *auditChain) { c.cp.At = c.cp.At.Add(-time.Hour) })
		}, 3, "bad checkpoint"},
		{"EditCheckpointMAC", 3, func(s *Audit) {
			s.tamperChain("acme", func(c *auditChain) { c.cp.MAC[0] ^= 1 })
		}, 3, "bad checkpoint"},
		{"EditCheckpointSeqAndDeleteMore", 3, func(s *Audit) {
			s.tamperChain("acme", func(c *auditChain) {
				c.cp.Seq, c.cp.MAC = 4, c.events[0].MAC
				c.events = c.events[1:]
			})
		}, 4, "bad checkpoint"},
		{"DeleteCheckpoint", 3, func(s *Audit) {
			s.tamperChain("acme", func(c *auditChain) { c.cp = audit.Checkpoint{} })
		}, 1, "sequence gap"},
		{"EditAfterCheckpoint", 3, func(s *Audit) {
			s.tamperChain("acme", func(c *auditChain) { c.bySeq(4).PrevMAC = nil })
		}, 4, "prev mac mismatch"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := NewAudit()
			c := &auditTestClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
			l := newAuditTestLog(t, s, c.Now)
			ctx := context.Background()
			var times []time.Time
			for i := range n {
				for _, tenant := range []string{"acme", "other"} {
					e, err := l.Record(ctx, auditTestEvent(tenant, i))
					if err != nil {
						t.Fatalf("Record: %v", err)
					}
					if tenant == "acme" {
						times = append(times, e.Time)
					}
				}
			}
			if tt.purge > 0 {
				if got, err := l.Purge(ctx, "acme", times[tt.purge]); err != nil || got != tt.purge {
					t.Fatalf("Purge = %d, %v; want %d", got, err, tt.purge)
				}
			}
			verifyAuditOK(t, l, "acme", n-tt.purge, n)
			tt.tamper(s)
			rep, err := l.Verify(ctx, "acme")
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if rep.OK || rep.FirstBad != tt.firstBad || rep.Reason != tt.reason {
				t.Errorf("Verify = %+v, want FirstBad %d, %q", rep, tt.firstBad, tt.reason)
			}
			verifyAuditOK(t, l, "other", n, n) // the other tenant's chain is unharmed
		})
	}
}

// A tampered chain is not purged: retention does not launder it.
func TestAuditLogPurgeRefusesTamperedChain(t *testing.T) {
	s := NewAudit()
	c := &auditTestClock{t: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
	l := newAuditTestLog(t, s, c.Now)
	ctx := context.Background()
	for i := range 5 {
		if _, err := l.Record(ctx, auditTestEvent("acme", i)); err != nil {
			t.Fatal(err)
		}
	}
	s.tamperChain("acme", func(c *auditChain) { c.bySeq(2).Actor.ID = "someone-else" })
	if _, err := l.Purge(ctx, "acme", c.Now()); err == nil {
		t.Fatal("Purge of a tampered chain succeeded")
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if left := len(s.tenants["acme"].events); left != 5 {
		t.Errorf("%d events left, want all 5 kept as evidence", left)
	}
}

func TestAuditReturnsCopies(t *testing.T) {
	s := NewAudit()
	ctx := context.Background()
	e := audit.Event{Tenant: "acme", Seq: 1, MAC: []byte{1, 2}, Meta: map[string]string{"k": "v"}}
	if err := s.Append(ctx, "acme", []audit.Event{e}); err != nil {
		t.Fatal(err)
	}
	e.MAC[0], e.Meta["k"] = 9, "changed"
	got, err := s.Query(ctx, "acme", audit.Query{})
	if err != nil || len(got) != 1 {
		t.Fatalf("Query = %v, %v", got, err)
	}
	if got[0].MAC[0] != 1 || got[0].Meta["k"] != "v" {
		t.Fatalf("store kept the caller's slices: %+v", got[0])
	}
	got[0].MAC[0], got[0].Meta["k"] = 8, "changed"
	head, _ := s.Head(ctx, "acme")
	head.MAC[1] = 7
	again, _ := s.Query(ctx, "acme", audit.Query{})
	if again[0].MAC[0] != 1 || again[0].MAC[1] != 2 || again[0].Meta["k"] != "v" {
		t.Fatalf("store handed out its own slices: %+v", again[0])
	}
}

func TestAuditContextDone(t *testing.T) {
	s := NewAudit()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	e := audit.Event{Tenant: "acme", Seq: 1, MAC: []byte{1}}
	if err := s.Append(ctx, "acme", []audit.Event{e}); err == nil {
		t.Error("Append with a cancelled context succeeded")
	}
	if _, err := s.Head(ctx, "acme"); err == nil {
		t.Error("Head with a cancelled context succeeded")
	}
	if _, err := s.Query(ctx, "acme", audit.Query{}); err == nil {
		t.Error("Query with a cancelled context succeeded")
	}
	if _, err := s.Checkpoint(ctx, "acme"); err == nil {
		t.Error("Checkpoint with a cancelled context succeeded")
	}
	if err := s.Purge(ctx, "acme", audit.Checkpoint{Seq: 1}); err == nil {
		t.Error("Purge with a cancelled context succeeded")
	}
	if got, _ := s.Query(context.Background(), "acme", audit.Query{}); len(got) != 0 {
		t.Errorf("stored %d events", len(got))
	}
}
