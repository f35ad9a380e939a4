package guard_test

import (
	"errors"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// A stale token of a session that ended on its own (past its idle
// timeout), still stored because no request found it, is not a sign-out
// of a live session: LogoutToken must not record audit.Logout by the user
// for it (from whoever presents the stale token), and the end that did
// happen must be on record as session.expired, as Authenticate, endReplaced
// (668b44c) and RevokeSession (2d6c58a) treat such a session.
func TestReviewLogoutTokenOfExpiredSessionRecordsLogout(t *testing.T) {
	f := newFixture(t)
	f.createUser(t, "alice@example.com", ownerPW)
	res, err := f.login("alice@example.com", ownerPW)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(25 * time.Hour) // past the default 24 h idle timeout
	err = f.g.LogoutToken(f.ctx, res.Token, "198.51.100.9", "Stale/1.0")
	logouts := f.events(t, audit.Logout)
	expired := f.events(t, audit.SessionExpired)
	if len(logouts) != 0 {
		t.Errorf("LogoutToken(expired session) = %v and recorded %d audit.Logout (from %q): a session that had ended on its own is recorded as its user's sign-out",
			err, len(logouts), logouts[0].IP)
	}
	if len(expired) != 1 {
		t.Errorf("%d session.expired events, want 1: the idle expiry is never on record", len(expired))
	}
	if err != nil && !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("LogoutToken = %v", err)
	}
}
