package guard_test

import (
	"context"
	"strings"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/mfa"
)

// heldRates calls hold with the key and the count of each Hit that
// succeeded, before the count is returned.
type heldRates struct {
	mfa.RateStore
	hold func(key string, n int)
}

func (r heldRates) Hit(ctx context.Context, key string, now time.Time, window time.Duration) (int, error) {
	n, err := r.RateStore.Hit(ctx, key, now, window)
	if err == nil {
		r.hold(key, n)
	}
	return n, err
}

// A reset request held back by the account's link limit takes no place
// under the address's: that limit counts the emails about to go to the
// address (LinkLimits). Otherwise two requests of one account, one
// between the other's two counts, are refused by a limit each, and the
// account gets fewer links than PerAccount lets through (the flake of
// TestForgotPasswordChangesNothing: 4 emails of 5); and a loop refused in
// one tenant uses up the address's links in another.
func TestLinkLimitRefusedTakesNoAddressPlace(t *testing.T) {
	ask := func(t *testing.T, g *guard.Guard, tenant string) {
		t.Helper()
		if err := g.ForgotPassword(context.Background(), guard.ForgotRequest{Tenant: tenant, Email: adaEmail, IP: "203.0.113.5"}); err != nil {
			t.Fatal(err)
		}
	}
	t.Run("ConcurrentRequestsOfOneAccount", func(t *testing.T) {
		held, release := make(chan struct{}), make(chan struct{})
		var cfg guard.Config
		f := newMFAFixture(t, withLimits(guard.LinkLimits{PerAccount: 2, PerDestination: 2, PerIP: 100}),
			func(c *guard.Config) {
				c.Stores.MFA.Rates = heldRates{c.Stores.MFA.Rates, func(key string, n int) {
					// The last request the account's limit lets
					// through waits, between its two counts.
					if strings.HasPrefix(key, "mfa:link-account:") && n == 2 {
						close(held)
						<-release
					}
				}}
				cfg = *c
			})
		// A second replica on the same stores runs the request that
		// comes between, closed so that it has ended.
		other, err := guard.New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		f.createUser(t, adaEmail, ownerPW)
		ask(t, f.g, tenantID)
		f.g.Close()
		ask(t, f.g, tenantID)
		<-held
		ask(t, other, tenantID) // over the account's limit
		other.Close()
		close(release)
		if n := len(f.mailTo(adaEmail)); n != 2 {
			t.Errorf("%d reset emails for 3 requests, one of them between the counts of another, want 2 (PerAccount); reasons %v",
				n, reasons(f.events(t, audit.PasswordResetRequested)))
		}
	})
	t.Run("RefusedInAnotherTenant", func(t *testing.T) {
		f := newMFAFixture(t, withLimits(guard.LinkLimits{PerAccount: 1, PerDestination: 2, PerIP: 100}))
		if _, err := f.g.CreateTenant(f.ctx, guard.System("test"), "globex", "Globex", guard.Policy{}); err != nil {
			t.Fatal(err)
		}
		f.createUser(t, adaEmail, ownerPW)
		if _, err := f.g.CreateUser(f.ctx, guard.System("test"), guard.NewUser{Tenant: "globex", Email: adaEmail, Name: "Ada", Password: ownerPW}); err != nil {
			t.Fatal(err)
		}
		for range 2 { // the second over the account's limit
			ask(t, f.g, tenantID)
			f.g.Close()
		}
		ask(t, f.g, "globex")
		if n := len(f.mailTo(adaEmail)); n != 2 {
			t.Errorf("%d reset emails, want 2: one from each tenant (PerDestination 2), the request refused by the account's limit mailed nothing", n)
		}
	})
}
