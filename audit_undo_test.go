package guard_test

// "A tamper-evident audit log per tenant, written before any action is
// reported as done" (doc.go): with the audit store down, a change that
// lowers security or changes trust must not stand unrecorded. It is either
// undone when its record fails (the previous value put back), or recorded
// before it is made. Revocations go the other way: they stand, unrecorded,
// and the call says so with ErrUnavailable.

import (
	"errors"
	"strings"
	"testing"
	"time"

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

// A removal of a second factor that cannot be recorded is undone: the
// factor is back, confirmed, with the same secret (its codes still sign
// in), and no notice went out.
func TestRemoveFactorUnrecordedIsUndone(t *testing.T) {
	var fa *failingAudit
	f := newMFAFixture(t, withFailingAudit(&fa))
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	secret, _ := f.enrolTOTP(t, p)
	fs, err := f.g.Factors(f.ctx, p, tenantID, p.UserID)
	if err != nil || len(fs) != 1 {
		t.Fatalf("Factors: %v %v", fs, err)
	}
	fa.set(true)
	err = f.g.RemoveFactor(f.ctx, guard.System("test"), tenantID, p.UserID, fs[0].ID)
	fa.set(false)
	wantUnavailable(t, "RemoveFactor", err)
	after, err := f.g.Factors(f.ctx, guard.System("test"), tenantID, p.UserID)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != 1 || after[0].ID != fs[0].ID || !after[0].Confirmed() {
		t.Fatalf("factors %+v although the removal could not be recorded, want %s back, confirmed", after, fs[0].ID)
	}
	f.clock.Advance(30 * time.Second) // a new TOTP step
	pend := f.pending(t, adaEmail, ownerPW)
	if _, err := f.complete(guard.MethodTOTP, pend.Token, f.code(t, secret)); err != nil {
		t.Errorf("sign-in with the restored factor: %v", err)
	}
	f.g.Close() // waits for notices
	for _, m := range f.out.mail {
		if strings.Contains(m.Subject, "removed") {
			t.Errorf("notice sent for a removal that was undone: %+v", m)
		}
	}
}

// An enrolment that cannot be recorded is undone: the factor is pending
// again, the recovery codes made with it are gone, and the enrolment can
// be confirmed once the log is back.
func TestConfirmFactorUnrecordedIsUndone(t *testing.T) {
	var fa *failingAudit
	f := newMFAFixture(t, withFailingAudit(&fa))
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	en, err := f.g.BeginTOTP(f.ctx, p, "Phone")
	if err != nil {
		t.Fatal(err)
	}
	fa.set(true)
	_, err = f.g.ConfirmFactor(f.ctx, p, en.Factor.ID, f.code(t, en.Secret))
	fa.set(false)
	wantUnavailable(t, "ConfirmFactor", err)
	fs, err := f.g.Factors(f.ctx, guard.System("test"), tenantID, p.UserID)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || fs[0].ID != en.Factor.ID || fs[0].Confirmed() {
		t.Errorf("factors %+v although the enrolment could not be recorded, want %s pending", fs, en.Factor.ID)
	}
	_, p = f.signIn(t, adaEmail, ownerPW) // the confirmation ended the session
	if left, err := f.g.RecoveryCodesLeft(f.ctx, p); err != nil || left.Left != 0 {
		t.Errorf("RecoveryCodesLeft = %+v, %v; want none", left, err)
	}
	codes, err := f.g.ConfirmFactor(f.ctx, p, en.Factor.ID, f.code(t, en.Secret))
	if err != nil || len(codes) == 0 {
		t.Errorf("ConfirmFactor with the log back = %d codes, %v", len(codes), err)
	}
}
