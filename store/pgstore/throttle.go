package pgstore

import (
	"context"
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/guardhq/guard/auth"
)

// Throttle is the PostgreSQL auth.ThrottleStore. Reserve is one
// INSERT … ON CONFLICT DO UPDATE statement that applies auth.Limit.Apply
// (as the SQL function throttle_apply) to the row it holds locked, so N
// concurrent attempts on one key, from any number of replicas, never get
// more than Limit.Max reservations between two locks.
//
// Each Reserve also deletes up to GCBatch records that are forgotten at its
// now (skipping rows other transactions hold), so forgotten records do not
// pile up: every call adds at most one row and removes up to GCBatch.
//
// Times are kept to the microsecond: a now with finer digits is truncated,
// ResetAfter is rounded up and lock durations down to the microsecond.
type Throttle struct {
	pool *pgxpool.Pool
	sql  throttleSQL
}

var _ auth.ThrottleStore = (*Throttle)(nil)

// GCBatch is the most forgotten throttle records one Reserve deletes, and
// the most expired rows one MFA.PutCode, MFA.Hit or MFA.CreateTransaction
// deletes.
const GCBatch = 8

type throttleSQL struct {
	reserve, release, reset, peek, count string
}

func newThrottleSQL(q string) throttleSQL {
	s := func(sql string) string { return schemaSQL(q, sql) }
	return throttleSQL{
		reserve: s(`WITH gc AS (
				DELETE FROM {s}.throttle WHERE key IN (
					SELECT key FROM {s}.throttle
					WHERE expires_us <= $2 AND key <> $1
					ORDER BY expires_us
					LIMIT ` + strconv.Itoa(GCBatch) + `
					FOR UPDATE SKIP LOCKED))
			INSERT INTO {s}.throttle AS t (key, failures, last_us, locked_until_us, lockouts, permanent, expires_us,
				res_allowed, res_failures, res_locks)
			SELECT $1, a.* FROM {s}.throttle_apply(false, 0, NULL, NULL, 0, false, $2, $3, $4, $5, $6, $7) a
			ON CONFLICT (key) DO UPDATE SET (failures, last_us, locked_until_us, lockouts, permanent, expires_us,
				res_allowed, res_failures, res_locks) = (
				SELECT a.* FROM {s}.throttle_apply(true, t.failures, t.last_us, t.locked_until_us, t.lockouts, t.permanent,
					$2, $3, $4, $5, $6, $7) a)
			RETURNING res_allowed, res_failures, res_locks, locked_until_us, permanent, lockouts`),
		release: s(`UPDATE {s}.throttle SET failures = failures - 1 WHERE key = $1 AND failures > 0`),
		reset:   s(`DELETE FROM {s}.throttle WHERE key = $1`),
		peek:    s(`SELECT failures, last_us, locked_until_us, lockouts, permanent FROM {s}.throttle WHERE key = $1`),
		count:   s(`SELECT count(*) FROM {s}.throttle`),
	}
}

// ceilMicros returns d in microseconds, rounded up.
func ceilMicros(d time.Duration) int64 {
	us := int64(d / time.Microsecond)
	if d%time.Microsecond > 0 {
		us++
	}
	return us
}

// clampInt32 returns n within the range of a PostgreSQL integer.
func clampInt32(n int) int32 {
	return int32(max(math.MinInt32, min(n, math.MaxInt32)))
}

// Reserve implements auth.ThrottleStore in one statement.
func (s *Throttle) Reserve(ctx context.Context, key string, now time.Time, lim auth.Limit) (auth.Reservation, error) {
	var (
		res             auth.Reservation
		failures        int32
		lockedUntil     *int64
		lockouts        int32
		allowed, locks  bool
		permanentResult bool
	)
	err := s.pool.QueryRow(ctx, s.sql.reserve, []byte(key), micros(now),
		clampInt32(lim.Max), ceilMicros(lim.ResetAfter), int64(lim.LockFor), int64(lim.MaxLockFor), clampInt32(lim.PermanentAfter),
	).Scan(&allowed, &failures, &locks, &lockedUntil, &permanentResult, &lockouts)
	if err != nil {
		return auth.Reservation{}, wrap("throttle: reserve", err)
	}
	res = auth.Reservation{Allowed: allowed, Failures: int(failures), Locks: locks, Permanent: permanentResult, Lockouts: int(lockouts)}
	// An attempt that was counted without starting a lock reports no lock,
	// though the record keeps the end of an earlier one.
	if !permanentResult && (!allowed || locks) {
		res.LockedUntil = fromNullMicros(lockedUntil)
	}
	return res, nil
}

// Release implements auth.ThrottleStore.
func (s *Throttle) Release(ctx context.Context, key string) error {
	if _, err := s.pool.Exec(ctx, s.sql.release, []byte(key)); err != nil {
		return wrap("throttle: release", err)
	}
	return nil
}

// Reset implements auth.ThrottleStore.
func (s *Throttle) Reset(ctx context.Context, key string) error {
	if _, err := s.pool.Exec(ctx, s.sql.reset, []byte(key)); err != nil {
		return wrap("throttle: reset", err)
	}
	return nil
}

// Peek implements auth.ThrottleStore. It only reads; the state is
// auth.StateOf the stored record.
func (s *Throttle) Peek(ctx context.Context, key string, now time.Time, lim auth.Limit) (auth.State, error) {
	var (
		r                  auth.Record
		failures, lockouts int32
		last, lockedUntil  *int64
	)
	err := s.pool.QueryRow(ctx, s.sql.peek, []byte(key)).Scan(&failures, &last, &lockedUntil, &lockouts, &r.Permanent)
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.State{}, nil
	}
	if err != nil {
		return auth.State{}, wrap("throttle: peek", err)
	}
	r.Failures, r.Lockouts = int(failures), int(lockouts)
	r.Last, r.LockedUntil = fromNullMicros(last), fromNullMicros(lockedUntil)
	return auth.StateOf(r, now.Truncate(time.Microsecond), lim), nil
}

// Len returns the number of throttle records stored, forgotten or not
// (for tests and monitoring).
func (s *Throttle) Len(ctx context.Context) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, s.sql.count).Scan(&n); err != nil {
		return 0, wrap("throttle: count", err)
	}
	return n, nil
}
