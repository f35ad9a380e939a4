package auth

import (
	"context"
	"time"
)

// UserStore keeps the users of every tenant. Users of different tenants
// never see each other: every method is scoped by tenant.
//
// Emails are stored and compared in canonical form (see CanonicalEmail);
// callers pass canonical emails.
type UserStore interface {
	// CreateUser stores u. It returns ErrDuplicateEmail, and stores nothing,
	// when the tenant already has a user with u.Email, and ErrDuplicateID when
	// a user with u.ID exists in the tenant.
	CreateUser(ctx context.Context, u User) error
	// User returns the user with the given id in tenant, or ErrNotFound.
	User(ctx context.Context, tenant, id string) (User, error)
	// UserByEmail returns the user with the given canonical email in tenant,
	// or ErrNotFound.
	UserByEmail(ctx context.Context, tenant, email string) (User, error)
	// ListUsers returns at most limit users of tenant ordered by id, starting
	// after the id given in after ("" starts at the beginning).
	ListUsers(ctx context.Context, tenant, after string, limit int) ([]User, error)
	// ListUserSummaries returns the summaries (User.Summary) of the users
	// that ListUsers returns for the same arguments, in the same order.
	ListUserSummaries(ctx context.Context, tenant, after string, limit int) ([]UserSummary, error)
	// DeleteUser removes the user and its password history; ErrNotFound if
	// there is no such user.
	DeleteUser(ctx context.Context, tenant, id string) error
}

// UserUpdater changes one field group of an existing user in one atomic
// step. Every method returns ErrNotFound when the user does not exist.
type UserUpdater interface {
	// SetStatus sets the user's status.
	SetStatus(ctx context.Context, tenant, id string, s Status) error
	// DeactivateIdle sets the user's status to StatusDeactivated only if
	// it is StatusActive and the user has not been active after
	// idleSince: their last sign-in, LastLoginAt, or CreatedAt when
	// LastLoginAt is zero, is not after idleSince (both zero: never
	// active), and neither is ReactivatedAt (zero: never reactivated).
	// Otherwise it returns ErrConflict and changes nothing (the user was
	// deactivated, signed in or was reactivated meanwhile). It is one
	// step: a RecordLogin, RecordSSOLogin or SetReactivatedAt either comes
	// before it and keeps the user active, or after it and finds (or, for
	// RecordLogin and RecordSSOLogin, returns) the user deactivated.
	DeactivateIdle(ctx context.Context, tenant, id string, idleSince time.Time) error
	// Deactivate sets the user's status to StatusDeactivated if it is
	// StatusActive, and changes no other field. changed reports whether
	// this call changed it: false if the user was not active (a no-op
	// that succeeds). Of concurrent calls on an active user, exactly one
	// changes it.
	Deactivate(ctx context.Context, tenant, id string) (changed bool, err error)
	// SetReactivatedAt sets ReactivatedAt to at (zero clears it), and
	// changes no other field.
	SetReactivatedAt(ctx context.Context, tenant, id string, at time.Time) error
	// SetPassword replaces the password hash with hash, sets
	// PasswordChangedAt to at and clears PasswordExpired. The replaced
	// hash is pushed to the front of PasswordHistory, which is then cut to
	// its newest keep entries (keep 0 empties it).
	SetPassword(ctx context.Context, tenant, id, hash string, at time.Time, keep int) error
	// ResetPassword sets the password from a link mailed to the user's
	// address, bound to the user as the caller read them, was: only if
	// the user's Email, PasswordHash, Status, PasswordExpired and
	// ReactivatedAt are still was's (a deactivation and a reactivation
	// since leave the status as read, not ReactivatedAt), it sets the
	// password as SetPassword does (hash, PasswordChangedAt at,
	// PasswordExpired cleared, the replaced hash pushed to the history
	// cut to keep) and clears EmailUnverified (the link proved the
	// address), in one step, and changes no other field.
	// Otherwise it returns ErrConflict and changes nothing: the account
	// changed since the caller read it. The other fields of was are not
	// looked at.
	ResetPassword(ctx context.Context, tenant, id string, was User, hash string, at time.Time, keep int) error
	// ChangePassword sets the password the user chose, bound to the user
	// as the caller read them, was, when it checked the current password:
	// only if the user's Email, PasswordHash, Status, PasswordExpired and
	// ReactivatedAt are still was's, it sets the password as SetPassword does (hash,
	// PasswordChangedAt at, PasswordExpired cleared, the replaced hash
	// pushed to the history cut to keep), in one step, and changes no
	// other field (EmailUnverified is left as it is). Otherwise it
	// returns ErrConflict and changes nothing: the account changed since
	// the caller read it. The other fields of was are not looked at.
	ChangePassword(ctx context.Context, tenant, id string, was User, hash string, at time.Time, keep int) error
	// RehashPassword replaces the password hash with newHash only if the
	// stored hash is still oldHash; otherwise it returns ErrConflict and
	// changes nothing. History, PasswordChangedAt and PasswordExpired are
	// left alone.
	RehashPassword(ctx context.Context, tenant, id, oldHash, newHash string) error
	// ExpirePassword sets PasswordExpired, and changes no other field: the
	// user must change the password at the next sign-in. set reports
	// whether this call set it: false if it was set already (a no-op that
	// succeeds). Of concurrent calls on a clear flag, exactly one sets it.
	ExpirePassword(ctx context.Context, tenant, id string) (set bool, err error)
	// ClearPasswordExpired clears PasswordExpired, and changes no other
	// field: it takes back an ExpirePassword that must not stand.
	// Clearing a clear flag is a no-op that succeeds.
	ClearPasswordExpired(ctx context.Context, tenant, id string) error
	// RecordLogin sets LastLoginAt to at, and changes no other field, and
	// returns the user as stored after the update (so the caller sees a
	// status changed concurrently).
	RecordLogin(ctx context.Context, tenant, id string, at time.Time) (User, error)
	// RecordSSOLogin records a sign-in through single sign-on: it sets
	// both LastLoginAt and LastSSOAt to at, in one step, and returns the
	// user as stored after the update, as RecordLogin does. No other
	// method changes LastSSOAt.
	RecordSSOLogin(ctx context.Context, tenant, id string, at time.Time) (User, error)
	// SetEmail sets the user's email to email, a canonical email, and
	// EmailUnverified to unverified, in one step, and changes no other
	// field. The user's previous email is free at once: UserByEmail no
	// longer finds it, and another user may take it. When another user of
	// the tenant has email, SetEmail returns ErrDuplicateEmail and changes
	// nothing; users of other tenants do not count. Setting the user's
	// current email succeeds and sets EmailUnverified only. When the user
	// does not exist it returns ErrNotFound, whether or not email is
	// taken.
	SetEmail(ctx context.Context, tenant, id, email string, unverified bool) error
	// ChangeEmail sets the address the user chose, bound to the user as
	// the caller read them, was, when it checked the change: only if the
	// user's Email, PasswordHash, Status, PasswordExpired and
	// ReactivatedAt are still was's, it sets the email and EmailUnverified as SetEmail does (the
	// previous email free at once; ErrDuplicateEmail, nothing changed,
	// when another user of the tenant has email; the user's current
	// email sets EmailUnverified only), in one step, and changes no other
	// field. Otherwise it returns ErrConflict and changes nothing: the
	// account changed since the caller read it. ErrConflict comes first:
	// an account that changed is ErrConflict whether or not email is
	// taken. The other fields of was are not looked at. When the user
	// does not exist it returns ErrNotFound, whether or not email is
	// taken.
	ChangeEmail(ctx context.Context, tenant, id string, was User, email string, unverified bool) error
	// VerifyEmail clears EmailUnverified if the user's email is email (the
	// user proved they receive mail there), and changes no other field.
	// When the user's email is another, it returns ErrConflict and changes
	// nothing: the proof was for an address the user no longer has.
	// Verifying a verified email is a no-op that succeeds.
	VerifyEmail(ctx context.Context, tenant, id, email string) error
}

// ThrottleStore counts authentication attempts per key (an account, a client
// IP) and locks keys that fail too often. Each method is one atomic step, so
// that N concurrent attempts never get more than Limit.Max reservations
// between two locks, on one replica or many.
//
// Keys are opaque strings chosen by the caller. A key's record is forgotten
// once it is neither locked nor has seen a counted attempt within
// Limit.ResetAfter (an attempt given back with Release does not count), so
// memory is bounded by the rate of attempts, not by the number of keys
// ever seen; a permanently locked key is kept until Reset.
type ThrottleStore interface {
	// Reserve records one attempt for key at now, under lim, before the
	// caller evaluates the credential. See Reservation for the result and
	// Limit for the rules. A locked key is not counted again: attempts made
	// during a lock never extend it. A store that keeps times to the
	// microsecond rounds the time an attempt and a lock are counted from
	// up, never down: a lock or a count may end a few microseconds late,
	// never early.
	Reserve(ctx context.Context, key string, now time.Time, lim Limit) (Reservation, error)
	// Release gives back res, a reservation of key that Reserve (or
	// ReserveAll) returned: the attempt succeeded, or was not a guess,
	// and must not count as a failure. The record becomes
	// Record.GiveBack(res) of it, in one step: the reservation no longer
	// counts, the key's time of last attempt goes back to what it was
	// before it if no attempt was counted since (so successes do not keep
	// old failures from being forgotten), and a lock it started is lifted
	// if it is still the key's current lock, with the failures before it
	// restored. Outside such a lock the count never goes below zero.
	// Releasing an unknown key, or a reservation that was not Allowed,
	// changes nothing and is not an error. Each reservation is given back
	// at most once: a second give-back of one reservation may take off
	// another's.
	//
	// Concurrent reservations of one key leave some residue: when two
	// are in flight, the second's give-back restores Last to the first's
	// time, given back or not; a reservation given back after Reset, or
	// after the key was forgotten, takes one off the count the key has
	// started again.
	Release(ctx context.Context, key string, res Reservation) error
	// Reset forgets key entirely: failures, temporary and permanent lock.
	// It is the success path for an account and the admin unlock.
	// Resetting an unknown key is not an error.
	Reset(ctx context.Context, key string) error
	// Peek reports the state of key at now without changing it. An unknown
	// or forgotten key has the zero State.
	Peek(ctx context.Context, key string, now time.Time, lim Limit) (State, error)
}

// BatchThrottleStore is a ThrottleStore that reserves, or settles, several
// keys in one call: a password login reserves its client IP and its
// account together, and settles them together, in one round trip to the
// database each instead of one per key.
//
// It is optional. Each method is defined as the ThrottleStore calls it
// replaces, made one after another, so a store without it loses nothing
// but round trips: BatchThrottle makes those calls for it, and the facade
// probes for the interface once, when it is created. The backends of this
// module have it, each doing a call in one statement, transaction or
// script.
//
// Keys are taken in the order given. A store that locks what it changes
// (a SQL row lock) locks the keys in that order and holds them to the end
// of the call, so calls that list the keys they share in the same order
// never deadlock; the facade lists a client IP's key before an account's,
// in ReserveAll and in Settle alike.
type BatchThrottleStore interface {
	ThrottleStore
	// ReserveAll reserves keys[0], keys[1], … at now, each under its own
	// Limit, as Reserve would, and stops at the first key that is not
	// Allowed: it returns the Reservations of the keys up to and
	// including that one (of every key when all are allowed), and the
	// keys after it are not counted. A key listed twice is reserved
	// twice. No keys is no error. When it returns an error, the keys
	// before the one that failed may have been counted.
	ReserveAll(ctx context.Context, now time.Time, keys []ThrottleKey) ([]Reservation, error)
	// Settle ends the reservations of keys, in order: each key is Reset
	// when its Settlement says so and otherwise its Settlement's
	// Reservation is Released, as those methods would. Unknown keys and
	// no keys are no error.
	Settle(ctx context.Context, keys []Settlement) error
}
