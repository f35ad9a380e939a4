package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// statements are the Store's prepared statements: one set on the database
// pool for reads (database/sql prepares each once per connection and keeps
// it), one on the writer's connection for everything that writes.
type statements struct {
	list []*sql.Stmt

	// transaction control, on the writer only
	begin    *sql.Stmt
	commit   *sql.Stmt
	rollback *sql.Stmt

	// sessions
	sessLookup *sql.Stmt
	sessTouch  *sql.Stmt
	sessDelete *sql.Stmt
	sessByUser *sql.Stmt
	sessDelAll *sql.Stmt
	sessInsert *sql.Stmt
	sessOthers *sql.Stmt
	sessDelOne *sql.Stmt
	sessExpire *sql.Stmt

	// users
	userByID    *sql.Stmt
	userByEmail *sql.Stmt
	userList    *sql.Stmt
	userDelete  *sql.Stmt
	userStatus  *sql.Stmt
	userRehash  *sql.Stmt
	userLogin   *sql.Stmt
	userInsert  *sql.Stmt
	userEmailIn *sql.Stmt
	userPwGet   *sql.Stmt
	userPwSet   *sql.Stmt

	// throttle
	thrGet     *sql.Stmt
	thrRelease *sql.Stmt
	thrReset   *sql.Stmt
	thrUpsert  *sql.Stmt
	thrSweep   *sql.Stmt

	// audit
	audHead       *sql.Stmt
	audCheckpoint *sql.Stmt
	audMoveHead   *sql.Stmt
	audNewHead    *sql.Stmt
	audInsert     [insertSizes]*sql.Stmt // [k] inserts 1<<k events
	audCpSeq      *sql.Stmt
	audPurge      *sql.Stmt
	audPurgeHead  *sql.Stmt
	audPurgeNew   *sql.Stmt

	// tenants
	tenGet    *sql.Stmt
	tenList   *sql.Stmt
	tenCreate *sql.Stmt
	tenSet    *sql.Stmt
	tenExists *sql.Stmt
}

const sessionCols = `tenant, user_id, created_at, last_seen, expires_at, idle_timeout, ip, user_agent, flags`

const userCols = `tenant, id, email, name, status, password_hash, password_history, password_changed_at, created_at, last_login_at`

const throttleCols = `failures, last, locked_until, lockouts, permanent`

const tenantCols = `id, name, policy, version, created_at`

// preparer is a *sql.DB or a *sql.Conn.
type preparer interface {
	PrepareContext(ctx context.Context, query string) (*sql.Stmt, error)
}

// prepareStatements prepares every statement on p, and for a writer the
// transaction control statements too.
func prepareStatements(ctx context.Context, p preparer, writer bool) (*statements, error) {
	st := new(statements)
	var err error
	prep := func(dst **sql.Stmt, q string) {
		if err != nil {
			return
		}
		var s *sql.Stmt
		s, err = p.PrepareContext(ctx, q)
		if err != nil {
			err = fmt.Errorf("sqlitestore: prepare %q: %w", q, err)
			return
		}
		*dst = s
		st.list = append(st.list, s)
	}
	if writer {
		prep(&st.begin, `BEGIN IMMEDIATE`)
		prep(&st.commit, `COMMIT`)
		prep(&st.rollback, `ROLLBACK`)
	}

	prep(&st.sessLookup, `SELECT `+sessionCols+` FROM guard_sessions WHERE hash = ?`)
	prep(&st.sessTouch, `UPDATE guard_sessions SET last_seen = max(last_seen, ?2) WHERE hash = ?1`)
	prep(&st.sessDelete, `DELETE FROM guard_sessions WHERE hash = ? RETURNING `+sessionCols)
	prep(&st.sessByUser, `SELECT hash, `+sessionCols+` FROM guard_sessions WHERE tenant = ? AND user_id = ? ORDER BY created_at, hash`)
	prep(&st.sessDelAll, `DELETE FROM guard_sessions WHERE tenant = ?1 AND user_id = ?2 AND (?3 IS NULL OR hash <> ?3) RETURNING hash, `+sessionCols)

	prep(&st.sessInsert, `INSERT INTO guard_sessions (hash, `+sessionCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	prep(&st.sessOthers, `SELECT hash, `+sessionCols+` FROM guard_sessions
		WHERE tenant = ? AND user_id = ? AND hash <> ? ORDER BY created_at, hash`)
	prep(&st.sessDelOne, `DELETE FROM guard_sessions WHERE hash = ?`)
	// Not live at now: now >= expires_at, or now >= last_seen+idle_timeout
	// (compared in nanoseconds, written so that it cannot overflow).
	prep(&st.sessExpire, `DELETE FROM guard_sessions WHERE hash IN (
		SELECT hash FROM guard_sessions WHERE expires_at <= ?1 OR idle_timeout <= (?1 - last_seen) * 1000 LIMIT ?2)`)

	prep(&st.userByID, `SELECT `+userCols+` FROM guard_users WHERE tenant = ? AND id = ?`)
	prep(&st.userByEmail, `SELECT `+userCols+` FROM guard_users WHERE tenant = ? AND email = ?`)
	prep(&st.userList, `SELECT `+userCols+` FROM guard_users WHERE tenant = ? AND id > ? ORDER BY id LIMIT ?`)
	prep(&st.userDelete, `DELETE FROM guard_users WHERE tenant = ? AND id = ?`)
	prep(&st.userStatus, `UPDATE guard_users SET status = ? WHERE tenant = ? AND id = ?`)
	prep(&st.userRehash, `UPDATE guard_users SET password_hash = ?4 WHERE tenant = ?1 AND id = ?2 AND password_hash = ?3`)
	prep(&st.userLogin, `UPDATE guard_users SET last_login_at = ?3 WHERE tenant = ?1 AND id = ?2 RETURNING `+userCols)

	prep(&st.userInsert, `INSERT INTO guard_users (`+userCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`)
	prep(&st.userEmailIn, `SELECT 1 FROM guard_users WHERE tenant = ? AND email = ?`)
	prep(&st.userPwGet, `SELECT password_hash, password_history FROM guard_users WHERE tenant = ? AND id = ?`)
	prep(&st.userPwSet, `UPDATE guard_users SET password_hash = ?, password_history = ?, password_changed_at = ?
		WHERE tenant = ? AND id = ?`)

	prep(&st.thrGet, `SELECT `+throttleCols+` FROM guard_throttle WHERE key = ?`)
	prep(&st.thrRelease, `UPDATE guard_throttle SET failures = failures - 1 WHERE key = ? AND failures > 0`)
	prep(&st.thrReset, `DELETE FROM guard_throttle WHERE key = ?`)

	prep(&st.thrUpsert, `INSERT INTO guard_throttle (key, `+throttleCols+`, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET failures = excluded.failures, last = excluded.last,
			locked_until = excluded.locked_until, lockouts = excluded.lockouts,
			permanent = excluded.permanent, expires_at = excluded.expires_at`)
	prep(&st.thrSweep, `DELETE FROM guard_throttle WHERE key IN (
		SELECT key FROM guard_throttle WHERE expires_at <= ?1 AND key IS NOT ?2 LIMIT ?3)`)

	prep(&st.audHead, `SELECT seq, mac FROM guard_audit_heads WHERE tenant = ?`)
	prep(&st.audCheckpoint, `SELECT cp_seq, cp_mac, cp_at, cp_hmac FROM guard_audit_heads WHERE tenant = ?`)

	// Compare-and-set of the head: the chain continues from it only if it
	// is still the link the batch starts from.
	prep(&st.audMoveHead, `UPDATE guard_audit_heads SET seq = ?1, mac = ?2 WHERE tenant = ?3 AND seq = ?4 AND mac IS ?5`)
	prep(&st.audNewHead, `INSERT INTO guard_audit_heads (tenant, seq, mac) VALUES (?, ?, ?) ON CONFLICT (tenant) DO NOTHING`)
	for k := range st.audInsert {
		prep(&st.audInsert[k], insertEvents(1<<k))
	}
	prep(&st.audCpSeq, `SELECT cp_seq FROM guard_audit_heads WHERE tenant = ?`)
	prep(&st.audPurge, `DELETE FROM guard_audit_events WHERE tenant = ? AND seq <= ?`)
	// When no event is left, the checkpoint is the head.
	prep(&st.audPurgeHead, `UPDATE guard_audit_heads SET cp_seq = ?2, cp_mac = ?3, cp_at = ?4, cp_hmac = ?5,
			seq = CASE WHEN seq <= ?2 THEN ?2 ELSE seq END,
			mac = CASE WHEN seq <= ?2 THEN ?3 ELSE mac END
		WHERE tenant = ?1`)
	prep(&st.audPurgeNew, `INSERT INTO guard_audit_heads (tenant, seq, mac, cp_seq, cp_mac, cp_at, cp_hmac)
		VALUES (?1, ?2, ?3, ?2, ?3, ?4, ?5)`)

	prep(&st.tenGet, `SELECT `+tenantCols+` FROM guard_tenants WHERE id = ?`)
	prep(&st.tenList, `SELECT `+tenantCols+` FROM guard_tenants WHERE id > ? ORDER BY id LIMIT ?`)
	prep(&st.tenCreate, `INSERT INTO guard_tenants (`+tenantCols+`) VALUES (?, ?, ?, 1, ?) ON CONFLICT (id) DO NOTHING`)
	prep(&st.tenSet, `UPDATE guard_tenants SET policy = ?, version = version + 1 WHERE id = ? AND version = ? RETURNING version`)
	prep(&st.tenExists, `SELECT 1 FROM guard_tenants WHERE id = ?`)
	if err != nil {
		st.close()
		return nil, err
	}
	return st, nil
}

func (st *statements) close() error {
	var errs []error
	for _, s := range st.list {
		errs = append(errs, s.Close())
	}
	return errors.Join(errs...)
}
