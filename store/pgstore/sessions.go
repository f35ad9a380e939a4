package pgstore

import (
	"context"
	"errors"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/guardhq/guard/session"
)

// Sessions is the PostgreSQL session.Store, session.UserIndex,
// session.LookupToucher and session.LineageRevoker.
//
// Create is one call of the SQL function session_create, which locks the
// user's row in session_users before it counts, evicts or refuses, so the
// session limit holds exactly across replicas. Rotate and DeleteByUser are
// one call each of session_rotate and session_delete_by_user2, which take
// the same lock first: a rotation, a sign-in and an "end every session"
// of one user run one at a time, so a session rotated meanwhile never
// survives DeleteByUser and never leaves its user over the limit, and
// each sees the tombstones a sign-in left. Delete, of one session by its
// hash, only removes, and takes no user lock. LookupTouch is one
// statement: the per-request check is one round trip, and it writes only
// when LastSeen is due to move and, under a tenant's policy, less than
// session.Config.MaxTouchGap old (an older one is touched by a second
// round trip, Touch, once the policy has let the session through).
// Untouch, which takes back the touch of a request then refused, is one
// UPDATE that compares and sets. DeleteLineage (session.LineageRevoker)
// takes the same user lock as Rotate, then follows the rotation
// tombstones and deletes in a second statement of the same transaction,
// so that no rotation lands between a hop and the delete.
//
// A session that session_create evicts leaves, in the same call, a row in
// session_evictions (hash, user, ends_us), which Lookup and LookupTouch
// read only when the hash names no session; session_rotate leaves one
// too for the session it replaces, whose successor column names the new
// session (NULL for an eviction) and whose end is the new session's
// expiry. Those rows go like dead sessions: the user's next Create and
// DeleteExpired delete them once ended, and DeleteByUser deletes all of
// the user's but the rotation tombstones that lead to the session it
// spares.
type Sessions struct {
	pool *pgxpool.Pool
	sql  sessionSQL
}

var (
	_ session.Store          = (*Sessions)(nil)
	_ session.UserIndex      = (*Sessions)(nil)
	_ session.LookupToucher  = (*Sessions)(nil)
	_ session.LineageRevoker = (*Sessions)(nil)
)

type sessionSQL struct {
	create, lookup, lookupTouch, touch, untouch, delete, rotate, sameHash, tomb string
	listByUser, deleteByUser, deleteExpired, count                              string
	lockLineage, deleteLineage                                                  string
}

const sessionCols = `hash, tenant, user_id, created_us, last_seen_us, expires_us, idle_ns, ip, user_agent, flags`

// tombArm is the tombstone of session $1 as a row of sessionCols (empty
// but for the hash, user and, in the IP column, the successor of a
// rotated session: empty for an evicted one) followed by its end, which
// is NULL in a session's row.
const tombArm = `SELECT hash, tenant, user_id, 0::bigint, 0::bigint, 0::bigint, 0::bigint, coalesce(successor, ''::bytea), ''::bytea,
	0::bigint, ends_us
	FROM {s}.session_evictions WHERE hash = $1`

func newSessionSQL(q string) sessionSQL {
	s := func(sql string) string { return schemaSQL(q, sql) }
	return sessionSQL{
		create: s(`SELECT ` + sessionCols + ` FROM {s}.session_create($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`),
		lookup: s(`SELECT ` + sessionCols + ` FROM {s}.sessions WHERE hash = $1`),
		tomb:   s(`SELECT ends_us, tenant, user_id, coalesce(successor, ''::bytea) FROM {s}.session_evictions WHERE hash = $1`),
		// The session as stored before the touch (or else its tombstone:
		// PostgreSQL stops at the first row, so a session costs no second
		// index probe), and in the same statement the touch if the
		// session is live at $2, its LastSeen is min($3,
		// IdleTimeout/2) or more before $2 (rounded up to the
		// microsecond) and, when $4 > 0, less than $4 microseconds
		// (maxGap, rounded up) before $2. The UPDATE re-checks its
		// condition on the row as it is once locked, so LastSeen never
		// moves back.
		lookupTouch: s(`WITH cur AS (
				SELECT ` + sessionCols + ` FROM {s}.sessions WHERE hash = $1
			), upd AS (
				UPDATE {s}.sessions SET last_seen_us = $2
				WHERE hash = $1 AND $2 < ends_us AND $2 > last_seen_us
					AND $2 - last_seen_us >= (LEAST($3::bigint, idle_ns / 2) + 999) / 1000
					AND ($4::bigint <= 0 OR $2 - last_seen_us < $4::bigint)
			)
			SELECT cur.*, NULL::bigint FROM cur
			UNION ALL ` + tombArm + `
			LIMIT 1`),
		touch: s(`WITH upd AS (
				UPDATE {s}.sessions SET last_seen_us = $2 WHERE hash = $1 AND last_seen_us < $2 RETURNING 1)
			SELECT EXISTS (SELECT 1 FROM upd) OR EXISTS (SELECT 1 FROM {s}.sessions WHERE hash = $1)`),
		// Compare and set: only while LastSeen is still the touch ($2).
		untouch: s(`UPDATE {s}.sessions SET last_seen_us = $3 WHERE hash = $1 AND last_seen_us = $2`),
		delete:  s(`DELETE FROM {s}.sessions WHERE hash = $1 RETURNING ` + sessionCols),
		// False, changing nothing, when $1 is no session or $2 is a
		// tombstone's hash.
		rotate:   s(`SELECT {s}.session_rotate($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`),
		sameHash: s(`SELECT EXISTS (SELECT 1 FROM {s}.sessions WHERE hash = $1)`),
		// The row in session_users of the user of session or tombstone
		// $1 (a hash's user never changes), locked as session_rotate
		// locks it; nothing for an unknown hash.
		lockLineage: s(`INSERT INTO {s}.session_users AS u (tenant, user_id)
			(SELECT tenant, user_id FROM {s}.sessions WHERE hash = $1
				UNION ALL SELECT tenant, user_id FROM {s}.session_evictions WHERE hash = $1
				LIMIT 1)
			ON CONFLICT (tenant, user_id) DO UPDATE SET tenant = u.tenant`),
		// hop walks from $1 over rotation tombstones (those with a
		// successor) of the user of $1's own tombstone, at most $2 of
		// them; the hash it reaches last is deleted if it is a session,
		// of that user when reached through a rotation. A walk that
		// stops at a tombstone (an eviction's, another user's, or the
		// one past $2 hops) or at an unknown hash deletes nothing: a
		// hash is a session or a tombstone, never both.
		deleteLineage: s(`WITH RECURSIVE lineage_user AS (
				SELECT tenant, user_id FROM {s}.session_evictions WHERE hash = $1
			), hop (end_hash, hops) AS (
				SELECT $1::bytea, 0
				UNION ALL
				SELECT e.successor, h.hops + 1 FROM hop h
					JOIN {s}.session_evictions e ON e.hash = h.end_hash
					JOIN lineage_user l ON e.tenant = l.tenant AND e.user_id = l.user_id
					WHERE e.successor IS NOT NULL AND h.hops < $2
			), tail AS (
				SELECT end_hash, hops FROM hop ORDER BY hops DESC LIMIT 1
			)
			DELETE FROM {s}.sessions USING tail
			WHERE hash = tail.end_hash AND (tail.hops = 0 OR (tenant, user_id) IN (SELECT tenant, user_id FROM lineage_user))
			RETURNING ` + sessionCols + `, tail.hops > 0`),
		listByUser: s(`SELECT ` + sessionCols + ` FROM {s}.sessions WHERE tenant = $1 AND user_id = $2 ORDER BY created_us, hash`),
		// The user's tombstones go too, but the lineage of $3.
		deleteByUser: s(`SELECT ` + sessionCols + ` FROM {s}.session_delete_by_user2($1, $2, $3, $4)`),
		deleteExpired: s(`WITH d AS (
				DELETE FROM {s}.sessions WHERE hash IN (
					SELECT hash FROM {s}.sessions WHERE ends_us <= $1 ORDER BY ends_us LIMIT $2 FOR UPDATE SKIP LOCKED)
				RETURNING 1
			), t AS (
				DELETE FROM {s}.session_evictions WHERE hash IN (
					SELECT hash FROM {s}.session_evictions WHERE ends_us <= $1 ORDER BY ends_us LIMIT $2 FOR UPDATE SKIP LOCKED)
				RETURNING 1
			)
			SELECT (SELECT count(*) FROM d), (SELECT count(*) FROM t)`),
		count: s(`SELECT count(*) FROM {s}.sessions`),
	}
}

// sessionArgs returns the column values of sess in sessionCols order.
func sessionArgs(sess *session.Session) []any {
	return []any{sess.Hash[:], []byte(sess.Tenant), []byte(sess.UserID), micros(sess.CreatedAt), micros(sess.LastSeen),
		micros(sess.ExpiresAt), int64(sess.IdleTimeout), []byte(sess.IP), []byte(sess.UserAgent), int64(sess.Flags)}
}

// scanSession reads one row of sessionCols.
func scanSession(row pgx.Row) (session.Session, error) { return scanRow(row, nil) }

// scanLookup reads one row of lookup or lookupTouch: a session, or a
// tombstone (see tombArm), which it returns as an *session.EvictedError
// or an *session.RotatedError.
func scanLookup(row pgx.Row) (session.Session, error) {
	var end pgtype.Int8
	s, err := scanRow(row, &end)
	if err == nil && end.Valid {
		return session.Session{}, tombErr(end.Int64, s.Tenant, s.UserID, []byte(s.IP))
	}
	return s, err
}

// tombErr is the error that reports a tombstone: an
// *session.RotatedError if succ (its successor column) is a hash, an
// *session.EvictedError if it is empty.
func tombErr(end int64, tenant, userID string, succ []byte) error {
	if len(succ) == 0 {
		return &session.EvictedError{EndsAt: fromMicros(end)}
	}
	re := &session.RotatedError{Tenant: tenant, UserID: userID, EndsAt: fromMicros(end)}
	if len(succ) != len(re.Successor) {
		return wrap("sessions: lookup", errCorruptTomb)
	}
	copy(re.Successor[:], succ)
	return re
}

// errCorruptTomb: a tombstone's successor is not a session hash.
var errCorruptTomb = errors.New("pgstore: session tombstone with a malformed successor")

// scanRow reads one row of sessionCols, followed by one more column into
// extra if it is not nil.
func scanRow(row pgx.Row, extra any) (session.Session, error) {
	var (
		s                            session.Session
		created, seen, expires, idle int64
		flags                        int64
	)
	dest := [...]any{(*byteaHash)(&s.Hash), (*byteaString)(&s.Tenant), (*byteaString)(&s.UserID), &created, &seen, &expires,
		&idle, (*byteaString)(&s.IP), (*byteaString)(&s.UserAgent), &flags, extra}
	n := len(dest)
	if extra == nil {
		n--
	}
	if err := row.Scan(dest[:n]...); err != nil {
		return session.Session{}, err
	}
	var err error
	if s.Flags, err = flags32("session", flags); err != nil {
		return session.Session{}, err
	}
	s.CreatedAt = fromMicros(created)
	s.LastSeen = fromMicros(seen)
	s.ExpiresAt = fromMicros(expires)
	s.IdleTimeout = time.Duration(idle)
	return s, nil
}

func collectSessions(rows pgx.Rows) ([]session.Session, error) {
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (session.Session, error) { return scanSession(r) })
}

// Create implements session.Store.
func (s *Sessions) Create(ctx context.Context, n session.Session, lim session.Limit) ([]session.Session, error) {
	args := append(sessionArgs(&n), clampInt32(max(lim.Max, 0)), lim.Policy == session.RefuseNew)
	rows, err := s.pool.Query(ctx, s.sql.create, args...)
	if err != nil {
		return nil, s.createErr(err)
	}
	evicted, err := collectSessions(rows)
	if err != nil {
		return nil, s.createErr(err)
	}
	return evicted, nil
}

func (s *Sessions) createErr(err error) error {
	switch code, _ := pgCode(err); code {
	case codeUniqueViolation:
		return session.ErrDuplicate
	case codeSessionLimit:
		return session.ErrLimit
	}
	return wrap("sessions: create", err)
}

// Lookup implements session.Store: a SELECT by primary key and, only when
// it finds no session, a second one for the tombstone. (LookupTouch, the
// per-request check, is one statement.)
func (s *Sessions) Lookup(ctx context.Context, h session.Hash) (session.Session, error) {
	sess, err := scanSession(s.pool.QueryRow(ctx, s.sql.lookup, h[:]))
	if errors.Is(err, pgx.ErrNoRows) {
		return session.Session{}, s.tombstone(ctx, h, "sessions: lookup")
	}
	if err != nil {
		return session.Session{}, wrap("sessions: lookup", err)
	}
	return sess, nil
}

// LookupTouch implements session.LookupToucher in one statement.
func (s *Sessions) LookupTouch(ctx context.Context, h session.Hash, now time.Time, interval, maxGap time.Duration) (session.Session, error) {
	// maxGap in microseconds, rounded up: for the integer microseconds
	// of a gap g, g < gapUS exactly when g < maxGap.
	gapUS := int64(maxGap / time.Microsecond)
	if maxGap%time.Microsecond > 0 {
		gapUS++
	}
	sess, err := scanLookup(s.pool.QueryRow(ctx, s.sql.lookupTouch, h[:], micros(now), int64(interval), gapUS))
	if errors.Is(err, pgx.ErrNoRows) {
		return session.Session{}, session.ErrNotFound
	}
	if err != nil {
		return session.Session{}, wrap("sessions: lookup and touch", err)
	}
	return sess, nil
}

// Touch implements session.Store: LastSeen only moves forward.
func (s *Sessions) Touch(ctx context.Context, h session.Hash, seen time.Time) error {
	var found bool
	if err := s.pool.QueryRow(ctx, s.sql.touch, h[:], micros(seen)).Scan(&found); err != nil {
		return wrap("sessions: touch", err)
	}
	if !found {
		return session.ErrNotFound
	}
	return nil
}

// Untouch implements session.LookupToucher in one UPDATE, which sets
// LastSeen to prev only while it is touched (compare and set).
func (s *Sessions) Untouch(ctx context.Context, h session.Hash, touched, prev time.Time) error {
	if _, err := s.pool.Exec(ctx, s.sql.untouch, h[:], micros(touched), micros(prev)); err != nil {
		return wrap("sessions: untouch", err)
	}
	return nil
}

// Delete implements session.Store.
func (s *Sessions) Delete(ctx context.Context, h session.Hash) (session.Session, error) {
	sess, err := scanSession(s.pool.QueryRow(ctx, s.sql.delete, h[:]))
	if errors.Is(err, pgx.ErrNoRows) {
		return session.Session{}, session.ErrNotFound
	}
	if err != nil {
		return session.Session{}, wrap("sessions: delete", err)
	}
	return sess, nil
}

// DeleteLineage implements session.LineageRevoker in one round trip: a
// batch of two statements, which pgx runs as one implicit transaction.
// The first locks the row in session_users of h's user (of the session,
// or of the tombstone, h), as session_rotate does; the second walks the
// rotation tombstones from h, at most maxHops, with a recursive query
// and deletes the session at the chain's end (DELETE … RETURNING).
//
// The lock is what keeps rotations out. A single statement that walks
// and deletes reads the chain in its snapshot: a rotation of the session
// at its end that commits while it runs makes its DELETE find the row
// gone, and retrying can lose again, every time, to a client that
// rotates as fast as the store lets it, which is the race
// LineageRevoker exists to end. Every rotation that could move the
// chain's end rotates a session of h's user (a session of another user
// ends the walk with ErrNotFound), and session_rotate locks that user
// first; so from the lock until the commit no rotation of the lineage
// lands, and the second statement, under READ COMMITTED, sees every
// rotation committed before it started, those the lock waited for
// included. Only a removal that takes no user lock (Delete,
// DeleteExpired) can take the session meanwhile: the DELETE then finds
// nothing and the answer is ErrNotFound, as after that removal. (Under
// REPEATABLE READ or SERIALIZABLE, where both statements share one
// snapshot, a rotation that the lock waited for fails the call with a
// serialization error, and nothing is deleted.) The user is locked
// before a session row, as session_rotate locks them, so the two never
// wait for each other in a cycle.
func (s *Sessions) DeleteLineage(ctx context.Context, h session.Hash, maxHops int) (session.Session, bool, error) {
	b := &pgx.Batch{}
	b.Queue(s.sql.lockLineage, h[:])
	b.Queue(s.sql.deleteLineage, h[:], clampInt32(max(maxHops, 0)))
	br := s.pool.SendBatch(ctx, b)
	var (
		sess    session.Session
		rotated bool
	)
	_, err := br.Exec()
	if err == nil {
		sess, err = scanRow(br.QueryRow(), &rotated)
	}
	// Close reads the end of the transaction: a delete counts only once
	// it has committed.
	if cerr := br.Close(); cerr != nil && (err == nil || errors.Is(err, pgx.ErrNoRows)) {
		err = cerr
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return session.Session{}, false, session.ErrNotFound
	}
	if err != nil {
		return session.Session{}, false, wrap("sessions: delete lineage", err)
	}
	return sess, rotated, nil
}

// Rotate implements session.Store in one call of the SQL function
// session_rotate, which locks the user as session_create does, then
// deletes old and inserts n: it inserts nothing if old was absent and
// fails as a whole if n.Hash exists.
func (s *Sessions) Rotate(ctx context.Context, old session.Hash, n session.Session) error {
	if old == n.Hash {
		// A statement would delete and re-insert the row; the contract
		// makes this ErrDuplicate (or ErrNotFound if absent).
		var exists bool
		if err := s.pool.QueryRow(ctx, s.sql.sameHash, old[:]).Scan(&exists); err != nil {
			return wrap("sessions: rotate", err)
		}
		if exists {
			return session.ErrDuplicate
		}
		return session.ErrNotFound
	}
	var rotated bool
	err := s.pool.QueryRow(ctx, s.sql.rotate, append([]any{old[:]}, sessionArgs(&n)...)...).Scan(&rotated)
	if code, _ := pgCode(err); code == codeUniqueViolation {
		return session.ErrDuplicate
	}
	if err != nil {
		return wrap("sessions: rotate", err)
	}
	if !rotated {
		// Nothing changed: old is absent, or n.Hash is a tombstone's.
		// An absent old is ErrNotFound whatever n.Hash is, as Rotate's
		// contract orders them.
		err := s.tombstone(ctx, n.Hash, "sessions: rotate")
		var re *session.RotatedError
		if !errors.Is(err, session.ErrEvicted) && !errors.As(err, &re) {
			return err
		}
		var exists bool
		if err := s.pool.QueryRow(ctx, s.sql.sameHash, old[:]).Scan(&exists); err != nil {
			return wrap("sessions: rotate", err)
		}
		if !exists {
			return session.ErrNotFound
		}
		return session.ErrDuplicate
	}
	return nil
}

// tombstone returns an *session.EvictedError or *session.RotatedError if
// h is the hash of a tombstone, else session.ErrNotFound.
func (s *Sessions) tombstone(ctx context.Context, h session.Hash, op string) error {
	var (
		end          int64
		tenant, user []byte
		succ         []byte
	)
	err := s.pool.QueryRow(ctx, s.sql.tomb, h[:]).Scan(&end, &tenant, &user, &succ)
	switch {
	case err == nil:
		return tombErr(end, string(tenant), string(user), succ)
	case errors.Is(err, pgx.ErrNoRows):
		return session.ErrNotFound
	}
	return wrap(op, err)
}

// ListByUser implements session.UserIndex.
func (s *Sessions) ListByUser(ctx context.Context, tenant, userID string) ([]session.Session, error) {
	rows, err := s.pool.Query(ctx, s.sql.listByUser, []byte(tenant), []byte(userID))
	if err != nil {
		return nil, wrap("sessions: list by user", err)
	}
	out, err := collectSessions(rows)
	if err != nil {
		return nil, wrap("sessions: list by user", err)
	}
	return out, nil
}

// DeleteByUser implements session.UserIndex in one call of the SQL
// function session_delete_by_user2, which locks the user as
// session_create does and finds the rotation tombstones to keep, those
// that lead to except, with a recursive query over the successor column;
// the removed sessions come back oldest first.
func (s *Sessions) DeleteByUser(ctx context.Context, tenant, userID string, except session.Hash) ([]session.Session, error) {
	var exceptArg []byte // NULL: the zero Hash excepts none
	if !except.IsZero() {
		exceptArg = except[:]
	}
	rows, err := s.pool.Query(ctx, s.sql.deleteByUser, []byte(tenant), []byte(userID), exceptArg, int32(session.MaxLineageHops))
	if err != nil {
		return nil, wrap("sessions: delete by user", err)
	}
	out, err := collectSessions(rows)
	if err != nil {
		return nil, wrap("sessions: delete by user", err)
	}
	return out, nil
}

// DeleteExpired deletes at most limit sessions that are not live at now,
// and at most limit tombstones of evicted sessions that ended by now
// (skipping rows that other transactions hold), in one statement, and
// returns how many rows it deleted. Create already removes a user's own
// dead sessions; a host calls DeleteExpired periodically (for example
// every minute with a limit of a few thousand) so that sessions of users
// who never sign in again do not stay in the table.
func (s *Sessions) DeleteExpired(ctx context.Context, now time.Time, limit int) (int, error) {
	if limit <= 0 {
		return 0, nil
	}
	var sessions, tombs int
	if err := s.pool.QueryRow(ctx, s.sql.deleteExpired, micros(now), limit).Scan(&sessions, &tombs); err != nil {
		return 0, wrap("sessions: delete expired", err)
	}
	return sessions + tombs, nil
}

// Len returns the number of sessions stored, live or not (for tests and
// monitoring).
func (s *Sessions) Len(ctx context.Context) (int, error) {
	var n int
	if err := s.pool.QueryRow(ctx, s.sql.count).Scan(&n); err != nil {
		return 0, wrap("sessions: count", err)
	}
	return n, nil
}
