package memstore

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/guardhq/guard/auth"
)

// Users is an in-memory auth.UserStore and auth.UserUpdater.
type Users struct {
	mu      sync.RWMutex
	byID    map[userRef]auth.User
	byEmail map[userRef]string // (tenant, email) → id
}

type userRef struct{ tenant, key string }

var (
	_ auth.UserStore   = (*Users)(nil)
	_ auth.UserUpdater = (*Users)(nil)
)

// NewUsers returns an empty user store.
func NewUsers() *Users {
	return &Users{byID: make(map[userRef]auth.User), byEmail: make(map[userRef]string)}
}

// copyUser detaches u's slice from the store's.
func copyUser(u auth.User) auth.User {
	u.PasswordHistory = slices.Clone(u.PasswordHistory)
	return u
}

// CreateUser implements auth.UserStore.
func (s *Users) CreateUser(_ context.Context, u auth.User) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.byEmail[userRef{u.Tenant, u.Email}]; ok {
		return auth.ErrDuplicateEmail
	}
	if _, ok := s.byID[userRef{u.Tenant, u.ID}]; ok {
		return auth.ErrDuplicateID
	}
	s.byID[userRef{u.Tenant, u.ID}] = copyUser(u)
	s.byEmail[userRef{u.Tenant, u.Email}] = u.ID
	return nil
}

// User implements auth.UserStore.
func (s *Users) User(_ context.Context, tenant, id string) (auth.User, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.byID[userRef{tenant, id}]
	if !ok {
		return auth.User{}, auth.ErrNotFound
	}
	return copyUser(u), nil
}

// UserByEmail implements auth.UserStore.
func (s *Users) UserByEmail(_ context.Context, tenant, email string) (auth.User, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	id, ok := s.byEmail[userRef{tenant, email}]
	if !ok {
		return auth.User{}, auth.ErrNotFound
	}
	return copyUser(s.byID[userRef{tenant, id}]), nil
}

// ListUsers implements auth.UserStore. A limit below 1 returns no users.
func (s *Users) ListUsers(_ context.Context, tenant, after string, limit int) ([]auth.User, error) {
	if limit < 1 {
		return nil, nil
	}
	s.mu.RLock()
	var out []auth.User
	for k, u := range s.byID {
		if k.tenant == tenant && k.key > after {
			out = append(out, copyUser(u))
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b auth.User) int { return strings.Compare(a.ID, b.ID) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// ListUserSummaries implements auth.UserStore.
func (s *Users) ListUserSummaries(_ context.Context, tenant, after string, limit int) ([]auth.UserSummary, error) {
	if limit < 1 {
		return nil, nil
	}
	s.mu.RLock()
	var out []auth.UserSummary
	for k, u := range s.byID {
		if k.tenant == tenant && k.key > after {
			out = append(out, u.Summary())
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b auth.UserSummary) int { return strings.Compare(a.ID, b.ID) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// DeleteUser implements auth.UserStore.
func (s *Users) DeleteUser(_ context.Context, tenant, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.byID[userRef{tenant, id}]
	if !ok {
		return auth.ErrNotFound
	}
	delete(s.byID, userRef{tenant, id})
	delete(s.byEmail, userRef{tenant, u.Email})
	return nil
}

// update applies f to the stored user under the write lock.
func (s *Users) update(tenant, id string, f func(*auth.User) error) (auth.User, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	u, ok := s.byID[userRef{tenant, id}]
	if !ok {
		return auth.User{}, auth.ErrNotFound
	}
	u = copyUser(u)
	if err := f(&u); err != nil {
		return auth.User{}, err
	}
	s.byID[userRef{tenant, id}] = u
	return copyUser(u), nil
}

// SetStatus implements auth.UserUpdater.
func (s *Users) SetStatus(_ context.Context, tenant, id string, st auth.Status) error {
	_, err := s.update(tenant, id, func(u *auth.User) error { u.Status = st; return nil })
	return err
}

// DeactivateIdle implements auth.UserUpdater.
func (s *Users) DeactivateIdle(_ context.Context, tenant, id string, idleSince time.Time) error {
	_, err := s.update(tenant, id, func(u *auth.User) error {
		last := u.LastLoginAt
		if last.IsZero() {
			last = u.CreatedAt
		}
		if u.Status != auth.StatusActive || last.After(idleSince) || u.ReactivatedAt.After(idleSince) {
			return auth.ErrConflict
		}
		u.Status = auth.StatusDeactivated
		return nil
	})
	return err
}

// Deactivate implements auth.UserUpdater.
func (s *Users) Deactivate(_ context.Context, tenant, id string) (bool, error) {
	var changed bool
	_, err := s.update(tenant, id, func(u *auth.User) error {
		if changed = u.Status == auth.StatusActive; changed {
			u.Status = auth.StatusDeactivated
		}
		return nil
	})
	return changed, err
}

// SetReactivatedAt implements auth.UserUpdater.
func (s *Users) SetReactivatedAt(_ context.Context, tenant, id string, at time.Time) error {
	_, err := s.update(tenant, id, func(u *auth.User) error { u.ReactivatedAt = at; return nil })
	return err
}

// SetPassword implements auth.UserUpdater.
func (s *Users) SetPassword(_ context.Context, tenant, id, hash string, at time.Time, keep int) error {
	_, err := s.update(tenant, id, func(u *auth.User) error {
		setPassword(u, hash, at, keep)
		return nil
	})
	return err
}

// ResetPassword implements auth.UserUpdater.
func (s *Users) ResetPassword(_ context.Context, tenant, id string, was auth.User, hash string, at time.Time, keep int) error {
	_, err := s.update(tenant, id, func(u *auth.User) error {
		if !asWas(*u, was) {
			return auth.ErrConflict
		}
		setPassword(u, hash, at, keep)
		u.EmailUnverified = false
		return nil
	})
	return err
}

// ChangePassword implements auth.UserUpdater.
func (s *Users) ChangePassword(_ context.Context, tenant, id string, was auth.User, hash string, at time.Time, keep int) error {
	_, err := s.update(tenant, id, func(u *auth.User) error {
		if !asWas(*u, was) {
			return auth.ErrConflict
		}
		setPassword(u, hash, at, keep)
		return nil
	})
	return err
}

// asWas reports whether u's Email, PasswordHash, Status, PasswordExpired
// and ReactivatedAt are was's: the fields ResetPassword, ChangePassword
// and ChangeEmail compare.
func asWas(u, was auth.User) bool {
	return u.Email == was.Email && u.PasswordHash == was.PasswordHash && u.Status == was.Status &&
		u.PasswordExpired == was.PasswordExpired && u.ReactivatedAt.Equal(was.ReactivatedAt)
}

// setPassword sets u's password as UserUpdater.SetPassword does.
func setPassword(u *auth.User, hash string, at time.Time, keep int) {
	hist := u.PasswordHistory
	if u.PasswordHash != "" {
		hist = append([]string{u.PasswordHash}, hist...)
	}
	u.PasswordHistory = hist[:min(len(hist), max(keep, 0))]
	u.PasswordHash = hash
	u.PasswordChangedAt = at
	u.PasswordExpired = false
}

// ExpirePassword implements auth.UserUpdater.
func (s *Users) ExpirePassword(_ context.Context, tenant, id string) (bool, error) {
	var set bool
	_, err := s.update(tenant, id, func(u *auth.User) error {
		set, u.PasswordExpired = !u.PasswordExpired, true
		return nil
	})
	return set, err
}

// ClearPasswordExpired implements auth.UserUpdater.
func (s *Users) ClearPasswordExpired(_ context.Context, tenant, id string) error {
	_, err := s.update(tenant, id, func(u *auth.User) error { u.PasswordExpired = false; return nil })
	return err
}

// RehashPassword implements auth.UserUpdater.
func (s *Users) RehashPassword(_ context.Context, tenant, id, oldHash, newHash string) error {
	_, err := s.update(tenant, id, func(u *auth.User) error {
		if u.PasswordHash != oldHash {
			return auth.ErrConflict
		}
		u.PasswordHash = newHash
		return nil
	})
	return err
}

// RecordLogin implements auth.UserUpdater.
func (s *Users) RecordLogin(_ context.Context, tenant, id string, at time.Time) (auth.User, error) {
	return s.update(tenant, id, func(u *auth.User) error { u.LastLoginAt = at; return nil })
}

// RecordSSOLogin implements auth.UserUpdater.
func (s *Users) RecordSSOLogin(_ context.Context, tenant, id string, at time.Time) (auth.User, error) {
	return s.update(tenant, id, func(u *auth.User) error { u.LastLoginAt, u.LastSSOAt = at, at; return nil })
}

// SetEmail implements auth.UserUpdater: the user and the email index
// change together under the write lock.
func (s *Users) SetEmail(_ context.Context, tenant, id, email string, unverified bool) error {
	_, err := s.update(tenant, id, func(u *auth.User) error {
		return s.setEmail(tenant, id, u, email, unverified)
	})
	return err
}

// ChangeEmail implements auth.UserUpdater: SetEmail, under the same write
// lock, only while the user is as was.
func (s *Users) ChangeEmail(_ context.Context, tenant, id string, was auth.User, email string, unverified bool) error {
	_, err := s.update(tenant, id, func(u *auth.User) error {
		if !asWas(*u, was) {
			return auth.ErrConflict
		}
		return s.setEmail(tenant, id, u, email, unverified)
	})
	return err
}

// setEmail sets u's email, and the email index, as SetEmail does; the
// caller holds the write lock.
func (s *Users) setEmail(tenant, id string, u *auth.User, email string, unverified bool) error {
	if u.Email != email {
		if _, ok := s.byEmail[userRef{tenant, email}]; ok {
			return auth.ErrDuplicateEmail
		}
		delete(s.byEmail, userRef{tenant, u.Email})
		s.byEmail[userRef{tenant, email}] = id
		u.Email = email
	}
	u.EmailUnverified = unverified
	return nil
}

// VerifyEmail implements auth.UserUpdater.
func (s *Users) VerifyEmail(_ context.Context, tenant, id, email string) error {
	_, err := s.update(tenant, id, func(u *auth.User) error {
		if u.Email != email {
			return auth.ErrConflict
		}
		u.EmailUnverified = false
		return nil
	})
	return err
}
