package mfa

import (
	"context"
	"time"
)

// Stores are the storage contracts of the package, one field per role.
// A backend usually implements all of them with one value (memstore.MFA
// does); a deployment may also split them, keeping factors and recovery
// codes in a database and codes, rates and transactions in a cache.
// Package mfatest is the conformance suite of every contract.
type Stores struct {
	Factors       FactorStore
	FactorUpdates FactorUpdater
	Enrolments    EnrolmentIndex
	Recovery      RecoveryStore
	Codes         CodeStore
	Rates         RateStore
	Transactions  TransactionStore
}

// FactorStore keeps the second factors of users. Every method is scoped
// by tenant and user: a factor is never seen through another user.
type FactorStore interface {
	// CreateFactor stores f. In the same atomic step it deletes the user's
	// pending factors of f.Kind: a new enrolment voids an unfinished one.
	// It returns ErrDuplicate, and changes nothing, if the user already has
	// a factor with f.ID. It returns ErrLimit, and changes nothing, if max
	// is above zero and the user already has max or more confirmed factors.
	CreateFactor(ctx context.Context, f Factor, max int) error
	// Factor returns the user's factor with the given id, pending or
	// confirmed, or ErrNotFound.
	Factor(ctx context.Context, tenant, userID, id string) (Factor, error)
	// Factors returns the user's factors, pending and confirmed, oldest
	// first (by CreatedAt, then by ID). A user without factors gets an
	// empty list and no error.
	Factors(ctx context.Context, tenant, userID string) ([]Factor, error)
	// DeleteFactor removes the user's factor with the given id and returns
	// it, or returns ErrNotFound.
	DeleteFactor(ctx context.Context, tenant, userID, id string) (Factor, error)
	// DeleteFactorKeeping removes the user's factor with the given id and
	// returns it, as DeleteFactor does, unless the user has fewer than
	// keep confirmed factors besides it, of any kind: then it returns
	// ErrLastFactor and changes nothing, whether the factor is confirmed
	// or pending. It returns ErrNotFound, and changes nothing, if the user
	// has no factor with id. The count and the deletion are one atomic
	// step: of concurrent calls deleting different confirmed factors of
	// one user, exactly as many succeed as leave keep confirmed factors.
	// A keep of zero or less keeps nothing.
	DeleteFactorKeeping(ctx context.Context, tenant, userID, id string, keep int) (Factor, error)
}

// FactorUpdater changes one stored factor in one atomic step. Every method
// returns ErrNotFound when the user has no factor with that id.
type FactorUpdater interface {
	// ConfirmFactor makes the user's pending factor id active: it sets
	// ConfirmedAt to at and LastStep to step. It returns ErrConflict, and
	// changes nothing, if the factor is already confirmed. It returns
	// ErrLimit, and changes nothing, if max is above zero and the user
	// already has max or more confirmed factors. The count and the update
	// are one atomic step: of concurrent confirmations of one user's
	// pending factors, no more succeed than leave max confirmed factors,
	// and CreateFactor's count sees them.
	ConfirmFactor(ctx context.Context, tenant, userID, id string, at time.Time, step int64, max int) error
	// AdvanceStep sets LastStep of the user's confirmed factor id to step
	// if step is greater than the stored LastStep (set if newer).
	// Otherwise it returns ErrReplay and changes nothing: of concurrent
	// calls with the same step, exactly one succeeds. A pending factor
	// gives ErrNotFound.
	AdvanceStep(ctx context.Context, tenant, userID, id string, step int64) error
	// ResealSecret replaces KeyID and Secret of the user's factor id by
	// keyID and secret if the stored Secret is still old, byte for byte;
	// otherwise it returns ErrConflict and changes nothing. The other
	// fields are left alone.
	ResealSecret(ctx context.Context, tenant, userID, id string, old []byte, keyID string, secret []byte) error
}

// EnrolmentIndex answers "who uses which factor" for a whole tenant, for
// the adoption counts shown before MFA is enforced.
type EnrolmentIndex interface {
	// Enrolments returns the users of tenant that have at least one
	// confirmed factor, each with the distinct kinds of its confirmed
	// factors in ascending order; pending factors do not count. It returns
	// at most limit users ordered by user ID, starting after the user ID
	// after ("" starts at the beginning); none if limit is below 1.
	Enrolments(ctx context.Context, tenant, after string, limit int) ([]Enrolment, error)
}

// RecoveryStore keeps each user's set of recovery codes, as SHA-256 hashes
// bound to tenant and user; the codes themselves are never stored.
type RecoveryStore interface {
	// ReplaceRecoveryCodes replaces the user's whole set by hashes in one
	// step: no code of the earlier set works afterwards. An empty hashes
	// removes the set.
	ReplaceRecoveryCodes(ctx context.Context, tenant, userID string, hashes []Hash) error
	// UseRecoveryCode removes h from the user's set and returns how many
	// codes are left. If h is not in the set it returns ErrNotFound and
	// changes nothing: of concurrent calls with the same h, exactly one
	// succeeds.
	UseRecoveryCode(ctx context.Context, tenant, userID string, h Hash) (left int, err error)
	// RecoveryCodesLeft returns the number of codes in the user's set: 0,
	// and no error, for a user without a set.
	RecoveryCodesLeft(ctx context.Context, tenant, userID string) (int, error)
	// RecoveryCodes returns the hashes of the codes in the user's set, in
	// any order: none, and no error, for a user without a set.
	RecoveryCodes(ctx context.Context, tenant, userID string) ([]Hash, error)
	// SwapRecoveryCodes replaces the user's set by hashes, as
	// ReplaceRecoveryCodes does, if the set holds exactly the codes of
	// old, in any order (an empty old: a user without a set, or whose
	// codes are all used). Otherwise it returns ErrConflict and changes
	// nothing. The comparison and the replacement are one atomic step: of
	// concurrent calls with the same old, each storing a set other than
	// old, at most one succeeds.
	SwapRecoveryCodes(ctx context.Context, tenant, userID string, old, hashes []Hash) error
}

// CodeStore keeps the one-time codes sent by email or SMS, at most one per
// transaction, as HMACs (see Code). A transaction is named by tenant and
// Txn. Codes expire by comparing ExpiresAt with the now given by the
// caller, never by the store's clock; a store may drop a code once it has
// expired.
type CodeStore interface {
	// PutCode stores c as the one code of its transaction, replacing any
	// code stored for it, whatever its state: a new code voids the old.
	PutCode(ctx context.Context, c Code) error
	// CheckCode applies one attempt with hash h, at now, to the code of
	// the transaction, in one atomic step, by the rule of Code.Attempt:
	//   - an expired code (now not before ExpiresAt) gives ErrExpired with
	//     the code as it was;
	//   - a code without tries left gives ErrTooManyTries with the code,
	//     and stays as it is, even for the right hash;
	//   - a wrong hash uses up one try and gives ErrInvalidCode with the
	//     code as stored after the attempt;
	//   - the right hash consumes the code: it is removed and returned.
	// A transaction without a code gives ErrNotFound. Of concurrent checks
	// with the right hash exactly one succeeds, and concurrent wrong
	// checks never use more tries than the code had left.
	CheckCode(ctx context.Context, tenant, txn string, h Hash, now time.Time) (Code, error)
	// DeleteCode removes the code of the transaction. A transaction
	// without a code is not an error.
	DeleteCode(ctx context.Context, tenant, txn string) error
}

// RateStore counts events per key in fixed windows, for the send limits
// of one-time codes. Keys are opaque strings chosen by the caller, who
// uses one window length per key.
type RateStore interface {
	// Hit counts one event for key at now and returns the count of the
	// key's current window, this event included. A window opens at the
	// first event of a key, or at the first event at or after the end of
	// the key's previous window, and lasts window: its first event counts
	// 1 and each later event before its end one more. A store that keeps
	// times to the microsecond rounds the window's start and length up,
	// never down: its window may end up to 2 µs late, never early. Keys
	// are counted independently. A record whose window has ended may be
	// dropped, so memory is bounded by the rate of events, not by the
	// number of keys ever seen; a store that cannot take a new key returns
	// ErrFull.
	Hit(ctx context.Context, key string, now time.Time, window time.Duration) (int, error)
	// Forget ends the key's window if it is the one a Hit at opened, with
	// window, opened: the key's next Hit opens a new window and counts 1.
	// A window that opened at another time (before, or after the one
	// forgotten had ended), or a key without a window, is left alone, and
	// is not an error. A store that keeps times to the microsecond rounds
	// opened and window as Hit does, so that it finds the window Hit
	// stored. Forget and Hit of one key are atomic with each other: each
	// Hit counts in the window before the Forget or in one opened after
	// it. (SendCode gives back a resend cool-down with it, whose limit is
	// one: the Hit that counted 1 opened the window.)
	Forget(ctx context.Context, key string, opened time.Time, window time.Duration) error
}

// TransactionStore keeps the pending logins between the password step and
// the second factor, by the hash of their token (see Transaction). A store
// may drop a transaction once its ExpiresAt has passed.
type TransactionStore interface {
	// CreateTransaction stores t. It returns ErrDuplicate, and changes
	// nothing, if a transaction with t.Hash exists.
	CreateTransaction(ctx context.Context, t Transaction) error
	// Transaction returns the transaction with hash h, or ErrNotFound. It
	// may return a transaction that has expired; the caller checks.
	Transaction(ctx context.Context, h Hash) (Transaction, error)
	// ConsumeTransaction removes the transaction with hash h and returns
	// it, or returns ErrNotFound: of concurrent calls for one h, exactly
	// one succeeds.
	ConsumeTransaction(ctx context.Context, h Hash) (Transaction, error)
}
