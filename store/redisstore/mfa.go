package redisstore

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/guardhq/guard/mfa"
)

var (
	_ mfa.CodeStore        = (*Store)(nil)
	_ mfa.RateStore        = (*Store)(nil)
	_ mfa.TransactionStore = (*Store)(nil)
)

// MFAStores returns the short-lived MFA roles that s keeps: Codes, Rates
// and Transactions, all s. The other roles (factors, enrolments, recovery
// codes: tenant data that must last) are nil, to be filled from a SQL
// backend's mfa.Stores.
func (s *Store) MFAStores() mfa.Stores {
	return mfa.Stores{Codes: s, Rates: s, Transactions: s}
}

// codeKey is the key of the one-time code of transaction (tenant, txn).
// The tenant is written with its length first, as in indexKey, so that no
// two (tenant, txn) pairs share a key.
func (s *Store) codeKey(tenant, txn string) string {
	return s.prefix + "mc:" + strconv.Itoa(len(tenant)) + ":" + tenant + ":" + txn
}

// rateKey is the key of the rate counter of key.
func (s *Store) rateKey(key string) string { return s.prefix + "mr:" + key }

// txnKey is the key of the transaction with hash h.
func (s *Store) txnKey(h mfa.Hash) string {
	var b [3 + 2*len(h)]byte
	b[0], b[1], b[2] = 'm', 't', ':'
	hex.Encode(b[3:], h[:])
	return s.prefix + string(b[:])
}

// PutCode implements mfa.CodeStore: one script replaces whatever the
// transaction's key held and makes it expire at c.ExpiresAt. Times are
// kept to the microsecond. It returns an *InputError, and changes nothing,
// when c.CreatedAt or c.ExpiresAt lies outside the years 1970 to 2255.
func (s *Store) PutCode(ctx context.Context, c mfa.Code) error {
	created, err := micros("Code.CreatedAt", c.CreatedAt)
	if err != nil {
		return err
	}
	expires, err := micros("Code.ExpiresAt", c.ExpiresAt)
	if err != nil {
		return err
	}
	args := []any{
		itoa(expireMillis(expires)),
		"u", c.UserID,
		"f", c.FactorID,
		"k", string(c.Kind),
		"h", hex.EncodeToString(c.Hash[:]),
		"c", itoa(created),
		"e", itoa(expires),
		"n", strconv.Itoa(c.TriesLeft),
	}
	if err := putCodeScript.Run(ctx, s.rdb, []string{s.codeKey(c.Tenant, c.Txn)}, args...).Err(); err != nil {
		return redisErr("put code", err)
	}
	return nil
}

// Status codes of checkCodeScript.
const (
	codeRight   = 0
	codeNone    = 1
	codeExpired = 2
	codeNoTries = 3
	codeWrong   = 4
	codeMangled = 9
)

// CheckCode implements mfa.CodeStore: one script applies mfa.Code.Attempt
// at now (kept to the microsecond) and removes, keeps or updates the code
// accordingly. The code returned is the one Attempt returns, computed from
// the code as the script read it. It returns an *InputError, and changes
// nothing, when now lies outside the years 1970 to 2255.
func (s *Store) CheckCode(ctx context.Context, tenant, txn string, h mfa.Hash, now time.Time) (mfa.Code, error) {
	at, err := micros("now", now)
	if err != nil {
		return mfa.Code{}, err
	}
	v, err := checkCodeScript.Run(ctx, s.rdb, []string{s.codeKey(tenant, txn)}, itoa(at), hex.EncodeToString(h[:])).Slice()
	if err != nil {
		return mfa.Code{}, redisErr("check code", err)
	}
	if len(v) == 0 {
		return mfa.Code{}, redisErr("check code", ErrCorrupt)
	}
	status, ok := v[0].(int64)
	switch {
	case !ok || status == codeMangled:
		return mfa.Code{}, redisErr("check code", ErrCorrupt)
	case status == codeNone:
		return mfa.Code{}, mfa.ErrNotFound
	case len(v) != 1+len(codeFieldNames):
		return mfa.Code{}, redisErr("check code", ErrCorrupt)
	}
	c, err := decodeCode(v[1:], tenant, txn)
	if err != nil {
		return mfa.Code{}, redisErr("check code", err)
	}
	// The script has decided and done; Attempt, at the same microsecond,
	// gives the code to return and must agree with it.
	next, keep, aerr := c.Attempt(h, fromMicros(at))
	var want int64
	switch {
	case aerr == nil && !keep:
		want = codeRight
	case errors.Is(aerr, mfa.ErrExpired):
		want = codeExpired
	case errors.Is(aerr, mfa.ErrTooManyTries):
		want = codeNoTries
	case errors.Is(aerr, mfa.ErrInvalidCode):
		want = codeWrong
	default:
		want = -1
	}
	if status != want {
		return mfa.Code{}, redisErr("check code", fmt.Errorf("%w: the script returned %d for a code that gives %v", ErrCorrupt, status, aerr))
	}
	return next, aerr
}

// decodeCode decodes the fields of a code in the order of codeFieldNames.
func decodeCode(v []any, tenant, txn string) (mfa.Code, error) {
	var str [7]string
	for i := range str {
		s, ok := v[i].(string)
		if !ok {
			return mfa.Code{}, fmt.Errorf("%w: code field %s", ErrCorrupt, codeFieldNames[i])
		}
		str[i] = s
	}
	c := mfa.Code{Tenant: tenant, Txn: txn, UserID: str[0], FactorID: str[1], Kind: mfa.Kind(str[2])}
	if err := decodeHash(c.Hash[:], str[3]); err != nil {
		return mfa.Code{}, err
	}
	created, err1 := strconv.ParseInt(str[4], 10, 64)
	expires, err2 := strconv.ParseInt(str[5], 10, 64)
	tries, err3 := strconv.Atoi(str[6])
	if err1 != nil || err2 != nil || err3 != nil {
		return mfa.Code{}, ErrCorrupt
	}
	c.CreatedAt, c.ExpiresAt, c.TriesLeft = fromMicros(created), fromMicros(expires), tries
	return c, nil
}

// decodeHash decodes the hex hash s into dst, which it fills exactly.
func decodeHash(dst []byte, s string) error {
	if len(s) != 2*len(dst) {
		return ErrCorrupt
	}
	if _, err := hex.Decode(dst, []byte(s)); err != nil {
		return ErrCorrupt
	}
	return nil
}

// DeleteCode implements mfa.CodeStore with one DEL.
func (s *Store) DeleteCode(ctx context.Context, tenant, txn string) error {
	if err := s.rdb.Del(ctx, s.codeKey(tenant, txn)).Err(); err != nil {
		return redisErr("delete code", err)
	}
	return nil
}

// Hit implements mfa.RateStore in one script. A window's end is now plus
// window, each rounded up to the microsecond, so that it never comes
// before the exact one (up to 2 µs after it); now is compared with the
// ends truncated, which is exact. The window is judged at now from the
// end kept in the record (a Hit at or after it opens a new window at 1);
// the key expires ClockGrace after the end, by the Redis clock, only to
// free it, so that a host whose clock is behind the server's by up to
// ClockGrace still finds the window open at its now. It
// returns an *InputError, and changes nothing, when window is not
// positive, or when now or the end of a window opening at now lies outside
// the years 1970 to 2255.
func (s *Store) Hit(ctx context.Context, key string, now time.Time, window time.Duration) (int, error) {
	at, end, err := rateWindow("now", now, window)
	if err != nil {
		return 0, err
	}
	n, err := hitScript.Run(ctx, s.rdb, []string{s.rateKey(key)}, itoa(at), itoa(end), itoa(expireMillis(end+ClockGrace.Microseconds()))).Int64()
	if err != nil {
		return 0, redisErr("rate hit", err)
	}
	if n < 1 {
		return 0, redisErr("rate hit", ErrCorrupt)
	}
	return int(n), nil
}

// rateWindow returns at, in microseconds, and the end Hit gives a window
// of length window opening at at: each rounded up to the microsecond. It
// returns an *InputError when window is not positive, or when at (named
// field) or the end lies outside the years 1970 to 2255.
func rateWindow(field string, at time.Time, window time.Duration) (us, end int64, err error) {
	if window <= 0 {
		return 0, 0, &InputError{Field: "window", Reason: "must be positive"}
	}
	us, err = micros(field, at)
	if err != nil {
		return 0, 0, err
	}
	w, up := ceilMicros(window), microsUp(us, at)
	if up > maxMicros-w {
		return 0, 0, &InputError{Field: "window", Reason: "would end after 2255"}
	}
	return us, up + w, nil
}

// Forget implements mfa.RateStore in one script, which deletes the key
// if its window ends where Hit puts the end of a window opened at opened
// (a key's windows all have one length, so no other window of it ends
// there). It returns an *InputError, and changes nothing, for the
// arguments Hit refuses.
func (s *Store) Forget(ctx context.Context, key string, opened time.Time, window time.Duration) error {
	_, end, err := rateWindow("opened", opened, window)
	if err != nil {
		return err
	}
	if err := forgetScript.Run(ctx, s.rdb, []string{s.rateKey(key)}, itoa(end)).Err(); err != nil {
		return redisErr("rate forget", err)
	}
	return nil
}

// CreateTransaction implements mfa.TransactionStore in one script, which
// makes the key expire at t.ExpiresAt. Times are kept to the microsecond.
// It returns an *InputError, and changes nothing, when t.CreatedAt or
// t.ExpiresAt lies outside the years 1970 to 2255.
func (s *Store) CreateTransaction(ctx context.Context, t mfa.Transaction) error {
	created, err := micros("Transaction.CreatedAt", t.CreatedAt)
	if err != nil {
		return err
	}
	expires, err := micros("Transaction.ExpiresAt", t.ExpiresAt)
	if err != nil {
		return err
	}
	args := []any{
		itoa(expireMillis(expires)),
		"t", t.Tenant,
		"u", t.UserID,
		"b", hex.EncodeToString(t.Binding[:]),
		"p", t.Purpose,
		"f", strconv.FormatUint(uint64(t.Flags), 10),
		"c", itoa(created),
		"e", itoa(expires),
	}
	dup, err := createTxnScript.Run(ctx, s.rdb, []string{s.txnKey(t.Hash)}, args...).Int64()
	if err != nil {
		return redisErr("create transaction", err)
	}
	if dup == 1 {
		return mfa.ErrDuplicate
	}
	return nil
}

// Transaction implements mfa.TransactionStore with one HMGET.
func (s *Store) Transaction(ctx context.Context, h mfa.Hash) (mfa.Transaction, error) {
	v, err := s.rdb.HMGet(ctx, s.txnKey(h), txnFieldNames...).Result()
	if err != nil {
		return mfa.Transaction{}, redisErr("lookup transaction", err)
	}
	if len(v) == 0 || v[0] == nil {
		return mfa.Transaction{}, mfa.ErrNotFound
	}
	t, err := decodeTxn(v, h)
	if err != nil {
		return mfa.Transaction{}, redisErr("lookup transaction", err)
	}
	return t, nil
}

// ConsumeTransaction implements mfa.TransactionStore in one script.
func (s *Store) ConsumeTransaction(ctx context.Context, h mfa.Hash) (mfa.Transaction, error) {
	v, err := consumeTxnScript.Run(ctx, s.rdb, []string{s.txnKey(h)}).Slice()
	if errors.Is(err, redis.Nil) {
		return mfa.Transaction{}, mfa.ErrNotFound
	}
	if err != nil {
		return mfa.Transaction{}, redisErr("consume transaction", err)
	}
	t, err := decodeTxn(v, h)
	if err != nil {
		return mfa.Transaction{}, redisErr("consume transaction", err)
	}
	return t, nil
}

// decodeTxn decodes the fields of a transaction in the order of
// txnFieldNames.
func decodeTxn(v []any, h mfa.Hash) (mfa.Transaction, error) {
	if len(v) != len(txnFieldNames) {
		return mfa.Transaction{}, ErrCorrupt
	}
	var str [7]string
	for i := range str {
		s, ok := v[i].(string)
		if !ok {
			return mfa.Transaction{}, fmt.Errorf("%w: transaction field %s", ErrCorrupt, txnFieldNames[i])
		}
		str[i] = s
	}
	t := mfa.Transaction{Hash: h, Tenant: str[0], UserID: str[1], Purpose: str[3]}
	if err := decodeHash(t.Binding[:], str[2]); err != nil {
		return mfa.Transaction{}, err
	}
	flags, err1 := strconv.ParseUint(str[4], 10, 32)
	created, err2 := strconv.ParseInt(str[5], 10, 64)
	expires, err3 := strconv.ParseInt(str[6], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil {
		return mfa.Transaction{}, ErrCorrupt
	}
	t.Flags, t.CreatedAt, t.ExpiresAt = uint32(flags), fromMicros(created), fromMicros(expires)
	return t, nil
}
