package guard_test

import (
	"errors"
	"strings"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// Ending the sessions of an ID that names no user is ErrUserNotFound,
// unrecorded (it recorded session.revoked of nobody, and the console said
// "Ended 0 session(s)"); a user without sessions is still a success,
// recorded.
func TestRevokeUserSessionsOfNobody(t *testing.T) {
	f := newFixture(t)
	admin, _ := f.userWithRoles(t, "ada@example.com", rbac.Admin)
	bob := f.createUser(t, "bob@example.com", ownerPW)
	before := len(f.events(t, audit.SessionRevoked))
	for _, id := range []string{"nobody", strings.Repeat("x", 4096)} {
		if n, err := f.g.RevokeUserSessions(f.ctx, admin, tenantID, id); !errors.Is(err, guard.ErrUserNotFound) || n != 0 {
			t.Errorf("unknown user %.10q: %d, %v; want 0, ErrUserNotFound", id, n, err)
		}
	}
	if got := len(f.events(t, audit.SessionRevoked)); got != before {
		t.Errorf("%d session.revoked recorded for unknown users", got-before)
	}
	if n, err := f.g.RevokeUserSessions(f.ctx, admin, tenantID, bob.ID); err != nil || n != 0 {
		t.Fatalf("a user without sessions: %d, %v", n, err)
	}
	if got := len(f.events(t, audit.SessionRevoked)); got != before+1 {
		t.Errorf("a user without sessions: %d records, want 1", got-before)
	}
}
