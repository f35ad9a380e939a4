package guard_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/store/memstore"
)

const newAdaEmail = "ada.lovelace@example.test"

// mailTo returns the emails sent to addr, oldest first, once every
// background send has finished.
func (f *mfaFixture) mailTo(addr string) []mfa.Message {
	f.g.Close() // waits for the background sends
	f.out.mu.Lock()
	defer f.out.mu.Unlock()
	var out []mfa.Message
	for _, m := range f.out.mail {
		if m.To == addr {
			out = append(out, m)
		}
	}
	return out
}

// stepUp reauthenticates p (whose session token is token) with the
// password and returns the renewed principal and token.
func (f *mfaFixture) stepUp(t testing.TB, p guard.Principal, token string) (guard.Principal, string) {
	t.Helper()
	tok, _, err := f.g.Reauthenticate(f.ctx, p, token, guard.Proof{Password: ownerPW})
	if err != nil {
		t.Fatalf("Reauthenticate: %v", err)
	}
	np, err := f.g.Authenticate(f.ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	np.IP, np.UserAgent = "203.0.113.5", "test"
	return np, tok
}

// forgot asks for a reset link for email and returns it: the one email
// the address has received.
func (f *mfaFixture) forgot(t testing.TB, email string) url.Values {
	t.Helper()
	if err := f.g.ForgotPassword(f.ctx, guard.ForgotRequest{Tenant: tenantID, Email: email, IP: "203.0.113.5"}); err != nil {
		t.Fatal(err)
	}
	sent := f.mailTo(email)
	if len(sent) != 1 {
		t.Fatalf("%d emails, want the reset link", len(sent))
	}
	return resetLink(t, sent[0])
}

// wantEmail checks the user's stored email.
func (f *fixture) wantEmail(t testing.TB, id, want string) {
	t.Helper()
	u, err := f.g.User(f.ctx, guard.System("test"), tenantID, id)
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != want {
		t.Errorf("email = %q, want %q", u.Email, want)
	}
}

// manySessions lets a user keep several sessions (the default is one).
func manySessions(c *guard.Config) { c.Defaults = guard.Policy{SessionLimit: 20} }

// SECURITY-CHECKLIST MF-16, for the account's address: changing it needs
// a recent authentication (an old session must step up first), and the
// old address is told. For a factor's address (a factor is replaced, not
// edited): BeginOOB and RemoveFactor need the step-up too
// (TestReuseAndRecoveryNotices, TestStepUp), and the address of a
// removed email factor is told (TestSecurityNotices/EmailFactorRemoved).
func TestChangeEmail(t *testing.T) {
	f := newMFAFixture(t, manySessions)
	ada := f.createUser(t, adaEmail, ownerPW)
	res, _ := f.signIn(t, adaEmail, ownerPW)
	other1, _ := f.signIn(t, adaEmail, ownerPW)
	other2, _ := f.signIn(t, adaEmail, ownerPW)

	// An old session must step up first.
	f.clock.Advance(16 * time.Minute)
	p, err := f.g.Authenticate(f.ctx, res.Token)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.g.ChangeEmail(f.ctx, p, newAdaEmail); !errors.Is(err, guard.ErrStepUpRequired) {
		t.Fatalf("ChangeEmail on a session 16 minutes old = %v, want ErrStepUpRequired", err)
	}
	f.wantEmail(t, ada.ID, adaEmail)
	if evs := f.events(t, audit.UserEmailChanged); len(evs) != 0 {
		t.Errorf("a refused step-up recorded %d user.email_changed events", len(evs))
	}

	p, tok := f.stepUp(t, p, res.Token)
	// Given in any case and with spaces around, stored canonical.
	if err := f.g.ChangeEmail(f.ctx, p, "  Ada.Lovelace@EXAMPLE.test "); err != nil {
		t.Fatalf("ChangeEmail after Reauthenticate: %v", err)
	}
	f.wantEmail(t, ada.ID, newAdaEmail)

	t.Run("SignInWithNewEmailOnly", func(t *testing.T) {
		if _, err := f.login(adaEmail, ownerPW); !errors.Is(err, guard.ErrInvalidCredentials) {
			t.Errorf("Login with the old email = %v, want ErrInvalidCredentials", err)
		}
		res, err := f.login(newAdaEmail, ownerPW)
		if err != nil || res.Token == "" {
			t.Fatalf("Login with the new email = %+v, %v", res, err)
		}
		got, err := f.g.Authenticate(f.ctx, res.Token)
		if err != nil || got.UserID != ada.ID {
			t.Errorf("the new email signed in as %q, %v; want %q", got.UserID, err, ada.ID)
		}
	})
	t.Run("OtherSessionsEnded", func(t *testing.T) {
		for _, o := range []string{other1.Token, other2.Token} {
			if _, err := f.g.Authenticate(f.ctx, o); !errors.Is(err, guard.ErrUnauthenticated) {
				t.Errorf("another session of the user survived the change: %v", err)
			}
		}
		if got, err := f.g.Authenticate(f.ctx, tok); err != nil || got.UserID != ada.ID {
			t.Errorf("the session that made the change = %v, want it kept", err)
		}
	})
	t.Run("Audited", func(t *testing.T) {
		evs := f.events(t, audit.UserEmailChanged)
		if len(evs) != 1 {
			t.Fatalf("%d user.email_changed events, want 1", len(evs))
		}
		e := evs[0]
		want := map[string]string{"old_email": adaEmail, "new_email": newAdaEmail, "sessions_ended": "2", "email_verified": "false"}
		if e.Outcome != audit.Success || e.Target != ada.ID || e.Actor.Kind != audit.ActorUser || e.Actor.ID != ada.ID ||
			e.IP != "203.0.113.5" || len(e.Meta) != len(want) {
			t.Errorf("event = %+v", e)
		}
		for k, v := range want {
			if e.Meta[k] != v {
				t.Errorf("Meta[%q] = %q, want %q", k, e.Meta[k], v)
			}
		}
	})
	t.Run("OldAddressNotified", func(t *testing.T) {
		old := f.mailTo(adaEmail)
		if len(old) != 1 {
			t.Fatalf("%d emails to the old address, want 1 notice", len(old))
		}
		if !strings.Contains(old[0].Text, adaEmail) || !strings.Contains(old[0].Text, newAdaEmail) ||
			!strings.Contains(strings.ToLower(old[0].Subject), "email") {
			t.Errorf("notice = %q: %q; want both addresses named", old[0].Subject, old[0].Text)
		}
		if n := len(f.mailTo(newAdaEmail)); n != 0 {
			t.Errorf("%d emails to the new address, want none", n)
		}
	})
}

func TestChangeEmailRefusals(t *testing.T) {
	f := newMFAFixture(t, manySessions)
	ada := f.createUser(t, adaEmail, ownerPW)
	bob := f.createUser(t, "bob@example.test", ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	other, _ := f.signIn(t, adaEmail, ownerPW)

	// unchanged checks that nothing happened: both users keep their
	// emails and sign in with them, Ada's other session lives, and no
	// notice went out.
	unchanged := func(t *testing.T) {
		t.Helper()
		f.wantEmail(t, ada.ID, adaEmail)
		f.wantEmail(t, bob.ID, bob.Email)
		if _, err := f.g.Authenticate(f.ctx, other.Token); err != nil {
			t.Errorf("Ada's other session ended: %v", err)
		}
		for _, e := range []string{adaEmail, bob.Email} {
			if _, err := f.login(e, ownerPW); err != nil {
				t.Errorf("Login(%q): %v", e, err)
			}
		}
		if n := len(f.mailTo(adaEmail)) + len(f.mailTo(bob.Email)); n != 0 {
			t.Errorf("%d notices sent", n)
		}
	}

	t.Run("Taken", func(t *testing.T) {
		if err := f.g.ChangeEmail(f.ctx, p, "BOB@example.test"); !errors.Is(err, guard.ErrEmailTaken) {
			t.Fatalf("ChangeEmail to another user's email = %v, want ErrEmailTaken", err)
		}
		unchanged(t)
		evs := f.events(t, audit.UserEmailChanged)
		if len(evs) != 1 || evs[0].Outcome != audit.Failure || evs[0].Reason != guard.ReasonEmailTaken ||
			evs[0].Meta["new_email"] != bob.Email || evs[0].Actor.ID != ada.ID {
			t.Errorf("events = %+v, want one refusal with reason %q", evs, guard.ReasonEmailTaken)
		}
	})
	t.Run("Malformed", func(t *testing.T) {
		for _, e := range []string{"", "   ", "not an email", "ada@", "@example.test", "a@b@example.test",
			"Ada <ada2@example.test>", "ada2@example.test\r\nBcc: x@example.test", "\xffada@example.test",
			strings.Repeat("a", 300) + "@example.test"} {
			var ie *auth.InputError
			if err := f.g.ChangeEmail(f.ctx, p, e); !errors.As(err, &ie) || ie.Field != "email" {
				t.Errorf("ChangeEmail(%q) = %v, want an *auth.InputError for the email", e, err)
			}
		}
		unchanged(t)
		if evs := f.events(t, audit.UserEmailChanged); len(evs) != 1 {
			t.Errorf("%d user.email_changed events, want only the earlier refusal", len(evs))
		}
	})
	t.Run("SameEmail", func(t *testing.T) {
		if err := f.g.ChangeEmail(f.ctx, p, " ADA@example.test"); err != nil {
			t.Fatalf("ChangeEmail to the current email = %v, want nil", err)
		}
		unchanged(t)
		if evs := f.events(t, audit.UserEmailChanged); len(evs) != 1 {
			t.Errorf("%d user.email_changed events, want only the earlier refusal", len(evs))
		}
	})
	t.Run("NotAUser", func(t *testing.T) {
		for _, by := range []guard.Principal{guard.System("test"), {}} {
			if err := f.g.ChangeEmail(f.ctx, by, "x@example.test"); !errors.Is(err, guard.ErrUnauthenticated) {
				t.Errorf("ChangeEmail by %+v = %v, want ErrUnauthenticated", by, err)
			}
		}
		// An API key is authenticated, but cannot give the recent
		// authentication the change needs (APIKEY-3).
		key := guard.Principal{Kind: guard.KindAPIKey, Tenant: tenantID, KeyID: "k"}
		if err := f.g.ChangeEmail(f.ctx, key, "x@example.test"); !errors.Is(err, guard.ErrForbidden) {
			t.Errorf("ChangeEmail by an API key = %v, want ErrForbidden", err)
		}
		unchanged(t)
	})
	t.Run("DeletedUser", func(t *testing.T) {
		_, pb := f.signIn(t, bob.Email, ownerPW)
		if err := f.g.DeleteUser(f.ctx, guard.System("test"), tenantID, bob.ID); err != nil {
			t.Fatal(err)
		}
		if err := f.g.ChangeEmail(f.ctx, pb, "bob2@example.test"); !errors.Is(err, guard.ErrUserNotFound) {
			t.Errorf("ChangeEmail of a deleted user = %v, want ErrUserNotFound", err)
		}
	})
}

// A reset link mailed to the old address stops working: that mailbox is no
// longer the account's.
func TestChangeEmailVoidsResetLink(t *testing.T) {
	f := newMFAFixture(t)
	ada := f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	link := f.forgot(t, adaEmail)
	if err := f.g.ChangeEmail(f.ctx, p, newAdaEmail); err != nil {
		t.Fatal(err)
	}
	err := f.g.ResetPassword(f.ctx, guard.ResetRequest{Tenant: link.Get("tenant"), UserID: link.Get("user"),
		Token: link.Get("token"), NewPassword: "an entirely new passphrase"})
	if !errors.Is(err, guard.ErrInvalidResetToken) {
		t.Errorf("ResetPassword with a link mailed to the old address = %v, want ErrInvalidResetToken", err)
	}
	if _, err := f.login(newAdaEmail, ownerPW); err != nil {
		t.Errorf("the password changed: %v", err)
	}
	f.wantEmail(t, ada.ID, newAdaEmail)
}

// When the change cannot be recorded, the old address is put back: no
// email change is off the record.
func TestChangeEmailUnrecordedIsUndone(t *testing.T) {
	var fa *failingAudit
	f := newFixture(t, func(c *guard.Config) {
		fa = &failingAudit{Audit: c.Stores.Audit.(*memstore.Audit)}
		c.Stores.Audit = fa
	})
	ada := f.createUser(t, adaEmail, ownerPW)
	res, err := f.login(adaEmail, ownerPW)
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.g.Authenticate(f.ctx, res.Token)
	if err != nil {
		t.Fatal(err)
	}
	fa.set(true)
	if err := f.g.ChangeEmail(f.ctx, p, newAdaEmail); err == nil {
		t.Fatal("ChangeEmail with the audit log down succeeded")
	}
	fa.set(false)
	f.wantEmail(t, ada.ID, adaEmail)
	if _, err := f.g.UserByEmail(f.ctx, guard.System("test"), tenantID, newAdaEmail); !errors.Is(err, guard.ErrUserNotFound) {
		t.Errorf("UserByEmail(new) = %v, want ErrUserNotFound", err)
	}
	// Without Config.Recovery nothing is mailed, and the change works.
	if err := f.g.ChangeEmail(f.ctx, p, newAdaEmail); err != nil {
		t.Fatalf("ChangeEmail with the log back: %v", err)
	}
	f.wantEmail(t, ada.ID, newAdaEmail)
}
