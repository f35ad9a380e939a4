package guard_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/auth"
)

// With AccountLimit.PermanentAfter set, an account that exists is locked
// for good after its temporary locks, while an invented name never is (it
// would keep the throttle store unbounded under a spray). A login is
// asked for a CAPTCHA under the same rule whether or not its key is
// locked, so that after the same failures a login without a token gets
// the same answer for an account (locked for good) and for an invented
// name (its lock over): no user enumeration by message.
func TestCaptchaAskedAlikeOfPermanentLock(t *testing.T) {
	lim := auth.Limit{Max: 2, ResetAfter: time.Hour, LockFor: time.Minute, MaxLockFor: time.Minute, PermanentAfter: 1}
	f := newFixture(t, func(c *guard.Config) {
		c.Captcha, c.AccountLimit, c.CaptchaAfter, c.CaptchaAfterIP = humanCaptcha, lim, 10, 1000
	})
	f.createUser(t, "alice@example.com", ownerPW)
	login := func(email, ip, token string) error {
		_, err := f.g.Login(f.ctx, guard.LoginRequest{Tenant: tenantID, Email: email, Password: "a wrong guess",
			IP: ip, UserAgent: "test", Captcha: token})
		return err
	}
	n := 0
	for round := range 2 {
		for range lim.Max {
			n++
			for _, email := range []string{"alice@example.com", "nobody@example.com"} {
				if err := login(email, fmt.Sprintf("203.0.113.%d", n), "human"); !errors.Is(err, guard.ErrInvalidCredentials) {
					t.Fatalf("round %d, %s: %v", round, email, err)
				}
			}
		}
		f.clock.Advance(2 * lim.LockFor)
	}
	known := login("alice@example.com", "198.51.100.77", "")
	unknown := login("nobody@example.com", "198.51.100.78", "")
	if !errors.Is(known, guard.ErrCaptchaRequired) != !errors.Is(unknown, guard.ErrCaptchaRequired) ||
		!errors.Is(known, guard.ErrInvalidCredentials) != !errors.Is(unknown, guard.ErrInvalidCredentials) {
		t.Errorf("login without a CAPTCHA token after the same failures: account %v, no account %v; want the same answer", known, unknown)
	}
}
