package guard_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/store/memstore"
)

func TestCreateUserPolicy(t *testing.T) {
	f := newFixture(t)
	sys := guard.System("t")
	cases := []struct {
		name, password string
		rule           auth.Rule
	}{
		{"too short", "short12", auth.RuleTooShort},
		{"common", "password1234567", auth.RuleCommon},
		{"contains email local part", "alice-rocks-2026!", auth.RuleContainsEmail},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := f.g.CreateUser(f.ctx, sys, guard.NewUser{Tenant: tenantID, Email: "alice@example.com", Password: c.password})
			var pe *auth.PolicyError
			if !errors.As(err, &pe) || pe.Rule != c.rule {
				t.Fatalf("CreateUser: %v, want rule %s", err, c.rule)
			}
			if strings.Contains(err.Error(), c.password) {
				t.Fatalf("error echoes the password: %v", err)
			}
		})
	}
	if n := len(f.events(t, audit.PasswordRejected)); n != len(cases) {
		t.Fatalf("%d password.rejected events, want %d", n, len(cases))
	}
	// Nothing was created by the refusals.
	if us, _ := f.g.ListUsers(f.ctx, sys, tenantID, "", 10); len(us) != 0 {
		t.Fatalf("refused users were stored: %v", us)
	}
	f.createUser(t, "alice@example.com", ownerPW)
	_, err := f.g.CreateUser(f.ctx, sys, guard.NewUser{Tenant: tenantID, Email: "ALICE@example.com", Password: ownerPW})
	if !errors.Is(err, guard.ErrEmailTaken) {
		t.Fatalf("duplicate email: %v", err)
	}
}

func TestCrossTenantAdminForbidden(t *testing.T) {
	f := newFixture(t)
	sys := guard.System("t")
	if _, err := f.g.CreateTenant(f.ctx, sys, "globex", "Globex", guard.Policy{}); err != nil {
		t.Fatal(err)
	}
	victim, err := f.g.CreateUser(f.ctx, sys, guard.NewUser{Tenant: "globex", Email: "v@globex.test", Password: ownerPW})
	if err != nil {
		t.Fatal(err)
	}
	f.createUser(t, "alice@example.com", ownerPW)
	res, _ := f.login("alice@example.com", ownerPW)
	alice, _ := f.g.Authenticate(f.ctx, res.Token)
	for name, call := range map[string]func() error{
		"deactivate": func() error { return f.g.DeactivateUser(f.ctx, alice, "globex", victim.ID) },
		"delete":     func() error { return f.g.DeleteUser(f.ctx, alice, "globex", victim.ID) },
		"unlock":     func() error { return f.g.UnlockUser(f.ctx, alice, "globex", victim.ID) },
		"expire":     func() error { return f.g.ExpirePassword(f.ctx, alice, "globex", victim.ID) },
		"read":       func() error { _, err := f.g.User(f.ctx, alice, "globex", victim.ID); return err },
		"list":       func() error { _, err := f.g.ListUsers(f.ctx, alice, "globex", "", 10); return err },
		"create": func() error {
			_, err := f.g.CreateUser(f.ctx, alice, guard.NewUser{Tenant: "globex", Email: "x@globex.test"})
			return err
		},
		"policy":      func() error { _, err := f.g.SetPolicy(f.ctx, alice, "globex", guard.Policy{}, 1); return err },
		"new tenant":  func() error { _, err := f.g.CreateTenant(f.ctx, alice, "evil", "", guard.Policy{}); return err },
		"sessions":    func() error { _, err := f.g.UserSessions(f.ctx, alice, "globex", victim.ID); return err },
		"revoke all":  func() error { _, err := f.g.RevokeUserSessions(f.ctx, alice, "globex", victim.ID); return err },
		"revoke one":  func() error { return f.g.RevokeSession(f.ctx, alice, "globex", victim.ID, "x") },
		"lock status": func() error { _, err := f.g.LockState(f.ctx, alice, "globex", victim.ID); return err },
	} {
		if err := call(); !errors.Is(err, guard.ErrForbidden) {
			t.Errorf("%s across tenants: %v, want ErrForbidden", name, err)
		}
	}
	// The same user id looked up in the wrong tenant does not exist.
	if _, err := f.g.User(f.ctx, sys, tenantID, victim.ID); !errors.Is(err, guard.ErrUserNotFound) {
		t.Fatalf("user of globex visible in acme: %v", err)
	}
}

func TestDeactivateEndsSessionsAtOnce(t *testing.T) {
	f := newFixture(t, func(c *guard.Config) { c.Defaults = guard.Policy{SessionLimit: 3} })
	u := f.createUser(t, "bob@example.com", ownerPW)
	var tokens []string
	for range 3 {
		res, err := f.login("bob@example.com", ownerPW)
		if err != nil {
			t.Fatal(err)
		}
		tokens = append(tokens, res.Token)
	}
	if err := f.g.DeactivateUser(f.ctx, guard.System("admin"), tenantID, u.ID); err != nil {
		t.Fatal(err)
	}
	for _, tok := range tokens {
		if _, err := f.g.Authenticate(f.ctx, tok); !errors.Is(err, guard.ErrUnauthenticated) {
			t.Fatalf("session survived deactivation: %v", err)
		}
	}
	evs := f.events(t, audit.UserDeactivated)
	if len(evs) != 1 || evs[0].Meta["sessions_ended"] != "3" {
		t.Fatalf("user.deactivated events: %+v", evs)
	}
	if err := f.g.ReactivateUser(f.ctx, guard.System("admin"), tenantID, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.login("bob@example.com", ownerPW); err != nil {
		t.Fatalf("login after reactivation: %v", err)
	}
}

func TestDeleteUser(t *testing.T) {
	f := newFixture(t)
	u := f.createUser(t, "bob@example.com", ownerPW)
	res, _ := f.login("bob@example.com", ownerPW)
	if err := f.g.DeleteUser(f.ctx, guard.System("admin"), tenantID, u.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.Authenticate(f.ctx, res.Token); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Fatalf("session survived deletion: %v", err)
	}
	if _, err := f.g.User(f.ctx, guard.System("t"), tenantID, u.ID); !errors.Is(err, guard.ErrUserNotFound) {
		t.Fatalf("deleted user still there: %v", err)
	}
	// The email is free again.
	f.createUser(t, "bob@example.com", ownerPW)
}

func TestSelfDeactivationForbidden(t *testing.T) {
	f := newFixture(t)
	u := f.createUser(t, "alice@example.com", ownerPW)
	res, _ := f.login("alice@example.com", ownerPW)
	p, _ := f.g.Authenticate(f.ctx, res.Token)
	if err := f.g.DeactivateUser(f.ctx, p, tenantID, u.ID); !errors.Is(err, guard.ErrForbidden) {
		t.Fatalf("self-deactivation: %v", err)
	}
}

// SECURITY-CHECKLIST PW-10.
func TestChangePassword(t *testing.T) {
	f := newFixture(t, func(c *guard.Config) { c.Defaults = guard.Policy{SessionLimit: 5, PasswordHistory: 2} })
	f.createUser(t, "alice@example.com", ownerPW)
	a, _ := f.login("alice@example.com", ownerPW)
	b, _ := f.login("alice@example.com", ownerPW)
	pa, _ := f.g.Authenticate(f.ctx, a.Token)

	if err := f.g.ChangePassword(f.ctx, pa, guard.PasswordChange{Current: "wrong current", New: "a brand new passphrase"}); !errors.Is(err, guard.ErrInvalidCredentials) {
		t.Fatalf("wrong current password: %v", err)
	}
	st, _ := f.g.LockState(f.ctx, guard.System("t"), tenantID, pa.UserID)
	if st.Failures != 1 {
		t.Fatalf("wrong current password not counted as a failure: %+v", st)
	}
	var pe *auth.PolicyError
	if err := f.g.ChangePassword(f.ctx, pa, guard.PasswordChange{Current: ownerPW, New: ownerPW}); !errors.As(err, &pe) || pe.Rule != auth.RuleReused {
		t.Fatalf("reusing the current password: %v", err)
	}
	if err := f.g.ChangePassword(f.ctx, pa, guard.PasswordChange{Current: ownerPW, New: "a brand new passphrase"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.Authenticate(f.ctx, a.Token); err != nil {
		t.Fatalf("the changing session ended: %v", err)
	}
	if _, err := f.g.Authenticate(f.ctx, b.Token); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Fatalf("other session survived a password change: %v", err)
	}
	if _, err := f.login("alice@example.com", ownerPW); !errors.Is(err, guard.ErrInvalidCredentials) {
		t.Fatalf("old password still works: %v", err)
	}
	if _, err := f.login("alice@example.com", "a brand new passphrase"); err != nil {
		t.Fatalf("new password: %v", err)
	}
	// History of 2: the original password is still refused.
	if err := f.g.ChangePassword(f.ctx, pa, guard.PasswordChange{Current: "a brand new passphrase", New: ownerPW}); !errors.As(err, &pe) || pe.Rule != auth.RuleReused {
		t.Fatalf("password from history: %v", err)
	}
}

func TestLogoutAndRotate(t *testing.T) {
	f := newFixture(t)
	f.createUser(t, "alice@example.com", ownerPW)
	res, _ := f.login("alice@example.com", ownerPW)
	nt, _, err := f.g.RotateSession(f.ctx, res.Token, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.Authenticate(f.ctx, res.Token); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Fatalf("old token after rotation: %v", err)
	}
	p, err := f.g.Authenticate(f.ctx, nt)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.g.Logout(f.ctx, p); err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.Authenticate(f.ctx, nt); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Fatalf("token after logout: %v", err)
	}
	if n := len(f.events(t, audit.Logout)); n != 1 {
		t.Fatalf("%d logout events", n)
	}
}

func TestIdleTimeoutPerTenant(t *testing.T) {
	f := newFixture(t)
	tn, _ := f.g.Tenant(f.ctx, tenantID)
	if _, err := f.g.SetPolicy(f.ctx, guard.System("t"), tenantID, guard.Policy{IdleTimeout: 30 * time.Minute}, tn.Version); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Second) // past the policy cache
	f.createUser(t, "alice@example.com", ownerPW)
	res, err := f.login("alice@example.com", ownerPW)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(29 * time.Minute)
	if _, err := f.g.Authenticate(f.ctx, res.Token); err != nil {
		t.Fatalf("inside idle timeout: %v", err)
	}
	f.clock.Advance(29 * time.Minute) // the request above slid the timer
	if _, err := f.g.Authenticate(f.ctx, res.Token); err != nil {
		t.Fatalf("timer did not slide: %v", err)
	}
	f.clock.Advance(31 * time.Minute)
	if _, err := f.g.Authenticate(f.ctx, res.Token); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Fatalf("past idle timeout: %v", err)
	}
}

func TestSetPolicyConflict(t *testing.T) {
	f := newFixture(t)
	sys := guard.System("t")
	if _, err := f.g.SetPolicy(f.ctx, sys, tenantID, guard.Policy{SessionLimit: 2}, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.SetPolicy(f.ctx, sys, tenantID, guard.Policy{SessionLimit: 3}, 1); !errors.Is(err, guard.ErrConflict) {
		t.Fatalf("stale version: %v", err)
	}
	var pe *guard.PolicyError
	if _, err := f.g.SetPolicy(f.ctx, sys, tenantID, guard.Policy{PasswordMinLength: 4}, 2); !errors.As(err, &pe) {
		t.Fatalf("invalid policy: %v", err)
	}
}

func TestMiddleware(t *testing.T) {
	var fs *failingSessions
	f := newFixture(t, func(c *guard.Config) {
		fs = &failingSessions{Sessions: f0sessions(c)}
		c.Stores.Sessions = fs
	})
	f.createUser(t, "alice@example.com", ownerPW)
	res, _ := f.login("alice@example.com", ownerPW)
	h := f.g.Middleware(guard.RequireSession(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, _ := guard.PrincipalFrom(r.Context())
		w.Write([]byte(p.UserID + " " + p.IP))
	})))
	do := func(cookie string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = "[::ffff:203.0.113.9]:5555"
		if cookie != "" {
			r.Header.Set("Cookie", "other=1; __Host-guard="+cookie)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	if w := do(res.Token); w.Code != 200 || w.Body.String() != res.User.ID+" 203.0.113.9" {
		t.Fatalf("valid cookie: %d %q", w.Code, w.Body)
	}
	if w := do(""); w.Code != 401 {
		t.Fatalf("no cookie: %d", w.Code)
	}
	w := do("garbage")
	if w.Code != 401 || !strings.Contains(w.Header().Get("Set-Cookie"), "Max-Age=0") {
		t.Fatalf("bad cookie: %d, Set-Cookie %q", w.Code, w.Header().Get("Set-Cookie"))
	}
	fs.set(true)
	if w := do(res.Token); w.Code != 503 {
		t.Fatalf("session store down: %d, want 503", w.Code)
	}
	if _, err := f.g.Authenticate(f.ctx, res.Token); !errors.Is(err, guard.ErrUnavailable) {
		t.Fatalf("Authenticate with store down: %v", err)
	}
}

func TestSessionCookieAttributes(t *testing.T) {
	f := newFixture(t)
	f.createUser(t, "alice@example.com", ownerPW)
	res, _ := f.login("alice@example.com", ownerPW)
	w := httptest.NewRecorder()
	f.g.SetSessionCookie(w, res.Token, res.Session)
	c := w.Result().Cookies()[0]
	if c.Name != "__Host-guard" || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || c.Domain != "" {
		t.Fatalf("cookie %+v", c)
	}
}

func TestAuditChainVerifiesAfterFlows(t *testing.T) {
	f := newFixture(t)
	u := f.createUser(t, "alice@example.com", ownerPW)
	f.login("alice@example.com", "wrong one here")
	f.login("alice@example.com", ownerPW)
	f.g.DeactivateUser(f.ctx, guard.System("t"), tenantID, u.ID)
	rep, err := f.g.VerifyAudit(f.ctx, guard.System("test"), tenantID)
	if err != nil || !rep.OK || rep.Checked < 5 {
		t.Fatalf("Verify = %+v, %v", rep, err)
	}
	// No secret ever reaches the log.
	var sb strings.Builder
	if err := f.g.ExportAudit(f.ctx, guard.System("test"), tenantID, audit.Query{}, &sb, audit.JSONLines); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{ownerPW, "wrong one here"} {
		if strings.Contains(sb.String(), secret) {
			t.Fatalf("audit log contains a password")
		}
	}
}

// ExpirePassword: an admin of the tenant marks a user's password
// compromised. Every session of the user ends, each later password
// sign-in asks for a change until the user changes it, and the change
// clears the mark.
func TestExpirePassword(t *testing.T) {
	f, admin, adminTok, bob, bobToks := withMember(t)
	if err := f.g.ExpirePassword(f.ctx, admin, tenantID, bob.UserID); err != nil {
		t.Fatal(err)
	}
	for _, tok := range bobToks {
		if _, err := f.g.Authenticate(f.ctx, tok); !errors.Is(err, guard.ErrUnauthenticated) {
			t.Errorf("Bob's session after ExpirePassword: %v, want ErrUnauthenticated", err)
		}
	}
	if _, err := f.g.Authenticate(f.ctx, adminTok); err != nil {
		t.Errorf("the admin's own session: %v", err)
	}
	evs := f.events(t, audit.PasswordExpired)
	if len(evs) != 1 || evs[0].Target != bob.UserID || evs[0].Actor.ID != admin.UserID || evs[0].Meta["sessions_ended"] != "2" ||
		evs[0].IP != "203.0.113.5" {
		t.Errorf("password.expired events %+v", evs)
	}
	if u, _ := f.g.User(f.ctx, admin, tenantID, bob.UserID); !u.PasswordExpired {
		t.Errorf("User after ExpirePassword: %+v, want PasswordExpired", u)
	}

	// Every sign-in until the change asks for it.
	var p guard.Principal
	for i := range 2 {
		res, err := f.login("bob@example.test", ownerPW)
		if err != nil {
			t.Fatalf("sign-in %d after ExpirePassword: %v", i+1, err)
		}
		if !res.PasswordExpired || res.Session.Flags&guard.FlagPasswordExpired == 0 {
			t.Errorf("sign-in %d: PasswordExpired %v, flags %b; want the change asked for", i+1, res.PasswordExpired, res.Session.Flags)
		}
		if p, err = f.g.Authenticate(f.ctx, res.Token); err != nil || !p.PasswordExpired() {
			t.Errorf("principal of sign-in %d: %+v, %v; want PasswordExpired", i+1, p, err)
		}
	}
	if ok := f.events(t, audit.LoginSucceeded); ok[len(ok)-1].Meta["password_expired"] != "true" {
		t.Errorf("login.succeeded %+v, want password_expired", ok[len(ok)-1])
	}
	const next = "an entirely new passphrase"
	if err := f.g.ChangePassword(f.ctx, p, guard.PasswordChange{Current: ownerPW, New: next}); err != nil {
		t.Fatalf("ChangePassword: %v", err)
	}
	res, err := f.login("bob@example.test", next)
	if err != nil || res.PasswordExpired || res.Session.Flags&guard.FlagPasswordExpired != 0 {
		t.Errorf("sign-in after the change: PasswordExpired %v, flags %b, %v; want no change asked", res.PasswordExpired, res.Session.Flags, err)
	}
	if u, _ := f.g.User(f.ctx, admin, tenantID, bob.UserID); u.PasswordExpired {
		t.Errorf("User after the change: still PasswordExpired")
	}
}

// ExpirePassword refuses, changing nothing: a user without users:manage,
// the admin's own password, an unknown user, a user without a password, and
// a store failure (fail closed).
func TestExpirePasswordRefused(t *testing.T) {
	updates := &failingUpdates{Users: memstore.NewUsers()}
	f := newFixture(t, func(c *guard.Config) {
		updates.Users = c.Stores.Users.(*memstore.Users)
		c.Stores.UserUpdates = updates
		c.Defaults = guard.Policy{SessionLimit: 3}
	})
	admin, _ := f.userWithRoles(t, "admin@example.com", rbac.Admin)
	member, _ := f.userWithRoles(t, "mia@example.com", rbac.Manager)
	bob, bobTok := f.userWithRoles(t, "bob@example.com", rbac.Member)
	invited, err := f.g.CreateUser(f.ctx, guard.System("test"), guard.NewUser{Tenant: tenantID, Email: "new@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	var ie *guard.InputError
	for _, tc := range []struct {
		name string
		by   guard.Principal
		id   string
		down bool
		ok   func(error) bool
	}{
		{"NoPermission", member, bob.UserID, false, func(err error) bool { return errors.Is(err, guard.ErrForbidden) }},
		{"Self", admin, admin.UserID, false, func(err error) bool { return errors.Is(err, guard.ErrForbidden) }},
		{"UnknownUser", admin, "nobody", false, func(err error) bool { return errors.Is(err, guard.ErrUserNotFound) }},
		{"OverlongID", admin, strings.Repeat("x", auth.MaxIDBytes+1), false, func(err error) bool { return errors.Is(err, guard.ErrUserNotFound) }},
		{"NoPassword", admin, invited.ID, false, func(err error) bool { return errors.As(err, &ie) && ie.Field == "user" }},
		{"StoreDown", admin, bob.UserID, true, func(err error) bool { return errors.Is(err, guard.ErrUnavailable) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			updates.fail.Store(tc.down)
			defer updates.fail.Store(false)
			if err := f.g.ExpirePassword(f.ctx, tc.by, tenantID, tc.id); !tc.ok(err) {
				t.Errorf("ExpirePassword = %v", err)
			}
		})
	}
	if _, err := f.g.Authenticate(f.ctx, bobTok); err != nil {
		t.Errorf("Bob's session after the refusals: %v", err)
	}
	for _, id := range []string{bob.UserID, admin.UserID, invited.ID} {
		if u, _ := f.g.User(f.ctx, admin, tenantID, id); u.PasswordExpired {
			t.Errorf("user %s marked by a refused ExpirePassword", u.Email)
		}
	}
	if evs := f.events(t, audit.PasswordExpired); len(evs) != 0 {
		t.Errorf("password.expired events after refusals: %+v", evs)
	}
}

// failingUpdates fails ExpirePassword while fail is set.
type failingUpdates struct {
	*memstore.Users
	fail atomic.Bool
}

func (u *failingUpdates) ExpirePassword(ctx context.Context, tenant, id string) (bool, error) {
	if u.fail.Load() {
		return false, errDown
	}
	return u.Users.ExpirePassword(ctx, tenant, id)
}
