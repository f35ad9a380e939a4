package guard_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/mfa"
)

// hookFactors runs after() once, right after the first Factors read for
// which armed is set, before returning the (already read) list.
type hookFactors struct {
	mfa.FactorStore
	mu    sync.Mutex
	armed bool
	after func()
}

func (h *hookFactors) Factors(ctx context.Context, tenant, userID string) ([]mfa.Factor, error) {
	fs, err := h.FactorStore.Factors(ctx, tenant, userID)
	h.mu.Lock()
	fire := h.armed
	h.armed = false
	h.mu.Unlock()
	if fire {
		h.after()
	}
	return fs, err
}

// A password-only sign-in under RequireMFA is sent to enrol. If the user
// confirms a factor of their own between that sign-in's read of the
// factors and the start of its pending enrolment (so not "after" it), the
// enrolment is over all the same: whoever holds it proved only the
// password and must not add an app of their own.
func TestPendingEnrolmentEndsWithAFactorConfirmedDuringLogin(t *testing.T) {
	hook := &hookFactors{}
	f := newMFAFixture(t, func(c *guard.Config) {
		hook.FactorStore = c.Stores.MFA.Factors
		c.Stores.MFA.Factors = hook
	})
	f.createUser(t, adaEmail, ownerPW)
	// The user signs in (no MFA required yet) and begins an authenticator.
	_, p := f.signIn(t, adaEmail, ownerPW)
	en, err := f.g.BeginTOTP(f.ctx, p, "Phone")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.SetPolicy(f.ctx, guard.System("test"), tenantID, guard.Policy{RequireMFA: true}, 1); err != nil {
		t.Fatal(err)
	}
	// The attacker's Login reads the user's factors (none confirmed); the
	// user's confirmation lands right then; the attacker's Login goes on.
	hook.after = func() {
		if _, err := f.g.ConfirmFactor(f.ctx, p, en.Factor.ID, f.code(t, en.Secret)); err != nil {
			t.Errorf("user's ConfirmFactor: %v", err)
		}
		f.clock.Advance(time.Millisecond) // the attacker's request carries on a moment later
	}
	hook.mu.Lock()
	hook.armed = true
	hook.mu.Unlock()
	const ip = "198.51.100.7"
	att, err := f.g.Login(f.ctx, guard.LoginRequest{Tenant: tenantID, Email: adaEmail, Password: ownerPW, IP: ip, UserAgent: "attacker"})
	if err != nil || att.Pending == nil || !att.Pending.Enrol {
		t.Fatalf("attacker login: %+v, %v", att, err)
	}
	f.clock.Advance(time.Minute)
	evil, err := f.g.BeginPendingTOTP(f.ctx, att.Pending.Token, ip, "attacker", "Evil")
	if err == nil {
		res, cerr := f.g.CompletePendingEnrolment(f.ctx, guard.SecondFactor{Pending: att.Pending.Token, FactorID: evil.Factor.ID,
			Code: f.code(t, evil.Secret), IP: ip, UserAgent: "attacker"})
		if cerr == nil && res.Token != "" {
			t.Fatalf("attacker with the password alone added their own authenticator and got a session, " +
				"though the user had confirmed a factor after the attacker's Login read the factors")
		}
		t.Logf("CompletePendingEnrolment: %v", cerr)
	}
	if !errors.Is(err, guard.ErrLoginExpired) {
		t.Errorf("BeginPendingTOTP after the user confirmed a factor = %v, want ErrLoginExpired", err)
	}
}
