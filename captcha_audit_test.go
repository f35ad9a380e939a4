package guard_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
)

// Audit of the CAPTCHA axis (Config.Captcha, Login's CAPTCHA after
// failures, the password-change and recovery paths): each test fails on
// the code as it stands because of the defect it names.

// humanCaptcha passes the token "human" and refuses any other.
var humanCaptcha = auth.CaptchaFunc(func(_ context.Context, token, _ string) error {
	if token != "human" {
		return &auth.CaptchaError{Reason: auth.CaptchaRejected}
	}
	return nil
})

// Severity: medium.
// Login hides whether a tenant exists: a made-up tenant gets
// ErrInvalidCredentials after the dummy hash, as a wrong password does
// (login.go, "so that it tells nothing of which tenants exist"). But the
// CAPTCHA is asked only in a tenant that exists: once a client IP has
// CaptchaAfterIP failures (10 by default, any tenant, any account),
// every login from it in a real tenant answers ErrCaptchaRequired, while
// one in a made-up tenant still answers ErrInvalidCredentials. One
// request per guessed tenant ID tells whether it exists, and since a
// login refused only for a missing token is given back (not counted),
// the probing never locks the address. The console shows it too ("please
// confirm you are human" versus "Incorrect email or password.").
// Expected: the same answer for a made-up tenant (the unknown tenant's
// attempt reserved and CAPTCHA-gated like an unknown account's).
func TestAuditCaptcha_CAPTCHA1_RequiredOnlyInExistingTenant(t *testing.T) {
	f := newFixture(t, func(c *guard.Config) { c.Captcha = humanCaptcha })
	const probe = "198.51.100.77"
	login := func(tenant, email string) error {
		_, err := f.g.Login(f.ctx, guard.LoginRequest{Tenant: tenant, Email: email, Password: "a wrong password",
			IP: probe, UserAgent: "probe"})
		return err
	}
	// Ten failures from the address, on ten made-up accounts of the
	// real tenant (a spray, or simply the attacker's own typos).
	for i := range 10 {
		if err := login(tenantID, fmt.Sprintf("nobody%d@example.test", i)); !errors.Is(err, guard.ErrInvalidCredentials) {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	// Now probe tenant IDs, one request each, many times over.
	for i := range 20 {
		existing := login(tenantID, "probe@example.test")
		madeUp := login("no-such-tenant", "probe@example.test")
		if errors.Is(existing, guard.ErrCaptchaRequired) != errors.Is(madeUp, guard.ErrCaptchaRequired) {
			t.Fatalf("probe %d: Login in the existing tenant = %v, in a made-up one = %v: the CAPTCHA tells which tenant exists",
				i, existing, madeUp)
		}
	}
}

// Severity: medium.
// The README and Config.CaptchaAfter promise a CAPTCHA "after 3 failures
// of an account" (failures forgotten 15 minutes after the last one), and
// the lock after 5 (AccountLimit.Max). needsCaptcha reads the throttle
// count, which a lock sets back to zero (auth.Limit.Apply): so after
// each lock the next CaptchaAfter guesses are evaluated without any
// CAPTCHA, though the account failed 5 times a minute earlier. An
// attacker who never solves a CAPTCHA gets 3 evaluated guesses, then
// sends 2 junk tokens (a refused token counts as a failure) to start a
// lock, waits it out and starts again: 3 guesses per lock (1, 2, 4, 8,
// 15 minutes, then the cycle restarts), instead of 3 until the account's
// failures are forgotten. Expected: a login of an account locked and not
// yet forgotten (Reservation.Lockouts > 0) needs a CAPTCHA, the same for
// the client IP's count.
func TestAuditCaptcha_CAPTCHA2_LockResetsCaptchaRequirement(t *testing.T) {
	f := newFixture(t, func(c *guard.Config) { c.Captcha = humanCaptcha })
	f.createUser(t, "alice@example.com", ownerPW)
	ip := ""
	login := func(token string) error {
		_, err := f.g.Login(f.ctx, guard.LoginRequest{Tenant: tenantID, Email: "alice@example.com", Password: "a wrong guess",
			IP: ip, UserAgent: "bot", Captcha: token})
		return err
	}
	evaluated := func() int { return reasons(f.events(t, audit.LoginFailed))[guard.ReasonBadPassword] }
	wait := guard.DefaultAccountLimit.LockFor
	for cycle := range 3 {
		// A fresh address per cycle (a botnet has many), so that only
		// the account's count is at play.
		ip = fmt.Sprintf("203.0.113.%d", 10+cycle)
		// Guess without a token until the CAPTCHA is asked.
		for range 10 {
			if err := login(""); errors.Is(err, guard.ErrCaptchaRequired) {
				break
			} else if !errors.Is(err, guard.ErrInvalidCredentials) {
				t.Fatalf("cycle %d: %v", cycle, err)
			}
		}
		// Junk tokens up to the lock.
		for range guard.DefaultAccountLimit.Max {
			if n := len(f.events(t, audit.LoginLocked)); n > cycle {
				break
			}
			if err := login("junk"); !errors.Is(err, guard.ErrCaptchaRequired) && !errors.Is(err, guard.ErrInvalidCredentials) {
				t.Fatalf("cycle %d, junk token: %v", cycle, err)
			}
		}
		if n := len(f.events(t, audit.LoginLocked)); n != cycle+1 {
			t.Fatalf("cycle %d: %d login.locked events, want %d", cycle, n, cycle+1)
		}
		f.clock.Advance(wait + time.Second)
		wait *= 2
	}
	if n := evaluated(); n > 3 {
		t.Errorf("%d wrong passwords evaluated without a solved CAPTCHA over 3 locks, want at most CaptchaAfter (3): "+
			"each lock sets the count that asks for a CAPTCHA back to zero", n)
	}
}

// Severity: low.
// Config.Captcha asks a CAPTCHA on change-password (always: its current
// password is a guess a bot holding a session could repeat) and on login
// after CaptchaAfter failures. Reauthenticate (the step-up) checks the
// same password, counts in the same throttle (reserve), yet never asks a
// CAPTCHA, whatever the account's or the address's count: after three
// failures, when Login and ChangePassword both refuse without a solved
// CAPTCHA, the step-up still evaluates every guess. Expected: Proof
// carries a CAPTCHA token and Reauthenticate asks it as Login does
// (needsCaptcha).
func TestAuditCaptcha_CAPTCHA3_StepUpNeverAsksCaptcha(t *testing.T) {
	f := newMFAFixture(t, func(c *guard.Config) { c.Captcha = humanCaptcha })
	f.createUser(t, adaEmail, ownerPW)
	res, p := f.signIn(t, adaEmail, ownerPW)
	// Three wrong guesses through the step-up: the account's count is
	// now where Login asks for a CAPTCHA.
	for i := range 3 {
		if _, _, err := f.g.Reauthenticate(f.ctx, p, res.Token, guard.Proof{Password: fmt.Sprintf("guess %d", i)}); !errors.Is(err, guard.ErrInvalidCredentials) {
			t.Fatalf("guess %d: %v", i, err)
		}
	}
	if _, err := f.g.Login(f.ctx, guard.LoginRequest{Tenant: tenantID, Email: adaEmail, Password: "guess x", IP: "203.0.113.5", UserAgent: "test"}); !errors.Is(err, guard.ErrCaptchaRequired) {
		t.Fatalf("Login after 3 failures without a token = %v, want ErrCaptchaRequired", err)
	}
	before := reasons(f.events(t, audit.Reauthenticated))[guard.ReasonBadPassword]
	_, _, err := f.g.Reauthenticate(f.ctx, p, res.Token, guard.Proof{Password: "guess 4"})
	if !errors.Is(err, guard.ErrCaptchaRequired) {
		t.Errorf("Reauthenticate after 3 failures, no CAPTCHA = %v, want ErrCaptchaRequired as Login answers", err)
	}
	if n := reasons(f.events(t, audit.Reauthenticated))[guard.ReasonBadPassword] - before; n != 0 {
		t.Errorf("the step-up evaluated %d more password guesses past CaptchaAfter without a CAPTCHA", n)
	}
}

// Severity: low.
// A refused CAPTCHA is on record everywhere else it is asked: Login
// (login.failed, reason captcha), ForgotPassword (password.reset_requested)
// and ResetPassword (password.reset). ChangePassword returns
// ErrCaptchaRequired before anything is recorded: a session (perhaps a
// stolen cookie) driving the change-password form with a bot leaves no
// trace, while each of its other refusals (bad_input, locked,
// bad_password) is a refused password.changed. Expected: a refused
// password.changed event with reason captcha.
func TestAuditCaptcha_CAPTCHA4_ChangePasswordRefusalUnrecorded(t *testing.T) {
	f := newMFAFixture(t, func(c *guard.Config) { c.Captcha = humanCaptcha })
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	for _, token := range []string{"", "bot"} {
		err := f.g.ChangePassword(f.ctx, p, guard.PasswordChange{Current: "a guess", New: "an entirely new passphrase", Captcha: token})
		if !errors.Is(err, guard.ErrCaptchaRequired) {
			t.Fatalf("ChangePassword with CAPTCHA token %q = %v, want ErrCaptchaRequired", token, err)
		}
	}
	if r := reasons(f.events(t, audit.PasswordChanged)); r[guard.ReasonCaptcha] != 2 {
		t.Errorf("password.changed reasons %v after two refused CAPTCHAs, want two %q", r, guard.ReasonCaptcha)
	}
}
