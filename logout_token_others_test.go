package guard_test

import (
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// After "end my other sessions", a tab still holding a token of the
// current session from before its rotations signs it out: ending the
// other sessions keeps the current one's rotations, and only its.
func TestLogoutTokenAfterEndingOtherSessions(t *testing.T) {
	f := newFixture(t, func(c *guard.Config) { c.Defaults = guard.Policy{SessionLimit: 3} })
	f.createUser(t, "alice@example.com", ownerPW)
	res, err := f.login("alice@example.com", ownerPW)
	if err != nil {
		t.Fatal(err)
	}
	t1, _, err := f.g.RotateSession(f.ctx, res.Token, 0)
	if err != nil {
		t.Fatal(err)
	}
	t2, s2, err := f.g.RotateSession(f.ctx, t1, 0)
	if err != nil {
		t.Fatal(err)
	}
	other, err := f.login("alice@example.com", ownerPW)
	if err != nil {
		t.Fatal(err)
	}
	o1, _, err := f.g.RotateSession(f.ctx, other.Token, 0)
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.g.Authenticate(f.ctx, t2)
	if err != nil {
		t.Fatal(err)
	}
	if n, err := f.g.RevokeUserSessions(f.ctx, p, tenantID, p.UserID); err != nil || n != 1 {
		t.Fatalf("RevokeUserSessions of one's own other sessions = %d, %v; want 1", n, err)
	}
	// The other session is gone under both its tokens: nothing to sign out.
	for _, tok := range []string{other.Token, o1} {
		if err := f.g.LogoutToken(f.ctx, tok, "", ""); !errors.Is(err, guard.ErrUnauthenticated) {
			t.Errorf("LogoutToken(a token of the ended session) = %v, want ErrUnauthenticated", err)
		}
	}
	if _, err := f.g.Authenticate(f.ctx, t2); err != nil {
		t.Fatalf("the current session after ending the others: %v", err)
	}
	if err := f.g.LogoutToken(f.ctx, res.Token, "", ""); err != nil {
		t.Fatalf("LogoutToken(the current session's first token) after ending the others: %v", err)
	}
	if _, err := f.g.Authenticate(f.ctx, t2); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("the current session after signing out with its first token: %v, want ErrUnauthenticated", err)
	}
	evs := f.events(t, audit.Logout)
	if len(evs) != 1 || evs[0].Target != s2.ID() || evs[0].Meta["via"] != "rotated_token" {
		t.Errorf("logout events = %+v; want one on the current session, via rotated_token", evs)
	}
}
