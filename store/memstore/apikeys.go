package memstore

import (
	"cmp"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/guardhq/guard/auth"
)

// APIKeys is an in-memory auth.APIKeyStore. Every method holds one lock
// for its whole step.
type APIKeys struct {
	mu     sync.RWMutex
	byHash map[[32]byte]auth.APIKey
	byID   map[userRef][32]byte // (tenant, id) → hash
}

var _ auth.APIKeyStore = (*APIKeys)(nil)

// NewAPIKeys returns an empty API key store.
func NewAPIKeys() *APIKeys {
	return &APIKeys{byHash: make(map[[32]byte]auth.APIKey), byID: make(map[userRef][32]byte)}
}

// CreateAPIKey implements auth.APIKeyStore: the tenant's live keys are
// counted, and the key stored, under one lock.
func (s *APIKeys) CreateAPIKey(_ context.Context, k auth.APIKey, maxLive int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	ref := userRef{k.Tenant, k.ID}
	if _, ok := s.byID[ref]; ok {
		return auth.ErrDuplicateID
	}
	if _, ok := s.byHash[k.Hash]; ok {
		return auth.ErrDuplicateID
	}
	if maxLive > 0 && s.live(k.Tenant, k.CreatedAt, maxLive) >= maxLive {
		return auth.ErrTooManyAPIKeys
	}
	s.byHash[k.Hash] = k
	s.byID[ref] = k.Hash
	return nil
}

// live counts the keys of tenant usable at t, up to max; s.mu is held.
func (s *APIKeys) live(tenant string, t time.Time, max int) int {
	n := 0
	for ref, h := range s.byID {
		if ref.tenant == tenant && s.byHash[h].UsableAt(t) {
			if n++; n == max {
				break
			}
		}
	}
	return n
}

// APIKeyByHash implements auth.APIKeyStore.
func (s *APIKeys) APIKeyByHash(_ context.Context, h [32]byte) (auth.APIKey, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	k, ok := s.byHash[h]
	if !ok {
		return auth.APIKey{}, auth.ErrNotFound
	}
	return k, nil
}

// ListAPIKeys implements auth.APIKeyStore.
func (s *APIKeys) ListAPIKeys(_ context.Context, tenant string) ([]auth.APIKey, error) {
	s.mu.RLock()
	var out []auth.APIKey
	for ref, h := range s.byID {
		if ref.tenant == tenant {
			out = append(out, s.byHash[h])
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b auth.APIKey) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// RevokeAPIKey implements auth.APIKeyStore.
func (s *APIKeys) RevokeAPIKey(_ context.Context, tenant, id string, at time.Time) error {
	return s.update(tenant, id, func(k *auth.APIKey) {
		if k.RevokedAt.IsZero() {
			k.RevokedAt = at
		}
	})
}

// TouchAPIKey implements auth.APIKeyStore.
func (s *APIKeys) TouchAPIKey(_ context.Context, tenant, id string, at time.Time) error {
	return s.update(tenant, id, func(k *auth.APIKey) {
		if at.After(k.LastUsedAt) {
			k.LastUsedAt = at
		}
	})
}

// RevokeByCreator implements auth.APIKeyStore under one lock.
func (s *APIKeys) RevokeByCreator(_ context.Context, tenant, userID string, at time.Time) ([]auth.APIKey, error) {
	s.mu.Lock()
	var out []auth.APIKey
	for ref, h := range s.byID {
		if ref.tenant != tenant {
			continue
		}
		k := s.byHash[h]
		if k.CreatedBy != userID || !k.RevokedAt.IsZero() {
			continue
		}
		k.RevokedAt = at
		s.byHash[h] = k
		out = append(out, k)
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b auth.APIKey) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

func (s *APIKeys) update(tenant, id string, f func(*auth.APIKey)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	h, ok := s.byID[userRef{tenant, id}]
	if !ok {
		return auth.ErrNotFound
	}
	k := s.byHash[h]
	f(&k)
	s.byHash[h] = k
	return nil
}

// PurgeAPIKeys implements auth.APIKeyStore under one lock.
func (s *APIKeys) PurgeAPIKeys(_ context.Context, tenant string, before time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for ref, h := range s.byID {
		if ref.tenant != tenant {
			continue
		}
		k := s.byHash[h]
		if (k.RevokedAt.IsZero() || !k.RevokedAt.Before(before)) && (k.ExpiresAt.IsZero() || !k.ExpiresAt.Before(before)) {
			continue
		}
		delete(s.byID, ref)
		delete(s.byHash, h)
		n++
	}
	return n, nil
}
