package guard_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/store/memstore"
)

// A login cancelled while its password waits for a hashing slot counts
// nothing, whether the account exists or not (an invented name's dummy
// hash waits for a slot as a real one does): were only one of them
// counted, whoever can drop requests at that moment (every slot busy,
// then disconnect) would make a name's failures climb, and read from the
// CAPTCHA rule whether it exists.
func TestCanceledLoginCountsAlikeForKnownAndUnknownNames(t *testing.T) {
	var cancel context.CancelFunc
	verifier := auth.CaptchaFunc(func(_ context.Context, token, _ string) error {
		if token != "human" {
			return &auth.CaptchaError{Reason: auth.CaptchaRejected}
		}
		return nil
	})
	f := newFixture(t, func(c *guard.Config) {
		c.Stores.Throttle = cancelAfterReserve{Throttle: memstore.NewThrottle(0), cancel: &cancel}
		c.Captcha = verifier
	})
	f.createUser(t, "alice@example.com", ownerPW)
	ip := 1
	answer := map[string]error{}
	for _, email := range []string{"alice@example.com", "nobody@example.com"} {
		// Dropped attempts, each from its own address (only the account
		// key is shared).
		for i := 0; i < 6; i++ {
			ctx, c := context.WithCancel(f.ctx)
			cancel = c
			_, _ = f.g.Login(ctx, guard.LoginRequest{Tenant: tenantID, Email: email, Password: "a wrong guess",
				IP: fmt.Sprintf("198.51.100.%d", ip), UserAgent: "test"})
			ip++
			c()
		}
		cancel = nil
		// The probe: one ordinary attempt from a fresh address.
		_, err := f.g.Login(f.ctx, guard.LoginRequest{Tenant: tenantID, Email: email, Password: "a wrong guess",
			IP: fmt.Sprintf("198.51.100.%d", ip), UserAgent: "test"})
		ip++
		answer[email] = err
	}
	known, unknown := answer["alice@example.com"], answer["nobody@example.com"]
	if errors.Is(known, guard.ErrCaptchaRequired) != errors.Is(unknown, guard.ErrCaptchaRequired) {
		t.Errorf("after dropped attempts, an existing account answers %v and an unknown name %v: the CAPTCHA tells which exists", known, unknown)
	}
}

// Every login attempt is on record: one cancelled while its password
// waited for a hashing slot, which counts nothing, too (login.failed,
// reason canceled), as an attempt refused for a missing CAPTCHA token,
// which gives its reservations back too, is (reason captcha).
func TestCanceledLoginIsRecorded(t *testing.T) {
	var cancel context.CancelFunc
	f := newFixture(t, func(c *guard.Config) {
		c.Stores.Throttle = cancelAfterReserve{Throttle: memstore.NewThrottle(0), cancel: &cancel}
	})
	f.createUser(t, "alice@example.com", ownerPW)
	before := len(f.events(t, audit.LoginFailed))
	ctx, c := context.WithCancel(f.ctx)
	cancel = c
	_, err := f.g.Login(ctx, guard.LoginRequest{Tenant: tenantID, Email: "alice@example.com", Password: "a wrong guess",
		IP: "198.51.100.7", UserAgent: "test"})
	cancel = nil
	c()
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("canceled login: %v, want context.Canceled", err)
	}
	evs := f.events(t, audit.LoginFailed)[before:]
	if len(evs) != 1 || evs[0].Reason != guard.ReasonCanceled {
		t.Errorf("login.failed events for a canceled login attempt: %+v, want one with reason %q", evs, guard.ReasonCanceled)
	}
}
