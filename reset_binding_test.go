package guard_test

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
)

// racingUsers is a user store whose next read of one user, by email or by
// ID (see race), runs a function between the read and its answer: the
// caller gets the user as it was before, as when its read lands just
// before a concurrent change. With shout set, User answers the address in
// upper case, as a store that keeps addresses as they were typed would.
type racingUsers struct {
	auth.UserStore
	mu    sync.Mutex
	key   string // the email or the user ID whose next read races
	then  func()
	shout atomic.Bool
}

// race makes the next read of key (an email for UserByEmail, a user ID
// for User) run then before it answers.
func (r *racingUsers) race(key string, then func()) {
	r.mu.Lock()
	r.key, r.then = key, then
	r.mu.Unlock()
}

// take returns the function armed for key, once.
func (r *racingUsers) take(key string) func() {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.then == nil || r.key != key {
		return nil
	}
	then := r.then
	r.key, r.then = "", nil
	return then
}

func (r *racingUsers) UserByEmail(ctx context.Context, tenant, email string) (auth.User, error) {
	u, err := r.UserStore.UserByEmail(ctx, tenant, email)
	if then := r.take(email); then != nil {
		then()
	}
	return u, err
}

func (r *racingUsers) User(ctx context.Context, tenant, id string) (auth.User, error) {
	u, err := r.UserStore.User(ctx, tenant, id)
	if then := r.take(id); then != nil {
		then()
	}
	if r.shout.Load() {
		u.Email = strings.ToUpper(u.Email)
	}
	return u, err
}

// newRacingFixture is an mfaFixture whose user store is a racingUsers.
func newRacingFixture(t *testing.T) (*mfaFixture, *racingUsers) {
	var ru *racingUsers
	f := newMFAFixture(t, manySessions, func(c *guard.Config) {
		ru = &racingUsers{UserStore: c.Stores.Users}
		c.Stores.Users = ru
	})
	return f, ru
}

// resetRefusals returns the reasons of the refused password.reset events
// for user id.
func (f *mfaFixture) resetRefusals(t testing.TB, id string) []string {
	t.Helper()
	var out []string
	for _, e := range f.events(t, audit.PasswordReset) {
		if e.Outcome == audit.Failure && e.Target == id {
			out = append(out, e.Reason)
		}
	}
	return out
}

// wantLinkRefused checks that the reset or invitation link is refused
// with the public ErrInvalidResetToken, recorded with reason, and that the
// password has not changed (the user signs in at newAdaEmail with ownerPW).
func (f *mfaFixture) wantLinkRefused(t testing.TB, id string, link url.Values, reason string) {
	t.Helper()
	before := len(f.resetRefusals(t, id))
	if err := f.g.ResetPassword(f.ctx, resetTo(link, "attacker chosen passphrase 9876")); !errors.Is(err, guard.ErrInvalidResetToken) {
		t.Errorf("ResetPassword with a link mailed to the old address = %v, want ErrInvalidResetToken", err)
	}
	got := f.resetRefusals(t, id)
	if len(got) != before+1 || got[len(got)-1] != reason {
		t.Errorf("refused password.reset reasons = %q, want one more: %q", got, reason)
	}
	if _, err := f.login(newAdaEmail, "attacker chosen passphrase 9876"); err == nil {
		t.Error("the refused link's password signs in")
	}
	if _, err := f.login(newAdaEmail, ownerPW); err != nil {
		t.Errorf("the password changed: %v", err)
	}
}

// linkMailedAsEmailChanged makes Ada, asks for a reset link at adaEmail
// and changes her address to newAdaEmail between the look-up and the
// link's store: the link is mailed to the old address after the change.
func linkMailedAsEmailChanged(t *testing.T) (*mfaFixture, guard.User, url.Values) {
	t.Helper()
	f, ru := newRacingFixture(t)
	ada := f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	ru.race(adaEmail, func() {
		if err := f.g.ChangeEmail(f.ctx, p, newAdaEmail); err != nil {
			t.Errorf("ChangeEmail: %v", err)
		}
	})
	if err := f.g.ForgotPassword(f.ctx, guard.ForgotRequest{Tenant: tenantID, Email: adaEmail, IP: "203.0.113.9"}); err != nil {
		t.Fatal(err)
	}
	return f, ada, lastResetLink(t, f.mailTo(adaEmail)) // mailed after the change
}

// A reset link works only while the address it was mailed to is the
// user's: one mailed to the old address just as the address changed (the
// lookup before the change, the link stored after the change voided the
// links) does not give the account to the old mailbox.
func TestResetLinkBoundToAddress(t *testing.T) {
	t.Run("ChangeEmail", func(t *testing.T) {
		f, ada, link := linkMailedAsEmailChanged(t)
		f.wantEmail(t, ada.ID, newAdaEmail)
		f.wantLinkRefused(t, ada.ID, link, guard.ReasonEmailChanged)
		// The refusal spent the link.
		f.wantLinkRefused(t, ada.ID, link, "invalid_token")
	})

	t.Run("ConfirmEmailChange", func(t *testing.T) {
		f, ru := newRacingFixture(t)
		ada := f.createUser(t, adaEmail, ownerPW)
		_, p := f.signIn(t, adaEmail, ownerPW)
		change := f.requestChange(t, p, newAdaEmail)
		ru.race(adaEmail, func() {
			if err := f.g.ConfirmEmailChange(f.ctx, confirmOf(change)); err != nil {
				t.Errorf("ConfirmEmailChange: %v", err)
			}
		})
		if err := f.g.ForgotPassword(f.ctx, guard.ForgotRequest{Tenant: tenantID, Email: adaEmail, IP: "203.0.113.9"}); err != nil {
			t.Fatal(err)
		}
		link := lastResetLink(t, f.mailTo(adaEmail))
		f.wantEmail(t, ada.ID, newAdaEmail)
		f.wantLinkRefused(t, ada.ID, link, guard.ReasonEmailChanged)
	})

	// The same without a race: the change voids the link outright.
	t.Run("sequential", func(t *testing.T) {
		f, _ := newRacingFixture(t)
		ada := f.createUser(t, adaEmail, ownerPW)
		_, p := f.signIn(t, adaEmail, ownerPW)
		link := f.forgot(t, adaEmail)
		if err := f.g.ChangeEmail(f.ctx, p, newAdaEmail); err != nil {
			t.Fatal(err)
		}
		f.wantLinkRefused(t, ada.ID, link, "invalid_token")
	})

	// An invitation is a reset link sent by an administrator: the same
	// race, with the user read by ID.
	t.Run("SendInvitation", func(t *testing.T) {
		f, ru := newRacingFixture(t)
		ada := f.createUser(t, adaEmail, ownerPW)
		_, p := f.signIn(t, adaEmail, ownerPW)
		ru.race(ada.ID, func() {
			if err := f.g.ChangeEmail(f.ctx, p, newAdaEmail); err != nil {
				t.Errorf("ChangeEmail: %v", err)
			}
		})
		if err := f.g.SendInvitation(f.ctx, guard.System("test"), tenantID, ada.ID); err != nil {
			t.Fatal(err)
		}
		link := lastResetLink(t, f.mailTo(adaEmail))
		f.wantEmail(t, ada.ID, newAdaEmail)
		f.wantLinkRefused(t, ada.ID, link, guard.ReasonEmailChanged)
	})
}

// A link mailed to the user's current address works, whether a reset or
// an invitation, and also when the store answers the address in another
// case: addresses compare in canonical form.
func TestResetLinkToCurrentAddress(t *testing.T) {
	f, ru := newRacingFixture(t)
	ada := f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	if err := f.g.ChangeEmail(f.ctx, p, newAdaEmail); err != nil {
		t.Fatal(err)
	}
	set := func(name string, link url.Values, pw string) {
		t.Helper()
		if err := f.g.ResetPassword(f.ctx, resetTo(link, pw)); err != nil {
			t.Fatalf("%s: ResetPassword = %v", name, err)
		}
		if _, err := f.login(newAdaEmail, pw); err != nil {
			t.Errorf("%s: login with the new password: %v", name, err)
		}
	}
	set("reset", f.forgot(t, newAdaEmail), "first new passphrase 1234")

	if err := f.g.SendInvitation(f.ctx, guard.System("test"), tenantID, ada.ID); err != nil {
		t.Fatal(err)
	}
	set("invitation", resetLink(t, f.out.lastMailWith(t, resetPrefix)), "second new passphrase 5678")

	ru.shout.Store(true)
	if err := f.g.ForgotPassword(f.ctx, guard.ForgotRequest{Tenant: tenantID, Email: newAdaEmail, IP: "203.0.113.5"}); err != nil {
		t.Fatal(err)
	}
	f.g.Close() // the link is mailed in the background
	set("reset, address in upper case", resetLink(t, f.out.lastMailWith(t, resetPrefix)), "third new passphrase 9012")
	ru.shout.Store(false)
	if got := f.resetRefusals(t, ada.ID); len(got) != 0 {
		t.Errorf("refused password.reset events %q, want none", got)
	}
}

// An email change asked for just as another session changed the address
// (the request read the user before the change, and stored its link after
// the change voided the links) does not go through: the link is bound to
// the address it was asked from, and is spent, refused with
// email_changed.
func TestEmailChangeLinkBoundToAddress(t *testing.T) {
	f, ru := newRacingFixture(t)
	ada := f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	const other = "ada.other@example.test"
	ru.race(ada.ID, func() {
		if err := f.g.ChangeEmail(f.ctx, p, other); err != nil {
			t.Errorf("ChangeEmail: %v", err)
		}
	})
	change := f.requestChange(t, p, newAdaEmail)
	f.wantEmail(t, ada.ID, other)
	if err := f.g.ConfirmEmailChange(f.ctx, confirmOf(change)); !errors.Is(err, guard.ErrInvalidEmailChange) {
		t.Fatalf("ConfirmEmailChange of a link asked for from the old address: %v, want ErrInvalidEmailChange", err)
	}
	f.wantEmail(t, ada.ID, other)
	var got []string
	for _, e := range f.events(t, audit.UserEmailChanged) {
		if e.Outcome == audit.Failure {
			got = append(got, e.Reason)
		}
	}
	if len(got) != 1 || got[0] != guard.ReasonEmailChanged {
		t.Errorf("refused user.email_changed reasons %q, want one email_changed", got)
	}
	// Spent: a second try finds no link.
	if err := f.g.ConfirmEmailChange(f.ctx, confirmOf(change)); !errors.Is(err, guard.ErrInvalidEmailChange) {
		t.Errorf("the link again: %v", err)
	}
	f.wantEmail(t, ada.ID, other)
}
