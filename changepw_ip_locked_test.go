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

// A client IP locked by failed logins (Config.IPLimit) gets no current
// password checked through ChangePassword, the right one included: the
// change is refused as a step-up is (Reauthenticate), with
// ErrInvalidCredentials and a refused password.changed with reason
// ip_throttled; the password stays as it was and the account counts no
// failure.
func TestChangePasswordRefusedFromLockedClientIP(t *testing.T) {
	f := newFixture(t, func(c *guard.Config) {
		c.IPLimit = auth.Limit{Max: 3, ResetAfter: time.Hour, LockFor: time.Hour, MaxLockFor: time.Hour}
		c.Defaults = guard.Policy{SessionLimit: 5}
	})
	u := f.createUser(t, "ada@example.test", ownerPW)
	p, token := f.signIn(t, "ada@example.test") // from 203.0.113.5, as f.login
	p.IP, p.UserAgent = "203.0.113.5", "test"
	for i := range 3 {
		f.login(fmt.Sprintf("nobody%d@example.test", i), "spray password")
	}
	const next = "a brand new passphrase 2026"
	if err := f.g.ChangePassword(f.ctx, p, guard.PasswordChange{Current: ownerPW, New: next}); !errors.Is(err, guard.ErrInvalidCredentials) {
		t.Fatalf("ChangePassword from a locked client IP: %v, want ErrInvalidCredentials", err)
	}
	evs := f.events(t, audit.PasswordChanged)
	if len(evs) != 1 || evs[0].Outcome != audit.Failure || evs[0].Reason != guard.ReasonIPThrottled {
		t.Errorf("password.changed events %+v, want one refused with reason %q", evs, guard.ReasonIPThrottled)
	}
	if _, _, err := f.g.Reauthenticate(f.ctx, p, token, guard.Proof{Password: ownerPW}); !errors.Is(err, guard.ErrInvalidCredentials) {
		t.Fatalf("Reauthenticate from a locked client IP: %v, want ErrInvalidCredentials", err)
	}
	if evs := f.events(t, audit.Reauthenticated); len(evs) != 1 || evs[0].Reason != guard.ReasonIPThrottled {
		t.Errorf("reauthenticated events %+v, want one refused with reason %q", evs, guard.ReasonIPThrottled)
	}
	if n := f.failures(t, u.ID); n != 0 {
		t.Errorf("%d failures counted for the account, want 0", n)
	}
	if _, err := f.g.Login(f.ctx, guard.LoginRequest{Tenant: tenantID, Email: "ada@example.test", Password: ownerPW, IP: "192.0.2.9", UserAgent: "test"}); err != nil {
		t.Errorf("Login with the old password from another address: %v; the password should be unchanged", err)
	}
}
