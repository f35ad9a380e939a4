package guard_test

import (
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
)

// Sign-out of a request authenticated just before another tab (or an API
// client holding the same token) rotated the session: the host calls
// Logout with the request's principal (the example server's POST /logout
// does, through LogoutSSO, and takes ErrUnauthenticated as "signed out").
// Logout ends only the hash the principal names, which is now a rotation
// tombstone, and returns ErrUnauthenticated: the session the user signed
// in with lives on under its new token, although the user was told they
// signed out. LogoutToken follows the rotation; Logout does not.
func TestReviewLogoutOfPrincipalWhoseSessionWasJustRotated(t *testing.T) {
	f := newFixture(t)
	f.createUser(t, "alice@example.com", ownerPW)
	res, err := f.login("alice@example.com", ownerPW)
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.g.Authenticate(f.ctx, res.Token) // the sign-out request passes Middleware
	if err != nil {
		t.Fatal(err)
	}
	t2, _, err := f.g.RotateSession(f.ctx, res.Token, p.Flags) // another tab, meanwhile
	if err != nil {
		t.Fatal(err)
	}
	lerr := f.g.Logout(f.ctx, p)
	if _, err := f.g.Authenticate(f.ctx, t2); err == nil {
		t.Errorf("Logout(principal) = %v, and the session it was rotated to still authenticates: the sign-out left the user's session live", lerr)
	} else if !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("Authenticate(rotated token) = %v", err)
	}
}
