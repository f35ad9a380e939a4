package guard_test

// "A tamper-evident audit log per tenant, written before any action is
// reported as done" (doc.go): with the audit store down, a change that
// lowers security or changes trust must not stand unrecorded. It is either
// undone when its record fails (the previous value put back), or recorded
// before it is made. Revocations go the other way: they stand, unrecorded,
// and the call says so with ErrUnavailable.

import (
	"errors"
	"slices"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/ipfilter"
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
