package memstore

import (
	"bytes"
	"context"
	"slices"
	"sync"
	"time"

	"github.com/guardhq/guard/session"
)

// Sessions is an in-memory session.Store and session.UserIndex. Lookup
// takes a read lock and allocates nothing; every other method holds the
// write lock for its whole step.
//
// Expired sessions are removed when they are seen: by Create for the
// user's own sessions, and by the session.Manager, which deletes a session
// it finds expired. A session that is never presented again after it
// expires stays in memory until its user signs in again or is revoked.
// The tombstones of evicted and rotated sessions go the same way: Create
// removes the user's ended ones, DeleteByUser all of them but the
// rotation tombstones that lead to the session it spares.
type Sessions struct {
	mu      sync.RWMutex
	byHash  map[session.Hash]session.Session
	byUser  map[userKey][]session.Hash // in no particular order
	tombs   map[session.Hash]tomb      // evicted or rotated session → its tombstone
	tombsOf map[userKey][]session.Hash // the user's tombstones, in no particular order
}

// tomb is the tombstone of an evicted session (succ zero) or of a rotated
// one (succ its successor), kept under its user.
type tomb struct {
	end  time.Time
	succ session.Hash
	user userKey
}

// userKey names a user across tenants.
type userKey struct{ tenant, userID string }

var (
	_ session.Store          = (*Sessions)(nil)
	_ session.UserIndex      = (*Sessions)(nil)
	_ session.LineageRevoker = (*Sessions)(nil)
)

// NewSessions returns an empty session store.
func NewSessions() *Sessions {
	return &Sessions{
		byHash:  make(map[session.Hash]session.Session),
		byUser:  make(map[userKey][]session.Hash),
		tombs:   make(map[session.Hash]tomb),
		tombsOf: make(map[userKey][]session.Hash),
	}
}

// Len returns the number of sessions stored, live or not.
func (s *Sessions) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return len(s.byHash)
}

// Create implements session.Store.
func (s *Sessions) Create(_ context.Context, n session.Session, lim session.Limit) ([]session.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.exists(n.Hash) {
		return nil, session.ErrDuplicate
	}
	k := userKey{n.Tenant, n.UserID}
	var live, dead []session.Session
	for _, h := range s.byUser[k] {
		if old := s.byHash[h]; old.LiveAt(n.CreatedAt) {
			live = append(live, old)
		} else {
			dead = append(dead, old)
		}
	}
	var evicted []session.Session
	if lim.Max > 0 && len(live) >= lim.Max {
		if lim.Policy == session.RefuseNew {
			return nil, session.ErrLimit
		}
		slices.SortFunc(live, oldestFirst)
		cut := len(live) - lim.Max + 1
		evicted, live = live[:cut:cut], live[cut:]
	}
	for _, d := range dead {
		delete(s.byHash, d.Hash)
	}
	tombs := slices.DeleteFunc(s.tombsOf[k], func(h session.Hash) bool {
		if s.tombs[h].end.After(n.CreatedAt) {
			return false
		}
		delete(s.tombs, h)
		return true
	})
	for _, e := range evicted {
		delete(s.byHash, e.Hash)
		s.tombs[e.Hash] = tomb{end: e.EndsAt(), user: k}
		tombs = append(tombs, e.Hash)
	}
	if len(tombs) == 0 {
		delete(s.tombsOf, k)
	} else {
		s.tombsOf[k] = tombs
	}
	hashes := make([]session.Hash, 0, len(live)+1)
	for _, l := range live {
		hashes = append(hashes, l.Hash)
	}
	s.byUser[k] = append(hashes, n.Hash)
	s.byHash[n.Hash] = n
	return evicted, nil
}

// Lookup implements session.Store.
func (s *Sessions) Lookup(_ context.Context, h session.Hash) (session.Session, error) {
	s.mu.RLock()
	v, ok := s.byHash[h]
	if !ok {
		t, ok := s.tombs[h]
		s.mu.RUnlock()
		switch {
		case !ok:
			return session.Session{}, session.ErrNotFound
		case t.succ.IsZero():
			return session.Session{}, &session.EvictedError{EndsAt: t.end}
		}
		return session.Session{}, &session.RotatedError{Successor: t.succ, Tenant: t.user.tenant, UserID: t.user.userID, EndsAt: t.end}
	}
	s.mu.RUnlock()
	return v, nil
}

// Touch implements session.Store.
func (s *Sessions) Touch(_ context.Context, h session.Hash, seen time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.byHash[h]
	if !ok {
		return session.ErrNotFound
	}
	if seen.After(v.LastSeen) {
		v.LastSeen = seen
		s.byHash[h] = v
	}
	return nil
}

// Delete implements session.Store.
func (s *Sessions) Delete(_ context.Context, h session.Hash) (session.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.byHash[h]
	if !ok {
		return session.Session{}, session.ErrNotFound
	}
	s.remove(v)
	return v, nil
}

// DeleteLineage implements session.LineageRevoker under the write lock.
func (s *Sessions) DeleteLineage(_ context.Context, h session.Hash, maxHops int) (session.Session, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var user userKey // the lineage's, from its first tombstone
	for hops := 0; ; hops++ {
		if v, ok := s.byHash[h]; ok {
			if hops > 0 && (userKey{v.Tenant, v.UserID}) != user {
				return session.Session{}, false, session.ErrNotFound
			}
			s.remove(v)
			return v, hops > 0, nil
		}
		t, ok := s.tombs[h]
		if !ok || t.succ.IsZero() || hops >= maxHops || hops > 0 && t.user != user {
			return session.Session{}, false, session.ErrNotFound
		}
		user, h = t.user, t.succ
	}
}

// Rotate implements session.Store.
func (s *Sessions) Rotate(_ context.Context, old session.Hash, n session.Session) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.byHash[old]
	if !ok {
		return session.ErrNotFound
	}
	if s.exists(n.Hash) {
		return session.ErrDuplicate
	}
	s.remove(v)
	ou := userKey{v.Tenant, v.UserID}
	s.tombs[old] = tomb{end: n.ExpiresAt, succ: n.Hash, user: ou}
	s.tombsOf[ou] = append(s.tombsOf[ou], old)
	k := userKey{n.Tenant, n.UserID}
	s.byUser[k] = append(s.byUser[k], n.Hash)
	s.byHash[n.Hash] = n
	return nil
}

// ListByUser implements session.UserIndex.
func (s *Sessions) ListByUser(_ context.Context, tenant, userID string) ([]session.Session, error) {
	s.mu.RLock()
	hashes := s.byUser[userKey{tenant, userID}]
	out := make([]session.Session, 0, len(hashes))
	for _, h := range hashes {
		out = append(out, s.byHash[h])
	}
	s.mu.RUnlock()
	slices.SortFunc(out, oldestFirst)
	return out, nil
}

// DeleteByUser implements session.UserIndex.
func (s *Sessions) DeleteByUser(_ context.Context, tenant, userID string, except session.Hash) ([]session.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := userKey{tenant, userID}
	var removed []session.Session
	var kept []session.Hash
	for _, h := range s.byUser[k] {
		if h == except && !except.IsZero() {
			kept = append(kept, h)
			continue
		}
		removed = append(removed, s.byHash[h])
		delete(s.byHash, h)
	}
	var lineage map[session.Hash]bool
	if kept == nil {
		delete(s.byUser, k)
	} else {
		s.byUser[k] = kept
		lineage = s.lineage(k, except)
	}
	tombs := slices.DeleteFunc(s.tombsOf[k], func(h session.Hash) bool {
		if lineage[h] {
			return false
		}
		delete(s.tombs, h)
		return true
	})
	if len(tombs) == 0 {
		delete(s.tombsOf, k)
	} else {
		s.tombsOf[k] = tombs
	}
	slices.SortFunc(removed, oldestFirst)
	return removed, nil
}

// lineage returns the rotation tombstones of user k that lead to session
// h: those whose successor is h or, at most session.MaxLineageHops
// rotations back, another of them. The caller holds the lock.
func (s *Sessions) lineage(k userKey, h session.Hash) map[session.Hash]bool {
	out := make(map[session.Hash]bool)
	next := []session.Hash{h}
	for range session.MaxLineageHops {
		cur := next
		next = nil
		for _, t := range s.tombsOf[k] {
			if succ := s.tombs[t].succ; !succ.IsZero() && !out[t] && slices.Contains(cur, succ) {
				out[t] = true
				next = append(next, t)
			}
		}
		if len(next) == 0 {
			break
		}
	}
	return out
}

// exists reports whether h is stored, as a session or a tombstone. The
// caller holds the lock.
func (s *Sessions) exists(h session.Hash) bool {
	_, live := s.byHash[h]
	_, tombstone := s.tombs[h]
	return live || tombstone
}

// remove deletes v from both maps. The caller holds the write lock.
func (s *Sessions) remove(v session.Session) {
	delete(s.byHash, v.Hash)
	k := userKey{v.Tenant, v.UserID}
	hashes := slices.DeleteFunc(s.byUser[k], func(h session.Hash) bool { return h == v.Hash })
	if len(hashes) == 0 {
		delete(s.byUser, k)
	} else {
		s.byUser[k] = hashes
	}
}

// oldestFirst orders sessions by CreatedAt, then by Hash.
func oldestFirst(a, b session.Session) int {
	if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
		return c
	}
	return bytes.Compare(a.Hash[:], b.Hash[:])
}
