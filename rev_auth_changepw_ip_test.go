package guard_test

import (
	"errors"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/auth"
)

// ChangePassword checks the current password "throttled and audited like
// a login", and Config.IPLimit "throttles failed logins per client IP
// across all accounts" (Login and Reauthenticate reserve the client IP's
// key before the account's). ChangePassword reserves only the account's
// key: its wrong current passwords are never counted against the client
// IP, and a client IP that is locked still gets its guesses evaluated
// through it. Here three wrong current passwords from one address, with
// an IPLimit of three, leave that address free to sign in.
func TestReviewChangePasswordGuessesNotCountedAgainstClientIP(t *testing.T) {
	ipLim := auth.Limit{Max: 3, ResetAfter: time.Hour, LockFor: time.Hour, MaxLockFor: time.Hour}
	f := newFixture(t, func(c *guard.Config) {
		c.IPLimit = ipLim
		c.AccountLimit = auth.Limit{Max: 100, ResetAfter: time.Hour, LockFor: time.Minute, MaxLockFor: time.Minute}
		c.Defaults = guard.Policy{SessionLimit: 5}
	})
	f.createUser(t, "ada@example.test", ownerPW)
	f.createUser(t, "bob@example.test", ownerPW)
	p, _ := f.signIn(t, "ada@example.test") // from 203.0.113.5, as f.login
	p.IP, p.UserAgent = "203.0.113.5", "test"

	for i := 0; i < ipLim.Max; i++ {
		err := f.g.ChangePassword(f.ctx, p, guard.PasswordChange{Current: "wrong guess number " + string(rune('a'+i)), New: "a brand new passphrase 2026"})
		if !errors.Is(err, guard.ErrInvalidCredentials) {
			t.Fatalf("ChangePassword with a wrong current password: %v, want ErrInvalidCredentials", err)
		}
	}
	// Three failed password checks from 203.0.113.5: as with three failed
	// logins, the address is now locked, and a sign-in from it is refused.
	if _, err := f.login("bob@example.test", ownerPW); !errors.Is(err, guard.ErrInvalidCredentials) {
		t.Errorf("Login from the address after %d wrong current passwords: %v, want ErrInvalidCredentials (client IP locked)", ipLim.Max, err)
	}
}
