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

// RegenerateRecoveryCodes cannot put the old set back, so it records
// first: with the audit log down the old codes keep working.
func TestRegenerateRecoveryCodesUnrecordedKeepsTheOldSet(t *testing.T) {
	var fa *failingAudit
	f := newMFAFixture(t, withFailingAudit(&fa))
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	_, codes := f.enrolTOTP(t, p)
	fa.set(true)
	_, err := f.g.RegenerateRecoveryCodes(f.ctx, p)
	fa.set(false)
	wantUnavailable(t, "RegenerateRecoveryCodes", err)
	pend := f.pending(t, adaEmail, ownerPW)
	if _, err := f.complete(guard.MethodRecovery, pend.Token, codes[0]); err != nil {
		t.Errorf("an old recovery code after a regeneration that could not be recorded: %v", err)
	}
}
