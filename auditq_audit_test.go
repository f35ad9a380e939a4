package guard_test

import (
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/rbac"
)

// Auditor tests of reading the audit log through the facade: QueryAudit
// and ExportAudit (axis "auditq").

// exportedIn returns tenant's audit.exported events, read by the system.
func (f *fixture) exportedIn(t *testing.T, tenant string) []audit.Event {
	t.Helper()
	p, err := f.g.QueryAudit(f.ctx, guard.System("test"), tenant, audit.Query{Action: string(audit.AuditExported), Limit: audit.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	return p.Events
}

// Severity: medium. ExportAudit records audit.exported (outcome success,
// with the filters) before it checks the query: audits.go calls g.record
// and only then g.audit.Export, whose checkQuery refuses a From after To,
// a negative Limit or an unknown Outcome. So a refused export leaves a
// record that an export of the log was made, and bad input changes the
// log. Worse, a filter holding invalid UTF-8 (Actor, Action) is copied
// into the event's Meta (clip leaves a short string as it is), Record
// refuses the event, and g.record turns that into ErrUnavailable: bad
// input reported as a store outage (QueryAudit gives an *audit.InputError
// on the field for the same query); likewise an empty tenant asked by the
// system. Expected: the query is checked first (as Log.Query does) and a
// bad one refused with the *audit.InputError naming the field, nothing
// recorded and nothing written.
func TestAuditQ_RefusedExportRecordedAsDone(t *testing.T) {
	f := newFixture(t)
	admin, _ := f.userWithRoles(t, adaEmail, rbac.Admin)
	now := f.clock.Now()
	for _, tc := range []struct {
		name   string
		by     guard.Principal
		tenant string
		q      audit.Query
	}{
		{"From after To", admin, tenantID, audit.Query{From: now, To: now.Add(-time.Hour)}},
		{"negative Limit", admin, tenantID, audit.Query{Limit: -1}},
		{"unknown Outcome", admin, tenantID, audit.Query{Outcome: "succes"}},
		{"Actor not UTF-8", admin, tenantID, audit.Query{Actor: "\xff"}},
		{"Action not UTF-8", admin, tenantID, audit.Query{Action: "login.\xc3"}},
		{"no tenant (system)", guard.System("export job"), "", audit.Query{}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(f.exportedIn(t, tenantID))
			var w strings.Builder
			err := f.g.ExportAudit(f.ctx, tc.by, tc.tenant, tc.q, &w, audit.CSV)
			var ie *audit.InputError
			if !errors.As(err, &ie) || errors.Is(err, guard.ErrUnavailable) {
				t.Errorf("ExportAudit = %v; want an *audit.InputError (not ErrUnavailable), as QueryAudit gives", err)
			}
			if w.Len() != 0 {
				t.Errorf("the refused export wrote %q", w.String())
			}
			if n := len(f.exportedIn(t, tenantID)) - before; n != 0 {
				t.Errorf("the refused export left %d audit.exported event(s) in the log", n)
			}
		})
	}
}

// Severity: low. ExportAudit by the system for a tenant that does not
// exist records audit.exported in that tenant's audit chain, which it
// thereby creates (memstore, sqlite, pg: the audit store keeps chains of
// any tenant string); nothing checks that the tenant exists (audits.go
// ExportAudit: may lets the system through, then g.record). A typo in a
// host's export job leaves a phantom tenant with a log. Expected:
// ErrTenantNotFound (which auditErr is written to keep) and nothing
// recorded, as for the other calls on an unknown tenant.
func TestAuditQ_ExportOfUnknownTenantStartsItsLog(t *testing.T) {
	f := newFixture(t)
	const ghost = "globex"
	if _, err := f.g.Tenant(f.ctx, ghost); !errors.Is(err, guard.ErrTenantNotFound) {
		t.Fatalf("Tenant(%s) = %v, want ErrTenantNotFound", ghost, err)
	}
	var w strings.Builder
	err := f.g.ExportAudit(f.ctx, guard.System("export job"), ghost, audit.Query{}, &w, audit.JSONLines)
	if !errors.Is(err, guard.ErrTenantNotFound) {
		t.Errorf("ExportAudit of an unknown tenant = %v, want ErrTenantNotFound", err)
	}
	// QueryAudit refuses the unknown tenant too: the store tells.
	if _, err := f.g.QueryAudit(f.ctx, guard.System("test"), ghost, audit.Query{}); !errors.Is(err, guard.ErrTenantNotFound) {
		t.Errorf("QueryAudit of an unknown tenant = %v, want ErrTenantNotFound", err)
	}
	if h, err := f.mem.Stores().Audit.Head(f.ctx, ghost); err != nil || h.Seq != 0 {
		t.Errorf("the unknown tenant now has an audit log: head %+v, %v", h, err)
	}
}

// Severity: low. The audit.exported event does not say what was
// exported: audits.go records from and to with time.RFC3339 (whole
// seconds), so an export from 09:00:00.5 is recorded as from 09:00:00
// (events it left out look exported), and it drops the cursor (After) and
// the direction (Desc) altogether, so an export of the events after Seq 3
// reads as an export of the whole window. Expected: the recorded filters
// describe the export exactly (RFC 3339 with nanoseconds, and the cursor,
// for example Meta after=3).
func TestAuditQ_ExportRecordMisstatesTheFilters(t *testing.T) {
	f := newFixture(t)
	admin, _ := f.userWithRoles(t, adaEmail, rbac.Admin)
	from := f.clock.Now().Add(-time.Hour + 500*time.Millisecond)
	q := audit.Query{From: from, After: 3}
	if err := f.g.ExportAudit(f.ctx, admin, tenantID, q, &strings.Builder{}, audit.JSONLines); err != nil {
		t.Fatal(err)
	}
	evs := f.exportedIn(t, tenantID)
	if len(evs) != 1 {
		t.Fatalf("%d audit.exported events, want 1", len(evs))
	}
	meta := evs[0].Meta
	if got, err := time.Parse(time.RFC3339Nano, meta["from"]); err != nil || !got.Equal(from) {
		t.Errorf("recorded from = %q, but the export started at %s", meta["from"], from.Format(time.RFC3339Nano))
	}
	cursor := false
	for _, v := range meta {
		cursor = cursor || v == "3"
	}
	if !cursor {
		t.Errorf("the record %v does not say the export started after Seq 3", meta)
	}
}

// Severity: low. QueryAudit answers a time bound outside the range of
// int64 microseconds (before year -290307 or after year 294246)
// differently per backend: on SQLite, ceilMicros (store/sqlitestore
// audit.go) computes t.UnixMicro, which wraps around there, so To in the
// year 300000, or From in the year -300000, matches no event at all,
// where memstore matches every one (and PostgreSQL fails or wraps: see
// the pgstore test). The bounds come from the host's users. Expected: the
// same answer from every backend — every event for a bound beyond every
// event — or, if such bounds are refused, an *audit.InputError from all
// (Log.Query's checkQuery is the place to bound them).
func TestAuditQ_FarTimeBoundsDependOnTheBackend(t *testing.T) {
	mem := newFixture(t)
	lite := newFixture(t, func(c *guard.Config) { c.Stores = newSQLite(t) })
	answer := func(f *fixture, q audit.Query) string {
		p, err := f.g.QueryAudit(f.ctx, guard.System("test"), tenantID, q)
		var ie *audit.InputError
		if errors.As(err, &ie) {
			return "*audit.InputError on " + ie.Field
		}
		return fmt.Sprintf("%d events (err %v)", len(p.Events), err)
	}
	if want, got := answer(mem, audit.Query{}), answer(lite, audit.Query{}); got != want || want != "1 events (err <nil>)" {
		t.Fatalf("the two logs differ before any bound: sqlite %s, memstore %s", got, want)
	}
	for name, q := range map[string]audit.Query{
		"To in the year 300000":    {To: time.Date(300000, 1, 1, 0, 0, 0, 0, time.UTC)},
		"From in the year -300000": {From: time.Date(-300000, 1, 1, 0, 0, 0, 0, time.UTC)},
	} {
		if want, got := answer(mem, q), answer(lite, q); got != want {
			t.Errorf("%s: sqlite gives %s, memstore %s", name, got, want)
		}
	}
}

// Severity: medium (found beside this axis: it is about writing events).
// A request whose User-Agent header is not UTF-8 (net/http accepts bytes
// 0x80-0xFF in header values) cannot be recorded: AuthenticateRequest and
// the ip.denied event take the header through clip (ipaccess.go), which
// repairs UTF-8 only when it cuts a string longer than its bound and
// leaves a short one as it is, and audit.Log.Record refuses the event
// (invalid UserAgent). So every administrative action of that request
// fails with ErrUnavailable, and a session refused by the IP allow-list
// gets ErrUnavailable with no ip.denied event: a client outside the list
// keeps its attempts out of the audit log by sending such a header.
// Expected: the header is made valid UTF-8 whatever its length (for
// example strings.ToValidUTF8 in clip), the action is done and recorded,
// and the refusal is ErrIPNotAllowed with its ip.denied event.
func TestAuditQ_NonUTF8UserAgentKeepsRequestsOutOfTheLog(t *testing.T) {
	f := newFixture(t)
	admin, tok := f.userWithRoles(t, adaEmail, rbac.Admin)
	if _, err := f.g.SetIPAllowList(f.ctx, admin, tenantID, guard.IPListChange{Scope: ipfilter.Users, Entries: []string{"203.0.113.0/24"}}); err != nil {
		t.Fatal(err)
	}
	request := func(remote string) *http.Request {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = remote + ":40000"
		r.Header.Set("User-Agent", "Mozilla/5.0 (\xff)")
		r.AddCookie(&http.Cookie{Name: "__Host-guard", Value: tok})
		return r
	}

	p, err := f.g.AuthenticateRequest(request("203.0.113.5"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.CreateUser(f.ctx, p, guard.NewUser{Tenant: tenantID, Email: "bob@example.test", Name: "Bob"}); err != nil {
		t.Errorf("CreateUser from a request with a non-UTF-8 User-Agent = %v; want the user created and recorded", err)
	}

	before := len(f.events(t, audit.IPDenied))
	_, err = f.g.AuthenticateRequest(request("198.51.100.9"))
	if !errors.Is(err, guard.ErrIPNotAllowed) {
		t.Errorf("a session outside the allow-list, with a non-UTF-8 User-Agent: %v; want ErrIPNotAllowed", err)
	}
	if n := len(f.events(t, audit.IPDenied)) - before; n != 1 {
		t.Errorf("the refusal left %d ip.denied events, want 1", n)
	}
}
