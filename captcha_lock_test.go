package guard_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
)

// A lock of the client IP asks a CAPTCHA of every login from it until the
// address's failures are forgotten, though the lock set its count back to
// zero; the attempt that starts a lock is not asked for one because of it.
func TestCaptchaAfterLock(t *testing.T) {
	ipLim := auth.Limit{Max: 4, ResetAfter: time.Hour, LockFor: time.Minute, MaxLockFor: time.Hour}
	// CaptchaAfter and CaptchaAfterIP above the limits: only a lock asks
	// for a CAPTCHA.
	f := newFixture(t, func(c *guard.Config) {
		c.Captcha, c.IPLimit, c.CaptchaAfter, c.CaptchaAfterIP = humanCaptcha, ipLim, 10, 10
	})
	f.createUser(t, "alice@example.com", ownerPW)
	login := func(email, ip, token string) error {
		_, err := f.g.Login(f.ctx, guard.LoginRequest{Tenant: tenantID, Email: email, Password: "a wrong guess",
			IP: ip, UserAgent: "test", Captcha: token})
		return err
	}
	t.Run("IP", func(t *testing.T) {
		const ip = "198.51.100.20"
		for i := range ipLim.Max { // the last one starts the lock
			if err := login(fmt.Sprintf("nobody%d@example.com", i), ip, ""); !errors.Is(err, guard.ErrInvalidCredentials) {
				t.Fatalf("failure %d: %v", i, err)
			}
		}
		f.clock.Advance(ipLim.LockFor + time.Second)
		if err := login("someone@example.com", ip, ""); !errors.Is(err, guard.ErrCaptchaRequired) {
			t.Errorf("login from an address locked a minute ago, no token = %v, want ErrCaptchaRequired", err)
		}
		if err := login("someone@example.com", "198.51.100.21", ""); !errors.Is(err, guard.ErrInvalidCredentials) {
			t.Errorf("login from another address = %v, want ErrInvalidCredentials", err)
		}
		f.clock.Advance(ipLim.ResetAfter)
		if err := login("someone@example.com", ip, ""); !errors.Is(err, guard.ErrInvalidCredentials) {
			t.Errorf("login once the address's failures are forgotten = %v, want ErrInvalidCredentials", err)
		}
	})
	t.Run("Account", func(t *testing.T) {
		lim := guard.DefaultAccountLimit
		for i := range lim.Max { // one address each: only the account counts
			if err := login("alice@example.com", fmt.Sprintf("203.0.113.%d", 100+i), ""); !errors.Is(err, guard.ErrInvalidCredentials) {
				t.Fatalf("failure %d: %v", i, err)
			}
		}
		if n := len(f.events(t, audit.LoginLocked)); n == 0 {
			t.Fatal("no lock after AccountLimit.Max failures")
		}
		f.clock.Advance(lim.LockFor + time.Second)
		if err := login("alice@example.com", "203.0.113.200", ""); !errors.Is(err, guard.ErrCaptchaRequired) {
			t.Errorf("login of an account locked a minute ago, no token = %v, want ErrCaptchaRequired", err)
		}
		if _, err := f.g.Login(f.ctx, guard.LoginRequest{Tenant: tenantID, Email: "alice@example.com", Password: ownerPW,
			IP: "203.0.113.200", UserAgent: "test", Captcha: "human"}); err != nil {
			t.Fatalf("login with the CAPTCHA and the password: %v", err)
		}
		// The sign-in forgot the account's failures, and its locks.
		if err := login("alice@example.com", "203.0.113.201", ""); !errors.Is(err, guard.ErrInvalidCredentials) {
			t.Errorf("login after a completed sign-in = %v, want ErrInvalidCredentials", err)
		}
	})
}

// A login into a made-up tenant counts for its client IP as one of an
// unknown account does, and is asked for a CAPTCHA under the same rule.
func TestCaptchaUnknownTenantCounted(t *testing.T) {
	f := newFixture(t, func(c *guard.Config) { c.Captcha = humanCaptcha })
	const ip = "198.51.100.30"
	login := func(tenant, token string) error {
		_, err := f.g.Login(f.ctx, guard.LoginRequest{Tenant: tenant, Email: "probe@example.com", Password: "a wrong guess",
			IP: ip, UserAgent: "test", Captcha: token})
		return err
	}
	for i := range 10 {
		if err := login(fmt.Sprintf("no-such-tenant-%d", i), ""); !errors.Is(err, guard.ErrInvalidCredentials) {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	for _, tenant := range []string{tenantID, "no-such-tenant"} {
		if err := login(tenant, ""); !errors.Is(err, guard.ErrCaptchaRequired) {
			t.Errorf("login into %q after 10 failures in made-up tenants, no token = %v, want ErrCaptchaRequired", tenant, err)
		}
		if err := login(tenant, "human"); !errors.Is(err, guard.ErrInvalidCredentials) {
			t.Errorf("login into %q with a solved CAPTCHA = %v, want ErrInvalidCredentials", tenant, err)
		}
	}
	// Nothing of the made-up tenants is in the real tenant's log.
	if n := len(f.events(t, audit.LoginFailed)); n != 2 {
		t.Errorf("%d login.failed events in the real tenant, want 2 (its own two)", n)
	}
}
