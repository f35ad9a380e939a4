package guard_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
)

// bogusToken has the shape of a link's token (43 base64url characters)
// and is no link's.
const bogusToken = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"

// The reset form is no password oracle: without a valid link, the new
// password is never put to the tenant's policy, whose password history
// would otherwise answer "reused" for the user's current password (and
// "invalid link" for anything else), a guess the login throttle never
// sees. Both answers are the same, and no password.rejected names the
// user.
func TestResetPasswordIsNoPasswordOracle(t *testing.T) {
	f := newMFAFixture(t)
	u := f.createUser(t, adaEmail, ownerPW)
	if _, err := f.g.SetPolicy(f.ctx, guard.System("test"), tenantID, guard.Policy{PasswordHistory: 3}, 1); err != nil {
		t.Fatal(err)
	}
	for _, guess := range []string{"a completely different passphrase 42", ownerPW} {
		err := f.g.ResetPassword(f.ctx, guard.ResetRequest{Tenant: tenantID, UserID: u.ID, Token: bogusToken,
			NewPassword: guess, IP: "198.51.100.7"})
		if !errors.Is(err, guard.ErrInvalidResetToken) {
			t.Errorf("bogus link, new password %q: %v, want ErrInvalidResetToken", guess, err)
		}
	}
	if ev := f.events(t, audit.PasswordRejected); len(ev) != 0 {
		t.Errorf("password.rejected events %+v for a caller without a link", ev)
	}
	if got := f.resetRefusals(t, u.ID); len(got) != 2 || got[0] != "invalid_token" || got[1] != "invalid_token" {
		t.Errorf("refused password.reset reasons %q, want two invalid_token", got)
	}
	// With the link, the history applies, and the link stays usable.
	link := f.forgot(t, adaEmail)
	var pe *auth.PolicyError
	if err := f.g.ResetPassword(f.ctx, resetTo(link, ownerPW)); !errors.As(err, &pe) || pe.Rule != auth.RuleReused {
		t.Fatalf("reset to the current password with the link: %v, want PolicyError reused", err)
	}
	if err := f.g.ResetPassword(f.ctx, resetTo(link, "a completely different passphrase 42")); err != nil {
		t.Fatalf("the link after a refused password: %v", err)
	}
}

// Every refusal of a reset link for a user who exists is on record, with
// its reason, and changes nothing: a token no link has the shape of, a
// deactivated user, an over-long password.
func TestResetPasswordRefusalsRecorded(t *testing.T) {
	f := newMFAFixture(t)
	u := f.createUser(t, adaEmail, ownerPW)
	link := f.forgot(t, adaEmail)
	short := resetTo(link, "a completely different passphrase 42")
	short.Token = "short-token"
	if err := f.g.ResetPassword(f.ctx, short); !errors.Is(err, guard.ErrInvalidResetToken) {
		t.Errorf("short token: %v, want ErrInvalidResetToken", err)
	}
	long := resetTo(link, strings.Repeat("x", guard.MaxPasswordBytes+1))
	if err := f.g.ResetPassword(f.ctx, long); !errors.Is(err, auth.ErrPasswordTooLong) {
		t.Errorf("over-long password: %v, want ErrPasswordTooLong", err)
	}
	// Neither spent the link.
	if err := f.g.ResetPassword(f.ctx, resetTo(link, "a completely different passphrase 42")); err != nil {
		t.Errorf("the link after the refusals: %v", err)
	}
	// A link of a deactivated user is refused, and the deactivation voids
	// it: a reactivation does not bring it back.
	f.clock.Advance(time.Minute)
	if err := f.g.ForgotPassword(f.ctx, guard.ForgotRequest{Tenant: tenantID, Email: adaEmail, IP: "203.0.113.5"}); err != nil {
		t.Fatal(err)
	}
	link = lastResetLink(t, f.mailTo(adaEmail))
	if err := f.g.DeactivateUser(f.ctx, guard.System("test"), tenantID, u.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.g.ResetPassword(f.ctx, resetTo(link, "another different passphrase 43")); !errors.Is(err, guard.ErrInvalidResetToken) {
		t.Errorf("deactivated user: %v, want ErrInvalidResetToken", err)
	}
	want := []string{"invalid_token", guard.ReasonBadInput, guard.ReasonDeactivated}
	if got := f.resetRefusals(t, u.ID); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("refused password.reset reasons %q, want %q", got, want)
	}
	if err := f.g.ReactivateUser(f.ctx, guard.System("test"), tenantID, u.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.g.ResetPassword(f.ctx, resetTo(link, "another different passphrase 43")); !errors.Is(err, guard.ErrInvalidResetToken) {
		t.Errorf("the link mailed before the deactivation, after the reactivation: %v, want ErrInvalidResetToken", err)
	}
}

// An email-change link of a user who exists, refused because no link
// carries its token or its address, is on record.
func TestConfirmEmailChangeMalformedLinkRecorded(t *testing.T) {
	f := newMFAFixture(t)
	u := f.createUser(t, adaEmail, ownerPW)
	for name, req := range map[string]guard.EmailChangeConfirm{
		"short token": {Tenant: tenantID, UserID: u.ID, Email: "new@example.test", Token: "x", IP: "198.51.100.7"},
		"bad address": {Tenant: tenantID, UserID: u.ID, Email: "not an address", Token: bogusToken, IP: "198.51.100.7"},
	} {
		before := len(f.events(t, audit.UserEmailChanged))
		if err := f.g.ConfirmEmailChange(f.ctx, req); !errors.Is(err, guard.ErrInvalidEmailChange) {
			t.Fatalf("%s: %v, want ErrInvalidEmailChange", name, err)
		}
		ev := f.events(t, audit.UserEmailChanged)
		if len(ev) != before+1 || ev[len(ev)-1].Outcome != audit.Failure || ev[len(ev)-1].Reason != "invalid_token" {
			t.Errorf("%s: user.email_changed events %+v, want one more refusal for invalid_token", name, ev[before:])
		}
	}
	f.wantEmail(t, u.ID, adaEmail)
}

// A stranger who knows a user's ID cannot spend the user's invitation,
// reset or email-change link with made-up tokens: a link's 256-bit token
// needs no limit on wrong tries, and has none that matters.
func TestMadeUpTokensDoNotSpendLinks(t *testing.T) {
	f := newMFAFixture(t)
	sys := guard.System("test")
	u, err := f.g.CreateUser(f.ctx, sys, guard.NewUser{Tenant: tenantID, Email: "newhire@example.test", Name: "New Hire"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.g.SendInvitation(f.ctx, sys, tenantID, u.ID); err != nil {
		t.Fatal(err)
	}
	link := lastResetLink(t, f.mailTo("newhire@example.test"))
	ada := f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	change := f.requestChange(t, p, newAdaEmail)
	for i := range 10 {
		bogus := strings.Repeat(string(rune('A'+i)), 43)
		if err := f.g.ResetPassword(f.ctx, guard.ResetRequest{Tenant: tenantID, UserID: u.ID, Token: bogus,
			NewPassword: "a stranger's long passphrase", IP: "198.51.100.7"}); !errors.Is(err, guard.ErrInvalidResetToken) {
			t.Fatalf("made-up reset token: %v", err)
		}
		c := confirmOf(change)
		c.Token = bogus
		if err := f.g.ConfirmEmailChange(f.ctx, c); !errors.Is(err, guard.ErrInvalidEmailChange) {
			t.Fatalf("made-up email-change token: %v", err)
		}
	}
	if err := f.g.ResetPassword(f.ctx, resetTo(link, "purple elephants dance at dawn")); err != nil {
		t.Errorf("the invitation after ten made-up tokens: %v", err)
	}
	if err := f.g.ConfirmEmailChange(f.ctx, confirmOf(change)); err != nil {
		t.Errorf("the email-change link after ten made-up tokens: %v", err)
	}
	f.wantEmail(t, ada.ID, newAdaEmail)
}

// failingSetPassword fails SetPassword, ResetPassword (the write of a
// password reset) and ChangePassword (that of a password change) while
// fail is set.
type failingSetPassword struct {
	auth.UserUpdater
	fail atomic.Bool
}

func (f *failingSetPassword) SetPassword(ctx context.Context, tenant, id, hash string, at time.Time, keep int) error {
	if f.fail.Load() {
		return errors.New("injected")
	}
	return f.UserUpdater.SetPassword(ctx, tenant, id, hash, at, keep)
}

func (f *failingSetPassword) ResetPassword(ctx context.Context, tenant, id string, was auth.User, hash string, at time.Time, keep int) error {
	if f.fail.Load() {
		return errors.New("injected")
	}
	return f.UserUpdater.ResetPassword(ctx, tenant, id, was, hash, at, keep)
}

func (f *failingSetPassword) ChangePassword(ctx context.Context, tenant, id string, was auth.User, hash string, at time.Time, keep int) error {
	if f.fail.Load() {
		return errors.New("injected")
	}
	return f.UserUpdater.ChangePassword(ctx, tenant, id, was, hash, at, keep)
}

// A reset stopped by a store failure never leaves the new password beside
// the old sessions, and never spends the link: ending the sessions
// failing changes nothing; setting the password failing leaves the
// sessions ended and the password as it was. Either way the link works
// afterwards, and its reset ends every session.
func TestResetPasswordStoreFailures(t *testing.T) {
	idx, upd := &failingDeleteByUser{}, &failingSetPassword{}
	f := newMFAFixture(t, manySessions, func(c *guard.Config) {
		idx.UserIndex, upd.UserUpdater = c.Stores.SessionIndex, c.Stores.UserUpdates
		c.Stores.SessionIndex, c.Stores.UserUpdates = idx, upd
	})
	f.createUser(t, adaEmail, ownerPW)
	old, _ := f.signIn(t, adaEmail, ownerPW)
	link := f.forgot(t, adaEmail)
	const newPW = "a completely different passphrase 42"

	idx.fail.Store(true)
	if err := f.g.ResetPassword(f.ctx, resetTo(link, newPW)); !errors.Is(err, guard.ErrUnavailable) {
		t.Fatalf("reset with the session store failing: %v, want ErrUnavailable", err)
	}
	idx.fail.Store(false)
	if _, err := f.g.Authenticate(f.ctx, old.Token); err != nil {
		t.Errorf("the session after a reset that changed nothing: %v", err)
	}
	if _, err := f.login(adaEmail, newPW); err == nil {
		t.Error("the new password signs in after a failed reset")
	}

	upd.fail.Store(true)
	if err := f.g.ResetPassword(f.ctx, resetTo(link, newPW)); !errors.Is(err, guard.ErrUnavailable) {
		t.Fatalf("reset with SetPassword failing: %v, want ErrUnavailable", err)
	}
	upd.fail.Store(false)
	if _, err := f.g.Authenticate(f.ctx, old.Token); err == nil {
		t.Error("a session survived a reset stopped after the sessions ended")
	}
	again, _ := f.signIn(t, adaEmail, ownerPW) // the password is as it was

	if err := f.g.ResetPassword(f.ctx, resetTo(link, newPW)); err != nil {
		t.Fatalf("the link after two failed resets: %v", err)
	}
	if _, err := f.g.Authenticate(f.ctx, again.Token); err == nil {
		t.Error("a session survived the reset")
	}
	if _, err := f.login(adaEmail, newPW); err != nil {
		t.Errorf("the new password after the reset: %v", err)
	}
}

// The links' calls take the client IP as the sign-in calls do: over 64
// bytes it is bad input (*guard.InputError), refused before anything is
// looked at, not an audit write failing on it later.
func TestLinkCallsCheckClientIP(t *testing.T) {
	f := newMFAFixture(t)
	u := f.createUser(t, adaEmail, ownerPW)
	long := strings.Repeat("1", 65)
	var ie *guard.InputError
	if err := f.g.ForgotPassword(f.ctx, guard.ForgotRequest{Tenant: tenantID, Email: adaEmail, IP: long}); !errors.As(err, &ie) || ie.Field != "IP" {
		t.Errorf("ForgotPassword with a long IP: %v, want an InputError on IP", err)
	}
	if err := f.g.ResetPassword(f.ctx, guard.ResetRequest{Tenant: tenantID, UserID: u.ID, Token: bogusToken, NewPassword: "x", IP: long}); !errors.As(err, &ie) || ie.Field != "IP" {
		t.Errorf("ResetPassword with a long IP: %v, want an InputError on IP", err)
	}
	if err := f.g.ConfirmEmailChange(f.ctx, guard.EmailChangeConfirm{Tenant: tenantID, UserID: u.ID, Email: newAdaEmail, Token: bogusToken, IP: long}); !errors.As(err, &ie) || ie.Field != "IP" {
		t.Errorf("ConfirmEmailChange with a long IP: %v, want an InputError on IP", err)
	}
	f.g.Close()
	if n := len(f.mailTo(adaEmail)); n != 0 {
		t.Errorf("%d mails sent", n)
	}
}
