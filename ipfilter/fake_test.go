package ipfilter_test

import (
	"context"
	"slices"
	"sync"
	"testing"

	"github.com/guardhq/guard/ipfilter/ipfiltertest"

	"github.com/guardhq/guard/ipfilter"
)

// fakeStore is a minimal ipfilter.Store for the package's own tests (memstore
// imports the facade, which imports this package). It counts calls and
// can be made to fail.
type fakeStore struct {
	mu       sync.Mutex
	m        map[string]ipfilter.Lists
	versions int // Version calls
	loads    int // Lists calls
	err      error
}

func newFake() *fakeStore { return &fakeStore{m: make(map[string]ipfilter.Lists)} }

func (s *fakeStore) Lists(_ context.Context, tenant string) (ipfilter.Lists, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.loads++
	if s.err != nil {
		return ipfilter.Lists{}, s.err
	}
	l := s.m[tenant]
	l.Users.Entries = slices.Clone(l.Users.Entries)
	l.APIKeys.Entries = slices.Clone(l.APIKeys.Entries)
	return l, nil
}

func (s *fakeStore) Version(_ context.Context, tenant string) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.versions++
	if s.err != nil {
		return 0, s.err
	}
	return s.m[tenant].Version, nil
}

func (s *fakeStore) Replace(_ context.Context, tenant string, scope ipfilter.Scope, r ipfilter.Rules, prev uint64) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return 0, s.err
	}
	l := s.m[tenant]
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

// put stores l for tenant as is, bypassing Replace (a corrupt row, or a
// change made by another replica).
func (s *fakeStore) put(tenant string, l ipfilter.Lists) {
	s.mu.Lock()
	s.m[tenant] = l
	s.mu.Unlock()
}

func (s *fakeStore) calls() (versions, loads int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.versions, s.loads
}

func (s *fakeStore) fail(err error) {
	s.mu.Lock()
	s.err = err
	s.mu.Unlock()
}

// The fake keeps the ipfilter.Store contract too.
func TestFakeStoreConformance(t *testing.T) {
	ipfiltertest.Run(t, func(*testing.T) ipfilter.Store { return newFake() })
	ipfiltertest.RunConcurrent(t, func(*testing.T) ipfilter.Store { return newFake() })
}
