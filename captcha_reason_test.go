package guard_test

import (
	"context"
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
)

// A refused CAPTCHA is recorded with the verifier's reason (Meta
// captcha: rejected, misconfigured, unavailable…), so that an
// administrator can tell a provider that refuses the site's secret, which
// turns every CAPTCHA-gated step away, from bots. The event used to say
// only "captcha".
func TestCaptchaRefusalRecordsItsReason(t *testing.T) {
	broken := auth.CaptchaFunc(func(context.Context, string, string) error {
		return &auth.CaptchaError{Reason: auth.CaptchaMisconfigured, Codes: []string{"invalid-input-secret"}}
	})
	f := newMFAFixture(t, func(c *guard.Config) { c.Captcha = broken })
	ada := f.createUser(t, "ada@example.test", ownerPW)
	want := func(action audit.Action, target string) {
		t.Helper()
		for _, e := range f.events(t, action) {
			if e.Outcome == audit.Failure && e.Reason == guard.ReasonCaptcha && (target == "" || e.Target == target) {
				if e.Meta["captcha"] != auth.CaptchaMisconfigured {
					t.Errorf("%s refused for the CAPTCHA with Meta %v, want captcha=%s", action, e.Meta, auth.CaptchaMisconfigured)
				}
				return
			}
		}
		t.Errorf("no %s refused for the CAPTCHA", action)
	}

	// ChangePassword always asks for the CAPTCHA.
	_, p := f.signIn(t, "ada@example.test", ownerPW)
	if err := f.g.ChangePassword(f.ctx, p, guard.PasswordChange{Current: ownerPW, New: "an entirely new passphrase", Captcha: "tok"}); !errors.Is(err, guard.ErrCaptchaRequired) {
		t.Fatalf("ChangePassword: %v, want ErrCaptchaRequired", err)
	}
	want(audit.PasswordChanged, "")

	// ForgotPassword always asks for the CAPTCHA.
	err := f.g.ForgotPassword(f.ctx, guard.ForgotRequest{Tenant: tenantID, Email: "ada@example.test", IP: "203.0.113.5", Captcha: "tok"})
	if !errors.Is(err, guard.ErrCaptchaRequired) {
		t.Fatalf("ForgotPassword: %v, want ErrCaptchaRequired", err)
	}
	f.g.Close()
	want(audit.PasswordResetRequested, ada.ID)

	err = f.g.ResetPassword(f.ctx, guard.ResetRequest{Tenant: tenantID, UserID: ada.ID, Token: "x", NewPassword: "an entirely new passphrase",
		IP: "203.0.113.5", Captcha: "tok"})
	if !errors.Is(err, guard.ErrCaptchaRequired) {
		t.Fatalf("ResetPassword: %v, want ErrCaptchaRequired", err)
	}
	want(audit.PasswordReset, ada.ID)

	// Login asks after failures.
	for i := 0; ; i++ {
		_, err := f.g.Login(f.ctx, guard.LoginRequest{Tenant: tenantID, Email: "ada@example.test", Password: "a wrong password",
			IP: "203.0.113.5", UserAgent: "test", Captcha: "tok"})
		if errors.Is(err, guard.ErrCaptchaRequired) {
			break
		}
		if i == 10 {
			t.Fatalf("no CAPTCHA asked after %d failures: %v", i, err)
		}
	}
	want(audit.LoginFailed, "")
}
