package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// failLogins records n login.failed events for email, each from its own
// address so that no throttle answers instead.
func failLogins(t *testing.T, con *console, email string, n int) {
	t.Helper()
	for i := range n {
		_, err := con.g.Login(context.Background(), guard.LoginRequest{Tenant: demoTenant, Email: email, Password: "wrong wrong wrong",
			IP: fmt.Sprintf("203.0.113.%d", i%250+1), UserAgent: "test", Captcha: standinToken})
		if err == nil {
			t.Fatal("a wrong password signed in")
		}
	}
}

// href returns the unescaped href of the link with that id ("" if none).
func href(body, id string) string {
	m := regexp.MustCompile(`<a[^>]*href="([^"]*)"[^>]*id="` + id + `"|<a[^>]*id="` + id + `"[^>]*href="([^"]*)"`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return html.UnescapeString(m[1] + m[2])
}

// The export buttons and the pager keep the filters: a filtered export
// holds only the matching events, and "Older" shows the next page of the
// same filter.
func TestAuditFilterKeptInExportAndPaging(t *testing.T) {
	c, password := newClient(t)
	c.signInAdmin(ownerEmail, password)
	const ghost = "ghost@demo.example"
	failLogins(t, c.con, ghost, auditPage+5)

	filter := url.Values{"action": {"login.failed"}, "actor": {ghost}}
	resp, body := c.get("/audit?" + filter.Encode())
	if resp.StatusCode != 200 {
		t.Fatalf("filtered audit page: %d", resp.StatusCode)
	}
	check := func(what, link string, want url.Values) {
		t.Helper()
		u, err := url.Parse(link)
		if err != nil || link == "" {
			t.Fatalf("%s link %q", what, link)
		}
		got := u.Query()
		for k := range want {
			if got.Get(k) != want.Get(k) {
				t.Errorf("%s link %q: %s = %q, want %q", what, link, k, got.Get(k), want.Get(k))
			}
		}
	}
	check("CSV export", href(body, "export-csv"), url.Values{"format": {"csv"}, "action": {"login.failed"}, "actor": {ghost}})
	check("JSONL export", href(body, "export-jsonl"), url.Values{"format": {"jsonl"}, "action": {"login.failed"}, "actor": {ghost}})
	older := href(body, "older")
	check("Older", older, filter)

	// The next page: the rest of the same filter, and a "Newest" link
	// that keeps it.
	_, body = c.get(older)
	if n := strings.Count(body, "<code>login.failed</code>"); n != 5 {
		t.Errorf("the older page shows %d login.failed events, want 5", n)
	}
	if strings.Contains(body, "<code>login.succeeded</code>") {
		t.Error("the older page shows events outside the filter")
	}
	newest := href(body, "newest")
	check("Newest", newest, filter)
	if u, _ := url.Parse(newest); u.Query().Has("after") {
		t.Errorf("Newest link %q keeps the cursor", newest)
	}

	// The exports hold only the matching events.
	_, body = c.get(href(body, "newest"))
	_, body = c.get(href(body, "export-csv"))
	rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
	if err != nil || len(rows) != auditPage+5+1 {
		t.Fatalf("CSV export: %d rows (want %d and a header), %v", len(rows), auditPage+5, err)
	}
	for _, row := range rows[1:] {
		if !strings.Contains(strings.Join(row, ","), "login.failed") || !strings.Contains(strings.Join(row, ","), ghost) {
			t.Fatalf("CSV export holds %q", row)
		}
	}
	_, body = c.get("/audit?" + filter.Encode())
	_, body = c.get(href(body, "export-jsonl"))
	n := 0
	for sc := bufio.NewScanner(strings.NewReader(body)); sc.Scan(); n++ {
		var e struct {
			Action     string `json:"action"`
			ActorEmail string `json:"actor_email"`
		}
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Action != "login.failed" || e.ActorEmail != ghost {
			t.Fatalf("JSONL export line %q (%v)", sc.Text(), err)
		}
	}
	if n != auditPage+5 {
		t.Errorf("JSONL export: %d lines, want %d", n, auditPage+5)
	}
}

// An unknown export format is refused, not answered with CSV.
func TestAuditExportUnknownFormat(t *testing.T) {
	c, password := newClient(t)
	c.signInAdmin(ownerEmail, password)
	if resp, _ := c.get("/audit/export?format=xml"); resp.StatusCode != http.StatusBadRequest {
		t.Errorf("format=xml: %d, want 400", resp.StatusCode)
	}
	if resp, _ := c.get("/audit/export?format=jsonl"); resp.StatusCode != 200 {
		t.Errorf("format=jsonl: %d, want 200", resp.StatusCode)
	}
}

// The User filter finds an email whatever its case, as sign-in does.
func TestAuditUserFilterIgnoresCase(t *testing.T) {
	c, password := newClient(t)
	c.signInAdmin(ownerEmail, password)
	failLogins(t, c.con, "eve@demo.example", 1)
	_, body := c.get("/audit?actor=" + url.QueryEscape("EVE@Demo.example") + "&action=login.failed")
	if !strings.Contains(body, "<code>login.failed</code>") {
		t.Error("EVE@Demo.example finds no event of eve@demo.example")
	}
	if !strings.Contains(body, `value="EVE@Demo.example"`) {
		t.Error("the filter field does not keep what was typed")
	}
}

// A report-only IP denial is a success with a reason: the audit page
// shows the reason, so it does not read as a plain success.
func TestAuditShowsReasonOfSuccess(t *testing.T) {
	c, password := newClient(t)
	c.signInAdmin(ownerEmail, password)
	resp, _ := c.post("/ip", url.Values{"scope": {"users"}, "entries": {"198.51.100.0/24"}, "report_only": {"on"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("report-only list: %d", resp.StatusCode)
	}
	c.get("/users") // from 127.0.0.1: outside the list, reported only
	_, body := c.get("/audit?action=ip.denied")
	m := regexp.MustCompile(`(?s)<code>ip.denied</code>.*?</tr>`).FindString(body)
	if !strings.Contains(m, `badge ok">success`) || !strings.Contains(m, "report_only") {
		t.Fatalf("the report-only denial reads:\n%s", m)
	}
}

// A filter Guard refuses is named on the audit page, in words; the last
// day Guard can bound is a valid end date.
func TestAuditBadFilterSaysWhy(t *testing.T) {
	c, password := newClient(t)
	c.signInAdmin(ownerEmail, password)
	for filter, want := range map[string]string{
		"from=2026-05-10&to=2026-05-01": "The start date is after the end date.",
		"from=0000-06-01":               "The start date is outside the years 1 to 9999.",
		"actor=%FF":                     "The user filter is not valid UTF-8.",
	} {
		resp, body := c.get("/audit?" + filter)
		if resp.StatusCode != 200 || !strings.Contains(body, html.EscapeString(want)) {
			t.Errorf("/audit?%s: %d %q; want the page saying %q", filter, resp.StatusCode, between(body, "<main", "</main>"), want)
		}
	}
	if resp, body := c.get("/audit?to=9999-12-31"); resp.StatusCode != 200 || strings.Contains(body, `class="flash error"`) {
		t.Errorf("/audit?to=9999-12-31: %d %q; want the events", resp.StatusCode, between(body, "<main", "</main>"))
	}
}

// An export that fails before any of the file is written (here the store
// fails on the first page) is answered with an error page, not with an
// empty file that reads as "no events".
func TestAuditExportFailingAtOnceIsAnErrorPage(t *testing.T) {
	c, password, fa := newFailingAuditClient(t)
	c.signInAdmin(ownerEmail, password)
	fa.failWhen(func(audit.Query) bool { return true })
	resp, body := c.get("/audit/export?format=jsonl")
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Content-Disposition") != "" {
		t.Errorf("export: %d (%q) %q; want 503 and a page", resp.StatusCode, resp.Header.Get("Content-Disposition"), between(body, "<main", "</main>"))
	}
}

// An export is started from this site (or typed, or bookmarked): a link on
// another site, which the browser follows with the session cookie
// (SameSite=Lax) and marks Sec-Fetch-Site cross-site or same-site, is
// refused, and no audit.exported is recorded in the auditor's name.
func TestAuditExportRefusedFromAnotherSite(t *testing.T) {
	c, password := newClient(t)
	c.signInAdmin(ownerEmail, password)
	exported := func() int {
		_, body := c.get("/audit?action=audit.exported")
		return strings.Count(body, "<code>audit.exported</code>")
	}
	before := exported()
	for _, site := range []string{"cross-site", "same-site"} {
		if resp, _ := c.do("GET", "/audit/export?format=csv", nil, site); resp.StatusCode != http.StatusForbidden {
			t.Errorf("export with Sec-Fetch-Site %s: %d, want 403", site, resp.StatusCode)
		}
	}
	if n := exported() - before; n != 0 {
		t.Errorf("%d audit.exported recorded by the refused exports", n)
	}
	for _, site := range []string{"same-origin", "none", ""} {
		if resp, _ := c.do("GET", "/audit/export?format=csv", nil, site); resp.StatusCode != http.StatusOK {
			t.Errorf("export with Sec-Fetch-Site %q: %d, want 200", site, resp.StatusCode)
		}
	}
	if n := exported() - before; n != 3 {
		t.Errorf("%d audit.exported recorded by three exports, want 3", n)
	}
}
