// Package pgstore keeps Guard's stores in PostgreSQL, for deployments with
// many replicas sharing one database: users, throttle counters, sessions,
// the audit chains, tenants, API keys, IP allow-lists, every MFA store
// (factors, recovery codes, one-time codes, send rates, pending logins),
// the rbac stores (policies and four-eyes approvals) and the SAML stores
// (IdP connections, tracked requests, the assertion replay cache and each
// user's subject at the IdP, for single logout). Every invariant of the
// store interfaces (the session limit of each user, every session of a
// user ended at once, throttle limits, the audit chain's compare-and-set,
// the versions of tenant policies, allow-lists and rbac policies, unique
// API keys, a TOTP step or a recovery code, a one-time code or a pending
// login used once, the limit of confirmed factors, an approval decided
// once and consumed once, IdP metadata set if newer, a SAML request
// consumed once, an assertion accepted once, a user's SAML subject
// replaced whole, a sign-out that no rotation outruns) is enforced by the
// database in one atomic statement, one SQL function call or one batch of
// statements in one transaction (Sessions.DeleteLineage), never by a
// read-modify-write in Go, so it holds across any number of replicas.
//
// # Opening and migrating
//
// The host owns the connection pool (github.com/jackc/pgx/v5/pgxpool) and
// passes it in; New does no I/O:
//
//	pool, err := pgxpool.New(ctx, dsn)
//	…
//	st, err := pgstore.New(pool, pgstore.Options{Schema: "guard"})
//	…
//	if err := st.Migrate(ctx); err != nil { … } // at start-up or in a deploy step
//	g, err := guard.New(guard.Config{Stores: st.Stores(), AuditKey: key})
//
// All tables live in one schema (Options.Schema, default "guard") and every
// statement names it, whatever the search_path: one database can hold
// several independent schemas, for example one per ring-fenced tenant.
// Migrate creates the schema or upgrades it; it runs every pending
// migration in one transaction under an advisory lock, so replicas that
// start together do not race and a failed upgrade changes nothing. A schema
// migrated by a newer version of this package gives ErrSchemaTooNew.
// Nothing migrates implicitly: a store used before Migrate fails with an
// error that says so.
//
// Sessions, throttling and the short-lived MFA and SAML stores (Codes,
// Rates, Transactions; SSO.Requests and SSO.Replay) may also be kept
// elsewhere (Redis, with store/redisstore) by replacing those fields of
// the guard.Stores that Stores returns. Store.IPLists is
// guard.Stores.IPLists; Store.MFA.Stores() is guard.Stores.MFA;
// Store.Policies and Store.Approvals are guard.Stores.Policies and
// Approvals; Store.SSO.Stores() is guard.Stores.SSO.
//
// Schema version 5 adds the rbac stores, and Stores fills them: the
// facade then enforces roles. A deployment upgraded from version 4 (which
// ran without roles, every user administering their tenant) starts with
// empty policies, so its users hold no role, and are denied, until the
// system grants them (guard.Guard.GrantRole with guard.System); a host
// that is not ready sets Policies and Approvals of the guard.Stores to
// nil meanwhile.
//
// Schema version 6 adds the SAML stores, and Stores fills guard.Stores.SSO
// with them: nothing changes for a host until it sets guard.Config.SSO.
// Every tenant then starts without an IdP connection (a host that kept
// its connections in another store puts them again).
//
// Schema version 9 adds the SAML subjects (sso.SubjectStore), and Stores
// fills guard.Stores.SSO.Subjects with them. A user who signed in before
// the upgrade has no subject (Subject gives sso.ErrNotFound) until the
// next SSO sign-in. Before Migrate has run, the subject methods fail with
// an error that names Migrate.
//
// Schema version 10 adds auth.User.PasswordExpired (a password an
// administrator marked for change, auth.UserUpdater.ExpirePassword). The
// user store reads and writes it, so it needs the upgrade: before Migrate
// has run, the user methods fail with an error that names Migrate. Every
// user starts unmarked.
//
// Schema version 11 keeps the tombstones of sessions evicted by the
// session limit (session.ErrEvicted, "signed in elsewhere") and replaces
// session_create. The per-request session check reads them, so it needs
// the upgrade: before Migrate has run it fails, and requests are denied
// (503), never allowed. Sessions evicted before the upgrade are simply
// unknown.
//
// Schema version 12 adds auth.User.LastSSOAt (the last sign-in through
// single sign-on, auth.UserUpdater.RecordSSOLogin). The user store reads
// and writes it, so it needs the upgrade: before Migrate has run, the
// user methods fail with an error that names Migrate. No user has signed
// in through SSO yet after the upgrade.
//
// Schema version 14 adds session_rotate and session_delete_by_user, the
// calls of Sessions.Rotate and Sessions.DeleteByUser. Like
// session_create, they lock the user's row in session_users before they
// touch the user's sessions, so that a rotation, a sign-in and an "end
// every session" of one user (session.Manager.RevokeUser: deactivation,
// password, role or MFA change, single logout) run one at a time, on
// every replica: a session rotated meanwhile is ended with the others,
// and a rotation racing a sign-in at the limit never leaves the user over
// it. (Before, each was one statement that took no lock: at READ
// COMMITTED, a DELETE by user that waited for a rotation skipped the old
// row and never saw the new one.) Before Migrate has run, Rotate and
// DeleteByUser change nothing and fail with an error that names Migrate,
// which session.Manager.Rotate and RevokeUser return.
//
// Schema version 15 adds auth.User.EmailUnverified (an address the user
// set without proving it, auth.UserUpdater.SetEmail and VerifyEmail). The
// user store reads and writes it, so it needs the upgrade: before Migrate
// has run, the user methods fail with an error that names Migrate. Every
// user's address counts as verified after the upgrade, as it did before.
//
// Schema version 16 adds sso.Subject.IdP (the entity ID of the IdP that
// issued a subject's NameID) and indexes the subjects by IdP and NameID.
// The subject methods read and write it, so they need the upgrade: before
// Migrate has run, they fail with an error that names Migrate. A subject
// kept before the upgrade has no IdP, so it belongs to none: single
// logout neither finds it for an IdP's LogoutRequest (the user is then
// found by email only, when the NameID is one) nor names it to the IdP,
// until the user's next SSO sign-in replaces it, or it expires with the
// session of its sign-in. Which IdP issued it is unknown, and naming a
// NameID to, or taking a logout from, an IdP that did not issue it is
// what the field prevents.
//
// Schema version 17 adds guard.Tenant.LastReview (the
// last access review, kept by the purge of its record). The tenant store
// reads and writes it, so it needs the upgrade. No tenant has one kept
// after the upgrade: the review schedule follows the audit log's record
// until a purge keeps it, as it did before.
//
// Schema version 18 adds guard.Tenant.IdPChangedAt (when the tenant's IdP
// was last replaced or removed). The tenant store reads and writes it, so
// it needs the upgrade. No tenant has one after the upgrade: the session
// check ends single sign-on sessions for a change of IdP made after it.
//
// Schema version 19 adds auth.User.ReactivatedAt (when an administrator
// last reactivated the user, auth.UserUpdater.SetReactivatedAt), which
// the dormancy rule counts as activity. The user store reads and writes
// it, so it needs the upgrade: before Migrate has run, the user methods
// fail with an error that names Migrate. No user has a reactivation kept
// after the upgrade: the rule counts one made after it.
//
// Schema version 20 lets a throttle reservation given back lift the lock
// it started and give back its time (auth.Record.GiveBack): the column
// throttle.res_prev_last_us and the functions throttle_reserve2,
// throttle_give_back and throttle_settle2, and throttle_apply counts a
// negative failure count as zero. Every throttle method but Peek needs
// the upgrade; the functions of version 8 stay, so replicas still on the
// older code keep working once it is applied.
//
// Schema version 21 adds mfa_confirm_factor, which confirms a factor
// only while the user has fewer confirmed factors than the limit
// (mfa.FactorUpdater.ConfirmFactor's max), locking the user as
// mfa_create_factor does. MFA.ConfirmFactor needs the upgrade.
//
// Schema version 22 keeps a tombstone of every rotated session, naming
// its successor (session.RotatedError; session_evictions.successor, NULL
// for an eviction's), and replaces session_rotate, with the same
// arguments, to write it. The per-request session check reads the new
// column, so it needs the upgrade: before Migrate has run it fails, and
// requests are denied (503), never allowed. Sessions rotated before the
// upgrade left no tombstone: their old tokens are simply unknown, and
// signing out with one ends nothing.
//
// Schema version 23 adds session_delete_by_user2, which Sessions.DeleteByUser
// calls: it keeps the rotation tombstones that lead to the session spared
// (an older token of the current session still signs it out after "end my
// other sessions"). DeleteByUser needs the upgrade: before Migrate has run
// it fails and ends nothing. session_delete_by_user stays, so replicas
// still on the older code keep working once it is applied (they remove
// every tombstone of the user, as before).
//
// Schema version 24 adds api_key_create, which APIKeys.CreateAPIKey calls
// for a creation within a bound of live keys (guard.Config.MaxAPIKeys):
// it locks the tenant's row in the new table api_key_tenants, then counts
// the tenant's live keys and inserts, so that the bound holds across
// replicas. Such a creation needs the upgrade: before Migrate has run it
// fails and stores nothing. A creation without a bound is one INSERT, as
// before, so replicas still on the older code keep creating keys once it
// is applied (without the bound).
//
// # Round trips
//
// Each store method is one statement, hence one round trip once pgx has
// prepared it on the connection, and one commit: Sessions.Create,
// Sessions.Rotate and Sessions.DeleteByUser call the functions
// session_create, session_rotate and session_delete_by_user2, which lock
// the user's row in session_users first (Sessions.Delete, of one session,
// is one DELETE and locks no user); Sessions.DeleteLineage (sign-out with
// a token that may have been rotated since) is two statements sent as one
// batch, one round trip and one transaction, which lock the user as
// session_rotate does, then follow the rotation tombstones and delete;
// Sessions.LookupTouch (the per-request check) reads and, at most once
// per touch interval, writes in one statement (the first request after a
// pause of a minute or more is touched by a second statement once the
// tenant's limits pass, and a request refused once its session is found
// takes back the touch that statement made with a second one,
// Sessions.Untouch, see session's doc); Audit.Append moves the chain head
// and inserts the whole batch in one statement; Throttle.Reserve is one
// INSERT … ON CONFLICT DO UPDATE, Throttle.Release one call of
// throttle_give_back, and Throttle.ReserveAll and Throttle.Settle (a
// login's client IP and account together) one call each of
// throttle_reserve2 and throttle_settle2.
// IPLists.Version, read by the allow-list check, is one primary-key read
// of one bigint, and so is Policies.Version, read by every authorization
// decision (none while Store.Watch runs, below). MFA.CreateFactor,
// MFA.ConfirmFactor, MFA.DeleteFactorKeeping and MFA.CheckCode call the
// functions mfa_create_factor, mfa_confirm_factor,
// mfa_delete_factor_keeping and mfa_check_code; Policies.Update,
// Approvals.DecideApproval and Approvals.ConsumeApproval call rbac_update,
// rbac_decide_approval and rbac_consume_approval, which take the row lock
// their rule needs (the tenant's version row; the approval's row, FOR
// UPDATE) before they check and write; APIKeys.CreateAPIKey within a
// bound calls api_key_create, which locks the tenant's row in
// api_key_tenants before it counts and inserts; every other MFA, API key,
// allow-list and rbac method is one statement. So is every SSO method:
// SSO.UpdateMetadata is one conditional UPDATE, SSO.ConsumeRequest one
// DELETE … RETURNING, SSO.InsertID (one per accepted assertion) one
// INSERT … ON CONFLICT DO UPDATE … WHERE RETURNING, and SSO.PutSubject
// (one per SSO sign-in) one INSERT … ON CONFLICT DO UPDATE.
//
// # Watching versions
//
// Every allow-list check reads the tenant's IPLists.Version and every
// authorization decision its Policies.Version, so that a change made on
// one replica is in force on the next request on all. Run Store.Watch
// beside the Store (`go st.Watch(ctx)`) and those reads cost nothing:
// triggers notify every change (LISTEN/NOTIFY, in the changing
// transaction), Watch listens on a connection of its own, and a version is
// read once and then kept until its change is notified. A guarded request
// then costs one round trip, its session's (none here with sessions in
// Redis). A change is in force on other replicas as soon as PostgreSQL
// delivers the notification (milliseconds); when Watch's connection fails
// or stops answering its pings, versions are read from the database again,
// a cached one never used more than WatchFresh (one second) after the
// last answer. Watching reports whether versions are being kept. With
// ring-fenced tenants (guard.Config.OpenTenant), start one Watch per
// tenant Store in the TenantOpener, with a context of its own (the
// opener's ends with the open), and cancel it in the io.Closer it
// returns: one more connection per open tenant.
//
// # Data
//
// Strings that the contracts allow to hold any byte (session tenants, user
// ids, user agents; audit event fields; throttle keys; IP allow-list
// entries and tenants; the fields of one-time codes and pending logins;
// rate keys; every string of the rbac stores, which hold rules and
// approvals as given; the tenants, IDs and fields of SAML requests and
// replay records; the tenant, metadata URL and metadata of SAML
// connections) are stored as bytea, so they round-trip byte for byte, NUL
// included, and order byte by byte. Allow-list entries are a bytea array,
// verbatim and in order (never an inet, which would rewrite them). The
// tenant data of users, tenants, audit chains, API keys, MFA factors,
// recovery codes and SAML subjects is kept in text columns, ids (and a
// subject's NameID) with the "C" collation (exact equality, byte order as
// Go compares strings); a string PostgreSQL text cannot hold (invalid
// UTF-8 or a NUL byte) is refused with the *InputError of the interface's
// package before anything is stored (and is reported not found by
// lookups). Times keep microseconds: timestamptz in the users, audit,
// tenants, API key, MFA factor, approval and SAML connection tables, Unix
// microseconds (bigint) in the sessions, throttle, one-time code, rate,
// pending-login, SAML request, replay and subject tables; times come back
// in UTC. A tenant's policy is JSON, and so are the other fields of a SAML
// connection (jsonb, as encoding/json writes sso.Connection), so new
// guard.Policy and sso.Connection fields need no migration; a string in
// those fields of a connection that is not valid UTF-8 or holds a NUL byte
// (which JSON would not keep as given) is refused with an *sso.InputError.
//
// Forgotten throttle records are deleted by Reserve and ReserveAll once
// forgotten ThrottleGCGrace before the now given, and expired one-time
// codes, rate windows and pending logins by PutCode, Hit and
// CreateTransaction once they expired MFAGCGrace before the time the write
// is given, up to GCBatch at a time (so that a replica whose clock lags
// still sees them: its throttle records and send limits keep their
// counts, its locks their length; those tables are bounded by the rate
// of events, and MFA.Hit never returns mfa.ErrFull); sessions that are no
// longer live, and the tombstones of evicted and rotated sessions once
// ended, are deleted when their user signs in again, and
// Sessions.DeleteExpired removes the rest in bounded batches. Tracked SAML
// requests, replay records and subjects are deleted by
// SSO.RememberRequest, SSO.InsertID and SSO.PutSubject, up to GCBatch at a
// time, once they expired SSOGCGrace before the time the write is given
// (so that a replica whose clock lags still sees them); none returns
// sso.ErrFull, and the subjects are bounded by the users signed in through
// SSO. A request is also deleted when it is consumed, expired or not. The
// rbac change log keeps the latest PolicyHistory changes of each tenant
// (Policies.Changes returns rbac.ErrHistoryGone for older ones): each
// Update deletes up to GCBatch older ones. Approvals are never deleted
// (the rbac contract has none): the table grows with the requests people
// make.
//
// # Concurrency
//
// A Store and each of its stores are safe for concurrent use, from one
// process or many; the pool bounds the connections used.
//
// The statements and functions are written for PostgreSQL's default
// isolation level, READ COMMITTED: a call that waited for a row lock
// reads what the transaction it waited for committed (session_create,
// session_rotate and Sessions.DeleteLineage count, evict and follow
// rotations after they lock the user). Under a stricter level the
// concurrent conformance suites fail with serialization errors and with
// counts that no longer add up, so Migrate refuses a pool whose
// transactions do not run at READ COMMITTED (ErrIsolation): keep
// default_transaction_isolation at its default for Guard's connections,
// or set it to read committed in their DSN.
//
// # Errors
//
// Store methods return the sentinel errors of the interface they implement
// (auth.ErrNotFound, session.ErrLimit, audit.ErrConflict, rbac.ErrConflict,
// …) for the conditions the contracts name, and the typed input errors of
// those packages (*auth.InputError, *audit.InputError, *guard.InputError,
// *mfa.InputError, *sso.InputError) for values the database cannot hold;
// Approvals.DecideApproval returns an *rbac.InputError for a status other
// than approved or rejected. Any other failure — the server
// unreachable, a timeout, a schema not migrated, a row this package cannot
// have written (JSON that does not decode, a session's or MFA
// transaction's flags that are not a uint32) — is returned wrapped with
// the prefix "pgstore:" (the pgx error stays reachable with errors.As), and
// the facade then denies the request. New returns an *OptionsError for bad
// Options; Migrate returns ErrSchemaTooNew for a schema newer than the
// code.
package pgstore
