package guard_test

// Audit of the sessions axis (the one-session rule, timeouts, revocation,
// store failures, cookies) end to end through the facade. Each test fails
// on the code as audited because of a defect, and passes once it is fixed.

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// auditSetPolicy changes the tenant's policy as the system and moves the
// clock past the policy cache.
func auditSetPolicy(t *testing.T, f *fixture, change func(*guard.Policy)) {
	t.Helper()
	tn, err := f.g.Tenant(f.ctx, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	pol := tn.Policy
	change(&pol)
	if _, err := f.g.SetPolicy(f.ctx, guard.System("admin"), tenantID, pol, tn.Version); err != nil {
		t.Fatalf("SetPolicy: %v", err)
	}
	f.clock.Advance(time.Second)
}

// With "refuse the new session" at the limit, a session that the tenant's
// policy has already ended (it would be refused at its next request) must
// not take the user's place: Policy.IdleTimeout says a lowered timeout
// applies to open sessions too, RequireSSO that open password sessions end,
// and the session-limit trim already weighs only the sessions the policy
// still allows. Store.Create counts a session by its own limits, so the
// user is refused every sign-in (ErrSessionLimit) until that session's own
// 24 h idle timeout passes, unless the old device happens to make a
// request first.
func TestAuditSessions_RefuseNewCountsSessionThePolicyEnded(t *testing.T) {
	t.Run("LoweredIdleTimeout", func(t *testing.T) {
		f := newFixture(t)
		f.createUser(t, adaEmail, ownerPW)
		auditSetPolicy(t, f, func(p *guard.Policy) { p.SessionLimit, p.OnSessionLimit = 1, guard.RefuseNewSession })
		old, err := f.login(adaEmail, ownerPW)
		if err != nil || old.Token == "" {
			t.Fatalf("first sign-in: %+v, %v", old, err)
		}
		auditSetPolicy(t, f, func(p *guard.Policy) { p.IdleTimeout = time.Hour })
		f.clock.Advance(2 * time.Hour) // the first session is past the tenant's idle timeout

		res, err := f.login(adaEmail, ownerPW)
		if err != nil || res.Token == "" {
			t.Errorf("sign-in after the only session ended under the tenant's 1 h idle timeout: %v; want a session (the old one no longer counts)", err)
		}
		if _, err := f.g.Authenticate(context.Background(), old.Token); !errors.Is(err, guard.ErrUnauthenticated) {
			t.Errorf("old session after 2 h idle under a 1 h timeout: %v, want ErrUnauthenticated", err)
		}
	})
	t.Run("RequireSSO", func(t *testing.T) {
		s := newSSOSite(t)
		ctx := t.Context()
		sys := guard.System("test")
		if _, err := s.g.CreateUser(ctx, sys, guard.NewUser{Tenant: tenantID, Email: "bob@corp.example", Password: ownerPW}); err != nil {
			t.Fatal(err)
		}
		s.idpPut(t, "/users/bob", `{"name":"bob","password":"correct horse","email":"bob@corp.example","groups":["Staff"]}`)
		setPol := func(p guard.Policy) {
			t.Helper()
			tn, err := s.g.Tenant(ctx, tenantID)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := s.g.SetPolicy(ctx, sys, tenantID, p, tn.Version); err != nil {
				t.Fatalf("SetPolicy: %v", err)
			}
		}
		limit := guard.Policy{SessionLimit: 1, OnSessionLimit: guard.RefuseNewSession}
		setPol(limit)
		old, err := s.g.Login(ctx, guard.LoginRequest{Tenant: tenantID, Email: "bob@corp.example", Password: ownerPW, IP: "203.0.113.5", UserAgent: "test"})
		if err != nil || old.Token == "" {
			t.Fatalf("password sign-in before SSO is required: %+v, %v", old, err)
		}
		limit.RequireSSO = true
		setPol(limit)
		// The password session is over under the policy...
		if _, err := s.g.Authenticate(ctx, old.Token); err == nil {
			t.Fatal("the password session still authenticates while the tenant requires SSO")
		}
		// ...so that the only way in, SSO, works. (Above, the password
		// session was presented and so ended; make another that is not.)
		setPol(guard.Policy{SessionLimit: 1, OnSessionLimit: guard.RefuseNewSession})
		if _, err := s.g.Login(ctx, guard.LoginRequest{Tenant: tenantID, Email: "bob@corp.example", Password: ownerPW, IP: "203.0.113.5", UserAgent: "test"}); err != nil {
			t.Fatal(err)
		}
		setPol(limit)
		_, _, _, resp := s.signIn(t, "bob", "correct horse")
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !strings.Contains(string(b), `"sso":true`) {
			t.Errorf("SSO sign-in while the user's only other session is a password one the tenant no longer allows: %s %s (login.failed reasons %v); want signed in",
				resp.Status, strings.TrimSpace(string(b)), s.loginFailures(t))
		}
	})
}

// A sign-in that fails after the store created its session (here the
// user store's RecordLogin fails; a deactivation, a password change or a
// factor enrolment racing the sign-in take the same path) drops its new
// session, but the user's older session that Create evicted to make room
// stays ended, and nothing records that: the failed sign-in is on record
// (login.failed, reason unavailable), the eviction is not, and the other
// device is told "signed in elsewhere" for a sign-in that never happened.
// Either the old session must still work, or its end must be on record
// (session.evicted naming it), as the sign-in that succeeds records it.
func TestAuditSessions_FailedSignInEvictsUnrecorded(t *testing.T) {
	fx := newFaultFix(t, false)
	fx.createUser(t, adaEmail, ownerPW)
	old := fx.login2(t, adaEmail)
	oldP, err := fx.g.Authenticate(fx.ctx, old)
	if err != nil {
		t.Fatal(err)
	}
	fx.fc.armName("UserUpdates.RecordLogin")
	res, err := fx.login(adaEmail, ownerPW)
	if _, fired := fx.fc.disarm(); fired != "UserUpdates.RecordLogin" {
		t.Fatalf("the fault did not fire (%q)", fired)
	}
	if !errors.Is(err, guard.ErrUnavailable) || res.Token != "" {
		t.Fatalf("sign-in with RecordLogin failing: %+v, %v; want ErrUnavailable", res, err)
	}
	if len(fx.events(t, audit.LoginFailed)) == 0 {
		t.Fatal("the failed sign-in is not on record: the audit log is not what failed here")
	}
	_, aerr := fx.g.Authenticate(fx.ctx, old)
	if aerr == nil {
		return // the old session survived the failed sign-in: fine
	}
	if !fx.recordedAny(t, audit.SessionEvicted, oldP.SessionID()) {
		t.Errorf("the user's previous session ended (%v) by a sign-in that failed, with no session.evicted (or other) event naming it", aerr)
	}
}

// UserSessions says it lists a user's live sessions, and RevokeUserSessions
// counts the live ones it ended; both judge a session by its own idle
// timeout, not by the tenant's lowered one that Authenticate applies. A
// session that can no longer be used (2 h idle under a 1 h timeout) is
// listed to the user and their administrators as live, and counted as
// ended ("sessions_ended": 1) when it is revoked.
func TestAuditSessions_ListShowsSessionsThePolicyEnded(t *testing.T) {
	f := newFixture(t)
	ada := f.createUser(t, adaEmail, ownerPW)
	res, err := f.login(adaEmail, ownerPW)
	if err != nil || res.Token == "" {
		t.Fatalf("sign-in: %+v, %v", res, err)
	}
	auditSetPolicy(t, f, func(p *guard.Policy) { p.IdleTimeout = time.Hour })
	f.clock.Advance(2 * time.Hour)

	ss, err := f.g.UserSessions(f.ctx, guard.System("test"), tenantID, ada.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ss) != 0 {
		t.Errorf("UserSessions lists %d session(s) after 2 h idle under the tenant's 1 h idle timeout, want none (Authenticate refuses it)", len(ss))
	}
	n, err := f.g.RevokeUserSessions(f.ctx, guard.System("test"), tenantID, ada.ID)
	if err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("RevokeUserSessions counts %d live session(s) ended, want 0: the only one had ended under the tenant's idle timeout", n)
	}
}

// Config.TouchInterval may be any duration shorter than the idle timeout
// (here 5 minutes, to write less), and a tenant may lower its idle timeout
// to 5 minutes, which "applies to open sessions too". A session opened
// before the change is then touched only every 5 minutes (TouchInterval,
// or half its own 24 h idle timeout), so a user active every minute is
// signed out 5 minutes after the last touch: the session's last-seen time
// is written by the rule of its own idle timeout but judged by the
// tenant's. A session opened after the change is touched every half idle
// timeout and survives the same activity.
func TestAuditSessions_LoweredIdleTimeoutEndsActiveSession(t *testing.T) {
	f := newFixture(t, func(c *guard.Config) { c.TouchInterval = 5 * time.Minute })
	f.createUser(t, adaEmail, ownerPW)
	res, err := f.login(adaEmail, ownerPW)
	if err != nil || res.Token == "" {
		t.Fatalf("sign-in: %+v, %v", res, err)
	}
	auditSetPolicy(t, f, func(p *guard.Policy) { p.IdleTimeout = 5 * time.Minute })
	for i := 1; i <= 10; i++ {
		f.clock.Advance(time.Minute)
		if _, err := f.g.Authenticate(f.ctx, res.Token); err != nil {
			t.Fatalf("request %d, a minute after the previous one, under a 5 min idle timeout: %v; an active session must stay signed in", i, err)
		}
	}
}

// FlagMustEnrol "marks a session of a user who has no second factor while
// the tenant requires one" (Principal.MustEnrol: "should be sent to
// enrol"). A user signed in inside the grace period enrols an
// authenticator app, then steps up with it: the renewed session has
// FlagMFA, and still FlagMustEnrol, because Reauthenticate keeps every
// flag of the old session. The host keeps sending a user who has enrolled
// and proved the factor to the enrolment page.
func TestAuditSessions_MustEnrolSurvivesStepUpWithFactor(t *testing.T) {
	f := newMFAFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	setPolicyAsSystem(t, f, guard.Policy{RequireMFA: true, MFAGrace: 7 * 24 * time.Hour})
	res, p := f.signIn(t, adaEmail, ownerPW)
	if !p.MustEnrol() {
		t.Fatalf("a password sign-in inside the grace period: flags %b, want FlagMustEnrol", p.Flags)
	}
	secret, _ := f.enrolTOTP(t, p)
	f.clock.Advance(30 * time.Second) // a fresh TOTP step
	tok, _, err := f.g.Reauthenticate(f.ctx, p, res.Token, guard.Proof{Password: ownerPW, TOTP: f.code(t, secret)})
	if err != nil {
		t.Fatalf("step-up with password and the new app: %v", err)
	}
	p2, err := f.g.Authenticate(f.ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	if !p2.HasMFA() {
		t.Fatalf("stepped up with the app: flags %b, want FlagMFA", p2.Flags)
	}
	if p2.MustEnrol() {
		t.Errorf("the user enrolled an app and stepped up with it, yet the session still says MustEnrol (flags %b)", p2.Flags)
	}
}
