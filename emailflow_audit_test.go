package guard_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/mfa"
)

// Audit of the mailed-link flows (password reset, invitation, email
// change): each test fails on the code as it stands because of the defect
// it names.

// breachHook is a BreachCheck that runs during, once, in the next check
// (a reset makes it between spending its link and hashing the new
// password, or giving the link back if the password is refused) and
// answers what during returns; other checks find nothing breached.
type breachHook struct {
	mu     sync.Mutex
	during func() (breached bool)
}

func (b *breachHook) Breached(context.Context, string) (bool, error) {
	b.mu.Lock()
	fn := b.during
	b.during = nil
	b.mu.Unlock()
	if fn == nil {
		return false, nil
	}
	return fn(), nil
}

func (b *breachHook) set(fn func() bool) { b.mu.Lock(); b.during = fn; b.mu.Unlock() }

// putHook runs a function once, just before the next PutCode of a
// transaction whose name starts with prefix.
type putHook struct {
	mfa.CodeStore
	mu     sync.Mutex
	prefix string
	before func()
}

func (h *putHook) set(prefix string, fn func()) {
	h.mu.Lock()
	h.prefix, h.before = prefix, fn
	h.mu.Unlock()
}

func (h *putHook) PutCode(ctx context.Context, c mfa.Code) error {
	h.mu.Lock()
	var fn func()
	if h.before != nil && strings.HasPrefix(c.Txn, h.prefix) {
		fn, h.before = h.before, nil
	}
	h.mu.Unlock()
	if fn != nil {
		fn()
	}
	return h.CodeStore.PutCode(ctx, c)
}

// Severity: medium.
// A deactivation voids the user's mailed links, and "a reactivation does
// not bring them back" (DeactivateUser); ExpirePassword voids them too ("a
// link asked for before the mark may be in the wrong hands"). But
// ResetPassword spends the link before it checks the new password, and
// gives it back (PutCode of the code it read, recovery.go giveBack) when
// the password is refused: a voiding in between finds nothing to void,
// and the link given back afterwards survives it. Whoever holds a stolen
// link keeps it alive through the deactivation or the expiry by
// submitting refused passwords (the breach check is a network round trip:
// a wide window), and sets the password with it afterwards. The link's
// binding (address, password hash) does not see either change. Expected:
// a link outstanding when the links are voided never works again.
func TestAuditEmailflow_RefusedResetRevivesVoidedLink(t *testing.T) {
	sys := guard.System("admin")
	for _, c := range []struct {
		name        string
		void, after func(f *mfaFixture, id string) error
	}{
		{"Deactivation",
			func(f *mfaFixture, id string) error { return f.g.DeactivateUser(f.ctx, sys, tenantID, id) },
			func(f *mfaFixture, id string) error { return f.g.ReactivateUser(f.ctx, sys, tenantID, id) }},
		{"ExpirePassword",
			func(f *mfaFixture, id string) error { return f.g.ExpirePassword(f.ctx, sys, tenantID, id) },
			func(*mfaFixture, string) error { return nil }},
	} {
		t.Run(c.name, func(t *testing.T) {
			hook := &breachHook{}
			f := newMFAFixture(t, func(c *guard.Config) { c.BreachCheck = hook })
			ada := f.createUser(t, adaEmail, ownerPW)
			link := f.forgot(t, adaEmail)
			hook.set(func() bool {
				if err := c.void(f, ada.ID); err != nil {
					t.Error(err)
				}
				return true // the new password is refused: the link is given back
			})
			var pe *auth.PolicyError
			if err := f.g.ResetPassword(f.ctx, resetTo(link, "a breached passphrase 123")); !errors.As(err, &pe) {
				t.Fatalf("reset to a breached password = %v, want a PolicyError", err)
			}
			if err := c.after(f, ada.ID); err != nil {
				t.Fatal(err)
			}
			if err := f.g.ResetPassword(f.ctx, resetTo(link, "the intruder's own passphrase")); !errors.Is(err, guard.ErrInvalidResetToken) {
				t.Errorf("ResetPassword with a link outstanding when the links were voided = %v, want ErrInvalidResetToken", err)
			}
			if _, err := f.login(adaEmail, ownerPW); err != nil {
				t.Errorf("the user's password no longer signs in: %v", err)
			}
		})
	}
}

// Severity: low.
// DeactivateUser voids the user's mailed links, "a reactivation does not
// bring them back". A link being made while the deactivation runs (the
// user read active, then the deactivation voids the links, then the link
// is stored) is not voided, and after a reactivation it works: a reset
// link (ForgotPassword), an invitation (SendInvitation), an email-change
// link (RequestEmailChange). Password and email changes close the same
// window by binding the link to the password and the address read
// (linkBinding), and say so ("even if it was asked for while the change
// was being made"); nothing binds a link to the user's status, and the
// flows do not read the user again once the link is stored. Expected: a
// link stored while the user is being deactivated never works.
func TestAuditEmailflow_LinkStoredDuringDeactivationSurvives(t *testing.T) {
	sys := guard.System("admin")
	for _, kind := range []string{"ForgotPassword", "SendInvitation", "RequestEmailChange"} {
		t.Run(kind, func(t *testing.T) {
			codes := &putHook{}
			f := newMFAFixture(t, func(c *guard.Config) {
				codes.CodeStore = c.Stores.MFA.Codes
				c.Stores.MFA.Codes = codes
			})
			ada := f.createUser(t, adaEmail, ownerPW)
			deactivate := func() {
				if err := f.g.DeactivateUser(f.ctx, sys, tenantID, ada.ID); err != nil {
					t.Error(err)
				}
			}
			var use func() error
			switch kind {
			case "ForgotPassword":
				codes.set("reset:", deactivate)
				if err := f.g.ForgotPassword(f.ctx, guard.ForgotRequest{Tenant: tenantID, Email: adaEmail, IP: "198.51.100.9"}); err != nil {
					t.Fatal(err)
				}
				link := lastResetLink(t, f.mailTo(adaEmail))
				use = func() error { return f.g.ResetPassword(f.ctx, resetTo(link, "the intruder's own passphrase")) }
			case "SendInvitation":
				codes.set("reset:", deactivate)
				if err := f.g.SendInvitation(f.ctx, sys, tenantID, ada.ID); err != nil {
					t.Fatal(err)
				}
				link := lastResetLink(t, f.mailTo(adaEmail))
				use = func() error { return f.g.ResetPassword(f.ctx, resetTo(link, "the intruder's own passphrase")) }
			case "RequestEmailChange":
				_, p := f.signIn(t, adaEmail, ownerPW)
				codes.set("email:", deactivate)
				if err := f.g.RequestEmailChange(f.ctx, p, newAdaEmail); err != nil {
					t.Fatal(err)
				}
				sent := f.mailTo(newAdaEmail)
				if len(sent) != 1 {
					t.Fatalf("%d mails to the new address, want the link", len(sent))
				}
				link := changeLink(t, sent[0])
				use = func() error { return f.g.ConfirmEmailChange(f.ctx, confirmOf(link)) }
			}
			if u, err := f.g.User(f.ctx, sys, tenantID, ada.ID); err != nil || u.Status != auth.StatusDeactivated {
				t.Fatalf("user after the deactivation: %+v, %v; want deactivated", u, err)
			}
			if err := f.g.ReactivateUser(f.ctx, sys, tenantID, ada.ID); err != nil {
				t.Fatal(err)
			}
			if err := use(); err == nil {
				t.Errorf("a %s link stored while the user was being deactivated works after the reactivation", kind)
			}
		})
	}
}

// Severity: low.
// A reset link verifies an address the user set themselves
// (User.EmailUnverified) and the password.reset event says so
// (email_verified). ResetPassword marks the address verified before it
// records the reset, and when the record fails it gives the link back and
// returns ErrUnavailable ("the password unchanged") but leaves the address
// verified: the retry then finds it verified, and its password.reset event
// has no email_verified. The verification, which decides whether single
// sign-on may match the account by the address (CompleteSSO), happened
// and is on record nowhere. Expected: either the failed reset leaves the
// address unverified, or the verification is on record.
func TestAuditEmailflow_ResetVerifiesAddressUnrecorded(t *testing.T) {
	fa := &failingAudit{}
	f := newMFAFixture(t, func(c *guard.Config) {
		fa.Audit = c.Stores.Audit.(*memstoreAudit)
		c.Stores.Audit = fa
	})
	ada := f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	if err := f.g.ChangeEmail(f.ctx, p, newAdaEmail); err != nil {
		t.Fatal(err)
	}
	if u, err := f.g.User(f.ctx, guard.System("test"), tenantID, ada.ID); err != nil || !u.EmailUnverified {
		t.Fatalf("after ChangeEmail: %+v, %v; want the new address unverified", u, err)
	}
	link := f.forgot(t, newAdaEmail)
	const newPW = "an entirely new passphrase"
	fa.set(true)
	err := f.g.ResetPassword(f.ctx, resetTo(link, newPW))
	fa.set(false)
	if !errors.Is(err, guard.ErrUnavailable) {
		t.Fatalf("ResetPassword with the audit log failing = %v, want ErrUnavailable", err)
	}
	u, err := f.g.User(f.ctx, guard.System("test"), tenantID, ada.ID)
	if err != nil {
		t.Fatal(err)
	}
	unverifiedAfterFailure := u.EmailUnverified
	if err := f.g.ResetPassword(f.ctx, resetTo(link, newPW)); err != nil {
		t.Fatalf("the link given back after the failure: %v", err)
	}
	recorded := false
	for _, e := range f.events(t, audit.PasswordReset) {
		if e.Outcome == audit.Success && e.Meta["email_verified"] == "true" {
			recorded = true
		}
	}
	if !unverifiedAfterFailure && !recorded {
		t.Error("a reset that failed to be recorded verified the address, and no password.reset event says email_verified")
	}
}

// Severity: low.
// A refused CAPTCHA is recorded on login (login.failed, reason captcha),
// and every refusal of a reset link for a user who exists is on record;
// but ForgotPassword and ResetPassword return ErrCaptchaRequired before
// anything is recorded: a bot hammering the forgot-password form (or a
// stolen link) without solving the CAPTCHA leaves no trace in the audit
// log (SECURITY-CHECKLIST AU-1: a reset request produces an entry).
// Expected: a refused password.reset_requested / password.reset event
// with reason captcha.
func TestAuditEmailflow_CaptchaRefusalsUnrecorded(t *testing.T) {
	captcha := auth.CaptchaFunc(func(_ context.Context, token, _ string) error {
		if token != "human" {
			return &auth.CaptchaError{Reason: auth.CaptchaRejected}
		}
		return nil
	})
	f := newMFAFixture(t, func(c *guard.Config) { c.Captcha = captcha })
	ada := f.createUser(t, adaEmail, ownerPW)
	t.Run("ForgotPassword", func(t *testing.T) {
		err := f.g.ForgotPassword(f.ctx, guard.ForgotRequest{Tenant: tenantID, Email: adaEmail, IP: "198.51.100.9", Captcha: "bot"})
		if !errors.Is(err, guard.ErrCaptchaRequired) {
			t.Fatalf("ForgotPassword with a refused CAPTCHA = %v, want ErrCaptchaRequired", err)
		}
		f.g.Close()
		if r := reasons(f.events(t, audit.PasswordResetRequested)); r[guard.ReasonCaptcha] != 1 {
			t.Errorf("password.reset_requested reasons %v after a refused CAPTCHA, want one %q", r, guard.ReasonCaptcha)
		}
	})
	t.Run("ResetPassword", func(t *testing.T) {
		if err := f.g.ForgotPassword(f.ctx, guard.ForgotRequest{Tenant: tenantID, Email: adaEmail, IP: "198.51.100.9", Captcha: "human"}); err != nil {
			t.Fatal(err)
		}
		req := resetTo(lastResetLink(t, f.mailTo(adaEmail)), "an entirely new passphrase")
		req.Captcha = "bot"
		if err := f.g.ResetPassword(f.ctx, req); !errors.Is(err, guard.ErrCaptchaRequired) {
			t.Fatalf("ResetPassword with a refused CAPTCHA = %v, want ErrCaptchaRequired", err)
		}
		var got []string
		for _, e := range f.events(t, audit.PasswordReset) {
			if e.Target == ada.ID {
				got = append(got, e.Reason)
			}
		}
		if len(got) != 1 || got[0] != guard.ReasonCaptcha {
			t.Errorf("password.reset reasons %q after a refused CAPTCHA, want one %q", got, guard.ReasonCaptcha)
		}
	})
}

// Severity: low.
// user.invited means "a set-password link was sent" (audit/actions.go),
// and SendInvitation records it before it mails the link; when the mail
// fails it returns ErrUnavailable and records nothing more, so the log
// says the user was invited when no invitation went out (ForgotPassword
// records the same failure: password.reset_requested, reason
// send_failed). Expected: a failed send is on record as such.
func TestAuditEmailflow_FailedInvitationRecordedAsSent(t *testing.T) {
	fm := &failingMail{outbox: &outbox{}}
	f := newMFAFixture(t, func(c *guard.Config) { c.Recovery.Email = fm })
	u, err := f.g.CreateUser(f.ctx, guard.System("test"), guard.NewUser{Tenant: tenantID, Email: "new@example.test", Name: "New"})
	if err != nil {
		t.Fatal(err)
	}
	fm.down.Store(true)
	if err := f.g.SendInvitation(f.ctx, guard.System("admin"), tenantID, u.ID); !errors.Is(err, guard.ErrUnavailable) {
		t.Fatalf("SendInvitation with mail down = %v, want ErrUnavailable", err)
	}
	evs := f.events(t, audit.UserInvited)
	if len(evs) == 0 {
		t.Fatal("no user.invited event at all")
	}
	if last := evs[len(evs)-1]; last.Outcome != audit.Failure {
		t.Errorf("the last user.invited event after a failed send is %s (reason %q), want a failure: no link was sent", last.Outcome, last.Reason)
	}
}

// Severity: medium.
// The mailed-link calls check the client IP as the sign-in calls do, but
// not the user agent, which Login refuses when malformed (*InputError:
// checkText). They record it as given, and the audit log refuses an
// event that is not valid UTF-8: so for a made-up link with a User-Agent
// header of one byte 0xff (net/http passes it through), ResetPassword and
// ConfirmEmailChange answer ErrUnavailable (503) for a user who exists,
// active or not (the refusal cannot be recorded), and "invalid link" for
// an unknown one: whoever holds a user ID learns whether it is an account
// of the tenant, the oracle TestAuditEnum_ResetPasswordOverlongRevealsUser
// closed for over-long passwords; nothing is recorded. ForgotPassword
// answers nil and then drops the request in the background: no link, and
// no event. Expected: malformed input is an *InputError (or made valid)
// the same for every user ID, before anything else, as Login does.
func TestAuditEmailflow_MalformedUserAgentRevealsUser(t *testing.T) {
	f := newMFAFixture(t)
	ada := f.createUser(t, adaEmail, ownerPW)
	const badUA = "\xff"
	unknownID := "0123456789abcdef0123456789abcdef"
	for name, try := range map[string]func(id string) error{
		"ResetPassword": func(id string) error {
			return f.g.ResetPassword(f.ctx, guard.ResetRequest{Tenant: tenantID, UserID: id, Token: bogusToken,
				NewPassword: "an entirely new passphrase", IP: "198.51.100.9", UserAgent: badUA})
		},
		"ConfirmEmailChange": func(id string) error {
			return f.g.ConfirmEmailChange(f.ctx, guard.EmailChangeConfirm{Tenant: tenantID, UserID: id, Email: newAdaEmail,
				Token: bogusToken, IP: "198.51.100.9", UserAgent: badUA})
		},
	} {
		t.Run(name, func(t *testing.T) {
			existing, unknown := try(ada.ID), try(unknownID)
			if errors.Is(existing, guard.ErrUnavailable) != errors.Is(unknown, guard.ErrUnavailable) ||
				errors.Is(existing, guard.ErrInvalidResetToken) != errors.Is(unknown, guard.ErrInvalidResetToken) ||
				errors.Is(existing, guard.ErrInvalidEmailChange) != errors.Is(unknown, guard.ErrInvalidEmailChange) {
				t.Errorf("made-up link with a malformed User-Agent: for an existing user %v, for an unknown one %v (want the same answer)", existing, unknown)
			}
			if errors.Is(existing, guard.ErrUnavailable) {
				t.Errorf("malformed User-Agent answered %v, want a typed input error", existing)
			}
		})
	}
	t.Run("ForgotPassword", func(t *testing.T) {
		err := f.g.ForgotPassword(f.ctx, guard.ForgotRequest{Tenant: tenantID, Email: adaEmail, IP: "198.51.100.9", UserAgent: badUA})
		var ie *guard.InputError
		if errors.As(err, &ie) {
			return // refused up front: fine
		}
		if err != nil {
			t.Fatalf("ForgotPassword with a malformed User-Agent = %v", err)
		}
		if n, evs := len(f.mailTo(adaEmail)), f.events(t, audit.PasswordResetRequested); n == 0 && len(evs) == 0 {
			t.Error("ForgotPassword with a malformed User-Agent answered nil, then sent no link and recorded nothing")
		}
	})
}

// Severity: low.
// ResetPassword gives the link back on every failure before the new
// password is set ("a store failure before the new password is set ...
// gives the link back"; a refused password too), but not when hashing the
// new password fails: the hasher bounds concurrent hashing and returns
// ctx.Err() when the request's context ends while it waits for a slot
// (a client that gave up, a server's deadline under a login flood that
// fills the slots), and ResetPassword returns that error as it is, the
// link spent for good and the password unchanged. Here the client goes
// away during the breach check, the last step before the hash. Expected:
// the link is given back (and the error is typed), so the user can try
// again with it.
func TestAuditEmailflow_HashFailureSpendsLink(t *testing.T) {
	hook := &breachHook{}
	f := newMFAFixture(t, func(c *guard.Config) { c.BreachCheck = hook })
	f.createUser(t, adaEmail, ownerPW)
	link := f.forgot(t, adaEmail)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	hook.set(func() bool { cancel(); return false })
	const newPW = "an entirely new passphrase"
	err := f.g.ResetPassword(ctx, resetTo(link, newPW))
	if err == nil {
		t.Fatal("ResetPassword whose client went away before the hash succeeded")
	}
	t.Logf("ResetPassword whose client went away: %v", err)
	if err := f.g.ResetPassword(f.ctx, resetTo(link, newPW)); err != nil {
		t.Errorf("the link after a reset that changed nothing: %v, want it usable", err)
	}
}

// Severity: low.
// A reset link "no longer works once the user's email or password
// changes" (ForgotPassword), and a password or address change voids the
// links. ResetPassword compares the link's binding with the user as read
// before it spends the link, then checks the new password (the breach
// check is a network round trip), hashes it, and sets it unconditionally:
// a ChangePassword or ChangeEmail that completes in between (its voiding
// finds the link already spent) is overwritten by the reset, which
// reports success. The user changed their password (or moved the account
// off a mailbox they no longer trust) and got nil, yet the password set
// through the old link is the one that signs in. Expected: the reset's
// write is conditional on the account being as the link was bound to (a
// compare-and-set on the password hash, as RehashPassword does, and on
// the address), so the reset is refused (password_changed,
// email_changed) and the user's change stands.
func TestAuditEmailflow_ChangeDuringResetOverwritten(t *testing.T) {
	const (
		chosen  = "violet kettle morning drizzle"
		resetPW = "the old link's passphrase"
	)
	for _, kind := range []string{"ChangePassword", "ChangeEmail"} {
		t.Run(kind, func(t *testing.T) {
			hook := &breachHook{}
			f := newMFAFixture(t, manySessions, func(c *guard.Config) { c.BreachCheck = hook })
			f.createUser(t, adaEmail, ownerPW)
			_, p := f.signIn(t, adaEmail, ownerPW)
			link := f.forgot(t, adaEmail)
			signInWith, want := adaEmail, ownerPW
			hook.set(func() bool {
				// The user's change lands while the reset is under way.
				var err error
				if kind == "ChangePassword" {
					err = f.g.ChangePassword(f.ctx, p, guard.PasswordChange{Current: ownerPW, New: chosen})
					want = chosen
				} else {
					err = f.g.ChangeEmail(f.ctx, p, newAdaEmail)
					signInWith = newAdaEmail
				}
				if err != nil {
					t.Errorf("%s during the reset: %v", kind, err)
				}
				return false
			})
			if err := f.g.ResetPassword(f.ctx, resetTo(link, resetPW)); err == nil {
				t.Errorf("ResetPassword with a link the user's %s voided while it ran = nil, want ErrInvalidResetToken", kind)
			}
			if _, err := f.login(signInWith, want); err != nil {
				t.Errorf("after the user's %s (which answered nil) and the reset, the user's password no longer signs in: %v", kind, err)
			}
		})
	}
}
