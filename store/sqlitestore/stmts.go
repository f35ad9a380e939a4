package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// statements are the Store's prepared statements on the database pool
// (database/sql prepares each once per connection and keeps it).
// Statements that run inside a write transaction are on the transaction's
// connection instead; see the write methods.
type statements struct {
	list []*sql.Stmt

	// sessions
	sessLookup *sql.Stmt
	sessTouch  *sql.Stmt
	sessDelete *sql.Stmt
	sessByUser *sql.Stmt
	sessDelAll *sql.Stmt

	// users
	userByID    *sql.Stmt
	userByEmail *sql.Stmt
	userList    *sql.Stmt
	userDelete  *sql.Stmt
	userStatus  *sql.Stmt
	userRehash  *sql.Stmt
	userLogin   *sql.Stmt

	// throttle
	thrGet     *sql.Stmt
	thrRelease *sql.Stmt
	thrReset   *sql.Stmt

	// audit
	audHead       *sql.Stmt
	audCheckpoint *sql.Stmt

	// tenants
	tenGet    *sql.Stmt
	tenList   *sql.Stmt
	tenCreate *sql.Stmt
}

const sessionCols = `tenant, user_id, created_at, last_seen, expires_at, idle_timeout, ip, user_agent, flags`

const userCols = `tenant, id, email, name, status, password_hash, password_history, password_changed_at, created_at, last_login_at`

const throttleCols = `failures, last, locked_until, lockouts, permanent`

const tenantCols = `id, name, policy, version, created_at`

func prepareStatements(ctx context.Context, db *sql.DB) (*statements, error) {
	st := new(statements)
	var err error
	prep := func(dst **sql.Stmt, q string) {
		if err != nil {
			return
		}
		var s *sql.Stmt
		s, err = db.PrepareContext(ctx, q)
		if err != nil {
			err = fmt.Errorf("sqlitestore: prepare %q: %w", q, err)
			return
		}
		*dst = s
		st.list = append(st.list, s)
	}
	prep(&st.sessLookup, `SELECT `+sessionCols+` FROM guard_sessions WHERE hash = ?`)
	prep(&st.sessTouch, `UPDATE guard_sessions SET last_seen = max(last_seen, ?2) WHERE hash = ?1`)
	prep(&st.sessDelete, `DELETE FROM guard_sessions WHERE hash = ? RETURNING `+sessionCols)
	prep(&st.sessByUser, `SELECT hash, `+sessionCols+` FROM guard_sessions WHERE tenant = ? AND user_id = ? ORDER BY created_at, hash`)
	prep(&st.sessDelAll, `DELETE FROM guard_sessions WHERE tenant = ?1 AND user_id = ?2 AND (?3 IS NULL OR hash <> ?3) RETURNING hash, `+sessionCols)

	prep(&st.userByID, `SELECT `+userCols+` FROM guard_users WHERE tenant = ? AND id = ?`)
	prep(&st.userByEmail, `SELECT `+userCols+` FROM guard_users WHERE tenant = ? AND email = ?`)
	prep(&st.userList, `SELECT `+userCols+` FROM guard_users WHERE tenant = ? AND id > ? ORDER BY id LIMIT ?`)
	prep(&st.userDelete, `DELETE FROM guard_users WHERE tenant = ? AND id = ?`)
	prep(&st.userStatus, `UPDATE guard_users SET status = ? WHERE tenant = ? AND id = ?`)
	prep(&st.userRehash, `UPDATE guard_users SET password_hash = ?4 WHERE tenant = ?1 AND id = ?2 AND password_hash = ?3`)
	prep(&st.userLogin, `UPDATE guard_users SET last_login_at = ?3 WHERE tenant = ?1 AND id = ?2 RETURNING `+userCols)

	prep(&st.thrGet, `SELECT `+throttleCols+` FROM guard_throttle WHERE key = ?`)
	prep(&st.thrRelease, `UPDATE guard_throttle SET failures = failures - 1 WHERE key = ? AND failures > 0`)
	prep(&st.thrReset, `DELETE FROM guard_throttle WHERE key = ?`)

	prep(&st.audHead, `SELECT seq, mac FROM guard_audit_heads WHERE tenant = ?`)
	prep(&st.audCheckpoint, `SELECT cp_seq, cp_mac, cp_at, cp_hmac FROM guard_audit_heads WHERE tenant = ?`)

	prep(&st.tenGet, `SELECT `+tenantCols+` FROM guard_tenants WHERE id = ?`)
	prep(&st.tenList, `SELECT `+tenantCols+` FROM guard_tenants WHERE id > ? ORDER BY id LIMIT ?`)
	prep(&st.tenCreate, `INSERT INTO guard_tenants (`+tenantCols+`) VALUES (?, ?, ?, 1, ?) ON CONFLICT (id) DO NOTHING`)
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
