package guard_test

// Audit of four-eyes approvals and in-tenant privilege escalation: each
// test fails on the code as it is because of the defect it names.

import (
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// An admin cannot take the owner role from an owner (rbac: "whoever
// cannot grant a role cannot take it away either (an admin cannot demote
// an owner)"; RevokeRole refuses it), yet DeleteUser lets the same admin
// remove an owner outright, owner role included (the roles are revoked
// with the host's AllPerms, not the deleter's permissions).
func TestAuditEscalation_AdminDeletesOwner(t *testing.T) {
	f := newFixture(t)
	sys := guard.System("t")
	f.userWithRoles(t, "olga@example.test", rbac.Owner)
	otto, _ := f.userWithRoles(t, "otto@example.test", rbac.Owner)
	admin, _ := f.userWithRoles(t, "adam@example.test", rbac.Admin)
	if err := f.g.RevokeRole(f.ctx, admin, tenantID, "user:"+otto.UserID, rbac.Owner); !errors.Is(err, guard.ErrForbidden) {
		t.Fatalf("admin revoking an owner's role: %v, want ErrForbidden", err)
	}
	err := f.g.DeleteUser(f.ctx, admin, tenantID, otto.UserID)
	if !errors.Is(err, guard.ErrForbidden) {
		t.Errorf("admin deleting an owner: %v, want ErrForbidden", err)
	}
	if _, uerr := f.g.User(f.ctx, sys, tenantID, otto.UserID); uerr != nil {
		t.Errorf("after the admin's DeleteUser (%v) the owner is gone: %v", err, uerr)
	}
}

// doc.go: refusals of roles the changer could not grant are recorded
// "with reason escalation or no_permission", and DefineRole, DeleteRole
// and SetApprovalRequired record a changer without the right to change
// roles at all (rbac.ErrDenied) as no_permission. GrantRole and
// RevokeRole record every refusal as escalation, even for a caller
// without users:manage, who escalated nothing.
func TestAuditEscalation_GrantWithoutUsersManageRecordedAsEscalation(t *testing.T) {
	f := newFixture(t)
	mona, _ := f.userWithRoles(t, "mona@example.test", rbac.Manager)
	bob, _ := f.userWithRoles(t, "bob@example.test")
	before := len(f.events(t, audit.RoleGranted))
	if err := f.g.GrantRole(f.ctx, mona, tenantID, "user:"+bob.UserID, rbac.ReportsOnly); !errors.Is(err, guard.ErrForbidden) {
		t.Fatalf("GrantRole by a manager: %v, want ErrForbidden", err)
	}
	evs := f.events(t, audit.RoleGranted)[before:]
	if len(evs) != 1 || evs[0].Outcome != audit.Failure || evs[0].Reason != "no_permission" {
		var got []string
		for _, e := range evs {
			got = append(got, string(e.Outcome)+"/"+e.Reason)
		}
		t.Errorf("GrantRole by a user without users:manage recorded %v, want one failed role.granted with reason no_permission", got)
	}
}

// A Principal that Guard did not make (Kind unset) is refused everywhere
// else (invalid_principal: Approvals, RequestApproval, ApproveRequest,
// GrantRole…). ApprovalRules only compares tenants: it answers such a
// principal, and records nothing.
func TestAuditApprovals_RulesAnswerAForgedPrincipal(t *testing.T) {
	f := newFixture(t)
	if err := f.g.SetApprovalRequired(f.ctx, guard.System("t"), tenantID, "campaigns:send", true); err != nil {
		t.Fatal(err)
	}
	forged := guard.Principal{Tenant: tenantID, UserID: "anyone"}
	rules, err := f.g.ApprovalRules(f.ctx, forged, tenantID)
	if !errors.Is(err, guard.ErrForbidden) || len(rules) != 0 {
		t.Errorf("ApprovalRules by a forged principal = %v, %v; want ErrForbidden", rules, err)
	}
	if r := reasons(f.events(t, audit.AccessDenied)); r["invalid_principal"] != 1 {
		t.Errorf("access.denied reasons %v, want one invalid_principal", r)
	}
}
