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
	"github.com/guardhq/guard/store/memstore"
)

// cancelAfterReserve is a throttle store that cancels the attempt's
// context once it is reserved: the client gave up while its guess waited
// for a hashing slot.
type cancelAfterReserve struct {
	*memstore.Throttle
	cancel *context.CancelFunc
}

func (c cancelAfterReserve) ReserveAll(ctx context.Context, now time.Time, keys []auth.ThrottleKey) ([]auth.Reservation, error) {
	res, err := c.Throttle.ReserveAll(ctx, now, keys)
	if *c.cancel != nil {
		(*c.cancel)()
	}
	return res, err
}

func (c cancelAfterReserve) Reserve(ctx context.Context, key string, now time.Time, lim auth.Limit) (auth.Reservation, error) {
	res, err := c.Throttle.Reserve(ctx, key, now, lim)
	if *c.cancel != nil {
		(*c.cancel)()
	}
	return res, err
}

// An attempt whose context ends while it waits for a hashing slot had its
// password never evaluated: it gives its reservations back, so it counts
// no failure and locks nothing (a lock would go unrecorded and
// unnoticed), and returns the context's error.
func TestPasswordAttemptCanceledBeforeHashingCountsNothing(t *testing.T) {
	tests := []struct {
		name string
		try  func(f *fixture, ctx context.Context, p guard.Principal, token string, i int) error
	}{
		{"Login", func(f *fixture, ctx context.Context, _ guard.Principal, _ string, i int) error {
			_, err := f.g.Login(ctx, guard.LoginRequest{Tenant: tenantID, Email: "alice@example.com", Password: "a wrong guess",
				IP: fmt.Sprintf("198.51.100.%d", i+1), UserAgent: "test"})
			return err
		}},
		{"ChangePassword", func(f *fixture, ctx context.Context, p guard.Principal, _ string, _ int) error {
			return f.g.ChangePassword(ctx, p, guard.PasswordChange{Current: "a wrong guess", New: "a brand new passphrase 2026"})
		}},
		{"Reauthenticate", func(f *fixture, ctx context.Context, p guard.Principal, token string, _ int) error {
			_, _, err := f.g.Reauthenticate(ctx, p, token, guard.Proof{Password: "a wrong guess"})
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var cancel context.CancelFunc
			f := newFixture(t, func(c *guard.Config) {
				c.Stores.Throttle = cancelAfterReserve{Throttle: memstore.NewThrottle(0), cancel: &cancel}
			})
			u := f.createUser(t, "alice@example.com", ownerPW)
			p, token := f.signIn(t, "alice@example.com")
			for i := 0; i < guard.DefaultAccountLimit.Max+1; i++ {
				ctx, c := context.WithCancel(f.ctx)
				cancel = c
				if err := tt.try(f, ctx, p, token, i); !errors.Is(err, context.Canceled) {
					t.Fatalf("attempt %d: %v, want context.Canceled", i, err)
				}
				c()
			}
			cancel = nil
			if n := f.failures(t, u.ID); n != 0 {
				t.Errorf("%d failures counted for attempts whose password was never evaluated, want 0", n)
			}
			if n := len(f.events(t, audit.LoginLocked)); n != 0 {
				t.Errorf("%d login.locked events, want 0", n)
			}
			if _, err := f.login("alice@example.com", ownerPW); err != nil {
				t.Errorf("right password after the canceled attempts: %v; want a sign-in", err)
			}
		})
	}
}
