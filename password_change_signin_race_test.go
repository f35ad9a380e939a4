package guard_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/session"
)

// onceHook runs a function, once armed, the next time run is called.
type onceHook struct {
	mu sync.Mutex
	f  func()
}

func (h *onceHook) arm(f func()) {
	h.mu.Lock()
	h.f = f
	h.mu.Unlock()
}

func (h *onceHook) run() {
	h.mu.Lock()
	f := h.f
	h.f = nil
	h.mu.Unlock()
	if f != nil {
		f()
	}
}

// afterRevokeIndex runs its hook, once armed, right after the next
// DeleteByUser (RevokeUser) returns: in ChangePassword and ResetPassword
// that is after the user's sessions ended and before the new password is
// written.
type afterRevokeIndex struct {
	session.UserIndex
	onceHook
}

func (a *afterRevokeIndex) DeleteByUser(ctx context.Context, tenant, userID string, except session.Hash) ([]session.Session, error) {
	ss, err := a.UserIndex.DeleteByUser(ctx, tenant, userID, except)
	a.run()
	return ss, err
}

func newAfterRevokeFixture(t *testing.T) (*mfaFixture, *afterRevokeIndex) {
	t.Helper()
	idx := &afterRevokeIndex{}
	f := newMFAFixture(t, manySessions, func(c *guard.Config) {
		idx.UserIndex = c.Stores.SessionIndex
		c.Stores.SessionIndex = idx
	})
	return f, idx
}

// wantSessionEnded checks that stolen, the session of a sign-in that
// raced op (ChangePassword or ResetPassword) with the replaced password,
// was ended by it.
func wantSessionEnded(t *testing.T, f *mfaFixture, op string, stolen guard.LoginResult) {
	t.Helper()
	if stolen.Token == "" {
		t.Fatal("the racing sign-in did not complete")
	}
	if p, err := f.g.Authenticate(f.ctx, stolen.Token); err == nil {
		t.Errorf("a session signed in with the replaced password outlives %s (user %s): want ErrUnauthenticated", op, p.UserID)
	} else if !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("Authenticate(racing session) = %v, want ErrUnauthenticated", err)
	}
}

// wantOneRevocation checks that one session.revoked (password_changed)
// was recorded, counting one session.
func wantOneRevocation(t *testing.T, f *mfaFixture) {
	t.Helper()
	var ended []string
	for _, e := range f.events(t, audit.SessionRevoked) {
		if e.Meta["reason"] == guard.ReasonPasswordChanged {
			ended = append(ended, e.Meta["sessions_ended"])
		}
	}
	if len(ended) != 1 || ended[0] != "1" {
		t.Errorf("session.revoked (password_changed) sessions_ended = %q, want one record of 1", ended)
	}
}

// ChangePassword ends every session signed in with the replaced password
// but the caller's: that of a sign-in with the old password which created
// its session, and made its status re-read (RecordLogin), after the
// change ended the user's other sessions but before it wrote the new
// password (so it saw no change: passwordMoved) ends too.
func TestChangePasswordEndsSessionSignedInWithOldPasswordBeforeWrite(t *testing.T) {
	const next = "an entirely new passphrase 5531"
	f, idx := newAfterRevokeFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	_, owner := f.signIn(t, adaEmail, ownerPW)
	f.clock.Advance(time.Minute)

	var stolen guard.LoginResult
	idx.arm(func() {
		// The attacker, who knows the password being replaced.
		res, err := f.login(adaEmail, ownerPW)
		if err != nil || res.Token == "" {
			t.Errorf("attacker's sign-in with the old password, before the new one is written: %+v, %v", res, err)
		}
		stolen = res
	})
	if err := f.g.ChangePassword(f.ctx, owner, guard.PasswordChange{Current: ownerPW, New: next}); err != nil {
		t.Fatalf("ChangePassword: %v", err)
	}
	if _, err := f.login(adaEmail, ownerPW); err == nil {
		t.Fatal("the old password still signs in after the change")
	}
	wantSessionEnded(t, f, "ChangePassword", stolen)
	// Counted with the sessions the change ended.
	wantOneRevocation(t, f)
}

// ResetPassword ends every session signed in with the replaced password,
// that of a sign-in with it landing between the end of the sessions and
// the write of the new password (where the reset also records
// password.reset) included.
func TestResetPasswordEndsSessionSignedInWithOldPasswordBeforeWrite(t *testing.T) {
	const next = "an entirely new passphrase 5531"
	f, idx := newAfterRevokeFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	f.signIn(t, adaEmail, ownerPW)
	link := f.forgot(t, adaEmail)
	f.clock.Advance(time.Minute)

	var stolen guard.LoginResult
	idx.arm(func() {
		res, err := f.login(adaEmail, ownerPW)
		if err != nil || res.Token == "" {
			t.Errorf("attacker's sign-in with the old password, before the new one is written: %+v, %v", res, err)
		}
		stolen = res
	})
	if err := f.g.ResetPassword(f.ctx, resetTo(link, next)); err != nil {
		t.Fatalf("ResetPassword: %v", err)
	}
	if _, err := f.login(adaEmail, ownerPW); err == nil {
		t.Fatal("the old password still signs in after the reset")
	}
	wantSessionEnded(t, f, "ResetPassword", stolen)
	// The password.reset recorded before the write counts the session
	// ended before it; the racing one, ended after the write, is
	// recorded after it as session.revoked.
	resets := f.events(t, audit.PasswordReset)
	if len(resets) != 1 || resets[0].Meta["sessions_ended"] != "1" {
		t.Errorf("password.reset records = %+v, want one with sessions_ended 1", resets)
	}
	wantOneRevocation(t, f)
}

// The same for a sign-in with the old password pending its second
// factor: completed (CompleteLogin) between the end of the sessions and
// the write of the new password, its session ends with the others.
func TestChangePasswordEndsSecondFactorCompletedBeforeWrite(t *testing.T) {
	const next = "an entirely new passphrase 5531"
	f, idx := newAfterRevokeFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	_, owner := f.signIn(t, adaEmail, ownerPW)
	secret, _ := f.enrolTOTP(t, owner)
	f.clock.Advance(31 * time.Second)
	pend := f.pending(t, adaEmail, ownerPW) // with the password being replaced
	// The enrolment ended the other sessions and ChangePassword needs
	// a recent sign-in: the owner signs in again, with the factor.
	res, err := f.complete(guard.MethodTOTP, f.pending(t, adaEmail, ownerPW).Token, f.code(t, secret))
	if err != nil {
		t.Fatalf("owner's CompleteLogin: %v", err)
	}
	owner, err = f.g.Authenticate(f.ctx, res.Token)
	if err != nil {
		t.Fatal(err)
	}
	owner.IP, owner.UserAgent = "203.0.113.5", "test"
	f.clock.Advance(31 * time.Second)

	var stolen guard.LoginResult
	idx.arm(func() {
		res, err := f.complete(guard.MethodTOTP, pend.Token, f.code(t, secret))
		if err != nil || res.Token == "" {
			t.Errorf("second factor of the sign-in with the old password, before the new one is written: %+v, %v", res, err)
		}
		stolen = res
	})
	if err := f.g.ChangePassword(f.ctx, owner, guard.PasswordChange{Current: ownerPW, New: next}); err != nil {
		t.Fatalf("ChangePassword: %v", err)
	}
	wantSessionEnded(t, f, "ChangePassword", stolen)
	if _, err := f.g.Authenticate(f.ctx, res.Token); err != nil {
		t.Errorf("the owner's own session ended with the change: %v", err)
	}
}
