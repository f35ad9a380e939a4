package guard_test

import (
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/rbac"
)

// TestLegacyBreakGlassOwnerWithoutPasswordBlocksEveryPolicyChange: a tenant
// whose policy an older Guard accepted (RequireSSO, the break-glass owner an
// owner made by SSO sign-in, without a password) can no longer change any
// setting once upgraded: SetPolicy runs checkSSOPolicy on every change, so
// raising the idle timeout, with RequireSSO and BreakGlassUser as they are,
// is refused (*PolicyError on BreakGlassUser). Under RequireSSO no other
// owner can get a password either (ForgotPassword mails no link to anyone
// but the break-glass owner, ChangePassword needs a current one), so the
// only way out is to stop requiring SSO. The new rule should apply to a
// policy that names the owner (or turns RequireSSO on), as the post-write
// re-check does, not to every change.
func TestLegacyBreakGlassOwnerWithoutPasswordBlocksEveryPolicyChange(t *testing.T) {
	s := newSSOSite(t)
	ctx, sys := t.Context(), guard.System("test")
	_, p := s.ssoUser(t, "olga", "olga@corp.example")
	if err := s.g.GrantRole(ctx, sys, tenantID, "user:"+p.UserID, rbac.Owner); err != nil {
		t.Fatal(err)
	}
	_, p = s.ssoUser(t, "olga", "olga@corp.example")
	en, err := s.g.BeginTOTP(ctx, p, "Phone")
	if err != nil {
		t.Fatal(err)
	}
	code, err := totp.GenerateCode(en.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.g.ConfirmFactor(ctx, p, en.Factor.ID, code); err != nil {
		t.Fatal(err)
	}
	tn, err := s.g.Tenant(ctx, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	// As an older Guard's SetPolicy stored it.
	legacy := guard.Policy{RequireSSO: true, BreakGlassUser: p.UserID}
	if _, err := s.stores.Tenants.SetPolicy(ctx, tenantID, legacy, tn.Version); err != nil {
		t.Fatal(err)
	}
	tn, err = s.g.Tenant(ctx, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	next := tn.Policy
	next.IdleTimeout = 45 * time.Minute
	if _, err := s.g.SetPolicy(ctx, sys, tenantID, next, tn.Version); err != nil {
		t.Errorf("SetPolicy changing only the idle timeout of an upgraded tenant (RequireSSO, break-glass owner as an older Guard accepted): %v; want it to stand", err)
	}
}
