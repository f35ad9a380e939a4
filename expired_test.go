package guard_test

import (
	"errors"
	"net/http"
	"sync"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// expiredSite is an MFA fixture whose refusals go through Config.OnRefuse
// (to see their cause), with an admin, Adam, whose password is then
// expired by expire.
type expiredSite struct {
	*mfaFixture
	adam guard.User
	mu   sync.Mutex
	last error // the cause of the last refusal
}

const adamEmail = "adam@example.test"

func newExpiredSite(t *testing.T, mutate ...func(*guard.Config)) *expiredSite {
	t.Helper()
	s := &expiredSite{}
	s.mfaFixture = newMFAFixture(t, append([]func(*guard.Config){func(c *guard.Config) {
		c.OnRefuse = func(w http.ResponseWriter, r *http.Request, status int, cause error) {
			s.mu.Lock()
			s.last = cause
			s.mu.Unlock()
			w.WriteHeader(status)
		}
	}}, mutate...)...)
	var err error
	s.adam, err = s.g.CreateUser(s.ctx, guard.System("test"), guard.NewUser{Tenant: tenantID, Email: adamEmail, Name: "Adam", Password: ownerPW, Roles: []string{rbac.Admin}})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *expiredSite) cause() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := s.last
	s.last = nil
	return c
}

// through runs one request with the session token through Middleware and
// then h, and returns the status and Guard-Reason of the answer.
func (s *expiredSite) through(h func(http.Handler) http.Handler, token string) (int, string) {
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusNoContent) })
	w := serveHandler(s.g.Middleware(h(ok)), "/", token, client)
	return w.Code, w.Header().Get(guard.ReasonHeader)
}

// signInExpired signs Adam in with his password, which must be changed,
// and returns the session's token and principal.
func (s *expiredSite) signInExpired(t *testing.T) (string, guard.Principal) {
	t.Helper()
	res, err := s.login(adamEmail, ownerPW)
	if err != nil || !res.PasswordExpired || res.Token == "" {
		t.Fatalf("sign-in with a password to change: %+v, %v", res, err)
	}
	p, err := s.g.Authenticate(s.ctx, res.Token)
	if err != nil || !p.PasswordExpired() {
		t.Fatalf("the session: %+v, %v; want FlagPasswordExpired", p, err)
	}
	p.IP, p.UserAgent = "203.0.113.5", "test"
	return res.Token, p
}

// PW-9 and the tenant's maximum password age: a session signed in with a
// password that must be changed authenticates, reads its own account and
// changes the password, but every permission check refuses it — Require
// and RequireMFA with 403 and "Guard-Reason: password_expired" (the cause
// given to OnRefuse is ErrPasswordChangeRequired), Authorize, Can and the
// admin functions with ErrPasswordChangeRequired, each refusal recorded —
// until ChangePasswordAndRotate gives it a new token without the flag.
func TestExpiredPasswordSessionMayOnlyChangeIt(t *testing.T) {
	for _, tc := range []struct {
		name   string
		mutate func(*guard.Config)
		expire func(t *testing.T, s *expiredSite)
	}{
		{"marked compromised", func(*guard.Config) {}, func(t *testing.T, s *expiredSite) {
			if err := s.g.ExpirePassword(s.ctx, guard.System("security"), tenantID, s.adam.ID); err != nil {
				t.Fatal(err)
			}
		}},
		{"past the maximum age", func(c *guard.Config) { c.Defaults = guard.Policy{PasswordMaxAge: 90 * 24 * time.Hour} },
			func(t *testing.T, s *expiredSite) { s.clock.Advance(91 * 24 * time.Hour) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newExpiredSite(t, tc.mutate)
			tc.expire(t, s)
			token, p := s.signInExpired(t)

			for name, h := range map[string]func(http.Handler) http.Handler{
				"Require(users:read)":    s.g.Require(rbac.Users, rbac.Read),
				"Require(contacts:read)": s.g.Require(rbac.Contacts, rbac.Read),
				"RequireMFA":             s.g.RequireMFA,
			} {
				if code, reason := s.through(h, token); code != http.StatusForbidden || reason != guard.ReasonPasswordExpired {
					t.Errorf("%s: %d, Guard-Reason %q; want 403, %s", name, code, reason, guard.ReasonPasswordExpired)
				}
				if c := s.cause(); !errors.Is(c, guard.ErrPasswordChangeRequired) {
					t.Errorf("%s: OnRefuse's cause %v, want ErrPasswordChangeRequired", name, c)
				}
			}
			if code, _ := s.through(guard.RequireSession, token); code != http.StatusNoContent {
				t.Errorf("RequireSession: %d, want 204", code)
			}

			if ok, err := s.g.Can(s.ctx, p, rbac.Users, rbac.Read); ok || !errors.Is(err, guard.ErrPasswordChangeRequired) {
				t.Errorf("Can = %v, %v; want false, ErrPasswordChangeRequired", ok, err)
			}
			if _, err := s.g.Authorize(s.ctx, p, rbac.Users, rbac.Read); !errors.Is(err, guard.ErrPasswordChangeRequired) || !errors.Is(err, guard.ErrForbidden) {
				t.Errorf("Authorize = %v, want ErrPasswordChangeRequired (and ErrForbidden)", err)
			}
			for name, call := range map[string]func() error{
				"ListUsers": func() error { _, err := s.g.ListUsers(s.ctx, p, tenantID, "", 10); return err },
				"CreateUser": func() error {
					_, err := s.g.CreateUser(s.ctx, p, guard.NewUser{Tenant: tenantID, Email: "eve@example.test", Password: "another fine passphrase"})
					return err
				},
				"GrantRole":    func() error { return s.g.GrantRole(s.ctx, p, tenantID, "user:"+s.adam.ID, rbac.Manager) },
				"QueryAudit":   func() error { _, err := s.g.QueryAudit(s.ctx, p, tenantID, audit.Query{}); return err },
				"AccessReview": func() error { _, err := s.g.AccessReview(s.ctx, p, tenantID); return err },
				"RequestApproval": func() error {
					_, err := s.g.RequestApproval(s.ctx, p, "campaigns:send", "c1", nil, 0)
					return err
				},
			} {
				if err := call(); !errors.Is(err, guard.ErrPasswordChangeRequired) {
					t.Errorf("%s = %v, want ErrPasswordChangeRequired", name, err)
				}
			}
			if n := reasons(s.events(t, audit.AccessDenied))[guard.ReasonPasswordExpired]; n < 10 {
				t.Errorf("%d access.denied events with reason password_expired, want one for each refusal", n)
			}

			// Its own account it may see.
			if u, err := s.g.User(s.ctx, p, tenantID, s.adam.ID); err != nil || !u.PasswordExpired && tc.name == "marked compromised" {
				t.Errorf("User (own) = %+v, %v", u, err)
			}
			if _, err := s.g.UserSessions(s.ctx, p, tenantID, s.adam.ID); err != nil {
				t.Errorf("UserSessions (own) = %v", err)
			}
			if _, err := s.g.RolesOf(s.ctx, p, tenantID, "user:"+s.adam.ID); err != nil {
				t.Errorf("RolesOf (own) = %v", err)
			}

			// The change: a new token without the flag, the old one void.
			const next = "an entirely new passphrase"
			if _, _, err := s.g.ChangePasswordAndRotate(s.ctx, p, "not-the-token", guard.PasswordChange{Current: ownerPW, New: next}); !errors.Is(err, guard.ErrUnauthenticated) {
				t.Errorf("ChangePasswordAndRotate with another token = %v, want ErrUnauthenticated", err)
			}
			nt, ns, err := s.g.ChangePasswordAndRotate(s.ctx, p, token, guard.PasswordChange{Current: ownerPW, New: next})
			if err != nil || nt == "" || ns.Flags&guard.FlagPasswordExpired != 0 {
				t.Fatalf("ChangePasswordAndRotate = %q, flags %b, %v", nt, ns.Flags, err)
			}
			if _, err := s.g.Authenticate(s.ctx, token); !errors.Is(err, guard.ErrUnauthenticated) {
				t.Errorf("the old token after the change: %v, want ErrUnauthenticated", err)
			}
			if code, reason := s.through(s.g.Require(rbac.Users, rbac.Read), nt); code != http.StatusNoContent || reason != "" {
				t.Errorf("Require after the change: %d, Guard-Reason %q; want 204", code, reason)
			}
			np, err := s.g.Authenticate(s.ctx, nt)
			if err != nil || np.PasswordExpired() {
				t.Fatalf("the new session: %+v, %v", np, err)
			}
			if ok, err := s.g.Can(s.ctx, np, rbac.Users, rbac.Read); !ok || err != nil {
				t.Errorf("Can after the change = %v, %v", ok, err)
			}
			if _, err := s.g.ListUsers(s.ctx, np, tenantID, "", 10); err != nil {
				t.Errorf("ListUsers after the change = %v", err)
			}
			if res, err := s.login(adamEmail, next); err != nil || res.PasswordExpired {
				t.Errorf("sign-in with the new password: PasswordExpired %v, %v", res.PasswordExpired, err)
			}
		})
	}
}

// ChangePassword, which cannot give the session a new token, ends a
// session whose password had to be changed along with the others: the
// user signs in again with the new password and may use their roles. A
// reset ends it too, and the next sign-in is not asked for a change.
func TestExpiredPasswordChangedOrReset(t *testing.T) {
	s := newExpiredSite(t)
	sys := guard.System("security")
	if err := s.g.ExpirePassword(s.ctx, sys, tenantID, s.adam.ID); err != nil {
		t.Fatal(err)
	}
	token, p := s.signInExpired(t)
	const next = "an entirely new passphrase"
	if err := s.g.ChangePassword(s.ctx, p, guard.PasswordChange{Current: ownerPW, New: next}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.g.Authenticate(s.ctx, token); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("the session after ChangePassword: %v, want ErrUnauthenticated", err)
	}
	res, err := s.login(adamEmail, next)
	if err != nil || res.PasswordExpired {
		t.Fatalf("sign-in after the change: %+v, %v", res, err)
	}
	if code, _ := s.through(s.g.Require(rbac.Users, rbac.Read), res.Token); code != http.StatusNoContent {
		t.Errorf("Require after the change and a new sign-in: %d, want 204", code)
	}

	// Marked again, then reset.
	if err := s.g.ExpirePassword(s.ctx, sys, tenantID, s.adam.ID); err != nil {
		t.Fatal(err)
	}
	res, err = s.login(adamEmail, next)
	if err != nil || !res.PasswordExpired {
		t.Fatalf("sign-in after the second mark: %+v, %v", res, err)
	}
	if err := s.g.ForgotPassword(s.ctx, guard.ForgotRequest{Tenant: tenantID, Email: adamEmail, IP: "203.0.113.5"}); err != nil {
		t.Fatal(err)
	}
	m := s.mailTo(adamEmail)
	if err := s.g.ResetPassword(s.ctx, resetTo(lastResetLink(t, m), "yet another new passphrase")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.g.Authenticate(s.ctx, res.Token); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("the flagged session after the reset: %v, want ErrUnauthenticated", err)
	}
	res, err = s.login(adamEmail, "yet another new passphrase")
	if err != nil || res.PasswordExpired {
		t.Fatalf("sign-in after the reset: %+v, %v", res, err)
	}
	if code, _ := s.through(s.g.Require(rbac.Users, rbac.Read), res.Token); code != http.StatusNoContent {
		t.Errorf("Require after the reset: %d, want 204", code)
	}
}
