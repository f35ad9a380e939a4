package memstore

import (
	"cmp"
	"context"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/guardhq/guard/rbac"
)

// Policies is an in-memory rbac.PolicyStore. Version, read on every
// decision, takes no lock and allocates nothing, so parallel decisions do
// not contend; every other method holds the lock for its whole step (the
// version moves, under the lock, after the rules). Each tenant keeps at
// least its latest 1024 changes (and at most 2048) for Changes.
type Policies struct {
	mu       sync.RWMutex
	tenants  map[string]*policy
	versions atomic.Pointer[map[string]*atomic.Uint64] // copied when a tenant is added
	keep     int
}

type policy struct {
	version *atomic.Uint64 // also in Policies.versions
	rules   map[rbac.Rule]struct{}
	history []rbac.Change // the latest changes, ascending
}

var _ rbac.PolicyStore = (*Policies)(nil)

// NewPolicies returns an empty policy store.
func NewPolicies() *Policies {
	s := &Policies{tenants: make(map[string]*policy), keep: 1024}
	s.versions.Store(&map[string]*atomic.Uint64{})
	return s
}

// Policy implements rbac.PolicyStore.
func (s *Policies) Policy(_ context.Context, tenant string) ([]rbac.Rule, uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p := s.tenants[tenant]
	if p == nil {
		return nil, 0, nil
	}
	rules := make([]rbac.Rule, 0, len(p.rules))
	for r := range p.rules {
		rules = append(rules, r)
	}
	return rules, p.version.Load(), nil
}

// Version implements rbac.PolicyStore.
func (s *Policies) Version(_ context.Context, tenant string) (uint64, error) {
	if v := (*s.versions.Load())[tenant]; v != nil {
		return v.Load(), nil
	}
	return 0, nil
}

// Update implements rbac.PolicyStore.
func (s *Policies) Update(_ context.Context, tenant string, expect uint64, remove, add []rbac.Rule) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.tenants[tenant]
	var v uint64
	if p != nil {
		v = p.version.Load()
	}
	if v != expect {
		return rbac.ErrConflict
	}
	if p == nil {
		p = &policy{version: new(atomic.Uint64), rules: make(map[rbac.Rule]struct{})}
		s.tenants[tenant] = p
		vs := maps.Clone(*s.versions.Load())
		vs[tenant] = p.version
		s.versions.Store(&vs)
	}
	for _, r := range remove {
		delete(p.rules, r)
	}
	for _, r := range add {
		p.rules[r] = struct{}{}
	}
	if len(p.history) >= 2*s.keep {
		// Keep the latest keep-1 changes, copied so that the dropped ones
		// can be collected; amortised over keep updates.
		p.history = append([]rbac.Change(nil), p.history[len(p.history)-s.keep+1:]...)
	}
	p.history = append(p.history, rbac.Change{Version: v + 1, Remove: slices.Clone(remove), Add: slices.Clone(add)})
	p.version.Store(v + 1)
	return nil
}

// Changes implements rbac.PolicyStore.
func (s *Policies) Changes(_ context.Context, tenant string, since uint64) ([]rbac.Change, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	p := s.tenants[tenant]
	if p == nil || since >= p.version.Load() {
		return nil, nil
	}
	if len(p.history) == 0 || p.history[0].Version > since+1 {
		return nil, rbac.ErrHistoryGone
	}
	from := p.history[since+1-p.history[0].Version:]
	out := make([]rbac.Change, len(from))
	for i, c := range from {
		out[i] = rbac.Change{Version: c.Version, Remove: slices.Clone(c.Remove), Add: slices.Clone(c.Add)}
	}
	return out, nil
}

// Approvals is an in-memory rbac.ApprovalStore. Every method holds one
// lock for its whole step. Approvals are kept until the store is dropped.
type Approvals struct {
	mu sync.Mutex
	m  map[approvalKey]rbac.Approval
}

type approvalKey struct{ tenant, id string }

var _ rbac.ApprovalStore = (*Approvals)(nil)

// NewApprovals returns an empty approval store.
func NewApprovals() *Approvals {
	return &Approvals{m: make(map[approvalKey]rbac.Approval)}
}

// CreateApproval implements rbac.ApprovalStore.
func (s *Approvals) CreateApproval(_ context.Context, a rbac.Approval) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := approvalKey{a.Tenant, a.ID}
	if _, ok := s.m[k]; ok {
		return rbac.ErrDuplicate
	}
	s.m[k] = a
	return nil
}

// Approval implements rbac.ApprovalStore.
func (s *Approvals) Approval(_ context.Context, tenant, id string) (rbac.Approval, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	a, ok := s.m[approvalKey{tenant, id}]
	if !ok {
		return rbac.Approval{}, rbac.ErrNotFound
	}
	return a, nil
}

// DecideApproval implements rbac.ApprovalStore.
func (s *Approvals) DecideApproval(_ context.Context, tenant, id string, by rbac.Subject, status rbac.Status, at time.Time) (rbac.Approval, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := approvalKey{tenant, id}
	a, ok := s.m[k]
	switch {
	case !ok:
		return rbac.Approval{}, rbac.ErrNotFound
	case a.Requester == by:
		return rbac.Approval{}, rbac.ErrSelfApproval
	case a.Status != rbac.StatusPending:
		return rbac.Approval{}, rbac.ErrNotPending
	case !at.Before(a.ExpiresAt):
		return rbac.Approval{}, rbac.ErrExpired
	}
	a.Status, a.Decider, a.DecidedAt = status, by, at
	s.m[k] = a
	return a, nil
}

// ConsumeApproval implements rbac.ApprovalStore.
func (s *Approvals) ConsumeApproval(_ context.Context, tenant, id string, c rbac.Claim, at time.Time) (rbac.Approval, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := approvalKey{tenant, id}
	a, ok := s.m[k]
	switch {
	case !ok:
		return rbac.Approval{}, rbac.ErrNotFound
	case c.Requester != a.Requester || c.Permission != a.Permission || c.Target != a.Target || c.PayloadHash != a.PayloadHash:
		return rbac.Approval{}, rbac.ErrMismatch
	case a.Status == rbac.StatusConsumed:
		return rbac.Approval{}, rbac.ErrConsumed
	case a.Status != rbac.StatusApproved:
		return rbac.Approval{}, rbac.ErrNotApproved
	case !at.Before(a.ExpiresAt):
		return rbac.Approval{}, rbac.ErrExpired
	}
	a.Status, a.ConsumedAt = rbac.StatusConsumed, at
	s.m[k] = a
	return a, nil
}

// ListApprovals implements rbac.ApprovalStore. A negative Limit returns no
// approvals.
func (s *Approvals) ListApprovals(_ context.Context, tenant string, q rbac.ApprovalQuery) ([]rbac.Approval, error) {
	limit := q.Limit
	if limit < 0 {
		return nil, nil
	}
	if limit == 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	s.mu.Lock()
	var out []rbac.Approval
	for k, a := range s.m {
		if k.tenant == tenant && (q.Status == "" || a.Status == q.Status) && (q.Before == "" || a.ID < q.Before) {
			out = append(out, a)
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b rbac.Approval) int { return cmp.Compare(b.ID, a.ID) })
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}
