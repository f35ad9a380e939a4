package guard_test

import (
	"errors"
	"net/url"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
)

// A reset link (or an invitation) mailed before a user was deactivated
// must not come back to life when the user is reactivated: a
// deactivation ends every way into the account (sessions, API keys), and
// a reactivation does not bring revoked keys back either. ResetPassword
// refuses the link while the user is deactivated, without spending it;
// DeactivateUser did not void it, so after ReactivateUser the old link (an
// invitation lives 3 days by default) set the password. Now a
// deactivation voids the user's links (found by the enumeration audit).
func TestDeactivationVoidsLinks(t *testing.T) {
	const newPW = "an entirely new passphrase"
	for _, kind := range []string{"ResetLink", "Invitation"} {
		t.Run(kind, func(t *testing.T) {
			f := newMFAFixture(t)
			ada := f.createUser(t, adaEmail, ownerPW)
			link := f.linkOf(t, kind, ada.ID)
			if err := f.g.DeactivateUser(f.ctx, guard.System("admin"), tenantID, ada.ID); err != nil {
				t.Fatal(err)
			}
			// While deactivated the link is refused (as documented).
			if err := f.g.ResetPassword(f.ctx, resetTo(link, newPW)); !errors.Is(err, guard.ErrInvalidResetToken) {
				t.Fatalf("ResetPassword of a deactivated user = %v, want ErrInvalidResetToken", err)
			}
			f.clock.Advance(5 * time.Minute)
			if err := f.g.ReactivateUser(f.ctx, guard.System("admin"), tenantID, ada.ID); err != nil {
				t.Fatal(err)
			}
			if err := f.g.ResetPassword(f.ctx, resetTo(link, newPW)); !errors.Is(err, guard.ErrInvalidResetToken) {
				t.Errorf("ResetPassword with a link mailed before the deactivation, after the reactivation = %v, want ErrInvalidResetToken (the deactivation must void it)", err)
			}
			if _, err := f.login(adaEmail, ownerPW); err != nil {
				t.Errorf("the old password no longer signs in: %v", err)
			}
		})
	}
	t.Run("EmailChangeLink", func(t *testing.T) {
		f := newMFAFixture(t)
		ada := f.createUser(t, adaEmail, ownerPW)
		_, p := f.signIn(t, adaEmail, ownerPW)
		link := f.requestChange(t, p, newAdaEmail)
		if err := f.g.DeactivateUser(f.ctx, guard.System("admin"), tenantID, ada.ID); err != nil {
			t.Fatal(err)
		}
		if err := f.g.ReactivateUser(f.ctx, guard.System("admin"), tenantID, ada.ID); err != nil {
			t.Fatal(err)
		}
		if err := f.g.ConfirmEmailChange(f.ctx, confirmOf(link)); !errors.Is(err, guard.ErrInvalidEmailChange) {
			t.Errorf("ConfirmEmailChange with a link asked for before the deactivation = %v, want ErrInvalidEmailChange", err)
		}
		f.wantEmail(t, ada.ID, adaEmail)
	})
}

// linkOf mails a reset link ("ResetLink") or an invitation to the
// user and returns its parameters.
func (f *mfaFixture) linkOf(t *testing.T, kind, userID string) url.Values {
	t.Helper()
	if kind == "ResetLink" {
		return f.forgot(t, adaEmail)
	}
	if err := f.g.SendInvitation(f.ctx, guard.System("admin"), tenantID, userID); err != nil {
		t.Fatal(err)
	}
	sent := f.mailTo(adaEmail)
	if len(sent) != 1 {
		t.Fatalf("%d emails, want the invitation", len(sent))
	}
	return resetLink(t, sent[0])
}
