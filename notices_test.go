package guard_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
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
		if m := f.notice(t, adaEmail, "second factor was added"); !strings.HasPrefix(m.Text, "An authenticator app was just added") {
			t.Errorf("added notice %q, want it to start \"An authenticator app was just added\"", m.Text)
		}
		fs, err := f.g.Factors(f.ctx, p, tenantID, p.UserID)
		if err != nil || len(fs) != 1 {
			t.Fatalf("Factors = %v, %v", fs, err)
		}
		if err := f.g.RemoveFactor(f.ctx, p, tenantID, p.UserID, fs[0].ID); err != nil {
			t.Fatal(err)
		}
		if m := f.notice(t, adaEmail, "second factor was removed"); !strings.HasPrefix(m.Text, "An authenticator app was just removed") {
			t.Errorf("removal notice %q does not say which factor", m.Text)
		}
	})
	// SECURITY-CHECKLIST MF-16: the address an email factor sent codes to
	// hears that it no longer does, as well as the account's address.
	t.Run("EmailFactorRemoved", func(t *testing.T) {
		f := newMFAFixture(t)
		f.createUser(t, adaEmail, ownerPW)
		_, p := f.signIn(t, adaEmail, ownerPW)
		const codes = "ada.codes@example.test"
		fa := f.enrolEmail(t, p, codes)
		if err := f.g.RemoveFactor(f.ctx, p, tenantID, p.UserID, fa.ID); err != nil {
			t.Fatal(err)
		}
		f.notice(t, adaEmail, "second factor was removed")
		f.notice(t, codes, "no longer receives sign-in codes")
	})
}

// Wrong current passwords on ChangePassword count like failed logins: the
// one that starts a lock is recorded as login.locked and noticed.
func TestChangePasswordLockIsRecorded(t *testing.T) {
	f := newMFAFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	for range 5 {
		err := f.g.ChangePassword(f.ctx, p, guard.PasswordChange{Current: "not my password", New: "a different long passphrase"})
		if !errors.Is(err, guard.ErrInvalidCredentials) {
			t.Fatalf("ChangePassword with a wrong current password = %v", err)
		}
	}
	if n := len(f.events(t, audit.LoginLocked)); n != 1 {
		t.Errorf("%d login.locked events, want 1", n)
	}
	f.notice(t, adaEmail, "locked")
	if _, err := f.login(adaEmail, ownerPW); !errors.Is(err, guard.ErrInvalidCredentials) {
		t.Errorf("Login during the lock = %v, want ErrInvalidCredentials", err)
	}
}

// SE-9: a second factor added or removed on one session ends the user's
// other sessions; an admin's removal ends them all.
func TestFactorChangesEndOtherSessions(t *testing.T) {
	f := newMFAFixture(t, manySessions)
	f.createUser(t, adaEmail, ownerPW)
	a, p := f.signIn(t, adaEmail, ownerPW)
	b, _ := f.signIn(t, adaEmail, ownerPW)
	secret, _ := f.enrolTOTP(t, p)
	if _, err := f.g.Authenticate(f.ctx, b.Token); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("another session after a factor was added: %v", err)
	}
	if _, err := f.g.Authenticate(f.ctx, a.Token); err != nil {
		t.Errorf("the session that added the factor: %v", err)
	}
	// A second session (password and the new factor), then the factor
	// removed from the first.
	pend := f.pending(t, adaEmail, ownerPW)
	f.clock.Advance(30 * time.Second)
	c, err := f.complete(guard.MethodTOTP, pend.Token, f.code(t, secret))
	if err != nil || c.Token == "" {
		t.Fatalf("second sign-in: %+v, %v", c, err)
	}
	fs, err := f.g.Factors(f.ctx, p, tenantID, p.UserID)
	if err != nil || len(fs) != 1 {
		t.Fatalf("Factors = %v, %v", fs, err)
	}
	if err := f.g.RemoveFactor(f.ctx, p, tenantID, p.UserID, fs[0].ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.Authenticate(f.ctx, c.Token); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("another session after a factor was removed: %v", err)
	}
	if _, err := f.g.Authenticate(f.ctx, a.Token); err != nil {
		t.Errorf("the session that removed the factor: %v", err)
	}
	removed := f.events(t, audit.MFARemoved)
	if len(removed) != 1 || removed[0].Meta["sessions_ended"] != "1" {
		t.Errorf("mfa.removed events %+v", removed)
	}
}

// MF-5: a code of the authenticator app used again is refused and the
// user hears of it, at sign-in and at a step-up alike; MF-8, MF-21: new
// recovery codes are noticed too, and enrolling or regenerating needs a
// recent authentication.
func TestReuseAndRecoveryNotices(t *testing.T) {
	f := newMFAFixture(t, manySessions)
	f.createUser(t, adaEmail, ownerPW)
	res, p := f.signIn(t, adaEmail, ownerPW)
	secret, _ := f.enrolTOTP(t, p)
	f.clock.Advance(30 * time.Second)
	code := f.code(t, secret)
	pend := f.pending(t, adaEmail, ownerPW)
	if _, err := f.complete(guard.MethodTOTP, pend.Token, code); err != nil {
		t.Fatal(err)
	}
	pend = f.pending(t, adaEmail, ownerPW)
	if _, err := f.complete(guard.MethodTOTP, pend.Token, code); !errors.Is(err, guard.ErrInvalidCode) {
		t.Fatalf("the same code again at sign-in = %v, want ErrInvalidCode", err)
	}
	f.notice(t, adaEmail, "used again")
	if _, _, err := f.g.Reauthenticate(f.ctx, p, res.Token, guard.Proof{Password: ownerPW, TOTP: code}); !errors.Is(err, guard.ErrInvalidCredentials) {
		t.Fatalf("the same code again at a step-up = %v, want ErrInvalidCredentials", err)
	}
	var reuse int
	for _, m := range f.mailTo(adaEmail) {
		if strings.Contains(m.Subject, "used again") {
			reuse++
		}
	}
	if reuse != 2 {
		t.Errorf("%d reuse notices, want 2 (sign-in and step-up)", reuse)
	}

	if _, err := f.g.RegenerateRecoveryCodes(f.ctx, p); err != nil {
		t.Fatal(err)
	}
	f.notice(t, adaEmail, "New recovery codes")

	f.clock.Advance(16 * time.Minute)
	old, err := f.g.Authenticate(f.ctx, res.Token)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.RegenerateRecoveryCodes(f.ctx, old); !errors.Is(err, guard.ErrStepUpRequired) {
		t.Errorf("RegenerateRecoveryCodes on an old session = %v, want ErrStepUpRequired", err)
	}
	if _, err := f.g.BeginTOTP(f.ctx, old, "Second phone"); !errors.Is(err, guard.ErrStepUpRequired) {
		t.Errorf("BeginTOTP on an old session = %v, want ErrStepUpRequired", err)
	}
	if _, err := f.g.BeginOOB(f.ctx, old, mfa.KindEmail, "ada.codes@example.test", "Mail"); !errors.Is(err, guard.ErrStepUpRequired) {
		t.Errorf("BeginOOB on an old session = %v, want ErrStepUpRequired", err)
	}
}
