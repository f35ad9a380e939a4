package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/guardhq/guard/auth"
)

// Throttle is the PostgreSQL auth.ThrottleStore and auth.BatchThrottleStore.
// Reserve is one INSERT … ON CONFLICT DO UPDATE statement that applies
// auth.Limit.Apply (as the SQL function throttle_apply) to the row it holds
// locked, so N concurrent attempts on one key, from any number of
// replicas, never get more than Limit.Max reservations between two locks.
// Release is one call of throttle_give_back (auth.Record.GiveBack on the
// row it locks), Reset one DELETE.
//
// ReserveAll is one statement calling the SQL function throttle_reserve2,
// which runs that INSERT for each key in the order given; Settle is one
// call of throttle_settle2, a throttle_give_back (Release) or a DELETE
// (Reset) per key in the order given. Rows stay locked to the end of the
// call; callers list the keys they share in the same order (the facade
// lists a client IP before an account). The deletion of forgotten records
// (below) can still, under extreme churn, let PostgreSQL find a deadlock
// between two calls and abort one: that call changed nothing and is made
// again (up to three times; TestThrottleBatchRacesGC provokes it with
// records forgotten a microsecond after they are written and garbage
// ThrottleGCGrace later). Every method but Peek needs schema version 20
// (the row keeps its last_us before its last Reserve, for the give-back);
// Peek works on every version.
//
// A Release leaves the time a row is forgotten at (expires_us) as its
// last Reserve set it: GiveBack never makes a record forgotten later, so
// the row may only outlive its record a little; a permanent lock that
// Release lifts leaves the row kept until the key's next Reserve or
// Reset.
//
// Each Reserve or ReserveAll also deletes up to GCBatch records that were
// forgotten ThrottleGCGrace or more before its now (skipping rows other
// transactions hold, and the call's own keys), so forgotten records do
// not pile up: every call adds at most one row per key and removes up to
// GCBatch. Records are still judged at the caller's now: one forgotten at
// it starts again from zero, however recent; only its deletion waits for
// the grace, so that a replica whose clock is behind the others' by less
// than ThrottleGCGrace still finds every record that is live by its own
// clock (its failure counts and locks). ReserveAll does that deletion in
// a CTE of its statement (throttle_reserve2 is called with no GC of its
// own), which PostgreSQL runs after the function, as the function's own
// GC ran after its keys, so the key order above is unchanged.
//
// Times are kept to the microsecond, erring on the side of remembering:
// ResetAfter, LockFor and MaxLockFor are rounded up to the microsecond.
// throttle_apply takes one now, which it compares with the stored times
// and counts an attempt and a lock from; the store passes it truncated (so
// the comparisons are exact) and, when that drops digits, lengthens
// ResetAfter, LockFor and MaxLockFor by the microsecond dropped, so that
// neither a count nor a lock ends before now plus its length. Such a lock
// may end a few microseconds late, as what was added doubles with it
// (less than 2^n µs late for lock number n, 2 µs once at MaxLockFor).
type Throttle struct {
	pool *pgxpool.Pool
	sql  throttleSQL
}

var _ auth.BatchThrottleStore = (*Throttle)(nil)

// ThrottleGCGrace is how long after it is forgotten, judged by the now a
// Reserve or ReserveAll is given, a throttle record becomes garbage that
// they delete. A replica whose clock is behind the others' by less than
// ThrottleGCGrace thus still finds every record that is live by its own
// clock: its next attempt counts on from the failures before, and a lock
// lasts its length. The grace does not change what a caller sees: a
// record forgotten at the now given starts again from zero.
const ThrottleGCGrace = 5 * time.Minute

// GCBatch is the most forgotten throttle records one Reserve deletes, and
// the most expired rows one MFA.PutCode, MFA.Hit or MFA.CreateTransaction
// deletes.
const GCBatch = 8

type throttleSQL struct {
	reserve, reserveAll, settle, release, reset, peek, count string
}

func newThrottleSQL(q string) throttleSQL {
	s := func(sql string) string { return schemaSQL(q, sql) }
	return throttleSQL{
		// Reserve is the INSERT that throttle_reserve2 runs (schema
		// version 20); $8 is now less ThrottleGCGrace.
		reserve: s(`WITH gc AS (
				DELETE FROM {s}.throttle WHERE ctid = ANY (ARRAY(
					SELECT ctid FROM {s}.throttle
					WHERE expires_us <= $8 AND key <> $1
					ORDER BY expires_us
					LIMIT ` + strconv.Itoa(GCBatch) + `
					FOR UPDATE SKIP LOCKED)))
			INSERT INTO {s}.throttle AS t (key, failures, last_us, locked_until_us, lockouts, permanent, expires_us,
				res_allowed, res_failures, res_locks)
			SELECT $1, a.* FROM {s}.throttle_apply(false, 0, NULL, NULL, 0, false, $2, $3, $4, $5, $6, $7) a
			ON CONFLICT (key) DO UPDATE SET (failures, last_us, locked_until_us, lockouts, permanent, expires_us,
				res_allowed, res_failures, res_locks) = (
				SELECT a.* FROM {s}.throttle_apply(true, t.failures, t.last_us, t.locked_until_us, t.lockouts, t.permanent,
					$2, $3, $4, $5, $6, $7) a),
				res_prev_last_us = t.last_us
			RETURNING res_allowed, res_failures, res_locks, locked_until_us, permanent, lockouts, last_us, res_prev_last_us`),
		// ReserveAll's GC is a CTE the SELECT does not read, so it runs
		// after throttle_reserve2 (called with no GC of its own), as that
		// function's GC did; $8 is now less ThrottleGCGrace.
		reserveAll: s(`WITH gc AS (
				DELETE FROM {s}.throttle WHERE ctid = ANY (ARRAY(
					SELECT ctid FROM {s}.throttle
					WHERE expires_us <= $8 AND key <> ALL ($1)
					ORDER BY expires_us
					LIMIT ` + strconv.Itoa(GCBatch) + `
					FOR UPDATE SKIP LOCKED)))
			SELECT r_allowed, r_failures, r_locks, r_locked_until_us, r_permanent, r_lockouts, r_last_us, r_prev_last_us
			FROM {s}.throttle_reserve2($1, $2, $3, $4, $5, $6, $7, 0)`),
		settle:  s(`SELECT {s}.throttle_settle2($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`),
		release: s(`SELECT {s}.throttle_give_back($1, $2, $3, $4, $5, $6, $7, $8, $9)`),
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

// applyArgs returns the now, ResetAfter (µs), LockFor and MaxLockFor (ns)
// that throttle_apply takes for an attempt at now under lim: now truncated
// to the microsecond, which throttle_apply compares with the stored times
// exactly, and the durations rounded up to the microsecond plus the part
// of a microsecond truncated from now, if any, so that what throttle_apply
// counts from now never ends before the exact now plus its length.
func applyArgs(now time.Time, lim auth.Limit) (nowUs, resetUs, lockForNs, maxLockNs int64) {
	nowUs = micros(now)
	pad := microsUp(now) - nowUs
	ns := func(d time.Duration) int64 { return min(ceilMicros(d)+pad, math.MaxInt64/1000) * 1000 }
	return nowUs, ceilMicros(lim.ResetAfter) + pad, ns(lim.LockFor), ns(lim.MaxLockFor)
}

// clampInt32 returns n within the range of a PostgreSQL integer.
func clampInt32(n int) int32 {
	return int32(max(math.MinInt32, min(n, math.MaxInt32)))
}

// reservation is the result of one key of Reserve or ReserveAll as the
// database returns it.
type reservation struct {
	allowed, locks, permanent       bool
	failures, lockouts              int32
	lockedUntil, lastUs, prevLastUs *int64
}

func (r *reservation) dest() []any {
	return []any{&r.allowed, &r.failures, &r.locks, &r.lockedUntil, &r.permanent, &r.lockouts, &r.lastUs, &r.prevLastUs}
}

func (r *reservation) get() auth.Reservation {
	res := auth.Reservation{Allowed: r.allowed, Failures: int(r.failures), Locks: r.locks, Permanent: r.permanent, Lockouts: int(r.lockouts)}
	if r.allowed {
		res.Last, res.PrevLast = fromNullMicros(r.lastUs), fromNullMicros(r.prevLastUs)
	}
	// An attempt that was counted without starting a lock reports no lock,
	// though the record keeps the end of an earlier one.
	if !r.permanent && (!r.allowed || r.locks) {
		res.LockedUntil = fromNullMicros(r.lockedUntil)
	}
	return res
}

// Reserve implements auth.ThrottleStore in one statement, which also
// deletes up to GCBatch other records forgotten ThrottleGCGrace or more
// before now.
func (s *Throttle) Reserve(ctx context.Context, key string, now time.Time, lim auth.Limit) (auth.Reservation, error) {
	var r reservation
	at, reset, lockFor, maxLock := applyArgs(now, lim)
	err := retryDeadlock(func() error {
		return s.pool.QueryRow(ctx, s.sql.reserve, []byte(key), at,
			clampInt32(lim.Max), reset, lockFor, maxLock, clampInt32(lim.PermanentAfter), gcCutoff(at, ThrottleGCGrace),
		).Scan(r.dest()...)
	})
	if err != nil {
		return auth.Reservation{}, wrap("throttle: reserve", err)
	}
	return r.get(), nil
}

// ReserveAll implements auth.BatchThrottleStore in one statement, a call
// of throttle_reserve2 (schema version 20).
func (s *Throttle) ReserveAll(ctx context.Context, now time.Time, keys []auth.ThrottleKey) ([]auth.Reservation, error) {
	if len(keys) == 0 {
		return []auth.Reservation{}, nil
	}
	var (
		n                         = len(keys)
		names                     = make([][]byte, n)
		maxes, permanentAfter     = make([]int32, n), make([]int32, n)
		resetUs, lockFor, maxLock = make([]int64, n), make([]int64, n), make([]int64, n)
	)
	var at int64
	for i, k := range keys {
		names[i] = []byte(k.Key)
		maxes[i], permanentAfter[i] = clampInt32(k.Limit.Max), clampInt32(k.Limit.PermanentAfter)
		at, resetUs[i], lockFor[i], maxLock[i] = applyArgs(now, k.Limit)
	}
	var out []auth.Reservation
	err := retryDeadlock(func() error {
		rows, err := s.pool.Query(ctx, s.sql.reserveAll, names, at, maxes, resetUs, lockFor, maxLock, permanentAfter,
			gcCutoff(at, ThrottleGCGrace))
		if err != nil {
			return err
		}
		out = make([]auth.Reservation, 0, n)
		var r reservation
		_, err = pgx.ForEachRow(rows, r.dest(), func() error {
			out = append(out, r.get())
			return nil
		})
		return err
	})
	if err != nil {
		return nil, wrap("throttle: reserve", err)
	}
	if len(out) == 0 || len(out) > n {
		return nil, fmt.Errorf("pgstore: throttle: reserve: %d reservations for %d keys", len(out), n)
	}
	return out, nil
}

// Release implements auth.ThrottleStore in one statement, a call of
// throttle_give_back.
func (s *Throttle) Release(ctx context.Context, key string, res auth.Reservation) error {
	if !res.Allowed {
		return nil // nothing was counted
	}
	g := giveBackArgs(res)
	err := retryDeadlock(func() error {
		_, err := s.pool.Exec(ctx, s.sql.release, []byte(key), g.allowed, g.failures, g.locks, g.lockouts,
			g.lockedUntil, g.permanent, g.last, g.prevLast)
		return err
	})
	if err != nil {
		return wrap("throttle: release", err)
	}
	return nil
}

// giveBack is a reservation as throttle_give_back takes it.
type giveBack struct {
	allowed, locks, permanent   bool
	failures, lockouts          int32
	lockedUntil, last, prevLast *int64
}

func giveBackArgs(r auth.Reservation) giveBack {
	return giveBack{allowed: r.Allowed, locks: r.Locks, permanent: r.Permanent,
		failures: clampInt32(r.Failures), lockouts: clampInt32(r.Lockouts),
		lockedUntil: nullMicros(r.LockedUntil), last: nullMicros(r.Last), prevLast: nullMicros(r.PrevLast)}
}

// Reset implements auth.ThrottleStore.
func (s *Throttle) Reset(ctx context.Context, key string) error {
	err := retryDeadlock(func() error {
		_, err := s.pool.Exec(ctx, s.sql.reset, []byte(key))
		return err
	})
	if err != nil {
		return wrap("throttle: reset", err)
	}
	return nil
}

// Settle implements auth.BatchThrottleStore in one statement.
func (s *Throttle) Settle(ctx context.Context, keys []auth.Settlement) error {
	if len(keys) == 0 {
		return nil
	}
	n := len(keys)
	var (
		names                     = make([][]byte, n)
		reset, allowed            = make([]bool, n), make([]bool, n)
		locks, permanent          = make([]bool, n), make([]bool, n)
		failures, lockouts        = make([]int32, n), make([]int32, n)
		lockedUntil, last, before = make([]*int64, n), make([]*int64, n), make([]*int64, n)
	)
	for i, k := range keys {
		g := giveBackArgs(k.Reservation)
		names[i], reset[i], allowed[i], locks[i], permanent[i] = []byte(k.Key), k.Reset, g.allowed, g.locks, g.permanent
		failures[i], lockouts[i], lockedUntil[i], last[i], before[i] = g.failures, g.lockouts, g.lockedUntil, g.last, g.prevLast
	}
	err := retryDeadlock(func() error {
		_, err := s.pool.Exec(ctx, s.sql.settle, names, reset, allowed, failures, locks, lockouts, lockedUntil, permanent, last, before)
		return err
	})
	if err != nil {
		return wrap("throttle: settle", err)
	}
	return nil
}

// deadlockRetries is how many times a throttle call that PostgreSQL chose
// as a deadlock's victim is made again.
const deadlockRetries = 3

// retryDeadlock calls f again, up to deadlockRetries times, while it fails
// with a deadlock. A multi-key call holds its keys' rows while it takes
// the next and while it deletes forgotten records (skipping locked rows);
// under heavy churn of records that are forgotten as soon as they are
// written (a ResetAfter of microseconds) PostgreSQL can still find a
// cycle between two calls and abort one, whose statement then changed
// nothing, so making it again is safe. A single-key call waiting for a
// row that such a call holds can be the victim too (a Reset in
// TestThrottleBatchRacesGC, once, in CI under -race): every call that
// writes is made through retryDeadlock.
func retryDeadlock(f func() error) error {
	for i := 0; ; i++ {
		err := f()
		if code, _ := pgCode(err); code != codeDeadlock || i == deadlockRetries {
			return err
		}
	}
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
