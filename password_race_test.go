package guard_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/session"
)

// pausingUsers holds the next UserByEmail, once armed, after its read and
// until released: a sign-in that read the user then waits, so that a
// test can change the password in between (the window a real sign-in
// has while argon2id checks the old password).
type pausingUsers struct {
	auth.UserStore
	armed   atomic.Bool
	read    chan struct{}
	release chan struct{}
}

func (p *pausingUsers) UserByEmail(ctx context.Context, tenant, email string) (auth.User, error) {
	u, err := p.UserStore.UserByEmail(ctx, tenant, email)
	if p.armed.CompareAndSwap(true, false) {
		close(p.read)
		<-p.release
	}
	return u, err
}

// pausedLogin starts a sign-in with password, holds it once it has read
// the user, and returns a function that lets it go on and gives its
// result.
func pausedLogin(f *fixture, p *pausingUsers, password string) func() (guard.LoginResult, error) {
	p.read, p.release = make(chan struct{}), make(chan struct{})
	p.armed.Store(true)
	type result struct {
		res guard.LoginResult
		err error
	}
	done := make(chan result, 1)
	go func() {
		res, err := f.g.Login(f.ctx, guard.LoginRequest{Tenant: tenantID, Email: adaEmail, Password: password, IP: "198.51.100.66", UserAgent: "other"})
		done <- result{res, err}
	}()
	<-p.read
	return func() (guard.LoginResult, error) {
		close(p.release)
		r := <-done
		return r.res, r.err
	}
}

// A sign-in that proved the old password while the password was changed,
// reset or marked compromised gets no session (nor a pending sign-in):
// the change ended the user's sessions, and a session created after it
// must not outlive it. Each refusal is a login.failed with reason
// password_changed. Found by a check-then-act audit: the sign-in re-read
// only the user's status.
func TestSignInRacingPasswordChange(t *testing.T) {
	const next = "an entirely new passphrase"
	for _, tc := range []struct {
		name   string
		mfa    bool
		change func(t *testing.T, f *mfaFixture, u guard.User, secret string)
	}{
		{"ChangePassword", false, func(t *testing.T, f *mfaFixture, u guard.User, secret string) {
			_, p := f.signIn(t, adaEmail, ownerPW)
			if err := f.g.ChangePassword(f.ctx, p, guard.PasswordChange{Current: ownerPW, New: next}); err != nil {
				t.Fatal(err)
			}
		}},
		{"ExpirePassword", false, func(t *testing.T, f *mfaFixture, u guard.User, secret string) {
			if err := f.g.ExpirePassword(f.ctx, guard.System("security"), tenantID, u.ID); err != nil {
				t.Fatal(err)
			}
		}},
		{"ChangePasswordWithMFA", true, func(t *testing.T, f *mfaFixture, u guard.User, secret string) {
			p := signInTOTP(t, f, secret)
			if err := f.g.ChangePassword(f.ctx, p, guard.PasswordChange{Current: ownerPW, New: next}); err != nil {
				t.Fatal(err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			users := &pausingUsers{}
			f := newMFAFixture(t, func(c *guard.Config) {
				c.Defaults = guard.Policy{SessionLimit: 5}
				users.UserStore = c.Stores.Users
				c.Stores.Users = users
			})
			u := f.createUser(t, adaEmail, ownerPW)
			secret := ""
			if tc.mfa {
				_, p := f.signIn(t, adaEmail, ownerPW)
				secret, _ = f.enrolTOTP(t, p)
			}
			f.clock.Advance(time.Minute)
			finish := pausedLogin(f.fixture, users, ownerPW)
			tc.change(t, f, u, secret)
			res, err := finish()
			if !errors.Is(err, guard.ErrInvalidCredentials) || res.Token != "" || res.Pending != nil {
				t.Fatalf("the sign-in that proved the old password: %+v, %v; want ErrInvalidCredentials, no session", res, err)
			}
			if r := reasons(f.events(t, audit.LoginFailed)); r[guard.ReasonPasswordChanged] != 1 {
				t.Errorf("login.failed reasons %v, want one %s", r, guard.ReasonPasswordChanged)
			}
		})
	}
}

// A pending sign-in started with the old password ends when the password
// is changed or reset before its second factor: the right TOTP code then
// gives ErrLoginExpired, recorded as mfa.failed password_changed.
func TestPendingSignInEndsWithPasswordChange(t *testing.T) {
	f := newMFAFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	secret, _ := f.enrolTOTP(t, p)
	f.clock.Advance(time.Minute)
	pend := f.pending(t, adaEmail, ownerPW) // the attacker, with the password

	f.clock.Advance(time.Minute)
	p = signInTOTP(t, f, secret)
	if err := f.g.ChangePassword(f.ctx, p, guard.PasswordChange{Current: ownerPW, New: "an entirely new passphrase"}); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(31 * time.Second)
	res, err := f.complete(guard.MethodTOTP, pend.Token, f.code(t, secret))
	if !errors.Is(err, guard.ErrLoginExpired) || res.Token != "" {
		t.Fatalf("completing a sign-in begun with the old password: %+v, %v; want ErrLoginExpired", res, err)
	}
	if r := reasons(f.events(t, audit.MFAFailed)); r[guard.ReasonPasswordChanged] != 1 {
		t.Errorf("mfa.failed reasons %v, want one %s", r, guard.ReasonPasswordChanged)
	}
	// A pending sign-in begun after the change goes through.
	pend = f.pending(t, adaEmail, "an entirely new passphrase")
	f.clock.Advance(31 * time.Second)
	if _, err := f.complete(guard.MethodTOTP, pend.Token, f.code(t, secret)); err != nil {
		t.Fatalf("a sign-in begun after the change: %v", err)
	}
}

// signInTOTP signs Ada in with her password and a TOTP code from secret
// (a step later than any code used before) and returns her principal.
func signInTOTP(t *testing.T, f *mfaFixture, secret string) guard.Principal {
	t.Helper()
	f.clock.Advance(31 * time.Second)
	pend := f.pending(t, adaEmail, ownerPW)
	res, err := f.complete(guard.MethodTOTP, pend.Token, f.code(t, secret))
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.g.Authenticate(f.ctx, res.Token)
	if err != nil {
		t.Fatal(err)
	}
	p.IP, p.UserAgent = "203.0.113.5", "test"
	return p
}

// hookedDelete runs before, once, when DeleteUser reaches the user store:
// between the deletion's first ending of the sessions and the record's
// removal.
type hookedDelete struct {
	auth.UserStore
	before func()
}

func (h *hookedDelete) DeleteUser(ctx context.Context, tenant, id string) error {
	if f := h.before; f != nil {
		h.before = nil
		f()
	}
	return h.UserStore.DeleteUser(ctx, tenant, id)
}

// A user reactivated, and signed in, while they were being deleted keeps
// no session: the deletion ends the user's sessions again once the record
// is gone (found by a check-then-act audit: the session outlived its
// user).
func TestDeleteRacingReactivation(t *testing.T) {
	users := &hookedDelete{}
	f := newFixture(t, func(c *guard.Config) {
		users.UserStore = c.Stores.Users
		c.Stores.Users = users
	})
	u := f.createUser(t, adaEmail, ownerPW)
	sys := guard.System("admin")
	var token string
	users.before = func() {
		if err := f.g.ReactivateUser(f.ctx, sys, tenantID, u.ID); err != nil {
			t.Error(err)
			return
		}
		res, err := f.login(adaEmail, ownerPW)
		if err != nil {
			t.Errorf("the sign-in between the steps of the deletion: %v", err)
			return
		}
		token = res.Token
	}
	if err := f.g.DeleteUser(f.ctx, sys, tenantID, u.ID); err != nil {
		t.Fatal(err)
	}
	if token == "" {
		t.Fatal("the racing sign-in did not happen")
	}
	if _, err := f.g.Authenticate(f.ctx, token); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("the session of a user signed in while being deleted: %v, want ErrUnauthenticated", err)
	}
}

// hookedCreate runs before, once, when a session is about to be created.
type hookedCreate struct {
	session.Store
	before func()
}

func (h *hookedCreate) Create(ctx context.Context, s session.Session, lim session.Limit) ([]session.Session, error) {
	if f := h.before; f != nil {
		h.before = nil
		f()
	}
	return h.Store.Create(ctx, s, lim)
}

// A password-only sign-in during which the user confirmed their first
// second factor gets no session: confirming a factor ends the user's
// other sessions, and this one, not yet created then, must not outlive
// it (login.failed, reason factor_added). Signing in again asks for the
// factor.
func TestSignInRacingFactorEnrolment(t *testing.T) {
	sessions := &hookedCreate{}
	f := newMFAFixture(t, manySessions, func(c *guard.Config) {
		sessions.Store = c.Stores.Sessions
		c.Stores.Sessions = sessions
	})
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	sessions.before = func() { f.enrolTOTP(t, p) }
	res, err := f.login(adaEmail, ownerPW)
	if !errors.Is(err, guard.ErrInvalidCredentials) || res.Token != "" {
		t.Fatalf("a password-only sign-in while the first factor was confirmed: %+v, %v; want ErrInvalidCredentials", res, err)
	}
	if r := reasons(f.events(t, audit.LoginFailed)); r[guard.ReasonFactorAdded] != 1 {
		t.Errorf("login.failed reasons %v, want one %s", r, guard.ReasonFactorAdded)
	}
	if pend := f.pending(t, adaEmail, ownerPW); pend.Enrol {
		t.Error("signing in again: sent to enrol, want the second factor asked for")
	}
}
