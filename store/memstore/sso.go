package memstore

import (
	"context"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/guardhq/guard/sso"
)

// SSO is every sso store in memory: IdP connections, tracked requests,
// the assertion replay cache and the users' IdP subjects. Each method holds the lock of its part for
// its whole step.
//
// Memory is bounded: expired requests and replay records are dropped
// (swept as their maps grow, judged by the times the callers pass in,
// never by the wall clock), and at most maxKeys live requests and maxKeys
// live replay records are kept; beyond that RememberRequest and InsertID
// of a new key fail with sso.ErrFull (the login is refused: fail closed).
// Subjects are swept the same way, one per user at most. Connections stay
// until deleted.
type SSO struct {
	connMu sync.RWMutex
	conns  map[string]sso.Connection

	reqMu      sync.Mutex
	reqs       map[ssoKey]sso.Request
	reqSweepAt int

	replayMu      sync.Mutex
	replay        map[ssoKey]time.Time // until
	replaySweepAt int

	subjMu      sync.RWMutex
	subjects    map[ssoKey]sso.Subject            // by tenant and user ID
	byNameID    map[nameIDKey]map[string]struct{} // tenant, IdP and NameID → user IDs
	subjSweepAt int

	maxKeys int
}

type ssoKey struct{ tenant, id string }

// nameIDKey names a NameID of an IdP in a tenant.
type nameIDKey struct{ tenant, idp, nameID string }

const ssoMinSweep = 1024

var (
	_ sso.ConnectionStore = (*SSO)(nil)
	_ sso.RequestStore    = (*SSO)(nil)
	_ sso.ReplayCache     = (*SSO)(nil)
	_ sso.SubjectStore    = (*SSO)(nil)
)

// NewSSO returns an empty SSO store holding at most 1<<20 live requests
// and 1<<20 live replay records.
func NewSSO() *SSO { return NewSSOBounded(0) }

// NewSSOBounded returns an empty SSO store holding at most maxKeys live
// requests and maxKeys live replay records (0 means 1<<20).
func NewSSOBounded(maxKeys int) *SSO {
	if maxKeys <= 0 {
		maxKeys = 1 << 20
	}
	return &SSO{
		conns:         make(map[string]sso.Connection),
		reqs:          make(map[ssoKey]sso.Request),
		reqSweepAt:    ssoMinSweep,
		replay:        make(map[ssoKey]time.Time),
		replaySweepAt: ssoMinSweep,
		subjects:      make(map[ssoKey]sso.Subject),
		byNameID:      make(map[nameIDKey]map[string]struct{}),
		subjSweepAt:   ssoMinSweep,
		maxKeys:       maxKeys,
	}
}

// Stores returns s as every role of sso.Stores.
func (s *SSO) Stores() sso.Stores {
	return sso.Stores{Connections: s, Requests: s, Replay: s, Subjects: s}
}

// Len reports how many requests and replay records are held, expired or
// not (for tests of the memory bound).
func (s *SSO) Len() (requests, replay int) {
	s.reqMu.Lock()
	requests = len(s.reqs)
	s.reqMu.Unlock()
	s.replayMu.Lock()
	replay = len(s.replay)
	s.replayMu.Unlock()
	return requests, replay
}

// SubjectLen reports how many subjects are held, expired or not, and how
// many NameIDs index them (for tests of the memory bound).
func (s *SSO) SubjectLen() (subjects, nameIDs int) {
	s.subjMu.RLock()
	defer s.subjMu.RUnlock()
	return len(s.subjects), len(s.byNameID)
}

func cloneConnection(c sso.Connection) sso.Connection {
	c.ExtraCertificates = slices.Clone(c.ExtraCertificates)
	c.MetadataSigningCertificates = slices.Clone(c.MetadataSigningCertificates)
	c.GroupRoles = maps.Clone(c.GroupRoles)
	c.AllowedDomains = slices.Clone(c.AllowedDomains)
	c.MFAAuthnContexts = slices.Clone(c.MFAAuthnContexts)
	return c
}

// PutConnection implements sso.ConnectionStore.
func (s *SSO) PutConnection(_ context.Context, c sso.Connection) error {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	s.conns[c.Tenant] = cloneConnection(c)
	return nil
}

// Connection implements sso.ConnectionStore.
func (s *SSO) Connection(_ context.Context, tenant string) (sso.Connection, error) {
	s.connMu.RLock()
	defer s.connMu.RUnlock()
	c, ok := s.conns[tenant]
	if !ok {
		return sso.Connection{}, sso.ErrNotFound
	}
	return cloneConnection(c), nil
}

// DeleteConnection implements sso.ConnectionStore.
func (s *SSO) DeleteConnection(_ context.Context, tenant string) error {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	if _, ok := s.conns[tenant]; !ok {
		return sso.ErrNotFound
	}
	delete(s.conns, tenant)
	return nil
}

// UpdateMetadata implements sso.ConnectionStore.
func (s *SSO) UpdateMetadata(_ context.Context, tenant, url, metadata string, fetchedAt time.Time) (bool, error) {
	s.connMu.Lock()
	defer s.connMu.Unlock()
	c, ok := s.conns[tenant]
	if !ok {
		return false, sso.ErrNotFound
	}
	if c.MetadataURL != url || !c.MetadataFetchedAt.Before(fetchedAt) {
		return false, nil
	}
	c.Metadata, c.MetadataFetchedAt = metadata, fetchedAt
	s.conns[tenant] = c
	return true, nil
}

// sweepRequests drops every request expired at now. Called with s.reqMu
// held; the next sweep happens when the map has doubled.
func (s *SSO) sweepRequests(now time.Time) {
	for k, r := range s.reqs {
		if !now.Before(r.Expires) {
			delete(s.reqs, k)
		}
	}
	s.reqSweepAt = max(ssoMinSweep, 2*len(s.reqs))
}

// RememberRequest implements sso.RequestStore.
func (s *SSO) RememberRequest(_ context.Context, r sso.Request) error {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	k := ssoKey{r.Tenant, r.ID}
	if _, dup := s.reqs[k]; dup {
		return sso.ErrDuplicate
	}
	if len(s.reqs) >= s.reqSweepAt || len(s.reqs) >= s.maxKeys {
		// Requests are judged against their own creation time: the store
		// has no clock, and a request is never remembered after it expires.
		s.sweepRequests(r.CreatedAt)
	}
	if len(s.reqs) >= s.maxKeys {
		return sso.ErrFull
	}
	s.reqs[k] = r
	return nil
}

// ConsumeRequest implements sso.RequestStore.
func (s *SSO) ConsumeRequest(_ context.Context, tenant, id string, now time.Time) (sso.Request, error) {
	s.reqMu.Lock()
	defer s.reqMu.Unlock()
	k := ssoKey{tenant, id}
	r, ok := s.reqs[k]
	if !ok {
		return sso.Request{}, sso.ErrNotFound
	}
	delete(s.reqs, k)
	if !now.Before(r.Expires) {
		return sso.Request{}, sso.ErrNotFound
	}
	return r, nil
}

// InsertID implements sso.ReplayCache.
func (s *SSO) InsertID(_ context.Context, tenant, id string, until, now time.Time) (bool, error) {
	s.replayMu.Lock()
	defer s.replayMu.Unlock()
	k := ssoKey{tenant, id}
	if old, ok := s.replay[k]; ok && now.Before(old) {
		return false, nil
	}
	if len(s.replay) >= s.replaySweepAt || len(s.replay) >= s.maxKeys {
		for key, u := range s.replay {
			if !now.Before(u) {
				delete(s.replay, key)
			}
		}
		s.replaySweepAt = max(ssoMinSweep, 2*len(s.replay))
	}
	if _, ok := s.replay[k]; !ok && len(s.replay) >= s.maxKeys {
		return false, sso.ErrFull
	}
	s.replay[k] = until
	return true, nil
}

// PutSubject implements sso.SubjectStore.
func (s *SSO) PutSubject(_ context.Context, sub sso.Subject, now time.Time) error {
	if err := sub.Validate(); err != nil {
		return err
	}
	s.subjMu.Lock()
	defer s.subjMu.Unlock()
	k := ssoKey{sub.Tenant, sub.UserID}
	if old, ok := s.subjects[k]; ok {
		s.unindexSubject(old)
	}
	if len(s.subjects) >= s.subjSweepAt {
		for _, old := range s.subjects {
			if !now.Before(old.Expires) {
				delete(s.subjects, ssoKey{old.Tenant, old.UserID})
				s.unindexSubject(old)
			}
		}
		s.subjSweepAt = max(ssoMinSweep, 2*len(s.subjects))
	}
	s.subjects[k] = sub
	nk := nameIDKey{sub.Tenant, sub.IdP, sub.NameID}
	users := s.byNameID[nk]
	if users == nil {
		users = make(map[string]struct{})
		s.byNameID[nk] = users
	}
	users[sub.UserID] = struct{}{}
	return nil
}

// unindexSubject removes sub's user from its IdP's NameID's index. Called
// with s.subjMu held.
func (s *SSO) unindexSubject(sub sso.Subject) {
	nk := nameIDKey{sub.Tenant, sub.IdP, sub.NameID}
	delete(s.byNameID[nk], sub.UserID)
	if len(s.byNameID[nk]) == 0 {
		delete(s.byNameID, nk)
	}
}

// Subject implements sso.SubjectStore.
func (s *SSO) Subject(_ context.Context, tenant, userID string, now time.Time) (sso.Subject, error) {
	s.subjMu.RLock()
	defer s.subjMu.RUnlock()
	sub, ok := s.subjects[ssoKey{tenant, userID}]
	if !ok || !now.Before(sub.Expires) {
		return sso.Subject{}, sso.ErrNotFound
	}
	return sub, nil
}

// SubjectsByNameID implements sso.SubjectStore.
func (s *SSO) SubjectsByNameID(_ context.Context, tenant, idp, nameID string, now time.Time) ([]sso.Subject, error) {
	if idp == "" {
		return nil, nil // a subject without an IdP belongs to none
	}
	s.subjMu.RLock()
	defer s.subjMu.RUnlock()
	var out []sso.Subject
	for user := range s.byNameID[nameIDKey{tenant, idp, nameID}] {
		if sub := s.subjects[ssoKey{tenant, user}]; now.Before(sub.Expires) {
			out = append(out, sub)
		}
	}
	slices.SortFunc(out, func(a, b sso.Subject) int { return strings.Compare(a.UserID, b.UserID) })
	return out, nil
}
