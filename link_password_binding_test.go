package guard_test

import (
	"errors"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
)

// withSetPasswordHook installs a hook on the user updates of a new
// fixture's Guard, run once just before the next write of a password
// (SetPassword, ResetPassword or ChangePassword).
func withSetPasswordHook(hu **hookedUpdates) func(*guard.Config) {
	return func(c *guard.Config) {
		*hu = &hookedUpdates{UserUpdater: c.Stores.UserUpdates}
		c.Stores.UserUpdates = *hu
	}
}

// lastResetLink returns the last reset link mailed to addr.
func (f *mfaFixture) lastResetLink(t testing.TB, addr string) url.Values {
	t.Helper()
	var link url.Values
	for _, m := range f.mailTo(addr) {
		if strings.Contains(m.Text, "/reset?") {
			link = resetLink(t, m)
		}
	}
	if link == nil {
		t.Fatal("no reset link was mailed")
	}
	return link
}

// A reset link asked for while a reset is being made (between its voiding
// of the links and its setting of the password) is spent by the new
// password: it cannot replace the password the user just set.
func TestResetLinkMailedDuringResetSpent(t *testing.T) {
	var hu *hookedUpdates
	f := newMFAFixture(t, withSetPasswordHook(&hu))
	ada := f.createUser(t, adaEmail, ownerPW)
	first := f.forgot(t, adaEmail)
	hu.mu.Lock()
	hu.before = func() {
		if err := f.g.ForgotPassword(f.ctx, guard.ForgotRequest{Tenant: tenantID, Email: adaEmail, IP: "198.51.100.9"}); err != nil {
			t.Error(err)
		}
		f.g.Close()
	}
	hu.mu.Unlock()
	const chosen = "violet kettle morning drizzle"
	if err := f.g.ResetPassword(f.ctx, resetTo(first, chosen)); err != nil {
		t.Fatal(err)
	}
	second := f.lastResetLink(t, adaEmail)
	if second.Get("token") == first.Get("token") {
		t.Fatal("no second link was mailed during the reset")
	}
	if err := f.g.ResetPassword(f.ctx, resetTo(second, "a passphrase from the later link")); !errors.Is(err, guard.ErrInvalidResetToken) {
		t.Errorf("ResetPassword with a link asked for during the reset = %v, want ErrInvalidResetToken", err)
	}
	if got := f.resetRefusals(t, ada.ID); !slices.Equal(got, []string{guard.ReasonPasswordChanged}) {
		t.Errorf("refused password.reset reasons %q, want [%s]", got, guard.ReasonPasswordChanged)
	}
	if _, err := f.login(adaEmail, chosen); err != nil {
		t.Errorf("the password the user set no longer signs in: %v", err)
	}
	// A link asked for after the reset works.
	f.clock.Advance(time.Minute)
	if err := f.g.ResetPassword(f.ctx, resetTo(f.forgotAgain(t), "yet another fine passphrase")); err != nil {
		t.Errorf("a link asked for after the reset: %v", err)
	}
}

// forgotAgain asks for a reset link for Ada and returns the last one
// mailed.
func (f *mfaFixture) forgotAgain(t testing.TB) url.Values {
	t.Helper()
	if err := f.g.ForgotPassword(f.ctx, guard.ForgotRequest{Tenant: tenantID, Email: adaEmail, IP: "203.0.113.5"}); err != nil {
		t.Fatal(err)
	}
	return f.lastResetLink(t, adaEmail)
}

// An email-change link asked for while the password is being changed is
// spent by the new password, as a reset link is.
func TestEmailChangeLinkDuringPasswordChangeSpent(t *testing.T) {
	var hu *hookedUpdates
	f := newMFAFixture(t, manySessions, withSetPasswordHook(&hu))
	ada := f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	_, other := f.signIn(t, adaEmail, ownerPW)
	var link url.Values
	hu.mu.Lock()
	hu.before = func() { link = f.requestChange(t, other, newAdaEmail) }
	hu.mu.Unlock()
	if err := f.g.ChangePassword(f.ctx, p, guard.PasswordChange{Current: ownerPW, New: "violet kettle morning drizzle"}); err != nil {
		t.Fatal(err)
	}
	if err := f.g.ConfirmEmailChange(f.ctx, confirmOf(link)); !errors.Is(err, guard.ErrInvalidEmailChange) {
		t.Errorf("ConfirmEmailChange with a link asked for during a password change = %v, want ErrInvalidEmailChange", err)
	}
	f.wantEmail(t, ada.ID, adaEmail)
}
