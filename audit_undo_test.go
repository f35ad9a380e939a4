package guard_test

// "A tamper-evident audit log per tenant, written before any action is
// reported as done" (doc.go): with the audit store down, a change that
// lowers security or changes trust must not stand unrecorded. It is either
// undone when its record fails (the previous value put back), or recorded
// before it is made. Revocations go the other way: they stand, unrecorded,
// and the call says so with ErrUnavailable.

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/sso"
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

// A policy change that cannot be recorded is undone: RequireMFA, switched
// off with the audit log down, is on again, and the policy can be edited
// from its new version once the log is back.
func TestSetPolicyUnrecordedIsUndone(t *testing.T) {
	var fa *failingAudit
	f := newMFAFixture(t, withFailingAudit(&fa))
	sys := guard.System("test")
	v, err := f.g.SetPolicy(f.ctx, sys, tenantID, guard.Policy{RequireMFA: true}, 1)
	if err != nil {
		t.Fatal(err)
	}
	before, err := f.g.Tenant(f.ctx, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	fa.set(true)
	_, err = f.g.SetPolicy(f.ctx, sys, tenantID, guard.Policy{RequireMFA: false, PasswordMinLength: 20}, v)
	fa.set(false)
	wantUnavailable(t, "SetPolicy", err)
	pol, err := f.g.EffectivePolicy(f.ctx, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	if !pol.RequireMFA || pol.PasswordMinLength == 20 {
		t.Errorf("policy changed although the change could not be recorded: RequireMFA %v, PasswordMinLength %d",
			pol.RequireMFA, pol.PasswordMinLength)
	}
	after, err := f.g.Tenant(f.ctx, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	if !after.Policy.MFARequiredSince.Equal(before.Policy.MFARequiredSince) {
		t.Errorf("MFARequiredSince %v, want %v as before", after.Policy.MFARequiredSince, before.Policy.MFARequiredSince)
	}
	if n := len(f.events(t, audit.TenantPolicySet)); n != 1 {
		t.Errorf("%d tenant.policy_set events, want 1 (the first change)", n)
	}
	if _, err := f.g.SetPolicy(f.ctx, sys, tenantID, guard.Policy{}, after.Version); err != nil {
		t.Errorf("SetPolicy at the version after the undo: %v", err)
	}
}

// A change of the IP allow-list that cannot be recorded is undone: the
// previous list is back (under a new version).
func TestSetIPAllowListUnrecordedIsUndone(t *testing.T) {
	var fa *failingAudit
	f := newFixture(t, withFailingAudit(&fa))
	sys := guard.System("test")
	ap, err := f.g.SetIPAllowList(f.ctx, sys, tenantID, guard.IPListChange{Scope: ipfilter.Users,
		Entries: []string{"192.0.2.0/24"}, ReportOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	fa.set(true)
	_, err = f.g.SetIPAllowList(f.ctx, sys, tenantID, guard.IPListChange{Scope: ipfilter.Users,
		Entries: []string{"198.51.100.0/24"}, Version: ap.Version})
	fa.set(false)
	wantUnavailable(t, "SetIPAllowList", err)
	after, err := f.g.IPAllowLists(f.ctx, sys, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(after.Users.Entries, []string{"192.0.2.0/24"}) || !after.Users.ReportOnly {
		t.Errorf("allow-list %+v although the change could not be recorded, want 192.0.2.0/24 report-only", after.Users)
	}
	if n := len(f.events(t, audit.IPListChanged)); n != 1 {
		t.Errorf("%d ip_list.changed events, want 1 (the first change)", n)
	}
	if _, err := f.g.SetIPAllowList(f.ctx, sys, tenantID, guard.IPListChange{Scope: ipfilter.Users, Version: after.Version}); err != nil {
		t.Errorf("SetIPAllowList at the version after the undo: %v", err)
	}
}

// A reactivation that cannot be recorded is undone: the user stays
// deactivated and cannot sign in.
func TestReactivateUserUnrecordedIsUndone(t *testing.T) {
	var fa *failingAudit
	f := newFixture(t, withFailingAudit(&fa))
	sys := guard.System("test")
	u := f.createUser(t, adaEmail, ownerPW)
	if err := f.g.DeactivateUser(f.ctx, sys, tenantID, u.ID); err != nil {
		t.Fatal(err)
	}
	fa.set(true)
	err := f.g.ReactivateUser(f.ctx, sys, tenantID, u.ID)
	fa.set(false)
	wantUnavailable(t, "ReactivateUser", err)
	got, err := f.g.User(f.ctx, sys, tenantID, u.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Status != auth.StatusDeactivated {
		t.Errorf("status %v although the reactivation could not be recorded, want deactivated", got.Status)
	}
	if _, err := f.login(adaEmail, ownerPW); err == nil {
		t.Error("the deactivated user signed in")
	}
}

// A removal of a second factor that cannot be recorded is undone: the
// factor is back, confirmed, with the same secret (its codes still sign
// in), and no notice went out.
func TestRemoveFactorUnrecordedIsUndone(t *testing.T) {
	var fa *failingAudit
	f := newMFAFixture(t, withFailingAudit(&fa))
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	secret, _ := f.enrolTOTP(t, p)
	fs, err := f.g.Factors(f.ctx, p, tenantID, p.UserID)
	if err != nil || len(fs) != 1 {
		t.Fatalf("Factors: %v %v", fs, err)
	}
	fa.set(true)
	err = f.g.RemoveFactor(f.ctx, guard.System("test"), tenantID, p.UserID, fs[0].ID)
	fa.set(false)
	wantUnavailable(t, "RemoveFactor", err)
	after, err := f.g.Factors(f.ctx, guard.System("test"), tenantID, p.UserID)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != 1 || after[0].ID != fs[0].ID || !after[0].Confirmed() {
		t.Fatalf("factors %+v although the removal could not be recorded, want %s back, confirmed", after, fs[0].ID)
	}
	f.clock.Advance(30 * time.Second) // a new TOTP step
	pend := f.pending(t, adaEmail, ownerPW)
	if _, err := f.complete(guard.MethodTOTP, pend.Token, f.code(t, secret)); err != nil {
		t.Errorf("sign-in with the restored factor: %v", err)
	}
	f.g.Close() // waits for notices
	for _, m := range f.out.mail {
		if strings.Contains(m.Subject, "removed") {
			t.Errorf("notice sent for a removal that was undone: %+v", m)
		}
	}
}

// An enrolment that cannot be recorded is undone: the factor is pending
// again, the recovery codes made with it are gone, and the enrolment can
// be confirmed once the log is back.
func TestConfirmFactorUnrecordedIsUndone(t *testing.T) {
	var fa *failingAudit
	f := newMFAFixture(t, withFailingAudit(&fa))
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	en, err := f.g.BeginTOTP(f.ctx, p, "Phone")
	if err != nil {
		t.Fatal(err)
	}
	fa.set(true)
	_, err = f.g.ConfirmFactor(f.ctx, p, en.Factor.ID, f.code(t, en.Secret))
	fa.set(false)
	wantUnavailable(t, "ConfirmFactor", err)
	fs, err := f.g.Factors(f.ctx, guard.System("test"), tenantID, p.UserID)
	if err != nil {
		t.Fatal(err)
	}
	if len(fs) != 1 || fs[0].ID != en.Factor.ID || fs[0].Confirmed() {
		t.Errorf("factors %+v although the enrolment could not be recorded, want %s pending", fs, en.Factor.ID)
	}
	_, p = f.signIn(t, adaEmail, ownerPW) // the confirmation ended the session
	if left, err := f.g.RecoveryCodesLeft(f.ctx, p); err != nil || left.Left != 0 {
		t.Errorf("RecoveryCodesLeft = %+v, %v; want none", left, err)
	}
	codes, err := f.g.ConfirmFactor(f.ctx, p, en.Factor.ID, f.code(t, en.Secret))
	if err != nil || len(codes) == 0 {
		t.Errorf("ConfirmFactor with the log back = %d codes, %v", len(codes), err)
	}
}

// A new IdP connection that cannot be recorded is undone: the previous
// one is back as stored; for a tenant that had none, there is none again.
func TestSetSSOConnectionUnrecordedIsUndone(t *testing.T) {
	stores := newMem()
	fa := &failingAudit{Audit: stores.Audit.(*memstore.Audit)}
	stores.Audit = fa
	s := newSSOSiteOn(t, stores)
	ctx, sys := t.Context(), guard.System("test")
	before, err := s.g.SSOConnection(ctx, sys, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	c := before
	c.JIT, c.IdPInitiated = false, true
	fa.set(true)
	_, err = s.g.SetSSOConnection(ctx, sys, c)
	fa.set(false)
	wantUnavailable(t, "SetSSOConnection", err)
	got, err := s.g.SSOConnection(ctx, sys, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	if got.IdPInitiated || !got.JIT || got.Metadata != before.Metadata || !got.MetadataFetchedAt.Equal(before.MetadataFetchedAt) {
		t.Errorf("SSO connection changed (JIT %v, IdP-initiated %v) although the change could not be recorded", got.JIT, got.IdPInitiated)
	}

	if _, err := s.g.CreateTenant(ctx, sys, "beta", "Beta", guard.Policy{}); err != nil {
		t.Fatal(err)
	}
	c.Tenant = "beta"
	fa.set(true)
	_, err = s.g.SetSSOConnection(ctx, sys, c)
	fa.set(false)
	wantUnavailable(t, "SetSSOConnection (first connection)", err)
	if _, err := s.g.SSOConnection(ctx, sys, "beta"); !errors.Is(err, sso.ErrNotFound) {
		t.Errorf("SSOConnection of a tenant whose first connection could not be recorded: %v, want sso.ErrNotFound", err)
	}
}

// A removal of the IdP that cannot be recorded is undone: the connection
// is back as stored.
func TestDeleteSSOConnectionUnrecordedIsUndone(t *testing.T) {
	stores := newMem()
	fa := &failingAudit{Audit: stores.Audit.(*memstore.Audit)}
	stores.Audit = fa
	s := newSSOSiteOn(t, stores)
	ctx, sys := t.Context(), guard.System("test")
	before, err := s.g.SSOConnection(ctx, sys, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	fa.set(true)
	err = s.g.DeleteSSOConnection(ctx, sys, tenantID)
	fa.set(false)
	wantUnavailable(t, "DeleteSSOConnection", err)
	got, err := s.g.SSOConnection(ctx, sys, tenantID)
	if err != nil {
		t.Fatalf("SSOConnection after a removal that could not be recorded: %v", err)
	}
	if got.Metadata != before.Metadata || got.MetadataURL != before.MetadataURL || got.JIT != before.JIT {
		t.Errorf("connection %+v not put back as it was", got)
	}
}

// UnlockUser cannot put back the failures it clears, so it records first:
// with the audit log down the lock stays.
func TestUnlockUserUnrecordedKeepsTheLock(t *testing.T) {
	var fa *failingAudit
	f := newFixture(t, withFailingAudit(&fa))
	sys := guard.System("test")
	u := f.createUser(t, adaEmail, ownerPW)
	for i := range guard.DefaultAccountLimit.Max {
		f.login(adaEmail, fmt.Sprint("wrong password ", i))
	}
	locked := func() bool {
		t.Helper()
		st, err := f.g.LockState(f.ctx, sys, tenantID, u.ID)
		if err != nil {
			t.Fatal(err)
		}
		return st.Locked(f.clock.Now())
	}
	if !locked() {
		t.Fatal("the user is not locked")
	}
	fa.set(true)
	err := f.g.UnlockUser(f.ctx, sys, tenantID, u.ID)
	fa.set(false)
	wantUnavailable(t, "UnlockUser", err)
	if !locked() {
		t.Error("the lock was lifted although the unlock could not be recorded")
	}
}

// ChangePassword cannot put the old password back as it was, so it
// records first: with the audit log down the password stays as it was.
// The sessions it ends are recorded after, as session.revoked.
func TestChangePasswordUnrecordedChangesNothing(t *testing.T) {
	var fa *failingAudit
	f := newFixture(t, withFailingAudit(&fa))
	if _, err := f.g.SetPolicy(f.ctx, guard.System("test"), tenantID, guard.Policy{SessionLimit: 5}, 1); err != nil {
		t.Fatal(err)
	}
	f.createUser(t, adaEmail, ownerPW)
	res, err := f.login(adaEmail, ownerPW)
	if err != nil {
		t.Fatal(err)
	}
	other, err := f.login(adaEmail, ownerPW)
	if err != nil {
		t.Fatal(err)
	}
	p, err := f.g.Authenticate(f.ctx, res.Token)
	if err != nil {
		t.Fatal(err)
	}
	const next = "a brand new passphrase"
	fa.set(true)
	err = f.g.ChangePassword(f.ctx, p, guard.PasswordChange{Current: ownerPW, New: next})
	fa.set(false)
	wantUnavailable(t, "ChangePassword", err)
	if _, err := f.g.Authenticate(f.ctx, other.Token); err != nil {
		t.Errorf("another session ended by a change not made: %v", err)
	}
	if _, err := f.login(adaEmail, next); err == nil {
		t.Error("the new password signs in although the change could not be recorded")
	}
	if _, err := f.login(adaEmail, ownerPW); err != nil {
		t.Errorf("the old password: %v", err)
	}

	if err := f.g.ChangePassword(f.ctx, p, guard.PasswordChange{Current: ownerPW, New: next}); err != nil {
		t.Fatalf("ChangePassword with the log back: %v", err)
	}
	if n := len(f.events(t, audit.PasswordChanged)); n != 1 {
		t.Errorf("%d password.changed events, want 1", n)
	}
	evs := f.events(t, audit.SessionRevoked)
	if len(evs) != 1 || evs[0].Meta["reason"] != "password_changed" || evs[0].Meta["sessions_ended"] != "2" {
		t.Errorf("session.revoked events %+v, want one with reason password_changed, sessions_ended 2", evs)
	}
}

// RegenerateRecoveryCodes cannot put the old set back, so it records
// first: with the audit log down the old codes keep working.
func TestRegenerateRecoveryCodesUnrecordedKeepsTheOldSet(t *testing.T) {
	var fa *failingAudit
	f := newMFAFixture(t, withFailingAudit(&fa))
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	_, codes := f.enrolTOTP(t, p)
	fa.set(true)
	_, err := f.g.RegenerateRecoveryCodes(f.ctx, p)
	fa.set(false)
	wantUnavailable(t, "RegenerateRecoveryCodes", err)
	pend := f.pending(t, adaEmail, ownerPW)
	if _, err := f.complete(guard.MethodRecovery, pend.Token, codes[0]); err != nil {
		t.Errorf("an old recovery code after a regeneration that could not be recorded: %v", err)
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
		{"ExpirePassword", func(s *setup) error {
			return s.f.g.ExpirePassword(s.f.ctx, sys, tenantID, s.user.ID)
		}, sessionEnded},
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

// A refreshed IdP metadata document that cannot be recorded is undone:
// the connection keeps the document it had, and the next refresh, with
// the log back, brings the new one in, recorded.
func TestRefreshSSOMetadataUnrecordedIsUndone(t *testing.T) {
	stores := newMem()
	fa := &failingAudit{Audit: stores.Audit.(*memstore.Audit)}
	stores.Audit = fa
	s := newSSOSiteOn(t, stores)
	ctx, sys := t.Context(), guard.System("test")
	md, _, serve := servedMetadata(t, s)
	before, err := s.g.SSOConnection(ctx, sys, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	next := strings.Replace(md, "<EntityDescriptor ", `<EntityDescriptor cacheDuration="PT1H" `, 1)
	serve(next)
	if next == md {
		t.Fatal("the new document is the old one")
	}

	fa.set(true)
	_, err = s.g.RefreshSSOMetadata(ctx, tenantID)
	fa.set(false)
	wantUnavailable(t, "RefreshSSOMetadata", err)
	got, err := s.g.SSOConnection(ctx, sys, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	if got.Metadata != before.Metadata || !got.MetadataFetchedAt.Equal(before.MetadataFetchedAt) {
		t.Error("the new metadata stands although it could not be recorded")
	}
	if changed, err := s.g.RefreshSSOMetadata(ctx, tenantID); err != nil || !changed {
		t.Errorf("RefreshSSOMetadata with the log back: %v, %v; want changed", changed, err)
	}
}
