package auth

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"io"
	"strings"
	"time"
)

// API keys give programs access to one tenant. A key is shown once, when
// it is created; the store keeps only its SHA-256 hash (a key carries 256
// random bits, so a fast hash is as safe as a slow one), its public ID and
// the first characters of the key, which let a person recognise it in a
// list.
//
// Format: "gk_" followed by 43 base64url characters (32 random bytes), for
// example gk_Vb2vJmJ6O8r0F3m8JwZ7rXw1wq0o0zYQj0P3cJ1bK2c. The fixed prefix
// lets secret scanners recognise a leaked key.
const (
	APIKeyPrefix = "gk_"
	apiKeyLen    = len(APIKeyPrefix) + 43
	// APIKeyShownChars is how many characters of a key (prefix included)
	// are kept in APIKey.Prefix: 8 random characters, 48 of the 256 bits.
	APIKeyShownChars = len(APIKeyPrefix) + 8
)

// APIKey is a stored API key: never the key itself.
type APIKey struct {
	ID         string // public identifier, unique in the tenant
	Tenant     string
	Name       string // what the key is for, set by its creator
	Prefix     string // the key's first APIKeyShownChars characters
	Hash       [32]byte
	CreatedBy  string // user ID of the creator, or the label of the host (guard.System) that created it
	CreatedAt  time.Time
	ExpiresAt  time.Time // zero: never
	LastUsedAt time.Time // zero: never used
	RevokedAt  time.Time // zero: not revoked
}

// UsableAt reports whether k may authenticate a request at t: not revoked
// and not expired.
func (k APIKey) UsableAt(t time.Time) bool {
	return k.RevokedAt.IsZero() && (k.ExpiresAt.IsZero() || t.Before(k.ExpiresAt))
}

// GenerateAPIKey returns a new key read from r (a cryptographically secure
// source), its hash and the prefix to store.
func GenerateAPIKey(r io.Reader) (key string, hash [32]byte, prefix string, err error) {
	var raw [32]byte
	if _, err := io.ReadFull(r, raw[:]); err != nil {
		return "", hash, "", err
	}
	key = APIKeyPrefix + base64.RawURLEncoding.EncodeToString(raw[:])
	return key, sha256.Sum256([]byte(key)), key[:APIKeyShownChars], nil
}

// ErrMalformedAPIKey is returned by ParseAPIKey for anything that is not a
// key in the documented format.
var ErrMalformedAPIKey = &InputError{Field: "API key", Reason: "malformed"}

// ParseAPIKey checks the format of a presented key strictly (prefix, exact
// length, canonical base64url with zero trailing bits) and returns the hash
// to look it up by. It never echoes the key in an error.
func ParseAPIKey(s string) ([32]byte, error) {
	if len(s) != apiKeyLen || !strings.HasPrefix(s, APIKeyPrefix) {
		return [32]byte{}, ErrMalformedAPIKey
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s[len(APIKeyPrefix):])
	if err != nil || len(b) != 32 {
		return [32]byte{}, ErrMalformedAPIKey
	}
	return sha256.Sum256([]byte(s)), nil
}

// ErrTooManyAPIKeys is returned by APIKeyStore.CreateAPIKey when the
// tenant already has the most live keys it may have.
var ErrTooManyAPIKeys = errors.New("auth: too many API keys")

// APIKeyStore keeps the API keys of every tenant. Keys are found by hash
// alone (a request presents only the key); every other method is scoped by
// tenant.
type APIKeyStore interface {
	// CreateAPIKey stores k. It returns ErrDuplicateID, and stores nothing,
	// if the tenant has a key with k.ID or any tenant has a key with k.Hash.
	// It returns ErrTooManyAPIKeys, and stores nothing, if maxLive is above
	// zero and the tenant already has maxLive or more keys usable at
	// k.CreatedAt (UsableAt: not revoked, not expired); revoked and expired
	// keys, and other tenants' keys, do not count. The count and the insert
	// are one atomic step: of concurrent calls, no more succeed than the
	// bound leaves room for.
	CreateAPIKey(ctx context.Context, k APIKey, maxLive int) error
	// APIKeyByHash returns the key with hash h, revoked or expired ones
	// included (the caller checks UsableAt), or ErrNotFound.
	APIKeyByHash(ctx context.Context, h [32]byte) (APIKey, error)
	// ListAPIKeys returns the tenant's keys, revoked ones included, ordered
	// by CreatedAt then ID.
	ListAPIKeys(ctx context.Context, tenant string) ([]APIKey, error)
	// RevokeAPIKey sets RevokedAt to at if the key is not revoked yet (a
	// second revocation keeps the first time); ErrNotFound if the tenant
	// has no key id.
	RevokeAPIKey(ctx context.Context, tenant, id string, at time.Time) error
	// TouchAPIKey sets LastUsedAt to at if at is later than the stored
	// LastUsedAt (set if newer); ErrNotFound if the tenant has no key id.
	TouchAPIKey(ctx context.Context, tenant, id string, at time.Time) error
	// RevokeByCreator sets RevokedAt to at, in one atomic step, on every
	// key of tenant whose CreatedBy is userID and that is not revoked yet,
	// expired ones included, and returns those keys as stored after the
	// change, ordered by CreatedAt then ID. Keys already revoked keep
	// their time and are not returned, so a second call returns none; of
	// concurrent calls, each key is returned by exactly one. Keys of
	// other creators, and keys of other tenants created by the same user
	// ID, are untouched. No key to revoke is no error.
	RevokeByCreator(ctx context.Context, tenant, userID string, at time.Time) ([]APIKey, error)
	// PurgeAPIKeys deletes, in one atomic step, every key of tenant
	// revoked before before (RevokedAt not zero and earlier) or expired
	// before it (ExpiresAt not zero and earlier), and returns how many it
	// deleted; a second call with the same before deletes none. Live
	// keys, keys revoked or expired at or after before, and other
	// tenants' keys stay. A purged key is gone: APIKeyByHash returns
	// ErrNotFound for it and ListAPIKeys leaves it out. Purged keys were
	// not live, so a purge neither frees nor takes a place under
	// CreateAPIKey's bound. No key to purge is no error.
	PurgeAPIKeys(ctx context.Context, tenant string, before time.Time) (int, error)
}
