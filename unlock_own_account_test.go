package guard_test

import (
	"errors"
	"fmt"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// The account lock bounds how many guesses of a password are evaluated.
// UnlockUser refuses the caller's own account, as DeactivateUser and
// ExpirePassword do: whoever holds a stolen session of a user with
// users:manage may not guess the current password through ChangePassword
// until the account locks, unlock it, and go on.
func TestUnlockUserRefusesOwnAccount(t *testing.T) {
	f := newFixture(t)
	admin, _ := f.userWithRoles(t, "adam@example.test", rbac.Admin)
	lim := guard.DefaultAccountLimit
	for r := 0; r < 3; r++ {
		guessCurrentPassword(t, f, admin, r, lim.Max)
		err := f.g.UnlockUser(f.ctx, admin, tenantID, admin.UserID)
		if err == nil {
			continue
		}
		if !errors.Is(err, guard.ErrForbidden) {
			t.Fatalf("UnlockUser of the caller's own account: %v, want ErrForbidden", err)
		}
		if n := reasons(f.events(t, audit.AccessDenied))["own_account"]; n != 1 {
			t.Errorf("%d access.denied events with reason own_account, want 1", n)
		}
		break
	}
	if n := len(f.events(t, audit.UserUnlocked)); n != 0 {
		t.Errorf("%d user.unlocked events for the caller's own account, want 0", n)
	}
	evaluated := reasons(f.events(t, audit.PasswordChanged))[guard.ReasonBadPassword]
	if evaluated > lim.Max {
		t.Errorf("%d guesses of the password evaluated (limit %d): the user unlocked their own account between rounds", evaluated, lim.Max)
	}
}

// guessCurrentPassword makes n wrong guesses of p's current password
// through ChangePassword (round r names them), each refused as a wrong
// password or under a lock: ErrInvalidCredentials.
func guessCurrentPassword(t *testing.T, f *fixture, p guard.Principal, r, n int) {
	t.Helper()
	for i := range n {
		err := f.g.ChangePassword(f.ctx, p, guard.PasswordChange{Current: fmt.Sprintf("guess %d-%d", r, i), New: "a brand new passphrase 2026"})
		if !errors.Is(err, guard.ErrInvalidCredentials) {
			t.Fatalf("guess %d-%d: %v", r, i, err)
		}
	}
}
