package guard_test

import (
	"fmt"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// An account's lock and failures follow the account, not its address:
// whoever holds a freshly signed-in (stolen) session and guesses the
// current password through ChangePassword until the account locks may
// not change the address to get a fresh count and guess on (what
// UnlockUser's own-account refusal closes, open to every user).
func TestChangeEmailDoesNotShedTheLock(t *testing.T) {
	f := newFixture(t)
	p, _ := f.userWithRoles(t, "adam@example.test", rbac.Member)
	lim := guard.DefaultAccountLimit
	for r := 0; r < 3; r++ {
		guessCurrentPassword(t, f, p, r, lim.Max)
		if err := f.g.ChangeEmail(f.ctx, p, fmt.Sprintf("adam%d@example.test", r)); err != nil {
			t.Logf("ChangeEmail: %v", err)
			break
		}
	}
	evaluated := reasons(f.events(t, audit.PasswordChanged))[guard.ReasonBadPassword]
	if evaluated > lim.Max {
		t.Errorf("%d guesses of the password evaluated (limit %d): each change of address gave a fresh lock", evaluated, lim.Max)
	}
}
