package pgstore

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	guard "github.com/guardhq/guard"
)

// DefaultSchema is the schema used when Options.Schema is empty.
const DefaultSchema = "guard"

// Errors of this package. Compare with errors.Is.
var (
	// ErrSchemaTooNew is returned by Migrate when the schema was migrated
	// by a newer version of this package than the running one: the code
	// does not know the tables it would use. Nothing is changed.
	ErrSchemaTooNew = errors.New("pgstore: schema version is newer than this code knows")

	// ErrIsolation is returned by Migrate when the pool's transactions
	// run at an isolation level other than READ COMMITTED, PostgreSQL's
	// default, which this package's statements are written for (see the
	// package doc, Concurrency). Nothing is changed.
	ErrIsolation = errors.New("pgstore: transactions must run at READ COMMITTED")
)

// OptionsError reports an unusable Options field. It names the field and
// the rule.
type OptionsError struct {
	Field, Reason string
}

func (e *OptionsError) Error() string { return "pgstore: invalid Options." + e.Field + ": " + e.Reason }

// Options configures a Store.
type Options struct {
	// Schema is the PostgreSQL schema that holds Guard's tables (default
	// DefaultSchema). It must be a plain lower-case identifier: a letter
	// or underscore, then letters, digits or underscores, at most 63
	// bytes. Every statement names its tables with this schema, so one
	// database can hold several independent Guard schemas (one per
	// ring-fenced tenant, or one per test) whatever the search_path.
	Schema string
	// AuditAsyncCommit commits audit appends without waiting for
	// PostgreSQL to flush them to disk (synchronous_commit = off for
	// those transactions only). audit.Log's group commit then about
	// doubles its throughput with 8 writers (18,500–20,000 events/s here,
	// against 7,500–9,200), where a durable commit waits for one WAL
	// flush per batch (see BENCHMARKS.md). The price: events appended
	// in the last moments (up to three times wal_writer_delay, 600 ms by
	// default) before the database server crashes or loses power are lost
	// though reported stored; a crash of the application loses nothing,
	// and the chain stays whole (the lost events are its end). This is
	// SQLite's synchronous=NORMAL, which sqlitestore uses, in PostgreSQL
	// terms. Any later durable commit on the server flushes them too.
	// An audit.Log that appended events such a crash lost finds the
	// chain shorter than it wrote, which it cannot tell from tampering:
	// it refuses to record for that tenant (audit.ErrTampered, so every
	// guarded action of the tenant fails closed) until the application
	// restarts. Restart the application after the database server
	// crashes. Off by default: an audit event is on disk before its action is
	// reported done.
	AuditAsyncCommit bool
}

var schemaRE = regexp.MustCompile(`^[a-z_][a-z0-9_]{0,62}$`)

// Store bundles the PostgreSQL implementations of Guard's stores, all on
// one pool and one schema. Create it with New and create or upgrade the
// schema with Migrate before first use.
type Store struct {
	Users     *Users
	Throttle  *Throttle
	Sessions  *Sessions
	Audit     *Audit
	Tenants   *Tenants
	APIKeys   *APIKeys
	IPLists   *IPLists
	MFA       *MFA
	Policies  *Policies
	Approvals *Approvals
	SSO       *SSO

	pool   *pgxpool.Pool
	watch  *versionWatch
	schema string // validated, unquoted
	q      string // quoted, for SQL text
}

// New returns a Store on pool for opts. It does no I/O: the pool connects
// lazily, and a wrong DSN or an unreachable server surfaces from Migrate or
// from the first store call. The pool stays the host's: closing it is the
// host's job.
func New(pool *pgxpool.Pool, opts Options) (*Store, error) {
	if pool == nil {
		return nil, &OptionsError{Field: "pool", Reason: "is nil"}
	}
	if opts.Schema == "" {
		opts.Schema = DefaultSchema
	}
	if !schemaRE.MatchString(opts.Schema) {
		return nil, &OptionsError{Field: "Schema", Reason: "must be a lower-case identifier ([a-z_][a-z0-9_]*, at most 63 bytes)"}
	}
	s := &Store{pool: pool, schema: opts.Schema, q: pgx.Identifier{opts.Schema}.Sanitize(), watch: newVersionWatch(opts.Schema)}
	s.Users = &Users{pool: pool, sql: newUserSQL(s.q)}
	s.Throttle = &Throttle{pool: pool, sql: newThrottleSQL(s.q)}
	s.Sessions = &Sessions{pool: pool, sql: newSessionSQL(s.q)}
	s.Audit = &Audit{pool: pool, sql: newAuditSQL(s.q, opts.AuditAsyncCommit)}
	s.Tenants = &Tenants{pool: pool, sql: newTenantSQL(s.q)}
	s.APIKeys = &APIKeys{pool: pool, sql: newAPIKeySQL(s.q)}
	s.IPLists = &IPLists{pool: pool, sql: newIPListSQL(s.q), watch: s.watch}
	s.MFA = &MFA{pool: pool, sql: newMFASQL(s.q)}
	s.Policies = &Policies{pool: pool, sql: newPolicySQL(s.q), keep: PolicyHistory, watch: s.watch}
	s.Approvals = &Approvals{pool: pool, sql: newApprovalSQL(s.q)}
	s.SSO = &SSO{pool: pool, sql: newSSOSQL(s.q)}
	return s, nil
}

// Schema returns the name of the store's schema.
func (s *Store) Schema() string { return s.schema }

// Stores returns s as the facade's guard.Stores, every field filled: MFA
// and SSO with every role, Policies and Approvals.
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
		MFA:          s.MFA.Stores(),
		Policies:     s.Policies,
		Approvals:    s.Approvals,
		SSO:          s.SSO.Stores(),
	}
}

// schemaSQL returns sql with every {s} replaced by the quoted schema.
func schemaSQL(q, sql string) string { return strings.ReplaceAll(sql, "{s}", q) }

// SQLSTATE codes this package looks at.
const (
	codeUniqueViolation = "23505"
	codeDeadlock        = "40P01"
	codeUndefinedTable  = "42P01"
	codeUndefinedFunc   = "42883"
	codeUndefinedColumn = "42703"
	codeSessionLimit    = "GD001" // raised by session_create for RefuseNew
	codeFactorLimit     = "GD002" // raised by mfa_create_factor and mfa_confirm_factor for the limit of confirmed factors
	codeLastFactor      = "GD003" // raised by mfa_delete_factor_keeping for too few confirmed factors left
)

// pgCode returns the SQLSTATE of err and the constraint it names, if err
// is a PostgreSQL error.
func pgCode(err error) (code, constraint string) {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code, pe.ConstraintName
	}
	return "", ""
}

// wrap prefixes a store error with the package, store and operation, and
// adds a hint when the schema has not been migrated.
func wrap(op string, err error) error {
	if code, _ := pgCode(err); code == codeUndefinedTable || code == codeUndefinedFunc || code == codeUndefinedColumn {
		return fmt.Errorf("pgstore: %s (has Migrate been run on this schema?): %w", op, err)
	}
	return fmt.Errorf("pgstore: %s: %w", op, err)
}

// textProblem reports why s cannot be stored in a PostgreSQL text column
// ("" if it can): text must be valid UTF-8 without NUL bytes.
func textProblem(s string) string {
	if !utf8.ValidString(s) {
		return "not valid UTF-8"
	}
	if strings.IndexByte(s, 0) >= 0 {
		return "contains a NUL byte"
	}
	return ""
}

// micros returns t as Unix microseconds, for the bigint time columns.
func micros(t time.Time) int64 { return t.UnixMicro() }

// microsUp is micros rounded up to the microsecond: for the time a window
// or a lock is counted from, which must not end early. Compared with a
// stored time, micros (truncated) is exact: for whole microseconds x,
// micros(t) < x exactly when t is before x.
func microsUp(t time.Time) int64 {
	us := micros(t)
	if t.Nanosecond()%1000 != 0 && us < math.MaxInt64 {
		us++
	}
	return us
}

// fromMicros is the inverse of micros, in UTC.
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// flags32 reads a flags column (bigint), which holds a uint32 (a
// session's or an MFA transaction's): any other value was not written by
// this package.
func flags32(what string, v int64) (uint32, error) {
	if v < 0 || v > math.MaxUint32 {
		return 0, fmt.Errorf("%s flags column holds %d, not a uint32", what, v)
	}
	return uint32(v), nil
}

// fromNullMicros returns the time of a nullable Unix-microseconds column:
// the zero time for NULL.
func fromNullMicros(us *int64) time.Time {
	if us == nil {
		return time.Time{}
	}
	return fromMicros(*us)
}

// nullMicros is the inverse of fromNullMicros: nil (NULL) for the zero
// time, else micros(t).
func nullMicros(t time.Time) *int64 {
	if t.IsZero() {
		return nil
	}
	us := micros(t)
	return &us
}

// nullTime returns t, or nil (NULL) for the zero time, for timestamptz
// columns.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// fromNullTime is the inverse of nullTime, in UTC.
func fromNullTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// nonNil returns b, or an empty slice for nil (stored as '\x', not NULL).
func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// byteaString scans a bytea column into a string with one allocation
// (pgx would scan into a []byte first). Use as (*byteaString)(&s).
type byteaString string

// ScanBytes implements pgtype.BytesScanner.
func (s *byteaString) ScanBytes(v []byte) error {
	*s = byteaString(v)
	return nil
}

// byteaHash scans a 32-byte bytea column into an array, without
// allocating. Use as (*byteaHash)(&h).
type byteaHash [32]byte

// ScanBytes implements pgtype.BytesScanner.
func (h *byteaHash) ScanBytes(v []byte) error {
	if len(v) != len(h) {
		return fmt.Errorf("stored hash is %d bytes, want %d", len(v), len(h))
	}
	copy(h[:], v)
	return nil
}
