package guard_test

import (
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/session"
)

// Logout's doc: a principal that names no session of its own user (a
// session gone, or another user's) is ErrUnauthenticated, and nothing
// ends. A principal kept for longer than one request (a long-lived
// connection, a worker) whose session another client rotated more than
// session.MaxLineageHops times since is answered ErrUnauthenticated
// while the session it names lives on under its newest token: the
// sign-out ends nothing, and the caller (the example server's newSession
// and logout both take ErrUnauthenticated as "already signed out")
// believes it signed out.
func TestLogoutAfterMoreRotationsThanLineageHopsLeavesSessionLive(t *testing.T) {
	f := newFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	p, tok := f.signIn(t, adaEmail)
	for range session.MaxLineageHops + 1 {
		var err error
		if tok, _, err = f.g.RotateSession(f.ctx, tok, p.Flags); err != nil {
			t.Fatal(err)
		}
	}
	err := f.g.Logout(f.ctx, p)
	_, aerr := f.g.Authenticate(f.ctx, tok)
	if errors.Is(err, guard.ErrUnauthenticated) && aerr == nil {
		t.Errorf("Logout = %v, yet the session it names lives on under its newest token", err)
	}
}
