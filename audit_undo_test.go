package guard_test

// "A tamper-evident audit log per tenant, written before any action is
// reported as done" (doc.go): with the audit store down, a change that
// lowers security or changes trust must not stand unrecorded. It is either
// undone when its record fails (the previous value put back), or recorded
// before it is made. Revocations go the other way: they stand, unrecorded,
// and the call says so with ErrUnavailable.

import (
	"errors"
	"fmt"
	"testing"

	guard "github.com/guardhq/guard"
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

// UnlockUser cannot put back the failures it clears, so it records first:
// with the audit log down the lock stays.
func TestUnlockUserUnrecordedKeepsTheLock(t *testing.T) {
	var fa *failingAudit
	f := newFixture(t, withFailingAudit(&fa))
	sys := guard.System("test")
	u := f.createUser(t, adaEmail, ownerPW)
	for i := range guard.DefaultAccountLimit.Max {
		f.login(adaEmail, fmt.Sprint("wrong password ", i))
	}
	locked := func() bool {
		t.Helper()
		st, err := f.g.LockState(f.ctx, sys, tenantID, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		return st.Locked(f.clock.Now())
	}
	if !locked() {
		t.Fatal("the user is not locked")
	}
	fa.set(true)
	err := f.g.UnlockUser(f.ctx, sys, tenantID, u.ID)
	fa.set(false)
	wantUnavailable(t, "UnlockUser", err)
	if !locked() {
		t.Error("the lock was lifted although the unlock could not be recorded")
	}
}
