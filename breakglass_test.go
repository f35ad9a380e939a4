package guard_test

import (
	"errors"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/rbac"
)

// Naming another break-glass owner takes the break-glass way in from the
// previous one at once: a break-glass sign-in halfway through (password
// done, second factor not yet) is refused when it completes, and the
// previous owner's open session ends at its next request.
func TestBreakGlassHandedOver(t *testing.T) {
	s := newSSOSite(t)
	ctx := t.Context()
	sys := guard.System("test")
	mk := func(email string) (guard.User, string) {
		u, err := s.g.CreateUser(ctx, sys, guard.NewUser{Tenant: tenantID, Email: email, Password: ownerPW, Roles: []string{rbac.Owner}})
		if err != nil {
			t.Fatal(err)
		}
		return u, s.enrolTOTP(t, email, ownerPW)
	}
	ann, annSecret := mk("ann@corp.example")
	ben, _ := mk("ben@corp.example")
	setBreakGlass := func(id string) {
		t.Helper()
		tn, _ := s.g.Tenant(ctx, tenantID)
		if _, err := s.g.SetPolicy(ctx, sys, tenantID, guard.Policy{RequireSSO: true, BreakGlassUser: id}, tn.Version); err != nil {
			t.Fatal(err)
		}
		time.Sleep(600 * time.Millisecond) // past the policy cache
	}
	setBreakGlass(ann.ID)
	start := func() *guard.Pending {
		t.Helper()
		res, err := s.g.Login(ctx, guard.LoginRequest{Tenant: tenantID, Email: "ann@corp.example", Password: ownerPW, IP: "203.0.113.5", UserAgent: "test"})
		if err != nil || res.Pending == nil {
			t.Fatalf("Ann's break-glass password step: %+v, %v", res, err)
		}
		return res.Pending
	}
	complete := func(p *guard.Pending, at time.Time) (guard.LoginResult, error) {
		code, err := totp.GenerateCode(annSecret, at)
		if err != nil {
			t.Fatal(err)
		}
		return s.g.CompleteLogin(ctx, guard.SecondFactor{Pending: p.Token, Method: guard.MethodTOTP, Code: code, IP: "203.0.113.5", UserAgent: "test"})
	}
	done, err := complete(start(), time.Now())
	if err != nil || done.Token == "" {
		t.Fatalf("Ann's break-glass sign-in: %+v, %v", done, err)
	}
	halfway := start()

	setBreakGlass(ben.ID)
	if res, err := complete(halfway, time.Now().Add(30*time.Second)); !errors.Is(err, guard.ErrSSORequired) || res.Token != "" {
		t.Errorf("Ann completing a break-glass sign-in after Ben was named: %+v, %v; want ErrSSORequired", res, err)
	}
	if r := s.loginFailures(t); r[guard.ReasonBreakGlassNotOwner] != 1 {
		t.Errorf("login.failed reasons %v, want one %s", r, guard.ReasonBreakGlassNotOwner)
	}
	if _, err := s.g.Authenticate(ctx, done.Token); !errors.Is(err, guard.ErrPolicyChanged) {
		t.Errorf("Ann's break-glass session after Ben was named: %v, want ErrPolicyChanged", err)
	}
}
