package session_test

import (
	"bytes"
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/guardhq/guard/session"
	"github.com/guardhq/guard/session/sessiontest"
	"github.com/guardhq/guard/store/memstore"
)

// hookStore calls beforeDelete, if set, before each Delete; an error
// from it is returned instead of deleting.
type hookStore struct {
	sessiontest.Store
	mu           sync.Mutex
	beforeDelete func(n int, h session.Hash) error // n counts the deletes, from 1
	deletes      int
}

func (s *hookStore) Delete(ctx context.Context, h session.Hash) (session.Session, error) {
	s.mu.Lock()
	s.deletes++
	n, hook := s.deletes, s.beforeDelete
	s.mu.Unlock()
	if hook != nil {
		if err := hook(n, h); err != nil {
			return session.Session{}, err
		}
	}
	return s.Store.Delete(ctx, h)
}

type trimFixture struct {
	*fixture
	hooks *hookStore
}

// newTrimFixture returns a Manager without a session limit (so that a
// user may hold several sessions, as under a limit since lowered) on a
// hookStore over the spy store.
func newTrimFixture(t *testing.T) *trimFixture {
	t.Helper()
	hooks := &hookStore{}
	f := newFixture(t, func(c *session.Config) {
		hooks.Store = c.Store.(sessiontest.Store)
		c.Store, c.Index, c.Unlimited = hooks, hooks, true
	})
	return &trimFixture{fixture: f, hooks: hooks}
}

// sessions creates n sessions of user u1, a second apart, oldest first.
func (f *trimFixture) sessions(t *testing.T, n int) ([]string, []session.Session) {
	t.Helper()
	var toks []string
	var ss []session.Session
	for range n {
		tok, s := f.create(t, session.Options{})
		toks, ss = append(toks, tok), append(ss, s)
		f.clock.Advance(time.Second)
	}
	return toks, ss
}

func ids(ss []session.Session) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.ID()
	}
	return out
}

func sameIDs(a, b []session.Session) bool {
	x, y := ids(a), ids(b)
	if len(x) != len(y) {
		return false
	}
	for i := range x {
		if x[i] != y[i] {
			return false
		}
	}
	return true
}

// Trim ends the user's oldest sessions beyond the number kept, and
// returns them oldest first.
func TestTrimKeepsNewest(t *testing.T) {
	f := newTrimFixture(t)
	toks, ss := f.sessions(t, 4)
	other, _ := f.create(t, session.Options{UserID: "u2"})
	ended, err := f.m.Trim(t.Context(), "acme", "u1", 2, nil)
	if err != nil || !sameIDs(ended, ss[:2]) {
		t.Fatalf("Trim(2) of 4 = %v, %v; want the two oldest %v", ids(ended), err, ids(ss[:2]))
	}
	f.wantErr(t, toks[0], session.ErrNotFound)
	f.wantErr(t, toks[1], session.ErrNotFound)
	f.wantLive(t, toks[2])
	f.wantLive(t, toks[3])
	f.wantLive(t, other)
	// Nothing beyond the limit: nothing deleted.
	before := f.store.count("Delete")
	if ended, err := f.m.Trim(t.Context(), "acme", "u1", 2, nil); err != nil || len(ended) != 0 {
		t.Errorf("Trim(2) of 2 = %v, %v; want nothing", ids(ended), err)
	}
	if n := f.store.count("Delete"); n != before {
		t.Errorf("Trim with nothing beyond the limit made %d deletes", n-before)
	}
}

// Sessions created at the same instant are ordered by Hash, as Create
// orders them to evict: the greatest hash is the newest.
func TestTrimTiesByHash(t *testing.T) {
	f := newTrimFixture(t)
	var toks []string
	var ss []session.Session
	for range 3 {
		tok, s := f.create(t, session.Options{})
		toks, ss = append(toks, tok), append(ss, s)
	}
	newest := 0
	for i := range ss {
		if bytes.Compare(ss[i].Hash[:], ss[newest].Hash[:]) > 0 {
			newest = i
		}
	}
	ended, err := f.m.Trim(t.Context(), "acme", "u1", 1, nil)
	if err != nil || len(ended) != 2 {
		t.Fatalf("Trim(1) of 3 = %v, %v", ids(ended), err)
	}
	if bytes.Compare(ended[0].Hash[:], ended[1].Hash[:]) >= 0 {
		t.Errorf("ended %v, want ordered by hash", ids(ended))
	}
	f.wantLive(t, toks[newest])
}

// Only sessions live now and counted weigh: the others are neither kept
// in place of one that counts nor deleted.
func TestTrimWeighsOnlyLiveCountedSessions(t *testing.T) {
	f := newTrimFixture(t)
	_, idle := f.create(t, session.Options{IdleTimeout: time.Minute}) // the oldest, idle past its timeout below
	f.clock.Advance(time.Second)
	toks, ss := f.sessions(t, 3)
	f.clock.Advance(2 * time.Minute)
	skip := ss[1]
	counts := func(s session.Session) bool { return s.Hash != skip.Hash }
	ended, err := f.m.Trim(t.Context(), "acme", "u1", 1, counts)
	if err != nil || !sameIDs(ended, ss[:1]) {
		t.Fatalf("Trim = %v, %v; want %v", ids(ended), err, ids(ss[:1]))
	}
	f.wantLive(t, toks[1])
	f.wantLive(t, toks[2])
	if _, err := f.hooks.Lookup(t.Context(), idle.Hash); err != nil {
		t.Errorf("the session that was not live: %v, want it left to expire", err)
	}
}

func TestTrimBadInput(t *testing.T) {
	f := newTrimFixture(t)
	toks, _ := f.sessions(t, 2)
	var ie *session.InputError
	if _, err := f.m.Trim(t.Context(), "acme", "u1", -1, nil); !errors.As(err, &ie) || ie.Field != "keep" {
		t.Errorf("Trim(-1) = %v, want an *InputError for keep", err)
	}
	if _, err := f.m.Trim(t.Context(), "", "u1", 1, nil); !errors.As(err, &ie) || ie.Field != "tenant" {
		t.Errorf("Trim without a tenant = %v, want an *InputError for tenant", err)
	}
	if ended, err := f.m.Trim(t.Context(), "acme", "u1", 0, nil); err != nil || len(ended) != 0 || f.store.count("ListByUser") != 0 {
		t.Errorf("Trim(0) = %v, %v; want no limit: nothing listed or ended", ids(ended), err)
	}
	f.wantLive(t, toks[0])
	f.wantLive(t, toks[1])
}

// A store failure stops Trim: the sessions it ended so far are returned
// with the error, which is never a clean answer; the others are untouched.
func TestTrimStoreErrors(t *testing.T) {
	boom := errors.New("boom")
	t.Run("List", func(t *testing.T) {
		f := newTrimFixture(t)
		toks, _ := f.sessions(t, 2)
		f.store.setFail("ListByUser", boom)
		ended, err := f.m.Trim(t.Context(), "acme", "u1", 1, nil)
		if !errors.Is(err, boom) || errors.Is(err, session.ErrNotFound) || len(ended) != 0 {
			t.Errorf("Trim with ListByUser failing = %v, %v; want the failure, nothing ended", ids(ended), err)
		}
		f.store.setFail("ListByUser", nil)
		f.wantLive(t, toks[0])
	})
	t.Run("SecondDelete", func(t *testing.T) {
		f := newTrimFixture(t)
		toks, ss := f.sessions(t, 3)
		f.hooks.beforeDelete = func(n int, _ session.Hash) error {
			if n == 2 {
				return boom
			}
			return nil
		}
		ended, err := f.m.Trim(t.Context(), "acme", "u1", 1, nil)
		if !errors.Is(err, boom) || !sameIDs(ended, ss[:1]) {
			t.Fatalf("Trim with the second delete failing = %v, %v; want the first ended and the failure", ids(ended), err)
		}
		f.hooks.beforeDelete = nil
		f.wantErr(t, toks[0], session.ErrNotFound)
		f.wantLive(t, toks[1])
		f.wantLive(t, toks[2])
	})
}

// A session changed between Trim's listing and its delete: Trim lists
// again and weighs what is there now. A session reauthenticated
// meanwhile is the newest and kept; one another call ended is not
// Trim's to return.
func TestTrimListsAgainAfterARace(t *testing.T) {
	t.Run("Reauthenticated", func(t *testing.T) {
		f := newTrimFixture(t)
		toks, ss := f.sessions(t, 3)
		var again string
		f.hooks.beforeDelete = func(n int, h session.Hash) error {
			if n == 1 && h == ss[0].Hash {
				var err error
				if again, _, err = f.m.Reauthenticate(t.Context(), toks[0], 0); err != nil {
					t.Errorf("Reauthenticate: %v", err)
				}
			}
			return nil
		}
		ended, err := f.m.Trim(t.Context(), "acme", "u1", 1, nil)
		if err != nil || !sameIDs(ended, ss[1:]) {
			t.Fatalf("Trim = %v, %v; want the two not reauthenticated %v", ids(ended), err, ids(ss[1:]))
		}
		f.wantLive(t, again)
		if l, _ := f.m.List(t.Context(), "acme", "u1"); len(l) != 1 {
			t.Errorf("%d sessions left, want 1", len(l))
		}
	})
	t.Run("EndedElsewhere", func(t *testing.T) {
		f := newTrimFixture(t)
		toks, ss := f.sessions(t, 3)
		f.hooks.beforeDelete = func(n int, h session.Hash) error {
			if n == 1 {
				if _, err := f.m.Revoke(t.Context(), toks[0]); err != nil {
					t.Errorf("Revoke: %v", err)
				}
			}
			return nil
		}
		ended, err := f.m.Trim(t.Context(), "acme", "u1", 1, nil)
		if err != nil || !sameIDs(ended, ss[1:2]) {
			t.Fatalf("Trim = %v, %v; want only the one it ended %v", ids(ended), err, ids(ss[1:2]))
		}
		f.wantLive(t, toks[2])
	})
}

// Trim races a sign-in of the same user, under the lowered limit or under
// the old one (a replica that has not seen the change): the new session
// is never ended, no session is ended twice (by Trim and by the sign-in's
// eviction), and a second Trim leaves the new session alone.
func TestTrimRacesCreate(t *testing.T) {
	for _, lim := range []session.Limit{{Max: 1}, {Max: 3}} {
		for range 50 {
			st := memstore.NewSessions()
			c := newClock()
			m, err := session.New(session.Config{Store: st, Index: st, Now: c.Now, Unlimited: true})
			if err != nil {
				t.Fatal(err)
			}
			ctx := t.Context()
			old := map[session.Hash]bool{}
			for range 3 {
				_, s, _, err := m.Create(ctx, session.Options{Tenant: "acme", UserID: "u1"})
				if err != nil {
					t.Fatal(err)
				}
				old[s.Hash] = true
				c.Advance(time.Second)
			}
			var (
				wg               sync.WaitGroup
				trimmed, evicted []session.Session
				token            string
				trimErr, newErr  error
			)
			wg.Go(func() { trimmed, trimErr = m.Trim(ctx, "acme", "u1", 1, nil) })
			wg.Go(func() {
				token, _, evicted, newErr = m.Create(ctx, session.Options{Tenant: "acme", UserID: "u1", Limit: &lim})
			})
			wg.Wait()
			if trimErr != nil || newErr != nil {
				t.Fatalf("Trim: %v; Create: %v", trimErr, newErr)
			}
			ended := map[session.Hash]int{}
			for _, s := range append(trimmed, evicted...) {
				ended[s.Hash]++
				if !old[s.Hash] || ended[s.Hash] > 1 {
					t.Fatalf("limit %d: session %s ended by Trim %v and the sign-in %v", lim.Max, s.ID(), ids(trimmed), ids(evicted))
				}
			}
			if _, err := m.Authenticate(ctx, token); err != nil {
				t.Fatalf("limit %d: the new session after the race: %v", lim.Max, err)
			}
			again, err := m.Trim(ctx, "acme", "u1", 1, nil)
			if err != nil || len(again)+len(ended) != 3 {
				t.Fatalf("limit %d: a second Trim = %v, %v after %d ended; want the rest of the old ones", lim.Max, ids(again), err, len(ended))
			}
			if l, err := m.List(ctx, "acme", "u1"); err != nil || len(l) != 1 || l[0].Hash == (session.Hash{}) || old[l[0].Hash] {
				t.Fatalf("limit %d: sessions left %v, %v; want the new one only", lim.Max, ids(l), err)
			}
		}
	}
}

// RevokeUserWhere ends the user's sessions that match, oldest first, and
// leaves the others, and other users', alone; a session rotated between
// its listing and its delete is judged again under its new hash; a nil
// match ends nothing; bad input is an *InputError; a store failure is
// returned with the sessions ended so far.
func TestRevokeUserWhere(t *testing.T) {
	const mark = 1 << 4
	marked := func(s session.Session) bool { return s.Flags&mark != 0 }
	f := newTrimFixture(t)
	var toks []string
	var ss []session.Session
	for i := range 4 {
		tok, s := f.create(t, session.Options{Flags: uint32(i%2) * mark})
		toks, ss = append(toks, tok), append(ss, s)
		f.clock.Advance(time.Second)
	}
	other, _ := f.create(t, session.Options{UserID: "u2", Flags: mark})
	var ie *session.InputError
	if _, err := f.m.RevokeUserWhere(t.Context(), "", "u1", marked); !errors.As(err, &ie) || ie.Field != "tenant" {
		t.Errorf("RevokeUserWhere without a tenant = %v, want an *InputError for tenant", err)
	}
	if ended, err := f.m.RevokeUserWhere(t.Context(), "acme", "u1", nil); err != nil || len(ended) != 0 {
		t.Errorf("RevokeUserWhere(nil) = %v, %v; want nothing ended", ids(ended), err)
	}
	// The first marked session is rotated (keeping its flags) just before
	// its delete: the listing again finds it under its new hash.
	var rotated string
	f.hooks.beforeDelete = func(n int, h session.Hash) error {
		if n == 1 && h == ss[1].Hash {
			var err error
			if rotated, _, err = f.m.Rotate(t.Context(), toks[1], mark); err != nil {
				t.Errorf("Rotate: %v", err)
			}
		}
		return nil
	}
	ended, err := f.m.RevokeUserWhere(t.Context(), "acme", "u1", marked)
	f.hooks.beforeDelete = nil
	if err != nil || len(ended) != 2 || ended[0].Hash != ss[3].Hash || ended[1].CreatedAt != ss[1].CreatedAt || ended[1].Hash == ss[1].Hash {
		t.Fatalf("RevokeUserWhere = %v, %v; want the two marked sessions", ids(ended), err)
	}
	f.wantErr(t, rotated, session.ErrNotFound)
	f.wantErr(t, toks[3], session.ErrNotFound)
	f.wantLive(t, toks[0])
	f.wantLive(t, toks[2])
	f.wantLive(t, other)

	boom := errors.New("boom")
	f.store.setFail("ListByUser", boom)
	if ended, err := f.m.RevokeUserWhere(t.Context(), "acme", "u2", marked); !errors.Is(err, boom) || errors.Is(err, session.ErrNotFound) || len(ended) != 0 {
		t.Errorf("RevokeUserWhere with ListByUser failing = %v, %v; want the failure, nothing ended", ids(ended), err)
	}
	f.store.setFail("ListByUser", nil)
	f.wantLive(t, other)
}
