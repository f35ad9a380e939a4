package main

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// Auditor tests of the console's audit viewer and export (axis "auditq").

// auditEvents returns the demo tenant's events with action, read by the
// system.
func auditEvents(t *testing.T, con *console, action audit.Action) []audit.Event {
	t.Helper()
	p, err := con.g.QueryAudit(context.Background(), guard.System("test"), demoTenant,
		audit.Query{Action: string(action), Limit: audit.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	return p.Events
}

// Severity: medium. An export whose filter Guard refuses — a start date
// after the end date, or a user filter that is not UTF-8 — is answered
// 200 with text/csv and an attachment header and an empty body (not even
// the header row): auditExport (auditlog.go) sets the download headers
// before calling ExportAudit and, on its error, only logs it, so the
// administrator saves an empty file that reads as "no such events".
// (ExportAudit also records the refused export: see the guard package's
// TestAuditQ_RefusedExportRecordedAsDone.) Expected: 400 with the
// reason, as for an unknown format or a malformed date.
func TestAuditQ_ConsoleExportOfBadFilterIsAnEmptyFile(t *testing.T) {
	c, password := newClient(t)
	c.signInAdmin(ownerEmail, password)
	for name, filter := range map[string]url.Values{
		"from after to":    {"from": {"2026-05-10"}, "to": {"2026-05-01"}},
		"actor not UTF-8":  {"actor": {"\xff"}},
		"action not UTF-8": {"action": {"login.\xc3"}},
	} {
		filter.Set("format", "csv")
		resp, body := c.get("/audit/export?" + filter.Encode())
		if resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: export answered %d (%s, %q) with %d bytes %q; want 400 and a reason", name, resp.StatusCode,
				resp.Header.Get("Content-Type"), resp.Header.Get("Content-Disposition"), len(body), body)
		}
	}
}

// Severity: low. The audit page with a filter Guard refuses — a start
// date after the end date, a user filter that is not UTF-8 — answers 500
// "Something went wrong" with an error reference: QueryAudit returns an
// *audit.InputError, which problem (app.go) does not know, so
// renderAudit hands it to fail, whose default is an internal error.
// Malformed dates and an unknown outcome get a sentence on the page
// instead. Expected: the audit page with a message saying what is wrong
// with the filter (200, or 400), not a server error.
func TestAuditQ_ConsoleBadFilterIsAServerError(t *testing.T) {
	c, password := newClient(t)
	c.signInAdmin(ownerEmail, password)
	for name, filter := range map[string]url.Values{
		"from after to":   {"from": {"2026-05-10"}, "to": {"2026-05-01"}},
		"actor not UTF-8": {"actor": {"\xff"}},
	} {
		resp, body := c.get("/audit?" + filter.Encode())
		if resp.StatusCode >= 500 || strings.Contains(body, "Something went wrong") {
			t.Errorf("%s: the audit page answered %d %q; want the page with a message about the filter", name, resp.StatusCode,
				between(body, "<main", "</main>"))
		}
	}
}

// between returns the part of s from the first start to the next end.
func between(s, start, end string) string {
	i := strings.Index(s, start)
	if i < 0 {
		return ""
	}
	s = s[i:]
	if j := strings.Index(s, end); j >= 0 {
		s = s[:j]
	}
	return s
}

// Severity: medium. A user whose role grants audit:read but not
// users:read (a custom "auditor" role, the least-privilege reviewer) adds
// an access.denied event (section users, action read, outcome failure) to
// the audit log every time they open the audit page: auditRows
// (auditlog.go) looks up the users the events name with Guard.User as the
// viewer, which refuses and records the refusal, before it learns to stop
// (canRead) for the rest of that page. The log then shows the auditor
// trying, again and again, to read user records they never asked for, and
// each view writes to the log being reviewed. Expected: viewing the audit
// page records nothing in the viewer's name (ask Can first, or show the
// IDs of users the viewer may not read).
func TestAuditQ_ConsoleAuditorViewRecordsDenials(t *testing.T) {
	c, password := newClient(t)
	c.signInAdmin(ownerEmail, password)
	ctx, sys := context.Background(), guard.System("test")
	if err := c.con.g.DefineRole(ctx, sys, demoTenant, "auditor", []string{"audit:read"}); err != nil {
		t.Fatal(err)
	}
	const auditorEmail, auditorPW = "auditor@demo.example", "violet kettle morning drizzle"
	if _, err := c.con.g.CreateUser(ctx, sys, guard.NewUser{Tenant: demoTenant, Email: auditorEmail, Name: "Audrey Auditor",
		Password: auditorPW, Roles: []string{"auditor"}}); err != nil {
		t.Fatal(err)
	}
	a := newClientOf(t, c.srv, c.con)
	a.clock = c.clock
	if resp := a.signInAdmin(auditorEmail, auditorPW); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("the auditor's sign-in: %d", resp.StatusCode)
	}
	if resp, _ := a.get("/users"); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("the auditor may open the users page (%d): the role is not what the test means", resp.StatusCode)
	}
	before := len(auditEvents(t, c.con, audit.AccessDenied))
	for range 3 {
		if resp, body := a.get("/audit"); resp.StatusCode != 200 || !strings.Contains(body, `id="events"`) {
			t.Fatalf("the auditor's audit page: %d", resp.StatusCode)
		}
	}
	denied := auditEvents(t, c.con, audit.AccessDenied)
	for _, e := range denied[before:] {
		t.Errorf("viewing the audit page recorded access.denied by %s %s: %v", e.Actor.Kind, e.Actor.ID, e.Meta)
	}
}

// Severity: medium. An export that fails part way — the store fails on
// a later page — is delivered as a successful download: auditExport
// (auditlog.go) has already sent 200 and part of the file, and on
// ExportAudit's error it only logs it and returns, so net/http ends the
// chunked body normally. The administrator's browser saves a truncated
// audit export (here cut in the middle of the events) with no sign that
// it is incomplete. Expected: the response is aborted (panic with
// http.ErrAbortHandler, which resets the stream) so that the client sees
// a failed download, never a complete-looking partial one.
func TestAuditQ_ConsoleExportFailureLooksComplete(t *testing.T) {
	c, password, fa := newFailingAuditClient(t)
	c.signInAdmin(ownerEmail, password)
	con := c.con

	// More than one page of the export (audit.MaxLimit events): a member
	// asking for the audit log, refused and recorded each time.
	ctx := context.Background()
	if _, err := con.g.CreateUser(ctx, guard.System("test"), guard.NewUser{Tenant: demoTenant, Email: "tess.member@demo.example",
		Name: "Tess Member", Password: "quiet harbour lantern glow", Roles: []string{rbac.Member}}); err != nil {
		t.Fatal(err)
	}
	res, err := con.g.Login(ctx, guard.LoginRequest{Tenant: demoTenant, Email: "tess.member@demo.example", Password: "quiet harbour lantern glow",
		IP: "203.0.113.7", UserAgent: "test", Captcha: standinToken})
	if err != nil || res.Token == "" {
		t.Fatalf("the member's sign-in: %v", err)
	}
	member, err := con.g.Authenticate(ctx, res.Token)
	if err != nil {
		t.Fatal(err)
	}
	for range audit.MaxLimit + 200 {
		if _, err := con.g.Authorize(ctx, member, rbac.Audit, rbac.Read); err == nil {
			t.Fatal("a member may read the audit log")
		}
	}
	head, err := con.g.QueryAudit(ctx, guard.System("test"), demoTenant, audit.Query{Desc: true, Limit: 1})
	if err != nil || len(head.Events) != 1 {
		t.Fatal(err)
	}
	total := head.Events[0].Seq

	// The store stops answering at the second page of the export (the
	// export reads oldest first, so that page starts after the first
	// page's last event).
	bad := audit.MaxLimit + 100
	fa.failWhen(func(q audit.Query) bool { return !q.Desc && q.After >= audit.MaxLimit })

	resp, err := c.c.Get(c.srv.URL + "/audit/export?format=jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	lines := 0
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		lines++
	}
	_, rest := io.Copy(io.Discard, resp.Body)
	if resp.StatusCode == 200 && sc.Err() == nil && rest == nil {
		t.Errorf("the export failed at Seq %d of %d, yet the download is a complete 200 response of %d lines", bad, total, lines)
	}
}
