package guard_test

import (
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// Logout of a principal whose session another request rotated since it
// was authenticated ends the session it was rotated to, and records
// audit.Logout on that one with Meta via rotated_token, as LogoutToken
// records a sign-out with a rotated token.
func TestLogoutOfRotatedSessionRecordedVia(t *testing.T) {
	f := newFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	p, tok := f.signIn(t, adaEmail)
	t2, s2, err := f.g.RotateSession(f.ctx, tok, p.Flags)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.g.Logout(f.ctx, p); err != nil {
		t.Fatalf("Logout(principal of the rotated session) = %v", err)
	}
	if _, err := f.g.Authenticate(f.ctx, t2); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("Authenticate(rotated token) after Logout = %v, want ErrUnauthenticated", err)
	}
	evs := f.events(t, audit.Logout)
	if len(evs) != 1 || evs[0].Target != s2.ID() || evs[0].Meta["via"] != "rotated_token" || evs[0].Actor.ID != p.UserID {
		t.Errorf("audit.Logout records %+v, want one by %s on %s with via rotated_token", evs, p.UserID, s2.ID())
	}
	if err := f.g.Logout(f.ctx, p); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("Logout again = %v, want ErrUnauthenticated", err)
	}
}

// A principal built by hand that names another user's session, or the
// rotation tombstone of one, ends nothing: Logout follows a rotation only
// from a session, or a tombstone, of the principal's own user.
func TestLogoutOfPrincipalNamingAnotherUsersSession(t *testing.T) {
	f := newFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	f.createUser(t, "bob@example.test", ownerPW)
	ada, _ := f.signIn(t, adaEmail)
	bob, bobTok := f.signIn(t, "bob@example.test")
	forged := ada
	forged.Session = bob.Session
	if err := f.g.Logout(f.ctx, forged); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("Logout(ada's principal naming bob's session) = %v, want ErrUnauthenticated", err)
	}
	if _, err := f.g.Authenticate(f.ctx, bobTok); err != nil {
		t.Fatalf("bob's session after another user's Logout named it: %v", err)
	}
	bobTok2, _, err := f.g.RotateSession(f.ctx, bobTok, bob.Flags)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.g.Logout(f.ctx, forged); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("Logout(ada's principal naming bob's rotated session) = %v, want ErrUnauthenticated", err)
	}
	if _, err := f.g.Authenticate(f.ctx, bobTok2); err != nil {
		t.Errorf("bob's rotated session after another user's Logout named its old ID: %v", err)
	}
	if evs := f.events(t, audit.Logout); len(evs) != 0 {
		t.Errorf("audit.Logout records %+v, want none", evs)
	}
}
