package guard_test

import (
	"testing"
)

// RevokeUserSessions ("sign out everywhere else") spares "the
// principal's own current session". Logout and RevokeSession of one's
// own current session now follow a rotation made since the principal was
// authenticated (another tab's RotateSession or step-up) to the session
// it became; RevokeUserSessions does not: it spares the rotation
// tombstone (by.Session), ends the session that tombstone leads to, the
// user's own current session, and counts it among the "other" sessions.
func TestRevokeUserSessionsEndsOwnSessionRotatedSince(t *testing.T) {
	f := newFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	p, tok := f.signIn(t, adaEmail)
	t2, _, err := f.g.RotateSession(f.ctx, tok, p.Flags) // another tab, meanwhile
	if err != nil {
		t.Fatal(err)
	}
	n, err := f.g.RevokeUserSessions(f.ctx, p, p.Tenant, p.UserID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.Authenticate(f.ctx, t2); err != nil {
		t.Errorf("RevokeUserSessions (everywhere else) ended %d session(s), the principal's own current session among them: Authenticate(its rotated token) = %v", n, err)
	}
}
