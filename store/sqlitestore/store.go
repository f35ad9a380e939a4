package sqlitestore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	guard "github.com/guardhq/guard"
)

// Errors about the database file and its schema. Compare with errors.Is.
var (
	// ErrNotDatabase: the file is not an SQLite database, or it is
	// corrupt. Nothing was written to it.
	ErrNotDatabase = errors.New("sqlitestore: not an SQLite database or corrupt")
	// ErrForeignSchema: the database holds tables with the names this
	// package uses, but they were not made by it (no schema version is
	// recorded). Nothing was changed.
	ErrForeignSchema = errors.New("sqlitestore: database holds conflicting tables not made by sqlitestore")
	// ErrSchemaTooNew: the schema was migrated by a newer version of this
	// package than the running one. Nothing was changed; upgrade the code.
	ErrSchemaTooNew = errors.New("sqlitestore: schema version is newer than this code knows")
	// ErrNotMigrated: the schema is older than the code (or absent); call
	// Migrate first.
	ErrNotMigrated = errors.New("sqlitestore: schema not migrated (call Migrate)")
	// ErrClosed: the Store was closed.
	ErrClosed = errors.New("sqlitestore: store closed")
)

// BusyTimeout is how long a connection opened by Open (or with DSN) waits
// for the database write lock held by another connection or process before
// it gives up with an error.
const BusyTimeout = 5 * time.Second

// maxConns bounds the connections of a database opened by Open. Writes of
// one Store are serialised in the process before they reach SQLite, so the
// pool serves mostly concurrent readers (WAL lets them run beside the
// writer).
const maxConns = 8

// idleConnTime closes connections of a database opened by Open that have
// been idle that long, so that many Stores (one per ring-fenced tenant) can
// be open at once without holding every file descriptor forever.
const idleConnTime = 5 * time.Minute

// DSN returns the modernc.org/sqlite data source name that Open uses for the
// database file at path: WAL journal, synchronous=NORMAL, foreign keys on, a
// busy timeout of BusyTimeout and BEGIN IMMEDIATE for transactions, set on
// every connection of the pool. A host that opens the *sql.DB itself for New
// should use it (with driver name "sqlite").
func DSN(path string) string {
	return fileURI(path) + "?" + strings.Join([]string{
		fmt.Sprintf("_pragma=busy_timeout(%d)", BusyTimeout.Milliseconds()),
		"_pragma=foreign_keys(1)",
		"_pragma=journal_mode(WAL)",
		"_pragma=mmap_size(268435456)",
		"_pragma=synchronous(NORMAL)",
		"_pragma=temp_store(MEMORY)",
		"_txlock=immediate",
	}, "&")
}

// probeDSN opens path to inspect it: no journal mode change, nothing that
// writes to the file.
func probeDSN(path string) string {
	return fileURI(path) + fmt.Sprintf("?_pragma=busy_timeout(%d)", BusyTimeout.Milliseconds())
}

// fileURI is path as an SQLite URI filename: the characters that URIs
// reserve are percent-encoded, so that any path names the file it says.
func fileURI(path string) string {
	r := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")
	return "file:" + r.Replace(path)
}

// Store is a Guard backend in one SQLite database. Its fields are the
// stores of each interface; Stores returns them for guard.Config. A Store
// is safe for concurrent use, and several Stores (in one process or in
// several) may use one database file at once: every invariant is kept by
// SQLite's write lock.
type Store struct {
	Users    *Users
	Throttle *Throttle
	Sessions *Sessions
	Audit    *Audit
	Tenants  *Tenants

	db        *sql.DB
	own       bool // Close closes db
	immediate bool // the DSN makes BeginTx take the write lock (Open)

	// wgate admits one writer of this Store at a time, so that writers of
	// one process queue here rather than poll SQLite's lock (busy_timeout
	// remains for writers in other Stores and processes).
	wgate chan struct{}

	prepMu sync.Mutex
	stmts  atomic.Pointer[statements]
	closed atomic.Bool
}

// Open opens (creating it if needed) the SQLite database file at path with
// the pragmas of DSN and returns a Store that owns it; Close closes it. It
// does not migrate the schema: call Migrate. Open returns ErrNotDatabase for
// a file that is not an SQLite database or is corrupt, ErrForeignSchema for
// a database whose tables conflict with this package's, and ErrSchemaTooNew
// for a schema newer than this code; in each case nothing in the file was
// changed.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlitestore: Open needs the path of a file, not %q", path)
	}
	// Inspect the file before the pool's connections set WAL mode, which
	// is written into the file.
	probe, err := sql.Open("sqlite", probeDSN(path))
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	probe.SetMaxOpenConns(1)
	_, err = inspect(ctx, probe)
	if cerr := probe.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("sqlitestore: %w", cerr)
	}
	if err != nil {
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	db, err := sql.Open("sqlite", DSN(path))
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(maxConns)
	db.SetMaxIdleConns(maxConns)
	db.SetConnMaxIdleTime(idleConnTime)
	s, err := newStore(ctx, db, true)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("%w (file %s)", err, path)
	}
	return s, nil
}

// New returns a Store on the host's database, which must use the
// modernc.org/sqlite driver; open it with DSN for the recommended pragmas
// (without a busy timeout, writers in other processes fail at once instead
// of waiting for the lock). New does not migrate the schema (call Migrate)
// and Close leaves db open. Errors are those of Open.
func New(db *sql.DB) (*Store, error) {
	if db == nil {
		return nil, errors.New("sqlitestore: New needs a *sql.DB")
	}
	if _, ok := db.Driver().(*sqlite.Driver); !ok {
		return nil, fmt.Errorf("sqlitestore: New needs a database of the modernc.org/sqlite driver, not %T", db.Driver())
	}
	return newStore(context.Background(), db, false)
}

func newStore(ctx context.Context, db *sql.DB, own bool) (*Store, error) {
	if _, err := inspect(ctx, db); err != nil {
		return nil, err
	}
	s := &Store{db: db, own: own, immediate: own, wgate: make(chan struct{}, 1)}
	s.Users = &Users{s: s}
	s.Throttle = &Throttle{s: s, sweepEvery: defaultSweepEvery}
	s.Sessions = &Sessions{s: s, sweepEvery: defaultSweepEvery}
	s.Audit = &Audit{s: s}
	s.Tenants = &Tenants{s: s}
	return s, nil
}

// Stores returns s as the facade's guard.Stores, every field filled.
func (s *Store) Stores() guard.Stores {
	return guard.Stores{
		Users:        s.Users,
		UserUpdates:  s.Users,
		Throttle:     s.Throttle,
		Sessions:     s.Sessions,
		SessionIndex: s.Sessions,
		Audit:        s.Audit,
		Tenants:      s.Tenants,
	}
}

// DB returns the database the Store uses.
func (s *Store) DB() *sql.DB { return s.db }

// Close releases the Store's prepared statements and, when Open opened the
// database, closes it. Calls on a closed Store return ErrClosed.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	s.prepMu.Lock()
	st := s.stmts.Swap(nil)
	s.prepMu.Unlock()
	var errs []error
	if st != nil {
		errs = append(errs, st.close())
	}
	if s.own {
		errs = append(errs, s.db.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlitestore: close: %w", err)
	}
	return nil
}

// ready returns the prepared statements, preparing them on first use once
// the schema is at the version this code knows.
func (s *Store) ready(ctx context.Context) (*statements, error) {
	if st := s.stmts.Load(); st != nil {
		return st, nil
	}
	return s.prepare(ctx)
}

func (s *Store) prepare(ctx context.Context) (*statements, error) {
	s.prepMu.Lock()
	defer s.prepMu.Unlock()
	if s.closed.Load() {
		return nil, ErrClosed
	}
	if st := s.stmts.Load(); st != nil {
		return st, nil
	}
	v, err := inspect(ctx, s.db)
	if err != nil {
		return nil, err
	}
	if v < len(migrations) {
		return nil, fmt.Errorf("%w: schema at version %d, this code needs %d", ErrNotMigrated, v, len(migrations))
	}
	st, err := prepareStatements(ctx, s.db)
	if err != nil {
		return nil, err
	}
	s.stmts.Store(st)
	return st, nil
}

// write runs f in one write transaction that holds the database write
// lock from its start, so that it never has to upgrade a read lock and no
// other writer, in this process or another, runs until it ends. On a
// database opened by Open, BEGIN is BEGIN IMMEDIATE (the DSN says so); on a
// host's database, whose DSN is unknown, the transaction starts with a
// no-op UPDATE, which takes the same lock. f's error rolls everything back
// and is returned as it is; errors of the transaction itself are wrapped.
func (s *Store) write(ctx context.Context, f func(w *wtx) error) error {
	st, err := s.ready(ctx)
	if err != nil {
		return err
	}
	if err := s.lockWrites(ctx); err != nil {
		return err
	}
	defer s.unlockWrites()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return wrapErr("begin", err)
	}
	w := &wtx{ctx: ctx, tx: tx, st: st}
	if !s.immediate {
		if _, err := w.exec(st.lockNoop); err != nil {
			tx.Rollback()
			return wrapErr("begin", err)
		}
	}
	if err := f(w); err != nil {
		tx.Rollback()
		return err
	}
	if err := tx.Commit(); err != nil {
		return wrapErr("commit", err)
	}
	return nil
}

// wtx is a write transaction in progress; its methods run the Store's
// prepared statements in it.
type wtx struct {
	ctx context.Context
	tx  *sql.Tx
	st  *statements
}

func (w *wtx) exec(stmt *sql.Stmt, args ...any) (sql.Result, error) {
	return w.tx.StmtContext(w.ctx, stmt).ExecContext(w.ctx, args...)
}

func (w *wtx) query(stmt *sql.Stmt, args ...any) (*sql.Rows, error) {
	return w.tx.StmtContext(w.ctx, stmt).QueryContext(w.ctx, args...)
}

func (w *wtx) queryRow(stmt *sql.Stmt, args ...any) *sql.Row {
	return w.tx.StmtContext(w.ctx, stmt).QueryRowContext(w.ctx, args...)
}

// exec runs one prepared statement that writes, on its own (autocommit),
// as a writer of this Store.
func (s *Store) exec(ctx context.Context, stmt *sql.Stmt, args ...any) (sql.Result, error) {
	if err := s.lockWrites(ctx); err != nil {
		return nil, err
	}
	defer s.unlockWrites()
	return stmt.ExecContext(ctx, args...)
}

func (s *Store) lockWrites(ctx context.Context) error {
	select {
	case s.wgate <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (s *Store) unlockWrites() { <-s.wgate }

// rollback ends the transaction on c. If that fails, c's state is unknown
// and it is not given back to the pool.
func rollback(c *sql.Conn) {
	if _, err := c.ExecContext(context.Background(), "ROLLBACK"); err != nil {
		_ = c.Raw(func(any) error { return driver.ErrBadConn })
	}
}

// discardIfInTx drops c from the pool after a failed BEGIN, in case the
// BEGIN took effect (cancellation races with it).
func discardIfInTx(c *sql.Conn) {
	_ = c.Raw(func(any) error { return driver.ErrBadConn })
}

// wrapErr wraps an engine error with the package prefix and the step.
func wrapErr(op string, err error) error {
	return fmt.Errorf("sqlitestore: %s: %w", op, err)
}

// sqliteCode returns the primary SQLite result code of err, or 0.
func sqliteCode(err error) int {
	var se *sqlite.Error
	if errors.As(err, &se) {
		return se.Code() & 0xff
	}
	return 0
}

// isConstraint reports whether err is an SQLite constraint violation.
func isConstraint(err error) bool { return sqliteCode(err) == sqlite3.SQLITE_CONSTRAINT }

// Times are stored as Unix microseconds (UTC): the precision every Guard
// package uses, kept exactly. A zero time in a nullable column is NULL.

func micros(t time.Time) int64 { return t.UnixMicro() }

func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

func nullMicros(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMicro()
}

func fromNullMicros(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return fromMicros(n.Int64)
}

// nullBytes stores an empty slice as NULL: nil and empty MACs are equal.
func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}
