package guard_test

// "A tamper-evident audit log per tenant, written before any action is
// reported as done" (doc.go): with the audit store down, a change that
// lowers security or changes trust must not stand unrecorded. It is either
// undone when its record fails (the previous value put back), or recorded
// before it is made. Revocations go the other way: they stand, unrecorded,
// and the call says so with ErrUnavailable.

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/store/memstore"
)

// withFailingAudit wraps the audit store of a config in a failingAudit,
// stored in *fa, to take the audit log down and up during a test.
func withFailingAudit(fa **failingAudit) func(*guard.Config) {
	return func(c *guard.Config) {
		*fa = &failingAudit{Audit: c.Stores.Audit.(*memstore.Audit)}
		c.Stores.Audit = *fa
	}
}

// wantUnavailable fails the test unless err is ErrUnavailable.
func wantUnavailable(t *testing.T, call string, err error) {
	t.Helper()
	if !errors.Is(err, guard.ErrUnavailable) {
		t.Fatalf("%s with the audit log down: %v, want ErrUnavailable", call, err)
	}
}

// Revocations move toward the safer state: one that cannot be recorded
// stands (rolling it back would be worse), and the call returns
// ErrUnavailable.
func TestRevocationsUnrecordedStand(t *testing.T) {
	sys := guard.System("test")
	type setup struct {
		f     *fixture
		fa    *failingAudit
		user  guard.User
		token string
		p     guard.Principal
	}
	newSetup := func(t *testing.T) *setup {
		s := &setup{}
		s.f = newFixture(t, withFailingAudit(&s.fa))
		s.user = s.f.createUser(t, adaEmail, ownerPW)
		res, err := s.f.login(adaEmail, ownerPW)
		if err != nil {
			t.Fatal(err)
		}
		s.token = res.Token
		if s.p, err = s.f.g.Authenticate(s.f.ctx, res.Token); err != nil {
			t.Fatal(err)
		}
		return s
	}
	sessionEnded := func(t *testing.T, s *setup) {
		t.Helper()
		if _, err := s.f.g.Authenticate(s.f.ctx, s.token); !errors.Is(err, guard.ErrUnauthenticated) {
			t.Errorf("Authenticate after the revocation: %v, want ErrUnauthenticated", err)
		}
	}
	for _, tc := range []struct {
		name   string
		revoke func(*setup) error
		after  func(*testing.T, *setup)
	}{
		{"Logout", func(s *setup) error { return s.f.g.Logout(s.f.ctx, s.p) }, sessionEnded},
		{"RevokeSession", func(s *setup) error {
			return s.f.g.RevokeSession(s.f.ctx, sys, tenantID, s.user.ID, s.p.SessionID())
		}, sessionEnded},
		{"RevokeUserSessions", func(s *setup) error {
			_, err := s.f.g.RevokeUserSessions(s.f.ctx, sys, tenantID, s.user.ID)
			return err
		}, sessionEnded},
		{"DeactivateUser", func(s *setup) error {
			return s.f.g.DeactivateUser(s.f.ctx, sys, tenantID, s.user.ID)
		}, func(t *testing.T, s *setup) {
			sessionEnded(t, s)
			if u, err := s.f.g.User(s.f.ctx, sys, tenantID, s.user.ID); err != nil || u.Status != auth.StatusDeactivated {
				t.Errorf("User = %v, %v; want deactivated", u.Status, err)
			}
		}},
		{"DeleteUser", func(s *setup) error {
			return s.f.g.DeleteUser(s.f.ctx, sys, tenantID, s.user.ID)
		}, func(t *testing.T, s *setup) {
			sessionEnded(t, s)
			if _, err := s.f.g.User(s.f.ctx, sys, tenantID, s.user.ID); !errors.Is(err, guard.ErrUserNotFound) {
				t.Errorf("User after the deletion: %v, want ErrUserNotFound", err)
			}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := newSetup(t)
			s.fa.set(true)
			err := tc.revoke(s)
			s.fa.set(false)
			wantUnavailable(t, tc.name, err)
			tc.after(t, s)
		})
	}

	t.Run("RevokeAPIKey", func(t *testing.T) {
		s := newSetup(t)
		key, k, err := s.f.g.CreateAPIKey(s.f.ctx, sys, guard.NewAPIKey{Tenant: tenantID, Name: "reporting"})
		if err != nil {
			t.Fatal(err)
		}
		s.fa.set(true)
		err = s.f.g.RevokeAPIKey(s.f.ctx, sys, tenantID, k.ID)
		s.fa.set(false)
		wantUnavailable(t, "RevokeAPIKey", err)
		if _, err := s.f.g.AuthenticateAPIKey(s.f.ctx, key, netip.MustParseAddr("203.0.113.5")); err == nil {
			t.Error("the key still authenticates after its revocation")
		}
	})
}

// Taking an action out of four-eyes approval, unrecorded, is undone: the
// action needs an approval again.
func TestSetApprovalRequiredUnrecordedIsUndone(t *testing.T) {
	var fa *failingAudit
	f := newFixture(t, withFailingAudit(&fa))
	sys := guard.System("test")
	if err := f.g.SetApprovalRequired(f.ctx, sys, tenantID, "campaigns:send", true); err != nil {
		t.Fatal(err)
	}
	fa.set(true)
	err := f.g.SetApprovalRequired(f.ctx, sys, tenantID, "campaigns:send", false)
	fa.set(false)
	wantUnavailable(t, "SetApprovalRequired", err)
	rules, err := f.g.ApprovalRules(f.ctx, sys, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(rules, rbac.Permission{Section: rbac.Campaigns, Action: rbac.Send}) {
		t.Errorf("approval rules %v although the change could not be recorded, want campaigns:send", rules)
	}
}

// A role definition that cannot be recorded is undone: a replaced role
// has its previous permissions again, a new role is gone.
func TestDefineRoleUnrecordedIsUndone(t *testing.T) {
	var fa *failingAudit
	f := newFixture(t, withFailingAudit(&fa))
	sys := guard.System("test")
	if err := f.g.DefineRole(f.ctx, sys, tenantID, "support", []string{"reports:read"}); err != nil {
		t.Fatal(err)
	}
	fa.set(true)
	err := f.g.DefineRole(f.ctx, sys, tenantID, "support", []string{"reports:read", "users:manage"})
	if err == nil {
		fa.set(false)
		t.Fatal("DefineRole (replace) with the audit log down succeeded")
	}
	wantUnavailable(t, "DefineRole (replace)", err)
	err = f.g.DefineRole(f.ctx, sys, tenantID, "payer", []string{"billing:manage"})
	fa.set(false)
	wantUnavailable(t, "DefineRole (new)", err)
	roles, err := f.g.Roles(f.ctx, sys, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range roles {
		switch r.Name {
		case "support":
			if want := []rbac.Permission{{Section: rbac.Reports, Action: rbac.Read}}; !slices.Equal(r.Permissions, want) {
				t.Errorf("support has %v although the change could not be recorded, want %v", r.Permissions, want)
			}
		case "payer":
			t.Errorf("role payer exists although its definition could not be recorded: %v", r.Permissions)
		}
	}
}

// An approval that cannot be recorded is used up at once: the requester
// cannot carry out the action with it.
func TestApproveRequestUnrecordedIsUsedUp(t *testing.T) {
	var fa *failingAudit
	f := newFixture(t, withFailingAudit(&fa))
	req, _ := f.userWithRoles(t, "rob@example.test", rbac.Manager)
	appr, _ := f.userWithRoles(t, "ann@example.test", rbac.Manager)
	if err := f.g.SetApprovalRequired(f.ctx, guard.System("test"), tenantID, "campaigns:send", true); err != nil {
		t.Fatal(err)
	}
	payload := []byte(`{"campaign":"c1"}`)
	ap, err := f.g.RequestApproval(f.ctx, req, "campaigns:send", "c1", payload, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	fa.set(true)
	_, err = f.g.ApproveRequest(f.ctx, appr, ap.ID)
	fa.set(false)
	wantUnavailable(t, "ApproveRequest", err)
	if _, err := f.g.ConsumeApproval(f.ctx, req, ap.ID, "campaigns:send", "c1", payload); !errors.Is(err, rbac.ErrConsumed) {
		t.Errorf("ConsumeApproval of an approval that could not be recorded: %v, want rbac.ErrConsumed", err)
	}
}

// A rejection stands even when it cannot be recorded.
func TestRejectRequestUnrecordedStands(t *testing.T) {
	var fa *failingAudit
	f := newFixture(t, withFailingAudit(&fa))
	req, _ := f.userWithRoles(t, "rob@example.test", rbac.Manager)
	appr, _ := f.userWithRoles(t, "ann@example.test", rbac.Manager)
	ap, err := f.g.RequestApproval(f.ctx, req, "campaigns:send", "c1", nil, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	fa.set(true)
	_, err = f.g.RejectRequest(f.ctx, appr, ap.ID)
	fa.set(false)
	wantUnavailable(t, "RejectRequest", err)
	if _, err := f.g.ApproveRequest(f.ctx, appr, ap.ID); !errors.Is(err, rbac.ErrNotPending) {
		t.Errorf("ApproveRequest after the rejection: %v, want rbac.ErrNotPending", err)
	}
}

// Deleting a role takes permissions away: it stands even when it cannot be
// recorded.
func TestDeleteRoleUnrecordedStands(t *testing.T) {
	var fa *failingAudit
	f := newFixture(t, withFailingAudit(&fa))
	sys := guard.System("test")
	if err := f.g.DefineRole(f.ctx, sys, tenantID, "support", []string{"reports:read"}); err != nil {
		t.Fatal(err)
	}
	fa.set(true)
	err := f.g.DeleteRole(f.ctx, sys, tenantID, "support")
	fa.set(false)
	wantUnavailable(t, "DeleteRole", err)
	roles, err := f.g.Roles(f.ctx, sys, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range roles {
		if r.Name == "support" {
			t.Errorf("role support still defined: %v", r.Permissions)
		}
	}
}
