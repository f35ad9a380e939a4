package sqlitestore

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync/atomic"
	"time"

	"github.com/guardhq/guard/session"
)

// Sessions is the session.Store, session.UserIndex, session.LookupToucher
// and session.LineageRevoker of a Store: one row per session, keyed by the
// token hash.
//
// Lookup and LookupTouch are one prepared SELECT by primary key; the touch
// they may add is a conditional UPDATE (set if newer). Create and Rotate
// are one write transaction each. Sessions that are no longer live are
// deleted when their user signs in again (Create), when they are presented
// (by session.Manager), by a sweep in every 1024th Create, and by
// DeleteExpired.
//
// A session that Create evicts leaves a row in guard_session_evictions
// (hash, user, ends_at), written in the same transaction, which Lookup
// reads only when the hash names no session; one that Rotate replaces
// leaves one too, whose successor column names the new session (NULL for
// an eviction) and whose ends_at is the new session's ExpiresAt. Those
// rows are deleted like sessions that are no longer live: by the user's
// next Create, the sweep and DeleteExpired, once ends_at has passed, and
// all the user's by DeleteByUser, but the rotation tombstones that lead to
// the session it spares.
type Sessions struct {
	s          *Store
	sweepEvery uint64
	creates    atomic.Uint64
}

var (
	_ session.Store         = (*Sessions)(nil)
	_ session.UserIndex     = (*Sessions)(nil)
	_ session.LookupToucher = (*Sessions)(nil)
)

// defaultSweepEvery is how many Creates (or Reserves) pass between two
// opportunistic sweeps of expired rows.
const defaultSweepEvery = 1024

// sweepBatch bounds the rows one opportunistic sweep deletes, so that no
// single call pays for a long backlog; sweeps run more often than rows
// can pile up (at most sweepEvery new rows between two sweeps).
const sweepBatch = 2048

// scanner is *sql.Row, *sql.Rows or errRow.
type scanner interface{ Scan(dest ...any) error }

// hashCol scans a BLOB column into a session.Hash without allocating.
type hashCol struct{ h *session.Hash }

// Scan implements sql.Scanner.
func (c hashCol) Scan(src any) error {
	b, ok := src.([]byte)
	if !ok || len(b) != len(c.h) {
		return fmt.Errorf("sqlitestore: session hash column holds %T of %d bytes", src, len(b))
	}
	copy(c.h[:], b)
	return nil
}

// scanSession reads the columns of sessionCols (after the hash, if
// withHash) into a Session.
func scanSession(r scanner, s *session.Session, withHash bool) error {
	var created, seen, expires, idle, flags int64
	var dest [10]any
	d := dest[:0]
	if withHash {
		d = append(d, hashCol{&s.Hash})
	}
	d = append(d, &s.Tenant, &s.UserID, &created, &seen, &expires, &idle, &s.IP, &s.UserAgent, &flags)
	if err := r.Scan(d...); err != nil {
		return err
	}
	var err error
	if s.Flags, err = flags32("session", flags); err != nil {
		return err
	}
	s.CreatedAt = fromMicros(created)
	s.LastSeen = fromMicros(seen)
	s.ExpiresAt = fromMicros(expires)
	s.IdleTimeout = time.Duration(idle)
	return nil
}

func sessionArgs(s *session.Session) []any {
	return []any{s.Hash[:], s.Tenant, s.UserID, micros(s.CreatedAt), micros(s.LastSeen), micros(s.ExpiresAt),
		int64(s.IdleTimeout), s.IP, s.UserAgent, int64(s.Flags)}
}

// Create implements session.Store in one write transaction. Every
// defaultSweepEvery-th Create of a Store also deletes, in the same
// transaction, up to sweepBatch sessions (of any user) that are not live at
// n.CreatedAt.
func (ss *Sessions) Create(ctx context.Context, n session.Session, lim session.Limit) ([]session.Session, error) {
	var evicted []session.Session
	sweep := ss.sweepEvery > 0 && ss.creates.Add(1)%ss.sweepEvery == 0
	err := ss.s.write(ctx, func(w *wtx) error {
		evicted = nil
		if sweep {
			if err := deleteEnded(w, n.CreatedAt, sweepBatch, nil); err != nil {
				return fmt.Errorf("sqlitestore: create session: sweep: %w", err)
			}
		}
		if err := insertSession(w, &n); err != nil {
			return fmt.Errorf("sqlitestore: create session: %w", err)
		}
		if _, err := w.exec(sessTombDrop, n.Tenant, n.UserID, micros(n.CreatedAt)); err != nil {
			return fmt.Errorf("sqlitestore: create session: %w", err)
		}
		rows, err := w.query(sessOthers, n.Tenant, n.UserID, n.Hash[:])
		if err != nil {
			return fmt.Errorf("sqlitestore: create session: %w", err)
		}
		others, err := collectSessions(rows)
		if err != nil {
			return fmt.Errorf("sqlitestore: create session: %w", err)
		}
		var live, dead []session.Session
		for _, o := range others {
			if o.LiveAt(n.CreatedAt) {
				live = append(live, o)
			} else {
				dead = append(dead, o)
			}
		}
		if lim.Max > 0 && len(live) >= lim.Max {
			if lim.Policy == session.RefuseNew {
				return session.ErrLimit
			}
			// live is oldest first (created_at, then hash).
			cut := len(live) - lim.Max + 1
			evicted = live[:cut:cut]
		}
		for i := range evicted {
			if _, err := w.exec(sessEvict, evicted[i].Hash[:]); err != nil {
				return fmt.Errorf("sqlitestore: create session: %w", err)
			}
		}
		for _, group := range [][]session.Session{dead, evicted} {
			for i := range group {
				if _, err := w.exec(sessDelOne, group[i].Hash[:]); err != nil {
					return fmt.Errorf("sqlitestore: create session: %w", err)
				}
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return evicted, nil
}

// Lookup implements session.Store: one prepared SELECT by primary key, on
// a connection set aside for it (see lookup.go) unless all are busy. Only
// when the hash names no session, a second SELECT looks for its tombstone.
func (ss *Sessions) Lookup(ctx context.Context, h session.Hash) (session.Session, error) {
	if err := ss.s.ready(ctx); err != nil {
		return session.Session{}, err
	}
	s := session.Session{Hash: h}
	if lc := ss.s.lookups.get(ctx); lc != nil {
		err := lc.lookup(ctx, &h, &s)
		ss.s.lookups.put(lc, err != nil && !isNoRows(err))
		switch {
		case err == nil:
			return s, nil
		case isNoRows(err):
			return session.Session{}, ss.evicted(ctx, h)
		}
		return session.Session{}, fmt.Errorf("sqlitestore: lookup session: %w", err)
	}
	if err := scanSession(ss.s.reads.queryRow(ctx, sessLookup, h[:]), &s, false); err != nil {
		if isNoRows(err) {
			return session.Session{}, ss.evicted(ctx, h)
		}
		return session.Session{}, fmt.Errorf("sqlitestore: lookup session: %w", err)
	}
	return s, nil
}

// evicted is the answer to the Lookup of h when it names no session: an
// *session.EvictedError if h is an evicted session's tombstone, a
// *session.RotatedError if it is a rotated one's, else
// session.ErrNotFound.
func (ss *Sessions) evicted(ctx context.Context, h session.Hash) error {
	return tombstone(ss.s.reads.queryRow(ctx, sessEvicted, h[:]), "lookup session")
}

// tombstone reads the row of sessEvicted: an *session.EvictedError or an
// *session.RotatedError, or session.ErrNotFound when there is none.
func tombstone(r scanner, op string) error {
	var (
		end          int64
		succ         []byte
		tenant, user string
	)
	err := r.Scan(&end, &succ, &tenant, &user)
	switch {
	case err == nil && succ == nil:
		return &session.EvictedError{EndsAt: fromMicros(end)}
	case err == nil:
		re := &session.RotatedError{Tenant: tenant, UserID: user, EndsAt: fromMicros(end)}
		if err := (hashCol{&re.Successor}).Scan(succ); err != nil {
			return fmt.Errorf("sqlitestore: %s: %w", op, err)
		}
		return re
	case isNoRows(err):
		return session.ErrNotFound
	}
	return fmt.Errorf("sqlitestore: %s: %w", op, err)
}

// insertSession inserts n, or returns session.ErrDuplicate if its hash is
// a session's or a tombstone's.
func insertSession(w *wtx, n *session.Session) error {
	ok, err := affected(w.exec(sessInsert, sessionArgs(n)...))
	switch {
	case isConstraint(err), err == nil && !ok:
		return session.ErrDuplicate
	}
	return err
}

// deleteEnded deletes up to limit (-1: all) sessions that are not live at
// now and as many tombstones that ended by now, and adds to n, if not nil,
// how many rows it deleted.
func deleteEnded(w *wtx, now time.Time, limit int, n *int64) error {
	for _, id := range [...]stmtID{sessExpire, sessTombExpire} {
		res, err := w.exec(id, micros(now), limit)
		if err != nil {
			return err
		}
		if n != nil {
			k, err := res.RowsAffected()
			if err != nil {
				return err
			}
			*n += k
		}
	}
	return nil
}

// LookupTouch implements session.LookupToucher: the SELECT of Lookup and,
// only when the session is live, due a touch and (if maxGap > 0) last seen
// less than maxGap before now, an UPDATE that sets LastSeen if newer. The
// UPDATE cannot move LastSeen back, so a Touch by another request in
// between loses nothing.
func (ss *Sessions) LookupTouch(ctx context.Context, h session.Hash, now time.Time, interval, maxGap time.Duration) (session.Session, error) {
	s, err := ss.Lookup(ctx, h)
	if err != nil {
		return s, err
	}
	if gap := now.Sub(s.LastSeen); s.LiveAt(now) && gap >= min(interval, s.IdleTimeout/2) && (maxGap <= 0 || gap < maxGap) {
		err := ss.s.writeOne(ctx, func(w *wtx) error {
			_, err := w.exec(sessTouch, h[:], micros(now))
			return err
		})
		if err != nil {
			return session.Session{}, fmt.Errorf("sqlitestore: touch session: %w", err)
		}
	}
	return s, nil
}

// Touch implements session.Store with one UPDATE that sets LastSeen only if
// seen is later.
func (ss *Sessions) Touch(ctx context.Context, h session.Hash, seen time.Time) error {
	var found bool
	err := ss.s.writeOne(ctx, func(w *wtx) error {
		var err error
		found, err = affected(w.exec(sessTouch, h[:], micros(seen)))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlitestore: touch session: %w", err)
	}
	if !found {
		return session.ErrNotFound
	}
	return nil
}

// Untouch implements session.LookupToucher with one UPDATE that sets
// LastSeen to prev only while it is touched (compare and set).
func (ss *Sessions) Untouch(ctx context.Context, h session.Hash, touched, prev time.Time) error {
	err := ss.s.writeOne(ctx, func(w *wtx) error {
		_, err := w.exec(sessUntouch, h[:], micros(touched), micros(prev))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlitestore: untouch session: %w", err)
	}
	return nil
}

// Delete implements session.Store with one DELETE … RETURNING.
func (ss *Sessions) Delete(ctx context.Context, h session.Hash) (session.Session, error) {
	s := session.Session{Hash: h}
	err := ss.s.writeOne(ctx, func(w *wtx) error {
		return scanSession(w.queryRow(sessDelete, h[:]), &s, false)
	})
	if isNoRows(err) {
		return session.Session{}, session.ErrNotFound
	}
	if err != nil {
		return session.Session{}, fmt.Errorf("sqlitestore: delete session: %w", err)
	}
	return s, nil
}

var _ session.LineageRevoker = (*Sessions)(nil)

// DeleteLineage implements session.LineageRevoker in one write
// transaction: each hop a DELETE … RETURNING of the hash and, when it
// names no session, the SELECT of its tombstone. A session of another
// user at the chain's end is put back by the rollback. A hash that names
// neither a session nor a rotation (a made-up token at the sign-out
// route, an evicted session's) is answered by a Lookup first, on a read
// connection: it does not queue behind the writer or hold it up.
func (ss *Sessions) DeleteLineage(ctx context.Context, h session.Hash, maxHops int) (session.Session, bool, error) {
	var re *session.RotatedError
	if _, err := ss.Lookup(ctx, h); err != nil && !errors.As(err, &re) {
		return session.Session{}, false, notFound(err)
	}
	s := session.Session{Hash: h}
	var rotated bool
	err := ss.s.write(ctx, func(w *wtx) error {
		var first *session.RotatedError // the lineage's first tombstone
		for hops := 0; ; hops++ {
			s.Hash = h
			err := scanSession(w.queryRow(sessDelete, h[:]), &s, false)
			switch {
			case err == nil && first != nil && (s.Tenant != first.Tenant || s.UserID != first.UserID):
				return session.ErrNotFound
			case err == nil:
				rotated = first != nil
				return nil
			case !isNoRows(err):
				return fmt.Errorf("sqlitestore: delete session lineage: %w", err)
			}
			var re *session.RotatedError
			err = tombstone(w.queryRow(sessEvicted, h[:]), "delete session lineage")
			switch {
			case !errors.As(err, &re):
				return notFound(err)
			case hops >= maxHops, first != nil && (re.Tenant != first.Tenant || re.UserID != first.UserID):
				return session.ErrNotFound
			case first == nil:
				first = re
			}
			h = re.Successor
		}
	})
	if err != nil {
		return session.Session{}, false, err
	}
	return s, rotated, nil
}

// notFound is session.ErrNotFound for an error that is one (an unknown
// hash, an evicted session's tombstone), else err: DeleteLineage's
// answer when a hash leads to no rotation.
func notFound(err error) error {
	if errors.Is(err, session.ErrNotFound) {
		return session.ErrNotFound
	}
	return err
}

// Rotate implements session.Store in one write transaction: the
// tombstone of old (in guard_session_evictions, with its successor), the
// DELETE of old and the INSERT of n.
func (ss *Sessions) Rotate(ctx context.Context, old session.Hash, n session.Session) error {
	return ss.s.write(ctx, func(w *wtx) error {
		if n.Hash == old {
			// ErrDuplicate if old is a session (the DELETE undone with
			// the transaction), else ErrNotFound.
			gone, err := affected(w.exec(sessDelOne, old[:]))
			switch {
			case err != nil:
				return fmt.Errorf("sqlitestore: rotate session: %w", err)
			case gone:
				return session.ErrDuplicate
			}
			return session.ErrNotFound
		}
		// Copied from old's row, so nothing is written if old is no
		// session (a tombstone included: that row is not in
		// guard_sessions). A successor hash that is a tombstone's is
		// refused by the INSERT below, and the transaction undone.
		res, err := w.exec(sessRotTomb, old[:], n.Hash[:], ceilMicros(n.ExpiresAt))
		found, err := affected(res, err)
		switch {
		case isConstraint(err):
			return session.ErrDuplicate // old's hash is a tombstone's too: corrupt, changes nothing
		case err != nil:
			return fmt.Errorf("sqlitestore: rotate session: %w", err)
		case !found:
			return session.ErrNotFound
		}
		if _, err := w.exec(sessDelOne, old[:]); err != nil {
			return fmt.Errorf("sqlitestore: rotate session: %w", err)
		}
		if err := insertSession(w, &n); err != nil {
			return fmt.Errorf("sqlitestore: rotate session: %w", err)
		}
		return nil
	})
}

// ListByUser implements session.UserIndex.
func (ss *Sessions) ListByUser(ctx context.Context, tenant, userID string) ([]session.Session, error) {
	if err := ss.s.ready(ctx); err != nil {
		return nil, err
	}
	rows, err := ss.s.reads.query(ctx, sessByUser, tenant, userID)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: list sessions: %w", err)
	}
	out, err := collectSessions(rows)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: list sessions: %w", err)
	}
	return out, nil
}

// DeleteByUser implements session.UserIndex with one DELETE … RETURNING
// and one DELETE of the user's tombstones, in one transaction. That
// DELETE finds the rotation tombstones to keep, those that lead to
// except, with a recursive query over the successor column.
func (ss *Sessions) DeleteByUser(ctx context.Context, tenant, userID string, except session.Hash) ([]session.Session, error) {
	var exc any
	if !except.IsZero() {
		exc = except[:]
	}
	var out []session.Session
	err := ss.s.write(ctx, func(w *wtx) error {
		rows, err := w.query(sessDelAll, tenant, userID, exc)
		if err != nil {
			return err
		}
		if out, err = collectSessions(rows); err != nil {
			return err
		}
		// The user's tombstones, ended or not, but except's lineage.
		_, err = w.exec(sessTombDropUser, tenant, userID, exc, session.MaxLineageHops)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: delete sessions of user: %w", err)
	}
	slices.SortFunc(out, oldestFirst)
	return out, nil
}

// DeleteExpired deletes every session that is not live at now, and every
// tombstone of an evicted session that ended by now, and returns how many
// rows it deleted, in one transaction. Create deletes some now and then; a
// host may also call DeleteExpired periodically.
func (ss *Sessions) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := ss.s.write(ctx, func(w *wtx) error {
		n = 0
		return deleteEnded(w, now, -1, &n)
	})
	if err != nil {
		return 0, fmt.Errorf("sqlitestore: delete expired sessions: %w", err)
	}
	return n, nil
}

// Len returns the number of sessions stored, live or not.
func (ss *Sessions) Len(ctx context.Context) (int, error) {
	if err := ss.s.ready(ctx); err != nil {
		return 0, err
	}
	var n int
	if err := ss.s.db.QueryRowContext(ctx, `SELECT count(*) FROM guard_sessions`).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlitestore: count sessions: %w", err)
	}
	return n, nil
}

func collectSessions(rows *sql.Rows) ([]session.Session, error) {
	defer rows.Close()
	var out []session.Session
	for rows.Next() {
		var s session.Session
		if err := scanSession(rows, &s, true); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

// oldestFirst orders sessions by CreatedAt, then by Hash.
func oldestFirst(a, b session.Session) int {
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c
	}
	return bytes.Compare(a.Hash[:], b.Hash[:])
}
