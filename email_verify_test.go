package guard_test

import (
	"context"
	"errors"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/mfa"
)

// changeLink returns the parameters of the email-change link in m.
func changeLink(t testing.TB, m mfa.Message) url.Values {
	t.Helper()
	return mailLink(t, m, "https://app.example.test/email/confirm?")
}

func confirmOf(link url.Values) guard.EmailChangeConfirm {
	return guard.EmailChangeConfirm{Tenant: link.Get("tenant"), UserID: link.Get("user"), Email: link.Get("email"),
		Token: link.Get("token"), IP: "198.51.100.7", UserAgent: "mail client"}
}

// requestChange asks for a change of p's address to email and returns the
// link mailed there.
func (f *mfaFixture) requestChange(t testing.TB, p guard.Principal, email string) url.Values {
	t.Helper()
	to := strings.ToLower(strings.TrimSpace(email))
	before := len(f.mailTo(to))
	if err := f.g.RequestEmailChange(f.ctx, p, email); err != nil {
		t.Fatalf("RequestEmailChange(%s): %v", email, err)
	}
	sent := f.mailTo(to)
	if len(sent) != before+1 {
		t.Fatalf("%d emails to %s, want %d", len(sent), to, before+1)
	}
	return changeLink(t, sent[len(sent)-1])
}

func TestVerifiedEmailChange(t *testing.T) {
	f := newMFAFixture(t, manySessions)
	ada := f.createUser(t, adaEmail, ownerPW)
	res, p := f.signIn(t, adaEmail, ownerPW)
	other, _ := f.signIn(t, adaEmail, ownerPW)

	link := f.requestChange(t, p, "  Ada.Lovelace@EXAMPLE.test ")
	if link.Get("email") != newAdaEmail || link.Get("user") != ada.ID || link.Get("tenant") != tenantID || len(link.Get("token")) != 43 {
		t.Fatalf("link parameters %v", link)
	}
	// Nothing changes before the link comes back.
	f.wantEmail(t, ada.ID, adaEmail)
	if _, err := f.g.Authenticate(f.ctx, other.Token); err != nil {
		t.Errorf("another session ended at the request: %v", err)
	}
	req := f.events(t, audit.UserEmailChangeRequested)
	if len(req) != 1 || req[0].Target != ada.ID || req[0].Meta["new_email"] != newAdaEmail || req[0].Meta["old_email"] != adaEmail {
		t.Errorf("user.email_change_requested events %+v", req)
	}
	for _, e := range req {
		if strings.Contains(e.Meta["new_email"]+e.Reason+e.Target, link.Get("token")) {
			t.Errorf("the token is in the audit log: %+v", e)
		}
	}

	if err := f.g.ConfirmEmailChange(f.ctx, confirmOf(link)); err != nil {
		t.Fatalf("ConfirmEmailChange: %v", err)
	}
	f.wantEmail(t, ada.ID, newAdaEmail)
	if _, err := f.login(adaEmail, ownerPW); !errors.Is(err, guard.ErrInvalidCredentials) {
		t.Errorf("Login with the old email = %v", err)
	}
	if _, err := f.login(newAdaEmail, ownerPW); err != nil {
		t.Errorf("Login with the new email = %v", err)
	}
	for _, tok := range []string{res.Token, other.Token} {
		if _, err := f.g.Authenticate(f.ctx, tok); !errors.Is(err, guard.ErrUnauthenticated) {
			t.Errorf("a session survived the confirmed change: %v", err)
		}
	}
	changed := f.events(t, audit.UserEmailChanged)
	if len(changed) != 1 || changed[0].Outcome != audit.Success || changed[0].Meta["sessions_ended"] != "2" || changed[0].IP != "198.51.100.7" {
		t.Errorf("user.email_changed events %+v", changed)
	}
	if old := f.mailTo(adaEmail); len(old) != 1 || !strings.Contains(old[0].Text, newAdaEmail) {
		t.Errorf("mail to the old address %+v, want one notice naming the new address", old)
	}
	// The link is single-use.
	if err := f.g.ConfirmEmailChange(f.ctx, confirmOf(link)); !errors.Is(err, guard.ErrInvalidEmailChange) {
		t.Errorf("the link used again = %v, want ErrInvalidEmailChange", err)
	}
}

func TestEmailChangeLinkRefusals(t *testing.T) {
	f := newMFAFixture(t)
	ada := f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)

	t.Run("BoundToTheAddress", func(t *testing.T) {
		link := f.requestChange(t, p, newAdaEmail)
		// The same token for another address (the link edited) is refused
		// and uses a try.
		forged := confirmOf(link)
		forged.Email = "mallory@example.test"
		if err := f.g.ConfirmEmailChange(f.ctx, forged); !errors.Is(err, guard.ErrInvalidEmailChange) {
			t.Fatalf("the token for another address = %v, want ErrInvalidEmailChange", err)
		}
		if _, err := f.g.UserByEmail(f.ctx, guard.System("test"), tenantID, "mallory@example.test"); !errors.Is(err, guard.ErrUserNotFound) {
			t.Errorf("the edited address was set: %v", err)
		}
		f.wantEmail(t, ada.ID, adaEmail)
		tok := link.Get("token")
		edited := tok[:42] + "A"
		if tok[42] == 'A' {
			edited = tok[:42] + "B"
		}
		for _, c := range []guard.EmailChangeConfirm{
			{Tenant: tenantID, UserID: ada.ID, Email: newAdaEmail, Token: edited},
			{Tenant: tenantID, UserID: ada.ID, Email: newAdaEmail, Token: "short"},
			{Tenant: tenantID, UserID: "someone-else", Email: newAdaEmail, Token: link.Get("token")},
			{Tenant: "other", UserID: ada.ID, Email: newAdaEmail, Token: link.Get("token")},
			{Tenant: tenantID, UserID: ada.ID, Email: "not an address", Token: link.Get("token")},
		} {
			if err := f.g.ConfirmEmailChange(f.ctx, c); !errors.Is(err, guard.ErrInvalidEmailChange) {
				t.Errorf("ConfirmEmailChange(%+v) = %v, want ErrInvalidEmailChange", c, err)
			}
		}
		// The wrong tries spend nothing (the token carries 256 bits, a
		// limit would only let a stranger spend the link): the link, as
		// mailed, still works.
		bad := confirmOf(link)
		bad.Token = strings.Repeat("B", 43)
		_ = f.g.ConfirmEmailChange(f.ctx, bad)
		f.wantEmail(t, ada.ID, adaEmail)
		if err := f.g.ConfirmEmailChange(f.ctx, confirmOf(link)); err != nil {
			t.Errorf("the right link after the wrong tries = %v", err)
		}
		f.wantEmail(t, ada.ID, newAdaEmail)
		if err := f.g.ChangeEmail(f.ctx, p, adaEmail); err != nil { // back, for the subtests below
			t.Fatal(err)
		}
		refused := 0
		for _, e := range f.events(t, audit.UserEmailChanged) {
			if e.Outcome == audit.Failure && e.Reason == "invalid_token" {
				refused++
			}
		}
		if refused < 3 {
			t.Errorf("%d refused user.email_changed events, want at least 3", refused)
		}
	})
	t.Run("NewerRequestVoidsOlder", func(t *testing.T) {
		first := f.requestChange(t, p, "first@example.test")
		second := f.requestChange(t, p, "second@example.test")
		if err := f.g.ConfirmEmailChange(f.ctx, confirmOf(first)); !errors.Is(err, guard.ErrInvalidEmailChange) {
			t.Errorf("the older link = %v, want ErrInvalidEmailChange", err)
		}
		f.wantEmail(t, ada.ID, adaEmail)
		if err := f.g.ConfirmEmailChange(f.ctx, confirmOf(second)); err != nil {
			t.Fatalf("the newer link: %v", err)
		}
		f.wantEmail(t, ada.ID, "second@example.test")
	})
	t.Run("Expired", func(t *testing.T) {
		res, err := f.login("second@example.test", ownerPW)
		if err != nil {
			t.Fatal(err)
		}
		p, err := f.g.Authenticate(f.ctx, res.Token)
		if err != nil {
			t.Fatal(err)
		}
		link := f.requestChange(t, p, "late@example.test")
		f.clock.Advance(31 * time.Minute)
		if err := f.g.ConfirmEmailChange(f.ctx, confirmOf(link)); !errors.Is(err, guard.ErrInvalidEmailChange) {
			t.Errorf("a link 31 minutes old = %v, want ErrInvalidEmailChange", err)
		}
		f.wantEmail(t, ada.ID, "second@example.test")
	})
}

func TestRequestEmailChangeRefusals(t *testing.T) {
	f := newMFAFixture(t)
	ada := f.createUser(t, adaEmail, ownerPW)
	f.createUser(t, "bob@example.test", ownerPW)
	res, p := f.signIn(t, adaEmail, ownerPW)

	// Another user's address is answered as if a link went out (a member
	// must not learn who has an account); the address gets a notice, no
	// link.
	if err := f.g.RequestEmailChange(f.ctx, p, "BOB@example.test"); err != nil {
		t.Errorf("another user's address = %v, want nil", err)
	}
	if sent := f.mailTo("bob@example.test"); len(sent) != 1 || strings.Contains(sent[0].Text, "/email/confirm") {
		t.Errorf("emails to the other user's address: %+v, want one notice without a link", sent)
	}
	var ie *auth.InputError
	if err := f.g.RequestEmailChange(f.ctx, p, "not an address"); !errors.As(err, &ie) {
		t.Errorf("a malformed address = %v, want an *auth.InputError", err)
	}
	if err := f.g.RequestEmailChange(f.ctx, p, " ADA@example.test"); err != nil {
		t.Errorf("the current address = %v, want nil", err)
	}
	if n := len(f.mailTo("bob@example.test")) + len(f.mailTo(adaEmail)); n != 1 {
		t.Errorf("%d emails sent by refused requests, want the notice", n)
	}
	if evs := f.events(t, audit.UserEmailChangeRequested); len(evs) != 0 {
		t.Errorf("refused requests recorded %+v", evs)
	}
	f.clock.Advance(16 * time.Minute)
	old, err := f.g.Authenticate(f.ctx, res.Token)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.g.RequestEmailChange(f.ctx, old, newAdaEmail); !errors.Is(err, guard.ErrStepUpRequired) {
		t.Errorf("a session 16 minutes old = %v, want ErrStepUpRequired", err)
	}
	if err := f.g.RequestEmailChange(f.ctx, guard.System("test"), newAdaEmail); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("the system principal = %v, want ErrUnauthenticated", err)
	}

	// Taken between the request and the confirmation: nothing changes.
	p, _ = f.stepUp(t, old, res.Token)
	link := f.requestChange(t, p, "carol@example.test")
	f.createUser(t, "carol@example.test", ownerPW)
	if err := f.g.ConfirmEmailChange(f.ctx, confirmOf(link)); !errors.Is(err, guard.ErrEmailTaken) {
		t.Errorf("an address taken since the request = %v, want ErrEmailTaken", err)
	}
	f.wantEmail(t, ada.ID, adaEmail)

	// A deactivated user's link does nothing.
	link = f.requestChange(t, p, "dora@example.test")
	if err := f.g.DeactivateUser(f.ctx, guard.System("test"), tenantID, ada.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.g.ConfirmEmailChange(f.ctx, confirmOf(link)); !errors.Is(err, guard.ErrInvalidEmailChange) {
		t.Errorf("a deactivated user's link = %v, want ErrInvalidEmailChange", err)
	}
	f.wantEmail(t, ada.ID, adaEmail)
}

func TestRequestEmailChangeNeedsRecovery(t *testing.T) {
	f := newFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	res, err := f.login(adaEmail, ownerPW)
	if err != nil {
		t.Fatal(err)
	}
	p, _ := f.g.Authenticate(f.ctx, res.Token)
	var pe *guard.PolicyError
	if err := f.g.RequestEmailChange(f.ctx, p, newAdaEmail); !errors.As(err, &pe) {
		t.Errorf("RequestEmailChange without Config.Recovery = %v, want a *PolicyError", err)
	}
	if err := f.g.ConfirmEmailChange(f.ctx, guard.EmailChangeConfirm{}); !errors.As(err, &pe) {
		t.Errorf("ConfirmEmailChange without Config.Recovery = %v, want a *PolicyError", err)
	}
}

// failingMail is an EmailSender that fails while down.
type failingMail struct {
	*outbox
	down atomic.Bool
}

func (m *failingMail) SendEmail(ctx context.Context, msg mfa.Message) error {
	if m.down.Load() {
		return errors.New("smtp: connection refused")
	}
	return m.outbox.SendEmail(ctx, msg)
}

func TestEmailChangeLinkNotSentLeavesNoLink(t *testing.T) {
	fm := &failingMail{outbox: &outbox{}}
	f := newMFAFixture(t, func(c *guard.Config) { c.Recovery.Email = fm })
	ada := f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	fm.down.Store(true)
	if err := f.g.RequestEmailChange(f.ctx, p, newAdaEmail); !errors.Is(err, guard.ErrUnavailable) {
		t.Fatalf("RequestEmailChange with mail down = %v, want ErrUnavailable", err)
	}
	fm.down.Store(false)
	// A second request works; its link is the only one.
	if err := f.g.RequestEmailChange(f.ctx, p, newAdaEmail); err != nil {
		t.Fatal(err)
	}
	f.g.Close()
	fm.mu.Lock()
	var links []url.Values
	for _, m := range fm.mail {
		if m.To == newAdaEmail {
			links = append(links, changeLink(t, m))
		}
	}
	fm.mu.Unlock()
	if len(links) != 1 {
		t.Fatalf("%d links sent, want 1", len(links))
	}
	if err := f.g.ConfirmEmailChange(f.ctx, confirmOf(links[0])); err != nil {
		t.Fatal(err)
	}
	f.wantEmail(t, ada.ID, newAdaEmail)
}

// A link confirmed from many clients at once changes the address once.
func TestConfirmEmailChangeConcurrent(t *testing.T) {
	f := newMFAFixture(t)
	ada := f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	link := f.requestChange(t, p, newAdaEmail)
	var wg sync.WaitGroup
	var ok, invalid atomic.Int32
	for range 30 {
		wg.Go(func() {
			switch err := f.g.ConfirmEmailChange(f.ctx, confirmOf(link)); {
			case err == nil:
				ok.Add(1)
			case errors.Is(err, guard.ErrInvalidEmailChange):
				invalid.Add(1)
			default:
				t.Errorf("ConfirmEmailChange: %v", err)
			}
		})
	}
	wg.Wait()
	if ok.Load() != 1 || invalid.Load() != 29 {
		t.Errorf("%d confirmations succeeded and %d were refused, want 1 and 29", ok.Load(), invalid.Load())
	}
	f.wantEmail(t, ada.ID, newAdaEmail)
	if evs := f.events(t, audit.UserEmailChanged); len(evs) != 30 {
		t.Errorf("%d user.email_changed events, want 30 (1 done, 29 refused)", len(evs))
	}
}

// withLimits sets small link send limits.
func withLimits(l guard.LinkLimits) func(*guard.Config) {
	return func(c *guard.Config) { c.Recovery.Limits = l }
}

// RS-14: reset requests beyond the hour's limit for one account send no
// mail, answer the same, and leave the last link valid; an hour later
// links go out again.
func TestForgotPasswordSendLimit(t *testing.T) {
	f := newMFAFixture(t, withLimits(guard.LinkLimits{PerAccount: 3}))
	f.createUser(t, adaEmail, ownerPW)
	req := guard.ForgotRequest{Tenant: tenantID, Email: adaEmail, IP: "203.0.113.5"}
	for range 10 {
		if err := f.g.ForgotPassword(f.ctx, req); err != nil {
			t.Fatalf("ForgotPassword over the limit = %v, want the usual nil", err)
		}
		f.mailTo(adaEmail) // one after the other: the last link is the last mail
	}
	sent := f.mailTo(adaEmail)
	if len(sent) != 3 {
		t.Fatalf("%d reset emails for 10 requests, want 3", len(sent))
	}
	if limited := reasons(f.events(t, audit.PasswordResetRequested))[guard.ReasonRateLimited]; limited != 7 {
		t.Errorf("%d password.reset_requested events refused as rate_limited, want 7", limited)
	}
	// The requests held back did not void the last link.
	link := resetLink(t, sent[2])
	if err := f.g.ResetPassword(f.ctx, guard.ResetRequest{Tenant: link.Get("tenant"), UserID: link.Get("user"),
		Token: link.Get("token"), NewPassword: "an entirely new passphrase"}); err != nil {
		t.Errorf("the last link sent after the limit held: %v", err)
	}
	f.mailTo(adaEmail) // the notice of the reset is out before the next link
	f.clock.Advance(time.Hour)
	if err := f.g.ForgotPassword(f.ctx, req); err != nil {
		t.Fatal(err)
	}
	// 3 links, the notice of the reset, and the new link.
	if sent := f.mailTo(adaEmail); len(sent) != 5 || !strings.Contains(sent[4].Text, "/reset?") {
		t.Errorf("%d emails an hour later, want 5, the last a reset link", len(sent))
	}
}

// The limit holds under concurrent requests on one account: 30 at once
// send exactly the limit.
func TestForgotPasswordSendLimitConcurrent(t *testing.T) {
	f := newMFAFixture(t, withLimits(guard.LinkLimits{PerAccount: 4, PerIP: 1000}))
	f.createUser(t, adaEmail, ownerPW)
	var wg sync.WaitGroup
	for i := range 30 {
		wg.Go(func() {
			req := guard.ForgotRequest{Tenant: tenantID, Email: adaEmail, IP: "203.0.113." + strconv.Itoa(i)}
			if err := f.g.ForgotPassword(f.ctx, req); err != nil {
				t.Errorf("ForgotPassword: %v", err)
			}
		})
	}
	wg.Wait()
	if n := len(f.mailTo(adaEmail)); n != 4 {
		t.Errorf("%d reset emails for 30 concurrent requests, want 4", n)
	}
}

// One client IP cannot send links to many accounts beyond PerIP.
func TestForgotPasswordSendLimitPerIP(t *testing.T) {
	f := newMFAFixture(t, withLimits(guard.LinkLimits{PerIP: 2}))
	emails := []string{"a@example.test", "b@example.test", "c@example.test"}
	for _, e := range emails {
		f.createUser(t, e, ownerPW)
		if err := f.g.ForgotPassword(f.ctx, guard.ForgotRequest{Tenant: tenantID, Email: e, IP: "198.51.100.9"}); err != nil {
			t.Fatal(err)
		}
		f.mailTo(e) // one after the other: a and b get the two links
	}
	got := 0
	for _, e := range emails {
		got += len(f.mailTo(e))
	}
	if got != 2 {
		t.Errorf("%d reset emails from one IP, want 2", got)
	}
	// Another IP is not held back.
	if err := f.g.ForgotPassword(f.ctx, guard.ForgotRequest{Tenant: tenantID, Email: "c@example.test", IP: "198.51.100.10"}); err != nil {
		t.Fatal(err)
	}
	if n := len(f.mailTo("c@example.test")); n != 1 {
		t.Errorf("%d emails to c after a request from another IP, want 1 (none from the first)", n)
	}
}

// Email-change links to one address are bounded whoever asks: an account
// cannot be used to flood someone else's inbox. A request over the limit
// is answered as if the link went out (the limit counts requests from
// every tenant, which a refusal would tell).
func TestEmailChangeSendLimit(t *testing.T) {
	f := newMFAFixture(t, withLimits(guard.LinkLimits{PerDestination: 2, PerAccount: 100, PerIP: 100}))
	victim := "victim@elsewhere.test"
	for i, e := range []string{"a@example.test", "b@example.test", "c@example.test"} {
		f.createUser(t, e, ownerPW)
		_, p := f.signIn(t, e, ownerPW)
		if err := f.g.RequestEmailChange(f.ctx, p, victim); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	if n := len(f.mailTo(victim)); n != 2 {
		t.Errorf("%d emails to the address, want 2", n)
	}
	if limited := reasons(f.events(t, audit.UserEmailChangeRequested))[guard.ReasonRateLimited]; limited != 1 {
		t.Errorf("%d user.email_change_requested events refused as rate_limited, want 1", limited)
	}
}

func TestLinkLimitsValidated(t *testing.T) {
	out := &outbox{}
	for _, l := range []guard.LinkLimits{{PerAccount: -1}, {PerDestination: -1}, {PerIP: -1}} {
		_, err := guard.New(guard.Config{Stores: newMem(), AuditKey: auditKey, Hasher: fastHasher,
			Recovery: guard.RecoveryConfig{Email: out, BaseURL: "https://app.example.test", Limits: l}})
		var pe *guard.PolicyError
		if !errors.As(err, &pe) || !strings.HasPrefix(pe.Field, "Recovery.Limits.") {
			t.Errorf("New with Limits %+v = %v, want a *PolicyError on Recovery.Limits", l, err)
		}
	}
	st := newMem()
	st.MFA.Rates = nil
	_, err := guard.New(guard.Config{Stores: st, AuditKey: auditKey, Hasher: fastHasher,
		Recovery: guard.RecoveryConfig{Email: out, BaseURL: "https://app.example.test"}})
	var pe *guard.PolicyError
	if !errors.As(err, &pe) || pe.Field != "Stores.MFA.Rates" {
		t.Errorf("New without a rate store = %v, want a *PolicyError on Stores.MFA.Rates", err)
	}
}

// RS-5: a change of password by any means kills the links outstanding for
// the account: a reset link, and an email change (which needs no session
// to confirm, so would otherwise outlive the sessions the change ends).
func TestPasswordChangeVoidsLinks(t *testing.T) {
	f := newMFAFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	reset := f.forgot(t, adaEmail)
	change := f.requestChange(t, p, "mallory@example.test")

	if err := f.g.ChangePassword(f.ctx, p, guard.PasswordChange{Current: ownerPW, New: "a different long passphrase"}); err != nil {
		t.Fatal(err)
	}
	if err := f.g.ResetPassword(f.ctx, guard.ResetRequest{Tenant: reset.Get("tenant"), UserID: reset.Get("user"),
		Token: reset.Get("token"), NewPassword: "the attacker's passphrase"}); !errors.Is(err, guard.ErrInvalidResetToken) {
		t.Errorf("a reset link from before a password change = %v, want ErrInvalidResetToken", err)
	}
	if err := f.g.ConfirmEmailChange(f.ctx, confirmOf(change)); !errors.Is(err, guard.ErrInvalidEmailChange) {
		t.Errorf("an email change from before a password change = %v, want ErrInvalidEmailChange", err)
	}
	if _, err := f.login(adaEmail, "a different long passphrase"); err != nil {
		t.Errorf("Login with the changed password: %v", err)
	}
}

func TestPasswordResetVoidsEmailChange(t *testing.T) {
	f := newMFAFixture(t)
	ada := f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	change := f.requestChange(t, p, "mallory@example.test")
	reset := f.forgot(t, adaEmail)
	if err := f.g.ResetPassword(f.ctx, guard.ResetRequest{Tenant: reset.Get("tenant"), UserID: reset.Get("user"),
		Token: reset.Get("token"), NewPassword: "a different long passphrase"}); err != nil {
		t.Fatal(err)
	}
	if err := f.g.ConfirmEmailChange(f.ctx, confirmOf(change)); !errors.Is(err, guard.ErrInvalidEmailChange) {
		t.Errorf("an email change from before a reset = %v, want ErrInvalidEmailChange", err)
	}
	f.wantEmail(t, ada.ID, adaEmail)
}
