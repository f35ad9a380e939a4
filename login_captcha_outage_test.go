package guard_test

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/auth"
)

// A login whose CAPTCHA token the provider could not check (unavailable,
// misconfigured, a malformed reply) had its password never evaluated: it
// is refused, but gives its reservations back as one without a token
// does, so an outage locks no account. A token the provider judged and
// refused still counts as a failure.
func TestLoginCaptchaOutageCountsNothing(t *testing.T) {
	tests := []struct {
		reason string
		counts bool
	}{
		{auth.CaptchaUnavailable, false},
		{auth.CaptchaMisconfigured, false},
		{auth.CaptchaMalformed, false},
		{auth.CaptchaRejected, true},
	}
	for _, tt := range tests {
		t.Run(tt.reason, func(t *testing.T) {
			var down atomic.Bool
			verifier := auth.CaptchaFunc(func(_ context.Context, token, _ string) error {
				switch {
				case down.Load():
					return &auth.CaptchaError{Reason: tt.reason}
				case token != "human":
					return &auth.CaptchaError{Reason: auth.CaptchaRejected}
				}
				return nil
			})
			f := newFixture(t, func(c *guard.Config) { c.Captcha = verifier })
			f.createUser(t, "alice@example.com", ownerPW)
			login := func(pw, token string, i int) error {
				_, err := f.g.Login(f.ctx, guard.LoginRequest{Tenant: tenantID, Email: "alice@example.com", Password: pw,
					IP: fmt.Sprintf("198.51.100.%d", i+1), UserAgent: "test", Captcha: token})
				return err
			}
			// Alice mistypes her password a few times: a CAPTCHA is now asked.
			for i := 0; i < 3; i++ {
				if err := login("a typo", "", i); !errors.Is(err, guard.ErrInvalidCredentials) {
					t.Fatalf("typo %d: %v", i, err)
				}
			}
			// The provider answers tt.reason; she solves the CAPTCHA and
			// tries again.
			down.Store(true)
			for i := 10; i < 12; i++ {
				if err := login(ownerPW, "human", i); !errors.Is(err, guard.ErrCaptchaRequired) {
					t.Fatalf("provider answering %s: %v, want ErrCaptchaRequired", tt.reason, err)
				}
			}
			down.Store(false)
			err := login(ownerPW, "human", 20)
			if locked := err != nil; locked != tt.counts {
				t.Errorf("right password with a solved CAPTCHA after the provider answered %s twice: %v; locked %v, want %v", tt.reason, err, locked, tt.counts)
			}
		})
	}
}
