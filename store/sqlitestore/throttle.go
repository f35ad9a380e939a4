package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/guardhq/guard/auth"
)

// Throttle is the auth.ThrottleStore of a Store: one row per key holding
// its auth.Record.
//
// Reserve applies auth.Limit.Apply to the row inside one write transaction
// (BEGIN IMMEDIATE holds the database write lock, in every process, until
// it commits), so N concurrent attempts on one key never get more than
// Limit.Max reservations. A Reserve that finds the key locked changes
// nothing and takes no lock. Release applies auth.Record.GiveBack to the
// row in one write transaction, Reset is one DELETE, Peek one SELECT.
// ReserveAll does its keys in one write transaction (none when the first
// key is locked), and Settle in one.
//
// Rows are bounded by the rate of attempts: each row carries the time at
// which it is forgotten (under the limit of its last Reserve; a permanent
// lock never is), and every defaultSweepEvery-th Reserve of a Store also
// deletes up to sweepBatch forgotten rows. Sweep deletes them all. A
// Release leaves that time as it is: GiveBack never makes a record
// forgotten later, only sooner, so the row may outlive its record a
// little; a permanent lock that Release lifts leaves the row kept until
// the key's next Reserve or Reset.
//
// Times are kept to the microsecond, rounded up: the time of the last
// counted attempt, the end of a lock and the time a row is forgotten never
// come before the exact times Limit.Apply gives, so neither a lock nor a
// count ends early (each may end up to a microsecond late).
type Throttle struct {
	s          *Store
	sweepEvery uint64
	reserves   atomic.Uint64
}

var _ auth.BatchThrottleStore = (*Throttle)(nil)

func scanRecord(r scanner) (auth.Record, error) {
	var rec auth.Record
	var last, locked sql.NullInt64
	var failures, lockouts, permanent int64
	if err := r.Scan(&failures, &last, &locked, &lockouts, &permanent); err != nil {
		return auth.Record{}, err
	}
	rec.Failures = int(failures)
	rec.Last = fromNullMicros(last)
	rec.LockedUntil = fromNullMicros(locked)
	rec.Lockouts = int(lockouts)
	rec.Permanent = permanent != 0
	return rec, nil
}

// record reads a key's record from r (the zero Record if there is none).
func record(r scanner) (auth.Record, error) {
	rec, err := scanRecord(r)
	if isNoRows(err) {
		return auth.Record{}, nil
	}
	return rec, err
}

// Reserve implements auth.ThrottleStore. An invalid lim gives its
// *auth.InvalidLimitError and records nothing.
func (t *Throttle) Reserve(ctx context.Context, key string, now time.Time, lim auth.Limit) (auth.Reservation, error) {
	keys := [1]auth.ThrottleKey{{Key: key, Limit: lim}}
	res, err := t.ReserveAll(ctx, now, keys[:])
	if err != nil {
		return auth.Reservation{}, err
	}
	return res[0], nil
}

// ReserveAll implements auth.BatchThrottleStore in one write transaction.
// When a limit is invalid it returns its *auth.InvalidLimitError and
// records nothing.
func (t *Throttle) ReserveAll(ctx context.Context, now time.Time, keys []auth.ThrottleKey) ([]auth.Reservation, error) {
	for _, k := range keys {
		if err := k.Limit.Validate(); err != nil {
			return nil, err
		}
	}
	if len(keys) == 0 {
		return []auth.Reservation{}, nil
	}
	if err := t.s.ready(ctx); err != nil {
		return nil, err
	}
	// A locked key stays as it is (Apply changes nothing and counts
	// nothing), so finding the first key locked needs no write lock: the
	// answer is that of a Reserve at the moment of this read.
	first := keys[0]
	rec, err := record(t.s.reads.queryRow(ctx, thrGet, first.Key))
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: reserve: %w", err)
	}
	if _, res := first.Limit.Apply(rec, now); !res.Allowed {
		return []auth.Reservation{res}, nil
	}
	sweep := t.sweepEvery > 0 && t.reserves.Add(1)%t.sweepEvery == 0
	var out []auth.Reservation
	err = t.s.write(ctx, func(w *wtx) error {
		var err error
		out, err = auth.ReserveInOrder(keys, func(k auth.ThrottleKey) (auth.Reservation, error) {
			return reserve(w, k.Key, now, k.Limit)
		})
		if err != nil {
			return fmt.Errorf("sqlitestore: reserve: %w", err)
		}
		if sweep {
			if _, err := w.exec(thrSweep, micros(now), first.Key, sweepBatch); err != nil {
				return fmt.Errorf("sqlitestore: reserve: sweep: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// reserve applies lim to the record of key at now inside w and writes the
// record back, unless the key is locked (then there is nothing to write).
func reserve(w *wtx, key string, now time.Time, lim auth.Limit) (auth.Reservation, error) {
	rec, err := record(w.queryRow(thrGet, key))
	if err != nil {
		return auth.Reservation{}, err
	}
	rec, res := lim.Apply(rec, now)
	if !res.Allowed {
		return res, nil
	}
	rec.Last, rec.LockedUntil = microUp(rec.Last), microUp(rec.LockedUntil)
	res.LockedUntil, res.Last = microUp(res.LockedUntil), rec.Last
	var expires any
	if !rec.Permanent {
		expires = ceilMicros(rec.ExpiresAt(lim))
	}
	permanent := 0
	if rec.Permanent {
		permanent = 1
	}
	_, err = w.exec(thrUpsert, key, rec.Failures, nullMicros(rec.Last), nullMicros(rec.LockedUntil),
		rec.Lockouts, permanent, expires)
	return res, err
}

// microUp returns t rounded up to the microsecond; the zero time stays
// zero.
func microUp(t time.Time) time.Time {
	if t.IsZero() {
		return t
	}
	return fromMicros(ceilMicros(t))
}

// Release implements auth.ThrottleStore in one write transaction: the
// row is read, given res back (auth.Record.GiveBack) and written back.
func (t *Throttle) Release(ctx context.Context, key string, res auth.Reservation) error {
	err := t.s.write(ctx, func(w *wtx) error { return release(w, key, res) })
	if err != nil {
		return fmt.Errorf("sqlitestore: release: %w", err)
	}
	return nil
}

// release gives res back to the row of key inside w, if there is one and
// it changes.
func release(w *wtx, key string, res auth.Reservation) error {
	if !res.Allowed {
		return nil
	}
	rec, err := scanRecord(w.queryRow(thrGet, key))
	if isNoRows(err) {
		return nil
	}
	if err != nil {
		return err
	}
	back := rec.GiveBack(res)
	if back == rec {
		return nil
	}
	permanent := 0
	if back.Permanent {
		permanent = 1
	}
	_, err = w.exec(thrRelease, key, back.Failures, nullMicros(back.Last), nullMicros(back.LockedUntil), back.Lockouts, permanent)
	return err
}

// Reset implements auth.ThrottleStore with one DELETE.
func (t *Throttle) Reset(ctx context.Context, key string) error {
	err := t.s.writeOne(ctx, func(w *wtx) error {
		_, err := w.exec(thrReset, key)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlitestore: reset: %w", err)
	}
	return nil
}

// Settle implements auth.BatchThrottleStore in one write transaction: a
// Release or a DELETE (Reset) per key.
func (t *Throttle) Settle(ctx context.Context, keys []auth.Settlement) error {
	if len(keys) == 0 {
		return nil
	}
	err := t.s.write(ctx, func(w *wtx) error {
		for _, k := range keys {
			var err error
			if k.Reset {
				_, err = w.exec(thrReset, k.Key)
			} else {
				err = release(w, k.Key, k.Reservation)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlitestore: settle: %w", err)
	}
	return nil
}

// Peek implements auth.ThrottleStore with one SELECT.
func (t *Throttle) Peek(ctx context.Context, key string, now time.Time, lim auth.Limit) (auth.State, error) {
	if err := t.s.ready(ctx); err != nil {
		return auth.State{}, err
	}
	rec, err := record(t.s.reads.queryRow(ctx, thrGet, key))
	if err != nil {
		return auth.State{}, fmt.Errorf("sqlitestore: peek: %w", err)
	}
	return auth.StateOf(rec, now, lim), nil
}

// Sweep deletes every record forgotten at now (under the limit of its last
// write) and returns how many it deleted. Reserve sweeps now and then; a
// host may also call Sweep periodically.
func (t *Throttle) Sweep(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := t.s.writeOne(ctx, func(w *wtx) error {
		res, err := w.exec(thrSweep, micros(now), nil, -1)
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlitestore: sweep throttle: %w", err)
	}
	return n, nil
}

// Len returns the number of throttle records stored, forgotten or not.
func (t *Throttle) Len(ctx context.Context) (int, error) {
	if err := t.s.ready(ctx); err != nil {
		return 0, err
	}
	var n int
	if err := t.s.db.QueryRowContext(ctx, `SELECT count(*) FROM guard_throttle`).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlitestore: count throttle records: %w", err)
	}
	return n, nil
}
