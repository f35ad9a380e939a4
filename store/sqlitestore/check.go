package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	sqlite3 "modernc.org/sqlite/lib"
)

// fixDSN is how to set what checkHostDB looks for.
const fixDSN = "open the *sql.DB with DSN(path), or add _pragma=busy_timeout(5000)&_pragma=journal_mode(WAL) to its DSN"

// checkHostDB returns ErrBadDSN unless every connection of the host's db
// it can see is on a database file in WAL mode with a busy timeout, and
// ErrReadOnly if one is query_only. The settings of a connection come
// from the DSN when it is opened, and may have been changed since on one
// connection by a PRAGMA of the host: checkHostDB holds every idle
// connection of the pool and one more, which the pool opens afresh (unless
// it is at its limit), so that both kinds are checked. It reads only.
func checkHostDB(ctx context.Context, db *sql.DB) error {
	st := db.Stats()
	n := st.Idle + 1
	if st.MaxOpenConnections > 0 && n > st.MaxOpenConnections {
		n = st.MaxOpenConnections
	}
	n = min(n, maxConns)
	conns := make([]*sql.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			c.Close()
		}
	}()
	for i := range n {
		cctx, cancel := ctx, context.CancelFunc(func() {})
		if i > 0 {
			// The host may hold the others: check those we get.
			cctx, cancel = context.WithTimeout(ctx, time.Second)
		}
		c, err := db.Conn(cctx)
		cancel()
		if err != nil {
			if i > 0 {
				break
			}
			return classify(err)
		}
		conns = append(conns, c)
	}
	for _, c := range conns {
		if err := checkConn(ctx, c); err != nil {
			return err
		}
	}
	return nil
}

// checkConn checks the settings of one connection (see checkHostDB).
func checkConn(ctx context.Context, c *sql.Conn) error {
	var file, mode string
	var busy, queryOnly int
	if err := c.QueryRowContext(ctx, `SELECT file FROM pragma_database_list WHERE name = 'main'`).Scan(&file); err != nil {
		return classify(err)
	}
	if file == "" {
		return fmt.Errorf("%w: an in-memory or temporary database, of which each connection of the pool has its own and which cannot use WAL; open a database file (use memstore for a database in memory)", ErrBadDSN)
	}
	if err := c.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		return classify(err)
	}
	if mode != "wal" {
		return fmt.Errorf("%w: journal mode %q, not WAL (file %s): %s", ErrBadDSN, mode, file, fixDSN)
	}
	if err := c.QueryRowContext(ctx, `PRAGMA busy_timeout`).Scan(&busy); err != nil {
		return classify(err)
	}
	if busy <= 0 {
		return fmt.Errorf("%w: a connection has no busy timeout (file %s): %s (a PRAGMA run with db.Exec sets one connection only)", ErrBadDSN, file, fixDSN)
	}
	if err := c.QueryRowContext(ctx, `PRAGMA query_only`).Scan(&queryOnly); err != nil {
		return classify(err)
	}
	if queryOnly != 0 {
		return fmt.Errorf("%w: a connection is query_only (file %s)", ErrReadOnly, file)
	}
	return nil
}

// checkWritable returns ErrReadOnly if db cannot be written: SQLite opens
// a database read-only for mode=ro, query_only, or a file or directory
// the process may not write, and says so only at the first write. It sets
// user_version to its own value in a transaction that it rolls back, so
// nothing is written; BEGIN IMMEDIATE waits (up to the busy timeout) for
// a writer of another connection or process.
func checkWritable(ctx context.Context, db *sql.DB) error {
	c, err := db.Conn(ctx)
	if err != nil {
		return classify(err)
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		discardIfInTx(c)
		return writeErr(err)
	}
	defer rollback(c)
	var v int64
	if err := c.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&v); err != nil {
		return classify(err)
	}
	if _, err := c.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, v)); err != nil {
		return writeErr(err)
	}
	return nil
}

// writeErr maps a read-only database to ErrReadOnly.
func writeErr(err error) error {
	if sqliteCode(err) == sqlite3.SQLITE_READONLY {
		return fmt.Errorf("%w: %w", ErrReadOnly, err)
	}
	return wrapErr("checking the database is writable", err)
}
