package audit

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
)

// Format is an export format.
type Format int

const (
	// JSONLines writes one JSON object per line (https://jsonlines.org),
	// with the keys listed in ExportColumns. time is RFC 3339 with
	// nanoseconds in UTC, seq a number, meta an object ({} when empty),
	// prev_mac and mac lowercase hex; every other value is a string.
	// Control characters, quotes and U+2028/U+2029 inside values are
	// escaped, so each event is exactly one line.
	JSONLines Format = iota
	// CSV writes RFC 4180 CSV: a header row of ExportColumns, then one
	// record per event, with the same values as JSONLines (meta as a JSON
	// object). Values containing commas, quotes, CR or LF are quoted, so CR
	// and LF stay inside their cell. To defend spreadsheets against formula
	// injection, a value starting with '=', '+', '-', '@', tab, CR or LF
	// gets a leading apostrophe ('). A spreadsheet whose list separator is
	// ';' (Excel in many locales), or that splits at tabs or line breaks,
	// starts a cell after each of those characters whatever the quoting, so
	// an apostrophe is also put after each ';', tab, CR or LF inside a value
	// that is followed by '=', '+', '-' or '@' (with or without double
	// quotes between): "Mozilla/5.0;=cmd" is written "Mozilla/5.0;'=cmd",
	// in meta's JSON too. These values then differ from the events' own;
	// JSONLines is the exact export, and the one to verify a chain from.
	CSV
)

// ExportCheckpointID is the id of the checkpoint record of an export (see
// Log.Export). Event IDs are 32 hexadecimal digits, so no event has it.
const ExportCheckpointID = "checkpoint"

// ExportColumns are the keys of a JSONLines export and the header of a CSV
// export, in CSV column order.
var ExportColumns = []string{
	"id", "tenant", "seq", "time", "actor_kind", "actor_id", "actor_email",
	"action", "target", "ip", "user_agent", "outcome", "reason", "meta",
	"prev_mac", "mac",
}

// exportEvent is the JSONLines schema; keep it in step with ExportColumns.
type exportEvent struct {
	ID         string            `json:"id"`
	Tenant     string            `json:"tenant"`
	Seq        uint64            `json:"seq"`
	Time       string            `json:"time"`
	ActorKind  string            `json:"actor_kind"`
	ActorID    string            `json:"actor_id"`
	ActorEmail string            `json:"actor_email"`
	Action     string            `json:"action"`
	Target     string            `json:"target"`
	IP         string            `json:"ip"`
	UserAgent  string            `json:"user_agent"`
	Outcome    string            `json:"outcome"`
	Reason     string            `json:"reason"`
	Meta       map[string]string `json:"meta"`
	PrevMAC    string            `json:"prev_mac"`
	MAC        string            `json:"mac"`
}

// checkpointExport is the export record of tenant's checkpoint cp (see
// Log.Export).
func checkpointExport(tenant string, cp *Checkpoint) exportEvent {
	return exportEvent{
		ID:     ExportCheckpointID,
		Tenant: tenant,
		Seq:    cp.Seq,
		Time:   cp.At.UTC().Format(time.RFC3339Nano),
		Meta:   map[string]string{"checkpoint_mac": hex.EncodeToString(cp.CheckpointMAC)},
		MAC:    hex.EncodeToString(cp.MAC),
	}
}

func toExport(e *Event) exportEvent {
	meta := e.Meta
	if meta == nil {
		meta = map[string]string{}
	}
	return exportEvent{
		ID:         e.ID,
		Tenant:     e.Tenant,
		Seq:        e.Seq,
		Time:       e.Time.UTC().Format(time.RFC3339Nano),
		ActorKind:  string(e.Actor.Kind),
		ActorID:    e.Actor.ID,
		ActorEmail: e.Actor.Email,
		Action:     string(e.Action),
		Target:     e.Target,
		IP:         e.IP,
		UserAgent:  e.UserAgent,
		Outcome:    string(e.Outcome),
		Reason:     e.Reason,
		Meta:       meta,
		PrevMAC:    hex.EncodeToString(e.PrevMAC),
		MAC:        hex.EncodeToString(e.MAC),
	}
}

// Export writes every event of tenant that matches q's filters to w in
// format f, in ascending Seq order, or descending when q.Desc. It pages
// through the store and ignores q.Limit; q.After, if set, is where it
// starts. Like Log.Query, it never writes an event at or below the Seq of
// tenant's checkpoint. An unknown format, an invalid tenant or a filter no
// event can hold (see Log.Query) gives an *InputError; a store or write
// error is returned wrapped, and w may then hold a partial export.
//
// A Purge (of this Log or a replica's) landing while Export pages through
// the events may delete some it has still to write. Export then stops with
// an error wrapping ErrConflict rather than write an export that skips
// them (a filtered export, which cannot tell which events a purge took,
// stops for any that may have taken some): w holds a partial export,
// which the caller must discard before exporting again. A purge only of
// events an unfiltered ascending export already wrote is no conflict: the
// export is of the chain as it was.
//
// An export of a purged chain that reaches its start (no filter, and
// descending or with q.After at most the checkpoint's Seq) also holds the
// tenant's checkpoint, as stored, where the chain starts: as its first
// record, or its last when descending. It has the columns of an event: id
// ExportCheckpointID; tenant; seq and time, the checkpoint's Seq and At;
// mac, its MAC, which the next event's prev_mac repeats; meta, an object
// holding only checkpoint_mac, its CheckpointMAC in hex; every other value
// empty. With it a verifier holding the key checks the export from its
// first event on (see the package documentation).
func (l *Log) Export(ctx context.Context, tenant string, q Query, w io.Writer, f Format) error {
	if err := CheckExport(tenant, q, f); err != nil {
		return err
	}
	var enc exporter
	switch f {
	case CSV:
		enc = newCSVExporter(w)
	default: // JSONLines: CheckExport refuses any other
		enc = newJSONExporter(w)
	}
	cp, err := l.afterCheckpoint(ctx, tenant, &q)
	if err != nil {
		return fmt.Errorf("audit: exporting events: %w", err)
	}
	// The checkpoint record, if the export reaches the chain's start (an
	// ascending q.After is at least the checkpoint's Seq by now).
	var anchor *exportEvent
	if !cp.isZero() && (q.Desc || q.After == cp.Seq) && unfiltered(q) {
		v := checkpointExport(tenant, &cp)
		anchor = &v
	}
	if anchor != nil && !q.Desc {
		if err := enc.write(*anchor); err != nil {
			return fmt.Errorf("audit: exporting events: %w", err)
		}
	}
	q.Limit = MaxLimit
	for {
		events, err := l.store.Query(ctx, tenant, q)
		if err != nil {
			return fmt.Errorf("audit: exporting events: %w", err)
		}
		events, end := abovePurged(events, cp.Seq)
		if err := l.exportContinues(ctx, tenant, &cp, q, events, end); err != nil {
			return fmt.Errorf("audit: exporting events: %w", err)
		}
		for i := range events {
			if err := enc.write(toExport(&events[i])); err != nil {
				return fmt.Errorf("audit: exporting events: %w", err)
			}
		}
		if len(events) == 0 || end {
			break
		}
		q.After = events[len(events)-1].Seq
	}
	if anchor != nil && q.Desc {
		if err := enc.write(*anchor); err != nil {
			return fmt.Errorf("audit: exporting events: %w", err)
		}
	}
	if err := enc.flush(); err != nil {
		return fmt.Errorf("audit: exporting events: %w", err)
	}
	return nil
}

// exportContinues returns an error wrapping ErrConflict when a purge (of
// this Log or a replica's) that moved tenant's checkpoint past cp may have
// deleted events the export has still to write: events is the page just
// read with q (abovePurged of cp; end when it met cp). Its events are not
// written yet.
//
// Seq has no gaps in a chain, so an unfiltered export needs no store round
// trip while each page starts where the last ended (ascending, one above
// q.After; descending, one below it, or anywhere for the first page) and a
// descending export ends one above cp; an ascending one reads the
// checkpoint once, at its end (the empty page), to learn whether a purge
// took the events it had left. A filtered export reads it after each page.
// A gap with the checkpoint not past q.After (ascending) or unmoved
// (descending) is in the stored chain: it is exported as it is, for a
// verifier to report.
func (l *Log) exportContinues(ctx context.Context, tenant string, cp *Checkpoint, q Query, events []Event, end bool) error {
	if unfiltered(q) {
		var starts, ends bool
		switch {
		case len(events) == 0:
			starts = true
		case q.Desc:
			starts = q.After == 0 || events[0].Seq == q.After-1
		default:
			starts = events[0].Seq == q.After+1
		}
		switch {
		case len(events) > 0 && !end:
			ends = true // not the last page
		case q.Desc:
			ends = lowest(q.After, events) == cp.Seq+1
		}
		if starts && ends {
			return nil
		}
	}
	cur, err := l.store.Checkpoint(ctx, tenant)
	if err != nil {
		return fmt.Errorf("reading checkpoint: %w", err)
	}
	// Ascending, a purge up to q.After took only events already written;
	// descending, every purge takes events still to write, unless the
	// export reached cp (an unfiltered one knows it without this read).
	if !q.Desc && cur.Seq > q.After || q.Desc && !cur.equal(cp) {
		return fmt.Errorf("overtaken by a purge; discard the output and export again: %w", ErrConflict)
	}
	return nil
}

// lowest returns the Seq of the last event of a descending page, after
// if it is empty.
func lowest(after uint64, events []Event) uint64 {
	if len(events) == 0 {
		return after
	}
	return events[len(events)-1].Seq
}

// unfiltered reports whether q selects every event (cursor and order
// aside).
func unfiltered(q Query) bool {
	return q.From.IsZero() && q.To.IsZero() && q.Actor == "" && q.Action == "" && q.Outcome == ""
}

// CheckExport returns the *InputError that Log.Export gives for tenant,
// q and f before it reads or writes anything (an invalid tenant, a filter
// no event can hold as for Log.Query, an unknown format), or nil when
// Export would go ahead. A caller that must act before an export (the
// facade records it) checks with it first, so that an export refused for
// its input leaves no trace.
func CheckExport(tenant string, q Query, f Format) error {
	if err := checkTenant(tenant); err != nil {
		return err
	}
	if err := checkQuery(q); err != nil {
		return err
	}
	if f != JSONLines && f != CSV {
		return &InputError{Field: "format", Rule: "unknown"}
	}
	return nil
}

type exporter interface {
	write(v exportEvent) error
	flush() error
}

type jsonExporter struct {
	bw  *bufio.Writer
	enc *json.Encoder
}

func newJSONExporter(w io.Writer) *jsonExporter {
	bw := bufio.NewWriter(w)
	return &jsonExporter{bw: bw, enc: json.NewEncoder(bw)}
}

// write encodes v and a newline. encoding/json escapes control characters
// and U+2028/U+2029, so the line holds exactly one event.
func (x *jsonExporter) write(v exportEvent) error { return x.enc.Encode(v) }
func (x *jsonExporter) flush() error              { return x.bw.Flush() }

type csvExporter struct {
	cw     *csv.Writer
	header bool
	rec    []string
}

func newCSVExporter(w io.Writer) *csvExporter {
	return &csvExporter{cw: csv.NewWriter(w), rec: make([]string, len(ExportColumns))}
}

func (x *csvExporter) writeHeader() error {
	x.header = true
	return x.cw.Write(ExportColumns)
}

func (x *csvExporter) write(v exportEvent) error {
	if !x.header {
		if err := x.writeHeader(); err != nil {
			return err
		}
	}
	meta, err := json.Marshal(v.Meta)
	if err != nil {
		return err
	}
	r := x.rec
	r[0], r[1], r[2], r[3] = v.ID, v.Tenant, strconv.FormatUint(v.Seq, 10), v.Time
	r[4], r[5], r[6] = v.ActorKind, v.ActorID, v.ActorEmail
	r[7], r[8], r[9], r[10] = v.Action, v.Target, v.IP, v.UserAgent
	r[11], r[12], r[13] = v.Outcome, v.Reason, string(meta)
	r[14], r[15] = v.PrevMAC, v.MAC
	for i := range r {
		r[i] = csvSafe(r[i])
	}
	return x.cw.Write(r)
}

func (x *csvExporter) flush() error {
	if !x.header { // an empty export still has its header
		if err := x.writeHeader(); err != nil {
			return err
		}
	}
	x.cw.Flush()
	return x.cw.Error()
}

// csvSafe defends a cell against formula injection (see CSV): it puts an
// apostrophe before a formula character at the start of s, and after each
// ';', tab, CR or LF that a formula character follows, with or without
// double quotes between.
func csvSafe(s string) string {
	var b strings.Builder
	done := 0 // s[:done] is in b
	// i is the ';', tab, CR or LF before a cell start, -1 for s's start.
	for i := -1; i < len(s); i++ {
		start, formula, j := 0, "=+-@\t\r\n", 0
		if i >= 0 {
			if strings.IndexByte(";\t\r\n", s[i]) < 0 {
				continue
			}
			start, formula, j = i+1, "=+-@", i+1
			for j < len(s) && s[j] == '"' {
				j++
			}
		}
		if j < len(s) && strings.IndexByte(formula, s[j]) >= 0 {
			b.WriteString(s[done:start])
			b.WriteByte('\'')
			done = start
		}
	}
	if b.Len() == 0 {
		return s
	}
	b.WriteString(s[done:])
	return b.String()
}
