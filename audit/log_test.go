package audit_test

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"maps"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/store/memstore"
)

var testKey = bytes.Repeat([]byte{0x5a}, audit.MinKeySize)

var errBoom = errors.New("boom")

// clock is a settable Config.Now.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock {
	return &clock{t: time.Date(2026, 1, 1, 9, 0, 0, 123456789, time.UTC)}
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// hookStore wraps a Store to count calls, inject faults and tamper with what
// Query returns.
type hookStore struct {
	audit.Store
	appends, heads atomic.Int64
	mu             sync.Mutex
	batches        []int
	// onAppend, if set, runs before each Append; a non-nil error is
	// returned instead of appending. n counts Appends from 1.
	onAppend func(ctx context.Context, n int64, events []audit.Event) error
	// onHead, if set, runs before each Head; a non-nil error is returned.
	onHead func() error
	// onQuery, if set, rewrites what Query returns.
	onQuery func(q audit.Query, events []audit.Event) ([]audit.Event, error)
}

func (h *hookStore) Append(ctx context.Context, tenant string, events []audit.Event) error {
	n := h.appends.Add(1)
	h.mu.Lock()
	h.batches = append(h.batches, len(events))
	h.mu.Unlock()
	if h.onAppend != nil {
		if err := h.onAppend(ctx, n, events); err != nil {
			return err
		}
	}
	return h.Store.Append(ctx, tenant, events)
}

func (h *hookStore) Head(ctx context.Context, tenant string) (audit.Link, error) {
	h.heads.Add(1)
	if h.onHead != nil {
		if err := h.onHead(); err != nil {
			return audit.Link{}, err
		}
	}
	return h.Store.Head(ctx, tenant)
}

func (h *hookStore) Query(ctx context.Context, tenant string, q audit.Query) ([]audit.Event, error) {
	evs, err := h.Store.Query(ctx, tenant, q)
	if err != nil || h.onQuery == nil {
		return evs, err
	}
	return h.onQuery(q, evs)
}

func (h *hookStore) batchSizes() []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]int(nil), h.batches...)
}

func newLog(t testing.TB, s audit.Store, mod ...func(*audit.Config)) *audit.Log {
	t.Helper()
	cfg := audit.Config{Store: s, Key: testKey}
	for _, f := range mod {
		f(&cfg)
	}
	l, err := audit.New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return l
}

func withClock(c *clock) func(*audit.Config) {
	return func(cfg *audit.Config) { cfg.Now = c.Now }
}

// loginEvent is a typical event for tenant.
func loginEvent(tenant string) audit.Event {
	return audit.Event{
		Tenant:    tenant,
		Actor:     audit.Actor{Kind: audit.ActorUser, ID: "u1", Email: "alice@example.com"},
		Action:    audit.LoginSucceeded,
		Target:    "u1",
		IP:        "198.51.100.4",
		UserAgent: "Mozilla/5.0",
		Outcome:   audit.Success,
		Meta:      map[string]string{"method": "password"},
	}
}

func record(t testing.TB, l *audit.Log, e audit.Event) audit.Event {
	t.Helper()
	got, err := l.Record(context.Background(), e)
	if err != nil {
		t.Fatalf("Record: %v", err)
	}
	return got
}

// recordAsync is record for goroutines other than the test's.
func recordAsync(t testing.TB, l *audit.Log, e audit.Event) audit.Event {
	got, err := l.Record(context.Background(), e)
	if err != nil {
		t.Errorf("Record: %v", err)
	}
	return got
}

func recordN(t testing.TB, l *audit.Log, tenant string, n int) []audit.Event {
	t.Helper()
	evs := make([]audit.Event, n)
	for i := range evs {
		evs[i] = record(t, l, loginEvent(tenant))
	}
	return evs
}

func verifyOK(t testing.TB, l *audit.Log, tenant string, checked int) audit.Report {
	t.Helper()
	rep, err := l.Verify(context.Background(), tenant)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !rep.OK || rep.Checked != checked || rep.FirstBad != 0 || rep.Reason != "" {
		t.Fatalf("Verify = %+v, want OK with %d checked", rep, checked)
	}
	return rep
}

func allEvents(t testing.TB, s audit.Store, tenant string) []audit.Event {
	t.Helper()
	var all []audit.Event
	var after uint64
	for {
		evs, err := s.Query(context.Background(), tenant, audit.Query{After: after, Limit: audit.MaxLimit})
		if err != nil {
			t.Fatalf("Query: %v", err)
		}
		if len(evs) == 0 {
			return all
		}
		all = append(all, evs...)
		after = evs[len(evs)-1].Seq
	}
}

func TestNew(t *testing.T) {
	s := memstore.NewAudit()
	tests := []struct {
		name  string
		cfg   audit.Config
		field string
	}{
		{"NoStore", audit.Config{Key: testKey}, "Config.Store"},
		{"NoKey", audit.Config{Store: s}, "Config.Key"},
		{"ShortKey", audit.Config{Store: s, Key: testKey[:31]}, "Config.Key"},
		{"NegativeMaxBatch", audit.Config{Store: s, Key: testKey, MaxBatch: -1}, "Config.MaxBatch"},
		{"Valid", audit.Config{Store: s, Key: testKey}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := audit.New(tt.cfg)
			if tt.field == "" {
				if err != nil || l == nil {
					t.Fatalf("New = %v, %v", l, err)
				}
				return
			}
			var ie *audit.InputError
			if !errors.As(err, &ie) || ie.Field != tt.field {
				t.Fatalf("New err = %v, want *InputError for %s", err, tt.field)
			}
			if l != nil {
				t.Error("New returned a Log with an error")
			}
		})
	}
}

func TestNewCopiesKey(t *testing.T) {
	s := memstore.NewAudit()
	key := bytes.Clone(testKey)
	l := newLog(t, s, func(c *audit.Config) { c.Key = key })
	recordN(t, l, "acme", 2)
	key[0] ^= 0xff
	verifyOK(t, l, "acme", 2)
}

func TestRecordFillsChainFields(t *testing.T) {
	s := memstore.NewAudit()
	c := newClock()
	rnd := bytes.NewReader(bytes.Repeat([]byte{0xab}, 64))
	l := newLog(t, s, withClock(c), func(cfg *audit.Config) { cfg.Rand = rnd })
	in := loginEvent("acme")
	// Values the Log owns are replaced.
	in.ID, in.Seq, in.Time, in.PrevMAC, in.MAC = "mine", 99, time.Unix(0, 0), []byte("p"), []byte("m")
	first := record(t, l, in)
	second := record(t, l, loginEvent("acme"))

	if want := strings.Repeat("ab", 16); first.ID != want {
		t.Errorf("ID = %q, want %q (16 bytes of Rand, hex)", first.ID, want)
	}
	if first.Seq != 1 || second.Seq != 2 {
		t.Errorf("Seqs = %d, %d; want 1, 2", first.Seq, second.Seq)
	}
	wantTime := time.Date(2026, 1, 1, 9, 0, 0, 123456000, time.UTC)
	if !first.Time.Equal(wantTime) || first.Time.Location() != time.UTC {
		t.Errorf("Time = %v, want %v (UTC, truncated to µs)", first.Time, wantTime)
	}
	if len(first.PrevMAC) != 0 {
		t.Errorf("first PrevMAC = %x, want empty", first.PrevMAC)
	}
	if len(first.MAC) != 32 || !bytes.Equal(second.PrevMAC, first.MAC) {
		t.Errorf("MAC %x, next PrevMAC %x: not chained", first.MAC, second.PrevMAC)
	}
	if first.Actor != in.Actor || first.Action != in.Action || first.Target != in.Target ||
		first.IP != in.IP || first.UserAgent != in.UserAgent || first.Outcome != in.Outcome ||
		!maps.Equal(first.Meta, in.Meta) {
		t.Errorf("Record changed caller fields: got %+v from %+v", first, in)
	}
	stored := allEvents(t, s, "acme")
	if len(stored) != 2 || stored[0].ID != first.ID || !bytes.Equal(stored[1].MAC, second.MAC) {
		t.Errorf("stored %+v, want the two returned events", stored)
	}
	verifyOK(t, l, "acme", 2)
}

func TestRecordCopiesMeta(t *testing.T) {
	s := memstore.NewAudit()
	l := newLog(t, s)
	e := loginEvent("acme")
	got := record(t, l, e)
	e.Meta["method"] = "changed"
	got.Meta["method"] = "changed too"
	if stored := allEvents(t, s, "acme"); stored[0].Meta["method"] != "password" {
		t.Errorf("stored Meta = %v", stored[0].Meta)
	}
	verifyOK(t, l, "acme", 1)
}

func TestRecordValidation(t *testing.T) {
	long := strings.Repeat("x", audit.MaxFieldSize+1)
	const secret = "\xffsecret-value"
	tooMany := map[string]string{}
	for i := range audit.MaxMetaEntries + 1 {
		tooMany[fmt.Sprint("k", i)] = "v"
	}
	tests := []struct {
		name   string
		mutate func(e *audit.Event)
		field  string
	}{
		{"NoTenant", func(e *audit.Event) { e.Tenant = "" }, "Tenant"},
		{"NoAction", func(e *audit.Event) { e.Action = "" }, "Action"},
		{"LongTenant", func(e *audit.Event) { e.Tenant = long }, "Tenant"},
		{"LongActorKind", func(e *audit.Event) { e.Actor.Kind = audit.ActorKind(long) }, "Actor.Kind"},
		{"LongActorID", func(e *audit.Event) { e.Actor.ID = long }, "Actor.ID"},
		{"LongActorEmail", func(e *audit.Event) { e.Actor.Email = long }, "Actor.Email"},
		{"LongAction", func(e *audit.Event) { e.Action = audit.Action(long) }, "Action"},
		{"LongTarget", func(e *audit.Event) { e.Target = long }, "Target"},
		{"LongIP", func(e *audit.Event) { e.IP = long }, "IP"},
		{"LongUserAgent", func(e *audit.Event) { e.UserAgent = long }, "UserAgent"},
		{"LongOutcome", func(e *audit.Event) { e.Outcome = audit.Outcome(long) }, "Outcome"},
		{"LongReason", func(e *audit.Event) { e.Reason = long }, "Reason"},
		{"BadUTF8Tenant", func(e *audit.Event) { e.Tenant = secret }, "Tenant"},
		{"BadUTF8ActorEmail", func(e *audit.Event) { e.Actor.Email = secret }, "Actor.Email"},
		{"BadUTF8UserAgent", func(e *audit.Event) { e.UserAgent = secret }, "UserAgent"},
		{"BadUTF8Reason", func(e *audit.Event) { e.Reason = secret }, "Reason"},
		{"TooManyMeta", func(e *audit.Event) { e.Meta = tooMany }, "Meta"},
		{"EmptyMetaKey", func(e *audit.Event) { e.Meta = map[string]string{"": "v"} }, "Meta key"},
		{"LongMetaKey", func(e *audit.Event) { e.Meta = map[string]string{long: "v"} }, "Meta key"},
		{"LongMetaValue", func(e *audit.Event) { e.Meta = map[string]string{"k": long} }, "Meta value"},
		{"BadUTF8MetaKey", func(e *audit.Event) { e.Meta = map[string]string{secret: "v"} }, "Meta key"},
		{"BadUTF8MetaValue", func(e *audit.Event) { e.Meta = map[string]string{"k": secret} }, "Meta value"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &hookStore{Store: memstore.NewAudit()}
			l := newLog(t, s)
			e := loginEvent("acme")
			tt.mutate(&e)
			got, err := l.Record(context.Background(), e)
			var ie *audit.InputError
			if !errors.As(err, &ie) || ie.Field != tt.field {
				t.Fatalf("Record err = %v, want *InputError for %s", err, tt.field)
			}
			if msg := err.Error(); strings.Contains(msg, "secret-value") || strings.Contains(msg, "xxxxxxxx") {
				t.Errorf("error %q echoes the value", msg)
			}
			if got.ID != "" || got.Seq != 0 {
				t.Errorf("Record returned %+v with an error", got)
			}
			if n := s.appends.Load(); n != 0 {
				t.Errorf("%d Appends for an invalid event", n)
			}
		})
	}
}

func TestRecordLimitsAreInclusive(t *testing.T) {
	s := memstore.NewAudit()
	l := newLog(t, s)
	e := loginEvent("acme")
	e.UserAgent = strings.Repeat("é", audit.MaxFieldSize/2)
	e.Meta = map[string]string{}
	for i := range audit.MaxMetaEntries {
		e.Meta[fmt.Sprint("k", i)] = strings.Repeat("v", audit.MaxFieldSize)
	}
	got := record(t, l, e)
	if got.UserAgent != e.UserAgent || len(got.Meta) != audit.MaxMetaEntries {
		t.Errorf("event at the limits changed: %d-byte UserAgent, %d Meta", len(got.UserAgent), len(got.Meta))
	}
	verifyOK(t, l, "acme", 1)
}

// AU-3: control characters are stored as they are; renderers escape them.
func TestRecordStoresControlCharactersAsIs(t *testing.T) {
	s := memstore.NewAudit()
	l := newLog(t, s)
	const payload = "alice\r\n2026-01-01T00:00:00Z login_success admin"
	e := loginEvent("acme")
	e.Actor.Email, e.Target, e.UserAgent = payload, payload+"\x00\x1b[2J", `"},{"action":"forged`
	record(t, l, e)
	stored := allEvents(t, s, "acme")
	if len(stored) != 1 {
		t.Fatalf("stored %d events, want 1", len(stored))
	}
	if got := stored[0]; got.Actor.Email != e.Actor.Email || got.Target != e.Target || got.UserAgent != e.UserAgent {
		t.Errorf("stored %q %q %q, want them unchanged", got.Actor.Email, got.Target, got.UserAgent)
	}
	verifyOK(t, l, "acme", 1)
}

// AU-12: Seq is authoritative and Time never goes back within a chain.
func TestRecordTimeNeverGoesBack(t *testing.T) {
	s := memstore.NewAudit()
	c := newClock()
	l := newLog(t, s, withClock(c))
	first := record(t, l, loginEvent("acme"))
	c.Add(-time.Hour) // the wall clock steps back
	second := record(t, l, loginEvent("acme"))
	c.Add(2 * time.Hour)
	third := record(t, l, loginEvent("acme"))
	if second.Seq != first.Seq+1 || third.Seq != second.Seq+1 {
		t.Errorf("Seqs %d %d %d not contiguous", first.Seq, second.Seq, third.Seq)
	}
	if second.Time.Before(first.Time) {
		t.Errorf("Time went back: %v after %v", second.Time, first.Time)
	}
	if !third.Time.Equal(chainTimeOf(c.Now())) {
		t.Errorf("Time %v after the clock recovered, want %v", third.Time, c.Now())
	}
	verifyOK(t, l, "acme", 3)
}

func chainTimeOf(t time.Time) time.Time { return t.UTC().Truncate(time.Microsecond) }

func TestRecordContextDone(t *testing.T) {
	s := &hookStore{Store: memstore.NewAudit()}
	l := newLog(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := l.Record(ctx, loginEvent("acme")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Record(cancelled ctx) = %v, want context.Canceled", err)
	}
	if n := s.appends.Load(); n != 0 {
		t.Errorf("%d Appends with a cancelled context", n)
	}
}

// A caller that gives up while its event is being stored gets its context's
// error, and the store's context is cancelled once nobody waits (soon after:
// the caller does not wait for the store to give up).
func TestRecordDeadlineWhileStoring(t *testing.T) {
	var sawCancel atomic.Bool
	s := &hookStore{Store: memstore.NewAudit()}
	s.onAppend = func(ctx context.Context, n int64, _ []audit.Event) error {
		select {
		case <-ctx.Done():
			sawCancel.Store(true)
			return ctx.Err()
		case <-time.After(10 * time.Second):
			return nil
		}
	}
	l := newLog(t, s)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := l.Record(ctx, loginEvent("acme"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Record = %v, want DeadlineExceeded", err)
	}
	waitFor(t, sawCancel.Load) // the store's context cancelled once the only caller gave up
	if got := allEvents(t, s, "acme"); len(got) != 0 {
		t.Errorf("stored %d events", len(got))
	}
	// The Log recovers: the next Record works and the chain verifies.
	s.onAppend = nil
	if e := record(t, l, loginEvent("acme")); e.Seq != 1 {
		t.Errorf("next Seq = %d, want 1", e.Seq)
	}
	verifyOK(t, l, "acme", 1)
}

// One caller giving up does not fail the events of the others in its batch.
func TestRecordCancelledCallerDoesNotFailOthers(t *testing.T) {
	release := make(chan struct{})
	s := &hookStore{Store: memstore.NewAudit()}
	s.onAppend = func(ctx context.Context, n int64, _ []audit.Event) error {
		if n == 1 {
			<-release
		}
		return ctx.Err()
	}
	l := newLog(t, s)
	var wg sync.WaitGroup
	wg.Go(func() { recordAsync(t, l, loginEvent("acme")) }) // leads, blocked in Append
	waitFor(t, func() bool { return s.appends.Load() == 1 })
	ctx, cancel := context.WithCancel(context.Background())
	errc := make(chan error, 1)
	wg.Go(func() { _, err := l.Record(ctx, loginEvent("acme")); errc <- err })
	var other audit.Event
	wg.Go(func() { other = recordAsync(t, l, loginEvent("acme")) })
	time.Sleep(20 * time.Millisecond) // let both queue behind the leader
	cancel()
	if err := <-errc; !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Record = %v, want context.Canceled", err)
	}
	close(release)
	wg.Wait()
	if other.Seq != 2 {
		t.Errorf("other caller's event has Seq %d, want 2", other.Seq)
	}
	verifyOK(t, l, "acme", 2)
}

// waitFor polls cond until it holds, failing t after a few seconds.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached")
		}
		time.Sleep(time.Millisecond)
	}
}

func TestRecordGroupCommit(t *testing.T) {
	release := make(chan struct{})
	s := &hookStore{Store: memstore.NewAudit()}
	s.onAppend = func(_ context.Context, n int64, _ []audit.Event) error {
		if n == 1 {
			<-release
		}
		return nil
	}
	const maxBatch, followers = 8, 50
	l := newLog(t, s, func(c *audit.Config) { c.MaxBatch = maxBatch })
	var wg sync.WaitGroup
	wg.Go(func() { recordAsync(t, l, loginEvent("acme")) })
	waitFor(t, func() bool { return s.appends.Load() == 1 })
	for range followers {
		wg.Go(func() { recordAsync(t, l, loginEvent("acme")) })
	}
	time.Sleep(50 * time.Millisecond) // let the followers queue
	close(release)
	wg.Wait()
	sizes := s.batchSizes()
	total, largest := 0, 0
	for _, n := range sizes {
		total += n
		largest = max(largest, n)
	}
	if total != followers+1 {
		t.Errorf("appended %d events, want %d", total, followers+1)
	}
	if largest != maxBatch {
		t.Errorf("largest batch %d, want MaxBatch %d (batches %v)", largest, maxBatch, sizes)
	}
	if want := 1 + (followers+maxBatch-1)/maxBatch; len(sizes) > want+2 {
		t.Errorf("%d Appends for %d queued events, want about %d (batches %v)", len(sizes), followers, want, sizes)
	}
	verifyOK(t, l, "acme", followers+1)
}

func TestRecordTenantsDoNotBlockEachOther(t *testing.T) {
	release := make(chan struct{})
	s := &hookStore{Store: memstore.NewAudit()}
	s.onAppend = func(_ context.Context, _ int64, events []audit.Event) error {
		if events[0].Tenant == "slow" {
			<-release
		}
		return nil
	}
	l := newLog(t, s)
	var wg sync.WaitGroup
	wg.Go(func() { recordAsync(t, l, loginEvent("slow")) })
	waitFor(t, func() bool { return s.appends.Load() == 1 })
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 3 {
			recordAsync(t, l, loginEvent("fast"))
		}
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("tenant fast waited for tenant slow")
	}
	close(release)
	wg.Wait()
	verifyOK(t, l, "slow", 1)
	verifyOK(t, l, "fast", 3)
}

func TestRecordStoreErrorFailsBatchAndReloadsHead(t *testing.T) {
	s := &hookStore{Store: memstore.NewAudit()}
	l := newLog(t, s)
	recordN(t, l, "acme", 2)
	heads := s.heads.Load()
	s.onAppend = func(context.Context, int64, []audit.Event) error { return errBoom }
	_, err := l.Record(context.Background(), loginEvent("acme"))
	if !errors.Is(err, errBoom) {
		t.Fatalf("Record = %v, want it to wrap the store error", err)
	}
	s.onAppend = nil
	e := record(t, l, loginEvent("acme"))
	if e.Seq != 3 {
		t.Errorf("Seq after a failed append = %d, want 3", e.Seq)
	}
	if s.heads.Load() != heads+1 {
		t.Errorf("Head read %d times after the failure, want once (cached head dropped)", s.heads.Load()-heads)
	}
	verifyOK(t, l, "acme", 3)
}

// A panicking store fails the batch in flight but does not wedge the
// tenant: queued events are still committed.
func TestRecordStorePanic(t *testing.T) {
	release := make(chan struct{})
	s := &hookStore{Store: memstore.NewAudit()}
	s.onAppend = func(_ context.Context, n int64, _ []audit.Event) error {
		if n == 1 {
			<-release
			panic("store bug")
		}
		return nil
	}
	l := newLog(t, s)
	panicked := make(chan any, 1)
	go func() {
		defer func() { panicked <- recover() }()
		l.Record(context.Background(), loginEvent("acme"))
	}()
	waitFor(t, func() bool { return s.appends.Load() == 1 })
	followed := make(chan audit.Event, 1)
	go func() { followed <- recordAsync(t, l, loginEvent("acme")) }()
	time.Sleep(20 * time.Millisecond) // let it queue
	close(release)
	if p := <-panicked; p != "store bug" {
		t.Errorf("leader recovered %v, want the store's panic", p)
	}
	select {
	case e := <-followed:
		if e.Seq != 1 {
			t.Errorf("queued event got Seq %d, want 1", e.Seq)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("queued Record hangs after a store panic")
	}
	if e := record(t, l, loginEvent("acme")); e.Seq != 2 {
		t.Errorf("next Seq = %d, want 2", e.Seq)
	}
	verifyOK(t, l, "acme", 2)
}

func TestRecordHeadErrorFails(t *testing.T) {
	s := &hookStore{Store: memstore.NewAudit()}
	s.onHead = func() error { return errBoom }
	l := newLog(t, s)
	if _, err := l.Record(context.Background(), loginEvent("acme")); !errors.Is(err, errBoom) {
		t.Fatalf("Record = %v, want it to wrap the store error", err)
	}
	if n := s.appends.Load(); n != 0 {
		t.Errorf("%d Appends without a head", n)
	}
}

func TestRecordConflictReloadsHead(t *testing.T) {
	s := &hookStore{Store: memstore.NewAudit()}
	a, b := newLog(t, s), newLog(t, s)
	recordN(t, a, "acme", 2) // a caches head 2
	recordN(t, b, "acme", 3) // b appends 3..5 behind a's back
	e := record(t, a, loginEvent("acme"))
	if e.Seq != 6 {
		t.Errorf("Seq = %d, want 6", e.Seq)
	}
	verifyOK(t, a, "acme", 6)
	verifyOK(t, b, "acme", 6)
}

func TestRecordGivesUpAfterRepeatedConflicts(t *testing.T) {
	s := &hookStore{Store: memstore.NewAudit()}
	s.onAppend = func(context.Context, int64, []audit.Event) error { return audit.ErrConflict }
	l := newLog(t, s)
	_, err := l.Record(context.Background(), loginEvent("acme"))
	if !errors.Is(err, audit.ErrConflict) {
		t.Fatalf("Record = %v, want ErrConflict", err)
	}
	if n := s.appends.Load(); n < 2 || n > 100 {
		t.Errorf("%d attempts, want a few and a bound", n)
	}
}

func TestRecordRandError(t *testing.T) {
	s := &hookStore{Store: memstore.NewAudit()}
	l := newLog(t, s, func(c *audit.Config) { c.Rand = iotest.ErrReader(errBoom) })
	if _, err := l.Record(context.Background(), loginEvent("acme")); !errors.Is(err, errBoom) {
		t.Fatalf("Record = %v, want the Rand error", err)
	}
	if n := s.appends.Load(); n != 0 {
		t.Errorf("%d Appends without an ID", n)
	}
}

func TestVerifyEmptyTenant(t *testing.T) {
	l := newLog(t, memstore.NewAudit())
	rep := verifyOK(t, l, "nobody", 0)
	if rep.Head.Seq != 0 || len(rep.Head.MAC) != 0 {
		t.Errorf("Head = %+v, want zero", rep.Head)
	}
	if _, err := l.Verify(context.Background(), ""); err == nil {
		t.Error("Verify(\"\") succeeded")
	}
}

func TestVerifyReportsHead(t *testing.T) {
	l := newLog(t, memstore.NewAudit())
	evs := recordN(t, l, "acme", 1200) // more than one page
	rep := verifyOK(t, l, "acme", 1200)
	if last := evs[len(evs)-1]; rep.Head.Seq != last.Seq || !bytes.Equal(rep.Head.MAC, last.MAC) {
		t.Errorf("Head = %+v, want Seq %d", rep.Head, last.Seq)
	}
}

func TestVerifyStoreError(t *testing.T) {
	s := &hookStore{Store: memstore.NewAudit()}
	l := newLog(t, s)
	recordN(t, l, "acme", 2)
	s.onQuery = func(audit.Query, []audit.Event) ([]audit.Event, error) { return nil, errBoom }
	if _, err := l.Verify(context.Background(), "acme"); !errors.Is(err, errBoom) {
		t.Fatalf("Verify = %v, want the store error", err)
	}
}

// AU-4: a change to any field of event k in storage is reported at k. The
// store here tampers with what it returns; store/memstore's tests tamper
// with its storage.
func TestVerifyDetectsEditedField(t *testing.T) {
	const k = 3
	tests := []struct {
		name   string
		edit   func(e *audit.Event)
		reason string
	}{
		{"ID", func(e *audit.Event) { e.ID = "x" + e.ID[1:] }, "mac mismatch"}, // IDs are hex
		{"Tenant", func(e *audit.Event) { e.Tenant = "other" }, "tenant mismatch"},
		{"Time", func(e *audit.Event) { e.Time = e.Time.Add(-time.Second) }, "mac mismatch"},
		{"ActorKind", func(e *audit.Event) { e.Actor.Kind = audit.ActorSystem }, "mac mismatch"},
		{"ActorID", func(e *audit.Event) { e.Actor.ID = "u2" }, "mac mismatch"},
		{"ActorEmail", func(e *audit.Event) { e.Actor.Email = "mallory@example.com" }, "mac mismatch"},
		{"Action", func(e *audit.Event) { e.Action = audit.Logout }, "mac mismatch"},
		{"Target", func(e *audit.Event) { e.Target = "u9" }, "mac mismatch"},
		{"IP", func(e *audit.Event) { e.IP = "203.0.113.9" }, "mac mismatch"},
		{"UserAgent", func(e *audit.Event) { e.UserAgent = "x" }, "mac mismatch"},
		{"Outcome", func(e *audit.Event) { e.Outcome = audit.Failure }, "mac mismatch"},
		{"Reason", func(e *audit.Event) { e.Reason = "x" }, "mac mismatch"},
		{"MetaValue", func(e *audit.Event) { e.Meta = map[string]string{"method": "sso"} }, "mac mismatch"},
		{"MetaDropped", func(e *audit.Event) { e.Meta = nil }, "mac mismatch"},
		{"PrevMAC", func(e *audit.Event) { e.PrevMAC[0] ^= 1 }, "prev mac mismatch"},
		{"MAC", func(e *audit.Event) { e.MAC[0] ^= 1 }, "mac mismatch"},
		{"Seq", func(e *audit.Event) { e.Seq = 9 }, "sequence gap"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := &hookStore{Store: memstore.NewAudit()}
			l := newLog(t, s)
			evs := recordN(t, l, "acme", 6)
			s.onQuery = func(_ audit.Query, got []audit.Event) ([]audit.Event, error) {
				for i := range got {
					if got[i].Seq == k {
						tt.edit(&got[i])
					}
				}
				return got, nil
			}
			rep, err := l.Verify(context.Background(), "acme")
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if rep.OK || rep.FirstBad != k || rep.Reason != tt.reason || rep.Checked != k-1 {
				t.Errorf("Verify = %+v, want FirstBad %d, %q, %d checked", rep, k, tt.reason, k-1)
			}
			if rep.Head.Seq != k-1 || !bytes.Equal(rep.Head.MAC, evs[k-2].MAC) {
				t.Errorf("Head = %+v, want the last good link, Seq %d", rep.Head, k-1)
			}
		})
	}
}

// Truncating the chain's tail is caught against the head this Log appended.
func TestVerifyDetectsTruncation(t *testing.T) {
	s := &hookStore{Store: memstore.NewAudit()}
	l := newLog(t, s)
	recordN(t, l, "acme", 5)
	s.onQuery = func(_ audit.Query, got []audit.Event) ([]audit.Event, error) {
		var kept []audit.Event
		for _, e := range got {
			if e.Seq <= 3 {
				kept = append(kept, e)
			}
		}
		return kept, nil
	}
	rep, err := l.Verify(context.Background(), "acme")
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if rep.OK || rep.FirstBad != 4 || rep.Reason != "missing events" {
		t.Errorf("Verify = %+v, want FirstBad 4, missing events", rep)
	}
	// Another replica, without that memory, sees a valid shorter chain and
	// reports its head for comparison with a published one.
	other := newLog(t, s)
	if rep := verifyOK(t, other, "acme", 3); rep.Head.Seq != 3 {
		t.Errorf("Head.Seq = %d, want 3", rep.Head.Seq)
	}
}

func TestQueryPages(t *testing.T) {
	s := memstore.NewAudit()
	l := newLog(t, s)
	evs := recordN(t, l, "acme", 250)
	ctx := context.Background()
	tests := []struct {
		name string
		q    audit.Query
		want []uint64 // first and last Seq of the page
		next uint64
		n    int
	}{
		{"Default", audit.Query{}, []uint64{1, 100}, 100, 100},
		{"Limit", audit.Query{Limit: 10, After: 240}, []uint64{241, 250}, 0, 10},
		{"LastPartial", audit.Query{Limit: 100, After: 200}, []uint64{201, 250}, 0, 50},
		{"Desc", audit.Query{Limit: 50, Desc: true}, []uint64{250, 201}, 201, 50},
		{"DescEnd", audit.Query{Limit: 50, Desc: true, After: 51}, []uint64{50, 1}, 0, 50},
		{"Capped", audit.Query{Limit: 5000}, []uint64{1, 250}, 0, 250},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page, err := l.Query(ctx, "acme", tt.q)
			if err != nil {
				t.Fatalf("Query: %v", err)
			}
			if len(page.Events) != tt.n || page.Events[0].Seq != tt.want[0] || page.Events[len(page.Events)-1].Seq != tt.want[1] || page.Next != tt.next {
				t.Errorf("page of %d events, first %d, Next %d; want %d events %v, Next %d",
					len(page.Events), page.Events[0].Seq, page.Next, tt.n, tt.want, tt.next)
			}
		})
	}
	t.Run("WalkAll", func(t *testing.T) {
		var got []audit.Event
		q := audit.Query{Limit: 30, Actor: "alice@example.com"}
		for range 100 {
			page, err := l.Query(ctx, "acme", q)
			if err != nil {
				t.Fatalf("Query: %v", err)
			}
			got = append(got, page.Events...)
			if page.Next == 0 {
				break
			}
			q.After = page.Next
		}
		if len(got) != len(evs) || got[len(got)-1].Seq != 250 {
			t.Errorf("walked %d events, want %d", len(got), len(evs))
		}
	})
	t.Run("Errors", func(t *testing.T) {
		var ie *audit.InputError
		if _, err := l.Query(ctx, "acme", audit.Query{Limit: -1}); !errors.As(err, &ie) || ie.Field != "Limit" {
			t.Errorf("Query(Limit -1) = %v, want *InputError", err)
		}
		if _, err := l.Query(ctx, "", audit.Query{}); !errors.As(err, &ie) {
			t.Errorf("Query(no tenant) = %v, want *InputError", err)
		}
		if page, err := l.Query(ctx, "other", audit.Query{}); err != nil || len(page.Events) != 0 || page.Next != 0 {
			t.Errorf("Query(other tenant) = %+v, %v; want empty", page, err)
		}
	})
}

func TestQueryFullPageNext(t *testing.T) {
	s := memstore.NewAudit()
	l := newLog(t, s, func(c *audit.Config) { c.MaxBatch = 1000 })
	ctx := context.Background()
	var wg sync.WaitGroup
	for range audit.MaxLimit {
		wg.Go(func() { recordAsync(t, l, loginEvent("acme")) })
	}
	wg.Wait()
	page, err := l.Query(ctx, "acme", audit.Query{Limit: audit.MaxLimit})
	if err != nil || len(page.Events) != audit.MaxLimit || page.Next != 0 {
		t.Fatalf("exactly MaxLimit events: %d events, Next %d, %v; want Next 0", len(page.Events), page.Next, err)
	}
	record(t, l, loginEvent("acme"))
	page, err = l.Query(ctx, "acme", audit.Query{Limit: audit.MaxLimit})
	if err != nil || len(page.Events) != audit.MaxLimit || page.Next != audit.MaxLimit {
		t.Fatalf("MaxLimit+1 events: %d events, Next %d, %v; want Next %d", len(page.Events), page.Next, err, audit.MaxLimit)
	}
	page, err = l.Query(ctx, "acme", audit.Query{Limit: audit.MaxLimit, After: page.Next})
	if err != nil || len(page.Events) != 1 || page.Next != 0 {
		t.Fatalf("last page: %d events, Next %d, %v", len(page.Events), page.Next, err)
	}
}

// recordDaily records one event per day for n days and returns them.
func recordDaily(t *testing.T, l *audit.Log, c *clock, tenant string, n int) []audit.Event {
	t.Helper()
	evs := make([]audit.Event, n)
	for i := range evs {
		evs[i] = record(t, l, loginEvent(tenant))
		c.Add(24 * time.Hour)
	}
	return evs
}

func TestPurge(t *testing.T) {
	s := memstore.NewAudit()
	c := newClock()
	l := newLog(t, s, withClock(c))
	ctx := context.Background()
	evs := recordDaily(t, l, c, "acme", 10)
	recordDaily(t, l, c, "other", 3)

	n, err := l.Purge(ctx, "acme", evs[4].Time) // events 1..4 are older
	if err != nil || n != 4 {
		t.Fatalf("Purge = %d, %v; want 4", n, err)
	}
	cp, err := s.Checkpoint(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	if cp.Seq != 4 || !bytes.Equal(cp.MAC, evs[3].MAC) || !cp.At.Equal(chainTimeOf(c.Now())) || len(cp.CheckpointMAC) != 32 {
		t.Errorf("checkpoint = %+v, want Seq 4, MAC of event 4, At now", cp)
	}
	if left := allEvents(t, s, "acme"); len(left) != 6 || left[0].Seq != 5 {
		t.Errorf("left %d events from Seq %d, want 6 from 5", len(left), left[0].Seq)
	}
	verifyOK(t, l, "acme", 6)
	verifyOK(t, l, "other", 3)

	if n, err := l.Purge(ctx, "acme", evs[4].Time); err != nil || n != 0 {
		t.Errorf("second Purge = %d, %v; want 0", n, err)
	}
	if cp2, _ := s.Checkpoint(ctx, "acme"); !cp2.At.Equal(cp.At) {
		t.Error("a Purge with nothing to purge rewrote the checkpoint")
	}

	// Purge everything; the chain goes on from the checkpoint.
	c.Add(time.Hour)
	if n, err := l.Purge(ctx, "acme", c.Now()); err != nil || n != 6 {
		t.Fatalf("Purge(all) = %d, %v; want 6", n, err)
	}
	rep := verifyOK(t, l, "acme", 0)
	if rep.Head.Seq != 10 {
		t.Errorf("Head after purging all = %+v, want Seq 10", rep.Head)
	}
	if e := record(t, newLog(t, s), loginEvent("acme")); e.Seq != 11 || !bytes.Equal(e.PrevMAC, evs[9].MAC) {
		t.Errorf("event after purge: Seq %d PrevMAC %x, want 11 linked to event 10", e.Seq, e.PrevMAC)
	}
	verifyOK(t, l, "acme", 1)
}

// Purge refuses to delete events that fail verification, so retention does
// not launder tampering.
func TestPurgeRefusesTamperedChain(t *testing.T) {
	s := &hookStore{Store: memstore.NewAudit()}
	c := newClock()
	l := newLog(t, s, withClock(c))
	evs := recordDaily(t, l, c, "acme", 5)
	s.onQuery = func(_ audit.Query, got []audit.Event) ([]audit.Event, error) {
		for i := range got {
			if got[i].Seq == 2 {
				got[i].Outcome = audit.Success + "!"
			}
		}
		return got, nil
	}
	n, err := l.Purge(context.Background(), "acme", evs[3].Time)
	if !errors.Is(err, audit.ErrTampered) || n != 0 {
		t.Fatalf("Purge = %d, %v; want ErrTampered", n, err)
	}
	if cp, _ := s.Checkpoint(context.Background(), "acme"); cp.Seq != 0 {
		t.Errorf("checkpoint %+v stored after a refused Purge", cp)
	}
}

func TestPurgeStoreErrors(t *testing.T) {
	c := newClock()
	inner := memstore.NewAudit()
	l := newLog(t, inner, withClock(c))
	evs := recordDaily(t, l, c, "acme", 5)

	// A checkpoint made by another replica is a valid start.
	if n, err := newLog(t, inner, withClock(c)).Purge(context.Background(), "acme", evs[3].Time); err != nil || n != 3 {
		t.Fatalf("Purge = %d, %v; want 3", n, err)
	}
	// The store's refusal (another replica purged further meanwhile) and
	// its failures come back wrapped.
	fake := purgeStore{Store: inner, err: audit.ErrConflict}
	if _, err := newLog(t, fake).Purge(context.Background(), "acme", evs[4].Time); !errors.Is(err, audit.ErrConflict) {
		t.Errorf("Purge = %v, want ErrConflict", err)
	}
	fake.err = errBoom
	if _, err := newLog(t, fake).Purge(context.Background(), "acme", evs[4].Time); !errors.Is(err, errBoom) {
		t.Errorf("Purge = %v, want the store error", err)
	}
	if _, err := l.Purge(context.Background(), "", time.Now()); err == nil {
		t.Error("Purge(\"\") succeeded")
	}
	verifyOK(t, l, "acme", 2)
}

// A purge overtaken by another replica's, which reached as far or further
// between the walk and the write, has nothing left to do: 0, no error, and
// the events counted once over the two.
func TestPurgeOvertaken(t *testing.T) {
	for _, further := range []bool{false, true} {
		c := newClock()
		inner := memstore.NewAudit()
		l := newLog(t, inner, withClock(c))
		evs := recordDaily(t, l, c, "acme", 5)
		other := newLog(t, inner, withClock(c))
		cut := evs[3].Time
		if further {
			cut = evs[4].Time
		}
		var otherN int
		s := overtake{Store: inner, first: func() {
			n, err := other.Purge(context.Background(), "acme", cut)
			if err != nil {
				t.Errorf("the other replica's Purge: %v", err)
			}
			otherN = n
		}}
		n, err := newLog(t, &s, withClock(c)).Purge(context.Background(), "acme", evs[3].Time)
		if err != nil || n != 0 {
			t.Errorf("Purge overtaken (further %v) = %d, %v; want 0, nil", further, n, err)
		}
		if cp, _ := inner.Checkpoint(context.Background(), "acme"); n+otherN != int(cp.Seq) {
			t.Errorf("further %v: %d + %d events counted, %d purged", further, n, otherN, cp.Seq)
		}
	}
}

// overtake runs first once before the first Purge reaches the store.
type overtake struct {
	audit.Store
	first func()
}

func (o *overtake) Purge(ctx context.Context, tenant string, cp audit.Checkpoint) error {
	if f := o.first; f != nil {
		o.first = nil
		f()
	}
	return o.Store.Purge(ctx, tenant, cp)
}

type purgeStore struct {
	audit.Store
	err error
}

func (p purgeStore) Purge(context.Context, string, audit.Checkpoint) error { return p.err }

// A checkpoint whose MAC does not match is reported at its Seq.
func TestVerifyDetectsBadCheckpoint(t *testing.T) {
	c := newClock()
	s := memstore.NewAudit()
	l := newLog(t, s, withClock(c))
	evs := recordDaily(t, l, c, "acme", 5)
	if _, err := l.Purge(context.Background(), "acme", evs[2].Time); err != nil {
		t.Fatal(err)
	}
	// Another Log with another key cannot vouch for it.
	other := newLog(t, s, func(cfg *audit.Config) { cfg.Key = bytes.Repeat([]byte{1}, 32) })
	rep, err := other.Verify(context.Background(), "acme")
	if err != nil {
		t.Fatal(err)
	}
	if rep.OK || rep.FirstBad != 2 || rep.Reason != "bad checkpoint" {
		t.Errorf("Verify with another key = %+v, want FirstBad 2, bad checkpoint", rep)
	}
}

func Example() {
	c := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	l, err := audit.New(audit.Config{
		Store: memstore.NewAudit(),
		Key:   bytes.Repeat([]byte{0x01}, 32), // from the host's secret store
		Now:   func() time.Time { return c },
		Rand:  bytes.NewReader(make([]byte, 64)),
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	e, err := l.Record(ctx, audit.Event{
		Tenant:  "acme",
		Actor:   audit.Actor{Kind: audit.ActorUser, ID: "u1", Email: "alice@example.com"},
		Action:  audit.LoginFailed,
		IP:      "198.51.100.4",
		Outcome: audit.Failure,
		Reason:  "bad_password",
	})
	if err != nil {
		panic(err) // the login attempt must not proceed unlogged
	}
	fmt.Println(e.Seq, e.ID, e.Time.Format(time.RFC3339))
	rep, err := l.Verify(ctx, "acme")
	if err != nil {
		panic(err)
	}
	fmt.Println(rep.OK, rep.Checked, hex.EncodeToString(rep.Head.MAC) == hex.EncodeToString(e.MAC))
	// Output:
	// 1 00000000000000000000000000000000 2026-01-01T12:00:00Z
	// true 1 true
}

func TestRecordAllOneAppend(t *testing.T) {
	s := &hookStore{Store: memstore.NewAudit()}
	l := newLog(t, s)
	ctx := context.Background()
	if _, err := l.Record(ctx, loginEvent("acme")); err != nil {
		t.Fatal(err)
	}
	a, b, c := loginEvent("acme"), loginEvent("acme"), loginEvent("acme")
	b.Action, c.Action = audit.SessionEvicted, audit.SessionEvicted
	evs, err := l.RecordAll(ctx, a, b, c)
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 3 || evs[0].Seq != 2 || evs[1].Seq != 3 || evs[2].Seq != 4 || evs[1].Action != audit.SessionEvicted {
		t.Fatalf("RecordAll returned %+v", evs)
	}
	if n := s.appends.Load(); n != 2 {
		t.Errorf("%d Appends for Record + RecordAll of 3, want 2", n)
	}
	if rep, err := l.Verify(ctx, "acme"); err != nil || !rep.OK {
		t.Errorf("Verify = %+v, %v", rep, err)
	}

	bad := loginEvent("acme")
	bad.Action = ""
	if _, err := l.RecordAll(ctx, loginEvent("acme"), bad); err == nil {
		t.Error("RecordAll with an invalid event succeeded")
	}
	if _, err := l.RecordAll(ctx, loginEvent("acme"), loginEvent("globex")); err == nil {
		t.Error("RecordAll across tenants succeeded")
	}
	if n := s.appends.Load(); n != 2 {
		t.Errorf("a refused RecordAll appended (%d Appends)", n)
	}
}
