package main

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// Auditor tests of the evaluation console's pages (axis "Console"): each
// fails on the code as it stands because of the defect it describes.

// withRole defines the custom role name with perms in the demo tenant,
// creates a user holding only it, and returns a client signed in as that
// user with a second factor (signInAdmin).
func withRole(t *testing.T, owner *client, name string, perms ...string) *client {
	t.Helper()
	ctx, sys := context.Background(), guard.System("test")
	if err := owner.con.g.DefineRole(ctx, sys, demoTenant, name, perms); err != nil {
		t.Fatal(err)
	}
	email, pw := name+"@demo.example", "granite orchard sunrise meadow"
	if _, err := owner.con.g.CreateUser(ctx, sys, guard.NewUser{Tenant: demoTenant, Email: email, Name: "Role " + name,
		Password: pw, Roles: []string{name}}); err != nil {
		t.Fatal(err)
	}
	c := newClientOf(t, owner.srv, owner.con)
	c.clock = owner.clock
	if resp := c.signInAdmin(email, pw); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in of %s: %d", email, resp.StatusCode)
	}
	return c
}

// deniedWhile returns the access.denied events recorded while f ran.
func deniedWhile(t *testing.T, con *console, f func()) []audit.Event {
	t.Helper()
	before := len(auditEvents(t, con, audit.AccessDenied))
	f()
	return auditEvents(t, con, audit.AccessDenied)[before:]
}

// Severity: medium. A member whose request to send a campaign was decided
// by a manager adds an access.denied event (users:read) to the audit log
// each time they open the Approvals page: approvals (approvals.go) names
// the requester and the decider of every row with Guard.User as the
// viewer, and a member may not read other users, so Guard refuses and
// records the refusal. The log then shows the member trying, again and
// again, to read a user record they never asked for (the same defect the
// audit page had, fixed there with Can: TestAuditQ_ConsoleAuditorViewRecordsDenials).
// Expected: viewing the page records nothing in the viewer's name (ask
// Can(users, read) first, or show the subject).
func TestAuditConsole_ApprovalsPageRecordsDenials(t *testing.T) {
	owner, password := newClient(t)
	owner.signInAdmin(ownerEmail, password)
	ctx, sys := context.Background(), guard.System("test")
	if resp, _ := owner.post("/security/approvals", url.Values{"required": {"on"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("four-eyes on: %d", resp.StatusCode)
	}
	const memberEmail, memberPW = "molly@demo.example", "copper lantern evening tide"
	const managerEmail, managerPW = "manny@demo.example", "silver harbour morning fog"
	for _, u := range []guard.NewUser{
		{Tenant: demoTenant, Email: memberEmail, Name: "Molly Member", Password: memberPW, Roles: []string{rbac.Member}},
		{Tenant: demoTenant, Email: managerEmail, Name: "Manny Manager", Password: managerPW, Roles: []string{rbac.Manager}},
	} {
		if _, err := owner.con.g.CreateUser(ctx, sys, u); err != nil {
			t.Fatal(err)
		}
	}
	member := newClientOf(t, owner.srv, owner.con)
	if resp := member.signInAdmin(memberEmail, memberPW); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the member's sign-in: %d", resp.StatusCode)
	}
	if resp, _ := member.post("/campaigns/send", url.Values{"campaign": {"spring-newsletter"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the member's send: %d", resp.StatusCode)
	}
	manager := newClientOf(t, owner.srv, owner.con)
	if resp := manager.signInAdmin(managerEmail, managerPW); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the manager's sign-in: %d", resp.StatusCode)
	}
	_, body := manager.get("/approvals")
	id := strings.TrimPrefix(between(body, `action="/approvals/`, `/approve"`), `action="/approvals/`)
	if id == "" {
		t.Fatal("the manager sees no request to approve")
	}
	if resp, _ := manager.post("/approvals/"+id+"/approve", url.Values{}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("approve: %d", resp.StatusCode)
	}
	denied := deniedWhile(t, owner.con, func() {
		for range 3 {
			if resp, _ := member.get("/approvals"); resp.StatusCode != http.StatusOK {
				t.Fatalf("the member's approvals page: %d", resp.StatusCode)
			}
		}
	})
	for _, e := range denied {
		t.Errorf("viewing the approvals page recorded access.denied by %s: %v", e.Actor.Kind, e.Meta)
	}
}

// Severity: medium. Two pages decide whether to show a control with
// Guard.Authorize, which records every refusal (its doc: "Enforce with
// Require or Authorize, which record denials"; Can is the call "for
// deciding what to show"): the Campaigns page (campaigns, approvals.go)
// asks Authorize(campaigns, send) for the Send buttons, and the Security
// page (securityData, security.go) for the four-eyes rule. A user whose
// role may read campaigns but not send them (the "campaign-editor" role
// TestAdminActions defines), or read the settings but not send campaigns
// (a security reviewer), adds an access.denied campaigns:send event at
// every view of a page they may open. Expected: opening a page one's role
// allows records no denial (Can for what to show, with the approval rule
// read without recording a refusal).
func TestAuditConsole_PagesRecordDenialsToShowButtons(t *testing.T) {
	owner, password := newClient(t)
	owner.signInAdmin(ownerEmail, password)
	for _, tc := range []struct {
		role, perm, page string
	}{
		{"campaign-editor", "campaigns:read", "/campaigns"},
		{"security-reader", "settings:read", "/security"},
	} {
		t.Run(tc.role, func(t *testing.T) {
			c := withRole(t, owner, tc.role, tc.perm)
			denied := deniedWhile(t, owner.con, func() {
				if resp, _ := c.get(tc.page); resp.StatusCode != http.StatusOK {
					t.Fatalf("GET %s: %d, want 200 (the role allows the page)", tc.page, resp.StatusCode)
				}
			})
			for _, e := range denied {
				t.Errorf("GET %s by a %s recorded access.denied: %v", tc.page, tc.role, e.Meta)
			}
		})
	}
}

// Severity: medium. A user whose role grants api-keys:read and
// api-keys:manage (and not users:read) cannot open the API keys page as
// soon as the tenant has a key: keysData (keys.go) reads each key's roles
// with Guard.RolesOf, which needs users:read, so the page is 403 "Access
// denied" and an access.denied users:read is recorded, although the
// route (admin(rbac.APIKeys, rbac.Read)) lets the user in. Such a key
// administrator cannot see the keys, nor revoke a leaked one from the
// console (the revoke form is on that page). Expected: 200 with the keys
// and no denial (show a key's roles only to a viewer who may read them,
// or let RolesOf of a "key:" subject take api-keys:read).
func TestAuditConsole_KeyManagerCannotOpenKeysPage(t *testing.T) {
	owner, password := newClient(t)
	owner.signInAdmin(ownerEmail, password)
	if _, _, err := owner.con.g.CreateAPIKey(context.Background(), guard.System("test"),
		guard.NewAPIKey{Tenant: demoTenant, Name: "nightly-export", Roles: []string{rbac.ReportsOnly}}); err != nil {
		t.Fatal(err)
	}
	c := withRole(t, owner, "key-manager", "api-keys:read", "api-keys:manage")
	var (
		resp *http.Response
		body string
	)
	denied := deniedWhile(t, owner.con, func() { resp, body = c.get("/keys") })
	if resp.StatusCode != http.StatusOK || !strings.Contains(body, "nightly-export") {
		t.Errorf("GET /keys by a key manager: %d %q, want 200 with the key", resp.StatusCode, between(body, "<h1>", "</h1>"))
	}
	for _, e := range denied {
		t.Errorf("GET /keys by a key manager recorded access.denied: %v", e.Meta)
	}
}

// Severity: low. The step-up page (POST /reauth) answers an over-long
// password (more than guard.MaxPasswordBytes) with 500 "Something went
// wrong" and an error reference, and logs it as an internal error:
// reauth (account.go) sends every error but ErrInvalidCredentials to
// fail, whose default is a server error, while Reauthenticate returns
// auth.ErrPasswordTooLong, bad input that problem() already words ("That
// password is too long.") for the sign-in and change-password forms.
// Expected: a 4xx answer on the step-up page saying what is wrong, as for
// a wrong password.
func TestAuditConsole_ReauthOverlongPasswordIsServerError(t *testing.T) {
	c, password := newClient(t)
	if resp := c.signIn(ownerEmail, password); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	resp, body := c.post("/reauth", url.Values{"password": {strings.Repeat("x", guard.MaxPasswordBytes+1)}, "next": {"/account"}})
	if resp.StatusCode >= 500 || strings.Contains(body, "Something went wrong") {
		t.Errorf("POST /reauth with an over-long password: %d %q, want a 4xx answer on the step-up page",
			resp.StatusCode, between(body, "<h1>", "</h1>"))
	}
}

// Severity: low. GET /saml/{tenant}/metadata answers 200 with the SP
// metadata for an organisation that exists and 404 for one that does not
// (samlMetadata, sso.go, looks the tenant up first), so one anonymous
// request per guess tells which organisation IDs exist: the oracle the
// sign-in form had and no longer has (TestAuditEnum_ConsoleLoginRevealsTenant),
// and that /saml/{tenant}/login and /slo do not give either (they answer
// alike for both). The metadata depends only on the tenant ID and the
// base URL (Guard's SSOMetadata needs no tenant record). Expected: the
// same status for a well-formed tenant ID whether or not it exists.
func TestAuditConsole_SAMLMetadataRevealsTenant(t *testing.T) {
	c, _ := newClient(t)
	status := map[string]int{}
	for _, tenant := range []string{demoTenant, "no-such-org"} {
		resp, _ := c.get("/saml/" + tenant + "/metadata")
		status[tenant] = resp.StatusCode
	}
	if status[demoTenant] != status["no-such-org"] {
		t.Errorf("SP metadata: %d for the existing organisation, %d for a made-up one", status[demoTenant], status["no-such-org"])
	}
}
