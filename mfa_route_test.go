package guard_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/mfa"
)

// SECURITY-CHECKLIST SE-16: a route that needs a second factor refuses a
// password-only session and asks for a step-up; a session signed in, or
// re-authenticated, with one passes.
// SECURITY-CHECKLIST RB-11.
func TestRequireMFA(t *testing.T) {
	f := newMFAFixture(t, manySessions)
	f.createUser(t, adaEmail, ownerPW)
	h := f.g.Middleware(f.g.RequireMFA(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })))
	call := func(token string, header ...string) *httptest.ResponseRecorder {
		return serveHandler(h, "/admin/export", token, client, header...)
	}
	if w := call(""); w.Code != http.StatusUnauthorized {
		t.Errorf("anonymous: %d, want 401", w.Code)
	}

	res, p := f.signIn(t, adaEmail, ownerPW)
	w := call(res.Token)
	if w.Code != http.StatusForbidden || w.Header().Get("Guard-Step-Up") != "mfa" {
		t.Errorf("password-only session: %d, step-up %q; want 403 asking for mfa", w.Code, w.Header().Get("Guard-Step-Up"))
	}
	if p.HasMFA() {
		t.Errorf("a password-only principal HasMFA")
	}
	denied := f.events(t, audit.AccessDenied)
	if len(denied) != 1 || denied[0].Reason != "mfa_required" || denied[0].Actor.ID != p.UserID || denied[0].Meta["path"] != "/admin/export" {
		t.Errorf("access.denied events %+v", denied)
	}

	// Enrolling a factor does not make this session one that used it;
	// re-authenticating with it does.
	secret, _ := f.enrolTOTP(t, p)
	if w := call(res.Token); w.Code != http.StatusForbidden {
		t.Errorf("the session after enrolling, before a step-up: %d, want 403", w.Code)
	}
	f.clock.Advance(30 * time.Second)
	tok, _, err := f.g.Reauthenticate(f.ctx, p, res.Token, guard.Proof{Password: ownerPW, TOTP: f.code(t, secret)})
	if err != nil {
		t.Fatal(err)
	}
	if w := call(tok); w.Code != 204 {
		t.Errorf("after a step-up with the authenticator app: %d, want 204", w.Code)
	}

	// A sign-in with both factors passes at once.
	f.clock.Advance(30 * time.Second)
	pend := f.pending(t, adaEmail, ownerPW)
	both, err := f.complete(guard.MethodTOTP, pend.Token, f.code(t, secret))
	if err != nil {
		t.Fatal(err)
	}
	if w := call(both.Token); w.Code != 204 {
		t.Errorf("a session signed in with two factors: %d, want 204", w.Code)
	}

	// An API key is not a session that used a second factor.
	key, _, err := f.g.CreateAPIKey(f.ctx, guard.System("test"), guard.NewAPIKey{Tenant: tenantID, Name: "export"})
	if err != nil {
		t.Fatal(err)
	}
	if w := call("", "Authorization", "Bearer "+key); w.Code != http.StatusForbidden {
		t.Errorf("an API key: %d, want 403", w.Code)
	}
}

// An email one-time code is a lower-assurance factor (NIST SP 800-63B
// §5.1.3.1; SECURITY-CHECKLIST, "Email one-time codes"): a sign-in
// completed with one is not a session that passed a second factor for
// RequireMFA (SE-16, RB-11). An SMS code is.
func TestRequireMFAEmailCodeIsNotEnough(t *testing.T) {
	f := newMFAFixture(t, manySessions)
	f.createUser(t, adaEmail, ownerPW)
	h := f.g.Middleware(f.g.RequireMFA(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })))
	call := func(token string) *httptest.ResponseRecorder { return serveHandler(h, "/admin/users", token, client) }

	_, p := f.signIn(t, adaEmail, ownerPW)
	email := f.enrolEmail(t, p, "ada.codes@example.test")
	sms := f.enrolSMS(t, p, "+447700900123")

	res, err := f.withEmailCode(t, adaEmail, ownerPW, email)
	if err != nil {
		t.Fatalf("sign-in with the email code: %v", err)
	}
	pe, err := f.g.Authenticate(f.ctx, res.Token)
	if err != nil || pe.HasMFA() {
		t.Errorf("session signed in with an email code: HasMFA %v (%v), want false", pe.HasMFA(), err)
	}
	if w := call(res.Token); w.Code != http.StatusForbidden || w.Header().Get("Guard-Step-Up") != "mfa" {
		t.Errorf("session signed in with an email code: %d, step-up %q; want 403 asking for mfa", w.Code, w.Header().Get("Guard-Step-Up"))
	}
	if evs := f.events(t, audit.LoginSucceeded); len(evs) == 0 || evs[len(evs)-1].Meta["mfa"] != string(mfa.KindEmail) {
		t.Errorf("login.succeeded events %+v, the last with mfa=email", evs)
	}

	f.clock.Advance(time.Minute) // past the resend cool-down
	pend := f.pending(t, adaEmail, ownerPW)
	if err := f.g.SendLoginCode(f.ctx, pend.Token, sms.ID, "203.0.113.5", "test"); err != nil {
		t.Fatal(err)
	}
	res, err = f.complete(guard.MethodCode, pend.Token, f.out.lastSMSCode(t))
	if err != nil {
		t.Fatalf("sign-in with the SMS code: %v", err)
	}
	if w := call(res.Token); w.Code != 204 {
		t.Errorf("session signed in with an SMS code: %d, want 204", w.Code)
	}
}

// lastSMSCode returns the code of the last SMS sent.
func (o *outbox) lastSMSCode(t testing.TB) string {
	t.Helper()
	o.mu.Lock()
	defer o.mu.Unlock()
	if len(o.sms) == 0 {
		t.Fatal("no SMS sent")
	}
	_, text, _ := strings.Cut(o.sms[len(o.sms)-1], "|")
	return digits6.FindString(text)
}

// With "require MFA" and email codes not accepted for it
// (Policy.MFAAllowEmail off), a user whose only factor is email proves
// it, then must enrol an authenticator app before getting a session:
// before, the email code alone gave a session, so such a user never met
// the policy. Inside the grace period the session comes, flagged to
// enrol; with MFAAllowEmail it comes as it is.
func TestEmailOnlyUserUnderRequireMFA(t *testing.T) {
	f := newMFAFixture(t, manySessions)
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	email := f.enrolEmail(t, p, "ada.codes@example.test")
	sys := guard.System("test")
	setPolicy := func(pol guard.Policy) {
		t.Helper()
		tn, err := f.g.Tenant(f.ctx, tenantID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.g.SetPolicy(f.ctx, sys, tenantID, pol, tn.Version); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Minute) // past the policy cache and the resend cool-down
	}
	withEmailCode := func() guard.LoginResult {
		t.Helper()
		res, err := f.withEmailCode(t, adaEmail, ownerPW, email)
		if err != nil {
			t.Fatalf("the email code: %v", err)
		}
		return res
	}

	setPolicy(guard.Policy{RequireMFA: true, MFAGrace: time.Hour})
	res := withEmailCode()
	if pe, err := f.g.Authenticate(f.ctx, res.Token); err != nil || !pe.MustEnrol() {
		t.Errorf("inside the grace period: %+v, %v; want a session flagged to enrol", res, err)
	}

	f.clock.Advance(time.Hour)
	res = withEmailCode()
	if res.Token != "" || res.Pending == nil || !res.Pending.Enrol {
		t.Fatalf("after the grace period: %+v; want no session, a pending enrolment", res)
	}
	en, err := f.g.BeginPendingTOTP(f.ctx, res.Pending.Token, "203.0.113.5", "test", "")
	if err != nil {
		t.Fatal(err)
	}
	done, err := f.g.CompletePendingEnrolment(f.ctx, guard.SecondFactor{Pending: res.Pending.Token, FactorID: en.Factor.ID,
		Code: f.code(t, en.Secret), IP: "203.0.113.5", UserAgent: "test"})
	if err != nil {
		t.Fatal(err)
	}
	if pe, err := f.g.Authenticate(f.ctx, done.Token); err != nil || !pe.HasMFA() {
		t.Errorf("after enrolling an app: %v, HasMFA %v; want a session with a second factor", err, pe.HasMFA())
	}

	setPolicy(guard.Policy{RequireMFA: true, MFAAllowEmail: true})
	f.clock.Advance(30 * time.Second)
	if res, err := f.withEmailCode(t, adaEmail, ownerPW, email); err != nil || res.Token == "" {
		t.Errorf("email codes accepted by the policy: %+v, %v; want a session", res, err)
	}
}
