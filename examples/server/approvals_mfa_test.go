package main

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/rbac"
)

// Approving a four-eyes request is an administrative act: the Approvals
// page and its decisions are Administration pages, which need a session
// that passed a second factor (SECURITY-CHECKLIST RB-11), as the others
// do. A password-only session is sent to set up an authenticator app and
// back to /approvals, and its approval decides nothing.
func TestApprovalsNeedMFA(t *testing.T) {
	owner, password := newClient(t)
	owner.signInAdmin(ownerEmail, password)
	if resp, _ := owner.post("/security/approvals", url.Values{"required": {"on"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("four-eyes on: %d", resp.StatusCode)
	}
	if resp, _ := owner.post("/campaigns/send", url.Values{"campaign": {"spring-newsletter"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the owner's send: %d", resp.StatusCode)
	}
	ctx, sys := context.Background(), guard.System("test")
	const managerEmail, managerPW = "manny@demo.example", "silver harbour morning fog"
	if _, err := owner.con.g.CreateUser(ctx, sys, guard.NewUser{Tenant: demoTenant, Email: managerEmail, Name: "Manny Manager",
		Password: managerPW, Roles: []string{rbac.Manager}}); err != nil {
		t.Fatal(err)
	}
	op, err := owner.con.g.Authenticate(ctx, owner.cookie("__Host-guard"))
	if err != nil {
		t.Fatal(err)
	}
	as, err := owner.con.g.Approvals(ctx, op, rbac.ApprovalQuery{Limit: 10})
	if err != nil || len(as) != 1 {
		t.Fatalf("approvals: %v, %v; want the owner's one request", as, err)
	}
	id := as[0].ID
	status := func() rbac.Status {
		t.Helper()
		as, err := owner.con.g.Approvals(ctx, op, rbac.ApprovalQuery{Limit: 10})
		if err != nil || len(as) != 1 {
			t.Fatalf("approvals: %v, %v", as, err)
		}
		return as[0].StatusAt(owner.con.app.now())
	}

	manager := newClientOf(t, owner.srv, owner.con)
	if resp := manager.signIn(managerEmail, managerPW); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the manager's sign-in: %d", resp.StatusCode)
	}
	const enrol = "/account?mfa=1&next=%2Fapprovals#mfa"
	if resp, _ := manager.get("/approvals"); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != enrol {
		t.Errorf("GET /approvals with a password-only session: %d to %q, want %s", resp.StatusCode, resp.Header.Get("Location"), enrol)
	}
	for _, op := range []string{"approve", "reject"} {
		if resp, _ := manager.post("/approvals/"+id+"/"+op, url.Values{}); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != enrol {
			t.Errorf("POST /approvals/…/%s with a password-only session: %d to %q, want %s", op, resp.StatusCode, resp.Header.Get("Location"), enrol)
		}
		if st := status(); st != rbac.StatusPending {
			t.Fatalf("after a password-only %s: the request is %s, want pending", op, st)
		}
	}

	// With a second factor passed, the manager approves.
	manager.signInAdmin(managerEmail, managerPW)
	if resp, _ := manager.get("/approvals"); resp.StatusCode != http.StatusOK {
		t.Errorf("GET /approvals after the step-up: %d", resp.StatusCode)
	}
	if resp, _ := manager.post("/approvals/"+id+"/approve", url.Values{}); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/approvals" {
		t.Errorf("approve after the step-up: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
	}
	if st := status(); st != rbac.StatusApproved {
		t.Errorf("after the approval: %s, want approved", st)
	}
}
