package session

import (
	"context"
	"time"
)

// Store keeps sessions by the SHA-256 hash of their token; the token itself
// is never given to a store. Every method is one atomic step.
//
// A session is live at time t when t is before ExpiresAt and before
// LastSeen+IdleTimeout. Stores may drop sessions that are no longer live.
type Store interface {
	// Create stores s and, in the same atomic step, enforces lim on the live
	// sessions of s's user (Tenant, UserID) at s.CreatedAt. Sessions of the
	// user that are not live are removed and do not count. When lim.Max > 0
	// and the user already has lim.Max or more live sessions:
	//   - with EvictOldest, the oldest (by CreatedAt, then by Hash) are
	//     deleted so that exactly lim.Max remain with s, and are returned;
	//   - with RefuseNew, ErrLimit is returned and nothing changes.
	// Create returns ErrDuplicate, and changes nothing, if s.Hash exists,
	// as a session or as a tombstone.
	//
	// Each session that EvictOldest deletes leaves, in the same step, a
	// tombstone that keeps only its hash, user and end: e.EndsAt() at
	// eviction, rounded up to the microsecond at most. A tombstone is not a
	// session: it does not count toward any limit, Touch, Delete and Rotate
	// answer ErrNotFound for it and change nothing, ListByUser does not
	// list it, and DeleteByUser removes it without returning it. Create
	// removes the user's tombstones that have ended at s.CreatedAt, and a
	// store drops ended tombstones as it drops sessions that are no longer
	// live. Rotate leaves one too (see Rotate), which DeleteByUser may
	// keep. Sessions removed in any other way (not live, Delete,
	// DeleteByUser) leave none.
	Create(ctx context.Context, s Session, lim Limit) (evicted []Session, err error)
	// Lookup returns the session with token hash h, or ErrNotFound. It may
	// return a session that is no longer live; the caller checks. For the
	// tombstone of an evicted session it returns an *EvictedError with the
	// tombstone's end, and for that of a rotated one a *RotatedError with
	// its successor, user and end (either also after that end, until the
	// tombstone is dropped), never a session.
	Lookup(ctx context.Context, h Hash) (Session, error)
	// Touch sets LastSeen of session h to seen if seen is later than the
	// stored LastSeen (set if newer). ErrNotFound if there is no session h.
	Touch(ctx context.Context, h Hash, seen time.Time) error
	// Delete removes session h and returns it; ErrNotFound if absent.
	Delete(ctx context.Context, h Hash) (Session, error)
	// Rotate replaces session old by s in one step: afterwards old is gone
	// and s is stored, or, on error, nothing changed. The user's session
	// count is unchanged, so no limit applies. ErrNotFound if old is
	// absent (a tombstone included); ErrDuplicate if s.Hash exists, as a
	// session or as a tombstone.
	//
	// In the same step old leaves a tombstone, as an evicted session does
	// (see Create), that keeps old's user, the successor s.Hash and the end
	// s.ExpiresAt, to the microsecond as the store keeps s's: Lookup (and
	// LookupTouch) report it as a *RotatedError. Rotating s in turn leaves
	// another, so that the tombstones chain old → s → … to the live
	// session. Rotation tombstones go as eviction tombstones go: Create
	// removes the user's ended ones, and a store drops ended ones as it
	// drops sessions that are no longer live; DeleteByUser removes the
	// user's but those that lead to the session it spares.
	Rotate(ctx context.Context, old Hash, s Session) error
}

// UserIndex finds and ends the sessions of one user.
type UserIndex interface {
	// ListByUser returns the live-or-not sessions stored for the user,
	// oldest first (by CreatedAt, then Hash). Unknown user: empty, no error.
	ListByUser(ctx context.Context, tenant, userID string) ([]Session, error)
	// DeleteByUser removes every session of the user except the one whose
	// hash is except (the zero Hash excepts none) and returns the removed
	// sessions. In the same step it removes the user's tombstones (see
	// Store.Create and Store.Rotate): once every other session of the user
	// has been ended, an evicted one is no longer "signed in elsewhere"
	// but ended like them, and a rotated one led to a session now ended.
	// It keeps only the rotation tombstones of the session it spares, when
	// except is a session of the user: those whose successor is except, or
	// is a tombstone kept, at most MaxLineageHops rotations back from
	// except (as far as Manager.RevokeLineage follows them), so that an
	// older token of the spared session still names it. With the zero
	// Hash, or an except that is no session of the user, it keeps none.
	DeleteByUser(ctx context.Context, tenant, userID string, except Hash) ([]Session, error)
}

// LineageRevoker is an optional capability of a Store, probed once by
// New: Manager.RevokeLineage calls DeleteLineage instead of following the
// tombstones with Lookup and Delete. That chase is a race with every
// rotation of the session it is about to end, and a client that rotates
// the session as fast as the store lets it can win all of them on a store
// that queues its writes (sqlitestore's writer); one atomic step cannot
// be outrun.
type LineageRevoker interface {
	// DeleteLineage follows the rotation tombstones (*RotatedError) from
	// h, at most maxHops of them, every one of the tenant and user of
	// the first, to a session, live or not, and deletes it, in one atomic
	// step: no rotation lands between a hop and the delete. It returns the
	// session deleted, and whether it was reached through a rotation
	// (h was a tombstone). It returns ErrNotFound, and deletes nothing,
	// when h leads to no session: an unknown hash, an evicted session's
	// tombstone, or a chain that ends in nothing or in such a tombstone,
	// that is longer than maxHops (a maxHops below 0 counts as 0), or
	// that changes tenant or user at any hop (the session at its end is
	// then not deleted either). Any other error is a store failure.
	DeleteLineage(ctx context.Context, h Hash, maxHops int) (s Session, rotated bool, err error)
}

// LookupToucher is an optional capability of a Store, probed once by New.
// A store that answers over the network implements it so that the
// per-request check is one round trip; Manager then calls LookupTouch
// instead of Lookup and Touch (and Touch as well on the request that
// finds LastSeen Config.MaxTouchGap old under limits: see
// Manager.AuthenticateHashWithin), and Untouch after a LookupTouch that
// touched a session for a request then refused, so that refused requests
// do not keep a session alive.
type LookupToucher interface {
	// LookupTouch is Lookup followed, in the same atomic step, by
	// Touch(h, now) when the session is live at now (see Session.LiveAt),
	// its LastSeen is at least min(interval, IdleTimeout/2) before now and,
	// if maxGap > 0, less than maxGap before now. (A maxGap of 0 or less
	// sets no such bound.) It returns the session as stored before the
	// touch, or ErrNotFound, or for a tombstone an *EvictedError or a
	// *RotatedError as Lookup does. A session that is not live at now, or whose LastSeen is maxGap
	// or more before now, is returned unchanged and not touched.
	//
	// The bound lets Manager check limits that it learns only from the
	// session (a tenant's lowered idle timeout, Manager.AuthenticateHashWithin)
	// before a session idle for that long is touched: a session that
	// limits of at least maxGap end is never touched by this call.
	LookupTouch(ctx context.Context, h Hash, now time.Time, interval, maxGap time.Duration) (Session, error)
	// Untouch takes back the touch of a LookupTouch whose request was then
	// refused (see Manager.AuthenticateHashAdmit): in one atomic step, it
	// sets LastSeen of session h to prev if the stored LastSeen is touched
	// (the instant that LookupTouch wrote: its now); otherwise (a later
	// touch has moved LastSeen on, or there is no session h, a tombstone
	// included) it changes nothing. Nothing but LastSeen is changed. It
	// returns nil whether or not it changed anything; an error is a store
	// failure.
	Untouch(ctx context.Context, h Hash, touched, prev time.Time) error
}
