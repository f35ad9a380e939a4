package guard_test

import (
	"errors"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/session"
)

// Severity: low. RevokeSession says that a session ID naming no live
// session of the user (ended already) is session.ErrNotFound, with
// nothing recorded. A session past its idle timeout that no request has
// presented since is still stored (memstore keeps it until it is seen;
// Redis until its absolute expiry), and RevokeSession (session.Manager.
// RevokeID, which ends sessions "live or not") deletes it and records a
// session.revoked by the administrator: the log shows an administrator
// ending a session that had already ended on its own (its expiry is never
// recorded), and the caller is told a session was ended. RevokeUserSessions
// counts only live sessions for the same reason.
func TestRevokeSessionOfExpiredSessionIsNotFound(t *testing.T) {
	f := newFixture(t)
	sys := guard.System("test")
	f.createUser(t, adaEmail, ownerPW)
	p, _ := f.signIn(t, adaEmail)
	f.clock.Advance(25 * time.Hour) // past the default idle timeout (24 h)
	ss, err := f.g.UserSessions(f.ctx, sys, tenantID, p.UserID)
	if err != nil || len(ss) != 0 {
		t.Fatalf("UserSessions = %v, %v; want none live", ss, err)
	}
	err = f.g.RevokeSession(f.ctx, sys, tenantID, p.UserID, p.SessionID())
	if !errors.Is(err, session.ErrNotFound) {
		t.Errorf("RevokeSession of a session past its idle timeout = %v, want session.ErrNotFound", err)
	}
	if evs := f.events(t, audit.SessionRevoked); len(evs) != 0 {
		t.Errorf("session.revoked events %+v for a session that had already ended, want none", evs)
	}
}
