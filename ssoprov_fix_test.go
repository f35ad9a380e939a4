package guard_test

// Fixes of the SSOPROV audit (ssoprov_audit_test.go), tested past what
// the audit's tests reach.

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/sso"
)

// postAnswer posts an ACS form to CompleteSSO directly.
func (s *ssoSite) postAnswer(t *testing.T, acs string, fields url.Values) error {
	t.Helper()
	r := httptest.NewRequest(http.MethodPost, acs, strings.NewReader(fields.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	_, _, err := s.g.CompleteSSO(t.Context(), guard.SSOResponse{Tenant: tenantID, Request: r, IP: "203.0.113.9", UserAgent: "test"})
	return err
}

// bobAdmin creates Bob, an admin with a password, and his account at the
// IdP (password "correct horse") in groups, a JSON array.
func (s *ssoSite) bobAdmin(t *testing.T, groups string) guard.User {
	t.Helper()
	bob, err := s.g.CreateUser(t.Context(), guard.System("test"), guard.NewUser{Tenant: tenantID, Email: "bob@corp.example", Password: ownerPW, Roles: []string{rbac.Admin}})
	if err != nil {
		t.Fatal(err)
	}
	s.idpPut(t, "/users/bob", `{"name":"bob","password":"correct horse","email":"bob@corp.example","groups":`+groups+`}`)
	return bob
}

// rolesOfUser returns the roles of the tenant's user id.
func (s *ssoSite) rolesOfUser(t *testing.T, id string) []string {
	t.Helper()
	roles, err := s.g.RolesOf(t.Context(), guard.System("test"), tenantID, "user:"+id)
	if err != nil {
		t.Fatal(err)
	}
	return roles
}

// ssoFailures returns the tenant's sso.failed events.
func (s *ssoSite) ssoFailures(t *testing.T) []audit.Event {
	t.Helper()
	page, err := s.g.QueryAudit(t.Context(), guard.System("test"), tenantID, audit.Query{Action: string(audit.SSOFailed)})
	if err != nil {
		t.Fatal(err)
	}
	return page.Events
}

// SSOPROV-2: a role sync that fails at any store call, whichever, never
// leaves the user a role the IdP took away: Bob, an admin the IdP now
// puts in Staff (member) only, holds either his roles before (nothing
// applied) or none with admin.
func TestSSORoleSyncFailureNeverKeepsRevokedRole(t *testing.T) {
	fc := &faultCounter{}
	s := newSSOSiteOn(t, wrapStores(newMem(), fc))
	ctx := t.Context()
	sys := guard.System("test")
	s.setConn(t, func(c *sso.Connection) { c.SyncRoles = true })
	bob := s.bobAdmin(t, `["Staff"]`)
	reset := func() {
		t.Helper()
		if err := s.g.GrantRole(ctx, sys, tenantID, "user:"+bob.ID, rbac.Admin); err != nil {
			t.Fatal(err)
		}
		if err := s.g.RevokeRole(ctx, sys, tenantID, "user:"+bob.ID, rbac.Member); err != nil {
			t.Fatal(err)
		}
	}
	// The calls of a sync that succeeds.
	_, acs, fields := s.ssoAnswer(t, "bob", "correct horse")
	fc.arm(0)
	err := s.postAnswer(t, acs, fields)
	calls, _ := fc.disarm()
	if err != nil {
		t.Fatalf("sign-in of bob: %v", err)
	}
	updates := 0
	for _, c := range calls {
		if c == "Policies.Update" {
			updates++
		}
	}
	if updates < 2 {
		t.Fatalf("a sync from [admin] to [member] made %d policy updates: %v", updates, calls)
	}
	for n := 1; n <= len(calls); n++ {
		reset()
		_, acs, fields := s.ssoAnswer(t, "bob", "correct horse")
		fc.arm(n)
		err := s.postAnswer(t, acs, fields)
		_, fired := fc.disarm()
		if roles := s.rolesOfUser(t, bob.ID); slices.Contains(roles, rbac.Admin) && !slices.Equal(roles, []string{rbac.Admin}) {
			t.Errorf("call %d (%s) failing: sign-in %v, bob's roles %v: keeps admin, which the IdP took away, beside other changes", n, fired, err, roles)
		}
	}
}

// SSOPROV-2: a mapped role the tenant no longer defines (a connection
// stored past SetSSOConnection's check) refuses the sync before anything
// changes, naming the role in the event.
func TestSSORoleSyncUndefinedRoleChangesNothing(t *testing.T) {
	s := newSSOSite(t)
	ctx := t.Context()
	sys := guard.System("test")
	c, err := s.g.SSOConnection(ctx, sys, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	c.SyncRoles = true
	c.GroupRoles = map[string]string{"Staff": rbac.Member, "Auditors": "zz-gone"}
	if err := s.stores.SSO.Connections.PutConnection(ctx, c); err != nil {
		t.Fatal(err)
	}
	bob := s.bobAdmin(t, `["Staff","Auditors"]`)
	_, _, _, resp := s.signIn(t, "bob", "correct horse")
	resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		t.Errorf("sign-in with a mapped role the tenant does not define: %s, want refused", resp.Status)
	}
	if roles := s.rolesOfUser(t, bob.ID); !slices.Equal(roles, []string{rbac.Admin}) {
		t.Errorf("roles of bob after a refused sync: %v, want [admin] (nothing applied)", roles)
	}
	if evs := s.ssoFailures(t); len(evs) != 1 || evs[0].Reason != "role_sync" || !strings.Contains(evs[0].Meta["detail"], "zz-gone") {
		t.Errorf("sso.failed events %+v, want one, reason role_sync, naming zz-gone", evs)
	}
}

// SSOPROV-3: a custom role the connection maps is accepted, and then not
// deleted (*InputError) while the mapping names it, as group role or as
// default; once the mapping no longer does, it is.
func TestSSOMappedRoleNotDeleted(t *testing.T) {
	s := newSSOSite(t)
	ctx := t.Context()
	sys := guard.System("test")
	for _, name := range []string{"zz-auditor", "zz-guest"} {
		if err := s.g.DefineRole(ctx, sys, tenantID, name, []string{"audit:read"}); err != nil {
			t.Fatal(err)
		}
	}
	s.setConn(t, func(c *sso.Connection) {
		c.GroupRoles = map[string]string{"Staff": rbac.Member, "Auditors": "zz-auditor"}
		c.DefaultRole = "zz-guest"
	})
	for _, name := range []string{"zz-auditor", "zz-guest"} {
		var ie *guard.InputError
		if err := s.g.DeleteRole(ctx, sys, tenantID, name); !errors.As(err, &ie) || ie.Field != "role" {
			t.Errorf("DeleteRole of %s, which the connection maps: %v, want an *InputError on role", name, err)
		}
	}
	if evs, _ := s.g.QueryAudit(ctx, sys, tenantID, audit.Query{Action: string(audit.RoleDeleted)}); len(evs.Events) != 0 {
		t.Errorf("refused deletions recorded: %+v", evs.Events)
	}
	// A built-in role keeps its own refusal.
	if err := s.g.DeleteRole(ctx, sys, tenantID, rbac.Member); !errors.Is(err, rbac.ErrBuiltInRole) {
		t.Errorf("DeleteRole of the mapped built-in member: %v, want rbac.ErrBuiltInRole", err)
	}
	s.setConn(t, func(c *sso.Connection) { c.GroupRoles, c.DefaultRole = nil, "" })
	for _, name := range []string{"zz-auditor", "zz-guest"} {
		if err := s.g.DeleteRole(ctx, sys, tenantID, name); err != nil {
			t.Errorf("DeleteRole of %s, no longer mapped: %v", name, err)
		}
	}
}
