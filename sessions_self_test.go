package guard_test

import (
	"errors"
	"sync"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// SECURITY-CHECKLIST SE-11: a user lists their sessions and ends others
// only after a recent authentication; ending the current one (a logout)
// needs none.
func TestEndingOwnSessionsNeedsRecentAuth(t *testing.T) {
	f := newMFAFixture(t, manySessions)
	f.createUser(t, adaEmail, ownerPW)
	a, _ := f.signIn(t, adaEmail, ownerPW)
	b, _ := f.signIn(t, adaEmail, ownerPW)
	c, _ := f.signIn(t, adaEmail, ownerPW)
	f.clock.Advance(16 * time.Minute)
	p, err := f.g.Authenticate(f.ctx, a.Token)
	if err != nil {
		t.Fatal(err)
	}
	ss, err := f.g.UserSessions(f.ctx, p, tenantID, p.UserID)
	if err != nil || len(ss) != 3 {
		t.Fatalf("UserSessions = %d sessions, %v; want 3", len(ss), err)
	}
	if err := f.g.RevokeSession(f.ctx, p, tenantID, p.UserID, b.Session.ID()); !errors.Is(err, guard.ErrStepUpRequired) {
		t.Errorf("ending another session on an old session = %v, want ErrStepUpRequired", err)
	}
	if _, err := f.g.RevokeUserSessions(f.ctx, p, tenantID, p.UserID); !errors.Is(err, guard.ErrStepUpRequired) {
		t.Errorf("ending the other sessions on an old session = %v, want ErrStepUpRequired", err)
	}
	if _, err := f.g.Authenticate(f.ctx, b.Token); err != nil {
		t.Errorf("a session survived only if nothing was ended: %v", err)
	}
	p, tok := f.stepUp(t, p, a.Token)
	if err := f.g.RevokeSession(f.ctx, p, tenantID, p.UserID, b.Session.ID()); err != nil {
		t.Fatalf("ending another session after a step-up: %v", err)
	}
	if _, err := f.g.Authenticate(f.ctx, b.Token); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("the ended session: %v", err)
	}
	if n, err := f.g.RevokeUserSessions(f.ctx, p, tenantID, p.UserID); err != nil || n != 1 {
		t.Errorf("RevokeUserSessions after a step-up = %d, %v; want 1", n, err)
	}
	if _, err := f.g.Authenticate(f.ctx, c.Token); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("another session after RevokeUserSessions: %v", err)
	}
	// Ending the current session is a logout, whatever its age.
	f.clock.Advance(16 * time.Minute)
	if p, err = f.g.Authenticate(f.ctx, tok); err != nil {
		t.Fatal(err)
	}
	if err := f.g.RevokeSession(f.ctx, p, tenantID, p.UserID, p.SessionID()); err != nil {
		t.Errorf("ending the current session on an old session: %v", err)
	}
}

// SECURITY-CHECKLIST AU-1: a session's expiry is recorded, once, by the
// request that finds it expired, even when many find it at once.
func TestSessionExpiryRecordedOnce(t *testing.T) {
	f := newMFAFixture(t, manySessions)
	f.createUser(t, adaEmail, ownerPW)
	a, _ := f.signIn(t, adaEmail, ownerPW)
	f.clock.Advance(24*time.Hour + time.Second) // the default idle timeout
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := f.g.Authenticate(f.ctx, a.Token); !errors.Is(err, guard.ErrUnauthenticated) {
				t.Errorf("an expired session: %v", err)
			}
		})
	}
	wg.Wait()
	evs := f.events(t, audit.SessionExpired)
	if len(evs) != 1 || evs[0].Target != a.Session.ID() || evs[0].Reason != "idle_timeout" || evs[0].Actor.ID != a.Session.UserID {
		t.Fatalf("session.expired events %+v, want one for the session, idle_timeout", evs)
	}
	if _, err := f.g.Authenticate(f.ctx, a.Token); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("the expired session again: %v", err)
	}
	if n := len(f.events(t, audit.SessionExpired)); n != 1 {
		t.Errorf("%d session.expired events after another request, want 1", n)
	}
}
