package audit

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"
)

// Limits on what Record accepts and on what Query returns.
const (
	// MinKeySize is the minimum length of Config.Key in bytes.
	MinKeySize = 32
	// MaxFieldSize is the maximum length in bytes of each string field of
	// an Event, and of each Meta key and value.
	MaxFieldSize = 1024
	// MaxMetaEntries is the maximum number of entries in Event.Meta.
	MaxMetaEntries = 32
	// DefaultMaxBatch is the default of Config.MaxBatch.
	DefaultMaxBatch = 256
	// DefaultLimit is the page size of a Query whose Limit is zero.
	DefaultLimit = 100
	// MaxLimit is the largest page a Query returns; stores cap Limit at it.
	MaxLimit = 1000
)

const (
	// maxAppendAttempts bounds how often one batch is rebuilt after
	// ErrConflict.
	maxAppendAttempts = 32
	// maxVerifyAttempts bounds how often Verify starts over because a
	// concurrent Purge moved the checkpoint.
	maxVerifyAttempts = 10
)

// ErrTampered is returned by Purge when the events it would delete fail
// verification, and by Record when the stored chain ends before the last
// event this Log appended to it, or holds another event at its Seq (events
// were deleted). The error that wraps it says which Seq.
var ErrTampered = errors.New("audit: chain fails verification")

// InputError reports an invalid event, query or Config. It names the field
// and the rule broken, never the value.
type InputError struct {
	Field string // e.g. "Tenant", "Actor.Email", "Meta", "Config.Key"
	Rule  string // e.g. "required", "longer than 1024 bytes"
}

func (e *InputError) Error() string {
	return "audit: invalid " + e.Field + ": " + e.Rule
}

// Config configures a Log.
type Config struct {
	// Store keeps the events. Required.
	Store Store
	// Key is the HMAC-SHA256 key of the chains, at least MinKeySize bytes,
	// provided by the host and kept apart from the store. Required. New
	// copies it.
	Key []byte
	// Now returns the current time. Default time.Now.
	Now func() time.Time
	// Rand is the source of event IDs (16 random bytes each, hex-encoded).
	// Default crypto/rand.Reader. A Rand other than the default is read
	// under a lock, so it need not be safe for concurrent use.
	Rand io.Reader
	// MaxBatch is the largest number of events committed in one
	// Store.Append. Default DefaultMaxBatch.
	MaxBatch int
}

// Log records, verifies, queries, exports and purges tenants' audit chains.
// It is safe for concurrent use; see the package documentation.
type Log struct {
	store    Store
	key      []byte
	now      func() time.Time
	rand     io.Reader
	randMu   *sync.Mutex // nil for crypto/rand.Reader, which is concurrency-safe
	maxBatch int
	tenants  sync.Map  // tenant → *tenantState
	macers   sync.Pool // *macer
}

// New returns a Log for cfg after checking it and filling the documented
// defaults. A bad Config gives an *InputError.
func New(cfg Config) (*Log, error) {
	if cfg.Store == nil {
		return nil, &InputError{Field: "Config.Store", Rule: "required"}
	}
	if len(cfg.Key) < MinKeySize {
		return nil, &InputError{Field: "Config.Key", Rule: "shorter than " + strconv.Itoa(MinKeySize) + " bytes"}
	}
	if cfg.MaxBatch < 0 {
		return nil, &InputError{Field: "Config.MaxBatch", Rule: "negative"}
	}
	l := &Log{
		store:    cfg.Store,
		key:      bytes.Clone(cfg.Key),
		now:      cfg.Now,
		rand:     cfg.Rand,
		maxBatch: cfg.MaxBatch,
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.rand == nil {
		l.rand = rand.Reader
	} else {
		l.randMu = new(sync.Mutex)
	}
	if l.maxBatch == 0 {
		l.maxBatch = DefaultMaxBatch
	}
	l.macers.New = func() any { return newMacer(l.key) }
	return l, nil
}

// tenantState is a Log's per-tenant commit queue and cached chain head.
type tenantState struct {
	mu        sync.Mutex
	queue     []*request // waiting to be committed, oldest first
	busy      bool       // a goroutine is committing the queue
	head      Link       // last link this Log appended or read; valid if headKnown
	headKnown bool
	// appended is the last link this Log appended (zero if none). Unlike
	// head it is never dropped: the stored chain may move past it (other
	// replicas append), but a stored head below it, or at its Seq with
	// another MAC, proves that events were deleted.
	appended Link
	lastTime time.Time // latest Time this Log gave an event of the tenant
}

// request is one Record call waiting in a tenant's queue.
type request struct {
	ctx  context.Context
	ev   Event         // prepared event; filled in by the committer
	err  error         // set by the committer before done is closed
	done chan struct{} // closed once ev or err is final
}

func (r *request) finish(e Event, err error) {
	r.ev, r.err = e, err
	close(r.done)
}

// finished reports whether r has been committed or failed.
func (r *request) finished() bool {
	select {
	case <-r.done:
		return true
	default:
		return false
	}
}

func (l *Log) state(tenant string) *tenantState {
	if ts, ok := l.tenants.Load(tenant); ok {
		return ts.(*tenantState)
	}
	ts, _ := l.tenants.LoadOrStore(tenant, new(tenantState))
	return ts.(*tenantState)
}

// Record validates e, fills in its ID, Seq, Time, PrevMAC and MAC (any
// values the caller set there are replaced), appends it to its tenant's
// chain and returns the stored event once the Store has durably accepted it.
// The caller may report the action e records as done only after Record
// returns a nil error.
//
// Validation: Tenant and Action are required; every string field (Tenant,
// Actor.Kind, Actor.ID, Actor.Email, Action, Target, IP, UserAgent, Outcome,
// Reason) and every Meta key and value is valid UTF-8 of at most
// MaxFieldSize bytes; Meta keys are not empty and there are at most
// MaxMetaEntries of them. Control characters are stored as they are:
// escaping is the job of whoever renders or exports the log. A violation
// gives an *InputError and stores nothing. Meta is copied.
//
// Concurrent Records of one tenant are committed together (group commit).
// When another replica has appended meanwhile, the batch is rebuilt on the
// new head and retried a bounded number of times; after that, or on any
// other store error, every event of the batch fails with the error wrapped.
// When the stored head is behind the last event this Log appended to the
// tenant's chain (or at its Seq with another MAC), events were deleted:
// Record refuses with an error wrapping ErrTampered, stores nothing, and
// refuses every later Record of the tenant the same way, rather than reuse
// the deleted Seqs and hide the deletion from Verify. A store that lost
// commits it had acknowledged (a database server crash with asynchronous
// commit) looks the same and is refused the same way; a new Log (after a
// restart) has no memory of the lost events and continues the stored chain.
// If ctx ends first, Record returns ctx's error then, even while the Store
// does not answer, and the event may or may not have been stored. A Store
// that panics fails the events of the batch it was storing with an error;
// the panic goes on only up the stack of the caller whose goroutine was
// storing them (one whose ctx never ends, which may commit in its own
// goroutine), never in a goroutine without a caller.
func (l *Log) Record(ctx context.Context, e Event) (Event, error) {
	evs, err := l.RecordAll(ctx, e)
	if err != nil {
		return Event{}, err
	}
	return evs[0], nil
}

// RecordAll is Record for several events of one tenant, which are queued
// together, in order, so that they are committed in the same Store.Append
// when they fit in one batch. All are validated before any is queued; on an
// error the events may have been stored in part, as with separate Records.
func (l *Log) RecordAll(ctx context.Context, events ...Event) ([]Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if len(events) == 0 {
		return nil, nil
	}
	reqs := make([]*request, len(events))
	for i, e := range events {
		if err := validateEvent(&e); err != nil {
			return nil, err
		}
		if e.Tenant != events[0].Tenant {
			return nil, &InputError{Field: "Tenant", Rule: "differs between events recorded together"}
		}
		id, err := l.newID()
		if err != nil {
			return nil, err
		}
		reqs[i] = &request{
			ctx: ctx,
			ev: Event{
				ID:        id,
				Tenant:    e.Tenant,
				Actor:     e.Actor,
				Action:    e.Action,
				Target:    e.Target,
				IP:        e.IP,
				UserAgent: e.UserAgent,
				Outcome:   e.Outcome,
				Reason:    e.Reason,
				Meta:      copyMeta(e.Meta),
			},
			done: make(chan struct{}),
		}
	}
	ts := l.state(events[0].Tenant)
	ts.mu.Lock()
	ts.queue = append(ts.queue, reqs...)
	lead := !ts.busy
	ts.busy = true
	ts.mu.Unlock()
	if lead {
		if ctx.Done() == nil {
			// ctx never ends, so its caller waits for the commit
			// either way: commit here, without a goroutine.
			l.drain(ts, reqs[len(reqs)-1])
		} else {
			// Commit in another goroutine and wait like the others,
			// so that the caller gets ctx's error when ctx ends first
			// whatever the store does. The goroutine serves the queue
			// until it is empty, as the leader's hand-off does.
			go l.drain(ts, nil)
		}
	}
	out := make([]Event, len(reqs))
	for i, r := range reqs {
		select {
		case <-r.done:
		case <-ctx.Done():
		}
		if r.finished() && r.err == nil {
			out[i] = r.ev
			continue
		}
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("audit: event not confirmed: %w", err)
		}
		return nil, r.err
	}
	return out, nil
}

// drain commits ts's queue batch by batch. The goroutine that finds the queue
// idle leads. A leader whose context never ends drains in its own goroutine:
// it commits until its own request own is done, then hands what is left to a
// new goroutine so that its caller is not held up serving others. Any other
// leader hands the queue to a new goroutine at once and waits for its events
// like the callers queued behind it, so that it can give up when its context
// ends. own is nil in such a goroutine, which drains until the queue is
// empty. Only one goroutine drains a tenant at a time (ts.busy).
//
// If the store panics, the batch in flight fails with an error holding the
// panic's value and another goroutine carries on with the queue. In a
// leader's own goroutine the panic then goes on up its caller's stack; in a
// goroutine of its own (own nil), which has no caller to recover it, it stops
// there, so that a store bug fails one batch rather than ending the process.
func (l *Log) drain(ts *tenantState, own *request) {
	m := l.macers.Get().(*macer)
	defer l.macers.Put(m)
	var batch []*request
	defer func() {
		if p := recover(); p != nil {
			err := fmt.Errorf("audit: panic while storing events: %v", p)
			for _, r := range batch {
				if r != nil && !r.finished() {
					r.finish(Event{}, err)
				}
			}
			ts.mu.Lock()
			ts.headKnown = false
			more := len(ts.queue) > 0
			ts.busy = more
			ts.mu.Unlock()
			if more {
				go l.drain(ts, nil)
			}
			if own != nil {
				panic(p)
			}
		}
	}()
	for {
		// Let writers that are about to queue (often the callers of the
		// batch just committed, back with their next event) join this
		// batch: one yield costs well under a microsecond, and a store
		// commit costs far more than the events in it.
		gather(ts)
		ts.mu.Lock()
		if len(ts.queue) == 0 {
			ts.busy = false
			ts.mu.Unlock()
			return
		}
		if own != nil && own.finished() {
			ts.mu.Unlock()
			go l.drain(ts, nil)
			return
		}
		n := min(len(ts.queue), l.maxBatch)
		batch = append(batch[:0], ts.queue[:n]...)
		k := copy(ts.queue, ts.queue[n:])
		clear(ts.queue[k:])
		ts.queue = ts.queue[:k]
		ts.mu.Unlock()
		l.commit(ts, batch, m)
		clear(batch)
	}
}

// gather yields while writers keep joining ts's queue (a few times at
// most), so that a batch holds the events that are on their way.
func gather(ts *tenantState) {
	n := -1
	for range 4 {
		ts.mu.Lock()
		m := len(ts.queue)
		ts.mu.Unlock()
		if m == n {
			return
		}
		n = m
		runtime.Gosched()
	}
}

// commit chains batch onto the tenant's head and appends it in one
// Store.Append, retrying on ErrConflict, and finishes every request.
func (l *Log) commit(ts *tenantState, batch []*request, m *macer) {
	live := batch[:0]
	for _, r := range batch {
		if err := r.ctx.Err(); err != nil {
			r.finish(Event{}, err) // its caller has gone; do not store it
			continue
		}
		live = append(live, r)
	}
	if len(live) == 0 {
		return
	}
	ctx, release := batchContext(live)
	defer release()
	tenant := live[0].ev.Tenant
	events := make([]Event, len(live))
	var err error
	for attempt := 1; ; attempt++ {
		var head Link
		head, err = l.head(ctx, ts, tenant)
		if err != nil {
			break
		}
		t := l.stamp(ts)
		prev := head.MAC
		for i, r := range live {
			e := r.ev
			e.Seq = head.Seq + uint64(i) + 1
			e.Time = t
			e.PrevMAC = bytes.Clone(prev)
			e.MAC = m.eventMAC(&e)
			prev = e.MAC
			events[i] = e
		}
		err = l.store.Append(ctx, tenant, events)
		if err == nil {
			last := events[len(events)-1]
			ts.mu.Lock()
			ts.head, ts.headKnown = Link{Seq: last.Seq, MAC: bytes.Clone(last.MAC)}, true
			ts.appended = ts.head
			ts.lastTime = t
			ts.mu.Unlock()
			for i, r := range live {
				r.finish(events[i], nil)
			}
			return
		}
		// The cached head is wrong (conflict) or unknown (the append may
		// have happened before the error): reload it next time.
		ts.mu.Lock()
		ts.headKnown = false
		ts.mu.Unlock()
		if !errors.Is(err, ErrConflict) {
			err = fmt.Errorf("audit: appending events: %w", err)
			break
		}
		if attempt == maxAppendAttempts {
			err = fmt.Errorf("audit: appending events: gave up after %d attempts: %w", attempt, err)
			break
		}
		if err = backoff(ctx, attempt); err != nil {
			err = fmt.Errorf("audit: appending events: %w", err)
			break
		}
	}
	for _, r := range live {
		r.finish(Event{}, err)
	}
}

// backoff waits a little before attempt+1, growing with attempt, so that
// competing replicas fall out of step.
func backoff(ctx context.Context, attempt int) error {
	if attempt < 2 {
		return nil
	}
	d := min(time.Duration(attempt)*100*time.Microsecond, 5*time.Millisecond)
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// head returns the tenant's chain head, from the cache or the store. A
// stored head behind the last link this Log appended (ts.appended), or at
// its Seq with another MAC, is refused with ErrTampered and not cached: a
// head never goes back (Purge only raises it), so events were deleted.
func (l *Log) head(ctx context.Context, ts *tenantState, tenant string) (Link, error) {
	ts.mu.Lock()
	head, ok := ts.head, ts.headKnown
	ts.mu.Unlock()
	if ok {
		return head, nil
	}
	head, err := l.store.Head(ctx, tenant)
	if err != nil {
		return Link{}, fmt.Errorf("audit: reading chain head: %w", err)
	}
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if err := behind(head, ts.appended); err != nil {
		return Link{}, err
	}
	ts.head, ts.headKnown = Link{Seq: head.Seq, MAC: bytes.Clone(head.MAC)}, true
	return head, nil
}

// behind returns an error wrapping ErrTampered if head, a stored chain
// head, is behind appended, the last link this Log appended to the chain, or
// at its Seq with another MAC, and nil otherwise.
func behind(head, appended Link) error {
	switch {
	case head.Seq < appended.Seq:
		return fmt.Errorf("%w: the stored chain ends at Seq %d, before Seq %d, which this Log appended "+
			"(events were deleted); event not recorded", ErrTampered, head.Seq, appended.Seq)
	case head.Seq == appended.Seq && !bytes.Equal(head.MAC, appended.MAC):
		return fmt.Errorf("%w: the stored chain ends at Seq %d with another event than this Log appended there "+
			"(events were replaced); event not recorded", ErrTampered, head.Seq)
	}
	return nil
}

// appended returns the last link this Log appended to tenant's chain, the
// zero Link if none.
func (l *Log) appended(tenant string) Link {
	v, ok := l.tenants.Load(tenant)
	if !ok {
		return Link{}
	}
	ts := v.(*tenantState)
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.appended
}

// stamp returns the Time for the next batch of ts: now, in chain form, but
// never before the last Time this Log gave the tenant.
func (l *Log) stamp(ts *tenantState) time.Time {
	t := chainTime(l.now())
	ts.mu.Lock()
	defer ts.mu.Unlock()
	if t.Before(ts.lastTime) {
		t = ts.lastTime
	}
	return t
}

// batchContext returns the context for storing batch: it carries the values
// of the first request's context and is cancelled only once every caller in
// the batch has given up, so that one caller's cancellation never fails the
// others' events.
func batchContext(batch []*request) (context.Context, func()) {
	base := context.WithoutCancel(batch[0].ctx)
	for _, r := range batch {
		if r.ctx.Done() == nil { // this caller never gives up
			return base, func() {}
		}
	}
	ctx, cancel := context.WithCancel(base)
	var mu sync.Mutex
	remaining := len(batch)
	stops := make([]func() bool, len(batch))
	for i, r := range batch {
		stops[i] = context.AfterFunc(r.ctx, func() {
			mu.Lock()
			remaining--
			last := remaining == 0
			mu.Unlock()
			if last {
				cancel()
			}
		})
	}
	return ctx, func() {
		for _, stop := range stops {
			stop()
		}
		cancel()
	}
}

func (l *Log) newID() (string, error) {
	var b [16]byte
	if l.randMu != nil {
		l.randMu.Lock()
		defer l.randMu.Unlock()
	}
	if _, err := io.ReadFull(l.rand, b[:]); err != nil {
		return "", fmt.Errorf("audit: reading random bytes: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

func copyMeta(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	c := make(map[string]string, len(m))
	for k, v := range m {
		c[k] = v
	}
	return c
}

// The times a query bound may hold: the years 1 to 9999, which RFC 3339
// can write and every store can compare (PostgreSQL's timestamptz ends in
// the year 294276, SQLite's Unix microseconds wrap in the year 294247).
var (
	minBound = time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC)
	maxBound = time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC) // excluded
)

// checkQuery refuses a query no event could answer (a filter no event
// can hold, a window that ends before it starts) and a time bound outside
// the years 1 to 9999 with an *InputError naming the field: an empty page
// would read as "no such events", and each store would answer a far bound
// its own way.
func checkQuery(q Query) error {
	switch {
	case q.Limit < 0:
		return &InputError{Field: "Limit", Rule: "negative"}
	case q.Outcome != "" && q.Outcome != Success && q.Outcome != Failure:
		return &InputError{Field: "Outcome", Rule: "neither success nor failure"}
	case outOfBounds(q.From):
		return &InputError{Field: "From", Rule: "outside the years 1 to 9999"}
	case outOfBounds(q.To):
		return &InputError{Field: "To", Rule: "outside the years 1 to 9999"}
	case !q.From.IsZero() && !q.To.IsZero() && q.From.After(q.To):
		return &InputError{Field: "From", Rule: "after To"}
	}
	if err := checkField("Actor", q.Actor); err != nil {
		return err
	}
	return checkField("Action", q.Action)
}

// outOfBounds reports whether t is set and outside the years 1 to 9999.
func outOfBounds(t time.Time) bool {
	return !t.IsZero() && (t.Before(minBound) || !t.Before(maxBound))
}

func checkField(name, v string) error {
	if len(v) > MaxFieldSize {
		return &InputError{Field: name, Rule: "longer than " + strconv.Itoa(MaxFieldSize) + " bytes"}
	}
	if !utf8.ValidString(v) {
		return &InputError{Field: name, Rule: "not valid UTF-8"}
	}
	return nil
}

func validateEvent(e *Event) error {
	if e.Tenant == "" {
		return &InputError{Field: "Tenant", Rule: "required"}
	}
	if e.Action == "" {
		return &InputError{Field: "Action", Rule: "required"}
	}
	for _, f := range [...]struct{ name, v string }{
		{"Tenant", e.Tenant},
		{"Actor.Kind", string(e.Actor.Kind)},
		{"Actor.ID", e.Actor.ID},
		{"Actor.Email", e.Actor.Email},
		{"Action", string(e.Action)},
		{"Target", e.Target},
		{"IP", e.IP},
		{"UserAgent", e.UserAgent},
		{"Outcome", string(e.Outcome)},
		{"Reason", e.Reason},
	} {
		if err := checkField(f.name, f.v); err != nil {
			return err
		}
	}
	if len(e.Meta) > MaxMetaEntries {
		return &InputError{Field: "Meta", Rule: "more than " + strconv.Itoa(MaxMetaEntries) + " entries"}
	}
	for k, v := range e.Meta {
		if k == "" {
			return &InputError{Field: "Meta key", Rule: "empty"}
		}
		if err := checkField("Meta key", k); err != nil {
			return err
		}
		if err := checkField("Meta value", v); err != nil {
			return err
		}
	}
	return nil
}

func checkTenant(tenant string) error {
	if tenant == "" {
		return &InputError{Field: "tenant", Rule: "required"}
	}
	return checkField("tenant", tenant)
}

// Report is the result of Verify.
type Report struct {
	OK       bool
	Checked  int    // events verified
	FirstBad uint64 // Seq of the first broken event (0 if OK)
	// Reason says why FirstBad is broken: "bad checkpoint", "event below
	// checkpoint" (a stored event has a Seq the checkpoint says was purged),
	// "sequence gap" (an event is missing or out of place), "tenant
	// mismatch", "prev mac mismatch", "mac mismatch", "missing events" (the
	// chain ends before the last event this Log appended) or "replaced
	// event" (FirstBad is not the event this Log appended there). Empty if
	// OK.
	Reason string
	// Head is the last link verified: the newest event when OK, otherwise
	// the one before FirstBad (the checkpoint's link, or the zero Link, when
	// there is none; the checkpoint's link for an event below checkpoint).
	Head Link
	// Checkpoint is the tenant's checkpoint the walk started from, as
	// stored (the zero Checkpoint if none; its CheckpointMAC checked unless
	// Reason is "bad checkpoint"). Kept or published with Head, it lets a
	// verifier of an export (see Export) tell a retention purge from a
	// deletion of the oldest events.
	Checkpoint Checkpoint
}

// Verify walks tenant's whole stored chain, paging through Store.Query from
// its first stored event to its newest, and checks the checkpoint's MAC,
// that no event is stored at or below the checkpoint's Seq (those are
// purged, and Query and Export never show them), and every event's Seq,
// tenant, PrevMAC and MAC. It reports the first broken Seq in the Report; it
// returns an error only when the store fails, tenant is invalid or purges
// overtook every walk (below). Against the last event this Log appended for
// tenant (kept for the Log's lifetime, whatever Record errors came since),
// it also reports "missing events" when the chain ends before it
// (truncation) and "replaced event" when the chain holds another event at
// its Seq.
//
// A Purge running at the same time (of this Log or another replica, up to
// every event) moves the checkpoint and deletes events the walk has still to
// read; when the walk fails (a gap, or the chain ending before the event
// this Log appended last) and the checkpoint has moved, Verify starts over
// from the new checkpoint, a bounded number of times. A failure with the
// checkpoint where the walk read it is reported. When a purge overtook every
// walk, Verify returns an error wrapping ErrConflict, not a Report: a walk
// cut short by a purge says nothing about the chain.
func (l *Log) Verify(ctx context.Context, tenant string) (Report, error) {
	if err := checkTenant(tenant); err != nil {
		return Report{}, err
	}
	rep, cp, _, err := l.settledWalk(ctx, tenant, l.appended(tenant), nil)
	if err != nil {
		return Report{}, err
	}
	rep.Checkpoint = cp
	return rep, nil
}

// settledWalk is walk that starts over when a Purge (of this Log or of
// another replica) moved the checkpoint while it walked: when the walk
// fails and the checkpoint is no longer the one it read, it walks again from
// the new one, up to maxVerifyAttempts walks in all. It returns the Report
// and checkpoint of the last walk, and the checkpoint the first walk read.
//
// A walk that fails while the checkpoint stays where it read it failed on
// the stored chain: its Report stands. One that a purge cut short proves
// nothing (the events it missed were purged, or not), so when every walk
// was, settledWalk gives up with an error wrapping ErrConflict rather than
// report the last one's failure as tampering.
func (l *Log) settledWalk(ctx context.Context, tenant string, appended Link, stop func(*Event) bool) (rep Report, cp, first Checkpoint, err error) {
	for attempt := 1; ; attempt++ {
		rep, cp, err = l.walk(ctx, tenant, appended, stop)
		if err != nil {
			return Report{}, cp, first, err
		}
		if attempt == 1 {
			first = cp
		}
		if rep.OK {
			return rep, cp, first, nil
		}
		cur, cerr := l.store.Checkpoint(ctx, tenant)
		if cerr != nil {
			return Report{}, cp, first, fmt.Errorf("audit: reading checkpoint: %w", cerr)
		}
		if cur.equal(&cp) {
			return rep, cp, first, nil
		}
		if attempt == maxVerifyAttempts {
			return Report{}, cp, first, fmt.Errorf("audit: verifying the chain: gave up after %d walks, "+
				"each overtaken by a purge: %w", attempt, ErrConflict)
		}
		// Purged meanwhile: start again from the new checkpoint.
	}
}

// walk verifies tenant's stored chain and returns its checkpoint. It reads
// from the first stored event, not from the checkpoint, so that an event
// stored at or below the checkpoint's Seq is found (the first event of an
// untampered chain is the checkpoint's Seq+1, which the store finds with
// one index range). The event at appended.Seq must carry appended.MAC.
// When stop is not nil, the walk ends, successfully, before the first event
// for which stop returns true. When stop is nil (Verify), a chain that ends
// before appended.Seq fails, "missing events": a failure, not a check made
// after the walk, so that settledWalk walks again when a purge that deleted
// the events it had still to read (every event, in a full purge) moved the
// checkpoint past them.
func (l *Log) walk(ctx context.Context, tenant string, appended Link, stop func(*Event) bool) (Report, Checkpoint, error) {
	m := l.macers.Get().(*macer)
	defer l.macers.Put(m)
	cp, err := l.store.Checkpoint(ctx, tenant)
	if err != nil {
		return Report{}, cp, fmt.Errorf("audit: reading checkpoint: %w", err)
	}
	if !cp.isZero() && !m.validCheckpoint(tenant, &cp) {
		return Report{FirstBad: max(cp.Seq, 1), Reason: reasonBadCheckpoint}, cp, nil
	}
	rep := Report{Head: Link{Seq: cp.Seq, MAC: cp.MAC}}
	var after uint64 // the first page starts at the beginning: see above
	for {
		events, err := l.store.Query(ctx, tenant, Query{After: after, Limit: MaxLimit})
		if err != nil {
			return Report{}, cp, fmt.Errorf("audit: reading events: %w", err)
		}
		for i := range events {
			e := &events[i]
			if e.Seq <= cp.Seq {
				rep.FirstBad, rep.Reason = e.Seq, reasonBelowCheckpoint
				return rep, cp, nil
			}
			if stop != nil && stop(e) {
				rep.OK = true
				return rep, cp, nil
			}
			if reason := m.checkLink(tenant, rep.Head, e); reason != "" {
				rep.FirstBad, rep.Reason = rep.Head.Seq+1, reason
				return rep, cp, nil
			}
			if e.Seq == appended.Seq && !bytes.Equal(e.MAC, appended.MAC) {
				rep.FirstBad, rep.Reason = e.Seq, reasonReplaced
				return rep, cp, nil
			}
			rep.Head = Link{Seq: e.Seq, MAC: e.MAC}
			rep.Checked++
		}
		if len(events) == 0 {
			if stop == nil && rep.Head.Seq < appended.Seq {
				rep.FirstBad, rep.Reason = rep.Head.Seq+1, reasonMissingEvents
				return rep, cp, nil
			}
			rep.OK = true
			return rep, cp, nil
		}
		after = rep.Head.Seq
	}
}

// Checkpoint returns tenant's checkpoint as stored, the zero Checkpoint if
// it has none. It does not check the CheckpointMAC; Verify does. A store
// error is returned wrapped.
func (l *Log) Checkpoint(ctx context.Context, tenant string) (Checkpoint, error) {
	if err := checkTenant(tenant); err != nil {
		return Checkpoint{}, err
	}
	cp, err := l.store.Checkpoint(ctx, tenant)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("audit: reading checkpoint: %w", err)
	}
	return cp, nil
}

// Page is one page of a Query.
type Page struct {
	Events []Event
	// Next is the cursor for q.After of the next page, 0 if there is none.
	Next uint64
}

// Query returns one page of tenant's events matching q (see Query for the
// filters): at most q.Limit events, DefaultLimit when q.Limit is zero, capped
// at MaxLimit. A negative Limit, an Outcome that is neither Success nor
// Failure, an Actor or Action no event can hold (longer than MaxFieldSize,
// not UTF-8), a From or To outside the years 1 to 9999 (UTC) or a From
// after To gives an *InputError. To read the next page,
// set q.After to Page.Next. Query does not verify the chain; Verify does.
// Query never returns an event at or below the Seq of tenant's checkpoint:
// those events were purged, and one stored there anyway is tampering, which
// Verify reports. A store error is returned wrapped.
func (l *Log) Query(ctx context.Context, tenant string, q Query) (Page, error) {
	if err := checkTenant(tenant); err != nil {
		return Page{}, err
	}
	if err := checkQuery(q); err != nil {
		return Page{}, err
	}
	cp, err := l.afterCheckpoint(ctx, tenant, &q)
	if err != nil {
		return Page{}, fmt.Errorf("audit: querying events: %w", err)
	}
	purged := cp.Seq
	limit := q.Limit
	if limit == 0 {
		limit = DefaultLimit
	}
	limit = min(limit, MaxLimit)
	// Ask for one more than the page to learn whether another page
	// follows; a full page of MaxLimit needs a second, one-event probe.
	q.Limit = min(limit+1, MaxLimit)
	events, err := l.store.Query(ctx, tenant, q)
	if err != nil {
		return Page{}, fmt.Errorf("audit: querying events: %w", err)
	}
	events, end := abovePurged(events, purged)
	var page Page
	switch {
	case end: // the checkpoint ends a descending page: nothing follows
	case len(events) > limit:
		events = events[:limit]
		page.Next = events[limit-1].Seq
	case len(events) == MaxLimit:
		q.After, q.Limit = events[len(events)-1].Seq, 1
		more, err := l.store.Query(ctx, tenant, q)
		if err != nil {
			return Page{}, fmt.Errorf("audit: querying events: %w", err)
		}
		if more, _ = abovePurged(more, purged); len(more) > 0 {
			page.Next = q.After
		}
	}
	page.Events = events
	return page, nil
}

// afterCheckpoint reads tenant's checkpoint and returns it: the events at
// or below its Seq were purged, and Query and Export do not show an event
// stored there anyway. An ascending q is moved past it here (q.After); a
// descending page is cut with abovePurged.
func (l *Log) afterCheckpoint(ctx context.Context, tenant string, q *Query) (Checkpoint, error) {
	cp, err := l.store.Checkpoint(ctx, tenant)
	if err != nil {
		return Checkpoint{}, err
	}
	if !q.Desc {
		q.After = max(q.After, cp.Seq)
	}
	return cp, nil
}

// abovePurged returns the events of a page, in either order, up to the first
// one at or below purged (a checkpoint's Seq), and reports whether it met
// one: in a descending page every later event is below it too.
func abovePurged(events []Event, purged uint64) ([]Event, bool) {
	for i := range events {
		if events[i].Seq <= purged {
			return events[:i], true
		}
	}
	return events, false
}

// Purge applies retention to tenant: it deletes the oldest events, up to but
// not including the first event whose Time is not before before, and leaves
// a Checkpoint in their place, with a CheckpointMAC, so that Verify still
// passes. It returns the number of events purged (0, and no change, when
// none is older than before).
//
// Purge first verifies the events it deletes, as Verify does (an event
// stored at or below the current checkpoint, or one other than this Log
// appended, fails too), and refuses with ErrTampered if they fail. A store
// error is returned wrapped. A purge that another (a replica's) overtook
// meanwhile, the checkpoint now at or past the one this purge would leave,
// has nothing left to do: it returns 0 and no error, so the same purge made
// on several replicas at once counts each event once. One overtaken only
// part way (the other stopped at an older event) deletes the rest and
// counts from where it began: events the other deleted are counted by both.
// Either holds whenever the other purge lands, also while this one reads
// the events: as Verify does, the walk starts over from the new checkpoint
// when it fails and the checkpoint has moved, a bounded number of times, and
// when a purge overtook every walk Purge deletes nothing and returns an error
// wrapping ErrConflict (not ErrTampered).
func (l *Log) Purge(ctx context.Context, tenant string, before time.Time) (int, error) {
	if err := checkTenant(tenant); err != nil {
		return 0, err
	}
	rep, old, began, err := l.settledWalk(ctx, tenant, l.appended(tenant), func(e *Event) bool { return !e.Time.Before(before) })
	if err != nil {
		return 0, err
	}
	if !rep.OK {
		return 0, fmt.Errorf("%w: seq %d: %s", ErrTampered, rep.FirstBad, rep.Reason)
	}
	if rep.Head.Seq == old.Seq {
		return 0, nil
	}
	cp := Checkpoint{Seq: rep.Head.Seq, MAC: bytes.Clone(rep.Head.MAC), At: chainTime(l.now())}
	m := l.macers.Get().(*macer)
	cp.CheckpointMAC = m.checkpointMAC(tenant, &cp)
	l.macers.Put(m)
	if err := l.store.Purge(ctx, tenant, cp); err != nil {
		if errors.Is(err, ErrConflict) {
			if cur, cerr := l.store.Checkpoint(ctx, tenant); cerr == nil && cur.Seq >= cp.Seq {
				return 0, nil // overtaken: purged already
			}
		}
		return 0, fmt.Errorf("audit: purging events: %w", err)
	}
	return int(cp.Seq - began.Seq), nil
}
