package memstore

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/guardhq/guard/ipfilter"
)

// IPLists is an in-memory ipfilter.Store. Version takes a read lock and
// allocates nothing; Replace holds the write lock for its whole step.
// Stored entries are copied in and out, so callers may reuse their
// slices.
type IPLists struct {
	mu sync.RWMutex
	m  map[string]*ipfilter.Lists
}

var _ ipfilter.Store = (*IPLists)(nil)

// NewIPLists returns an empty allow-list store.
func NewIPLists() *IPLists {
	return &IPLists{m: make(map[string]*ipfilter.Lists)}
}

// Lists implements ipfilter.Store.
func (s *IPLists) Lists(_ context.Context, tenant string) (ipfilter.Lists, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	l, ok := s.m[tenant]
	if !ok {
		return ipfilter.Lists{}, nil
	}
	out := *l
	out.Users.Entries = slices.Clone(l.Users.Entries)
	out.APIKeys.Entries = slices.Clone(l.APIKeys.Entries)
	return out, nil
}

// Version implements ipfilter.Store.
func (s *IPLists) Version(_ context.Context, tenant string) (uint64, error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if l, ok := s.m[tenant]; ok {
		return l.Version, nil
	}
	return 0, nil
}

// Replace implements ipfilter.Store.
func (s *IPLists) Replace(_ context.Context, tenant string, scope ipfilter.Scope, r ipfilter.Rules, prev uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !scope.Valid() {
		return 0, fmt.Errorf("memstore: invalid allow-list scope %v", scope)
	}
	l, ok := s.m[tenant]
	if !ok {
		l = new(ipfilter.Lists)
	}
	if l.Version != prev {
		return 0, ipfilter.ErrConflict
	}
	r.Entries = slices.Clone(r.Entries)
	if scope == ipfilter.Users {
		l.Users = r
	} else {
		l.APIKeys = r
	}
	l.Version++
	s.m[tenant] = l
	return l.Version, nil
}
