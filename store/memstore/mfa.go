package memstore

import (
	"bytes"
	"cmp"
	"context"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/guardhq/guard/mfa"
)

// MFA is every mfa store in memory: factors, enrolments, recovery codes,
// one-time codes, send-rate counters and pending logins. Each method holds
// the lock of its part for its whole step.
//
// Memory is bounded: expired codes, transactions and rate windows are
// dropped (swept as their maps grow, judged by the times the callers pass
// in, never by the wall clock), and at most maxRateKeys rate counters are
// live; beyond that Hit of a new key fails with mfa.ErrFull (the caller
// then refuses to send). Factors and recovery codes stay until deleted.
type MFA struct {
	mu       sync.RWMutex // factors and recovery
	factors  map[mfaUser]map[string]mfa.Factor
	recovery map[mfaUser]map[mfa.Hash]struct{}

	codeMu      sync.Mutex
	codes       map[mfaTxn]mfa.Code
	codeSweepAt int

	rateMu      sync.Mutex
	rates       map[string]mfaRateWindow
	rateSweepAt int
	maxRateKeys int

	txnMu      sync.Mutex
	txns       map[mfa.Hash]mfa.Transaction
	txnSweepAt int
}

type mfaUser struct{ tenant, userID string }

type mfaTxn struct{ tenant, txn string }

type mfaRateWindow struct {
	count int
	end   time.Time
}

const mfaMinSweep = 1024

var (
	_ mfa.FactorStore      = (*MFA)(nil)
	_ mfa.FactorUpdater    = (*MFA)(nil)
	_ mfa.EnrolmentIndex   = (*MFA)(nil)
	_ mfa.RecoveryStore    = (*MFA)(nil)
	_ mfa.CodeStore        = (*MFA)(nil)
	_ mfa.RateStore        = (*MFA)(nil)
	_ mfa.TransactionStore = (*MFA)(nil)
)

// NewMFA returns an empty MFA store holding at most 1<<20 rate counters.
func NewMFA() *MFA { return NewMFABounded(0) }

// NewMFABounded returns an empty MFA store holding at most maxRateKeys
// live rate counters (0 means 1<<20).
func NewMFABounded(maxRateKeys int) *MFA {
	if maxRateKeys <= 0 {
		maxRateKeys = 1 << 20
	}
	return &MFA{
		factors:     make(map[mfaUser]map[string]mfa.Factor),
		recovery:    make(map[mfaUser]map[mfa.Hash]struct{}),
		codes:       make(map[mfaTxn]mfa.Code),
		codeSweepAt: mfaMinSweep,
		rates:       make(map[string]mfaRateWindow),
		rateSweepAt: mfaMinSweep,
		maxRateKeys: maxRateKeys,
		txns:        make(map[mfa.Hash]mfa.Transaction),
		txnSweepAt:  mfaMinSweep,
	}
}

// Stores returns s as every role of mfa.Stores.
func (s *MFA) Stores() mfa.Stores {
	return mfa.Stores{
		Factors:       s,
		FactorUpdates: s,
		Enrolments:    s,
		Recovery:      s,
		Codes:         s,
		Rates:         s,
		Transactions:  s,
	}
}

// Len reports how many one-time codes, rate counters and transactions
// are held, expired or not (for tests of the memory bound).
func (s *MFA) Len() (codes, rates, transactions int) {
	s.codeMu.Lock()
	codes = len(s.codes)
	s.codeMu.Unlock()
	s.rateMu.Lock()
	rates = len(s.rates)
	s.rateMu.Unlock()
	s.txnMu.Lock()
	transactions = len(s.txns)
	s.txnMu.Unlock()
	return codes, rates, transactions
}

func cloneFactor(f mfa.Factor) mfa.Factor {
	f.Secret = bytes.Clone(f.Secret)
	return f
}

// CreateFactor implements mfa.FactorStore.
func (s *MFA) CreateFactor(_ context.Context, f mfa.Factor, max int) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := mfaUser{f.Tenant, f.UserID}
	fs := s.factors[k]
	if _, dup := fs[f.ID]; dup {
		return mfa.ErrDuplicate
	}
	if max > 0 && confirmedFactors(fs) >= max {
		return mfa.ErrLimit
	}
	if fs == nil {
		fs = make(map[string]mfa.Factor)
		s.factors[k] = fs
	}
	for id, o := range fs {
		if !o.Confirmed() && o.Kind == f.Kind {
			delete(fs, id)
		}
	}
	fs[f.ID] = cloneFactor(f)
	return nil
}

// Factor implements mfa.FactorStore.
func (s *MFA) Factor(_ context.Context, tenant, userID, id string) (mfa.Factor, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	f, ok := s.factors[mfaUser{tenant, userID}][id]
	if !ok {
		return mfa.Factor{}, mfa.ErrNotFound
	}
	return cloneFactor(f), nil
}

// Factors implements mfa.FactorStore.
func (s *MFA) Factors(_ context.Context, tenant, userID string) ([]mfa.Factor, error) {
	s.mu.RLock()
	fs := s.factors[mfaUser{tenant, userID}]
	out := make([]mfa.Factor, 0, len(fs))
	for _, f := range fs {
		out = append(out, cloneFactor(f))
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b mfa.Factor) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// DeleteFactor implements mfa.FactorStore.
func (s *MFA) DeleteFactor(ctx context.Context, tenant, userID, id string) (mfa.Factor, error) {
	return s.DeleteFactorKeeping(ctx, tenant, userID, id, 0)
}

// DeleteFactorKeeping implements mfa.FactorStore: the count and the
// deletion are under one hold of the write lock.
func (s *MFA) DeleteFactorKeeping(_ context.Context, tenant, userID, id string, keep int) (mfa.Factor, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := mfaUser{tenant, userID}
	f, ok := s.factors[k][id]
	if !ok {
		return mfa.Factor{}, mfa.ErrNotFound
	}
	if keep > 0 {
		others := 0
		for oid, o := range s.factors[k] {
			if oid != id && o.Confirmed() {
				others++
			}
		}
		if others < keep {
			return mfa.Factor{}, mfa.ErrLastFactor
		}
	}
	delete(s.factors[k], id)
	if len(s.factors[k]) == 0 {
		delete(s.factors, k)
	}
	return f, nil
}

// update applies fn to the stored factor under the write lock.
func (s *MFA) update(tenant, userID, id string, fn func(*mfa.Factor) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	fs := s.factors[mfaUser{tenant, userID}]
	f, ok := fs[id]
	if !ok {
		return mfa.ErrNotFound
	}
	if err := fn(&f); err != nil {
		return err
	}
	fs[id] = f
	return nil
}

// confirmedFactors counts the confirmed factors among fs.
func confirmedFactors(fs map[string]mfa.Factor) int {
	n := 0
	for _, o := range fs {
		if o.Confirmed() {
			n++
		}
	}
	return n
}

// ConfirmFactor implements mfa.FactorUpdater; the count of the user's
// confirmed factors is taken under the lock of the update.
func (s *MFA) ConfirmFactor(_ context.Context, tenant, userID, id string, at time.Time, step int64, max int) error {
	return s.update(tenant, userID, id, func(f *mfa.Factor) error {
		if f.Confirmed() {
			return mfa.ErrConflict
		}
		if max > 0 && confirmedFactors(s.factors[mfaUser{tenant, userID}]) >= max {
			return mfa.ErrLimit
		}
		f.ConfirmedAt, f.LastStep = at, step
		return nil
	})
}

// AdvanceStep implements mfa.FactorUpdater.
func (s *MFA) AdvanceStep(_ context.Context, tenant, userID, id string, step int64) error {
	return s.update(tenant, userID, id, func(f *mfa.Factor) error {
		switch {
		case !f.Confirmed():
			return mfa.ErrNotFound
		case step <= f.LastStep:
			return mfa.ErrReplay
		}
		f.LastStep = step
		return nil
	})
}

// ResealSecret implements mfa.FactorUpdater.
func (s *MFA) ResealSecret(_ context.Context, tenant, userID, id string, old []byte, keyID string, secret []byte) error {
	return s.update(tenant, userID, id, func(f *mfa.Factor) error {
		if !bytes.Equal(f.Secret, old) {
			return mfa.ErrConflict
		}
		f.KeyID, f.Secret = keyID, bytes.Clone(secret)
		return nil
	})
}

// Enrolments implements mfa.EnrolmentIndex. A limit below 1 returns no
// users.
func (s *MFA) Enrolments(_ context.Context, tenant, after string, limit int) ([]mfa.Enrolment, error) {
	if limit < 1 {
		return nil, nil
	}
	s.mu.RLock()
	var all []mfa.Enrolment
	for k, fs := range s.factors {
		if k.tenant != tenant || k.userID <= after {
			continue
		}
		var kinds []mfa.Kind
		for _, f := range fs {
			if f.Confirmed() && !slices.Contains(kinds, f.Kind) {
				kinds = append(kinds, f.Kind)
			}
		}
		if len(kinds) > 0 {
			slices.Sort(kinds)
			all = append(all, mfa.Enrolment{UserID: k.userID, Kinds: kinds})
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(all, func(a, b mfa.Enrolment) int { return cmp.Compare(a.UserID, b.UserID) })
	if len(all) > limit {
		all = all[:limit]
	}
	return all, nil
}

// ReplaceRecoveryCodes implements mfa.RecoveryStore.
func (s *MFA) ReplaceRecoveryCodes(_ context.Context, tenant, userID string, hashes []mfa.Hash) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.replaceRecovery(tenant, userID, hashes)
	return nil
}

// replaceRecovery stores hashes as the user's set (none: no set), with
// s.mu held.
func (s *MFA) replaceRecovery(tenant, userID string, hashes []mfa.Hash) {
	k := mfaUser{tenant, userID}
	if len(hashes) == 0 {
		delete(s.recovery, k)
		return
	}
	s.recovery[k] = hashSet(hashes)
}

// hashSet returns hashes as a set.
func hashSet(hashes []mfa.Hash) map[mfa.Hash]struct{} {
	set := make(map[mfa.Hash]struct{}, len(hashes))
	for _, h := range hashes {
		set[h] = struct{}{}
	}
	return set
}

// RecoveryCodes implements mfa.RecoveryStore.
func (s *MFA) RecoveryCodes(_ context.Context, tenant, userID string) ([]mfa.Hash, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	set := s.recovery[mfaUser{tenant, userID}]
	out := make([]mfa.Hash, 0, len(set))
	for h := range set {
		out = append(out, h)
	}
	return out, nil
}

// SwapRecoveryCodes implements mfa.RecoveryStore.
func (s *MFA) SwapRecoveryCodes(_ context.Context, tenant, userID string, old, hashes []mfa.Hash) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !maps.Equal(s.recovery[mfaUser{tenant, userID}], hashSet(old)) {
		return mfa.ErrConflict
	}
	s.replaceRecovery(tenant, userID, hashes)
	return nil
}

// UseRecoveryCode implements mfa.RecoveryStore.
func (s *MFA) UseRecoveryCode(_ context.Context, tenant, userID string, h mfa.Hash) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := mfaUser{tenant, userID}
	set := s.recovery[k]
	if _, ok := set[h]; !ok {
		return 0, mfa.ErrNotFound
	}
	delete(set, h)
	if len(set) == 0 {
		delete(s.recovery, k)
	}
	return len(set), nil
}

// RecoveryCodesLeft implements mfa.RecoveryStore.
func (s *MFA) RecoveryCodesLeft(_ context.Context, tenant, userID string) (int, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.recovery[mfaUser{tenant, userID}]), nil
}

// PutCode implements mfa.CodeStore. It sweeps codes expired at
// c.CreatedAt when the map has grown.
func (s *MFA) PutCode(_ context.Context, c mfa.Code) error {
	s.codeMu.Lock()
	defer s.codeMu.Unlock()
	if len(s.codes) >= s.codeSweepAt {
		for k, o := range s.codes {
			if !c.CreatedAt.Before(o.ExpiresAt) {
				delete(s.codes, k)
			}
		}
		s.codeSweepAt = max(mfaMinSweep, 2*len(s.codes))
	}
	s.codes[mfaTxn{c.Tenant, c.Txn}] = c
	return nil
}

// CheckCode implements mfa.CodeStore.
func (s *MFA) CheckCode(_ context.Context, tenant, txn string, h mfa.Hash, now time.Time) (mfa.Code, error) {
	s.codeMu.Lock()
	defer s.codeMu.Unlock()
	k := mfaTxn{tenant, txn}
	c, ok := s.codes[k]
	if !ok {
		return mfa.Code{}, mfa.ErrNotFound
	}
	next, keep, err := c.Attempt(h, now)
	if keep {
		s.codes[k] = next
	} else {
		delete(s.codes, k)
	}
	return next, err
}

// DeleteCode implements mfa.CodeStore.
func (s *MFA) DeleteCode(_ context.Context, tenant, txn string) error {
	s.codeMu.Lock()
	delete(s.codes, mfaTxn{tenant, txn})
	s.codeMu.Unlock()
	return nil
}

// Hit implements mfa.RateStore.
func (s *MFA) Hit(_ context.Context, key string, now time.Time, window time.Duration) (int, error) {
	s.rateMu.Lock()
	defer s.rateMu.Unlock()
	w, ok := s.rates[key]
	if !ok {
		if len(s.rates) >= s.rateSweepAt || len(s.rates) >= s.maxRateKeys {
			for k, o := range s.rates {
				if !now.Before(o.end) {
					delete(s.rates, k)
				}
			}
			s.rateSweepAt = max(mfaMinSweep, 2*len(s.rates))
		}
		if len(s.rates) >= s.maxRateKeys {
			return 0, mfa.ErrFull
		}
	}
	if !ok || !now.Before(w.end) {
		w = mfaRateWindow{end: now.Add(window)}
	}
	w.count++
	s.rates[key] = w
	return w.count, nil
}

// Forget implements mfa.RateStore: it drops the key's window if it ends
// where a window opened at opened would (a key's windows all have one
// length, so no other window of it ends there).
func (s *MFA) Forget(_ context.Context, key string, opened time.Time, window time.Duration) error {
	s.rateMu.Lock()
	defer s.rateMu.Unlock()
	if w, ok := s.rates[key]; ok && w.end.Equal(opened.Add(window)) {
		delete(s.rates, key)
	}
	return nil
}

// CreateTransaction implements mfa.TransactionStore. It sweeps
// transactions expired at t.CreatedAt when the map has grown.
func (s *MFA) CreateTransaction(_ context.Context, t mfa.Transaction) error {
	s.txnMu.Lock()
	defer s.txnMu.Unlock()
	if _, dup := s.txns[t.Hash]; dup {
		return mfa.ErrDuplicate
	}
	if len(s.txns) >= s.txnSweepAt {
		for h, o := range s.txns {
			if !o.LiveAt(t.CreatedAt) {
				delete(s.txns, h)
			}
		}
		s.txnSweepAt = max(mfaMinSweep, 2*len(s.txns))
	}
	s.txns[t.Hash] = t
	return nil
}

// Transaction implements mfa.TransactionStore.
func (s *MFA) Transaction(_ context.Context, h mfa.Hash) (mfa.Transaction, error) {
	s.txnMu.Lock()
	defer s.txnMu.Unlock()
	t, ok := s.txns[h]
	if !ok {
		return mfa.Transaction{}, mfa.ErrNotFound
	}
	return t, nil
}

// ConsumeTransaction implements mfa.TransactionStore.
func (s *MFA) ConsumeTransaction(_ context.Context, h mfa.Hash) (mfa.Transaction, error) {
	s.txnMu.Lock()
	defer s.txnMu.Unlock()
	t, ok := s.txns[h]
	if !ok {
		return mfa.Transaction{}, mfa.ErrNotFound
	}
	delete(s.txns, h)
	return t, nil
}
