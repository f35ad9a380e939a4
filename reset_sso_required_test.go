package guard_test

import (
	"strings"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// While the tenant requires SSO, a forgotten password mails no link (the
// password it would set could not sign in): the user is told to sign in
// through single sign-on, and the request is recorded as refused, reason
// sso_required. The break-glass owner still gets a link.
func TestForgotPasswordUnderRequireSSO(t *testing.T) {
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
	out := &outbox{}
	g := s.recoveryGuard(t, out)
	for _, email := range []string{pat.Email, ann.Email} {
		if err := g.ForgotPassword(ctx, guard.ForgotRequest{Tenant: tenantID, Email: email, IP: "203.0.113.5", UserAgent: "test"}); err != nil {
			t.Fatal(err)
		}
	}
	g.Close() // waits for the background work

	out.mu.Lock()
	defer out.mu.Unlock()
	got := map[string]string{}
	for _, m := range out.mail {
		got[m.To] = m.Text
	}
	if text, ok := got[pat.Email]; !ok || strings.Contains(text, "token=") || !strings.Contains(text, "single sign-on") {
		t.Errorf("mail to a user under RequireSSO: %q (sent %v); want the single sign-on notice, no link", text, ok)
	}
	if text := got[ann.Email]; !strings.Contains(text, "token=") {
		t.Errorf("mail to the break-glass owner: %q, want a reset link", text)
	}
	byUser := map[string]audit.Event{}
	for _, e := range s.events(t, audit.PasswordResetRequested) {
		byUser[e.Actor.ID] = e
	}
	if e := byUser[pat.ID]; e.Outcome != audit.Failure || e.Reason != guard.ReasonSSORequired {
		t.Errorf("the user's request on record: %+v, want refused, reason sso_required", e)
	}
	if e := byUser[ann.ID]; e.Outcome != audit.Success {
		t.Errorf("the break-glass owner's request on record: %+v, want a success", e)
	}
}
