package session_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/guardhq/guard/session"
)

// TestRevokeLineage: signing out with a token that was rotated since ends
// the session it was rotated to, through any number of rotations up to
// the bound; an evicted, unknown or malformed token ends nothing.
func TestRevokeLineage(t *testing.T) {
	t.Run("Live", func(t *testing.T) {
		f := newFixture(t, nil)
		tok, s := f.create(t, session.Options{})
		got, rotated, err := f.m.RevokeLineage(t.Context(), tok)
		if err != nil || rotated || got.Hash != s.Hash {
			t.Fatalf("RevokeLineage = %s, %v, %v; want the session itself", got.ID(), rotated, err)
		}
		f.wantErr(t, tok, session.ErrNotFound)
	})
	t.Run("RotatedOnceAndTwice", func(t *testing.T) {
		for _, hops := range []int{1, 2, 8} {
			f := newFixture(t, nil)
			tok, _ := f.create(t, session.Options{})
			cur := tok
			var last session.Session
			for range hops {
				f.clock.Advance(time.Minute)
				nt, s, err := f.m.Rotate(t.Context(), cur, 1)
				if err != nil {
					t.Fatalf("Rotate: %v", err)
				}
				cur, last = nt, s
			}
			// The old token is unknown, not "signed in elsewhere".
			if _, err := f.m.Authenticate(t.Context(), tok); !errors.Is(err, session.ErrNotFound) || errors.Is(err, session.ErrEvicted) {
				t.Fatalf("Authenticate(old token) = %v, want plain ErrNotFound", err)
			}
			got, rotated, err := f.m.RevokeLineage(t.Context(), tok)
			if err != nil || !rotated || got.Hash != last.Hash {
				t.Fatalf("%d hops: RevokeLineage = %s, %v, %v; want %s, rotated", hops, got.ID(), rotated, err, last.ID())
			}
			f.wantErr(t, cur, session.ErrNotFound)
			if _, _, err := f.m.RevokeLineage(t.Context(), tok); !errors.Is(err, session.ErrNotFound) {
				t.Errorf("RevokeLineage again = %v, want ErrNotFound", err)
			}
		}
	})
	t.Run("LongerThanTheBound", func(t *testing.T) {
		f := newFixture(t, nil)
		tok, _ := f.create(t, session.Options{})
		cur := tok
		for range 9 {
			nt, _, err := f.m.Rotate(t.Context(), cur, 0)
			if err != nil {
				t.Fatalf("Rotate: %v", err)
			}
			cur = nt
		}
		if _, _, err := f.m.RevokeLineage(t.Context(), tok); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("RevokeLineage over 9 hops = %v, want ErrNotFound", err)
		}
		f.wantLive(t, cur)
	})
	t.Run("EvictedEndsNothing", func(t *testing.T) {
		f := newFixture(t, nil)
		old, _ := f.create(t, session.Options{})
		f.clock.Advance(time.Minute)
		cur, _ := f.create(t, session.Options{}) // evicts old
		if _, _, err := f.m.RevokeLineage(t.Context(), old); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("RevokeLineage(evicted) = %v, want ErrNotFound", err)
		}
		f.wantLive(t, cur)
	})
	t.Run("RotatedThenEvicted", func(t *testing.T) {
		f := newFixture(t, nil)
		tok, _ := f.create(t, session.Options{})
		if _, _, err := f.m.Rotate(t.Context(), tok, 0); err != nil {
			t.Fatalf("Rotate: %v", err)
		}
		f.clock.Advance(time.Minute)
		cur, _ := f.create(t, session.Options{}) // evicts the rotated one
		if _, _, err := f.m.RevokeLineage(t.Context(), tok); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("RevokeLineage = %v, want ErrNotFound", err)
		}
		f.wantLive(t, cur)
	})
	t.Run("UnknownAndMalformed", func(t *testing.T) {
		f := newFixture(t, nil)
		_, s := f.create(t, session.Options{})
		if _, _, err := f.m.RevokeLineage(t.Context(), "not a token"); !errors.Is(err, session.ErrInvalidToken) {
			t.Errorf("malformed: %v, want ErrInvalidToken", err)
		}
		unknown := strings.Repeat("A", 43)
		if _, _, err := f.m.RevokeLineage(t.Context(), unknown); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("unknown: %v, want ErrNotFound", err)
		}
		if _, err := f.store.Lookup(t.Context(), s.Hash); err != nil {
			t.Errorf("the other session: %v", err)
		}
	})
	t.Run("OtherUserHop", func(t *testing.T) {
		// A tombstone that names another user's session (a corrupt or
		// forged store) ends nothing.
		f := newFixture(t, nil)
		_, victim := f.create(t, session.Options{UserID: "u2"})
		tok := strings.Repeat("B", 42) + "A"
		h, err := session.ParseToken(tok)
		if err != nil {
			t.Fatal(err)
		}
		st := &forgedStore{spyStore: f.store, h: h, re: &session.RotatedError{Successor: victim.Hash, Tenant: "acme",
			UserID: "u1", EndsAt: victim.ExpiresAt}}
		m, err := session.New(session.Config{Store: st, Index: st, Now: f.clock.Now})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := m.RevokeLineage(t.Context(), tok); !errors.Is(err, session.ErrNotFound) {
			t.Fatalf("RevokeLineage across users = %v, want ErrNotFound", err)
		}
		if _, err := f.store.Lookup(t.Context(), victim.Hash); err != nil {
			t.Errorf("the other user's session: %v", err)
		}
	})
	t.Run("StoreFailure", func(t *testing.T) {
		f := newFixture(t, nil)
		tok, _ := f.create(t, session.Options{})
		boom := errors.New("boom")
		for _, method := range []string{"Lookup", "Delete"} {
			f.store.setFail(method, boom)
			if _, _, err := f.m.RevokeLineage(t.Context(), tok); !errors.Is(err, boom) || errors.Is(err, session.ErrNotFound) {
				t.Errorf("%s failing: %v, want the store error", method, err)
			}
			f.store.setFail(method, nil)
		}
		f.wantLive(t, tok)
	})
}

// forgedStore answers Lookup(h) with re.
type forgedStore struct {
	*spyStore
	h  session.Hash
	re *session.RotatedError
}

func (s *forgedStore) Lookup(ctx context.Context, h session.Hash) (session.Session, error) {
	if h == s.h {
		return session.Session{}, s.re
	}
	return s.spyStore.Lookup(ctx, h)
}

// lineageSpy is a spyStore with the optional LineageRevoker of the
// memstore it wraps.
type lineageSpy struct {
	*spyStore
	maxHops int // as last given to DeleteLineage
}

func (s *lineageSpy) DeleteLineage(ctx context.Context, h session.Hash, maxHops int) (session.Session, bool, error) {
	if err := s.call("DeleteLineage"); err != nil {
		return session.Session{}, false, err
	}
	s.maxHops = maxHops
	return s.Store.(session.LineageRevoker).DeleteLineage(ctx, h, maxHops)
}

// TestRevokeLineageOnALineageRevoker: on a store with the optional
// LineageRevoker, RevokeLineage is its one atomic call, bounded by
// MaxLineageHops, and not a chase with Lookup and Delete.
func TestRevokeLineageOnALineageRevoker(t *testing.T) {
	f := newFixture(t, nil)
	st := &lineageSpy{spyStore: f.store}
	m, err := session.New(session.Config{Store: st, Index: st, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	tok, _ := f.create(t, session.Options{})
	cur, last := tok, session.Session{}
	for range 2 {
		cur, last, err = m.Rotate(t.Context(), cur, 0)
		if err != nil {
			t.Fatalf("Rotate: %v", err)
		}
	}
	lookups, deletes := f.store.count("Lookup"), f.store.count("Delete")
	got, rotated, err := m.RevokeLineage(t.Context(), tok)
	if err != nil || !rotated || got.Hash != last.Hash {
		t.Fatalf("RevokeLineage = %s, %v, %v; want %s, rotated", got.ID(), rotated, err, last.ID())
	}
	if n := f.store.count("DeleteLineage"); n != 1 || st.maxHops != session.MaxLineageHops {
		t.Errorf("%d DeleteLineage calls, maxHops %d; want 1, MaxLineageHops", n, st.maxHops)
	}
	if l, d := f.store.count("Lookup")-lookups, f.store.count("Delete")-deletes; l != 0 || d != 0 {
		t.Errorf("RevokeLineage also made %d Lookups and %d Deletes", l, d)
	}
	f.wantErr(t, cur, session.ErrNotFound)
	if _, _, err := m.RevokeLineage(t.Context(), tok); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("RevokeLineage again = %v, want ErrNotFound", err)
	}
	live, _ := f.create(t, session.Options{UserID: "other"})
	boom := errors.New("boom")
	f.store.setFail("DeleteLineage", boom)
	if _, _, err := m.RevokeLineage(t.Context(), live); !errors.Is(err, boom) || errors.Is(err, session.ErrNotFound) {
		t.Errorf("DeleteLineage failing: %v, want the store error", err)
	}
	f.wantLive(t, live)
}
