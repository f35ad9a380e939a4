package pgstore

import (
	"context"
	"errors"
	"math"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/guardhq/guard/mfa"
)

// gcBatch is GCBatch in SQL text.
var gcBatch = strconv.Itoa(GCBatch)

// Results of the SQL function mfa_check_code.
const (
	checkRight    = 0
	checkNoCode   = 1
	checkExpired  = 2
	checkTooMany  = 3
	checkWrong    = 4
	checkStatuses = 5
)

// MFAGCGrace is how long after its expiry, judged by the time a write is
// given, a one-time code, send-rate window or pending sign-in becomes
// garbage that MFA deletes: PutCode deletes codes that expired MFAGCGrace
// or more before the new code's CreatedAt, Hit windows that ended
// MFAGCGrace or more before its now, CreateTransaction transactions that
// expired MFAGCGrace or more before the new one's CreatedAt. A replica
// whose clock is behind the others' by less than MFAGCGrace thus still
// finds every code, window and pending sign-in that is live by its own
// clock: a send limit keeps its count. The grace does not change what a
// caller sees: a code expired at the now CheckCode is given is refused
// (mfa.ErrExpired), a window ended at Hit's now starts again at 1, and a
// transaction comes back with its ExpiresAt for the caller to judge,
// however recent.
const MFAGCGrace = 5 * time.Minute

// PutCode implements mfa.CodeStore in one upsert, which also deletes up to
// GCBatch other codes that expired MFAGCGrace or more before c.CreatedAt.
func (s *MFA) PutCode(ctx context.Context, c mfa.Code) error {
	created := micros(c.CreatedAt)
	_, err := s.pool.Exec(ctx, s.sql.putCode, []byte(c.Tenant), []byte(c.Txn), []byte(c.UserID), []byte(c.FactorID),
		[]byte(c.Kind), c.Hash[:], created, micros(c.ExpiresAt), clampInt32(c.TriesLeft), gcCutoff(created, MFAGCGrace))
	if err != nil {
		return wrap("mfa: put code", err)
	}
	return nil
}

// CheckCode implements mfa.CodeStore with one call of the SQL function
// mfa_check_code, which applies mfa.Code.Attempt to the code's row locked
// FOR UPDATE: concurrent checks of one code run one after the other, on
// every replica. now is kept to the microsecond.
func (s *MFA) CheckCode(ctx context.Context, tenant, txn string, h mfa.Hash, now time.Time) (mfa.Code, error) {
	var (
		status                 int32
		userID, factorID, kind *byteaString
		created, expires       *int64
		triesLeft              *int32
		c                      = mfa.Code{Tenant: tenant, Txn: txn}
		hash                   []byte
	)
	err := s.pool.QueryRow(ctx, s.sql.checkCode, []byte(tenant), []byte(txn), h[:], micros(now)).
		Scan(&status, &userID, &factorID, &kind, &hash, &created, &expires, &triesLeft)
	if err != nil {
		return mfa.Code{}, wrap("mfa: check code", err)
	}
	if status == checkNoCode {
		return mfa.Code{}, mfa.ErrNotFound
	}
	if status < 0 || status >= checkStatuses || userID == nil || factorID == nil || kind == nil ||
		created == nil || expires == nil || triesLeft == nil || len(hash) != len(c.Hash) {
		return mfa.Code{}, wrap("mfa: check code", errors.New("unexpected result of mfa_check_code"))
	}
	c.UserID, c.FactorID, c.Kind = string(*userID), string(*factorID), mfa.Kind(*kind)
	copy(c.Hash[:], hash)
	c.CreatedAt, c.ExpiresAt = fromMicros(*created), fromMicros(*expires)
	c.TriesLeft = int(*triesLeft)
	switch status {
	case checkExpired:
		return c, mfa.ErrExpired
	case checkTooMany:
		return c, mfa.ErrTooManyTries
	case checkWrong:
		return c, mfa.ErrInvalidCode
	}
	return c, nil
}

// DeleteCode implements mfa.CodeStore.
func (s *MFA) DeleteCode(ctx context.Context, tenant, txn string) error {
	if _, err := s.pool.Exec(ctx, s.sql.deleteCode, []byte(tenant), []byte(txn)); err != nil {
		return wrap("mfa: delete code", err)
	}
	return nil
}

// Hit implements mfa.RateStore in one INSERT … ON CONFLICT DO UPDATE on
// the key's row, which also deletes up to GCBatch other windows that
// ended MFAGCGrace or more before now. The window is kept to the microsecond, rounded up: a
// window opening at now starts at now rounded up and lasts window rounded
// up, so it never ends before now+window (up to 2 µs after it); now is
// compared with the ends truncated, which is exact. It never returns
// mfa.ErrFull.
func (s *MFA) Hit(ctx context.Context, key string, now time.Time, window time.Duration) (int, error) {
	at, end := micros(now), rateEnd(now, window)
	var n int64
	if err := s.pool.QueryRow(ctx, s.sql.hit, []byte(key), at, end, gcCutoff(at, MFAGCGrace)).Scan(&n); err != nil {
		return 0, wrap("mfa: hit", err)
	}
	return int(n), nil
}

// rateEnd is, in Unix microseconds, the end Hit gives a window of length
// window opening at now: now and window each rounded up, the sum
// saturating.
func rateEnd(now time.Time, window time.Duration) int64 {
	start := microsUp(now)
	end := start
	if w := ceilMicros(window); w > 0 {
		if start > math.MaxInt64-w {
			end = math.MaxInt64
		} else {
			end = start + w
		}
	}
	return end
}

// Forget implements mfa.RateStore in one DELETE of the key's row if it
// ends where Hit puts the end of a window opened at opened (a key's
// windows all have one length, so no other window of it ends there).
func (s *MFA) Forget(ctx context.Context, key string, opened time.Time, window time.Duration) error {
	if _, err := s.pool.Exec(ctx, s.sql.forget, []byte(key), rateEnd(opened, window)); err != nil {
		return wrap("mfa: forget", err)
	}
	return nil
}

const txnCols = `hash, tenant, user_id, binding, purpose, flags, created_us, expires_us`

func scanTxn(row pgx.Row) (mfa.Transaction, error) {
	var (
		t                      mfa.Transaction
		flags, created, expire int64
	)
	err := row.Scan((*byteaHash)(&t.Hash), (*byteaString)(&t.Tenant), (*byteaString)(&t.UserID), (*byteaHash)(&t.Binding),
		(*byteaString)(&t.Purpose), &flags, &created, &expire)
	if err != nil {
		return mfa.Transaction{}, err
	}
	if t.Flags, err = flags32("MFA transaction", flags); err != nil {
		return mfa.Transaction{}, err
	}
	t.CreatedAt, t.ExpiresAt = fromMicros(created), fromMicros(expire)
	return t, nil
}

// CreateTransaction implements mfa.TransactionStore in one INSERT … ON
// CONFLICT DO NOTHING, which also deletes up to GCBatch other transactions
// that expired MFAGCGrace or more before t.CreatedAt.
func (s *MFA) CreateTransaction(ctx context.Context, t mfa.Transaction) error {
	created := micros(t.CreatedAt)
	tag, err := s.pool.Exec(ctx, s.sql.createTxn, t.Hash[:], []byte(t.Tenant), []byte(t.UserID), t.Binding[:],
		[]byte(t.Purpose), int64(t.Flags), created, micros(t.ExpiresAt), gcCutoff(created, MFAGCGrace))
	if err != nil {
		return wrap("mfa: create transaction", err)
	}
	if tag.RowsAffected() == 0 {
		return mfa.ErrDuplicate
	}
	return nil
}

// Transaction implements mfa.TransactionStore.
func (s *MFA) Transaction(ctx context.Context, h mfa.Hash) (mfa.Transaction, error) {
	t, err := scanTxn(s.pool.QueryRow(ctx, s.sql.txn, h[:]))
	if errors.Is(err, pgx.ErrNoRows) {
		return mfa.Transaction{}, mfa.ErrNotFound
	}
	if err != nil {
		return mfa.Transaction{}, wrap("mfa: transaction", err)
	}
	return t, nil
}

// ConsumeTransaction implements mfa.TransactionStore with DELETE …
// RETURNING: of concurrent calls one gets the row.
func (s *MFA) ConsumeTransaction(ctx context.Context, h mfa.Hash) (mfa.Transaction, error) {
	t, err := scanTxn(s.pool.QueryRow(ctx, s.sql.consumeTxn, h[:]))
	if errors.Is(err, pgx.ErrNoRows) {
		return mfa.Transaction{}, mfa.ErrNotFound
	}
	if err != nil {
		return mfa.Transaction{}, wrap("mfa: consume transaction", err)
	}
	return t, nil
}
