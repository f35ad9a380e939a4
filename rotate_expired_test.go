package guard_test

import (
	"context"
	"errors"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/session"
	"github.com/guardhq/guard/store/memstore"
)

// lateLookup runs its hook, once armed, right after the next Lookup it
// serves.
type lateLookup struct {
	*memstore.Sessions
	onceHook
}

func (s *lateLookup) Lookup(ctx context.Context, h session.Hash) (session.Session, error) {
	ss, err := s.Sessions.Lookup(ctx, h)
	s.run()
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
	// The session reaches its absolute end (7 days by default) once read.
	sessions.arm(func() { f.clock.Advance(7 * 24 * time.Hour) })
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
