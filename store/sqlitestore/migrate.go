package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	sqlite3 "modernc.org/sqlite/lib"
)

// versionTable records the migrations applied to a database: one row per
// version, written in the same transaction as the migration itself.
const versionTable = "guard_schema_version"

// migration is one step of the schema: its statements run in one
// transaction together with the row that records version.
type migration struct {
	version int
	name    string
	stmts   []string
}

// migrations is the schema, in order; versions are 1, 2, 3… Never edit a
// released migration: append a new one.
var migrations = []migration{
	{1, "initial schema", []string{
		// Tenants: the policy is JSON so that new Policy fields need no
		// migration.
		`CREATE TABLE guard_tenants (
			id         TEXT    NOT NULL PRIMARY KEY,
			name       TEXT    NOT NULL,
			policy     TEXT    NOT NULL,
			version    INTEGER NOT NULL,
			created_at INTEGER NOT NULL
		) STRICT, WITHOUT ROWID`,

		// Users: password_history is a JSON array of hashes, newest first.
		`CREATE TABLE guard_users (
			tenant              TEXT    NOT NULL,
			id                  TEXT    NOT NULL,
			email               TEXT    NOT NULL,
			name                TEXT    NOT NULL,
			status              TEXT    NOT NULL,
			password_hash       TEXT    NOT NULL,
			password_history    TEXT    NOT NULL,
			password_changed_at INTEGER,
			created_at          INTEGER NOT NULL,
			last_login_at       INTEGER,
			PRIMARY KEY (tenant, id)
		) STRICT, WITHOUT ROWID`,
		`CREATE UNIQUE INDEX guard_users_email ON guard_users (tenant, email)`,

		// Throttle records: expires_at is Record.ExpiresAt under the limit
		// of the last write, NULL for a permanent lock.
		`CREATE TABLE guard_throttle (
			key          TEXT    NOT NULL PRIMARY KEY,
			failures     INTEGER NOT NULL,
			last         INTEGER,
			locked_until INTEGER,
			lockouts     INTEGER NOT NULL,
			permanent    INTEGER NOT NULL,
			expires_at   INTEGER
		) STRICT, WITHOUT ROWID`,
		`CREATE INDEX guard_throttle_expires ON guard_throttle (expires_at) WHERE expires_at IS NOT NULL`,

		// Sessions by token hash; idle_timeout in nanoseconds.
		`CREATE TABLE guard_sessions (
			hash         BLOB    NOT NULL PRIMARY KEY,
			tenant       TEXT    NOT NULL,
			user_id      TEXT    NOT NULL,
			created_at   INTEGER NOT NULL,
			last_seen    INTEGER NOT NULL,
			expires_at   INTEGER NOT NULL,
			idle_timeout INTEGER NOT NULL,
			ip           TEXT    NOT NULL,
			user_agent   TEXT    NOT NULL,
			flags        INTEGER NOT NULL,
			-- when the session stops being live unless it sees a request:
			-- the earlier of expires_at and last_seen + idle_timeout
			-- (rounded up to the microsecond), for the sweep
			ends_at      INTEGER GENERATED ALWAYS AS (min(expires_at, last_seen + (idle_timeout + 999) / 1000)) VIRTUAL
		) STRICT, WITHOUT ROWID`,
		`CREATE INDEX guard_sessions_user ON guard_sessions (tenant, user_id, created_at, hash)`,
		`CREATE INDEX guard_sessions_ends ON guard_sessions (ends_at)`,

		// Audit: one head row per tenant (the chain's last link and its
		// checkpoint), moved in the transaction that appends.
		`CREATE TABLE guard_audit_heads (
			tenant  TEXT    NOT NULL PRIMARY KEY,
			seq     INTEGER NOT NULL,
			mac     BLOB,
			cp_seq  INTEGER NOT NULL DEFAULT 0,
			cp_mac  BLOB,
			cp_at   INTEGER,
			cp_hmac BLOB
		) STRICT, WITHOUT ROWID`,
		`CREATE TABLE guard_audit_events (
			tenant      TEXT    NOT NULL REFERENCES guard_audit_heads (tenant),
			seq         INTEGER NOT NULL,
			id          TEXT    NOT NULL,
			time        INTEGER NOT NULL,
			actor_kind  TEXT    NOT NULL,
			actor_id    TEXT    NOT NULL,
			actor_email TEXT    NOT NULL,
			action      TEXT    NOT NULL,
			target      TEXT    NOT NULL,
			ip          TEXT    NOT NULL,
			user_agent  TEXT    NOT NULL,
			outcome     TEXT    NOT NULL,
			reason      TEXT    NOT NULL,
			meta        TEXT,
			prev_mac    BLOB,
			mac         BLOB,
			PRIMARY KEY (tenant, seq)
		) STRICT, WITHOUT ROWID`,
		`CREATE INDEX guard_audit_time ON guard_audit_events (tenant, time, seq)`,
		`CREATE INDEX guard_audit_actor_id ON guard_audit_events (tenant, actor_id, seq)`,
		`CREATE INDEX guard_audit_actor_email ON guard_audit_events (tenant, actor_email, seq)`,
		`CREATE INDEX guard_audit_action ON guard_audit_events (tenant, action, seq)`,
		`CREATE INDEX guard_audit_outcome ON guard_audit_events (tenant, outcome, seq)`,
	}},

	{2, "api keys", []string{
		// API keys by (tenant, id), found by the SHA-256 of the key alone
		// (unique across tenants). last_used_at and revoked_at are NULL
		// until set; expires_at is NULL for a key that never expires.
		`CREATE TABLE guard_api_keys (
			tenant       TEXT    NOT NULL,
			id           TEXT    NOT NULL,
			hash         BLOB    NOT NULL CHECK (length(hash) = 32),
			name         TEXT    NOT NULL,
			prefix       TEXT    NOT NULL,
			created_by   TEXT    NOT NULL,
			created_at   INTEGER NOT NULL,
			expires_at   INTEGER,
			last_used_at INTEGER,
			revoked_at   INTEGER,
			PRIMARY KEY (tenant, id)
		) STRICT, WITHOUT ROWID`,
		`CREATE UNIQUE INDEX guard_api_keys_hash ON guard_api_keys (hash)`,
		`CREATE INDEX guard_api_keys_list ON guard_api_keys (tenant, created_at, id)`,
	}},

	{3, "second factors", []string{
		// Second factors. confirmed_at NULL: pending. secret is the sealed
		// TOTP secret, NULL for none.
		`CREATE TABLE guard_mfa_factors (
			tenant       TEXT    NOT NULL,
			user_id      TEXT    NOT NULL,
			id           TEXT    NOT NULL,
			kind         TEXT    NOT NULL,
			label        TEXT    NOT NULL,
			destination  TEXT    NOT NULL,
			key_id       TEXT    NOT NULL,
			secret       BLOB,
			created_at   INTEGER NOT NULL,
			confirmed_at INTEGER,
			last_step    INTEGER NOT NULL,
			PRIMARY KEY (tenant, user_id, id)
		) STRICT, WITHOUT ROWID`,
		// Serves Enrolments (users in order, kinds in order) and the count
		// of confirmed factors in CreateFactor.
		`CREATE INDEX guard_mfa_factors_enrolled ON guard_mfa_factors (tenant, user_id, kind) WHERE confirmed_at IS NOT NULL`,

		// Recovery codes: one row per SHA-256 hash of a user's set, so
		// that using a code is one keyed DELETE.
		`CREATE TABLE guard_mfa_recovery (
			tenant  TEXT NOT NULL,
			user_id TEXT NOT NULL,
			hash    BLOB NOT NULL CHECK (length(hash) = 32),
			PRIMARY KEY (tenant, user_id, hash)
		) STRICT, WITHOUT ROWID`,

		// One-time codes, at most one per transaction (tenant, txn).
		`CREATE TABLE guard_mfa_codes (
			tenant     TEXT    NOT NULL,
			txn        TEXT    NOT NULL,
			user_id    TEXT    NOT NULL,
			factor_id  TEXT    NOT NULL,
			kind       TEXT    NOT NULL,
			hash       BLOB    NOT NULL CHECK (length(hash) = 32),
			created_at INTEGER NOT NULL,
			expires_at INTEGER NOT NULL,
			tries_left INTEGER NOT NULL,
			PRIMARY KEY (tenant, txn)
		) STRICT, WITHOUT ROWID`,
		`CREATE INDEX guard_mfa_codes_expires ON guard_mfa_codes (expires_at)`,

		// Send-rate windows: the events counted in the key's window that
		// ends at ends_at.
		`CREATE TABLE guard_mfa_rates (
			key     TEXT    NOT NULL PRIMARY KEY,
			hits    INTEGER NOT NULL,
			ends_at INTEGER NOT NULL
		) STRICT, WITHOUT ROWID`,
		`CREATE INDEX guard_mfa_rates_ends ON guard_mfa_rates (ends_at)`,

		// Pending logins, by the hash of their token.
		`CREATE TABLE guard_mfa_transactions (
			hash       BLOB    NOT NULL PRIMARY KEY CHECK (length(hash) = 32),
			tenant     TEXT    NOT NULL,
			user_id    TEXT    NOT NULL,
			binding    BLOB    NOT NULL CHECK (length(binding) = 32),
			purpose    TEXT    NOT NULL,
			flags      INTEGER NOT NULL,
			created_at INTEGER NOT NULL,
			expires_at INTEGER NOT NULL
		) STRICT, WITHOUT ROWID`,
		`CREATE INDEX guard_mfa_transactions_expires ON guard_mfa_transactions (expires_at)`,
	}},

	{4, "ip allow-lists", []string{
		// One row per tenant with both scopes and the version, so that one
		// row read is one consistent version. Entries are kept byte for
		// byte, each prefixed by its length (see encodeStrings). A rowid
		// table: large lists spill to overflow pages, and the version,
		// stored before them, is read without reading them.
		`CREATE TABLE guard_ip_lists (
			tenant               TEXT    NOT NULL PRIMARY KEY,
			version              INTEGER NOT NULL CHECK (version > 0),
			users_report_only    INTEGER NOT NULL,
			api_keys_report_only INTEGER NOT NULL,
			users_entries        BLOB    NOT NULL,
			api_keys_entries     BLOB    NOT NULL
		) STRICT`,
	}},

	{5, "roles and approvals", []string{
		// Each tenant's policy version, read on every authorization
		// decision: one row by primary key.
		`CREATE TABLE guard_rbac_versions (
			tenant  TEXT    NOT NULL PRIMARY KEY,
			version INTEGER NOT NULL CHECK (version > 0)
		) STRICT, WITHOUT ROWID`,
		// The rules of each tenant's policy: a set keyed by every field
		// ('' for the fields a rule type leaves empty).
		`CREATE TABLE guard_rbac_rules (
			tenant    TEXT NOT NULL,
			rule_type TEXT NOT NULL,
			role      TEXT NOT NULL,
			subject   TEXT NOT NULL,
			section   TEXT NOT NULL,
			action    TEXT NOT NULL,
			PRIMARY KEY (tenant, rule_type, role, subject, section, action)
		) STRICT, WITHOUT ROWID`,
		// The latest changes of each tenant's policy, for Changes: the
		// rules removed and added, five length-prefixed strings per rule
		// (see encodeStrings), in the order given.
		`CREATE TABLE guard_rbac_changes (
			tenant       TEXT    NOT NULL,
			version      INTEGER NOT NULL,
			remove_rules BLOB    NOT NULL,
			add_rules    BLOB    NOT NULL,
			PRIMARY KEY (tenant, version)
		) STRICT, WITHOUT ROWID`,
		// Four-eyes approvals. A subject is its kind (rbac.SubjectKind, 0
		// for none) and ID; decided_at and consumed_at are NULL until set.
		`CREATE TABLE guard_rbac_approvals (
			tenant         TEXT    NOT NULL,
			id             TEXT    NOT NULL,
			requester_kind INTEGER NOT NULL,
			requester_id   TEXT    NOT NULL,
			section        TEXT    NOT NULL,
			action         TEXT    NOT NULL,
			target         TEXT    NOT NULL,
			payload_hash   BLOB    NOT NULL CHECK (length(payload_hash) = 32),
			created_at     INTEGER NOT NULL,
			expires_at     INTEGER NOT NULL,
			status         TEXT    NOT NULL,
			decider_kind   INTEGER NOT NULL,
			decider_id     TEXT    NOT NULL,
			decided_at     INTEGER,
			consumed_at    INTEGER,
			PRIMARY KEY (tenant, id)
		) STRICT, WITHOUT ROWID`,
		`CREATE INDEX guard_rbac_approvals_status ON guard_rbac_approvals (tenant, status, id)`,
	}},

	{6, "single sign-on", []string{
		// Each tenant's IdP connection. The metadata source is in columns
		// of its own, for UpdateMetadata's set-if-newer; the other fields
		// are JSON (sso.Connection's field names), so that fields added to
		// Connection need no migration. A rowid table: metadata runs to
		// hundreds of kilobytes.
		`CREATE TABLE guard_sso_connections (
			tenant              TEXT    NOT NULL PRIMARY KEY,
			metadata_url        TEXT    NOT NULL,
			metadata_fetched_at INTEGER,
			settings            TEXT    NOT NULL,
			metadata            TEXT    NOT NULL
		) STRICT`,
		// The AuthnRequests and LogoutRequests sent, until answered.
		`CREATE TABLE guard_sso_requests (
			tenant      TEXT    NOT NULL,
			id          TEXT    NOT NULL,
			kind        TEXT    NOT NULL,
			relay_state TEXT    NOT NULL,
			return_to   TEXT    NOT NULL,
			binding     TEXT    NOT NULL,
			created_at  INTEGER NOT NULL,
			expires     INTEGER NOT NULL,
			PRIMARY KEY (tenant, id)
		) STRICT, WITHOUT ROWID`,
		`CREATE INDEX guard_sso_requests_expires ON guard_sso_requests (expires)`,
		// The IDs of accepted assertions, each until it can no longer be
		// replayed.
		`CREATE TABLE guard_sso_replay (
			tenant TEXT    NOT NULL,
			id     TEXT    NOT NULL,
			until  INTEGER NOT NULL,
			PRIMARY KEY (tenant, id)
		) STRICT, WITHOUT ROWID`,
		`CREATE INDEX guard_sso_replay_until ON guard_sso_replay (until)`,
	}},
	{7, "audit tail", []string{
		// The newest events of each chain, without secondary indexes:
		// Append writes here (one leaf page and the head row per commit),
		// and moves a tenant's tail into guard_audit_events, whose five
		// indexes then take the events in bulk, once indexed_upto is
		// AuditTail events behind the head. Query reads both.
		`CREATE TABLE guard_audit_tail (
			tenant      TEXT    NOT NULL REFERENCES guard_audit_heads (tenant),
			seq         INTEGER NOT NULL,
			id          TEXT    NOT NULL,
			time        INTEGER NOT NULL,
			actor_kind  TEXT    NOT NULL,
			actor_id    TEXT    NOT NULL,
			actor_email TEXT    NOT NULL,
			action      TEXT    NOT NULL,
			target      TEXT    NOT NULL,
			ip          TEXT    NOT NULL,
			user_agent  TEXT    NOT NULL,
			outcome     TEXT    NOT NULL,
			reason      TEXT    NOT NULL,
			meta        TEXT,
			prev_mac    BLOB,
			mac         BLOB,
			PRIMARY KEY (tenant, seq)
		) STRICT, WITHOUT ROWID`,
		// Every event up to indexed_upto is in guard_audit_events, the
		// rest in guard_audit_tail. A database from before this migration
		// has every event indexed.
		`ALTER TABLE guard_audit_heads ADD COLUMN indexed_upto INTEGER NOT NULL DEFAULT 0`,
		`UPDATE guard_audit_heads SET indexed_upto = seq`,
	}},

	{8, "sso subjects", []string{
		// Who each user of a tenant last signed in as at the IdP, for
		// single logout: one row per user, until expires. Every column is
		// kept byte for byte and compared by the BINARY collation, so a
		// NameID matches exactly (case included) and user IDs sort as Go
		// compares strings.
		`CREATE TABLE guard_sso_subjects (
			tenant         TEXT    NOT NULL,
			user_id        TEXT    NOT NULL,
			name_id        TEXT    NOT NULL,
			name_id_format TEXT    NOT NULL,
			session_index  TEXT    NOT NULL,
			expires        INTEGER NOT NULL,
			PRIMARY KEY (tenant, user_id)
		) STRICT, WITHOUT ROWID`,
		// SubjectsByNameID: one range, already in user_id order.
		`CREATE INDEX guard_sso_subjects_name_id ON guard_sso_subjects (tenant, name_id, user_id)`,
		`CREATE INDEX guard_sso_subjects_expires ON guard_sso_subjects (expires)`,
	}},

	{9, "expired passwords", []string{
		// 1 when an administrator marked the user's password as one to
		// change at the next sign-in (auth.User.PasswordExpired).
		`ALTER TABLE guard_users ADD COLUMN password_expired INTEGER NOT NULL DEFAULT 0 CHECK (password_expired IN (0, 1))`,
	}},
	{10, "session evictions", []string{
		// The tombstone of each session that the session limit evicted:
		// its hash, user and ends_at as it was, kept until then so that
		// its token is refused as evicted rather than unknown.
		`CREATE TABLE guard_session_evictions (
			hash    BLOB    NOT NULL PRIMARY KEY,
			tenant  TEXT    NOT NULL,
			user_id TEXT    NOT NULL,
			ends_at INTEGER NOT NULL
		) STRICT, WITHOUT ROWID`,
		`CREATE INDEX guard_session_evictions_user ON guard_session_evictions (tenant, user_id, ends_at)`,
		`CREATE INDEX guard_session_evictions_ends ON guard_session_evictions (ends_at)`,
	}},
	{11, "last sso sign-in", []string{
		// The user's last sign-in through single sign-on, in Unix
		// microseconds, NULL if never (auth.User.LastSSOAt).
		`ALTER TABLE guard_users ADD COLUMN last_sso_at INTEGER`,
	}},
	{12, "unverified emails", []string{
		// 1 when the user set the email without proving they receive mail
		// there (auth.User.EmailUnverified); every existing user keeps a
		// verified address.
		`ALTER TABLE guard_users ADD COLUMN email_unverified INTEGER NOT NULL DEFAULT 0 CHECK (email_unverified IN (0, 1))`,
	}},
	{13, "sso subjects of an idp", []string{
		// The entity ID of the IdP that issued the subject's NameID
		// (sso.Subject.IdP), byte for byte. A row written before has ''
		// (no IdP): it belongs to none, so no IdP's LogoutRequest finds it
		// and it is named to none, until it expires with the session of
		// its sign-in.
		`ALTER TABLE guard_sso_subjects ADD COLUMN idp TEXT NOT NULL DEFAULT ''`,
		// SubjectsByNameID: one range of one IdP's NameID, in user_id
		// order.
		`DROP INDEX guard_sso_subjects_name_id`,
		`CREATE INDEX guard_sso_subjects_idp_name_id ON guard_sso_subjects (tenant, idp, name_id, user_id)`,
	}},
	{14, "tenant last review", []string{
		// When an access review of the tenant was last recorded, in Unix
		// microseconds, NULL if none since this column was added
		// (guard.Tenant.LastReview): the review schedule then follows the
		// audit log's record, as before.
		`ALTER TABLE guard_tenants ADD COLUMN last_review INTEGER`,
	}},
	{15, "tenant idp changed", []string{
		// When the tenant's IdP was last replaced or removed, in Unix
		// microseconds, NULL if never since this column was added
		// (guard.Tenant.IdPChangedAt): the session check then ends no
		// single sign-on session for it, as before.
		`ALTER TABLE guard_tenants ADD COLUMN idp_changed_at INTEGER`,
	}},
	{16, "user reactivation", []string{
		// When an administrator last reactivated the user, in Unix
		// microseconds, NULL if never since this column was added
		// (auth.User.ReactivatedAt): the dormancy rule then counts the
		// last sign-in alone, as before.
		`ALTER TABLE guard_users ADD COLUMN reactivated_at INTEGER`,
	}},
	{17, "session rotation tombstones", []string{
		// The hash of the session that replaced a rotated one
		// (session.RotatedError.Successor), NULL for the tombstone of an
		// evicted session: every existing row stays an eviction's.
		`ALTER TABLE guard_session_evictions ADD COLUMN successor BLOB CHECK (successor IS NULL OR length(successor) = 32)`,
	}},
}

// ownNames are the tables and indexes this package creates. A database
// that has one of them but no version table was not made by this package.
var ownNames = map[string]bool{
	versionTable:                     true,
	"guard_tenants":                  true,
	"guard_users":                    true,
	"guard_users_email":              true,
	"guard_throttle":                 true,
	"guard_throttle_expires":         true,
	"guard_sessions":                 true,
	"guard_sessions_user":            true,
	"guard_sessions_ends":            true,
	"guard_session_evictions":        true,
	"guard_session_evictions_user":   true,
	"guard_session_evictions_ends":   true,
	"guard_audit_heads":              true,
	"guard_audit_events":             true,
	"guard_audit_time":               true,
	"guard_audit_actor_id":           true,
	"guard_audit_actor_email":        true,
	"guard_audit_action":             true,
	"guard_audit_outcome":            true,
	"guard_audit_tail":               true,
	"guard_api_keys":                 true,
	"guard_api_keys_hash":            true,
	"guard_api_keys_list":            true,
	"guard_mfa_factors":              true,
	"guard_mfa_factors_enrolled":     true,
	"guard_mfa_recovery":             true,
	"guard_mfa_codes":                true,
	"guard_mfa_codes_expires":        true,
	"guard_mfa_rates":                true,
	"guard_mfa_rates_ends":           true,
	"guard_mfa_transactions":         true,
	"guard_mfa_transactions_expires": true,
	"guard_ip_lists":                 true,
	"guard_rbac_versions":            true,
	"guard_rbac_rules":               true,
	"guard_rbac_changes":             true,
	"guard_rbac_approvals":           true,
	"guard_rbac_approvals_status":    true,
	"guard_sso_connections":          true,
	"guard_sso_requests":             true,
	"guard_sso_requests_expires":     true,
	"guard_sso_replay":               true,
	"guard_sso_replay_until":         true,
	"guard_sso_subjects":             true,
	"guard_sso_subjects_name_id":     true,
	"guard_sso_subjects_idp_name_id": true,
	"guard_sso_subjects_expires":     true,
}

// SchemaVersion is the schema version this code migrates to and needs.
func SchemaVersion() int { return len(migrations) }

// querier is what inspect needs of a *sql.DB, *sql.Conn or *sql.Tx.
type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// versionCols are the columns of versionTable, in order: a table of that
// name with others was not made by this package.
const versionCols = "version,name,applied_at"

// inspect reads the schema of the database without changing anything and
// returns its version (0 when this package never migrated it). Every kind
// of object counts (table, index, view, trigger), and names compare as
// SQLite compares them, ignoring ASCII case: another application's view
// "guard_sessions" or table "Guard_Users" clashes with this package's
// table. Errors: ErrNotDatabase, ErrCannotOpen, ErrForeignSchema,
// ErrSchemaTooNew, or the engine's.
func inspect(ctx context.Context, q querier) (int, error) {
	rows, err := q.QueryContext(ctx, `SELECT type, name FROM sqlite_schema`)
	if err != nil {
		return 0, classify(err)
	}
	var own []string
	foreign := ""
	hasVersion := false
	for rows.Next() {
		var typ, name string
		if err := rows.Scan(&typ, &name); err != nil {
			rows.Close()
			return 0, classify(err)
		}
		folded := foldASCII(name)
		if !ownNames[folded] {
			continue
		}
		switch {
		case name != folded || (typ != "table" && typ != "index") || (name == versionTable && typ != "table"):
			// This package creates its tables and indexes in lower case.
			if foreign == "" {
				foreign = typ + " " + name
			}
		case name == versionTable:
			hasVersion = true
		default:
			own = append(own, name)
		}
	}
	if err := rows.Err(); err != nil {
		rows.Close()
		return 0, classify(err)
	}
	rows.Close()
	if foreign != "" {
		return 0, fmt.Errorf("%w: %s has the name of an object of this package but was not made by it", ErrForeignSchema, foreign)
	}
	if !hasVersion {
		if len(own) > 0 {
			return 0, fmt.Errorf("%w: %s exists but %s does not", ErrForeignSchema, own[0], versionTable)
		}
		return 0, nil
	}
	var cols sql.NullString
	if err := q.QueryRowContext(ctx, `SELECT group_concat(name, ',') FROM (SELECT name FROM pragma_table_info('`+versionTable+`') ORDER BY cid)`).Scan(&cols); err != nil {
		return 0, classify(err)
	}
	if cols.String != versionCols {
		return 0, fmt.Errorf("%w: %s has columns (%s), not (%s)", ErrForeignSchema, versionTable, cols.String, versionCols)
	}
	var v sql.NullInt64
	if err := q.QueryRowContext(ctx, `SELECT max(version) FROM `+versionTable).Scan(&v); err != nil {
		return 0, classify(err)
	}
	if int(v.Int64) > len(migrations) {
		return 0, fmt.Errorf("%w: database at version %d, this code knows up to %d", ErrSchemaTooNew, v.Int64, len(migrations))
	}
	return int(v.Int64), nil
}

// foldASCII folds the ASCII letters of name to lower case, as SQLite
// does when it compares names (other characters compare as they are).
func foldASCII(name string) string {
	b := []byte(name)
	for i, c := range b {
		if 'A' <= c && c <= 'Z' {
			b[i] = c + 'a' - 'A'
		}
	}
	return string(b)
}

// classify maps "not a database" and corruption to ErrNotDatabase, and a
// file SQLite cannot open to ErrCannotOpen.
func classify(err error) error {
	switch sqliteCode(err) {
	case sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT:
		return fmt.Errorf("%w: %w", ErrNotDatabase, err)
	case sqlite3.SQLITE_CANTOPEN:
		return fmt.Errorf("%w (a directory, a directory that does not exist, or no permission): %w", ErrCannotOpen, err)
	}
	return fmt.Errorf("sqlitestore: reading schema: %w", err)
}

// Migrate brings the schema to SchemaVersion, one migration per
// transaction; the version table records each in the same transaction, so
// a failure leaves the schema at the last version that completed. It is a
// no-op on a migrated database, and safe to run from several processes at
// once (each migration holds the write lock). It returns ErrSchemaTooNew,
// ErrForeignSchema or ErrNotDatabase, changing nothing, when the database
// is not one it can migrate, and ErrReadOnly when it cannot write the
// database (mode=ro, a read-only file): it tries a write that changes
// nothing, in a transaction it rolls back, even on a migrated database,
// so that a store that cannot write fails at start, not at its first
// write. So Migrate may wait up to the busy timeout for another writer.
func (s *Store) Migrate(ctx context.Context) error {
	return s.migrate(ctx, migrations)
}

func (s *Store) migrate(ctx context.Context, ms []migration) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := s.writable(ctx); err != nil {
		return err
	}
	for _, m := range ms {
		if err := s.apply(ctx, m, len(ms)); err != nil {
			return err
		}
	}
	return nil
}

// writable is checkWritable, holding the Store's write gate.
func (s *Store) writable(ctx context.Context) error {
	if err := s.lockWrites(ctx); err != nil {
		return err
	}
	defer s.unlockWrites()
	return checkWritable(ctx, s.db)
}

// apply runs m in one write transaction unless the database already has
// it. known is the newest version of the migrations being run.
func (s *Store) apply(ctx context.Context, m migration, known int) error {
	if err := s.lockWrites(ctx); err != nil {
		return err
	}
	defer s.unlockWrites()
	c, err := s.db.Conn(ctx)
	if err != nil {
		return wrapErr("migrate: connection", err)
	}
	defer c.Close()
	if _, err := c.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		discardIfInTx(c)
		return classify(err)
	}
	done := false
	defer func() {
		if !done {
			rollback(c)
		}
	}()
	v, err := inspect(ctx, c)
	if err != nil {
		return err
	}
	if v > known {
		return fmt.Errorf("%w: database at version %d, this code knows up to %d", ErrSchemaTooNew, v, known)
	}
	if v >= m.version {
		return nil
	}
	if v != m.version-1 {
		return fmt.Errorf("sqlitestore: migrate: database at version %d cannot take migration %d", v, m.version)
	}
	if v == 0 {
		if _, err := c.ExecContext(ctx, `CREATE TABLE `+versionTable+` (
			version    INTEGER NOT NULL PRIMARY KEY,
			name       TEXT    NOT NULL,
			applied_at INTEGER NOT NULL
		) STRICT`); err != nil {
			return fmt.Errorf("sqlitestore: migrate to version %d: %w", m.version, err)
		}
	}
	for i, q := range m.stmts {
		if _, err := c.ExecContext(ctx, q); err != nil {
			return fmt.Errorf("sqlitestore: migrate to version %d (%s), statement %d: %w", m.version, m.name, i+1, err)
		}
	}
	if _, err := c.ExecContext(ctx, `INSERT INTO `+versionTable+` (version, name, applied_at) VALUES (?, ?, ?)`,
		m.version, m.name, time.Now().UnixMicro()); err != nil {
		return fmt.Errorf("sqlitestore: migrate to version %d: recording it: %w", m.version, err)
	}
	if _, err := c.ExecContext(context.WithoutCancel(ctx), "COMMIT"); err != nil {
		return fmt.Errorf("sqlitestore: migrate to version %d: commit: %w", m.version, err)
	}
	done = true
	return nil
}

// errNoRows is sql.ErrNoRows, named for the switch statements below.
var errNoRows = sql.ErrNoRows

// isNoRows reports whether err says a query returned no row.
func isNoRows(err error) bool { return errors.Is(err, errNoRows) }
