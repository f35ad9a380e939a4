package guard_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/mfa"
)

// A ChangeEmail checks the change against the user as it read them; a
// reset of the password by the owner (which ends every session, the
// changer's too), a password change from another session, an
// ExpirePassword or a deactivation of the account landing between that
// read and the write stands: the change of address is refused
// (ErrConflict, recorded as a refused user.email_changed with the reason)
// and the address stays the owner's, so that the next reset link goes to
// the owner, not to whoever held a stolen session. Here the action runs
// just after the changer's read of the user (newRacingFixture).
func TestChangeEmailRacing(t *testing.T) {
	const ownersNew = "owner recovered passphrase 4821"
	const evil = "mallory@evil.test"
	admin := guard.System("admin")
	for _, tc := range []struct {
		name   string
		reason string
		// act runs the racing action on Ada; link is a reset link mailed
		// to her before the change.
		act func(t *testing.T, f *mfaFixture, id string, link url.Values)
		// check checks Ada as stored afterwards; before is her as stored
		// before the change.
		check func(t *testing.T, f *mfaFixture, before, after auth.User)
	}{
		{
			name:   "Reset",
			reason: guard.ReasonPasswordChanged,
			act: func(t *testing.T, f *mfaFixture, _ string, link url.Values) {
				if err := f.g.ResetPassword(f.ctx, resetTo(link, ownersNew)); err != nil {
					t.Errorf("owner's ResetPassword: %v", err)
				}
			},
			check: func(t *testing.T, f *mfaFixture, before, after auth.User) {
				if _, err := f.login(adaEmail, ownersNew); err != nil {
					t.Errorf("the owner's reset password no longer signs in: %v", err)
				}
				// The next reset link goes to the owner's address.
				for _, addr := range []string{adaEmail, evil} {
					if err := f.g.ForgotPassword(f.ctx, guard.ForgotRequest{Tenant: tenantID, Email: addr, IP: "198.51.100.7"}); err != nil {
						t.Fatal(err)
					}
				}
				if sent := f.mailTo(evil); len(sent) > 0 {
					t.Errorf("%d emails to %s, want none: a reset link for Ada's account went there", len(sent), evil)
				}
				if got := resetLinks(f.mailTo(adaEmail)); got != 2 {
					t.Errorf("%d reset links mailed to %s, want 2 (the owner's, then the next)", got, adaEmail)
				}
			},
		},
		{
			// The password changed from another session of the user,
			// which ended the changer's.
			name:   "ChangePassword",
			reason: guard.ReasonPasswordChanged,
			act: func(t *testing.T, f *mfaFixture, _ string, _ url.Values) {
				_, other := f.signIn(t, adaEmail, ownerPW)
				if err := f.g.ChangePassword(f.ctx, other, guard.PasswordChange{Current: ownerPW, New: ownersNew}); err != nil {
					t.Errorf("ChangePassword from another session: %v", err)
				}
			},
			check: func(t *testing.T, f *mfaFixture, before, after auth.User) {
				if _, err := f.login(adaEmail, ownersNew); err != nil {
					t.Errorf("the changed password no longer signs in: %v", err)
				}
			},
		},
		{
			name:   "ExpirePassword",
			reason: guard.ReasonPasswordExpired,
			act: func(t *testing.T, f *mfaFixture, id string, _ url.Values) {
				if err := f.g.ExpirePassword(f.ctx, admin, tenantID, id); err != nil {
					t.Errorf("admin's ExpirePassword: %v", err)
				}
			},
			check: func(t *testing.T, f *mfaFixture, before, after auth.User) {
				if !after.PasswordExpired {
					t.Error("the password is no longer marked expired")
				}
			},
		},
		{
			name:   "Deactivation",
			reason: guard.ReasonDeactivated,
			act: func(t *testing.T, f *mfaFixture, id string, _ url.Values) {
				if err := f.g.DeactivateUser(f.ctx, admin, tenantID, id); err != nil {
					t.Errorf("admin's DeactivateUser: %v", err)
				}
			},
			check: func(t *testing.T, f *mfaFixture, before, after auth.User) {
				if after.Status != auth.StatusDeactivated {
					t.Errorf("status %q after the deactivation, want %q", after.Status, auth.StatusDeactivated)
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, ru := newRacingFixture(t)
			ada := f.createUser(t, adaEmail, ownerPW)
			_, changer := f.signIn(t, adaEmail, ownerPW) // holds a stolen session
			link := f.forgot(t, adaEmail)                // the owner asks for a reset link
			before, err := ru.UserStore.User(f.ctx, tenantID, ada.ID)
			if err != nil {
				t.Fatal(err)
			}
			// The changer's read of the user lands just before the action.
			ru.race(ada.ID, func() { tc.act(t, f, ada.ID, link) })
			err = f.g.ChangeEmail(f.ctx, changer, evil)
			if !errors.Is(err, guard.ErrConflict) {
				t.Errorf("ChangeEmail begun before the %s = %v, want ErrConflict", tc.name, err)
			}
			after, err := ru.UserStore.User(f.ctx, tenantID, ada.ID)
			if err != nil {
				t.Fatal(err)
			}
			if after.Email != before.Email || after.EmailUnverified != before.EmailUnverified {
				t.Errorf("after a change of address begun before the %s: email %q (unverified %v), want %q (unverified %v)",
					tc.name, after.Email, after.EmailUnverified, before.Email, before.EmailUnverified)
			}
			tc.check(t, f, before, after)
			wantEmailChangeRefused(t, f, tc.reason)
		})
	}
}

// A ConfirmEmailChange checks the link against the user as it read them;
// a reset of the password landing between the check and the write (here
// just before the write) stands, and the change of address is refused as
// ChangeEmail's is.
func TestConfirmEmailChangeRacingReset(t *testing.T) {
	const ownersNew = "owner recovered passphrase 4821"
	var hu *hookedEmailUpdates
	f := newMFAFixture(t, manySessions, func(c *guard.Config) {
		hu = &hookedEmailUpdates{UserUpdater: c.Stores.UserUpdates}
		c.Stores.UserUpdates = hu
	})
	ada := f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	change := f.requestChange(t, p, newAdaEmail)
	link := f.forgot(t, adaEmail)
	hu.hook(func() {
		if err := f.g.ResetPassword(f.ctx, resetTo(link, ownersNew)); err != nil {
			t.Errorf("owner's ResetPassword: %v", err)
		}
	})
	if err := f.g.ConfirmEmailChange(f.ctx, confirmOf(change)); !errors.Is(err, guard.ErrConflict) {
		t.Errorf("ConfirmEmailChange whose write came after a reset = %v, want ErrConflict", err)
	}
	f.wantEmail(t, ada.ID, adaEmail)
	if _, err := f.login(adaEmail, ownersNew); err != nil {
		t.Errorf("the owner's reset password no longer signs in: %v", err)
	}
	wantEmailChangeRefused(t, f, guard.ReasonPasswordChanged)
}

// wantEmailChangeRefused checks that the user.email_changed events are one
// refusal, with reason, and that no notice of a change went out.
func wantEmailChangeRefused(t *testing.T, f *mfaFixture, reason string) {
	t.Helper()
	var refused []string
	for _, e := range f.events(t, audit.UserEmailChanged) {
		if e.Outcome != audit.Failure {
			t.Errorf("a user.email_changed succeeded: %+v", e.Meta)
			continue
		}
		refused = append(refused, e.Reason)
	}
	if len(refused) != 1 || refused[0] != reason {
		t.Errorf("refused user.email_changed reasons %q, want [%s]", refused, reason)
	}
	for _, m := range f.mailTo(adaEmail) {
		if strings.Contains(m.Subject, "email address of your account was changed") {
			t.Errorf("a notice of the refused change was mailed: %q", m.Subject)
		}
	}
}

// resetLinks counts the reset links among sent.
func resetLinks(sent []mfa.Message) int {
	n := 0
	for _, m := range sent {
		if strings.Contains(m.Text, "/reset?") {
			n++
		}
	}
	return n
}

// hookedEmailUpdates runs a function once, just before the next
// ChangeEmail (the write of a change of address).
type hookedEmailUpdates struct {
	auth.UserUpdater
	mu     sync.Mutex
	before func()
}

// hook makes the next ChangeEmail run fn first.
func (h *hookedEmailUpdates) hook(fn func()) {
	h.mu.Lock()
	h.before = fn
	h.mu.Unlock()
}

func (h *hookedEmailUpdates) ChangeEmail(ctx context.Context, tenant, id string, was auth.User, email string, unverified bool) error {
	h.mu.Lock()
	fn := h.before
	h.before = nil
	h.mu.Unlock()
	if fn != nil {
		fn()
	}
	return h.UserUpdater.ChangeEmail(ctx, tenant, id, was, email, unverified)
}
