package guard_test

import (
	"testing"

	guard "github.com/guardhq/guard"
)

// ChangePassword ends "every other session of the user" and spares
// keep = p.Session without following a rotation made since p was
// authenticated (another tab), as RevokeUserSessions did before
// 2b6ab60: the user's own current session ends with the others.
func TestChangePasswordEndsOwnSessionRotatedSince(t *testing.T) {
	f := newFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	p, tok := f.signIn(t, adaEmail)
	t2, _, err := f.g.RotateSession(f.ctx, tok, p.Flags) // another tab, meanwhile
	if err != nil {
		t.Fatal(err)
	}
	if err := f.g.ChangePassword(f.ctx, p, guard.PasswordChange{Current: ownerPW, New: "a brand new passphrase"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.Authenticate(f.ctx, t2); err != nil {
		t.Errorf("ChangePassword ended the principal's own current session (rotated by another tab): Authenticate(its rotated token) = %v", err)
	}
}
