// Package session issues and checks the sessions of signed-in users:
// opaque 256-bit tokens stored only as hashes, an idle timeout and an
// absolute lifetime, a limit on concurrent sessions per user, rotation,
// revocation and listing.
//
// # What is inside
//
//   - Manager (built with New) is what an application uses: Create at
//     sign-in, Authenticate on every request (AuthenticateHashWithin and
//     AuthenticateHashAdmit add checks that only the session tells, such
//     as its tenant's policy and allow-list), Rotate after a sign-in step or
//     a change of privilege, Revoke at sign-out (RevokeLineage when the
//     token may have been rotated since), RevokeID, RevokeUser and
//     List for "your sessions" pages and for administrators, and Trim
//     when a user's limit was lowered after their sessions were created.
//   - Store and UserIndex are the storage contracts. store/memstore
//     implements them in memory; other backends live under store/.
//     LookupToucher (LookupTouch, and Untouch to take back the touch of a
//     refused request) is an optional one, which sqlitestore, pgstore and
//     redisstore implement so that the per-request check is one call.
//     LineageRevoker (DeleteLineage) is another, which every backend
//     under store/ implements so that RevokeLineage is one atomic step
//     that a client rotating the session cannot outrun.
//     Package sessiontest is the conformance suite every backend runs.
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
// Authenticate writes LastSeen at most once per TouchInterval (default 30
// seconds), so the idle timeout is exact to within that interval. A
// session found expired is never touched. A user may hold Config.Limit
// live sessions (one by default); at the limit a new
// session evicts the oldest (EvictOldest) or is refused (RefuseNew). The
// Store enforces the limit in the same atomic step that stores the new
// session, so it holds under concurrent sign-ins and across replicas.
// An evicted session leaves a tombstone of its hash, user and end, so
// that its token is refused as ErrEvicted ("signed in elsewhere"), not as
// unknown, until the session would have ended anyway; the tombstone then
// goes the way of expired sessions. RevokeUser (with or without an
// exception) removes the user's eviction tombstones too: their tokens are
// then refused as unknown, since what ended them is no longer a sign-in
// elsewhere.
//
// # Rotation and sign-out
//
// Rotate (and Reauthenticate) give a session a new token; the old one
// stops working at once. The old session leaves a tombstone too, naming
// the session that replaced it (a *RotatedError, which is plain
// ErrNotFound to every caller: the old token authenticates as nothing, and
// is not "signed in elsewhere"), until the new session's absolute expiry.
// Signing out with such a token, held by another tab or an API client
// that had not got the new one, must still end the session the user
// signed in with: RevokeLineage follows the tombstones (at most eight
// rotations, MaxLineageHops, all of the same user) to the session the
// token became and ends it. The token of an evicted session ends
// nothing: that session is gone. RevokeUser removes the rotation
// tombstones of the sessions it ends, and keeps those of the session it
// spares (up to MaxLineageHops rotations back), so that after "end my
// other sessions" an older token of the current session still signs it
// out.
//
// # Store round trips per request
//
// On a Store that implements LookupToucher (the SQL and Redis backends),
// Authenticate and AuthenticateHash cost one store call: LookupTouch reads
// the session and, when a touch is due, writes LastSeen in the same atomic
// step. AuthenticateHashWithin (the facade's, under the tenant's policy)
// costs one call too, with one exception: when a touch is due and LastSeen
// is Config.MaxTouchGap (default one minute) or more old, LookupTouch
// leaves the session alone and, once the limits have let it through, a
// second call (Touch) writes LastSeen. Limits learnt only from the session
// (a lowered idle timeout) are thus applied before a session idle for that
// long is touched: one their idle timeout ends is never touched, so
// neither a failed delete nor a concurrent request can revive it (a
// session ended only by a lowered lifetime may be touched first, which
// cannot revive it: its lifetime does not move). So a request costs two
// calls exactly when it passes, a touch is due and LastSeen was written
// MaxTouchGap or more before it (with the default TouchInterval a touch
// is always due by then). A request touches a session whose LastSeen is
// TouchInterval (30 s) old, so a request that comes less than 30 s after
// the previous one always costs one call, as does every request of a
// stream evenly spaced less than a minute apart; the first request after
// a pause of a minute or more costs two (and so may one that comes 30 s
// or more after a request that did not touch). A refused request (the
// session expired, the limits failing) makes no second Touch; deleting an
// expired session is a call of its own. A request refused once the
// session is found (an error from limits, or from the admit check of
// AuthenticateHashAdmit: a client outside its tenant's allow-list) must
// not keep the session alive: when its LookupTouch touched the session,
// a second call, Untouch, takes the touch back (compare and set, so that
// a later touch stays). Only such refused requests pay for it. On a Store
// without LookupToucher the check is Lookup, then Touch when one is due
// and the request is let through. LookupHashWithin, for a request refused
// whatever the session, is one Lookup and never touches.
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
//   - ErrNotFound: no such session (never issued, revoked, evicted,
//     rotated, or, for RevokeID, not one of that user's; for
//     RevokeLineage, nothing to end along the token's rotations).
//   - *RotatedError (ErrNotFound, never ErrEvicted): how a Store reports
//     the token of a rotated session; Manager methods return it as plain
//     ErrNotFound.
//   - ErrEvicted (an *EvictedError, also ErrNotFound): from Authenticate,
//     Rotate and Reauthenticate, the session was ended by the session
//     limit because its user signed in elsewhere.
//   - ErrExpired: the session has passed its idle timeout or lifetime.
//     (When the delete of the expired session fails, Authenticate returns
//     that store failure instead, and the next request deletes it.)
//   - ErrLimit: RefuseNew and the user is at the session limit.
//   - ErrDuplicate: a store already holds that hash (a broken Rand).
//   - *ConfigError: New was given an unacceptable Config.
//   - *InputError: a tenant, user ID or Options field is unacceptable, or
//     AuthenticateHashWithin's limits set an IdleTimeout shorter than
//     Config.MaxTouchGap. It names the field and never echoes the value.
//
// Any other error from a Manager wraps a Store failure. It is never one of
// the sentinels above, so a request that meets it must be denied (fail
// closed), not treated as anonymous.
package session
