// Package redisstore keeps Guard's sessions and throttle counters in Redis,
// for deployments of many replicas: every invariant (the per-user session
// limit, "set if newer", rotate once, at most Limit.Max attempts before a
// lock) is one Lua script run atomically by Redis, so it holds however
// many processes share the database.
//
// # What is inside
//
// Store implements session.Store, session.UserIndex, the optional
// session.LookupToucher (the per-request check is one round trip: one
// EVALSHA), and auth.ThrottleStore. Users, audit and tenants live in a SQL
// backend (store/pgstore, store/sqlitestore); Stores puts a Store in the
// Sessions, SessionIndex and Throttle fields of that backend's
// guard.Stores:
//
//	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
//	rs, err := redisstore.New(rdb, redisstore.Options{})
//	…
//	g, err := guard.New(guard.Config{Stores: rs.Stores(pg.Stores()), AuditKey: key})
//
// # Setting up
//
// There is no schema and nothing to migrate. New does no I/O; the Lua
// scripts are sent with EVALSHA and, the first time a server lacks one,
// EVAL (call Load at start-up to load them all beforehand). Every key starts
// with Options.Prefix (default "guard:"):
//
//	guard:s:<hex token hash>            a session (a hash)
//	guard:u:<len(tenant)>:<tenant>:<user> a user's sessions (a sorted set)
//	guard:t:<throttle key>              a throttle record (a hash)
//
// The tenant's length makes the user key unambiguous: tenant "a:b" with
// user "c" and tenant "a" with user "b:c" have different keys. The
// scripts use only commands that Redis has had since 4.0; the tests run
// against Redis 7.0.
//
// # Time and memory
//
// The rules are judged at the times Guard passes (session.CreatedAt, the
// now of LookupTouch and Reserve), never by the Redis clock, and times are
// kept to the microsecond, in UTC. Memory is bounded by key expiry, which
// does use the Redis clock: a session key expires at its ExpiresAt, a
// user's sorted set with its last session (members whose session is gone
// are dropped whenever the set is used), and a throttle record when
// auth.Record.ExpiresAt says it is forgotten; a permanent lock never
// expires (until Reset). Keep the clocks of the Redis server and of the
// hosts in sync (NTP): a server clock far ahead ends sessions and locks
// early. Times must lie between 1970 and 2255 (Lua's numbers are exact
// only up to 2^53 microseconds); others are refused with an *InputError.
//
// # Redis deployments
//
// A single node, a primary with replicas, or Sentinel: give New a
// redis.Client or a failover client, and let it send every command to the
// primary (do not set ReadOnly, RouteByLatency or RouteRandomly): a
// replica may not yet know of a session just revoked. Replication is
// asynchronous, so a failover can lose the last writes (a sign-out, a
// counted attempt) unless the server is configured against it
// (min-replicas-to-write). The session scripts read and write
// several keys — a user's sorted set and the sessions in it, which are
// keyed by token hash alone so that a request finds its session in one
// round trip — so they cannot spread one user's keys over several hash
// slots. Redis Cluster (and a client-side Ring) is therefore supported
// only with a Prefix holding a hash tag, such as "{guard}:", which puts
// every key of the store in one slot, hence on one shard; New refuses a
// ClusterClient or Ring without one. The throttle scripts touch one key
// each.
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
// session.ErrDuplicate and session.ErrLimit. Any failure of Redis (refused
// connection, timeout, a script error) is returned wrapped, prefixed
// "redisstore:", and is never one of those sentinels, so the facade denies
// the request (fail closed). Data that this package did not write is
// reported as an error wrapping ErrCorrupt. Bad input changes nothing and
// is reported as a typed error: *InputError for a time out of range,
// *auth.InvalidLimitError for a throttle limit that does not validate, and
// *ConfigError from New.
package redisstore
