package guard_test

// Audit of four-eyes approvals and in-tenant privilege escalation: each
// test fails on the code as it is because of the defect it names.

import (
	"net/netip"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/rbac"
)

// Approvals needs no permission at all: a reports-only user ("reads
// reports and nothing else", rbac/doc.go) and a key without any role list
// every approval request of the tenant, with the requester, the action
// and its target. SECURITY-CHECKLIST 8.2.1 (RB-1): function-level access
// needs an explicit permission; default is deny.
func TestAuditApprovals_ListedWithoutAnyPermission(t *testing.T) {
	f := newFixture(t)
	rob, _ := f.userWithRoles(t, "rob@example.test", rbac.Manager)
	owner, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	reader, _ := f.userWithRoles(t, "rea@example.test", rbac.ReportsOnly)
	if _, err := f.g.RequestApproval(f.ctx, rob, "campaigns:send", "spring-sale-all-customers", []byte("p"), time.Hour); err != nil {
		t.Fatal(err)
	}
	key, _, err := f.g.CreateAPIKey(f.ctx, owner, guard.NewAPIKey{Tenant: tenantID, Name: "no roles"})
	if err != nil {
		t.Fatal(err)
	}
	kp, err := f.g.AuthenticateAPIKey(f.ctx, key, netip.MustParseAddr("203.0.113.5"))
	if err != nil {
		t.Fatal(err)
	}
	for name, p := range map[string]guard.Principal{"a reports-only user": reader, "an API key without roles": kp} {
		as, err := f.g.Approvals(f.ctx, p, rbac.ApprovalQuery{})
		if len(as) != 0 {
			t.Errorf("Approvals by %s: %d requests listed (first: %s by %s on %q), err %v; want none (ErrForbidden)",
				name, len(as), as[0].Permission, as[0].Requester, as[0].Target, err)
		}
	}
}

// A key must not outlive its creator's access (revokeKeysOf), and nobody
// holds more than they could grant. Yet an admin who created a key with
// the admin role and is then demoted keeps every admin permission through
// that key (shown once to them, in clear): with it they give themselves
// the admin role back.
func TestAuditEscalation_DemotedCreatorKeepsPowerThroughKey(t *testing.T) {
	f := newFixture(t)
	owner, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	adam, _ := f.userWithRoles(t, "adam@example.test", rbac.Admin)
	key, _, err := f.g.CreateAPIKey(f.ctx, adam, guard.NewAPIKey{Tenant: tenantID, Name: "ops", Roles: []string{rbac.Admin}})
	if err != nil {
		t.Fatal(err)
	}
	// The owner demotes adam to reports-only.
	if err := f.g.GrantRole(f.ctx, owner, tenantID, "user:"+adam.UserID, rbac.ReportsOnly); err != nil {
		t.Fatal(err)
	}
	if err := f.g.RevokeRole(f.ctx, owner, tenantID, "user:"+adam.UserID, rbac.Admin); err != nil {
		t.Fatal(err)
	}
	kp, err := f.g.AuthenticateAPIKey(f.ctx, key, netip.MustParseAddr("203.0.113.5"))
	if err != nil {
		return // the key died with its creator's access: fine
	}
	if ok, _ := f.g.Can(f.ctx, kp, rbac.Users, rbac.Manage); ok {
		t.Error("the key of a demoted admin still holds users:manage")
	}
	if err := f.g.GrantRole(f.ctx, kp, tenantID, "user:"+adam.UserID, rbac.Admin); err == nil {
		t.Error("a demoted admin gave themselves the admin role back with the key they created as admin")
	}
}

// An approval outlives its approver: the approver is deactivated (every
// session ended, every key revoked: the account is treated as no longer
// trusted) and the approval they gave still lets the requester carry out
// the action. Consume checks again that the requester still holds the
// permission, but never that the decider still may approve.
func TestAuditApprovals_SurvivesApproverDeactivation(t *testing.T) {
	f := newFixture(t)
	sys := guard.System("t")
	f.userWithRoles(t, "olga@example.test", rbac.Owner)
	rob, _ := f.userWithRoles(t, "rob@example.test", rbac.Manager)
	ann, _ := f.userWithRoles(t, "ann@example.test", rbac.Manager)
	payload := []byte(`{"campaign":"c1"}`)
	ap, err := f.g.RequestApproval(f.ctx, rob, "campaigns:send", "c1", payload, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.ApproveRequest(f.ctx, ann, ap.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.g.DeactivateUser(f.ctx, sys, tenantID, ann.UserID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.ConsumeApproval(f.ctx, rob, ap.ID, "campaigns:send", "c1", payload); err == nil {
		t.Error("an approval given by a user since deactivated was consumed: the action runs on a distrusted account's say-so")
	}
}

// SE-3 ("a role change rotates the identifier"), as GrantRole documents
// it: "no session identifier outlives the privileges it was issued
// with". DefineRole widening a custom role raises every holder's
// privileges, and DeleteRole takes the role from every holder, yet
// neither ends the holders' sessions: an identifier issued with
// reports:read alone now reads contacts.
func TestAuditEscalation_RedefinedRoleKeepsHoldersSessions(t *testing.T) {
	f := newFixture(t)
	owner, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	if err := f.g.DefineRole(f.ctx, owner, tenantID, "helper", []string{"reports:read"}); err != nil {
		t.Fatal(err)
	}
	_, tok := f.userWithRoles(t, "bob@example.test", "helper")
	if code := serve(f.g, tok, client, rbac.Contacts, rbac.Read); code != 403 {
		t.Fatalf("bob reading contacts before: %d, want 403", code)
	}
	if err := f.g.DefineRole(f.ctx, owner, tenantID, "helper", []string{"reports:read", "contacts:read"}); err != nil {
		t.Fatal(err)
	}
	if code := serve(f.g, tok, client, rbac.Contacts, rbac.Read); code != 401 {
		t.Errorf("bob's session issued before his role was widened, reading contacts: %d, want 401 (sign in again)", code)
	}
}
