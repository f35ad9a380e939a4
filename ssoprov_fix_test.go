package guard_test

// Fixes of the SSOPROV audit (ssoprov_audit_test.go), tested past what
// the audit's tests reach.

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/crewjam/saml"

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

// SSOPROV-5: sso.configured records the role mapping deterministically
// (sorted, groups quoted), with its count and a digest of all of it, the
// default role, SyncRoles and the allowed domains; a mapping of 1000
// groups is clipped in the list, not in the count or digest, and the
// event is still recorded.
func TestSSOConfiguredRecordsMapping(t *testing.T) {
	s := newSSOSite(t)
	last := func() map[string]string {
		t.Helper()
		page, err := s.g.QueryAudit(t.Context(), guard.System("test"), tenantID, audit.Query{Action: string(audit.SSOConfigured), Desc: true, Limit: 1})
		if err != nil || len(page.Events) != 1 {
			t.Fatalf("sso.configured: %v %v", page.Events, err)
		}
		return page.Events[0].Meta
	}
	s.setConn(t, func(c *sso.Connection) {
		c.GroupRoles = map[string]string{"Sales Team": rbac.Member, "Admins": rbac.Admin}
		c.DefaultRole, c.SyncRoles = rbac.ReportsOnly, true
		c.AllowedDomains = []string{"corp.example", "acme.example"}
	})
	m := last()
	want := map[string]string{"group_roles": `"Admins"=admin "Sales Team"=member`, "group_roles_count": "2", "default_role": rbac.ReportsOnly,
		"sync_roles": "true", "allowed_domains": "acme.example corp.example", "allowed_domains_count": "2"}
	for k, v := range want {
		if m[k] != v {
			t.Errorf("sso.configured %s = %q, want %q", k, m[k], v)
		}
	}
	digest := m["group_roles_sha256"]
	if len(digest) != 64 {
		t.Errorf("group_roles_sha256 = %q", digest)
	}
	big := map[string]string{}
	for i := range 1000 {
		big[fmt.Sprintf("Group number %04d", i)] = rbac.Member
	}
	s.setConn(t, func(c *sso.Connection) { c.GroupRoles = big })
	m = last()
	if len(m["group_roles"]) > 1000 || m["group_roles_count"] != "1000" || m["group_roles_sha256"] == digest || len(m["group_roles_sha256"]) != 64 {
		t.Errorf("sso.configured of 1000 groups: list of %d bytes, count %s, digest %s", len(m["group_roles"]), m["group_roles_count"], m["group_roles_sha256"])
	}
	if !strings.HasPrefix(m["group_roles"], `"Group number 0000"=member "Group number 0001"=member`) {
		t.Errorf("group_roles not sorted: %.80s", m["group_roles"])
	}
}

// nameIDAs makes the test IdPs name every user by NameID id of format.
func (s *ssoSite) nameIDAs(t *testing.T, id, format string) {
	s.edit.set(func(a *saml.Assertion) { a.Subject.NameID.Value, a.Subject.NameID.Format = id, format })
	t.Cleanup(func() { s.edit.set(nil) })
}

// signsInAs reports whether an SSO sign-in at the IdP as user (password
// "correct horse") gives a session of the tenant's user id.
func (s *ssoSite) signsInAs(t *testing.T, user, id string) bool {
	t.Helper()
	b, _, _, resp := s.signIn(t, user, "correct horse")
	resp.Body.Close()
	p, err := s.principalOf(t, b)
	return err == nil && p.UserID == id
}

// bobAs signs in at the IdP as bob with the persistent NameID nameID and
// reports whether that gave a session of the tenant's user id.
func (s *ssoSite) bobAs(t *testing.T, nameID, id string) bool {
	t.Helper()
	s.opaqueNameID(t, nameID)
	return s.signsInAs(t, "bob", id)
}

// SSOPROV-7: only a persistent NameID, compared with a persistent one the
// same IdP gave the account, refuses a sign-in. Transient, unspecified
// and email NameIDs keep the email match, as does a persistent NameID
// after a kept subject of another format.
func TestSSOSubjectMismatchOnlyForPersistent(t *testing.T) {
	s, bob := newSSOBob(t)
	const (
		transient   = "urn:oasis:names:tc:SAML:2.0:nameid-format:transient"
		unspecified = "urn:oasis:names:tc:SAML:1.1:nameid-format:unspecified"
		email       = "urn:oasis:names:tc:SAML:1.1:nameid-format:emailAddress"
	)
	for i, format := range []string{transient, unspecified, email, ""} {
		s.nameIDAs(t, fmt.Sprintf("_other-%d", i), format)
		if !s.signsInAs(t, "bob", bob.UserID) {
			t.Errorf("NameID of format %q after a persistent one: not signed in as Bob", format)
		}
	}
	// The kept subject is now of another format: a persistent NameID is
	// matched by email, and kept.
	if !s.bobAs(t, "00u-bob-2", bob.UserID) {
		t.Error("persistent NameID after a kept subject of another format: not signed in as Bob")
	}
	if s.bobAs(t, "00u-bob", bob.UserID) {
		t.Error("persistent NameID 00u-bob after 00u-bob-2 was kept: signed in")
	}
	if evs := s.ssoFailures(t); len(evs) != 1 || evs[0].Reason != guard.ReasonSubjectMismatch || evs[0].Actor.ID != bob.UserID ||
		!strings.Contains(evs[0].Meta["detail"], "00u-bob-2") {
		t.Errorf("sso.failed events %+v, want one, subject_mismatch, Bob's, naming the kept NameID", evs)
	}
}

// SSOPROV-7: a subject kept before the tenant changed its IdP does not
// hold: after the IdP is removed and connected again (same entity ID), or
// replaced by another, the account is linked anew by email; the new
// NameID then holds.
func TestSSOSubjectRelinkedAfterIdPChange(t *testing.T) {
	s, bob := newSSOBob(t)
	ctx := t.Context()
	sys := guard.System("test")
	if err := s.g.DeleteSSOConnection(ctx, sys, tenantID); err != nil {
		t.Fatal(err)
	}
	s.connect(t)
	if !s.bobAs(t, "00u-bob-again", bob.UserID) {
		t.Fatal("another persistent NameID after the IdP was removed and connected again: not signed in as Bob")
	}
	if s.bobAs(t, "00u-bob", bob.UserID) {
		t.Error("the old NameID after the account was linked anew: signed in")
	}

	s.replaceIdP(t)
	s.idpPut(t, "/users/bob", `{"name":"bob","password":"correct horse","email":"bob@corp.example","groups":["Staff"]}`)
	if !s.bobAs(t, "00u-bob-new-idp", bob.UserID) {
		t.Error("a persistent NameID of the IdP that replaced the one that kept Bob's: not signed in as Bob")
	}
}

// SSOPROV-7: the kept subject that cannot be read fails the sign-in
// closed (ErrUnavailable, reason unavailable).
func TestSSOSubjectReadFailsClosed(t *testing.T) {
	fc := &faultCounter{}
	s := newSSOSiteOn(t, wrapStores(newMem(), fc))
	s.opaqueNameID(t, "00u-bob")
	s.ssoUser(t, "bob", "bob@corp.example")
	_, acs, fields := s.ssoAnswer(t, "bob", "correct horse")
	fc.armName("SSO.Subjects.Subject")
	err := s.postAnswer(t, acs, fields)
	if _, fired := fc.disarm(); fired != "SSO.Subjects.Subject" {
		t.Fatalf("the kept subject was not read: %v", err)
	}
	if !errors.Is(err, guard.ErrUnavailable) {
		t.Errorf("CompleteSSO with the subject store failing: %v, want ErrUnavailable", err)
	}
	if evs := s.ssoFailures(t); len(evs) != 1 || evs[0].Reason != guard.ReasonUnavailable {
		t.Errorf("sso.failed events %+v, want one, reason unavailable", evs)
	}
}
