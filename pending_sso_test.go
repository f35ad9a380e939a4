package guard_test

import (
	"errors"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// A password sign-in waiting for its second factor when the tenant starts
// requiring SSO ends there: the right code gets no session (ErrSSORequired,
// recorded as mfa.failed sso_required), where it used to get one that the
// policy ended at its first request. The break-glass owner's pending
// sign-in, started under the policy, still completes.
func TestPendingPasswordSignInEndsUnderRequireSSO(t *testing.T) {
	s := newSSOSite(t)
	ctx := t.Context()
	sys := guard.System("test")
	owner, ownerSecret := s.userWithTOTP(t, "owner@corp.example", rbac.Owner)
	bobU, bobSecret := s.userWithTOTP(t, "bob@corp.example", rbac.Admin)
	sessions := func() int {
		t.Helper()
		ss, err := s.g.UserSessions(ctx, sys, tenantID, bobU.ID)
		if err != nil {
			t.Fatal(err)
		}
		return len(ss)
	}
	start := func(email string) string {
		t.Helper()
		res, err := s.g.Login(ctx, guard.LoginRequest{Tenant: tenantID, Email: email, Password: ownerPW, IP: "203.0.113.5", UserAgent: "test"})
		if err != nil || res.Pending == nil {
			t.Fatalf("%s's password step: %+v, %v; want a pending sign-in", email, res, err)
		}
		return res.Pending.Token
	}
	complete := func(pending, secret string) (guard.LoginResult, error) {
		code, err := totp.GenerateCode(secret, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		return s.g.CompleteLogin(ctx, guard.SecondFactor{Pending: pending, Method: guard.MethodTOTP, Code: code, IP: "203.0.113.5", UserAgent: "test"})
	}
	bob := start("bob@corp.example")
	tn, _ := s.g.Tenant(ctx, tenantID)
	if _, err := s.g.SetPolicy(ctx, sys, tenantID, guard.Policy{RequireSSO: true, BreakGlassUser: owner.ID}, tn.Version); err != nil {
		t.Fatal(err)
	}
	had := sessions()
	before := reasons(s.events(t, audit.MFAFailed))[guard.ReasonSSORequired]
	res, err := complete(bob, bobSecret)
	if !errors.Is(err, guard.ErrSSORequired) || res.Token != "" {
		t.Fatalf("bob's right code after RequireSSO: %+v, %v; want ErrSSORequired and no session", res, err)
	}
	if got := reasons(s.events(t, audit.MFAFailed))[guard.ReasonSSORequired]; got != before+1 {
		t.Errorf("%d mfa.failed sso_required events, want %d", got, before+1)
	}
	if n := sessions(); n > had {
		t.Errorf("bob has %d sessions after the refusal, had %d", n, had)
	}
	// The break-glass owner's own pending sign-in, started under the
	// policy, completes.
	ok, err := complete(start("owner@corp.example"), ownerSecret)
	if err != nil || ok.Token == "" {
		t.Fatalf("the break-glass owner's sign-in: %+v, %v", ok, err)
	}
	if _, err := s.g.Authenticate(ctx, ok.Token); err != nil {
		t.Errorf("the break-glass owner's session: %v", err)
	}
}
