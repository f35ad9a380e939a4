package guard_test

import (
	"errors"
	"strings"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
)

// "Every login attempt, failed ones too": Login records an over-long
// password as login.failed with reason bad_input; a step-up
// (Reauthenticate) and a password change, which verify the password as a
// login does, record theirs too (reauthenticated, password.changed),
// without evaluating or counting it. They used to refuse it unrecorded.
func TestOverlongPasswordVerificationRecorded(t *testing.T) {
	f := newMFAFixture(t)
	f.createUser(t, "ann@acme.test", ownerPW)
	res, p := f.signIn(t, "ann@acme.test", ownerPW)
	long := strings.Repeat("x", guard.MaxPasswordBytes+1)

	for _, c := range []struct {
		name   string
		action audit.Action
		call   func() error
	}{
		{"Login", audit.LoginFailed, func() error { _, err := f.login("ann@acme.test", long); return err }},
		{"Reauthenticate", audit.Reauthenticated, func() error {
			_, _, err := f.g.Reauthenticate(f.ctx, p, res.Token, guard.Proof{Password: long})
			return err
		}},
		{"ChangePassword (current)", audit.PasswordChanged, func() error {
			return f.g.ChangePassword(f.ctx, p, guard.PasswordChange{Current: long, New: "another fine passphrase 9"})
		}},
		{"ChangePassword (new)", audit.PasswordChanged, func() error {
			return f.g.ChangePassword(f.ctx, p, guard.PasswordChange{Current: ownerPW, New: long})
		}},
	} {
		before := len(f.events(t, c.action))
		if err := c.call(); !errors.Is(err, auth.ErrPasswordTooLong) {
			t.Errorf("%s with an over-long password: %v, want auth.ErrPasswordTooLong", c.name, err)
		}
		lastBadInput(t, c.name, f.events(t, c.action), before)
	}
	if r := reasons(f.events(t, audit.LoginFailed)); r[guard.ReasonBadPassword] != 0 {
		t.Errorf("an over-long password was evaluated: login.failed reasons %v", r)
	}
	// Nothing was counted: the account is not locked, the password unchanged.
	if _, err := f.login("ann@acme.test", ownerPW); err != nil {
		t.Errorf("sign-in after the refused attempts: %v", err)
	}
}
