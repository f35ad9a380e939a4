package guard_test

import (
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// Under Policy.RequireSSO every failed password sign-in answers
// ErrSSORequired, whether the password was right or wrong, the account
// known or not, the break-glass owner's or anyone's: the answer confirms
// no password, nor who the break-glass owner is. Wrong guesses still
// count: the account locks, and the lock is recorded.
func TestLoginUnderRequireSSOAnswersAlikeForAnyPassword(t *testing.T) {
	s := newSSOSite(t)
	ctx, sys := t.Context(), guard.System("test")
	ann, _ := s.userWithTOTP(t, "ann@corp.example", rbac.Owner)
	pat, err := s.g.CreateUser(ctx, sys, guard.NewUser{Tenant: tenantID, Email: "pat@corp.example", Password: ownerPW})
	if err != nil {
		t.Fatal(err)
	}
	tn, _ := s.g.Tenant(ctx, tenantID)
	if _, err := s.g.SetPolicy(ctx, sys, tenantID, guard.Policy{RequireSSO: true, BreakGlassUser: ann.ID}, tn.Version); err != nil {
		t.Fatal(err)
	}
	login := func(email, pw string) error {
		_, err := s.g.Login(ctx, guard.LoginRequest{Tenant: tenantID, Email: email, Password: pw, IP: "203.0.113.5", UserAgent: "test"})
		return err
	}
	tests := []struct {
		name, email, password string
	}{
		{"right password", pat.Email, ownerPW},
		{"wrong password", pat.Email, "a wrong guess"},
		{"unknown user", "nobody@corp.example", "a wrong guess"},
		{"break-glass owner, wrong password", ann.Email, "a wrong guess"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := login(tt.email, tt.password); !errors.Is(err, guard.ErrSSORequired) || errors.Is(err, guard.ErrInvalidCredentials) {
				t.Errorf("Login = %v, want ErrSSORequired alone", err)
			}
		})
	}
	// Wrong guesses still count: pat's account locks (one wrong guess
	// above, the right password counted as a failure too), and the right
	// password is then refused as locked, with the same answer.
	for i := 0; i < guard.DefaultAccountLimit.Max; i++ {
		if err := login(pat.Email, "a wrong guess"); !errors.Is(err, guard.ErrSSORequired) {
			t.Fatalf("guess %d: %v, want ErrSSORequired", i, err)
		}
	}
	if err := login(pat.Email, ownerPW); !errors.Is(err, guard.ErrSSORequired) {
		t.Errorf("right password of a locked account: %v, want ErrSSORequired", err)
	}
	if n := len(s.events(t, audit.LoginLocked)); n == 0 {
		t.Errorf("wrong guesses under RequireSSO locked nothing")
	}
	if n := reasons(s.events(t, audit.LoginFailed))[guard.ReasonLocked]; n == 0 {
		t.Errorf("no login.failed with reason locked for the locked account")
	}
}
