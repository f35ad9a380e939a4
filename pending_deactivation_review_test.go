package guard_test

import (
	"errors"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/rbac"
)

// DeactivateUser ends the user's sessions and voids their links so that a
// reactivation brings nothing from before back (ReactivateUser: nor do
// requests or approvals from before it stand again). A pending sign-in
// (password proved, second factor due) started before the deactivation
// is not ended: once an administrator reactivates the user, whoever holds
// its token completes it and gets a session, though the deactivation came
// after it began.
func TestReviewPendingSignInOutlivesDeactivation(t *testing.T) {
	s := newSSOSite(t)
	ctx, sys := t.Context(), guard.System("test")
	s.userWithTOTP(t, "owner@corp.example", rbac.Owner)
	u, secret := s.userWithTOTP(t, "pat@corp.example", rbac.Member)

	res, err := s.g.Login(ctx, guard.LoginRequest{Tenant: tenantID, Email: u.Email, Password: ownerPW, IP: "203.0.113.9", UserAgent: "thief"})
	if err != nil || res.Pending == nil {
		t.Fatalf("password step: %+v, %v", res, err)
	}
	if err := s.g.DeactivateUser(ctx, sys, tenantID, u.ID); err != nil {
		t.Fatal(err)
	}
	if err := s.g.ReactivateUser(ctx, sys, tenantID, u.ID); err != nil {
		t.Fatal(err)
	}
	code, err := totp.GenerateCode(secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	done, err := s.g.CompleteLogin(ctx, guard.SecondFactor{Pending: res.Pending.Token, Method: guard.MethodTOTP, Code: code,
		IP: "203.0.113.9", UserAgent: "thief"})
	if err == nil || done.Token != "" {
		t.Errorf("a pending sign-in begun before the deactivation, completed after the reactivation: session %v, err %v; want it ended (ErrLoginExpired)",
			done.Token != "", err)
	}
	if err != nil && !errors.Is(err, guard.ErrLoginExpired) {
		t.Logf("refused with %v", err)
	}
}
