// Package audittest is the conformance suite for audit.Store
// implementations. A backend's test calls Run and RunConcurrent:
//
//	func TestAudit(t *testing.T) {
//		audittest.Run(t, func(t *testing.T) audit.Store { return newStore(t) })
//	}
//
// Every sentence of the audit.Store contract has a named subtest. The suite
// builds events itself: stores check only Seq and PrevMAC continuity, never
// MACs, so the events carry stand-in MACs (SHA-256 of the event's identity).
//
// Two clarifications the suite checks: a nil and an empty Meta are
// equivalent (a store may return either for both), and a nil and an empty
// PrevMAC or MAC are equal (bytes.Equal), so the first event of a tenant may
// carry either. Times are given at microsecond precision and must come back
// as the same instant (time.Time.Equal); the location may differ. String
// fields hold arbitrary valid UTF-8, including control characters and NUL,
// and must round-trip byte for byte.
package audittest

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guardhq/guard/audit"
)

// base is the time of event 0; event n is n minutes later.
var base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// timeOf returns the Time the suite gives the event with Seq seq.
func timeOf(seq uint64) time.Time {
	return base.Add(time.Duration(seq)*time.Minute + 123456*time.Microsecond)
}

// fakeMAC stands in for a chain MAC: distinct for every event identity.
func fakeMAC(id, tenant string, seq uint64, prev []byte) []byte {
	h := sha256.New()
	for _, s := range []string{id, tenant, string(prev)} {
		h.Write(binary.AppendUvarint(nil, uint64(len(s))))
		h.Write([]byte(s))
	}
	h.Write(binary.BigEndian.AppendUint64(nil, seq))
	return h.Sum(nil)
}

// newEvent returns an event of tenant with Seq seq following prev, with ID
// id (made up when empty). Its other fields vary with seq so that the
// Query filters have something to select: Actor u<seq%3>, Action
// login.succeeded or login.failed, Outcome success or failure.
func newEvent(id, tenant string, seq uint64, prev []byte) audit.Event {
	if id == "" {
		id = fmt.Sprintf("%s-%d", tenant, seq)
	}
	actor := fmt.Sprintf("u%d", seq%3)
	e := audit.Event{
		ID:        id,
		Tenant:    tenant,
		Seq:       seq,
		Time:      timeOf(seq),
		Actor:     audit.Actor{Kind: audit.ActorUser, ID: actor, Email: actor + "@example.com"},
		Action:    audit.LoginSucceeded,
		Target:    "session-" + id,
		IP:        "192.0.2.1",
		UserAgent: "audittest",
		Outcome:   audit.Success,
		PrevMAC:   prev,
	}
	if seq%2 == 0 {
		e.Action, e.Outcome, e.Reason = audit.LoginFailed, audit.Failure, "bad_password"
		e.Meta = map[string]string{"attempt": fmt.Sprint(seq)}
	}
	e.MAC = fakeMAC(id, tenant, seq, prev)
	return e
}

// chain returns n events of tenant continuing after head.
func chain(tenant string, head audit.Link, n int) []audit.Event {
	events := make([]audit.Event, n)
	prev := head.MAC
	for i := range events {
		events[i] = newEvent("", tenant, head.Seq+uint64(i)+1, prev)
		prev = events[i].MAC
	}
	return events
}

func bg() context.Context { return context.Background() }

// fill appends n events to tenant in batches of at most 100 and returns
// them.
func fill(t *testing.T, s audit.Store, tenant string, n int) []audit.Event {
	t.Helper()
	head := mustHead(t, s, tenant)
	var all []audit.Event
	for n > 0 {
		k := min(n, 100)
		evs := chain(tenant, head, k)
		if err := s.Append(bg(), tenant, evs); err != nil {
			t.Fatalf("Append(%q, Seq %d..%d): %v", tenant, evs[0].Seq, evs[k-1].Seq, err)
		}
		all = append(all, evs...)
		head = audit.Link{Seq: evs[k-1].Seq, MAC: evs[k-1].MAC}
		n -= k
	}
	return all
}

func mustHead(t *testing.T, s audit.Store, tenant string) audit.Link {
	t.Helper()
	h, err := s.Head(bg(), tenant)
	if err != nil {
		t.Fatalf("Head(%q): %v", tenant, err)
	}
	return h
}

func mustQuery(t *testing.T, s audit.Store, tenant string, q audit.Query) []audit.Event {
	t.Helper()
	evs, err := s.Query(bg(), tenant, q)
	if err != nil {
		t.Fatalf("Query(%q, %+v): %v", tenant, q, err)
	}
	return evs
}

func mustCheckpoint(t *testing.T, s audit.Store, tenant string) audit.Checkpoint {
	t.Helper()
	cp, err := s.Checkpoint(bg(), tenant)
	if err != nil {
		t.Fatalf("Checkpoint(%q): %v", tenant, err)
	}
	return cp
}

// queryAll pages through every event of tenant in ascending order.
func queryAll(t *testing.T, s audit.Store, tenant string) []audit.Event {
	t.Helper()
	var all []audit.Event
	var after uint64
	for {
		evs := mustQuery(t, s, tenant, audit.Query{After: after, Limit: 1000})
		if len(evs) == 0 {
			return all
		}
		all = append(all, evs...)
		after = evs[len(evs)-1].Seq
	}
}

// diff describes how got differs from want, "" if it does not.
func diff(got, want audit.Event) string {
	var d []string
	add := func(field string, g, w any) { d = append(d, fmt.Sprintf("%s = %q, want %q", field, g, w)) }
	if got.ID != want.ID {
		add("ID", got.ID, want.ID)
	}
	if got.Tenant != want.Tenant {
		add("Tenant", got.Tenant, want.Tenant)
	}
	if got.Seq != want.Seq {
		d = append(d, fmt.Sprintf("Seq = %d, want %d", got.Seq, want.Seq))
	}
	if !got.Time.Equal(want.Time) {
		d = append(d, fmt.Sprintf("Time = %v, want %v", got.Time, want.Time))
	}
	if got.Actor != want.Actor {
		add("Actor", fmt.Sprint(got.Actor), fmt.Sprint(want.Actor))
	}
	if got.Action != want.Action {
		add("Action", got.Action, want.Action)
	}
	if got.Target != want.Target {
		add("Target", got.Target, want.Target)
	}
	if got.IP != want.IP {
		add("IP", got.IP, want.IP)
	}
	if got.UserAgent != want.UserAgent {
		add("UserAgent", got.UserAgent, want.UserAgent)
	}
	if got.Outcome != want.Outcome {
		add("Outcome", got.Outcome, want.Outcome)
	}
	if got.Reason != want.Reason {
		add("Reason", got.Reason, want.Reason)
	}
	if !maps.Equal(got.Meta, want.Meta) { // nil and empty are equal here
		d = append(d, fmt.Sprintf("Meta = %q, want %q", got.Meta, want.Meta))
	}
	if !bytes.Equal(got.PrevMAC, want.PrevMAC) {
		d = append(d, fmt.Sprintf("PrevMAC = %x, want %x", got.PrevMAC, want.PrevMAC))
	}
	if !bytes.Equal(got.MAC, want.MAC) {
		d = append(d, fmt.Sprintf("MAC = %x, want %x", got.MAC, want.MAC))
	}
	return strings.Join(d, "; ")
}

// checkEvents fails t unless got equals want, event by event.
func checkEvents(t *testing.T, got, want []audit.Event) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("got %d events %v, want %d %v", len(got), seqs(got), len(want), seqs(want))
	}
	for i := range got {
		if d := diff(got[i], want[i]); d != "" {
			t.Errorf("event %d (Seq %d): %s", i, want[i].Seq, d)
		}
	}
}

func seqs(evs []audit.Event) []uint64 {
	s := make([]uint64, len(evs))
	for i := range evs {
		s[i] = evs[i].Seq
	}
	return s
}

func reversed(evs []audit.Event) []audit.Event {
	r := make([]audit.Event, len(evs))
	for i := range evs {
		r[len(evs)-1-i] = evs[i]
	}
	return r
}

func filter(evs []audit.Event, keep func(*audit.Event) bool) []audit.Event {
	var out []audit.Event
	for i := range evs {
		if keep(&evs[i]) {
			out = append(out, evs[i])
		}
	}
	return out
}

func checkLink(t *testing.T, what string, got, want audit.Link) {
	t.Helper()
	if got.Seq != want.Seq || !bytes.Equal(got.MAC, want.MAC) {
		t.Errorf("%s = {Seq %d, MAC %x}, want {Seq %d, MAC %x}", what, got.Seq, got.MAC, want.Seq, want.MAC)
	}
}

func linkOf(e audit.Event) audit.Link { return audit.Link{Seq: e.Seq, MAC: e.MAC} }

// checkpointAfter returns a checkpoint standing in for events up to and
// including e. Stores do not check CheckpointMAC; the suite gives a
// distinct stand-in.
func checkpointAfter(e audit.Event) audit.Checkpoint {
	return audit.Checkpoint{
		Seq:           e.Seq,
		MAC:           e.MAC,
		At:            time.Date(2026, 6, 1, 12, 0, 0, 654321000, time.UTC),
		CheckpointMAC: fakeMAC("checkpoint", e.Tenant, e.Seq, e.MAC),
	}
}

func checkCheckpoint(t *testing.T, got, want audit.Checkpoint) {
	t.Helper()
	if got.Seq != want.Seq || !bytes.Equal(got.MAC, want.MAC) || !got.At.Equal(want.At) ||
		!bytes.Equal(got.CheckpointMAC, want.CheckpointMAC) {
		t.Errorf("Checkpoint = %+v, want %+v", got, want)
	}
}

// wantConflict fails t unless err is ErrConflict.
func wantConflict(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, audit.ErrConflict) {
		t.Fatalf("err = %v, want ErrConflict", err)
	}
}

// Run runs the audit.Store conformance suite. newStore must return a fresh,
// empty store on every call; each subtest uses its own.
func Run(t *testing.T, newStore func(t *testing.T) audit.Store) {
	t.Run("Append", func(t *testing.T) { runAppend(t, newStore) })
	t.Run("Head", func(t *testing.T) { runHead(t, newStore) })
	t.Run("Query", func(t *testing.T) { runQuery(t, newStore) })
	t.Run("RandomQuery", func(t *testing.T) { runRandomQuery(t, newStore) })
	t.Run("Checkpoint", func(t *testing.T) { runCheckpoint(t, newStore) })
	t.Run("Purge", func(t *testing.T) { runPurge(t, newStore) })
}

func runAppend(t *testing.T, newStore func(t *testing.T) audit.Store) {
	// "Append stores events, which all belong to tenant and continue its chain"
	t.Run("StoresEventsOfTenant", func(t *testing.T) {
		s := newStore(t)
		want := fill(t, s, "t1", 3)
		checkEvents(t, queryAll(t, s, "t1"), want)
		if got := queryAll(t, s, "t2"); len(got) != 0 {
			t.Errorf("other tenant sees %v", seqs(got))
		}
	})
	t.Run("ContinuesChainAcrossCalls", func(t *testing.T) {
		s := newStore(t)
		var want []audit.Event
		for _, n := range []int{1, 4, 2} {
			evs := chain("t1", mustHead(t, s, "t1"), n)
			if err := s.Append(bg(), "t1", evs); err != nil {
				t.Fatalf("Append: %v", err)
			}
			want = append(want, evs...)
		}
		checkEvents(t, queryAll(t, s, "t1"), want)
	})
	// "events[0].Seq must be Head.Seq+1"
	t.Run("FirstSeqMustBeHeadSeqPlusOne", func(t *testing.T) {
		s := newStore(t)
		for _, seq := range []uint64{0, 2} {
			e := newEvent("", "t1", seq, nil)
			wantConflict(t, s.Append(bg(), "t1", []audit.Event{e}))
		}
		want := fill(t, s, "t1", 3)
		for _, seq := range []uint64{1, 3, 5} {
			e := newEvent("", "t1", seq, want[2].MAC)
			wantConflict(t, s.Append(bg(), "t1", []audit.Event{e}))
		}
		checkEvents(t, queryAll(t, s, "t1"), want)
	})
	// "events[0].PrevMAC must equal Head.MAC"
	t.Run("FirstPrevMACMustEqualHeadMAC", func(t *testing.T) {
		s := newStore(t)
		e := newEvent("", "t1", 1, []byte("not the empty head"))
		wantConflict(t, s.Append(bg(), "t1", []audit.Event{e}))
		want := fill(t, s, "t1", 2)
		for _, prev := range [][]byte{nil, want[0].MAC, []byte("wrong")} {
			e := newEvent("", "t1", 3, prev)
			wantConflict(t, s.Append(bg(), "t1", []audit.Event{e}))
		}
		checkEvents(t, queryAll(t, s, "t1"), want)
	})
	t.Run("EmptyPrevMACEqualsNilHeadMAC", func(t *testing.T) {
		s := newStore(t)
		e := newEvent("", "t1", 1, []byte{})
		if err := s.Append(bg(), "t1", []audit.Event{e}); err != nil {
			t.Fatalf("Append of Seq 1 with empty non-nil PrevMAC: %v", err)
		}
		checkLink(t, "Head", mustHead(t, s, "t1"), linkOf(e))
	})
	// "each next event must have Seq one higher"
	t.Run("SeqGapInsideBatch", func(t *testing.T) {
		s := newStore(t)
		want := fill(t, s, "t1", 2)
		evs := chain("t1", linkOf(want[1]), 4)
		evs[2] = newEvent("", "t1", 6, evs[1].MAC) // 3, 4, 6, …
		wantConflict(t, s.Append(bg(), "t1", evs))
		checkEvents(t, queryAll(t, s, "t1"), want)
		checkLink(t, "Head", mustHead(t, s, "t1"), linkOf(want[1]))
	})
	t.Run("RepeatedSeqInsideBatch", func(t *testing.T) {
		s := newStore(t)
		evs := chain("t1", audit.Link{}, 2)
		evs[1] = newEvent("", "t1", 1, evs[0].MAC)
		wantConflict(t, s.Append(bg(), "t1", evs))
		if got := queryAll(t, s, "t1"); len(got) != 0 {
			t.Errorf("stored %v after a refused Append", seqs(got))
		}
	})
	// "and PrevMAC equal to the MAC of the one before"
	t.Run("PrevMACMismatchInsideBatch", func(t *testing.T) {
		s := newStore(t)
		want := fill(t, s, "t1", 2)
		evs := chain("t1", linkOf(want[1]), 3)
		evs[2] = newEvent("", "t1", 5, evs[0].MAC) // links to 3, not 4
		wantConflict(t, s.Append(bg(), "t1", evs))
		checkEvents(t, queryAll(t, s, "t1"), want)
	})
	// "All are stored or none"
	t.Run("AllOrNothing", func(t *testing.T) {
		s := newStore(t)
		good := chain("t1", audit.Link{}, 5)
		bad := append([]audit.Event(nil), good...)
		bad[4] = newEvent("", "t1", 5, []byte("broken"))
		wantConflict(t, s.Append(bg(), "t1", bad))
		if got := queryAll(t, s, "t1"); len(got) != 0 {
			t.Fatalf("stored %v after a refused Append", seqs(got))
		}
		checkLink(t, "Head", mustHead(t, s, "t1"), audit.Link{})
		if err := s.Append(bg(), "t1", good); err != nil {
			t.Fatalf("Append of the good batch after a refused one: %v", err)
		}
		checkEvents(t, queryAll(t, s, "t1"), good)
	})
	// "if the chain has moved on (another writer appended first) Append
	// returns ErrConflict and stores nothing"
	t.Run("ConflictWhenAnotherWriterAppendedFirst", func(t *testing.T) {
		s := newStore(t)
		want := fill(t, s, "t1", 1)
		head := mustHead(t, s, "t1")
		// Two writers build on the same head; the first to append wins.
		first := chain("t1", head, 2)
		second := make([]audit.Event, 2)
		second[0] = newEvent("other-writer-2", "t1", 2, head.MAC)
		second[1] = newEvent("other-writer-3", "t1", 3, second[0].MAC)
		if err := s.Append(bg(), "t1", first); err != nil {
			t.Fatalf("first writer: %v", err)
		}
		wantConflict(t, s.Append(bg(), "t1", second))
		checkEvents(t, queryAll(t, s, "t1"), append(want, first...))
	})
	// "An empty slice is a no-op."
	t.Run("EmptySliceIsNoOp", func(t *testing.T) {
		s := newStore(t)
		for _, evs := range [][]audit.Event{nil, {}} {
			if err := s.Append(bg(), "t1", evs); err != nil {
				t.Fatalf("Append(empty) on an empty tenant: %v", err)
			}
		}
		checkLink(t, "Head of empty tenant", mustHead(t, s, "t1"), audit.Link{})
		want := fill(t, s, "t1", 2)
		for _, evs := range [][]audit.Event{nil, {}} {
			if err := s.Append(bg(), "t1", evs); err != nil {
				t.Fatalf("Append(empty): %v", err)
			}
		}
		checkLink(t, "Head", mustHead(t, s, "t1"), linkOf(want[1]))
		checkEvents(t, queryAll(t, s, "t1"), want)
	})
	t.Run("TenantsHaveSeparateChains", func(t *testing.T) {
		s := newStore(t)
		a := fill(t, s, "a", 3)
		b := fill(t, s, "b", 2) // starts at Seq 1 although a is at 3
		checkEvents(t, queryAll(t, s, "a"), a)
		checkEvents(t, queryAll(t, s, "b"), b)
		// b's head does not continue a.
		e := newEvent("", "a", 3, b[1].MAC)
		wantConflict(t, s.Append(bg(), "a", []audit.Event{e}))
	})
}

func runHead(t *testing.T, newStore func(t *testing.T) audit.Store) {
	// "or the zero Link for a tenant with no events"
	t.Run("ZeroForEmptyTenant", func(t *testing.T) {
		s := newStore(t)
		checkLink(t, "Head", mustHead(t, s, "t1"), audit.Link{})
		fill(t, s, "other", 2)
		checkLink(t, "Head", mustHead(t, s, "t1"), audit.Link{})
	})
	// "the Seq and MAC of its newest event"
	t.Run("NewestEvent", func(t *testing.T) {
		s := newStore(t)
		evs := fill(t, s, "t1", 7)
		checkLink(t, "Head", mustHead(t, s, "t1"), linkOf(evs[6]))
	})
	t.Run("NewestEventAfterPartialPurge", func(t *testing.T) {
		s := newStore(t)
		evs := fill(t, s, "t1", 5)
		if err := s.Purge(bg(), "t1", checkpointAfter(evs[2])); err != nil {
			t.Fatalf("Purge: %v", err)
		}
		checkLink(t, "Head", mustHead(t, s, "t1"), linkOf(evs[4]))
	})
	// "or of its checkpoint if every event was purged"
	t.Run("CheckpointWhenEveryEventPurged", func(t *testing.T) {
		s := newStore(t)
		evs := fill(t, s, "t1", 4)
		if err := s.Purge(bg(), "t1", checkpointAfter(evs[3])); err != nil {
			t.Fatalf("Purge: %v", err)
		}
		checkLink(t, "Head", mustHead(t, s, "t1"), linkOf(evs[3]))
	})
}

func runQuery(t *testing.T, newStore func(t *testing.T) audit.Store) {
	// "in ascending Seq order"
	t.Run("Ascending", func(t *testing.T) {
		s := newStore(t)
		want := fill(t, s, "t1", 20)
		checkEvents(t, mustQuery(t, s, "t1", audit.Query{}), want)
	})
	// "(descending when q.Desc)"
	t.Run("Descending", func(t *testing.T) {
		s := newStore(t)
		want := fill(t, s, "t1", 20)
		checkEvents(t, mustQuery(t, s, "t1", audit.Query{Desc: true}), reversed(want))
	})
	// Stored times have microseconds; a bound between two microseconds
	// still means From <= Time < To exactly.
	t.Run("BoundsBetweenMicroseconds", func(t *testing.T) {
		s := newStore(t)
		evs := fill(t, s, "t1", 3)
		at := evs[1].Time
		for _, c := range []struct {
			q    audit.Query
			want []audit.Event
		}{
			{audit.Query{From: at.Add(500 * time.Nanosecond)}, evs[2:]},
			{audit.Query{From: at.Add(-500 * time.Nanosecond)}, evs[1:]},
			{audit.Query{To: at.Add(500 * time.Nanosecond)}, evs[:2]},
			{audit.Query{To: at.Add(-500 * time.Nanosecond)}, evs[:1]},
			{audit.Query{From: at.Add(-time.Nanosecond), To: at.Add(time.Nanosecond)}, evs[1:2]},
		} {
			got := mustQuery(t, s, "t1", c.q)
			if !slices.Equal(seqs(got), seqs(c.want)) {
				t.Errorf("Query(From %v, To %v) around an event at %v = Seqs %v, want %v", c.q.From, c.q.To, at, seqs(got), seqs(c.want))
			}
		}
	})
	// "strictly after q.After (or before it when q.Desc)", for any uint64.
	t.Run("CursorBeyondInt64", func(t *testing.T) {
		s := newStore(t)
		want := fill(t, s, "t1", 5)
		for _, after := range []uint64{1 << 63, math.MaxUint64} {
			checkEvents(t, mustQuery(t, s, "t1", audit.Query{After: after}), nil)
			checkEvents(t, mustQuery(t, s, "t1", audit.Query{After: after, Desc: true}), reversed(want))
		}
	})
	t.Run("UnknownTenantIsEmpty", func(t *testing.T) {
		s := newStore(t)
		fill(t, s, "t1", 2)
		if got := mustQuery(t, s, "nobody", audit.Query{}); len(got) != 0 {
			t.Errorf("Query(unknown tenant) = %v", seqs(got))
		}
	})
	// "at most q.Limit of them"
	t.Run("Limit", func(t *testing.T) {
		s := newStore(t)
		all := fill(t, s, "t1", 10)
		checkEvents(t, mustQuery(t, s, "t1", audit.Query{Limit: 3}), all[:3])
		checkEvents(t, mustQuery(t, s, "t1", audit.Query{Limit: 3, Desc: true}), reversed(all[7:]))
		checkEvents(t, mustQuery(t, s, "t1", audit.Query{Limit: 50}), all)
	})
	// "0 means the store's default of 100"
	t.Run("LimitZeroMeans100", func(t *testing.T) {
		s := newStore(t)
		all := fill(t, s, "t1", 150)
		checkEvents(t, mustQuery(t, s, "t1", audit.Query{}), all[:100])
	})
	// "stores cap it at 1000"
	t.Run("LimitCappedAt1000", func(t *testing.T) {
		s := newStore(t)
		all := fill(t, s, "t1", 1100)
		checkEvents(t, mustQuery(t, s, "t1", audit.Query{Limit: 5000}), all[:1000])
		checkEvents(t, mustQuery(t, s, "t1", audit.Query{Limit: 1001, Desc: true}), reversed(all[100:]))
	})
	// "starting strictly after q.After"
	t.Run("AfterAscending", func(t *testing.T) {
		s := newStore(t)
		all := fill(t, s, "t1", 10)
		checkEvents(t, mustQuery(t, s, "t1", audit.Query{After: 4}), all[4:])
		checkEvents(t, mustQuery(t, s, "t1", audit.Query{After: 4, Limit: 2}), all[4:6])
		if got := mustQuery(t, s, "t1", audit.Query{After: 10}); len(got) != 0 {
			t.Errorf("Query(After: head) = %v", seqs(got))
		}
		if got := mustQuery(t, s, "t1", audit.Query{After: 99}); len(got) != 0 {
			t.Errorf("Query(After: beyond head) = %v", seqs(got))
		}
	})
	// "(or before it when q.Desc)"
	t.Run("AfterDescending", func(t *testing.T) {
		s := newStore(t)
		all := fill(t, s, "t1", 10)
		checkEvents(t, mustQuery(t, s, "t1", audit.Query{After: 5, Desc: true}), reversed(all[:4]))
		checkEvents(t, mustQuery(t, s, "t1", audit.Query{After: 5, Desc: true, Limit: 2}), reversed(all[2:4]))
		checkEvents(t, mustQuery(t, s, "t1", audit.Query{After: 99, Desc: true, Limit: 1}), all[9:])
		if got := mustQuery(t, s, "t1", audit.Query{After: 1, Desc: true}); len(got) != 0 {
			t.Errorf("Query(After: 1, Desc) = %v", seqs(got))
		}
	})
	t.Run("PagingWithAfter", func(t *testing.T) {
		s := newStore(t)
		all := fill(t, s, "t1", 25)
		for _, desc := range []bool{false, true} {
			var got []audit.Event
			var after uint64
			for range 10 {
				page := mustQuery(t, s, "t1", audit.Query{After: after, Limit: 7, Desc: desc})
				if len(page) == 0 {
					break
				}
				got = append(got, page...)
				after = page[len(page)-1].Seq
			}
			want := all
			if desc {
				want = reversed(all)
			}
			checkEvents(t, got, want)
		}
	})
	// "From <= Time < To"
	t.Run("FromInclusiveToExclusive", func(t *testing.T) {
		s := newStore(t)
		all := fill(t, s, "t1", 10)
		checkEvents(t, mustQuery(t, s, "t1", audit.Query{From: timeOf(3)}), all[2:])
		checkEvents(t, mustQuery(t, s, "t1", audit.Query{To: timeOf(3)}), all[:2])
		checkEvents(t, mustQuery(t, s, "t1", audit.Query{From: timeOf(3), To: timeOf(6)}), all[2:5])
		checkEvents(t, mustQuery(t, s, "t1", audit.Query{From: timeOf(3).Add(time.Microsecond), To: timeOf(6).Add(time.Microsecond)}), all[3:6])
		checkEvents(t, mustQuery(t, s, "t1", audit.Query{From: timeOf(3), To: timeOf(6), Desc: true}), reversed(all[2:5]))
		if got := mustQuery(t, s, "t1", audit.Query{From: timeOf(6), To: timeOf(3)}); len(got) != 0 {
			t.Errorf("Query(From after To) = %v", seqs(got))
		}
		// The same instant in another location selects the same events.
		ny := time.FixedZone("UTC-5", -5*3600)
		checkEvents(t, mustQuery(t, s, "t1", audit.Query{From: timeOf(3).In(ny), To: timeOf(6).In(ny)}), all[2:5])
	})
	// "matches Actor.ID or Actor.Email exactly"
	t.Run("ActorMatchesIDOrEmail", func(t *testing.T) {
		s := newStore(t)
		all := fill(t, s, "t1", 12)
		want := filter(all, func(e *audit.Event) bool { return e.Actor.ID == "u1" })
		checkEvents(t, mustQuery(t, s, "t1", audit.Query{Actor: "u1"}), want)
		checkEvents(t, mustQuery(t, s, "t1", audit.Query{Actor: "u1@example.com"}), want)
		for _, near := range []string{"U1", "u", "u1@example", "1@example.com"} {
			if got := mustQuery(t, s, "t1", audit.Query{Actor: near}); len(got) != 0 {
				t.Errorf("Query(Actor: %q) = %v, want exact matches only", near, seqs(got))
			}
		}
	})
	t.Run("Action", func(t *testing.T) {
		s := newStore(t)
		all := fill(t, s, "t1", 12)
		want := filter(all, func(e *audit.Event) bool { return e.Action == audit.LoginFailed })
		checkEvents(t, mustQuery(t, s, "t1", audit.Query{Action: string(audit.LoginFailed)}), want)
		if got := mustQuery(t, s, "t1", audit.Query{Action: "login"}); len(got) != 0 {
			t.Errorf("Query(Action: prefix) = %v, want exact matches only", seqs(got))
		}
	})
	t.Run("Outcome", func(t *testing.T) {
		s := newStore(t)
		all := fill(t, s, "t1", 12)
		want := filter(all, func(e *audit.Event) bool { return e.Outcome == audit.Success })
		checkEvents(t, mustQuery(t, s, "t1", audit.Query{Outcome: audit.Success}), want)
	})
	// "Zero fields do not filter." and "tenant's events that match q":
	// every filter applies together, before the limit.
	t.Run("FiltersCombineBeforeLimit", func(t *testing.T) {
		s := newStore(t)
		all := fill(t, s, "t1", 60)
		want := filter(all, func(e *audit.Event) bool {
			return e.Actor.ID == "u2" && e.Outcome == audit.Failure && e.Action == audit.LoginFailed &&
				!e.Time.Before(timeOf(10)) && e.Time.Before(timeOf(50)) && e.Seq > 12
		})
		q := audit.Query{
			From: timeOf(10), To: timeOf(50), Actor: "u2@example.com",
			Action: string(audit.LoginFailed), Outcome: audit.Failure, After: 12, Limit: 3,
		}
		if len(want) < 5 {
			t.Fatalf("suite bug: only %d events match", len(want))
		}
		checkEvents(t, mustQuery(t, s, "t1", q), want[:3])
		q.Desc, q.After = true, 0
		checkEvents(t, mustQuery(t, s, "t1", q), reversed(want)[:3])
	})
	t.Run("TenantIsolation", func(t *testing.T) {
		s := newStore(t)
		a := fill(t, s, "a", 5)
		b := fill(t, s, "b", 5)
		fill(t, s, "ab", 3)
		checkEvents(t, mustQuery(t, s, "a", audit.Query{}), a)
		checkEvents(t, mustQuery(t, s, "b", audit.Query{Desc: true}), reversed(b))
		checkEvents(t, mustQuery(t, s, "a", audit.Query{Actor: "u1"}), filter(a, func(e *audit.Event) bool { return e.Actor.ID == "u1" }))
		if got := mustQuery(t, s, "A", audit.Query{}); len(got) != 0 {
			t.Errorf("tenant names are case-sensitive, Query(%q) = %v", "A", seqs(got))
		}
	})
	t.Run("EveryFieldRoundTrips", func(t *testing.T) {
		s := newStore(t)
		long := strings.Repeat("é", 512) // 1024 bytes
		e := audit.Event{
			ID:        "0123456789abcdef0123456789abcdef",
			Tenant:    "t1",
			Seq:       1,
			Time:      time.Date(2026, 3, 4, 5, 6, 7, 891011000, time.UTC),
			Actor:     audit.Actor{Kind: audit.ActorAPIKey, ID: "key_123", Email: "ops+audit@example.com"},
			Action:    audit.TenantPolicySet,
			Target:    long,
			IP:        "2001:db8::1",
			UserAgent: "Mozilla/5.0 (X11; Linux x86_64) \"quoted\" 'single' <tag> & ünïcødé 🔐",
			Outcome:   audit.Failure,
			Reason:    "require_mfa",
			Meta:      map[string]string{"old": `{"mfa":false}`, "new": `{"mfa":true}`, "ключ": "значение", "empty": ""},
		}
		e.MAC = fakeMAC(e.ID, e.Tenant, e.Seq, nil)
		e2 := newEvent("second", "t1", 2, e.MAC)
		e2.Time = time.Date(1999, 12, 31, 23, 59, 59, 999999000, time.UTC)
		e2.Actor = audit.Actor{Kind: audit.ActorAnonymous}
		e2.Outcome, e2.Action, e2.Target, e2.IP, e2.UserAgent, e2.Reason = "", "custom.action", "", "", "", ""
		e2.Meta = nil
		want := []audit.Event{e, e2}
		if err := s.Append(bg(), "t1", want); err != nil {
			t.Fatalf("Append: %v", err)
		}
		checkEvents(t, queryAll(t, s, "t1"), want)
		checkEvents(t, mustQuery(t, s, "t1", audit.Query{Desc: true}), reversed(want))
	})
	t.Run("ControlCharactersRoundTrip", func(t *testing.T) {
		s := newStore(t)
		ctl := "alice\r\n2026-01-01T00:00:00Z login_success admin\x00\t\x1b[31m\u2028\x7f"
		e := newEvent("ctl", "t1", 1, nil)
		e.Actor.ID, e.Actor.Email, e.Target, e.UserAgent, e.Reason = ctl, ctl, ctl, ctl, ctl
		e.Meta = map[string]string{ctl: ctl}
		if err := s.Append(bg(), "t1", []audit.Event{e}); err != nil {
			t.Fatalf("Append: %v", err)
		}
		checkEvents(t, queryAll(t, s, "t1"), []audit.Event{e})
		checkEvents(t, mustQuery(t, s, "t1", audit.Query{Actor: ctl}), []audit.Event{e})
	})
	t.Run("NilAndEmptyMetaEquivalent", func(t *testing.T) {
		s := newStore(t)
		a := newEvent("nil-meta", "t1", 1, nil)
		a.Meta = nil
		b := newEvent("empty-meta", "t1", 2, a.MAC)
		b.Meta = map[string]string{}
		if err := s.Append(bg(), "t1", []audit.Event{a, b}); err != nil {
			t.Fatalf("Append: %v", err)
		}
		for _, e := range queryAll(t, s, "t1") {
			if len(e.Meta) != 0 {
				t.Errorf("Seq %d: Meta = %q, want empty", e.Seq, e.Meta)
			}
		}
	})
}

func runCheckpoint(t *testing.T, newStore func(t *testing.T) audit.Store) {
	// "Checkpoint returns tenant's checkpoint, the zero Checkpoint if none."
	t.Run("ZeroWhenNone", func(t *testing.T) {
		s := newStore(t)
		checkCheckpoint(t, mustCheckpoint(t, s, "t1"), audit.Checkpoint{})
		fill(t, s, "t1", 3)
		checkCheckpoint(t, mustCheckpoint(t, s, "t1"), audit.Checkpoint{})
	})
	t.Run("ReturnsStoredCheckpoint", func(t *testing.T) {
		s := newStore(t)
		evs := fill(t, s, "t1", 3)
		cp := checkpointAfter(evs[1])
		if err := s.Purge(bg(), "t1", cp); err != nil {
			t.Fatalf("Purge: %v", err)
		}
		checkCheckpoint(t, mustCheckpoint(t, s, "t1"), cp)
		checkCheckpoint(t, mustCheckpoint(t, s, "other"), audit.Checkpoint{})
	})
}

func runPurge(t *testing.T, newStore func(t *testing.T) audit.Store) {
	// "Purge deletes tenant's events with Seq <= cp.Seq"
	t.Run("DeletesUpToAndIncludingSeq", func(t *testing.T) {
		s := newStore(t)
		evs := fill(t, s, "t1", 10)
		if err := s.Purge(bg(), "t1", checkpointAfter(evs[3])); err != nil {
			t.Fatalf("Purge: %v", err)
		}
		checkEvents(t, queryAll(t, s, "t1"), evs[4:])
		checkEvents(t, mustQuery(t, s, "t1", audit.Query{Desc: true}), reversed(evs[4:]))
	})
	// "and stores cp as the tenant's checkpoint, in one step"
	t.Run("StoresCheckpoint", func(t *testing.T) {
		s := newStore(t)
		evs := fill(t, s, "t1", 6)
		cp := checkpointAfter(evs[2])
		if err := s.Purge(bg(), "t1", cp); err != nil {
			t.Fatalf("Purge: %v", err)
		}
		checkCheckpoint(t, mustCheckpoint(t, s, "t1"), cp)
		// A later purge replaces it.
		cp2 := checkpointAfter(evs[4])
		cp2.At = cp2.At.Add(time.Hour)
		if err := s.Purge(bg(), "t1", cp2); err != nil {
			t.Fatalf("second Purge: %v", err)
		}
		checkCheckpoint(t, mustCheckpoint(t, s, "t1"), cp2)
		checkEvents(t, queryAll(t, s, "t1"), evs[5:])
	})
	t.Run("EveryEvent", func(t *testing.T) {
		s := newStore(t)
		evs := fill(t, s, "t1", 5)
		if err := s.Purge(bg(), "t1", checkpointAfter(evs[4])); err != nil {
			t.Fatalf("Purge: %v", err)
		}
		if got := queryAll(t, s, "t1"); len(got) != 0 {
			t.Errorf("events left after purging all: %v", seqs(got))
		}
		checkLink(t, "Head", mustHead(t, s, "t1"), linkOf(evs[4]))
	})
	t.Run("AppendContinuesAfterCheckpoint", func(t *testing.T) {
		s := newStore(t)
		evs := fill(t, s, "t1", 5)
		if err := s.Purge(bg(), "t1", checkpointAfter(evs[4])); err != nil {
			t.Fatalf("Purge: %v", err)
		}
		wantConflict(t, s.Append(bg(), "t1", chain("t1", audit.Link{}, 1))) // no restart at Seq 1
		more := fill(t, s, "t1", 3)
		if more[0].Seq != 6 {
			t.Fatalf("first event after purge has Seq %d, want 6", more[0].Seq)
		}
		checkEvents(t, queryAll(t, s, "t1"), more)
	})
	// "cp.Seq must not be below the current checkpoint's Seq (ErrConflict
	// otherwise, nothing changed)"
	t.Run("BelowCurrentCheckpointConflicts", func(t *testing.T) {
		s := newStore(t)
		evs := fill(t, s, "t1", 8)
		cp := checkpointAfter(evs[4])
		if err := s.Purge(bg(), "t1", cp); err != nil {
			t.Fatalf("Purge: %v", err)
		}
		wantConflict(t, s.Purge(bg(), "t1", checkpointAfter(evs[2])))
		checkCheckpoint(t, mustCheckpoint(t, s, "t1"), cp)
		checkEvents(t, queryAll(t, s, "t1"), evs[5:])
	})
	// "cp.Seq must be above the current checkpoint's Seq": the same purge
	// made twice (two replicas) changes nothing the second time.
	t.Run("EqualToCurrentCheckpointConflicts", func(t *testing.T) {
		s := newStore(t)
		evs := fill(t, s, "t1", 4)
		cp := checkpointAfter(evs[1])
		if err := s.Purge(bg(), "t1", cp); err != nil {
			t.Fatalf("Purge: %v", err)
		}
		again := checkpointAfter(evs[1])
		again.At = again.At.Add(time.Minute)
		wantConflict(t, s.Purge(bg(), "t1", again))
		checkCheckpoint(t, mustCheckpoint(t, s, "t1"), cp)
		checkEvents(t, queryAll(t, s, "t1"), evs[2:])
	})
	// "(0 for a tenant without one)"
	t.Run("ZeroSeqConflicts", func(t *testing.T) {
		s := newStore(t)
		evs := fill(t, s, "t1", 2)
		wantConflict(t, s.Purge(bg(), "t1", audit.Checkpoint{At: time.Unix(1, 0).UTC(), MAC: []byte{1}, CheckpointMAC: []byte{2}}))
		checkCheckpoint(t, mustCheckpoint(t, s, "t1"), audit.Checkpoint{})
		checkEvents(t, queryAll(t, s, "t1"), evs)
		wantConflict(t, s.Purge(bg(), "empty", audit.Checkpoint{At: time.Unix(1, 0).UTC()}))
		checkCheckpoint(t, mustCheckpoint(t, s, "empty"), audit.Checkpoint{})
	})
	t.Run("OtherTenantsUntouched", func(t *testing.T) {
		s := newStore(t)
		a := fill(t, s, "a", 4)
		b := fill(t, s, "b", 4)
		if err := s.Purge(bg(), "a", checkpointAfter(a[3])); err != nil {
			t.Fatalf("Purge: %v", err)
		}
		checkEvents(t, queryAll(t, s, "b"), b)
		checkCheckpoint(t, mustCheckpoint(t, s, "b"), audit.Checkpoint{})
		checkLink(t, "Head(b)", mustHead(t, s, "b"), linkOf(b[3]))
	})
}

// checkChain fails t unless tenant's stored events are Seq cp.Seq+1..want
// contiguous, each PrevMAC the MAC of the one before (no fork), starting from
// the checkpoint's MAC, and returns them.
func checkChain(t *testing.T, s audit.Store, tenant string, want uint64) []audit.Event {
	t.Helper()
	cp := mustCheckpoint(t, s, tenant)
	all := queryAll(t, s, tenant)
	prev := audit.Link{Seq: cp.Seq, MAC: cp.MAC}
	for i := range all {
		e := &all[i]
		if e.Seq != prev.Seq+1 {
			t.Fatalf("%s: event after Seq %d has Seq %d", tenant, prev.Seq, e.Seq)
		}
		if !bytes.Equal(e.PrevMAC, prev.MAC) {
			t.Fatalf("%s: Seq %d does not link to Seq %d (fork)", tenant, e.Seq, prev.Seq)
		}
		prev = linkOf(*e)
	}
	if prev.Seq != want {
		t.Fatalf("%s: chain ends at Seq %d, want %d", tenant, prev.Seq, want)
	}
	checkLink(t, "Head("+tenant+")", mustHead(t, s, tenant), prev)
	return all
}

// appendOne appends one event with ID id after tenant's current head,
// retrying on ErrConflict, and returns its Seq.
func appendOne(s audit.Store, tenant, id string) (uint64, error) {
	for attempt := 0; attempt < 100000; attempt++ {
		head, err := s.Head(bg(), tenant)
		if err != nil {
			return 0, err
		}
		e := newEvent(id, tenant, head.Seq+1, head.MAC)
		err = s.Append(bg(), tenant, []audit.Event{e})
		if err == nil {
			return e.Seq, nil
		}
		if !errors.Is(err, audit.ErrConflict) {
			return 0, err
		}
	}
	return 0, fmt.Errorf("no progress after 100000 conflicts")
}

// RunConcurrent runs the concurrency part of the suite: many writers racing
// to continue one chain must produce one contiguous chain without forks.
// newStore must return a fresh, empty store on every call.
func RunConcurrent(t *testing.T, newStore func(t *testing.T) audit.Store) {
	// 16 writers each read Head and try to append the next event,
	// retrying on ErrConflict, 500 events in all.
	t.Run("RacingWritersMakeOneChain", func(t *testing.T) {
		s := newStore(t)
		const writers, total = 16, 500
		var tickets atomic.Int64
		var mu sync.Mutex
		bySeq := make(map[uint64]string)
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for n := tickets.Add(1); n <= total; n = tickets.Add(1) {
					id := fmt.Sprintf("w%d-%d", w, n)
					seq, err := appendOne(s, "t1", id)
					if err != nil {
						t.Errorf("writer %d: %v", w, err)
						return
					}
					mu.Lock()
					if other, dup := bySeq[seq]; dup {
						t.Errorf("Seq %d given to both %s and %s", seq, other, id)
					}
					bySeq[seq] = id
					mu.Unlock()
				}
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		all := checkChain(t, s, "t1", total)
		for _, e := range all {
			if bySeq[e.Seq] != e.ID {
				t.Errorf("Seq %d holds %s, but %s was told it got it", e.Seq, e.ID, bySeq[e.Seq])
			}
		}
	})
	// Append is all or nothing also for concurrent readers: batches of 5
	// are never seen in part.
	t.Run("BatchesAreAtomicForReaders", func(t *testing.T) {
		s := newStore(t)
		const writers, batches, size = 4, 25, 5
		var wg sync.WaitGroup
		done := make(chan struct{})
		var readers sync.WaitGroup
		for range 4 {
			readers.Go(func() {
				for {
					select {
					case <-done:
						return
					default:
					}
					h, err := s.Head(bg(), "t1")
					if err != nil {
						t.Errorf("Head: %v", err)
						return
					}
					if h.Seq%size != 0 {
						t.Errorf("Head.Seq = %d, inside a batch of %d", h.Seq, size)
						return
					}
					evs, err := s.Query(bg(), "t1", audit.Query{Limit: 1000})
					if err != nil {
						t.Errorf("Query: %v", err)
						return
					}
					if len(evs)%size != 0 {
						t.Errorf("Query sees %d events, part of a batch of %d", len(evs), size)
						return
					}
				}
			})
		}
		for w := range writers {
			wg.Go(func() {
				for b := range batches {
					for attempt := 0; ; attempt++ {
						head, err := s.Head(bg(), "t1")
						if err != nil {
							t.Errorf("Head: %v", err)
							return
						}
						evs := make([]audit.Event, size)
						prev := head.MAC
						for i := range evs {
							evs[i] = newEvent(fmt.Sprintf("w%d-b%d-%d-a%d", w, b, i, attempt), "t1", head.Seq+uint64(i)+1, prev)
							prev = evs[i].MAC
						}
						err = s.Append(bg(), "t1", evs)
						if err == nil {
							break
						}
						if !errors.Is(err, audit.ErrConflict) || attempt > 100000 {
							t.Errorf("Append: %v", err)
							return
						}
					}
				}
			})
		}
		wg.Wait()
		close(done)
		readers.Wait()
		if !t.Failed() {
			checkChain(t, s, "t1", writers*batches*size)
		}
	})
	t.Run("TenantsInParallel", func(t *testing.T) {
		s := newStore(t)
		const tenants, writers, each = 8, 4, 25
		var wg sync.WaitGroup
		for tn := range tenants {
			for w := range writers {
				wg.Go(func() {
					tenant := fmt.Sprintf("tenant-%d", tn)
					for i := range each {
						if _, err := appendOne(s, tenant, fmt.Sprintf("w%d-%d", w, i)); err != nil {
							t.Errorf("%s: %v", tenant, err)
							return
						}
					}
				})
			}
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		for tn := range tenants {
			checkChain(t, s, fmt.Sprintf("tenant-%d", tn), writers*each)
		}
	})
	// Purge deletes and stores the checkpoint in one step, also while
	// writers append.
	t.Run("PurgeWhileAppending", func(t *testing.T) {
		s := newStore(t)
		const writers, each = 4, 50
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				for i := range each {
					if _, err := appendOne(s, "t1", fmt.Sprintf("w%d-%d", w, i)); err != nil {
						t.Errorf("append: %v", err)
						return
					}
				}
			})
		}
		stop := make(chan struct{})
		var purger sync.WaitGroup
		purger.Go(func() {
			var last uint64
			for {
				select {
				case <-stop:
					return
				default:
				}
				cp, err := s.Checkpoint(bg(), "t1")
				if err != nil {
					t.Errorf("Checkpoint: %v", err)
					return
				}
				if cp.Seq < last {
					t.Errorf("checkpoint went back from Seq %d to %d", last, cp.Seq)
					return
				}
				last = cp.Seq
				// Purge up to the first event left, if any.
				evs, err := s.Query(bg(), "t1", audit.Query{After: cp.Seq, Limit: 1})
				if err != nil {
					t.Errorf("Query: %v", err)
					return
				}
				if len(evs) == 0 {
					continue
				}
				if evs[0].Seq != cp.Seq+1 || !bytes.Equal(evs[0].PrevMAC, cp.MAC) {
					t.Errorf("first event after checkpoint %d is Seq %d, not linked to it", cp.Seq, evs[0].Seq)
					return
				}
				if err := s.Purge(bg(), "t1", checkpointAfter(evs[0])); err != nil {
					t.Errorf("Purge: %v", err)
					return
				}
			}
		})
		wg.Wait()
		close(stop)
		purger.Wait()
		if !t.Failed() {
			checkChain(t, s, "t1", writers*each)
		}
	})
}
