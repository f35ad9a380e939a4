package guard_test

import (
	"context"
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/sso"
	"github.com/guardhq/guard/store/memstore"
)

// A ring-fenced tenant whose stores have no IdP connection store is, on a
// Guard with Config.SSO, a tenant without single sign-on (TenantOpener:
// "SSO.Connections when Config.SSO is set (without it the tenant has no
// single sign-on: ErrSSONotConfigured)"). The calls that merely ask
// whether the tenant has an IdP (ListUserAccess, AccessReview through
// loadIdP; ChangeEmail through prepareEmailChange) must answer as for a
// tenant with no IdP connection (RequestEmailChange and ConfirmEmailChange
// too), and SetPolicy asking RequireSSO must be
// refused with a *PolicyError, as for a Guard without SSO. Instead the
// routed store's ErrSSONotConfigured goes through sso's storeErr and
// ssoErr into ErrUnavailable: the tenant's access reviews and its users'
// email changes fail for ever with "store unavailable" (503), and a bad
// policy is reported as an outage.
func TestFencedTenantWithoutIdPStoreHasNoIdP(t *testing.T) {
	open := openerWithout(func(st *guard.Stores) { st.SSO.Connections = nil }) // this tenant has no single sign-on
	spKey, spCert := keyPair(t, "sp")
	mail := &outbox{}
	g, err := guard.New(guard.Config{Stores: memstore.New().Stores().Shared(), AuditKey: auditKey, Hasher: fastHasher,
		OpenTenant: open, SSO: &sso.Config{BaseURL: "https://sp.example.test", Key: spKey, Certificate: spCert},
		Recovery: guard.RecoveryConfig{Email: mail, BaseURL: "https://app.example.test"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { g.Close() })
	ctx := context.Background()
	sys := guard.System("test")
	if _, err := g.CreateTenant(ctx, sys, "acme", "Acme", guard.Policy{}); err != nil {
		t.Fatal(err)
	}
	if _, err := g.CreateUser(ctx, sys, guard.NewUser{Tenant: "acme", Email: "ada@example.test", Name: "Ada", Password: ownerPW,
		Roles: []string{"owner"}}); err != nil {
		t.Fatal(err)
	}

	if _, err := g.ListUserAccess(ctx, sys, "acme", "", 10); err != nil {
		t.Errorf("ListUserAccess of a tenant without single sign-on = %v, want nil (no IdP)", err)
	}
	if _, err := g.AccessReview(ctx, sys, "acme"); err != nil {
		t.Errorf("AccessReview of a tenant without single sign-on = %v, want nil (no IdP)", err)
	}

	res, err := g.Login(ctx, guard.LoginRequest{Tenant: "acme", Email: "ada@example.test", Password: ownerPW, IP: "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := g.Authenticate(ctx, res.Token)
	if err != nil {
		t.Fatal(err)
	}
	if err := g.ChangeEmail(ctx, p, "ada.lovelace@example.test"); err != nil {
		t.Errorf("ChangeEmail in a tenant without single sign-on, just signed in = %v, want nil", err)
	}
	// A change by a link: asked for, then confirmed (both ask whether the
	// tenant has an IdP).
	if err := g.RequestEmailChange(ctx, p, "ada.l@example.test"); err != nil {
		t.Errorf("RequestEmailChange in a tenant without single sign-on = %v, want nil", err)
	} else {
		link := changeLink(t, mail.lastMail(t))
		if err := g.ConfirmEmailChange(ctx, confirmOf(link)); err != nil {
			t.Errorf("ConfirmEmailChange in a tenant without single sign-on = %v, want nil", err)
		} else if u, err := g.User(ctx, sys, "acme", p.UserID); err != nil || u.Email != "ada.l@example.test" {
			t.Errorf("after ConfirmEmailChange, the user's address = %q (%v), want ada.l@example.test", u.Email, err)
		}
	}

	tn, err := g.Tenant(ctx, "acme")
	if err != nil {
		t.Fatal(err)
	}
	_, err = g.SetPolicy(ctx, sys, "acme", guard.Policy{RequireSSO: true}, tn.Version)
	var pe *guard.PolicyError
	if !errors.As(err, &pe) || pe.Field != "RequireSSO" || errors.Is(err, guard.ErrUnavailable) {
		t.Errorf("SetPolicy(RequireSSO) of a tenant without single sign-on = %v, want a *PolicyError on RequireSSO, not ErrUnavailable", err)
	}

	// Maintain skips the tenant's IdP metadata, as for a tenant without one.
	if _, err := g.Maintain(ctx, sys, guard.MaintainOptions{}); err != nil {
		t.Errorf("Maintain with a tenant without single sign-on = %v, want nil", err)
	}

	// The single sign-on calls answer as on a Guard without Config.SSO.
	if _, err := g.SSOConnection(ctx, sys, "acme"); !errors.Is(err, guard.ErrSSONotConfigured) || errors.Is(err, guard.ErrUnavailable) {
		t.Errorf("SSOConnection of a tenant without single sign-on = %v, want ErrSSONotConfigured", err)
	}
	if _, err := g.StartSSO(ctx, guard.SSOStart{Tenant: "acme", IP: "192.0.2.1"}); !errors.Is(err, guard.ErrSSONotConfigured) || errors.Is(err, guard.ErrUnavailable) {
		t.Errorf("StartSSO of a tenant without single sign-on = %v, want ErrSSONotConfigured", err)
	}
	if _, err := g.RefreshSSOMetadata(ctx, "acme"); !errors.Is(err, guard.ErrSSONotConfigured) || errors.Is(err, guard.ErrUnavailable) {
		t.Errorf("RefreshSSOMetadata of a tenant without single sign-on = %v, want ErrSSONotConfigured", err)
	}
}
