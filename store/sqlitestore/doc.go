// Package sqlitestore is Guard's embedded default backend: every store the
// facade needs in one SQLite database file, through the pure-Go driver
// modernc.org/sqlite (no cgo).
//
// # What is inside
//
// A Store holds one database and serves every store of guard.Stores
// (Stores fills them all):
//
//   - Users: auth.UserStore and auth.UserUpdater;
//   - Throttle: auth.ThrottleStore;
//   - Sessions: session.Store, session.UserIndex and the optional
//     session.LookupToucher (the per-request check is one prepared SELECT
//     by primary key; the first request after a pause of a minute or more
//     adds a Touch once the tenant's limits pass, and a request refused
//     once its session is found an Untouch of the touch the check made,
//     see session's doc);
//   - Audit: audit.Store;
//   - Tenants: guard.TenantStore;
//   - APIKeys: auth.APIKeyStore (the check of a request made with a key is
//     one SELECT by the key's hash; a creation within a bound of live keys
//     counts them and inserts in one statement, under the write lock);
//   - MFA: every role of mfa.Stores (MFA.Stores): factors, the enrolment
//     index, recovery codes, one-time codes, send rates and pending
//     logins;
//   - IPLists: ipfilter.Store (Version, read on every request of a tenant
//     with allow-lists, is one SELECT of one column; entries are kept byte
//     for byte);
//   - Policies: rbac.PolicyStore (Version, read on every authorization
//     decision, is one SELECT by primary key; each tenant keeps its latest
//     PolicyHistory changes);
//   - Approvals: rbac.ApprovalStore;
//   - SSO: every role of sso.Stores (SSO.Stores): IdP connections, tracked
//     requests, the assertion replay cache and the users' subjects at the
//     IdP for single logout (sso.SubjectStore: one row per user, found by
//     IdP and NameID through an index, exactly, byte for byte).
//
// Use it as
//
//	st, err := sqlitestore.Open(ctx, "/var/lib/app/guard.db")
//	if err != nil { … }
//	defer st.Close()
//	if err := st.Migrate(ctx); err != nil { … }
//	g, err := guard.New(guard.Config{Stores: st.Stores(), AuditKey: key})
//
// When tenants are ring-fenced, open one Store per tenant file; many can be
// open at once, each with its own small pool, and Close releases the file.
// New takes a *sql.DB the host opened itself (open it with DSN for the
// recommended settings; it needs at least a database file in WAL mode and
// a busy timeout on every connection, and refuses others with ErrBadDSN);
// Close then leaves it open.
//
// # Opening and migrating
//
// Open creates the file if needed, readable and writable by its owner
// only (0600; SQLite gives the -wal and -shm files the database file's
// mode), as it holds password hashes and the audit log; an existing
// file's mode is left as it is. Before it changes anything in the file
// (WAL mode is recorded in it) it reads the schema: a path that is not a
// regular file (a directory) or a file that is not an SQLite database or
// is corrupt gives ErrNotDatabase, a database holding a table, index,
// view or trigger with one of this package's names (all start with
// "guard_"; SQLite ignores ASCII case in names, and so does the check)
// that it did not create gives ErrForeignSchema, and a schema migrated by
// a newer version of this package gives ErrSchemaTooNew. A database that
// cannot be written (read-only file, mode=ro) gives ErrReadOnly (from
// Migrate, which tries a write that changes nothing; Open only reads), a file
// SQLite cannot open ErrCannotOpen, and New's *sql.DB without WAL or a
// busy timeout ErrBadDSN. In each case the file is left as it was. Tables
// of other names may share the file.
//
// Neither Open nor New changes the schema: Migrate does, when the host
// calls it. The migrations are an ordered list in this package; each runs
// in one transaction that also records its version in the table
// guard_schema_version, so a failure leaves the schema at the last version
// that completed, and running Migrate again (or from several processes at
// once) is a no-op. Until the schema is at SchemaVersion, every store
// method returns ErrNotMigrated. Upgrading from a release of this package
// without the role stores: Stores now fills Policies and Approvals, so the
// facade enforces roles, and a migrated database has no grants yet. Grant
// each tenant's administrators their roles (guard.System can) before
// serving requests with the new release, or leave Policies and Approvals
// nil in the guard.Stores given to the facade to keep every user an
// administrator of its tenant. Upgrading to schema version 8 (SSO
// subjects): the new table starts empty, so single logout finds by NameID
// only the users who signed in through SSO after the upgrade. Upgrading to
// schema version 9 (auth.User.PasswordExpired): every user starts with a
// password nobody marked for change. Upgrading to schema version 10
// (tombstones of evicted sessions): sessions evicted before it are simply
// unknown, not "signed in elsewhere". Upgrading to schema version 11
// (auth.User.LastSSOAt): no user has signed in through SSO yet, so the
// facade counts as on SSO only those who do so after the upgrade.
// Upgrading to schema version 12 (auth.User.EmailUnverified): every
// user's address counts as verified, as it did before. Upgrading to schema
// version 13 (sso.Subject.IdP): the subjects kept before name no IdP, so
// they belong to none: single logout neither finds them for an IdP's
// LogoutRequest (the user is then found by email only, when the NameID
// is one) nor names them to the IdP, until each user's next SSO sign-in
// replaces the record, or it expires with the session of its sign-in.
// Which IdP issued them is unknown, and naming a NameID to, or taking a
// logout from, an IdP that did not issue it is what the field prevents.
// Upgrading to schema version 14 (guard.Tenant.LastReview): no tenant
// has one kept yet, so the review schedule follows the audit log's record
// until a purge keeps it, as it did before. Upgrading to schema version
// 15 (guard.Tenant.IdPChangedAt): no tenant has one yet, so the session
// check ends single sign-on sessions for a change of IdP made after the
// upgrade. Upgrading to schema version 16 (auth.User.ReactivatedAt): no
// user has a reactivation kept yet, so the dormancy rule counts a
// reactivation made after the upgrade, and only the last sign-in (or the
// creation) for one made before, as it did. Upgrading to schema version
// 17 (tombstones of rotated sessions, session.RotatedError): sessions
// rotated before it left none, so their old tokens are simply unknown,
// and signing out with one ends nothing.
//
// Times are stored as Unix microseconds (UTC), the precision of every Guard
// package, so they come back exactly. A tenant's policy is stored as JSON,
// so fields added to guard.Policy need no migration; so is an SSO
// connection's configuration (but for its metadata source). Byte strings
// that must come back verbatim (allow-list entries, the rules of a policy
// change) are stored as BLOBs of length-prefixed strings.
//
// # Connections and durability
//
// Every connection Open makes (see DSN) runs in WAL mode with foreign keys
// on, a busy timeout of BusyTimeout, reads through mmap, and
// synchronous=NORMAL. In WAL mode NORMAL does not fsync at each commit, only
// at checkpoints: a commit survives a crash of the process, but an
// operating-system crash or power loss can lose the transactions committed
// since the last checkpoint (never corrupt the database). For Guard that
// means that after a power loss recent sessions, throttle counts and audit
// events may be gone: the audit chain is then shorter but still verifies,
// and the rule that an action is audited before it is reported done holds
// against crashes of the process, not of the machine. A host that needs
// every commit on disk can open the database itself with
// _pragma=synchronous(FULL) and pass it to New; each commit then waits for
// an fsync.
//
// A Store keeps one connection for its writes, from its first write until
// Close, and sets aside up to four for Sessions.Lookup, the per-request
// check; the rest of the pool (8 connections for Open) serves other reads.
// Statements are prepared on first use. The writer's commits do not
// checkpoint the WAL: a goroutine of the Store does, every 256 commits and
// a quarter of a second after a commit, without stopping the writer, and once the WAL is 4000 pages long it
// finishes the checkpoint between two writes, so that the WAL starts over
// (see checkpoint.go); Close stops it.
//
// # Concurrency
//
// A Store is safe for concurrent use, and several Stores, in one process or
// in several, may share one file. Every invariant is kept by SQLite itself:
// each method that must be atomic is one statement (a conditional UPDATE,
// a DELETE … RETURNING) or one write transaction that holds the database
// write lock from its start (BEGIN IMMEDIATE), so it never has to upgrade a
// read lock and no other writer, in any process, runs until it commits. The
// session limit, throttle counts, the audit chain's head, the versions of
// a tenant's policy, allow-lists and roles, the TOTP replay check, and a
// recovery code, one-time code, pending login, approval, SAML request or
// assertion used once therefore hold across processes, and a user's SSO
// subject is always one whole PutSubject (one upsert). Within
// one Store, writers queue in Go and then run on one connection kept for
// writes, with their statements prepared once; readers use the rest of the
// pool and never wait for writers (WAL).
//
// Rows that are no longer needed are deleted as the stores go: expired
// sessions of a user, and the ended tombstones of its evicted and rotated
// sessions,
// when that user signs in; up to 2048 sessions (of any user) that are no
// longer live, and as many ended tombstones, in every 1024th
// Sessions.Create of a Store;
// up to 2048 forgotten throttle records in every 1024th Throttle.Reserve
// that counts an attempt; up to 2048 expired one-time codes, ended send-rate
// windows or expired pending logins in every 1024th MFA.PutCode, MFA.Hit or
// MFA.CreateTransaction; up to 2048 expired SAML requests or replay records
// in every 1024th SSO.RememberRequest or SSO.InsertID; up to 2048 expired
// SSO subjects in every 1024th SSO.PutSubject. Each sweep is part
// of that call's transaction and judges expiry by the time the caller
// passes; the MFA and SSO records are deleted only SweepGrace after they
// expired, so that a replica whose clock is behind still sees every record
// that is live by its own clock (a captured SAML assertion stays refused).
// Sessions.DeleteExpired, Throttle.Sweep, MFA.Sweep and SSO.Sweep delete
// them all on demand. Each
// Policies.Update deletes the tenant's changes older than the latest
// PolicyHistory.
//
// # Errors
//
// The conditions of the store interfaces are their own sentinels
// (session.ErrNotFound, auth.ErrDuplicateEmail, audit.ErrConflict,
// guard.ErrTenantExists, mfa.ErrReplay, ipfilter.ErrConflict,
// rbac.ErrHistoryGone, …). Errors about the file are ErrNotDatabase,
// ErrCannotOpen, ErrForeignSchema, ErrSchemaTooNew, ErrReadOnly,
// ErrBadDSN (New), ErrNotMigrated and ErrClosed. Bad
// input gives the calling package's typed error and changes nothing (an
// invalid auth.Limit, an audit event of another tenant, a factor confirmed
// at the zero time, an allow-list scope that does not exist, an approval
// decided with a status other than approved or rejected, an SSO connection
// whose settings hold a string that is not UTF-8). Every other error
// is an engine failure, wrapped with the prefix "sqlitestore:"; the facade
// then denies the request (it fails closed). A row this package cannot
// have written (changed outside it: JSON or a list that does not decode,
// a session's or MFA transaction's flags that are not a uint32) is such
// an error too, never read as something else. Compare with errors.Is and
// errors.As.
package sqlitestore
