package sqlitestore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io/fs"
	"os"
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
	// ErrCannotOpen: SQLite cannot open the database file the DSN names
	// (a directory, a directory that does not exist, no permission).
	// Nothing was written.
	ErrCannotOpen = errors.New("sqlitestore: cannot open the database file")
	// ErrBadDSN: the host's *sql.DB lacks a setting the Store needs on
	// every connection: a database file (not in memory), WAL journal mode
	// and a busy timeout. Open it with DSN. Nothing was written.
	ErrBadDSN = errors.New("sqlitestore: *sql.DB not opened with the settings the Store needs")
	// ErrReadOnly: the database cannot be written (opened read-only, as
	// with mode=ro or query_only, or a file or directory without write
	// permission). Nothing was written.
	ErrReadOnly = errors.New("sqlitestore: database is read-only")
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
// database file at path, with pragmas set on every connection of the pool:
// WAL journal with synchronous=NORMAL (see the package doc for the
// durability this gives), foreign keys on, a busy timeout of BusyTimeout,
// reads through mmap (up to 256 MiB), temporary data in memory, a WAL
// checkpoint every 4000 pages (16 MiB) rather than 1000 (for connections
// other than a Store's writer, whose Store checkpoints for it), and BEGIN
// IMMEDIATE for database/sql transactions. A host that opens the *sql.DB
// itself for New should use it (with driver name "sqlite").
func DSN(path string) string {
	return fileURI(path) + "?" + strings.Join([]string{
		fmt.Sprintf("_pragma=busy_timeout(%d)", BusyTimeout.Milliseconds()),
		"_pragma=foreign_keys(1)",
		"_pragma=journal_mode(WAL)",
		"_pragma=mmap_size(268435456)",
		"_pragma=synchronous(NORMAL)",
		"_pragma=temp_store(MEMORY)",
		"_pragma=wal_autocheckpoint(4000)",
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
	Users     *Users
	Throttle  *Throttle
	Sessions  *Sessions
	Audit     *Audit
	Tenants   *Tenants
	APIKeys   *APIKeys
	MFA       *MFA
	IPLists   *IPLists
	Policies  *Policies
	Approvals *Approvals
	SSO       *SSO

	db  *sql.DB
	own bool // Close closes db

	// wgate admits one writer of this Store at a time, so that writers of
	// one process queue here rather than poll SQLite's lock (busy_timeout
	// remains for writers in other Stores and processes). Its holder owns
	// w, the connection for writes (nil until the first write).
	wgate chan struct{}
	w     *writer

	lookups *lookupPool // connections set aside for Sessions.Lookup
	ckpt    *checkpointer

	reads    *stmtSet // on the pool
	schemaMu sync.Mutex
	schemaOK atomic.Bool // the schema is at the version this code needs
	closed   atomic.Bool
}

// Open opens (creating it if needed) the SQLite database file at path with
// the pragmas of DSN and returns a Store that owns it; Close closes it. A
// file it creates is readable and writable by its owner only (mode 0600,
// which SQLite gives its -wal and -shm files too): it holds password
// hashes and the audit log. The mode of an existing file is left as it
// is. It
// does not migrate the schema: call Migrate. Open returns ErrNotDatabase for
// a file that is not an SQLite database or is corrupt, ErrForeignSchema for
// a database whose tables conflict with this package's, and ErrSchemaTooNew
// for a schema newer than this code; in each case nothing in the file was
// changed. A path that is not a regular file (a directory) gives
// ErrNotDatabase, and a file SQLite cannot open ErrCannotOpen; nothing
// is written to it either. Open only reads, so it never waits for another
// connection's write; a database it cannot write (a read-only file or
// directory) is ErrReadOnly from Migrate.
func Open(ctx context.Context, path string) (*Store, error) {
	if path == "" || path == ":memory:" || strings.HasPrefix(path, "file:") {
		return nil, fmt.Errorf("sqlitestore: Open needs the path of a file, not %q", path)
	}
	// Create a new file before SQLite does, with the umask's mode.
	if f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600); err == nil {
		f.Close()
	} else if !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("sqlitestore: create %s: %w", path, err)
	}
	// A directory (or a device, a FIFO) is no database; SQLite would say
	// only "unable to open database file", or read a device as empty.
	if fi, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	} else if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file (%s)", ErrNotDatabase, path, fi.Mode().Type())
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
// modernc.org/sqlite driver and allow at least two open connections: the
// Store keeps one for its writes, from its first write until Close. Open db
// with DSN for the recommended pragmas. Whatever the DSN, every connection
// of db must be on a database file in WAL journal mode with a busy timeout,
// set in the DSN (modernc.org/sqlite runs its _pragma parameters on every
// new connection; a PRAGMA run with db.Exec reaches one connection only):
//
//	file:/path/guard.db?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)
//
// Without them a Store's own reads fail with "database is locked" while it
// writes. New checks this on the pool's idle connections and a new one,
// and refuses with ErrBadDSN otherwise: so an in-memory database
// (":memory:", which gives each connection a database of its own and
// cannot use WAL, shared cache or not) is refused; use memstore instead.
// New refuses with ErrReadOnly a pool whose connections are query_only
// (Migrate finds any other database it cannot write, such as mode=ro),
// and with ErrCannotOpen a DSN whose file SQLite cannot open. New does not migrate
// the schema (call Migrate) and Close leaves db open. Its other errors are
// those of Open, checked first; on every error nothing was written.
func New(db *sql.DB) (*Store, error) {
	if db == nil {
		return nil, errors.New("sqlitestore: New needs a *sql.DB")
	}
	if _, ok := db.Driver().(*sqlite.Driver); !ok {
		return nil, fmt.Errorf("sqlitestore: New needs a database of the modernc.org/sqlite driver, not %T", db.Driver())
	}
	if n := db.Stats().MaxOpenConnections; n > 0 && n < 2 {
		return nil, errors.New("sqlitestore: New needs a *sql.DB that allows at least 2 open connections (the Store keeps one for its writes)")
	}
	return newStore(context.Background(), db, false)
}

func newStore(ctx context.Context, db *sql.DB, own bool) (*Store, error) {
	if _, err := inspect(ctx, db); err != nil {
		return nil, err
	}
	if !own {
		// Open's own pool has DSN's settings.
		if err := checkHostDB(ctx, db); err != nil {
			return nil, err
		}
	}
	s := &Store{db: db, own: own, wgate: make(chan struct{}, 1), reads: newStmtSet(db)}
	s.lookups = newLookupPool(db, lookupPoolSize(db.Stats().MaxOpenConnections))
	s.Users = &Users{s: s}
	s.Throttle = &Throttle{s: s, sweepEvery: defaultSweepEvery}
	s.Sessions = &Sessions{s: s, sweepEvery: defaultSweepEvery}
	s.Audit = &Audit{s: s}
	s.Tenants = &Tenants{s: s}
	s.APIKeys = &APIKeys{s: s}
	s.MFA = &MFA{s: s, sweepEvery: defaultSweepEvery}
	s.IPLists = &IPLists{s: s}
	s.Policies = &Policies{s: s, keep: PolicyHistory}
	s.Approvals = &Approvals{s: s}
	s.SSO = &SSO{s: s, sweepEvery: defaultSweepEvery}
	s.startCheckpointer()
	return s, nil
}

// Stores returns s as the facade's guard.Stores: Users, UserUpdates,
// Throttle, Sessions, SessionIndex, Audit, Tenants, APIKeys, IPLists,
// Policies, Approvals and every role of MFA and SSO.
func (s *Store) Stores() guard.Stores {
	return guard.Stores{
		Users:        s.Users,
		UserUpdates:  s.Users,
		Throttle:     s.Throttle,
		Sessions:     s.Sessions,
		SessionIndex: s.Sessions,
		Audit:        s.Audit,
		Tenants:      s.Tenants,
		APIKeys:      s.APIKeys,
		IPLists:      s.IPLists,
		Policies:     s.Policies,
		Approvals:    s.Approvals,
		MFA:          s.MFA.Stores(),
		SSO:          s.SSO.Stores(),
	}
}

// DB returns the database the Store uses.
func (s *Store) DB() *sql.DB { return s.db }

// Close waits for a write in progress, then releases the Store's
// connection for writes and its prepared statements and, when Open opened
// the database, closes it. Calls on a closed Store return ErrClosed.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return nil
	}
	var errs []error
	s.stopCheckpointer()
	s.wgate <- struct{}{}
	errs = append(errs, s.dropWriter())
	<-s.wgate
	s.lookups.close()
	errs = append(errs, s.reads.close())
	if s.own {
		errs = append(errs, s.db.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("sqlitestore: close: %w", err)
	}
	return nil
}

// ready returns nil once the schema is at the version this code needs
// (checked once), ErrNotMigrated before, and ErrClosed after Close.
func (s *Store) ready(ctx context.Context) error {
	if s.schemaOK.Load() {
		if s.closed.Load() {
			return ErrClosed
		}
		return nil
	}
	s.schemaMu.Lock()
	defer s.schemaMu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	if s.schemaOK.Load() {
		return nil
	}
	v, err := inspect(ctx, s.db)
	if err != nil {
		return err
	}
	if v < len(migrations) {
		return fmt.Errorf("%w: schema at version %d, this code needs %d", ErrNotMigrated, v, len(migrations))
	}
	s.schemaOK.Store(true)
	return nil
}

// writer is the Store's connection for writes, with its own set of
// prepared statements. Only the holder of the write gate uses it. Writes of
// a Store are serialised anyway (SQLite has one writer at a time), so one
// connection serves them all without database/sql's per-transaction
// bookkeeping, and BEGIN IMMEDIATE and COMMIT are prepared once.
type writer struct {
	c  *sql.Conn
	st *stmtSet
}

// wtx runs the writer's statements under the caller's context.
type wtx struct {
	ctx context.Context
	st  *stmtSet
}

func (w *wtx) exec(id stmtID, args ...any) (sql.Result, error) {
	return w.st.exec(w.ctx, id, args...)
}

func (w *wtx) query(id stmtID, args ...any) (*sql.Rows, error) {
	return w.st.query(w.ctx, id, args...)
}

func (w *wtx) queryRow(id stmtID, args ...any) scanner {
	return w.st.queryRow(w.ctx, id, args...)
}

// write runs f in one write transaction on the writer: BEGIN IMMEDIATE
// takes the database write lock at once, so the transaction never has to
// upgrade a read lock and no other writer, in this process or another,
// runs until it ends. f's error rolls everything back and is returned as
// it is; errors of the transaction itself are wrapped.
func (s *Store) write(ctx context.Context, f func(w *wtx) error) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	wr, err := s.lockWriter(ctx)
	if err != nil {
		return err
	}
	defer s.unlockWrites()
	committed := false
	defer func() {
		// On every failure, a panic in f included, before the gate opens.
		if !committed {
			s.abort(wr)
		}
	}()
	if _, err := wr.st.exec(ctx, sqlBegin); err != nil {
		return wrapErr("begin", err)
	}
	if err := f(&wtx{ctx: ctx, st: wr.st}); err != nil {
		return err
	}
	// The write lock is held: COMMIT does not wait for other writers, and
	// the caller's cancellation must not cut it short.
	if _, err := wr.st.exec(context.WithoutCancel(ctx), sqlCommit); err != nil {
		return wrapErr("commit", err)
	}
	committed = true
	s.committed()
	return nil
}

// writeOne runs f, whose statements each commit on their own (one atomic
// statement each, no transaction), on the writer.
func (s *Store) writeOne(ctx context.Context, f func(w *wtx) error) error {
	if err := s.ready(ctx); err != nil {
		return err
	}
	wr, err := s.lockWriter(ctx)
	if err != nil {
		return err
	}
	defer s.unlockWrites()
	defer s.committed()
	return f(&wtx{ctx: ctx, st: wr.st})
}

// lockWriter takes the write gate and returns the writer, connecting it if
// needed. The caller calls unlockWrites.
func (s *Store) lockWriter(ctx context.Context) (*writer, error) {
	if err := s.lockWrites(ctx); err != nil {
		return nil, err
	}
	if s.closed.Load() {
		s.unlockWrites()
		return nil, ErrClosed
	}
	if s.w != nil {
		return s.w, nil
	}
	// The writer outlives this call: it is connected even if ctx ends,
	// for the next write.
	c, err := s.db.Conn(context.WithoutCancel(ctx))
	if err != nil {
		s.unlockWrites()
		return nil, wrapErr("writer connection", err)
	}
	// The Store's checkpointer checkpoints, not the writer's commits.
	if _, err := c.ExecContext(ctx, `PRAGMA wal_autocheckpoint = 0`); err != nil {
		discard(c)
		s.unlockWrites()
		return nil, wrapErr("writer connection", err)
	}
	s.w = &writer{c: c, st: newStmtSet(c)}
	if err := ctx.Err(); err != nil {
		s.unlockWrites()
		return nil, err
	}
	return s.w, nil
}

// abort ends the writer's transaction after a failure. If the ROLLBACK
// fails too (the transaction may already have ended, or the connection is
// broken), the writer is dropped: closing its connection ends any
// transaction, and the next write connects a new one.
func (s *Store) abort(wr *writer) {
	if _, err := wr.st.exec(context.Background(), sqlRollback); err != nil {
		s.dropWriter()
	}
}

// dropWriter closes the writer. The caller holds the write gate.
func (s *Store) dropWriter() error {
	wr := s.w
	if wr == nil {
		return nil
	}
	s.w = nil
	err := wr.st.close()
	discard(wr.c)
	return err
}

// discard closes c's driver connection instead of giving it back to the
// pool, whatever state it is in.
func discard(c *sql.Conn) {
	_ = c.Raw(func(any) error { return driver.ErrBadConn })
	_ = c.Close()
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

// SweepGrace is how long after its expiry, judged by the time a write is
// given, a one-time code, send-rate window, pending sign-in, tracked SAML
// request, SAML replay record or SSO subject becomes garbage that the
// sweeps delete (those inside the writes, MFA.Sweep and SSO.Sweep alike).
// A replica whose clock is behind the others' by less than SweepGrace thus
// still finds every record that is live by its own clock: a captured SAML
// assertion stays refused, a send limit keeps its count, a single logout
// still finds the user. The grace never changes what a caller sees: a
// record expired at the now it passes is treated as expired, however
// recent.
const SweepGrace = 5 * time.Minute

// sweepCutoff is the expiry, in Unix microseconds, at or before which a
// sweep at now deletes a record.
func sweepCutoff(now time.Time) int64 { return micros(now.Add(-SweepGrace)) }

// nullBytes stores an empty slice as NULL: nil and empty MACs are equal.
func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}
