package mfa

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"time"
)

// MaxPurposeLen bounds TransactionOptions.Purpose, in bytes.
const MaxPurposeLen = 64

// transactionTokenLen is the length of a transaction token: 32 random
// bytes in base64url without padding.
const transactionTokenLen = 43

// TransactionOptions describe a pending login.
type TransactionOptions struct {
	// Tenant and UserID name the user who passed the first factor
	// (required).
	Tenant, UserID string
	// Binding ties the transaction to the client: any value the facade
	// can read again on the next request of the same client (for example
	// a random value in a second cookie). Only its SHA-256 is stored; the
	// token then works only with the same Binding. "" binds nothing
	// beyond the token itself.
	Binding string
	// Purpose and Flags are stored as they are, for the facade (Purpose
	// at most MaxPurposeLen bytes).
	Purpose string
	Flags   uint32
	// TTL overrides Config.TransactionTTL.
	TTL time.Duration
}

// StartTransaction starts a pending login after the first factor and
// returns its token (give it to the client; it is not kept anywhere) and
// the transaction as stored. The token is 256 random bits; its hash is
// domain-separated from session tokens, so it can never be taken for a
// session, and it opens nothing: the facade only uses it to find the
// transaction when the second factor arrives.
func (m *Manager) StartTransaction(ctx context.Context, o TransactionOptions) (token string, t Transaction, err error) {
	if err := checkUser(o.Tenant, o.UserID); err != nil {
		return "", Transaction{}, err
	}
	if len(o.Purpose) > MaxPurposeLen {
		return "", Transaction{}, &InputError{Field: "purpose", Reason: fmt.Sprintf("is longer than %d bytes", MaxPurposeLen)}
	}
	if o.TTL < 0 {
		return "", Transaction{}, &InputError{Field: "TTL", Reason: "must not be negative"}
	}
	var raw [32]byte
	if _, err := io.ReadFull(m.rand, raw[:]); err != nil {
		return "", Transaction{}, fmt.Errorf("mfa: reading random bytes: %w", err)
	}
	now := m.timestamp()
	t = Transaction{
		Hash:      transactionHash(raw[:]),
		Tenant:    o.Tenant,
		UserID:    o.UserID,
		Binding:   bindingHash(o.Binding),
		Purpose:   o.Purpose,
		Flags:     o.Flags,
		CreatedAt: now,
		ExpiresAt: now.Add(or(o.TTL, m.txnTTL)),
	}
	if err := m.st.Transactions.CreateTransaction(ctx, t); err != nil {
		return "", Transaction{}, storeErr("create transaction", err)
	}
	return base64.RawURLEncoding.EncodeToString(raw[:]), t, nil
}

// LookupTransaction returns the live transaction behind token, if binding
// is the one it was started with. It returns an *InputError for a
// malformed token, ErrNotFound for an unknown token or another binding,
// and ErrExpired for a transaction past its lifetime (which it then
// deletes).
func (m *Manager) LookupTransaction(ctx context.Context, token, binding string) (Transaction, error) {
	h, err := parseTransactionToken(token)
	if err != nil {
		return Transaction{}, err
	}
	t, err := m.st.Transactions.Transaction(ctx, h)
	if err != nil {
		return Transaction{}, storeErr("transaction", err)
	}
	if !t.Binding.Equal(bindingHash(binding)) {
		return Transaction{}, ErrNotFound
	}
	if !t.LiveAt(m.now()) {
		_, _ = m.st.Transactions.ConsumeTransaction(ctx, h)
		return Transaction{}, ErrExpired
	}
	return t, nil
}

// ConsumeTransaction ends the transaction behind token and returns it,
// once: of concurrent calls exactly one succeeds, so one pending login
// yields at most one session. Call it when the second factor has been
// accepted (or to abandon the login). Errors are those of
// LookupTransaction. A code still pending for the transaction is deleted.
func (m *Manager) ConsumeTransaction(ctx context.Context, token, binding string) (Transaction, error) {
	t, err := m.LookupTransaction(ctx, token, binding)
	if err != nil {
		return Transaction{}, err
	}
	t, err = m.st.Transactions.ConsumeTransaction(ctx, t.Hash)
	if err != nil {
		return Transaction{}, storeErr("consume transaction", err)
	}
	if m.st.Codes != nil {
		_ = m.st.Codes.DeleteCode(ctx, t.Tenant, codeTxn(t.UserID, t.ID()))
	}
	if !t.LiveAt(m.now()) {
		return Transaction{}, ErrExpired
	}
	return t, nil
}

// parseTransactionToken checks a token and returns its hash.
func parseTransactionToken(token string) (Hash, error) {
	if len(token) != transactionTokenLen {
		return Hash{}, &InputError{Field: "token", Reason: "is malformed"}
	}
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(raw) != 32 {
		return Hash{}, &InputError{Field: "token", Reason: "is malformed"}
	}
	return transactionHash(raw), nil
}

// transactionHash is the stored form of a transaction token, domain
// separated from session token hashes (plain SHA-256).
func transactionHash(raw []byte) Hash {
	h := sha256.New()
	h.Write([]byte("guard/mfa/transaction/v1\x00"))
	h.Write(raw)
	var out Hash
	h.Sum(out[:0])
	return out
}

// bindingHash is the stored form of a client binding; zero for none.
func bindingHash(binding string) Hash {
	if binding == "" {
		return Hash{}
	}
	return sha256.Sum256(appendFields(nil, "guard/mfa/binding/v1", binding))
}
