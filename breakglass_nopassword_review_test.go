package guard_test

import (
	"errors"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/rbac"
)

// Policy.BreakGlassUser is "the owner who may still sign in with a
// password (and MFA) when RequireSSO is on, in case the IdP fails";
// SetPolicy refuses an owner without a confirmed factor because
// "break-glass sign-in takes one". It takes a password too, yet an owner
// without one (provisioned by single sign-on) is accepted: with SSO
// required, password reset links are mailed only through Config.Recovery
// (this Guard has none), so the named break-glass owner can never sign in
// when the IdP fails, and every administrator is locked out.
func TestReviewBreakGlassOwnerWithoutPassword(t *testing.T) {
	s := newSSOSite(t)
	ctx, sys := t.Context(), guard.System("test")
	_, p := s.ssoUser(t, "olga", "olga@corp.example")
	if err := s.g.GrantRole(ctx, sys, tenantID, "user:"+p.UserID, rbac.Owner); err != nil {
		t.Fatal(err)
	}
	_, p = s.ssoUser(t, "olga", "olga@corp.example") // a fresh session, with the owner role
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
	if u := s.user(t, p.UserID); u.HasPassword {
		t.Fatalf("the SSO-provisioned owner has a password: %+v", u)
	}
	tn, err := s.g.Tenant(ctx, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.g.SetPolicy(ctx, sys, tenantID, guard.Policy{RequireSSO: true, BreakGlassUser: p.UserID}, tn.Version)
	var pe *guard.PolicyError
	if !errors.As(err, &pe) || pe.Field != "BreakGlassUser" {
		t.Errorf("SetPolicy naming a break-glass owner who has no password (and no way to get one): %v, want a *PolicyError on BreakGlassUser", err)
	}
}
