// Package session issues and checks the sessions of signed-in users:
// opaque 256-bit tokens stored only as hashes, an idle timeout and an
// absolute lifetime, a limit on concurrent sessions per user, rotation,
// revocation and listing.
//
// # What is inside
//
//   - Manager (built with New) is what an application uses: Create at
//     sign-in, Authenticate on every request, Rotate after a sign-in step or
//     a change of privilege, Revoke at sign-out, RevokeID, RevokeUser and
//     List for "your sessions" pages and for administrators, and Trim
//     when a user's limit was lowered after their sessions were created.
//   - Store and UserIndex are the storage contracts. store/memstore
//     implements them in memory; other backends live under store/. Package
//     sessiontest is the conformance suite every backend runs.
//   - ParseToken and CookieValue read a token from a request without
//     allocating; Session, Hash and Limit are the values stored.
//
// # Tokens
//
// A token is 32 bytes from Config.Rand (crypto/rand by default), written
// in base64url without padding: 43 characters. Only its SHA-256, the Hash,
// is ever given to a Store, so a leaked store yields no usable token.
// Hash.String (Session.ID) is the session's public identifier, safe to log
// and to show.
//
// # Timeouts and the session limit
//
// A session is live until the earlier of ExpiresAt (CreatedAt plus the
// lifetime, whatever the activity) and LastSeen plus its idle timeout.
// Authenticate writes LastSeen at most once per TouchInterval (default one
// minute), so the idle timeout is exact to within that interval. A user
// may hold Config.Limit live sessions (one by default); at the limit a new
// session evicts the oldest (EvictOldest) or is refused (RefuseNew). The
// Store enforces the limit in the same atomic step that stores the new
// session, so it holds under concurrent sign-ins and across replicas.
// An evicted session leaves a tombstone of its hash, user and end, so
// that its token is refused as ErrEvicted ("signed in elsewhere"), not as
// unknown, until the session would have ended anyway; the tombstone then
// goes the way of expired sessions. RevokeUser (with or without an
// exception) removes the user's tombstones too: their tokens are then
// refused as unknown, since what ended them is no longer a sign-in
// elsewhere.
//
// # Concurrency
//
// A Manager is safe for concurrent use. It keeps no state of its own
// beyond its configuration; every invariant is one atomic Store method.
// Trim alone is a sequence of them (a listing, then one Delete per extra
// session): it never ends a session created after its listing, and it
// lists again when it finds a session changed meanwhile.
//
// # Errors
//
// Compare errors with errors.Is and errors.As:
//
//   - ErrInvalidToken: a token or session ID that is not well formed.
//   - ErrNotFound: no such session (never issued, revoked, evicted, or, for
//     RevokeID, not one of that user's).
//   - ErrEvicted (an *EvictedError, also ErrNotFound): from Authenticate,
//     Rotate and Reauthenticate, the session was ended by the session
//     limit because its user signed in elsewhere.
//   - ErrExpired: the session has passed its idle timeout or lifetime.
//   - ErrLimit: RefuseNew and the user is at the session limit.
//   - ErrDuplicate: a store already holds that hash (a broken Rand).
//   - *ConfigError: New was given an unacceptable Config.
//   - *InputError: a tenant, user ID or Options field is unacceptable. It
//     names the field and never echoes the value.
//
// Any other error from a Manager wraps a Store failure. It is never one of
// the sentinels above, so a request that meets it must be denied (fail
// closed), not treated as anonymous.
package session
