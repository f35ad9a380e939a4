package guard_test

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/rbac"
	"github.com/pquerna/otp/totp"
)

// A tenant's policy, changed after a sign-in, reaches the open session at
// its next request: a lowered idle timeout or lifetime ends it like its
// own would (recorded as session.expired), and MFA or SSO required since
// ends a session whose sign-in lacked it (session.revoked, reason
// mfa_required or sso_required; Guard-Reason policy_changed). Before,
// open sessions kept the limits and requirements of their sign-in for up
// to the 7-day lifetime.
func TestPolicyChangeReachesOpenSessions(t *testing.T) {
	sys := guard.System("test")
	protected := func(g *guard.Guard) http.Handler {
		return g.Middleware(guard.RequireSession(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })))
	}
	setPolicy := func(t *testing.T, f *mfaFixture, p guard.Policy) {
		t.Helper()
		tn, err := f.g.Tenant(f.ctx, tenantID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.g.SetPolicy(f.ctx, sys, tenantID, p, tn.Version); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Second) // past the policy cache
	}
	t.Run("IdleTimeoutLowered", func(t *testing.T) {
		f := newMFAFixture(t)
		f.createUser(t, adaEmail, ownerPW)
		res, _ := f.signIn(t, adaEmail, ownerPW)
		f.clock.Advance(2 * time.Hour) // idle, within the 24 h it was created with
		setPolicy(t, f, guard.Policy{IdleTimeout: time.Hour})
		if _, err := f.g.Authenticate(f.ctx, res.Token); !errors.Is(err, guard.ErrUnauthenticated) {
			t.Fatalf("idle 2 h under a 1 h policy: %v, want ErrUnauthenticated", err)
		}
		if r := reasons(f.events(t, audit.SessionExpired)); r["idle_timeout"] != 1 {
			t.Errorf("session.expired reasons %v, want one idle_timeout", r)
		}
		// A session in use is not affected.
		res, _ = f.signIn(t, adaEmail, ownerPW)
		for range 4 {
			f.clock.Advance(50 * time.Minute)
			if _, err := f.g.Authenticate(f.ctx, res.Token); err != nil {
				t.Fatalf("a request every 50 min under a 1 h idle timeout: %v", err)
			}
		}
	})
	t.Run("LifetimeLowered", func(t *testing.T) {
		f := newMFAFixture(t)
		f.createUser(t, adaEmail, ownerPW)
		res, _ := f.signIn(t, adaEmail, ownerPW)
		setPolicy(t, f, guard.Policy{IdleTimeout: time.Hour, SessionLifetime: 2 * time.Hour}) // the idle timeout may not exceed it
		for age := 30 * time.Minute; age <= 150*time.Minute; age += 30 * time.Minute {
			f.clock.Advance(30 * time.Minute)
			_, err := f.g.Authenticate(f.ctx, res.Token)
			if (err == nil) != (age < 2*time.Hour) {
				t.Fatalf("a busy session %v old under a 2 h lifetime: %v", age, err)
			}
		}
		if r := reasons(f.events(t, audit.SessionExpired)); r["lifetime"] != 1 {
			t.Errorf("session.expired reasons %v, want one lifetime", r)
		}
	})
	t.Run("MFARequired", func(t *testing.T) {
		f := newMFAFixture(t)
		f.createUser(t, adaEmail, ownerPW)
		f.createUser(t, "bob@example.test", ownerPW)
		plain, _ := f.signIn(t, adaEmail, ownerPW)
		_, bobP := f.signIn(t, "bob@example.test", ownerPW)
		secret, _ := f.enrolTOTP(t, bobP)
		f.clock.Advance(30 * time.Second) // the next TOTP step: a code is used once
		pend := f.pending(t, "bob@example.test", ownerPW)
		withMFA, err := f.complete(guard.MethodTOTP, pend.Token, f.code(t, secret))
		if err != nil {
			t.Fatal(err)
		}
		// With a grace period, the password-only session goes on until it
		// ends, and so does one opened inside it.
		f.createUser(t, "dee@example.test", ownerPW)
		before, deeP := f.signIn(t, "dee@example.test", ownerPW)
		setPolicy(t, f, guard.Policy{RequireMFA: true, MFAGrace: time.Hour})
		if _, err := f.g.Authenticate(f.ctx, plain.Token); err != nil {
			t.Fatalf("inside the grace period: %v", err)
		}
		f.createUser(t, "cy@example.test", ownerPW)
		inGrace, cyP := f.signIn(t, "cy@example.test", ownerPW)
		if !cyP.MustEnrol() {
			t.Fatalf("a sign-in inside the grace period: flags %b, want FlagMustEnrol", cyP.Flags)
		}
		// A password-only step-up inside the grace period, of a session
		// opened before the switch, restarts the session's clock but not
		// its deadline (it was an escape: the session looked as if opened
		// after the switch, needing nothing).
		f.clock.Advance(time.Minute)
		stepped, _, err := f.g.Reauthenticate(f.ctx, deeP, before.Token, guard.Proof{Password: ownerPW})
		if err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Hour)
		if _, err := f.g.Authenticate(f.ctx, inGrace.Token); !errors.Is(err, guard.ErrPolicyChanged) {
			t.Errorf("a session opened inside the grace period, after it: %v, want ErrPolicyChanged", err)
		}
		if _, err := f.g.Authenticate(f.ctx, stepped); !errors.Is(err, guard.ErrPolicyChanged) {
			t.Errorf("a session stepped up with a password inside the grace period, after it: %v, want ErrPolicyChanged", err)
		}
		w := serveHandler(protected(f.g), "/", plain.Token, client)
		if w.Code != 401 || w.Header().Get(guard.ReasonHeader) != guard.ReasonPolicyChanged {
			t.Errorf("a password-only session after the grace period: %d, reason %q; want 401, %q",
				w.Code, w.Header().Get(guard.ReasonHeader), guard.ReasonPolicyChanged)
		}
		if _, err := f.g.Authenticate(f.ctx, plain.Token); !errors.Is(err, guard.ErrUnauthenticated) {
			t.Errorf("the same session again: %v, want ErrUnauthenticated", err)
		}
		evs := f.events(t, audit.SessionRevoked)
		if len(evs) != 3 {
			t.Errorf("%d session.revoked events, want three", len(evs))
		}
		for _, e := range evs {
			if e.Reason != "mfa_required" || e.Actor.Kind != audit.ActorSystem {
				t.Errorf("session.revoked by %s, reason %q; want the system, mfa_required", e.Actor.Kind, e.Reason)
			}
		}
		if _, err := f.g.Authenticate(f.ctx, withMFA.Token); err != nil {
			t.Errorf("a session signed in with a second factor: %v, want it kept", err)
		}
		// Signing in again meets the policy: the user is sent to enrol.
		if pend := f.pending(t, adaEmail, ownerPW); !pend.Enrol {
			t.Error("signing in again: not sent to enrol")
		}
	})
	t.Run("EmailCode", func(t *testing.T) {
		// A session signed in with an email code meets RequireMFA while
		// the tenant accepts email codes for it, and not once it stops.
		f := newMFAFixture(t)
		f.createUser(t, adaEmail, ownerPW)
		_, p := f.signIn(t, adaEmail, ownerPW)
		email := f.enrolEmail(t, p, "ada.codes@example.test")
		f.clock.Advance(time.Minute) // past the resend cool-down
		res, err := f.withEmailCode(t, adaEmail, ownerPW, email)
		if err != nil {
			t.Fatal(err)
		}
		if pe, err := f.g.Authenticate(f.ctx, res.Token); err != nil || pe.Flags&guard.FlagEmailCode == 0 || pe.HasMFA() {
			t.Fatalf("an email-code session: %+v, %v; want FlagEmailCode and no FlagMFA", pe, err)
		}
		f.clock.Advance(time.Second) // the session is older than the switch
		setPolicy(t, f, guard.Policy{RequireMFA: true, MFAAllowEmail: true})
		if _, err := f.g.Authenticate(f.ctx, res.Token); err != nil {
			t.Errorf("with email codes accepted: %v, want the session kept", err)
		}
		setPolicy(t, f, guard.Policy{RequireMFA: true})
		if _, err := f.g.Authenticate(f.ctx, res.Token); !errors.Is(err, guard.ErrPolicyChanged) {
			t.Errorf("once email codes are not accepted: %v, want ErrPolicyChanged", err)
		}
	})
	t.Run("StoreFailureDenies", func(t *testing.T) {
		tenants := &flakyTenants{}
		f := newMFAFixture(t, func(c *guard.Config) {
			tenants.TenantStore = c.Stores.Tenants
			c.Stores.Tenants = tenants
		})
		f.createUser(t, adaEmail, ownerPW)
		res, _ := f.signIn(t, adaEmail, ownerPW)
		f.clock.Advance(time.Second) // past the policy cache
		tenants.fail.Store(true)
		if _, err := f.g.Authenticate(f.ctx, res.Token); !errors.Is(err, guard.ErrUnavailable) {
			t.Errorf("with the tenant store down: %v, want ErrUnavailable", err)
		}
	})
}

// flakyTenants fails Tenant while fail is set.
type flakyTenants struct {
	guard.TenantStore
	fail atomic.Bool
}

func (s *flakyTenants) Tenant(ctx context.Context, id string) (guard.Tenant, error) {
	if s.fail.Load() {
		return guard.Tenant{}, errors.New("tenant store down")
	}
	return s.TenantStore.Tenant(ctx, id)
}

// SSO required since the sign-in: a password session ends at its next
// request; SSO sessions and the break-glass owner's go on.
func TestRequireSSOReachesOpenSessions(t *testing.T) {
	s := newSSOSite(t)
	ctx := t.Context()
	sys := guard.System("test")
	owner, err := s.g.CreateUser(ctx, sys, guard.NewUser{Tenant: tenantID, Email: "owner@corp.example", Password: ownerPW, Roles: []string{rbac.Owner}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.g.CreateUser(ctx, sys, guard.NewUser{Tenant: tenantID, Email: "bob@corp.example", Password: ownerPW}); err != nil {
		t.Fatal(err)
	}
	login := func(email string) string {
		res, err := s.g.Login(ctx, guard.LoginRequest{Tenant: tenantID, Email: email, Password: ownerPW, IP: "203.0.113.5", UserAgent: "test"})
		if err != nil || res.Token == "" {
			t.Fatalf("password login of %s: %+v, %v", email, res, err)
		}
		return res.Token
	}
	bob, ownerTok := login("bob@corp.example"), login("owner@corp.example")
	// The owner enrols an authenticator app and signs in again with it:
	// that session is the break-glass one.
	op, err := s.g.Authenticate(ctx, ownerTok)
	if err != nil {
		t.Fatal(err)
	}
	en, err := s.g.BeginTOTP(ctx, op, "Phone")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	if _, err := s.g.ConfirmFactor(ctx, op, en.Factor.ID, totpAt(t, en.Secret, now)); err != nil {
		t.Fatal(err)
	}
	res, err := s.g.Login(ctx, guard.LoginRequest{Tenant: tenantID, Email: "owner@corp.example", Password: ownerPW, IP: "203.0.113.5", UserAgent: "test"})
	if err != nil || res.Pending == nil {
		t.Fatalf("owner's login with a factor: %+v, %v; want a pending sign-in", res, err)
	}
	done, err := s.g.CompleteLogin(ctx, guard.SecondFactor{Pending: res.Pending.Token, Method: guard.MethodTOTP,
		Code: totpAt(t, en.Secret, now.Add(30*time.Second)), IP: "203.0.113.5", UserAgent: "test"})
	if err != nil {
		t.Fatal(err)
	}
	ownerMFA := done.Token
	s.idpPut(t, "/users/alice", `{"name":"alice","password":"correct horse","email":"alice@corp.example","groups":["Staff"]}`)
	alice, _, _, resp := s.signIn(t, "alice", "correct horse")
	resp.Body.Close()
	whoami := func() int {
		r, err := alice.Get(s.srv.URL + "/api/whoami")
		if err != nil {
			t.Fatal(err)
		}
		r.Body.Close()
		return r.StatusCode
	}
	if code := whoami(); code != 200 {
		t.Fatalf("the SSO session before: %d", code)
	}
	tn, _ := s.g.Tenant(ctx, tenantID)
	if _, err := s.g.SetPolicy(ctx, sys, tenantID, guard.Policy{RequireSSO: true, BreakGlassUser: owner.ID}, tn.Version); err != nil {
		t.Fatal(err)
	}
	if _, err := s.g.Authenticate(ctx, bob); !errors.Is(err, guard.ErrPolicyChanged) {
		t.Errorf("a password session after SSO became required: %v, want ErrPolicyChanged", err)
	}
	if code := whoami(); code != 200 {
		t.Errorf("the SSO session after: %d, want 200", code)
	}
	if _, err := s.g.Authenticate(ctx, ownerMFA); err != nil {
		t.Errorf("the break-glass owner's session with a second factor: %v, want it kept", err)
	}
	page, err := s.g.QueryAudit(ctx, sys, tenantID, audit.Query{Action: string(audit.SessionRevoked)})
	if err != nil || len(page.Events) != 1 || page.Events[0].Reason != "sso_required" {
		t.Errorf("session.revoked events %+v, %v; want one, reason sso_required", page.Events, err)
	}
}

func totpAt(t *testing.T, secret string, at time.Time) string {
	t.Helper()
	c, err := totp.GenerateCode(secret, at)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// A password-only sign-in judged under the policy from before RequireMFA
// was switched on (here another replica's cached policy, as a sign-in
// racing SetPolicy would) opens a session with no second factor and no
// FlagMustEnrol; once the policy is in force everywhere, that session
// ends at its next request like one opened before the switch.
func TestSessionRacingRequireMFAEnds(t *testing.T) {
	f := newMFAFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	kr, err := mfa.NewKeyring(mfa.KeyringConfig{Keys: map[string][]byte{"k1": []byte("0123456789abcdef0123456789abcdef")}, Current: "k1"})
	if err != nil {
		t.Fatal(err)
	}
	g2, err := guard.New(guard.Config{Stores: f.mem.Stores(), AuditKey: auditKey, Hasher: fastHasher, Now: f.clock.Now,
		MFA: &mfa.Config{Keyring: kr, Issuer: "Acme", Email: f.out, SMS: f.out}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g2.EffectivePolicy(f.ctx, tenantID); err != nil { // replica 2 caches the policy
		t.Fatal(err)
	}
	tn, err := f.g.Tenant(f.ctx, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.SetPolicy(f.ctx, guard.System("test"), tenantID, guard.Policy{RequireMFA: true}, tn.Version); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(100 * time.Millisecond) // within replica 2's cache
	res, err := g2.Login(f.ctx, guard.LoginRequest{Tenant: tenantID, Email: adaEmail, Password: ownerPW, IP: "203.0.113.5", UserAgent: "test"})
	if err != nil || res.Token == "" {
		t.Fatalf("precondition: replica 2, with the old policy cached, signs in with the password alone: %+v, %v", res, err)
	}
	f.clock.Advance(time.Minute)
	if _, err := f.g.Authenticate(f.ctx, res.Token); !errors.Is(err, guard.ErrPolicyChanged) {
		t.Errorf("the raced password-only session under RequireMFA: %v, want ErrPolicyChanged", err)
	}
}

// Policy.SessionLifetime, lowered, applies to open sessions, measured from
// the last full authentication (the session's CreatedAt), which a step-up
// moves. Reauthenticate renews the authentication, not the session's
// life: a session kept busy and stepped up at 100 minutes under a 2-hour
// lifetime still ends at 2 hours, where before the step-up gave it 2 hours
// more.
func TestReauthenticateKeepsLoweredLifetime(t *testing.T) {
	f := newMFAFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	res, _ := f.signIn(t, adaEmail, ownerPW)
	start := f.clock.Now()
	setPolicyAsSystem(t, f, guard.Policy{IdleTimeout: time.Hour, SessionLifetime: 2 * time.Hour})
	tok := res.Token
	// Busy: a request every 50 minutes; a step-up at 100 minutes.
	var p guard.Principal
	for range 2 {
		f.clock.Advance(50 * time.Minute)
		var err error
		if p, err = f.g.Authenticate(f.ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	p.IP, p.UserAgent = "203.0.113.5", "test"
	tok, s, err := f.g.Reauthenticate(f.ctx, p, tok, guard.Proof{Password: ownerPW})
	if err != nil {
		t.Fatal(err)
	}
	if want := start.Add(2 * time.Hour); !s.ExpiresAt.Equal(want) {
		t.Errorf("after the step-up ExpiresAt = %v, want %v (sign-in + the policy's 2 h)", s.ExpiresAt, want)
	}
	if p, err := f.g.Authenticate(f.ctx, tok); err != nil || f.clock.Now().Sub(p.AuthAt) > time.Second {
		t.Fatalf("right after the step-up: AuthAt %v (now %v), %v; want a recent authentication", p.AuthAt, f.clock.Now(), err)
	}
	f.clock.Advance(19 * time.Minute) // 1 h 59 min 1 s after the sign-in
	if _, err := f.g.Authenticate(f.ctx, tok); err != nil {
		t.Fatalf("before the 2 h lifetime: %v", err)
	}
	f.clock.Advance(time.Minute)
	if _, err := f.g.Authenticate(f.ctx, tok); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Fatalf("%v after the sign-in under a 2 h SessionLifetime, stepped up at 100 min: %v, want ErrUnauthenticated",
			f.clock.Now().Sub(start), err)
	}
	if r := reasons(f.events(t, audit.SessionExpired)); r["lifetime"] != 1 {
		t.Errorf("session.expired reasons %v, want one lifetime", r)
	}
}

// Policy limits and requirements reach RotateSession as they reach
// Authenticate: a session idle past a lowered IdleTimeout, or one a
// requirement switched on since its sign-in no longer allows, is ended and
// refused with what Authenticate would return, never given a new token
// (and a fresh LastSeen) that would bring it back to life.
func TestRotateSessionUnderPolicy(t *testing.T) {
	t.Run("IdleTimeoutLowered", func(t *testing.T) {
		f := newMFAFixture(t)
		f.createUser(t, adaEmail, ownerPW)
		res, p := f.signIn(t, adaEmail, ownerPW)
		setPolicyAsSystem(t, f, guard.Policy{IdleTimeout: time.Hour})
		f.clock.Advance(2 * time.Hour) // idle 2 h under a 1 h idle timeout: ended
		if nt, _, err := f.g.RotateSession(f.ctx, res.Token, p.Flags); !errors.Is(err, guard.ErrUnauthenticated) || nt != "" {
			t.Fatalf("RotateSession of a session idle 2 h under a 1 h policy: %q, %v; want ErrUnauthenticated", nt, err)
		}
		if r := reasons(f.events(t, audit.SessionExpired)); r["idle_timeout"] != 1 {
			t.Errorf("session.expired reasons %v, want one idle_timeout", r)
		}
		if _, err := f.g.Authenticate(f.ctx, res.Token); !errors.Is(err, guard.ErrUnauthenticated) {
			t.Errorf("Authenticate afterwards: %v, want ErrUnauthenticated", err)
		}
	})
	t.Run("MFARequired", func(t *testing.T) {
		f := newMFAFixture(t)
		f.createUser(t, adaEmail, ownerPW)
		res, p := f.signIn(t, adaEmail, ownerPW) // a password alone
		f.clock.Advance(time.Second)             // opened before the switch
		setPolicyAsSystem(t, f, guard.Policy{RequireMFA: true})
		if nt, _, err := f.g.RotateSession(f.ctx, res.Token, p.Flags); !errors.Is(err, guard.ErrPolicyChanged) || nt != "" {
			t.Fatalf("RotateSession of a password session under RequireMFA (no grace): %q, %v; want ErrPolicyChanged", nt, err)
		}
		if r := reasons(f.events(t, audit.SessionRevoked)); r["mfa_required"] != 1 {
			t.Errorf("session.revoked reasons %v, want one mfa_required", r)
		}
	})
	t.Run("Allowed", func(t *testing.T) {
		f := newMFAFixture(t)
		f.createUser(t, adaEmail, ownerPW)
		res, p := f.signIn(t, adaEmail, ownerPW)
		setPolicyAsSystem(t, f, guard.Policy{IdleTimeout: time.Hour})
		f.clock.Advance(50 * time.Minute)
		nt, _, err := f.g.RotateSession(f.ctx, res.Token, p.Flags)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.g.Authenticate(f.ctx, nt); err != nil {
			t.Fatalf("the rotated token: %v", err)
		}
		if _, err := f.g.Authenticate(f.ctx, res.Token); !errors.Is(err, guard.ErrUnauthenticated) {
			t.Errorf("the old token: %v, want ErrUnauthenticated", err)
		}
	})
}
