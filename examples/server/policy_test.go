package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
)

// A session whose sign-in no longer meets the tenant's policy (MFA
// required since) is ended at its next request, and the sign-in page
// says why; signing in again sends the user to enrol.
func TestPolicyChangeSignsOut(t *testing.T) {
	owner, password := newClient(t)
	owner.signInAdmin(ownerEmail, password)
	owner.post("/users", url.Values{"email": {"sam@demo.example"}, "name": {"Sam Staff"}, "role": {"member"}, "password": {"plum tree on the hill 42"}})
	sam := newClientOf(t, owner.srv, owner.con)
	if resp := sam.signIn("sam@demo.example", "plum tree on the hill 42"); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("Sam's sign-in: %d", resp.StatusCode)
	}
	if code, _ := sam.whoami(); code != http.StatusOK {
		t.Fatalf("Sam's session: %d", code)
	}
	setPolicy(t, owner.con, func(p *guard.Policy) { p.RequireMFA = true })
	resp, body := sam.get("/account")
	for range 5 {
		if resp.StatusCode != http.StatusSeeOther {
			break
		}
		resp, body = sam.get(resp.Header.Get("Location"))
	}
	const notice = "You were signed out because your organisation&#39;s security policy changed: sign in again."
	if !strings.HasPrefix(resp.Request.URL.Path, "/login") || !strings.Contains(body, notice) {
		t.Fatalf("Sam opening /account after MFA became required ends on %s without the notice:\n%s", resp.Request.URL, body)
	}
	// Signing in again meets the policy: Sam is sent to enrol a factor.
	if resp := sam.signIn("sam@demo.example", "plum tree on the hill 42"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login/enrol" {
		t.Errorf("signing in again: %d to %q, want /login/enrol", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// The console's maintenance loop runs Guard.Maintain at once and logs
// what it did: here the dormant users deactivated (Dora and the demo's
// three invited users, none signed in for 31 days), as the tenant's
// policy asks.
func TestMaintenanceLoop(t *testing.T) {
	clock := &testClock{}
	con := newTestConsoleWith(t, testOptions(t, "https://console.example", clock, ""), nil)
	g, ctx, sys := con.g, t.Context(), guard.System("test")
	tn, err := g.Tenant(ctx, demoTenant)
	if err != nil {
		t.Fatal(err)
	}
	pol := tn.Policy
	pol.AutoDeactivateDormant = true
	if _, err := g.SetPolicy(ctx, sys, demoTenant, pol, tn.Version); err != nil {
		t.Fatal(err)
	}
	u, err := g.CreateUser(ctx, sys, guard.NewUser{Tenant: demoTenant, Email: "dora@demo.example", Password: "plum tree on the hill 42"})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(31 * 24 * time.Hour)
	mctx, cancel := context.WithCancel(ctx)
	var logged []string
	done := make(chan struct{})
	go func() {
		defer close(done)
		maintain(mctx, g, time.Hour, func(format string, args ...any) {
			logged = append(logged, fmt.Sprintf(format, args...))
			cancel()
		})
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		cancel()
		t.Fatal("the maintenance loop logged nothing in 10 s")
	}
	if len(logged) == 0 || !strings.Contains(logged[0], `tenant "demo": 4 dormant user(s) deactivated`) {
		t.Errorf("logged %q", logged)
	}
	if got, _ := g.User(ctx, sys, demoTenant, u.ID); got.Status == "active" {
		t.Error("the dormant user is still active")
	}
}

// An action under four-eyes approval on a page that cannot ask for one
// (here adding users, once the tenant puts users:manage under approval)
// is refused, and the page says why: Guard's Require fails closed.
func TestApprovalNeededPage(t *testing.T) {
	owner, password := newClient(t)
	owner.signInAdmin(ownerEmail, password)
	g, ctx := owner.con.g, t.Context()
	if err := g.SetApprovalRequired(ctx, guard.System("test"), demoTenant, "users:manage", true); err != nil {
		t.Fatal(err)
	}
	resp, page := owner.post("/users", url.Values{"email": {"zed@demo.example"}, "name": {"Zed"}, "role": {"member"}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(page, "Approval needed") {
		t.Errorf("adding a user under approval: %d\n%.1500s", resp.StatusCode, page)
	}
	if _, err := g.UserByEmail(ctx, guard.System("test"), demoTenant, "zed@demo.example"); err == nil {
		t.Error("the user was created without an approval")
	}
}

// The security page sets the tenant's audit retention (Maintain purges
// past it): at least 30 days, or 0 for ever.
func TestAuditRetentionSetting(t *testing.T) {
	owner, password := newClient(t)
	owner.signInAdmin(ownerEmail, password)
	g, ctx := owner.con.g, t.Context()
	save := func(days string) string {
		t.Helper()
		_, page := owner.get("/security")
		if !strings.Contains(page, `id="audit-retention"`) {
			t.Fatal("the security page has no audit retention field")
		}
		resp, page := owner.post("/security", url.Values{"version": {field(t, page, "version")}, "audit_retention_days": {days}})
		if resp.StatusCode == http.StatusSeeOther {
			_, page = owner.get(resp.Header.Get("Location"))
		}
		return page
	}
	// Refused: the form comes back (400) with the reason.
	if page := save("20"); !strings.Contains(page, "Keep audit events") || !strings.Contains(page, "30 days") {
		t.Errorf("20 days accepted, or refused without saying why:\n%.1500s", page)
	}
	if tn, err := g.Tenant(ctx, demoTenant); err != nil || tn.Policy.AuditRetention != 0 {
		t.Errorf("stored retention after 20 days was refused: %v, %v; want 0", tn.Policy.AuditRetention, err)
	}
	if page := save("365"); !strings.Contains(page, "Security settings saved") {
		t.Fatalf("365 days:\n%.1500s", page)
	}
	if tn, err := g.Tenant(ctx, demoTenant); err != nil || tn.Policy.AuditRetention != 365*24*time.Hour {
		t.Errorf("stored retention %v, %v; want 365 days", tn.Policy.AuditRetention, err)
	}
}

// With "require MFA" on and email codes not accepted for it, a user whose
// only factor is email is sent, after the email code, to set up an
// authenticator app.
func TestEmailCodeThenEnrol(t *testing.T) {
	c, _ := newClient(t)
	g, ctx, sys := c.con.g, t.Context(), guard.System("test")
	if _, err := g.CreateUser(ctx, sys, guard.NewUser{Tenant: demoTenant, Email: "eve@demo.example", Password: "plum tree on the hill 42"}); err != nil {
		t.Fatal(err)
	}
	f, _ := emailFactor(t, c.con, "eve@demo.example", "plum tree on the hill 42", "eve.codes@demo.example")
	tn, _ := g.Tenant(ctx, demoTenant)
	pol := tn.Policy
	pol.RequireMFA = true
	if _, err := g.SetPolicy(ctx, sys, demoTenant, pol, tn.Version); err != nil {
		t.Fatal(err)
	}
	eve := newClientOf(t, c.srv, c.con)
	if resp := eve.signIn("eve@demo.example", "plum tree on the hill 42"); resp.Header.Get("Location") != "/login/mfa" {
		t.Fatalf("sign-in: %d to %q, want /login/mfa", resp.StatusCode, resp.Header.Get("Location"))
	}
	eve.post("/login/mfa/send", url.Values{"factor": {f.ID}})
	resp, _ := eve.post("/login/mfa", url.Values{"method": {guard.MethodCode}, "code": {emailCode(t, c.con, "eve.codes@demo.example")}})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login/enrol" {
		t.Errorf("the email code under require-MFA: %d to %q, want /login/enrol", resp.StatusCode, resp.Header.Get("Location"))
	}
	if code, _ := eve.whoami(); code != http.StatusUnauthorized {
		t.Errorf("Eve has a session before enrolling an app: %d", code)
	}
}
