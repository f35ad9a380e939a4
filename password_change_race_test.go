package guard_test

import (
	"errors"
	"net/url"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
)

// A ChangePassword checks the current password against the user as it
// read them, then hashes the new one, which takes a while; a reset, a
// change of address, an ExpirePassword or a deactivation of the account
// landing in between stands: the change is refused (ErrInvalidCredentials, recorded as a
// refused password.changed with the reason) and the password it chose
// never signs in. Here the action runs just after the changer's read of
// the user (newRacingFixture), the changer holding the old password and
// a session, as someone who stole them would.
func TestChangePasswordRacing(t *testing.T) {
	const ownersNew = "owner recovered passphrase 4821"
	const changersNew = "attacker takeover passphrase 7713"
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
					t.Error("the password is no longer marked expired: the change overwrote the admin's ExpirePassword")
				}
				if after.PasswordHash != before.PasswordHash {
					t.Error("the password changed after the admin's ExpirePassword")
				}
			},
		},
		{
			// The address changed from another session of the user:
			// the change, which ended that session, records it.
			name:   "ChangeEmail",
			reason: guard.ReasonEmailChanged,
			act: func(t *testing.T, f *mfaFixture, id string, _ url.Values) {
				_, other := f.signIn(t, adaEmail, ownerPW)
				if err := f.g.ChangeEmail(f.ctx, other, newAdaEmail); err != nil {
					t.Errorf("ChangeEmail: %v", err)
				}
			},
			check: func(t *testing.T, f *mfaFixture, before, after auth.User) {
				if after.Email != newAdaEmail || after.PasswordHash != before.PasswordHash {
					t.Errorf("after the change of address: email %q (want %q), password changed %v",
						after.Email, newAdaEmail, after.PasswordHash != before.PasswordHash)
				}
				if _, err := f.login(newAdaEmail, changersNew); err == nil {
					t.Error("the changer's password signs in at the new address")
				}
				if _, err := f.login(newAdaEmail, ownerPW); err != nil {
					t.Errorf("the password no longer signs in at the new address: %v", err)
				}
				var ended []string
				for _, e := range f.events(t, audit.SessionRevoked) {
					if e.Meta["reason"] == "password_changed" {
						ended = append(ended, e.Meta["sessions_ended"])
					}
				}
				if len(ended) != 1 || ended[0] != "1" {
					t.Errorf("session.revoked (reason password_changed) sessions_ended %q, want [1]: the session the refused change ended", ended)
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
				if after.PasswordHash != before.PasswordHash {
					t.Error("the password of the deactivated user changed")
				}
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, ru := newRacingFixture(t)
			ada := f.createUser(t, adaEmail, ownerPW)
			_, changer := f.signIn(t, adaEmail, ownerPW)
			link := f.forgot(t, adaEmail) // the owner asks for a reset link
			before, err := ru.UserStore.User(f.ctx, tenantID, ada.ID)
			if err != nil {
				t.Fatal(err)
			}
			// The changer's read of the user lands just before the action.
			ru.race(ada.ID, func() { tc.act(t, f, ada.ID, link) })
			err = f.g.ChangePassword(f.ctx, changer, guard.PasswordChange{Current: ownerPW, New: changersNew})
			if !errors.Is(err, guard.ErrInvalidCredentials) {
				t.Errorf("ChangePassword begun before the %s = %v, want ErrInvalidCredentials", tc.name, err)
			}
			if _, err := f.login(adaEmail, changersNew); err == nil {
				t.Errorf("the changer's password, set by a change begun before the %s, signs in", tc.name)
			}
			after, err := ru.UserStore.User(f.ctx, tenantID, ada.ID)
			if err != nil {
				t.Fatal(err)
			}
			tc.check(t, f, before, after)
			var refused []string
			for _, e := range f.events(t, audit.PasswordChanged) {
				if e.Outcome == audit.Failure {
					refused = append(refused, e.Reason)
				}
			}
			if len(refused) != 1 || refused[0] != tc.reason {
				t.Errorf("refused password.changed reasons %q, want [%s]", refused, tc.reason)
			}
		})
	}
}
