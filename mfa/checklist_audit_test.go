package mfa_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"sync"
	"testing"

	"github.com/guardhq/guard/mfa"
)

// keptRecovery is a RecoveryStore that keeps a copy of every set of
// hashes it is given.
type keptRecovery struct {
	mfa.RecoveryStore
	mu   sync.Mutex
	sets [][]mfa.Hash
}

func (k *keptRecovery) ReplaceRecoveryCodes(ctx context.Context, tenant, userID string, hashes []mfa.Hash) error {
	k.mu.Lock()
	k.sets = append(k.sets, append([]mfa.Hash(nil), hashes...))
	k.mu.Unlock()
	return k.RecoveryStore.ReplaceRecoveryCodes(ctx, tenant, userID, hashes)
}

// MF-18 (SECURITY-CHECKLIST; ASVS 6.5.2): recovery codes carry 120 random
// bits (24 Crockford base32 characters), above the 112 that would call for
// a salted password hash; the store is given only their hashes, never a
// code nor its plain SHA-256. (Regeneration voiding the old set is
// TestRecoveryCodesRegenerate.)
func TestRecoveryCodesStoredHashed(t *testing.T) {
	var kept *keptRecovery
	f := newFixture(t, func(c *mfa.Config) {
		kept = &keptRecovery{RecoveryStore: c.Stores.Recovery}
		c.Stores.Recovery = kept
	})
	codes, err := f.m.GenerateRecoveryCodes(t.Context(), "t", "u")
	if err != nil {
		t.Fatal(err)
	}
	if len(kept.sets) != 1 || len(kept.sets[0]) != len(codes) {
		t.Fatalf("the store was given %d sets, want one of %d hashes", len(kept.sets), len(codes))
	}
	for _, c := range codes {
		norm, err := mfa.ParseRecoveryCode(c)
		if err != nil || len(norm)*5 < 112 {
			t.Fatalf("code %q: %d bits (%v), want at least 112", c, len(norm)*5, err)
		}
		for _, h := range kept.sets[0] {
			for _, plain := range []string{c, norm} {
				if bytes.Contains(h[:], []byte(plain)) || h == sha256.Sum256([]byte(plain)) {
					t.Fatalf("the store holds code %q or its plain SHA-256", c)
				}
			}
		}
	}
}
