package memstore

import (
	"context"
	"slices"
	"strings"
	"sync"
	"time"

	guard "github.com/guardhq/guard"
)

// Tenants is an in-memory guard.TenantStore.
type Tenants struct {
	mu sync.RWMutex
	m  map[string]guard.Tenant
}

var _ guard.TenantStore = (*Tenants)(nil)

// NewTenants returns an empty tenant store.
func NewTenants() *Tenants { return &Tenants{m: make(map[string]guard.Tenant)} }

// CreateTenant implements guard.TenantStore.
func (s *Tenants) CreateTenant(_ context.Context, t guard.Tenant) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.m[t.ID]; ok {
		return guard.ErrTenantExists
	}
	t.Version = 1
	s.m[t.ID] = t
	return nil
}

// Tenant implements guard.TenantStore.
func (s *Tenants) Tenant(_ context.Context, id string) (guard.Tenant, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	t, ok := s.m[id]
	if !ok {
		return guard.Tenant{}, guard.ErrTenantNotFound
	}
	return t, nil
}

// SetPolicy implements guard.TenantStore.
func (s *Tenants) SetPolicy(_ context.Context, id string, p guard.Policy, version int64) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.m[id]
	if !ok {
		return 0, guard.ErrTenantNotFound
	}
	if t.Version != version {
		return 0, guard.ErrConflict
	}
	t.Policy = p
	t.Version++
	s.m[id] = t
	return t.Version, nil
}

// DeleteTenant implements guard.TenantStore.
func (s *Tenants) DeleteTenant(_ context.Context, id string, version int64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.m[id]
	if !ok {
		return guard.ErrTenantNotFound
	}
	if t.Version != version {
		return guard.ErrConflict
	}
	delete(s.m, id)
	return nil
}

// ListTenants implements guard.TenantStore. A limit of zero or less returns
// no tenants.
func (s *Tenants) ListTenants(_ context.Context, after string, limit int) ([]guard.Tenant, error) {
	if limit <= 0 {
		return nil, nil
	}
	s.mu.RLock()
	out := make([]guard.Tenant, 0, len(s.m))
	for id, t := range s.m {
		if id > after {
			out = append(out, t)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b guard.Tenant) int { return strings.Compare(a.ID, b.ID) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

// MarkReviewed implements guard.TenantStore.
func (s *Tenants) MarkReviewed(_ context.Context, id string, at time.Time) error {
	return s.setIfNewer(id, at, func(t *guard.Tenant) *time.Time { return &t.LastReview })
}

// MarkIdPChanged implements guard.TenantStore.
func (s *Tenants) MarkIdPChanged(_ context.Context, id string, at time.Time) error {
	return s.setIfNewer(id, at, func(t *guard.Tenant) *time.Time { return &t.IdPChangedAt })
}

// setIfNewer sets the time field of tenant id to at if at is after it.
func (s *Tenants) setIfNewer(id string, at time.Time, field func(*guard.Tenant) *time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	t, ok := s.m[id]
	if !ok {
		return guard.ErrTenantNotFound
	}
	if f := field(&t); at.After(*f) {
		*f = at
		s.m[id] = t
	}
	return nil
}
