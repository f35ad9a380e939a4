package main

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/rbac"
)

// auditPage is the number of events a page of the audit log shows.
const auditPage = 50

type auditView struct {
	Events []auditRow
	Filter auditFilter
	// The links that keep the filters: the two exports, the first page
	// and the next (older) one. Built from url.Values, so the template
	// does not escape their separators.
	ExportCSV, ExportJSONL, Newest, Older template.URL
	Next                                  uint64 // cursor of the next (older) page, 0 for none
	After                                 uint64
	Actions                               []audit.Action
	Verify                                *audit.Report
	Error                                 string
}

// auditRow is an event with the people it names shown by email.
type auditRow struct {
	audit.Event
	Who, Target string
}

type auditFilter struct {
	From, To, Actor, Action, Outcome string
}

// auditQuery reads the filters of the audit page from a query string. A
// day "YYYY-MM-DD" (from the date inputs) means that day in UTC; To
// includes its whole day. Guard checks the rest (a start after the end,
// text that is not UTF-8: see auditInputSentence). The store matches the user exactly, and Guard
// stores emails canonical (auth.CanonicalEmail: lower case, NFC), so an
// email is canonicalised here as sign-in does (lower-cased if it is not
// one CanonicalEmail takes); an ID is left as given.
func auditQuery(v url.Values) (audit.Query, auditFilter, string) {
	f := auditFilter{From: v.Get("from"), To: v.Get("to"), Actor: strings.TrimSpace(v.Get("actor")),
		Action: v.Get("action"), Outcome: v.Get("outcome")}
	actor := f.Actor
	if strings.Contains(actor, "@") {
		if e, err := auth.CanonicalEmail(actor); err == nil {
			actor = e
		} else {
			actor = strings.ToLower(actor)
		}
	}
	q := audit.Query{Actor: actor, Action: f.Action, Outcome: audit.Outcome(f.Outcome), Desc: true}
	if f.Outcome != "" && f.Outcome != string(audit.Success) && f.Outcome != string(audit.Failure) {
		return q, f, "Unknown outcome."
	}
	if f.From != "" {
		t, err := time.Parse(time.DateOnly, f.From)
		if err != nil {
			return q, f, "Please give the start date as YYYY-MM-DD."
		}
		q.From = t
	}
	if f.To != "" {
		t, err := time.Parse(time.DateOnly, f.To)
		if err != nil {
			return q, f, "Please give the end date as YYYY-MM-DD."
		}
		// Up to the end of that day; the last one Guard can bound
		// (9999-12-31) ends with its range, so it sets no end.
		if end := t.Add(24 * time.Hour); end.Year() < 10000 {
			q.To = end
		}
	}
	return q, f, ""
}

// auditInputSentence says what is wrong with the filters of the audit
// page, or of an export, that Guard refused (QueryAudit, ExportAudit).
func auditInputSentence(ie *audit.InputError) string {
	if ie.Field == "From" && ie.Rule == "after To" {
		return "The start date is after the end date."
	}
	return fieldSentence(map[string]string{
		"From": "The start date", "To": "The end date", "Actor": "The user filter",
		"Action": "The action filter", "Outcome": "The outcome filter",
	}, ie.Field, "is "+ie.Rule, ie)
}

// values returns the filters as query parameters, the empty ones left out.
func (f auditFilter) values() url.Values {
	v := url.Values{}
	for k, s := range map[string]string{"from": f.From, "to": f.To, "actor": f.Actor, "action": f.Action, "outcome": f.Outcome} {
		if s != "" {
			v.Set(k, s)
		}
	}
	return v
}

// link returns path with the filters and the extra parameters (key,
// value pairs) as its query.
func (f auditFilter) link(path string, extra ...string) template.URL {
	v := f.values()
	for i := 0; i+1 < len(extra); i += 2 {
		v.Set(extra[i], extra[i+1])
	}
	if len(v) == 0 {
		return template.URL(path)
	}
	return template.URL(path + "?" + v.Encode())
}

func (a *app) auditLog(w http.ResponseWriter, r *http.Request) {
	a.renderAudit(w, r, nil)
}

func (a *app) renderAudit(w http.ResponseWriter, r *http.Request, rep *audit.Report) {
	p := principal(r)
	q, f, bad := auditQuery(r.URL.Query())
	v := auditView{Filter: f, Actions: audit.Actions, Verify: rep, Error: bad,
		ExportCSV: f.link("/audit/export", "format", "csv"), ExportJSONL: f.link("/audit/export", "format", "jsonl"),
		Newest: f.link("/audit")}
	if bad == "" {
		q.Limit = auditPage
		if after, err := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64); err == nil {
			q.After, v.After = after, after
		}
		page, err := a.g.QueryAudit(r.Context(), p, p.Tenant, q)
		if err != nil {
			if msg, ok := problem(err); ok {
				v.Error = msg
			} else {
				a.fail(w, r, err, "/audit")
				return
			}
		}
		v.Events, v.Next = a.auditRows(r, page.Events), page.Next
		if v.Next != 0 {
			v.Older = f.link("/audit", "after", strconv.FormatUint(v.Next, 10))
		}
	}
	a.page(w, r, "audit.html", view{Title: "Audit log", Nav: "audit", Data: v})
}

// auditRows names the users of the events by email where the event does
// not (admin events carry the actor's ID): one lookup per distinct user.
// A viewer who may not read users (an auditor with audit:read alone) sees
// the IDs, except their own: Can is asked first, once, so that viewing
// the log never records a refusal in the viewer's name.
func (a *app) auditRows(r *http.Request, evs []audit.Event) []auditRow {
	p := principal(r)
	names := map[string]string{}
	asked, canRead := false, false
	may := func(id string) bool {
		if id == p.UserID {
			return true // their own record needs no permission
		}
		if !asked {
			asked = true
			canRead, _ = a.g.Can(r.Context(), p, rbac.Users, rbac.Read) // an error: no
		}
		return canRead
	}
	name := func(id string) string {
		if n, ok := names[id]; ok {
			return n
		}
		n := ""
		if may(id) {
			u, err := a.g.User(r.Context(), p, p.Tenant, id)
			switch {
			case err == nil:
				n = u.Email
			case errors.Is(err, guard.ErrForbidden):
				asked, canRead = true, false // refused all the same: ask no more
			}
		}
		names[id] = n
		return n
	}
	rows := make([]auditRow, len(evs))
	for i, e := range evs {
		row := auditRow{Event: e, Who: e.Actor.Email, Target: e.Target}
		if row.Who == "" && e.Actor.Kind == audit.ActorUser && isUserID(e.Actor.ID) {
			row.Who = name(e.Actor.ID)
		}
		if row.Who == "" {
			row.Who = string(e.Actor.Kind) + " " + short(e.Actor.ID)
		}
		switch id, subject := strings.CutPrefix(e.Target, "user:"); {
		case isUserID(id):
			if n := name(id); n != "" {
				row.Target = n
				if subject {
					row.Target = "user " + n
				}
			}
		}
		rows[i] = row
	}
	return rows
}

// isUserID reports whether s looks like a Guard user ID (32 hex digits).
func isUserID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// auditExport downloads the events matching the filters, as CSV or JSON
// Lines, streamed from the store. The download starts with the export's
// first bytes: an export Guard refuses (a bad filter, a store that fails
// before anything is written) gets a page saying why instead of a file.
// One that fails once part of the file is sent is aborted
// (http.ErrAbortHandler: the connection or stream is reset), so that the
// browser reports a failed download rather than saving a truncated file
// that looks complete.
func (a *app) auditExport(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	// A GET, so that the browser downloads it: the session cookie
	// (SameSite=Lax) comes with a top-level navigation from another site
	// too, which the cross-origin protection of the forms does not
	// check. Such a link would make a signed-in auditor's browser export
	// the log, recorded as audit.exported in their name. Browsers say
	// where a request comes from (Sec-Fetch-Site): only this site, or
	// the user's own typing or bookmark, may start an export.
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" && site != "none" {
		a.errorPage(w, r, http.StatusForbidden, "Access denied", "Start the export from the audit log page.")
		return
	}
	q, _, bad := auditQuery(r.URL.Query())
	if bad != "" {
		a.errorPage(w, r, http.StatusBadRequest, "Bad request", bad)
		return
	}
	q.Desc = false
	var format audit.Format
	var ext, ctype string
	switch f := r.URL.Query().Get("format"); f {
	case "", "csv":
		format, ext, ctype = audit.CSV, "csv", "text/csv; charset=utf-8"
	case "jsonl":
		format, ext, ctype = audit.JSONLines, "jsonl", "application/jsonl; charset=utf-8"
	default:
		a.errorPage(w, r, http.StatusBadRequest, "Bad request", "Unknown export format: choose csv or jsonl.")
		return
	}
	d := &download{w: w, ctype: ctype,
		disposition: `attachment; filename="audit-` + p.Tenant + `-` + a.now().UTC().Format("20060102-150405") + `.` + ext + `"`}
	err := a.g.ExportAudit(r.Context(), p, p.Tenant, q, d, format)
	var ie *audit.InputError
	switch {
	case err == nil:
		d.start() // an export of no event is an empty file
	case d.started:
		a.ref(err)
		panic(http.ErrAbortHandler)
	case errors.As(err, &ie):
		a.errorPage(w, r, http.StatusBadRequest, "Bad request", auditInputSentence(ie))
	default:
		a.fail(w, r, err, "/audit")
	}
}

// download is the response of a file download: its headers (200, the
// type and the file name) are sent with its first bytes, so that a
// failure before them can still answer with an error page.
type download struct {
	w                  http.ResponseWriter
	ctype, disposition string
	started            bool
}

func (d *download) start() {
	if !d.started {
		d.started = true
		d.w.Header().Set("Content-Type", d.ctype)
		d.w.Header().Set("Content-Disposition", d.disposition)
		d.w.WriteHeader(http.StatusOK)
	}
}

func (d *download) Write(b []byte) (int, error) {
	d.start()
	return d.w.Write(b)
}

// auditVerify checks the tenant's hash chain and shows the result.
func (a *app) auditVerify(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	rep, err := a.g.VerifyAudit(r.Context(), p, p.Tenant)
	if err != nil {
		a.fail(w, r, err, "/audit")
		return
	}
	r.URL.RawQuery = ""
	a.renderAudit(w, r, &rep)
}
