package session

import (
	"encoding/base64"
	"errors"
	"time"
)

// Hash is the SHA-256 of a session token: the only form in which a token is
// stored.
type Hash [32]byte

// IsZero reports whether h is the zero hash.
func (h Hash) IsZero() bool { return h == Hash{} }

// String returns h in base64url without padding; this is the session's
// public identifier (ID), safe to show and log: it cannot be turned back
// into the token.
func (h Hash) String() string { return base64.RawURLEncoding.EncodeToString(h[:]) }

// ParseID parses a session ID as returned by Hash.String. It returns
// ErrInvalidToken for anything else, including the non-canonical spellings
// (non-zero trailing bits) that encoding/base64 would accept.
func ParseID(id string) (Hash, error) {
	h, ok := decode32(id)
	if !ok {
		return Hash{}, ErrInvalidToken
	}
	return h, nil
}

// Session is one signed-in session of a user, as stored.
type Session struct {
	Hash        Hash
	Tenant      string
	UserID      string
	CreatedAt   time.Time
	LastSeen    time.Time
	ExpiresAt   time.Time     // absolute end of life
	IdleTimeout time.Duration // the session ends after this long without a request
	IP          string
	UserAgent   string
	// Flags are set by the facade (for example "the password has expired");
	// stores keep them as they are.
	Flags uint32
}

// ID is the session's public identifier (see Hash.String).
func (s Session) ID() string { return s.Hash.String() }

// LiveAt reports whether s is live at t: before its absolute expiry and
// within its idle timeout.
func (s Session) LiveAt(t time.Time) bool {
	return liveAt(s.LastSeen, s.IdleTimeout, s.ExpiresAt, t)
}

// liveAt reports whether a session last seen at lastSeen, with idle
// timeout idle and absolute end end, is live at t.
func liveAt(lastSeen time.Time, idle time.Duration, end, t time.Time) bool {
	return t.Before(end) && t.Before(lastSeen.Add(idle))
}

// EndsAt is the time at which s stops being live if it sees no request.
func (s Session) EndsAt() time.Time {
	idle := s.LastSeen.Add(s.IdleTimeout)
	if idle.Before(s.ExpiresAt) {
		return idle
	}
	return s.ExpiresAt
}

// LimitPolicy says what happens when a user reaches the session limit.
type LimitPolicy int

const (
	// EvictOldest ends the user's oldest sessions to make room (default).
	EvictOldest LimitPolicy = iota
	// RefuseNew refuses the new session.
	RefuseNew
)

// Limit bounds the live sessions of one user.
type Limit struct {
	Max    int // 0 means no limit
	Policy LimitPolicy
}

// Errors. Compare with errors.Is.
var (
	ErrNotFound     = errors.New("session: not found")
	ErrExpired      = errors.New("session: expired")
	ErrInvalidToken = errors.New("session: malformed token")
	ErrLimit        = errors.New("session: session limit reached")
	ErrDuplicate    = errors.New("session: duplicate session hash")
	// ErrEvicted: the session was ended by the session limit (EvictOldest)
	// because its user signed in again elsewhere. An error that is
	// ErrEvicted is also ErrNotFound, so that code written before it
	// existed still treats the token as unknown.
	ErrEvicted = errors.New("session: ended by a newer sign-in of its user")
)

// EvictedError is how a Store reports the hash of a session that Create
// evicted, instead of the session: errors.Is(err, ErrEvicted) and
// errors.Is(err, ErrNotFound) hold. EndsAt is when the evicted session
// would have stopped being live had it seen no further request (its
// EndsAt when it was evicted, rounded up to the microsecond at most);
// from then on the eviction is forgotten and the hash is simply unknown.
type EvictedError struct{ EndsAt time.Time }

func (e *EvictedError) Error() string { return ErrEvicted.Error() }

// Is reports whether target is ErrEvicted or ErrNotFound.
func (e *EvictedError) Is(target error) bool { return target == ErrEvicted || target == ErrNotFound }

// RotatedError is how a Store reports the hash of a session that Rotate
// replaced, instead of the session: errors.Is(err, ErrNotFound) holds (and
// errors.Is(err, ErrEvicted) does not), so that the old token stays
// unauthenticated for every caller. It names the session that replaced it
// (Successor, itself perhaps rotated since), the user both belong to, and
// EndsAt, the successor's ExpiresAt when it was rotated: no session of the
// lineage outlives it, and from then on the rotation is forgotten and the
// hash is simply unknown. Manager.RevokeLineage follows it so that signing
// out with a token another client rotated ends the session it became.
type RotatedError struct {
	Successor      Hash
	Tenant, UserID string
	EndsAt         time.Time
}

func (e *RotatedError) Error() string { return ErrNotFound.Error() + " (rotated)" }

// Is reports whether target is ErrNotFound.
func (e *RotatedError) Is(target error) bool { return target == ErrNotFound }
