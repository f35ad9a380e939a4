package pgstore

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// ErrWatching is returned by Watch when the Store is already being watched.
var ErrWatching = errors.New("pgstore: Watch is already running for this store")

// Watch timing. A cached version is used only while the listener has
// answered a ping within WatchFresh; it pings every WatchPing.
const (
	// WatchPing is how often Watch checks its connection when no
	// notification arrives.
	WatchPing = 250 * time.Millisecond
	// WatchFresh bounds how stale a cached version can be when the
	// listener's connection breaks silently: after WatchFresh without an
	// answer, Version reads the database again.
	WatchFresh = time.Second
)

// Kinds of watched version, the first byte of a notification's payload
// and of a cache key.
const (
	kindIPLists  = 'i'
	kindPolicies = 'r'
)

// versionWatch keeps the tenants' allow-list and rbac policy versions
// that PostgreSQL has not notified a change of since they were read, so
// that IPLists.Version and Policies.Version (one read on every allow-list
// check and every authorization decision) cost no round trip while Watch
// runs.
//
// The rule that keeps it exact: a value read by a statement that started
// at generation g is kept only if the generation is still g when the read
// returns, and every notification, every loss and every gain of the
// listening connection moves the generation and empties what it concerns.
// A change committed before the read started is seen by the read; one
// committed after it is notified after its commit, so either before the
// value is kept (the generation moved: not kept) or after (the value is
// dropped). A cached value is therefore never older than the newest
// change whose notification has arrived, and it is used only while the
// listener answered a ping within WatchFresh.
type versionWatch struct {
	channel string

	mu       sync.Mutex
	running  bool
	listened time.Time // when the listener last proved itself (zero: not listening)
	gen      uint64
	cache    map[watchKey]uint64

	now func() time.Time
}

func newVersionWatch(schema string) *versionWatch {
	return &versionWatch{channel: watchChannel(schema), cache: map[watchKey]uint64{}, now: time.Now}
}

// watchChannel is the notification channel of a schema, the same as the
// one the guard_notify_version trigger function computes from
// TG_TABLE_SCHEMA: a fixed prefix and the first 32 hex digits of the
// SHA-256 of the schema name, so that any schema name gives a valid
// channel that no other schema shares.
func watchChannel(schema string) string {
	sum := sha256.Sum256([]byte(schema))
	return "guard_v_" + hex.EncodeToString(sum[:16])
}

// watchAppName is the application_name of the listener on channel.
func watchAppName(channel string) string { return "guard-watch " + channel }

// watchKey is a cache key: a kind and a tenant.
type watchKey struct {
	kind   byte
	tenant string
}

// lookup returns the cached version of (kind, tenant) if the watch is live
// and holds it; otherwise ok is false and gen is the generation to pass
// to keep with the value read from the database.
func (w *versionWatch) lookup(kind byte, tenant string) (v uint64, ok bool, gen uint64, live bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.listened.IsZero() || w.now().Sub(w.listened) >= WatchFresh {
		return 0, false, 0, false
	}
	v, ok = w.cache[watchKey{kind, tenant}]
	return v, ok, w.gen, true
}

// keep caches v for (kind, tenant) if nothing moved the generation since
// gen was handed out.
func (w *versionWatch) keep(kind byte, tenant string, v, gen uint64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.gen == gen && !w.listened.IsZero() {
		w.cache[watchKey{kind, tenant}] = v
	}
}

// forget drops (kind, tenant), or every key of kind when all is set.
func (w *versionWatch) forget(kind byte, tenant string, all bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.gen++
	if all {
		for k := range w.cache {
			if k.kind == kind {
				delete(w.cache, k)
			}
		}
		return
	}
	delete(w.cache, watchKey{kind, tenant})
}

// setListening records that the listener is (true) or is no longer
// (false) listening. Either way what was cached is dropped: before the
// listener was up nothing was notified.
func (w *versionWatch) setListening(ok bool, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.gen++
	clear(w.cache)
	if ok {
		w.listened = at
	} else {
		w.listened = time.Time{}
	}
}

// proved records a ping sent at at that was answered: every notification
// committed before at has been received.
func (w *versionWatch) proved(at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.listened.IsZero() && at.After(w.listened) {
		w.listened = at
	}
}

// notified applies one notification payload: a kind byte, then the
// tenant in hex, or "*" for every tenant of the kind. A payload it cannot
// read drops everything: it only costs reads.
func (w *versionWatch) notified(payload string) {
	if len(payload) >= 1 && (payload[0] == kindIPLists || payload[0] == kindPolicies) {
		if payload[1:] == "*" {
			w.forget(payload[0], "", true)
			return
		}
		if t, err := hex.DecodeString(payload[1:]); err == nil {
			w.forget(payload[0], string(t), false)
			return
		}
	}
	w.mu.Lock()
	w.gen++
	clear(w.cache)
	w.mu.Unlock()
}

// version returns the version of (kind, tenant): from the cache when the
// watch is live and holds it, otherwise from read (kept for next time when
// the watch is live).
func (w *versionWatch) version(ctx context.Context, kind byte, tenant string, read func(context.Context) (uint64, error)) (uint64, error) {
	v, ok, gen, live := w.lookup(kind, tenant)
	if ok {
		return v, nil
	}
	v, err := read(ctx)
	if err == nil && live {
		w.keep(kind, tenant, v, gen)
	}
	return v, err
}

// Watching reports whether Watch is listening now, so that version reads
// are answered from memory: its connection is up and answered a ping
// within WatchFresh.
func (s *Store) Watching() bool {
	_, _, _, live := s.watch.lookup(0, "")
	return live
}

// Watch listens for changes of the tenants' IP allow-lists and rbac
// policies (PostgreSQL LISTEN/NOTIFY, sent by triggers in the same
// transaction as each change) until ctx is done, and meanwhile lets
// IPLists.Version and Policies.Version answer from memory: the version
// read on every allow-list check and every authorization decision then
// costs no round trip, and a guarded request costs one (the session's).
// Run it for the life of the Store, as `go st.Watch(ctx)`; it returns
// ctx's error, or ErrWatching when another Watch of the Store runs.
//
// A change made through this Store is seen at once; a change made on
// another replica as soon as PostgreSQL delivers its notification
// (milliseconds). Watch holds one connection of its own, opened from the
// pool's configuration (without its Tracer; its application_name is
// "guard-watch " and the channel), outside the pool. It pings
// every WatchPing; when the connection fails or stops answering, the
// versions are read from the database again (never a cached one more
// than WatchFresh after the last answer) while Watch reconnects, with a
// backoff of up to five seconds. Without Watch, every Version is read.
func (s *Store) Watch(ctx context.Context) error {
	w := s.watch
	w.mu.Lock()
	if w.running {
		w.mu.Unlock()
		return ErrWatching
	}
	w.running = true
	w.mu.Unlock()
	defer func() {
		w.setListening(false, time.Time{})
		w.mu.Lock()
		w.running = false
		w.mu.Unlock()
	}()
	backoff := 50 * time.Millisecond
	for {
		err := s.listen(ctx)
		w.setListening(false, time.Time{})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if err == nil {
			backoff = 50 * time.Millisecond
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// listen runs one listening connection until it fails or ctx is done. It
// returns nil when it had been listening (so Watch reconnects at once).
func (s *Store) listen(ctx context.Context) error {
	w := s.watch
	cfg := s.pool.Config().ConnConfig.Copy()
	cfg.Tracer = nil
	// Named, so that an operator sees what the connection is for.
	cfg.RuntimeParams["application_name"] = watchAppName(w.channel)
	// Notifications are applied as pgconn reads them, whatever command is
	// running on the connection.
	cfg.OnNotification = func(_ *pgconn.PgConn, n *pgconn.Notification) {
		if n.Channel == w.channel {
			w.notified(n.Payload)
		}
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	conn, err := pgx.ConnectConfig(cctx, cfg)
	cancel()
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "LISTEN "+pgx.Identifier{w.channel}.Sanitize()); err != nil {
		return err
	}
	// Listening from here: anything committed before now was read by
	// whoever reads next.
	last := w.now()
	w.setListening(true, last)
	for {
		// Wait for notifications until the next ping is due; a stream of
		// notifications does not put the ping off.
		if wait := WatchPing - w.now().Sub(last); wait > 0 {
			wctx, cancel := context.WithTimeout(ctx, wait)
			_, err := conn.WaitForNotification(wctx)
			cancel()
			if ctx.Err() != nil {
				return nil
			}
			if err == nil {
				continue // applied by OnNotification
			}
			if !errors.Is(err, context.DeadlineExceeded) || conn.IsClosed() {
				return nil
			}
		}
		// Prove the connection: once the ping is answered, every
		// notification of a change committed before it was sent has
		// been applied.
		at := w.now()
		pctx, cancel := context.WithTimeout(ctx, WatchFresh)
		err := conn.Ping(pctx)
		cancel()
		if err != nil {
			return nil
		}
		w.proved(at)
		last = at
	}
}
