package main

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/mfa"
)

// enrolAtSignIn sets up an authenticator app at the second step of a
// sign-in the organisation's "require MFA" sent to /login/enrol, and
// returns the answer to its confirmation.
func enrolAtSignIn(t *testing.T, c *client) (*http.Response, string) {
	t.Helper()
	_, page := c.post("/login/enrol/begin", url.Values{})
	m := totpSecretRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no key on the enrolment page:\n%s", page)
	}
	return c.post("/login/enrol/confirm", url.Values{"factor": {field(t, page, "factor")},
		"code": {c.totp(&authenticatorApp{secret: m[1]})}})
}

// emailFactor signs email in with password (as the demo tenant's user
// whose password it is) and sets up an email factor sending to addr,
// returning it and the recovery codes its confirmation gave.
func emailFactor(t *testing.T, con *console, email, password, addr string) (mfa.Factor, []string) {
	t.Helper()
	g, ctx := con.g, t.Context()
	res, err := g.Login(ctx, guard.LoginRequest{Tenant: demoTenant, Email: email, Password: password, IP: "203.0.113.5", UserAgent: "test"})
	if err != nil {
		t.Fatal(err)
	}
	p, err := g.Authenticate(ctx, res.Token)
	if err != nil {
		t.Fatal(err)
	}
	f, err := g.BeginOOB(ctx, p, mfa.KindEmail, addr, "")
	if err != nil {
		t.Fatal(err)
	}
	codes, err := g.ConfirmFactor(ctx, p, f.ID, emailCode(t, con, addr))
	if err != nil {
		t.Fatal(err)
	}
	return f, codes
}

// The recovery codes of a sign-in that enrols a first factor are shown
// once, all of them; a user whose email factor already gave them theirs
// (shown then) is not shown an empty list of "your recovery codes" after
// setting up the app the organisation requires, but signed in.
func TestEnrolAtSignInRecoveryCodes(t *testing.T) {
	c, _ := newClient(t)
	g, ctx, sys := c.con.g, t.Context(), guard.System("test")
	const pw = "plum tree on the hill 42"
	for _, email := range []string{"sam@demo.example", "eve@demo.example"} {
		if _, err := g.CreateUser(ctx, sys, guard.NewUser{Tenant: demoTenant, Email: email, Password: pw}); err != nil {
			t.Fatal(err)
		}
	}
	// Eve sets up an email factor before MFA is required: her recovery
	// codes come with it.
	f, codes := emailFactor(t, c.con, "eve@demo.example", pw, "eve.codes@demo.example")
	if len(codes) == 0 {
		t.Fatal("Eve's email factor came without recovery codes")
	}
	setPolicy(t, c.con, func(p *guard.Policy) { p.RequireMFA = true })

	t.Run("first factor", func(t *testing.T) {
		sam := newClientOf(t, c.srv, c.con)
		if resp := sam.signIn("sam@demo.example", pw); resp.Header.Get("Location") != "/login/enrol" {
			t.Fatalf("sign-in went to %q, want /login/enrol", resp.Header.Get("Location"))
		}
		resp, page := enrolAtSignIn(t, sam)
		if n := strings.Count(page, "<li><code>"); resp.StatusCode != http.StatusOK || !strings.Contains(page, `id="recovery-codes"`) || n != mfa.DefaultRecoveryCodes {
			t.Fatalf("confirm: %d, %d recovery codes shown, want %d", resp.StatusCode, n, mfa.DefaultRecoveryCodes)
		}
		if code, _ := sam.whoami(); code != http.StatusOK {
			t.Errorf("no session after the enrolment: %d", code)
		}
	})
	t.Run("codes already given", func(t *testing.T) {
		eve := newClientOf(t, c.srv, c.con)
		if resp := eve.signIn("eve@demo.example", pw); resp.Header.Get("Location") != "/login/mfa" {
			t.Fatalf("sign-in went to %q, want /login/mfa", resp.Header.Get("Location"))
		}
		eve.post("/login/mfa/send", url.Values{"factor": {f.ID}})
		resp, _ := eve.post("/login/mfa", url.Values{"method": {guard.MethodCode}, "code": {emailCode(t, c.con, "eve.codes@demo.example")}})
		if resp.Header.Get("Location") != "/login/enrol" {
			t.Fatalf("the email code under require-MFA went to %q, want /login/enrol", resp.Header.Get("Location"))
		}
		resp, page := enrolAtSignIn(t, eve)
		if strings.Contains(page, `id="recovery-codes"`) {
			t.Errorf("confirm: %d, a recovery codes page with %d codes", resp.StatusCode, strings.Count(page, "<li><code>"))
		}
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
			t.Errorf("confirm: %d to %q, want a redirect to /", resp.StatusCode, resp.Header.Get("Location"))
		} else if msg := flashAfter(eve, resp); !strings.Contains(msg, "Authenticator app added") {
			t.Errorf("the page after the enrolment says %q", msg)
		}
		if code, _ := eve.whoami(); code != http.StatusOK {
			t.Errorf("no session after the enrolment: %d", code)
		}
	})
}

// pendingOwner starts a second sign-in of the owner (who signed in on c
// with their authenticator app) on a client of its own, up to its
// second step.
func pendingOwner(t *testing.T, c *client, password string) *client {
	t.Helper()
	o := newClientOf(t, c.srv, c.con)
	o.clock = c.clock
	if resp := o.signIn(ownerEmail, password); resp.Header.Get("Location") != "/login/mfa" {
		t.Fatalf("the owner's sign-in: %d to %q, want /login/mfa", resp.StatusCode, resp.Header.Get("Location"))
	}
	return o
}

// A second factor accepted when the user already has the one session
// the organisation allows, under "refuse new sessions": 409 with the
// limit of the tenant the sign-in is for, and the sign-in ends (its
// cookie cleared).
func TestSecondStepSessionLimit(t *testing.T) {
	c, password := newClient(t)
	c.signInAdmin(ownerEmail, password)
	setPolicy(t, c.con, func(p *guard.Policy) { p.SessionLimit, p.OnSessionLimit = 1, guard.RefuseNewSession })
	o := pendingOwner(t, c, password)
	resp, body := o.post("/login/mfa", url.Values{"method": {"totp"}, "code": {o.totp(c.app(ownerEmail))}})
	if resp.StatusCode != http.StatusConflict || !strings.Contains(body, "You are already signed in elsewhere, and your organisation allows one session per user") {
		t.Errorf("the second step beyond the session limit: %d\n%s", resp.StatusCode, body)
	}
	if k := cookieNamed(resp, pendingCookie); k == nil || k.MaxAge >= 0 {
		t.Error("the pending sign-in's cookie was not cleared")
	}
	if code, _ := o.whoami(); code != http.StatusUnauthorized {
		t.Errorf("a session beyond the limit: %d", code)
	}
	if code, _ := c.whoami(); code != http.StatusOK {
		t.Errorf("the session in place: %d", code)
	}
}

// A second step from an address the organisation's allow-list for people
// does not hold (a list set after the password step, or another network
// meanwhile) is refused with 403, as the password step is, not a server
// error.
func TestSecondStepIPNotAllowed(t *testing.T) {
	c, password := newClient(t)
	c.signInAdmin(ownerEmail, password)
	o := pendingOwner(t, c, password)
	g, ctx, sys := c.con.g, t.Context(), guard.System("test")
	lists, err := g.IPAllowLists(ctx, sys, demoTenant)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.SetIPAllowList(ctx, sys, demoTenant, guard.IPListChange{Scope: ipfilter.Users,
		Entries: []string{"198.51.100.0/24"}, Version: lists.Version}); err != nil {
		t.Fatal(err)
	}
	resp, body := o.post("/login/mfa", url.Values{"method": {"totp"}, "code": {o.totp(c.app(ownerEmail))}})
	if resp.StatusCode != http.StatusForbidden || !strings.Contains(body, "network address is not allowed") {
		t.Errorf("the second step from an address not allowed: %d\n%s", resp.StatusCode, body)
	}
	if code, _ := o.whoami(); code != http.StatusUnauthorized {
		t.Errorf("a session from an address not allowed: %d", code)
	}
}

// Guard's CompletePendingEnrolment gives the recovery codes of the factor
// it enrolled (it stays enrolled) with ErrSessionLimit when a session of
// the user made between the enrolment, which ends the user's sessions,
// and the new session fills the one the organisation allows, under
// "refuse new sessions". That race cannot be timed from outside, so the
// console's answer to it is called with what Guard gives: 409 with the
// limit in words, as the second step says it, the sign-in's cookie
// cleared, and the codes, which are the user's only copy, shown.
func TestEnrolAtSignInSessionLimit(t *testing.T) {
	c, _ := newClient(t)
	setPolicy(t, c.con, func(p *guard.Policy) {
		p.RequireMFA, p.SessionLimit, p.OnSessionLimit = true, 1, guard.RefuseNewSession
	})
	st := pendingState{Token: "pending", Tenant: demoTenant, Enrol: true}
	const limit = "You are already signed in elsewhere, and your organisation allows one session per user"
	for _, codes := range [][]string{{"code-one", "code-two"}, nil} {
		w := httptest.NewRecorder()
		c.con.app.enrolDone(w, httptest.NewRequest(http.MethodPost, "/login/enrol/confirm", nil), st,
			guard.LoginResult{RecoveryCodes: codes}, guard.ErrSessionLimit)
		body := w.Body.String()
		if w.Code != http.StatusConflict || !strings.Contains(body, limit) {
			t.Errorf("codes %q: %d\n%s", codes, w.Code, body)
		}
		for _, code := range codes {
			if !strings.Contains(body, "<li><code>"+code+"</code></li>") {
				t.Errorf("recovery code %q not shown:\n%s", code, body)
			}
		}
		if k, ok := cookieFrom(w, pendingCookie); !ok || k.MaxAge >= 0 {
			t.Errorf("codes %q: the pending sign-in's cookie was not cleared", codes)
		}
		if k, ok := cookieFrom(w, sessionCookie); ok && k.MaxAge >= 0 {
			t.Errorf("codes %q: a session cookie was set", codes)
		}
	}
}

// A sign-in left half-way (its pending cookie) ends when the browser
// signs in another way (a password alone, single sign-on) or signs out:
// its cookie is cleared, and its second step is no longer offered.
func TestSignInEndsPendingSignIn(t *testing.T) {
	c, idp, password := newSSOClient(t, nil)
	idp.addUser("alice", "alice@example.com", "correct horse battery", "staff")
	const pw = "plum tree on the hill 42"
	if _, err := c.con.g.CreateUser(t.Context(), guard.System("test"), guard.NewUser{Tenant: demoTenant, Email: "sam@demo.example", Password: pw}); err != nil {
		t.Fatal(err)
	}
	emailFactor(t, c.con, "sam@demo.example", pw, "sam.codes@demo.example")
	// halfway starts Sam's sign-in on b, up to its second step.
	halfway := func(b *client) {
		t.Helper()
		if resp := b.signIn("sam@demo.example", pw); resp.Header.Get("Location") != "/login/mfa" {
			t.Fatalf("Sam's sign-in went to %q, want /login/mfa", resp.Header.Get("Location"))
		}
	}
	ended := func(b *client, how string, resp *http.Response) {
		t.Helper()
		if k := cookieNamed(resp, pendingCookie); k == nil || k.MaxAge >= 0 {
			t.Errorf("%s: the pending sign-in's cookie was not cleared", how)
		}
		if resp, _ := b.get("/login/mfa"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
			t.Errorf("%s: the second step is still offered: %d", how, resp.StatusCode)
		}
	}

	b := newClientOf(t, c.srv, c.con)
	halfway(b)
	resp := b.signIn(ownerEmail, password)
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/" {
		t.Fatalf("the owner's sign-in: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	ended(b, "a sign-in with a password alone", resp)

	halfway(b)
	resp, _ = b.post("/logout", url.Values{})
	ended(b, "a sign-out", resp)

	b.signIn(ownerEmail, password)
	_, who := b.whoami()
	halfway(b)
	resp, _ = b.post("/account/sessions/revoke", url.Values{"session": {who.SessionID}})
	if resp.Header.Get("Location") != "/login" {
		t.Fatalf("ending the browser's own session went to %q", resp.Header.Get("Location"))
	}
	ended(b, "ending the browser's own session", resp)

	b = newClientOf(t, c.srv, c.con)
	halfway(b)
	acs, answer := b.ssoAnswer(idp, "alice", "correct horse battery", "")
	resp, _ = b.postFrom(idp.url, "cross-site", acs, answer)
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("ACS: %d", resp.StatusCode)
	}
	ended(b, "a sign-in with SSO", resp)
}

// fail answers ErrSSORequired for any page, but only a step of a pending
// sign-in ends that sign-in (TestRequireSSO checks it is ended there): no
// other page's refusal clears the browser's pending sign-in. No Guard call
// outside the pending steps reaches fail with ErrSSORequired today; this
// keeps one that would from ending a sign-in it has nothing to do with.
func TestFailSSORequiredKeepsPendingSignIn(t *testing.T) {
	c, _ := newClient(t)
	w := httptest.NewRecorder()
	c.con.app.fail(w, httptest.NewRequest(http.MethodPost, "/account/password", nil), guard.ErrSSORequired, "/account")
	if w.Code != http.StatusForbidden {
		t.Errorf("ErrSSORequired: %d, want 403", w.Code)
	}
	if _, ok := cookieFrom(w, pendingCookie); ok {
		t.Error("a refusal outside the sign-in steps cleared the pending sign-in's cookie")
	}
}
