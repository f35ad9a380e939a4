package guard_test

import (
	"context"
	"crypto/rand"
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/session"
)

// rotatingStore is a session.Store without LineageRevoker (a custom
// store: Manager.RevokeLineageHash then chases the tombstones with Lookup
// and Delete) on which another client rotates the session each time a
// Delete is about to land, as a client rotating as fast as it can.
type rotatingStore struct {
	session.Store
	left int
}

func (s *rotatingStore) Delete(ctx context.Context, h session.Hash) (session.Session, error) {
	if s.left > 0 {
		if cur, err := s.Store.Lookup(ctx, h); err == nil {
			s.left--
			n := cur
			if _, err := rand.Read(n.Hash[:]); err != nil {
				panic(err)
			}
			if err := s.Store.Rotate(ctx, h, n); err != nil {
				panic(err)
			}
		}
	}
	return s.Store.Delete(ctx, h)
}

// Logout's doc: a principal whose session another client rotates faster
// than Logout follows it is ErrUnavailable, "never a sign-out reported as
// done", and only a rotated session that ended meanwhile is
// ErrUnauthenticated. revokeOwn looks at the chain again (ownSession)
// only when p.Session was already a tombstone at its first lookup
// (!next.IsZero()): when p.Session was the live session then and the
// chase is outrun, Logout answers ErrUnauthenticated ("already signed
// out") while the session lives on.
func TestLogoutOutrunChaseFromLiveSessionSaysUnauthenticated(t *testing.T) {
	var rs *rotatingStore
	f := newFixture(t, func(c *guard.Config) {
		rs = &rotatingStore{Store: c.Stores.Sessions}
		c.Stores.Sessions = rs
	})
	f.createUser(t, adaEmail, ownerPW)
	p, _ := f.signIn(t, adaEmail)
	rs.left = 100
	err := f.g.Logout(f.ctx, p)
	rs.left = 0
	live, lerr := f.mem.Stores().SessionIndex.ListByUser(f.ctx, p.Tenant, p.UserID)
	if lerr != nil {
		t.Fatal(lerr)
	}
	if errors.Is(err, guard.ErrUnauthenticated) && len(live) > 0 {
		t.Errorf("Logout = %v (not signed in), yet %d session(s) of the user live on", err, len(live))
	}
}
