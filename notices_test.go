package guard_test

import (
	"errors"
	"strings"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/mfa"
)

// notice returns the one email to addr whose subject contains subject,
// failing unless there is exactly one.
func (f *mfaFixture) notice(t testing.TB, addr, subject string) mfa.Message {
	t.Helper()
	var got []mfa.Message
	for _, m := range f.mailTo(addr) {
		if strings.Contains(m.Subject, subject) {
			got = append(got, m)
		}
	}
	if len(got) != 1 {
		t.Fatalf("%d emails to %s about %q, want 1", len(got), addr, subject)
	}
	return got[0]
}

// ASVS 6.3.7 and SECURITY-CHECKLIST RS-8, LG-16: the user hears of every
// change to how they sign in, and of a lock, at their address.
func TestSecurityNotices(t *testing.T) {
	t.Run("PasswordChanged", func(t *testing.T) {
		f := newMFAFixture(t)
		f.createUser(t, adaEmail, ownerPW)
		_, p := f.signIn(t, adaEmail, ownerPW)
		if err := f.g.ChangePassword(f.ctx, p, guard.PasswordChange{Current: ownerPW, New: "a different long passphrase"}); err != nil {
			t.Fatal(err)
		}
		if m := f.notice(t, adaEmail, "password was changed"); strings.Contains(m.Text, "a different long passphrase") {
			t.Errorf("the notice holds the password: %q", m.Text)
		}
	})
	t.Run("PasswordReset", func(t *testing.T) {
		f := newMFAFixture(t)
		f.createUser(t, adaEmail, ownerPW)
		link := f.forgot(t, adaEmail)
		if err := f.g.ResetPassword(f.ctx, guard.ResetRequest{Tenant: link.Get("tenant"), UserID: link.Get("user"),
			Token: link.Get("token"), NewPassword: "a different long passphrase"}); err != nil {
			t.Fatal(err)
		}
		f.notice(t, adaEmail, "password was reset")
	})
	t.Run("Locked", func(t *testing.T) {
		f := newMFAFixture(t)
		f.createUser(t, adaEmail, ownerPW)
		for range 5 {
			if _, err := f.login(adaEmail, "wrong password"); !errors.Is(err, guard.ErrInvalidCredentials) {
				t.Fatalf("wrong password: %v", err)
			}
		}
		f.notice(t, adaEmail, "locked")
		// Further refused attempts during the lock send nothing more.
		for range 3 {
			_, _ = f.login(adaEmail, "wrong password")
		}
		f.notice(t, adaEmail, "locked")
		// An account that does not exist gets no mail.
		for range 6 {
			_, _ = f.login("nobody@example.test", "wrong password")
		}
		if n := len(f.mailTo("nobody@example.test")); n != 0 {
			t.Errorf("%d emails to an address with no account", n)
		}
	})
	t.Run("FactorAddedAndRemoved", func(t *testing.T) {
		f := newMFAFixture(t)
		f.createUser(t, adaEmail, ownerPW)
		_, p := f.signIn(t, adaEmail, ownerPW)
		f.enrolTOTP(t, p)
		f.notice(t, adaEmail, "second factor was added")
		fs, err := f.g.Factors(f.ctx, p, tenantID, p.UserID)
		if err != nil || len(fs) != 1 {
			t.Fatalf("Factors = %v, %v", fs, err)
		}
		if err := f.g.RemoveFactor(f.ctx, p, tenantID, p.UserID, fs[0].ID); err != nil {
			t.Fatal(err)
		}
		if m := f.notice(t, adaEmail, "second factor was removed"); !strings.Contains(m.Text, "authenticator app") {
			t.Errorf("removal notice %q does not say which factor", m.Text)
		}
	})
}
