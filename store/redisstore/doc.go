// Package redisstore keeps Guard's sessions, throttle counters and
// short-lived MFA and SAML records in Redis, for deployments of many
// replicas: every invariant (the per-user session limit, "set if newer",
// rotate once, at most Limit.Max attempts before a lock, a one-time code
// or a pending login used once, no more wrong tries than allowed, a SAML
// request answered once, an assertion accepted once, one subject per user
// found under its NameID alone) is one Lua script run atomically by
// Redis, so it holds however many processes share the database.
//
// # What is inside
//
// Store implements session.Store, session.UserIndex, the optional
// session.LookupToucher (the per-request check is one round trip: one
// EVALSHA; the first request after a pause of a minute or more adds a
// Touch once the tenant's limits pass, and a request refused once its
// session is found, right after that EVALSHA touched it, an Untouch
// that takes the touch back; see session's doc), the optional
// session.LineageRevoker (a sign-out with a token of a rotated session,
// Manager.RevokeLineage, is one EVALSHA that follows the rotations and
// deletes the session at their end, so that no rotation outruns it),
// auth.ThrottleStore with the optional auth.BatchThrottleStore
// (a login reserves, and settles, its client IP and account in one
// EVALSHA each), and the MFA records that live minutes:
// mfa.CodeStore (one-time codes sent by email or SMS, as HMACs),
// mfa.RateStore (send limits) and mfa.TransactionStore (pending logins,
// by token hash), and the SAML records that live minutes:
// sso.RequestStore (the AuthnRequests and LogoutRequests sent, each
// answered once) and sso.ReplayCache (the IDs of accepted assertions and
// IdP LogoutRequests, refused a second time on every replica), and the
// SAML record that lives as long as a session: sso.SubjectStore (who
// each user signed in through SSO is at the IdP, for single logout; a
// PutSubject and a SubjectsByNameID are one EVALSHA each, a Subject one
// HMGET). Users, audit, tenants, the MFA factors and recovery codes and
// the SAML connections live in a SQL backend (store/pgstore,
// store/sqlitestore); Stores puts a Store in the Sessions, SessionIndex,
// Throttle, MFA.Codes, MFA.Rates, MFA.Transactions, SSO.Requests,
// SSO.Replay and SSO.Subjects fields of that backend's guard.Stores.
// MFAStores returns an mfa.Stores whose Codes, Rates and Transactions are
// the Store, and SSOStores an sso.Stores whose Requests, Replay and
// Subjects are the Store (Connections nil), to merge with another
// backend's:
//
//	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
//	rs, err := redisstore.New(ctx, rdb, redisstore.Options{})
//	…
//	stores := rs.Stores(pg.Stores()) // the short-lived roles from Redis, the rest from PostgreSQL
//	g, err := guard.New(guard.Config{Stores: stores, AuditKey: key, MFA: &mfaConfig, SSO: &ssoConfig})
//
// # Setting up
//
// There is no schema and nothing to migrate. Run Redis with
// maxmemory-policy noeviction (its default; not that of common managed
// services, which default to volatile-lru), on every node: every key of
// the store has an expiry, so under any other policy a server at its
// maxmemory evicts them silently, and the store cannot tell. A user's
// list of sessions evicted while the sessions stay leaves sessions that
// still authenticate but that revoking all of the user's sessions
// (deactivation, a password change or reset, "end all my sessions", an
// IdP's logout) no longer finds; an evicted throttle record forgets
// failed attempts and a lock, an evicted replay record lets an
// assertion be accepted twice. New therefore asks the server (CONFIG GET
// maxmemory-policy, the one I/O it does, within its ctx and the client's
// timeouts) and refuses any other policy with an *EvictionError, and a
// server it cannot reach with an error. A server that refuses CONFIG GET (managed
// services often disable CONFIG; an ACL may deny it) passes: there the
// operator must set noeviction. Options.SkipEvictionCheck skips the
// check, which is unsafe unless every node runs noeviction. The Lua
// scripts are sent with EVALSHA and, the first time a server lacks one,
// EVAL (call Load at start-up to load them all beforehand). Every key
// starts with Options.Prefix (default "guard:"):
//
//	guard:s:<hex token hash>                 a session (a hash)
//	guard:u:<len(tenant)>:<tenant>:<user>    a user's sessions (a sorted set)
//	guard:se:<hex token hash>                the tombstone of an evicted session
//	                                         (a string: its end, microseconds)
//	                                         or of a rotated one (its end, its
//	                                         successor's hex hash and its user)
//	guard:ue:<len(tenant)>:<tenant>:<user>   a user's tombstones (a sorted set)
//	guard:t:<throttle key>                   a throttle record (a hash)
//	guard:mc:<len(tenant)>:<tenant>:<txn>    an MFA one-time code (a hash)
//	guard:mr:<rate key>                      an MFA send counter (a hash)
//	guard:mt:<hex token hash>                a pending MFA sign-in (a hash)
//	guard:sr:<len(tenant)>:<tenant>:<id>     a tracked SAML request (a hash)
//	guard:sa:<len(tenant)>:<tenant>:<id>     an accepted SAML message ID (a
//	                                         string: until, microseconds)
//	guard:su:<len(tenant)>:<tenant>:<user>   a user's SAML subject (a hash)
//	guard:sn:<len(tenant)>:<tenant>:<nameID> the users of a NameID (a sorted
//	                                         set of user IDs scored by Expires)
//
// The tenant's length makes the user, code and SAML keys unambiguous: tenant
// "a:b" with user "c" and tenant "a" with user "b:c" have different keys. The
// scripts use only commands that Redis has had since 4.0; the tests run
// against Redis 7.0.
//
// Applications or Guard deployments that share one Redis database need
// prefixes neither of which starts with the other. The type tags above
// follow the prefix with no separator, so prefixes such as "guard" and
// "guards", or "guard:" and "guard:s", name the same keys: a user's SAML
// subject under the first ("guard" + "su:…") is the same user's list of
// sessions under the second ("guards" + "u:…"). Such a key, of another
// kind than a store expects, makes its sign-ins and single logouts of
// that user fail with an error (WRONGTYPE, or ErrCorrupt) rather than
// read or change the other deployment's data, but they fail. New cannot
// tell: it sees only its own prefix.
//
// # Time and memory
//
// The rules are judged at the times Guard passes (session.CreatedAt, the
// now of LookupTouch, Reserve, Peek, CheckCode, Hit, ConsumeRequest,
// InsertID, PutSubject, Subject and SubjectsByNameID) against the times
// kept in the records, never by the Redis clock: a session's ExpiresAt
// and its idle timeout (from LastSeen), a throttle lock and the reset of
// its count of failures, the end of a one-time code, of a send window, of
// a pending login, of a tracked SAML request, of a replay record and of a
// SAML subject. Times are kept to the microsecond, in UTC.
//
// Memory is bounded by key expiry, which Redis applies by its own clock;
// it only drops keys. A session key expires at its ExpiresAt (never at
// the end of its idle timeout, which only the caller's now judges), a
// user's sorted set with its last session (members whose session is gone
// are dropped whenever the set is used), the tombstone of an evicted
// session when that session would have ended (the earlier of its
// ExpiresAt and LastSeen plus its idle timeout) and that of a rotated one
// at its successor's ExpiresAt (the user's set of them with the last; the
// user's next Create drops the ended ones). A one-time code expires at its
// ExpiresAt (a new code of the transaction replaces it and its expiry), a
// pending login at its ExpiresAt, a tracked SAML request at its Expires,
// and a SAML subject at its Expires (the end of the session its sign-in
// created), a NameID index with the last of its users.
//
// The records whose early loss would let an attacker through outlive
// their end by ClockGrace (5 minutes): a throttle record expires
// ClockGrace after auth.Record.ExpiresAt says it is forgotten, as its last
// Reserve left it (a Release only makes a record forgotten sooner; a
// permanent lock never expires, until Reset, or until the next Reserve
// once a Release lifted it), a send counter ClockGrace after the end of
// its window, and a replay record ClockGrace (ReplayGrace) after its
// until. So a host whose clock is behind the Redis server's by up to
// ClockGrace (beyond the margin that package sso adds to an assertion's
// until) still finds every lock, count of failures, send window and
// replay record in force at its now.
//
// PutSubject moves a user from the index of its previous NameID to that
// of the new one, and drops from the indexes it changes the users expired
// at its now; so subjects take memory only for the users signed in
// through SSO whose last SSO session has not reached its end, one subject
// and one index member each. A user whose subject Redis has dropped (at
// its Expires by the Redis clock) may linger in its old index until that
// index expires or is next written; SubjectsByNameID reads the subject
// of each user it lists and returns only those that still have the
// NameID, are of the IdP asked for and are live at now. A subject written
// before this package kept its IdP (sso.Subject.IdP, the hash field p)
// has none and belongs to none: SubjectsByNameID finds it for no IdP,
// and the facade names it to no IdP, until the user's next SSO sign-in
// replaces it or it expires. Which IdP issued it is unknown, and naming
// a NameID to, or taking a logout from, an IdP that did not issue it is
// what the field prevents.
//
// Keep the clocks of the Redis server and of the hosts in sync (NTP). A
// Redis clock ahead of a host's by d drops the keys without a grace d
// before their end as the host's clock counts: sessions end d before
// their ExpiresAt (their idle timeout is unaffected), an evicted or
// rotated session's tombstone goes d early (Lookup then reports
// session.ErrNotFound rather than *session.EvictedError or
// *session.RotatedError), a code check may find no code
// (mfa.ErrNotFound) rather than an expired one (mfa.ErrExpired), and
// pending logins, tracked SAML requests and SAML subjects go d early;
// each fails closed, as an early sign-out or a refusal. With d beyond
// ClockGrace, throttle records, send counters and replay records go too
// while still in force by the host's clock: locks lift, counts start
// again and an assertion can be replayed. A Redis clock behind the
// hosts' only keeps keys longer. Times must lie between 1970 and 2255 (Lua's
// numbers are exact only up to 2^53 microseconds); others are refused
// with an *InputError (a zero sso.Request.CreatedAt, which no rule uses,
// is kept as zero).
//
// # Redis deployments
//
// A single node, a primary with replicas, or Sentinel: give New a
// redis.Client or a failover client, and let it send every command to the
// primary (do not set ReadOnly, RouteByLatency or RouteRandomly): a
// replica may not yet know of a session just revoked. Replication is
// asynchronous, so a failover can lose the last writes (a sign-out, a
// counted attempt) unless the server is configured against it
// (min-replicas-to-write); a replica that may be promoted must run
// noeviction too (New asks only the primary). The session scripts read and write
// several keys — a user's sorted set and the sessions in it, which are
// keyed by token hash alone so that a request finds its session in one
// round trip — so they cannot spread one user's keys over several hash
// slots. Redis Cluster (and a client-side Ring) is therefore supported
// only with a Prefix holding a hash tag, such as "{guard}:", which puts
// every key of the store in one slot, hence on one shard; New refuses a
// ClusterClient or Ring without one. The SAML subject scripts likewise
// touch keys named by data (the index of a user's previous NameID, the
// subjects of an index's users), which that hash tag keeps in the slot
// of the keys they are given. The other MFA and SAML scripts touch one
// key each, the throttle scripts the keys of one call (a login's client IP
// and account), which that hash tag keeps in one slot too.
//
// # Concurrency
//
// A Store is safe for concurrent use by many goroutines and many
// processes. It keeps no state of its own besides the client.
//
// # Errors
//
// The sentinel errors of the interfaces are returned as they are:
// session.ErrNotFound (for a missing key, never for a failure),
// session.ErrDuplicate and session.ErrLimit; mfa.ErrNotFound,
// mfa.ErrExpired, mfa.ErrTooManyTries, mfa.ErrInvalidCode and
// mfa.ErrDuplicate; sso.ErrNotFound (a request never stored, consumed or
// expired, a subject never stored or expired) and sso.ErrDuplicate. Memory is bounded by expiry and by the
// server's maxmemory, so sso.ErrFull is never returned: a server out of
// memory (under noeviction, which New checks; see Setting up) is a
// failure like any other. Any failure of Redis (refused
// connection, timeout, a script error) is returned wrapped, prefixed
// "redisstore:", and is never one of those sentinels, so the facade denies
// the request (fail closed). Data that this package did not write is
// reported as an error wrapping ErrCorrupt. Bad input changes nothing and
// is reported as a typed error: *InputError for a time out of range (or
// a rate window that is not positive),
// *auth.InvalidLimitError for a throttle limit that does not validate, and
// *ConfigError from New; New returns an *EvictionError for a server whose
// maxmemory-policy may evict keys.
package redisstore
