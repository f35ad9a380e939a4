package guard_test

// Store failures found by TestFaultSweep, one test each: what a call
// leaves behind when one store call of its own fails (faultCounter.armName).

import (
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/rbac"
)

// failing runs act with the first store call named call failing, and
// fails the test unless act returns ErrUnavailable and the call failed.
func (fx *ffix) failing(t *testing.T, call string, act func() error) {
	t.Helper()
	fx.fc.armName(call)
	err := act()
	if _, fired := fx.fc.disarm(); fired != call {
		t.Fatalf("%s never called (err %v)", call, err)
	}
	if !errors.Is(err, guard.ErrUnavailable) {
		t.Fatalf("with %s failing: %v, want ErrUnavailable", call, err)
	}
}

// ChangePassword ends the other sessions before it sets the password: a
// failure ending them leaves the password as it was, never the new one
// beside the old sessions.
func TestChangePasswordSessionsFailKeepsPassword(t *testing.T) {
	fx := newFaultFix(t, false)
	p, _ := fx.user(t, "ada@example.test", rbac.Member)
	other := fx.login2(t, "ada@example.test")
	before, _ := fx.memUser(t, p.UserID)
	fx.failing(t, "SessionIndex.DeleteByUser", func() error {
		return fx.g.ChangePassword(fx.ctx, p, guard.PasswordChange{Current: ownerPW, New: "an entirely new passphrase"})
	})
	if u, _ := fx.memUser(t, p.UserID); u.PasswordHash != before.PasswordHash {
		t.Fatalf("password changed with the other session (works: %v) not ended", fx.tokenWorks(other))
	}
}
