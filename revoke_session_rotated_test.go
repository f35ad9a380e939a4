package guard_test

import (
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// Ending one's own current session with RevokeSession is a logout (it
// needs no step-up): when another tab rotated the session after the
// principal was authenticated, it ends the session it was rotated to, as
// Logout does, rather than answer session.ErrNotFound for the rotation
// tombstone and leave the session live under its new token.
func TestRevokeSessionOfOwnCurrentSessionJustRotated(t *testing.T) {
	f := newFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	p, tok := f.signIn(t, adaEmail)
	t2, s2, err := f.g.RotateSession(f.ctx, tok, p.Flags) // another tab, meanwhile
	if err != nil {
		t.Fatal(err)
	}
	if err := f.g.RevokeSession(f.ctx, p, tenantID, p.UserID, p.SessionID()); err != nil {
		t.Errorf("RevokeSession(own current session, rotated since) = %v", err)
	}
	if _, err := f.g.Authenticate(f.ctx, t2); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("Authenticate(rotated token) after RevokeSession = %v, want ErrUnauthenticated: the session lives on", err)
	}
	evs := f.events(t, audit.SessionRevoked)
	if len(evs) != 1 || evs[0].Target != s2.ID() || evs[0].Meta["via"] != "rotated_token" {
		t.Errorf("session.revoked records %+v, want one on %s with via rotated_token", evs, s2.ID())
	}
}
