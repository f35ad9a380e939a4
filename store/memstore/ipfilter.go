package memstore

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/guardhq/guard/ipfilter"
)

// IPLists is an in-memory ipfilter.Store. Each tenant's lists are an
// immutable snapshot behind a sync.Map, replaced whole by Replace under a
// writers' lock: Version and Lists take no lock, and Version allocates
// nothing, so the per-request check does not contend across cores.
// Stored entries are copied in and out, so callers may reuse their
// slices.
type IPLists struct {
	mu sync.Mutex // serialises Replace
	m  sync.Map   // tenant → *ipfilter.Lists, never modified once stored
}

var _ ipfilter.Store = (*IPLists)(nil)

// NewIPLists returns an empty allow-list store.
func NewIPLists() *IPLists { return &IPLists{} }

func (s *IPLists) load(tenant string) *ipfilter.Lists {
	if v, ok := s.m.Load(tenant); ok {
		return v.(*ipfilter.Lists)
	}
	return nil
}

// Lists implements ipfilter.Store.
func (s *IPLists) Lists(_ context.Context, tenant string) (ipfilter.Lists, error) {
	l := s.load(tenant)
	if l == nil {
		return ipfilter.Lists{}, nil
	}
	out := *l
	out.Users.Entries = slices.Clone(l.Users.Entries)
	out.APIKeys.Entries = slices.Clone(l.APIKeys.Entries)
	return out, nil
}

// Version implements ipfilter.Store.
func (s *IPLists) Version(_ context.Context, tenant string) (uint64, error) {
	if l := s.load(tenant); l != nil {
		return l.Version, nil
	}
	return 0, nil
}

// Replace implements ipfilter.Store.
func (s *IPLists) Replace(_ context.Context, tenant string, scope ipfilter.Scope, r ipfilter.Rules, prev uint64) (uint64, error) {
	if !scope.Valid() {
		return 0, fmt.Errorf("memstore: invalid allow-list scope %v", scope)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var next ipfilter.Lists
	if cur := s.load(tenant); cur != nil {
		next = *cur // the other scope's entries are shared: never modified
	}
	if next.Version != prev {
		return 0, ipfilter.ErrConflict
	}
	r.Entries = slices.Clone(r.Entries)
	if scope == ipfilter.Users {
		next.Users = r
	} else {
		next.APIKeys = r
	}
	next.Version++
	s.m.Store(tenant, &next)
	return next.Version, nil
}
