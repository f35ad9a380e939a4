package guard_test

import (
	"errors"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/auth"
)

// With AccountLimit.PermanentAfter set, a permanent login lock is lifted
// only by an administrator (UnlockUser, recorded as user.unlocked), as
// the lock notice tells the user: a reset link, which whoever reads the
// mailbox holds, sets the password but leaves a permanent lock in place.
func TestResetKeepsPermanentLock(t *testing.T) {
	lim := auth.Limit{Max: 2, ResetAfter: time.Hour, LockFor: time.Minute, MaxLockFor: time.Minute, PermanentAfter: 1}
	f := newMFAFixture(t, func(c *guard.Config) { c.AccountLimit = lim })
	ada := f.createUser(t, adaEmail, ownerPW)
	for round := range 2 {
		for i := range lim.Max {
			if _, err := f.login(adaEmail, "wrong guess "+string(rune('a'+round*lim.Max+i))); !errors.Is(err, guard.ErrInvalidCredentials) {
				t.Fatalf("guess %d/%d: %v", round, i, err)
			}
		}
		f.clock.Advance(2 * lim.LockFor)
	}
	sys := guard.System("admin")
	st, err := f.g.LockState(f.ctx, sys, tenantID, ada.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Permanent {
		t.Fatalf("lock state after %d locks: %+v, want permanent", lim.PermanentAfter+1, st)
	}
	if err := f.g.ForgotPassword(f.ctx, guard.ForgotRequest{Tenant: tenantID, Email: adaEmail, IP: "198.51.100.7"}); err != nil {
		t.Fatal(err)
	}
	link := lastResetLink(t, f.mailTo(adaEmail)) // after the lock notice
	const chosen = "a brand new passphrase 42"
	if err := f.g.ResetPassword(f.ctx, resetTo(link, chosen)); err != nil {
		t.Fatalf("ResetPassword: %v", err)
	}
	if st, err := f.g.LockState(f.ctx, sys, tenantID, ada.ID); err != nil || !st.Permanent {
		t.Errorf("lock state after the reset: %+v, %v; want still permanent (an administrator unlocks it)", st, err)
	}
	if _, err := f.login(adaEmail, chosen); err == nil {
		t.Error("a permanently locked account signs in after a reset link, without an administrator's unlock")
	}
}
