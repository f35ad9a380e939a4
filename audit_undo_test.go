package guard_test

// "A tamper-evident audit log per tenant, written before any action is
// reported as done" (doc.go): with the audit store down, a change that
// lowers security or changes trust must not stand unrecorded. It is either
// undone when its record fails (the previous value put back), or recorded
// before it is made. Revocations go the other way: they stand, unrecorded,
// and the call says so with ErrUnavailable.

import (
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/store/memstore"
)

// withFailingAudit wraps the audit store of a config in a failingAudit,
// stored in *fa, to take the audit log down and up during a test.
func withFailingAudit(fa **failingAudit) func(*guard.Config) {
	return func(c *guard.Config) {
		*fa = &failingAudit{Audit: c.Stores.Audit.(*memstore.Audit)}
		c.Stores.Audit = *fa
	}
}

// wantUnavailable fails the test unless err is ErrUnavailable.
func wantUnavailable(t *testing.T, call string, err error) {
	t.Helper()
	if !errors.Is(err, guard.ErrUnavailable) {
		t.Fatalf("%s with the audit log down: %v, want ErrUnavailable", call, err)
	}
}

// ChangePassword cannot put the old password back as it was, so it
// records first: with the audit log down the password stays as it was.
// The sessions it ends are recorded after, as session.revoked.
func TestChangePasswordUnrecordedChangesNothing(t *testing.T) {
	var fa *failingAudit
	f := newFixture(t, withFailingAudit(&fa))
	if _, err := f.g.SetPolicy(f.ctx, guard.System("test"), tenantID, guard.Policy{SessionLimit: 5}, 1); err != nil {
		t.Fatal(err)
	}
	f.createUser(t, adaEmail, ownerPW)
	res, err := f.login(adaEmail, ownerPW)
	if err != nil {
		t.Fatal(err)
	}
	other, err := f.login(adaEmail, ownerPW)
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.g.Authenticate(f.ctx, res.Token)
	if err != nil {
		t.Fatal(err)
	}
	const next = "a brand new passphrase"
	fa.set(true)
	err = f.g.ChangePassword(f.ctx, p, guard.PasswordChange{Current: ownerPW, New: next})
	fa.set(false)
	wantUnavailable(t, "ChangePassword", err)
	if _, err := f.g.Authenticate(f.ctx, other.Token); err != nil {
		t.Errorf("another session ended by a change not made: %v", err)
	}
	if _, err := f.login(adaEmail, next); err == nil {
		t.Error("the new password signs in although the change could not be recorded")
	}
	if _, err := f.login(adaEmail, ownerPW); err != nil {
		t.Errorf("the old password: %v", err)
	}

	if err := f.g.ChangePassword(f.ctx, p, guard.PasswordChange{Current: ownerPW, New: next}); err != nil {
		t.Fatalf("ChangePassword with the log back: %v", err)
	}
	if n := len(f.events(t, audit.PasswordChanged)); n != 1 {
		t.Errorf("%d password.changed events, want 1", n)
	}
	evs := f.events(t, audit.SessionRevoked)
	if len(evs) != 1 || evs[0].Meta["reason"] != "password_changed" || evs[0].Meta["sessions_ended"] != "2" {
		t.Errorf("session.revoked events %+v, want one with reason password_changed, sessions_ended 2", evs)
	}
}
