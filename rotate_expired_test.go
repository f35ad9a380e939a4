package guard_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/session"
	"github.com/guardhq/guard/store/memstore"
)

// lateLookup runs after, once, right after the first Lookup it serves
// once armed.
type lateLookup struct {
	*memstore.Sessions
	mu    sync.Mutex
	after func()
}

func (s *lateLookup) Lookup(ctx context.Context, h session.Hash) (session.Session, error) {
	ss, err := s.Sessions.Lookup(ctx, h)
	s.mu.Lock()
	f := s.after
	s.after = nil
	s.mu.Unlock()
	if f != nil {
		f()
	}
	return ss, err
}

// RotateSession records the expiry it finds (session.expired, once: AU-1)
// when the session reaches its end between its check and the renewal,
// as Authenticate and Reauthenticate do: the renewal removes the session,
// so no later request can record it.
func TestRotateSessionRecordsTheExpiryItFinds(t *testing.T) {
	sessions := &lateLookup{}
	f := newMFAFixture(t, func(c *guard.Config) {
		sessions.Sessions = f0sessions(c)
		c.Stores.Sessions = sessions
	})
	f.createUser(t, adaEmail, ownerPW)
	res, _ := f.signIn(t, adaEmail, ownerPW)
	sessions.mu.Lock()
	// The session reaches its absolute end (7 days by default) once read.
	sessions.after = func() { f.clock.Advance(7 * 24 * time.Hour) }
	sessions.mu.Unlock()
	_, _, err := f.g.RotateSession(f.ctx, res.Token, 0)
	if !errors.Is(err, guard.ErrUnauthenticated) {
		t.Fatalf("RotateSession of a session reaching its lifetime = %v, want ErrUnauthenticated", err)
	}
	var got []string
	for _, e := range f.events(t, audit.SessionExpired) {
		if e.Target == res.Session.ID() {
			got = append(got, e.Reason)
		}
	}
	if len(got) != 1 || got[0] != "lifetime" {
		t.Errorf("session.expired records of the session = %q, want one with reason lifetime", got)
	}
}
