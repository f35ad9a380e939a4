package sqlitestore

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"math"
	"math/bits"
	"strconv"
	"strings"
	"time"

	"github.com/guardhq/guard/audit"
)

// Audit is the audit.Store of a Store. Each tenant has a head row (the
// chain's last link and its checkpoint) and its events keyed by (tenant,
// Seq), with indexes for Query by time, actor, action and outcome, each
// ending in Seq for the cursor.
//
// Append is one write transaction: it checks the batch against the head
// row, inserts every event with one prepared statement and moves the head,
// so a batch from audit.Log's group commit costs one commit. The events go
// to the chain's tail, a table without secondary indexes, so a commit
// writes two or three pages whatever the actors and actions of its batch;
// once the tail holds AuditTail events, the Append that got it there also
// moves it into the indexed table in one bulk insert (the index pages
// are then written once per 256 events, not once per commit).
// Query reads both tables; the tail is read by its primary key. Purge deletes
// and stores the checkpoint in one write transaction. Head, Checkpoint and
// Query are single SELECTs, each a consistent snapshot (WAL), so a reader
// never sees part of a batch.
type Audit struct{ s *Store }

var _ audit.Store = (*Audit)(nil)

const eventCols = `tenant, seq, id, time, actor_kind, actor_id, actor_email, action, target, ip, user_agent, outcome, reason, meta, prev_mac, mac`

// insertEvents is the multi-row INSERT of n events.
func insertEvents(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO guard_audit_tail (` + eventCols + `) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`)
	}
	return b.String()
}

// AuditTail is the number of a chain's newest events that Append keeps
// out of the audit indexes before it indexes them in bulk.
const AuditTail = 256

// eventParams is the number of parameters of one event's row.
const eventParams = 16

// insertSizes is the number of multi-row INSERT statements Append has:
// of 1, 2, 4… 64 events. A batch of n events takes one statement per bit
// of n that is set (and one per 64 events beyond that).
const insertSizes = 7

func encodeMeta(m map[string]string) (any, error) {
	if len(m) == 0 {
		return nil, nil
	}
	b, err := json.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: encode audit meta: %w", err)
	}
	return string(b), nil
}

// decodeMeta reverses encodeMeta for a column that is not NULL. A column
// that does not decode (edited behind the store) is returned as the text
// it holds under the empty key, which no event recorded can carry (Meta
// keys are not empty): its MAC fails, and Verify reports the event.
func decodeMeta(s string) map[string]string {
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return map[string]string{"": s}
	}
	return m
}

// Append implements audit.Store. An event whose Tenant is not tenant gives
// an *audit.InputError and stores nothing.
func (a *Audit) Append(ctx context.Context, tenant string, events []audit.Event) error {
	if len(events) == 0 {
		return nil
	}
	// Everything that needs no lock is done first: the continuity of the
	// batch itself and the rows' arguments.
	for i := range events {
		if events[i].Tenant != tenant {
			return &audit.InputError{Field: "Tenant", Rule: "differs from the tenant the events are appended to"}
		}
	}
	for i := 1; i < len(events); i++ {
		if events[i].Seq != events[i-1].Seq+1 || !bytes.Equal(events[i].PrevMAC, events[i-1].MAC) {
			return audit.ErrConflict
		}
	}
	args := make([]any, 0, eventParams*len(events))
	for i := range events {
		e := &events[i]
		meta, err := encodeMeta(e.Meta)
		if err != nil {
			return err
		}
		args = append(args, tenant, int64(e.Seq), e.ID, micros(e.Time), string(e.Actor.Kind), e.Actor.ID, e.Actor.Email,
			string(e.Action), e.Target, e.IP, e.UserAgent, string(e.Outcome), e.Reason, meta, nullBytes(e.PrevMAC), nullBytes(e.MAC))
	}
	first, last := &events[0], &events[len(events)-1]
	return a.s.write(ctx, func(w *wtx) error {
		// Move the head from the link the batch continues to its last
		// event: one compare-and-set.
		var tail int64
		err := w.queryRow(audMoveHead, int64(last.Seq), nullBytes(last.MAC), tenant, int64(first.Seq-1), nullBytes(first.PrevMAC)).Scan(&tail)
		moved := err == nil
		if err != nil && !isNoRows(err) {
			return fmt.Errorf("sqlitestore: append audit events: %w", err)
		}
		if !moved {
			// A tenant's first events create the head; anything else
			// does not continue the chain.
			if first.Seq != 1 || len(first.PrevMAC) != 0 {
				return audit.ErrConflict
			}
			res, err := w.exec(audNewHead, tenant, int64(last.Seq), nullBytes(last.MAC))
			created, err := affected(res, err)
			if err != nil {
				return fmt.Errorf("sqlitestore: append audit events: %w", err)
			}
			if !created {
				return audit.ErrConflict
			}
		}
		for len(args) > 0 {
			k := min(bits.Len(uint(len(args)/eventParams))-1, insertSizes-1)
			n := eventParams << k
			if _, err := w.exec(audInsert+stmtID(k), args[:n]...); err != nil {
				return fmt.Errorf("sqlitestore: append audit events: %w", err)
			}
			args = args[n:]
		}
		if tail < AuditTail {
			return nil
		}
		// The tail is long enough: index it in bulk.
		for _, st := range []stmtID{audIndexTail, audDropTail, audIndexed} {
			if _, err := w.exec(st, tenant); err != nil {
				return fmt.Errorf("sqlitestore: index audit events: %w", err)
			}
		}
		return nil
	})
}

// ceilMicros is t in Unix microseconds, rounded up.
func ceilMicros(t time.Time) int64 {
	us := t.UnixMicro()
	if t.Nanosecond()%1000 != 0 {
		us++
	}
	return us
}

// affected reports whether the statement that gave res changed a row.
func affected(res sql.Result, err error) (bool, error) {
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// Head implements audit.Store.
func (a *Audit) Head(ctx context.Context, tenant string) (audit.Link, error) {
	if err := a.s.ready(ctx); err != nil {
		return audit.Link{}, err
	}
	var seq int64
	var mac []byte
	switch err := a.s.reads.queryRow(ctx, audHead, tenant).Scan(&seq, &mac); {
	case isNoRows(err):
		return audit.Link{}, nil
	case err != nil:
		return audit.Link{}, fmt.Errorf("sqlitestore: audit head: %w", err)
	}
	return audit.Link{Seq: uint64(seq), MAC: mac}, nil
}

// Checkpoint implements audit.Store.
func (a *Audit) Checkpoint(ctx context.Context, tenant string) (audit.Checkpoint, error) {
	if err := a.s.ready(ctx); err != nil {
		return audit.Checkpoint{}, err
	}
	var seq int64
	var at sql.NullInt64
	var cp audit.Checkpoint
	switch err := a.s.reads.queryRow(ctx, audCheckpoint, tenant).Scan(&seq, &cp.MAC, &at, &cp.CheckpointMAC); {
	case isNoRows(err):
		return audit.Checkpoint{}, nil
	case err != nil:
		return audit.Checkpoint{}, fmt.Errorf("sqlitestore: audit checkpoint: %w", err)
	}
	cp.Seq = uint64(seq)
	cp.At = fromNullMicros(at)
	return cp, nil
}

// Purge implements audit.Store in one write transaction.
func (a *Audit) Purge(ctx context.Context, tenant string, cp audit.Checkpoint) error {
	return a.s.write(ctx, func(w *wtx) error {
		var cpSeq int64
		err := w.queryRow(audCpSeq, tenant).Scan(&cpSeq)
		switch {
		case isNoRows(err) && cp.Seq == 0:
			return audit.ErrConflict
		case isNoRows(err):
			if _, err := w.exec(audPurgeNew, tenant, int64(cp.Seq), nullBytes(cp.MAC), nullMicros(cp.At), nullBytes(cp.CheckpointMAC)); err != nil {
				return fmt.Errorf("sqlitestore: purge audit events: %w", err)
			}
			return nil
		case err != nil:
			return fmt.Errorf("sqlitestore: purge audit events: %w", err)
		case cp.Seq <= uint64(cpSeq):
			return audit.ErrConflict
		}
		for _, st := range []stmtID{audPurge, audPurgeTail} {
			if _, err := w.exec(st, tenant, int64(cp.Seq)); err != nil {
				return fmt.Errorf("sqlitestore: purge audit events: %w", err)
			}
		}
		if _, err := w.exec(audPurgeHead, tenant, int64(cp.Seq), nullBytes(cp.MAC), nullMicros(cp.At), nullBytes(cp.CheckpointMAC)); err != nil {
			return fmt.Errorf("sqlitestore: purge audit events: %w", err)
		}
		return nil
	})
}

// auditQuery is the SELECT of Query: every filter a condition, with the
// Seq cursor as a range. The most selective filter names the index, whose
// last column is seq, so a page is read in order and the scan stops once
// it is full, without leaving the choice to the planner (which has no
// statistics and would rather scan the chain in Seq order). An actor
// matches Actor.ID or Actor.Email: the page is then taken from the union of
// one range per actor index, each cut at the page size. Without actor,
// action or outcome, the chain is read in Seq order (by the primary key)
// unless a time bound would make that read skip events first.
func auditQuery(tenant string, q audit.Query, limit int) (string, []any) {
	args := []any{tenant}
	conds := []string{"tenant = ?1"}
	add := func(cond string, v any) {
		args = append(args, v)
		conds = append(conds, cond+strconv.Itoa(len(args)))
	}
	if q.After != 0 {
		// Seqs are below 2^63: a cursor beyond is after every event.
		after := int64(min(q.After, math.MaxInt64))
		if q.Desc {
			add("seq < ?", after)
		} else {
			add("seq > ?", after)
		}
	}
	// Times are stored in whole microseconds: a bound between two is
	// rounded up, which keeps From <= Time < To exact.
	if !q.From.IsZero() {
		add("time >= ?", ceilMicros(q.From))
	}
	if !q.To.IsZero() {
		add("time < ?", ceilMicros(q.To))
	}
	if q.Action != "" {
		add("action = ?", q.Action)
	}
	if q.Outcome != "" {
		add("outcome = ?", string(q.Outcome))
	}
	args = append(args, limit)
	order := " ORDER BY seq LIMIT ?" + strconv.Itoa(len(args))
	if q.Desc {
		order = " ORDER BY seq DESC LIMIT ?" + strconv.Itoa(len(args))
	}
	where := strings.Join(conds, " AND ")
	const table = ` FROM guard_audit_events`
	// The tail (at most AuditTail events and a batch) has no secondary
	// index: it is read by its primary key and filtered, and its page is
	// merged with the indexed table's.
	tailWhere := where
	if q.Actor != "" {
		// The actor is the last argument (added below).
		tailWhere += " AND (actor_id = ?" + strconv.Itoa(len(args)+1) + " OR actor_email = ?" + strconv.Itoa(len(args)+1) + ")"
	}
	tail := `SELECT ` + eventCols + ` FROM guard_audit_tail WHERE ` + tailWhere + order
	union := func(indexed string) string {
		return `SELECT * FROM (` + indexed + `) UNION ALL SELECT * FROM (` + tail + `)` + order
	}
	if q.Actor == "" {
		index := ""
		switch {
		case q.Action != "":
			index = ` INDEXED BY guard_audit_action`
		case q.Outcome != "":
			index = ` INDEXED BY guard_audit_outcome`
		case !q.Desc && !q.From.IsZero(), q.Desc && !q.To.IsZero():
			// Read in Seq order, the chain would start with the events
			// the time range leaves out: take the range from the time
			// index and sort it instead — only the seqs, which the index
			// covers (every condition is on tenant, time or seq), then
			// read the page's rows by primary key.
			return union(`SELECT ` + eventCols + table + ` WHERE tenant = ?1 AND seq IN (
		SELECT seq` + table + ` INDEXED BY guard_audit_time WHERE ` + where + order + `)` + order), args
		}
		return union(`SELECT ` + eventCols + table + index + ` WHERE ` + where + order), args
	}
	args = append(args, q.Actor)
	actor := "?" + strconv.Itoa(len(args))
	return union(`SELECT ` + eventCols + table + ` WHERE tenant = ?1 AND seq IN (
		SELECT seq FROM (SELECT seq` + table + ` INDEXED BY guard_audit_actor_id WHERE ` + where + ` AND actor_id = ` + actor + order + `)
		UNION ALL
		SELECT seq FROM (SELECT seq` + table + ` INDEXED BY guard_audit_actor_email WHERE ` + where + ` AND actor_email = ` + actor + order + `))` + order), args
}

// Query implements audit.Store with one SELECT (see auditQuery).
func (a *Audit) Query(ctx context.Context, tenant string, q audit.Query) ([]audit.Event, error) {
	if err := a.s.ready(ctx); err != nil {
		return nil, err
	}
	limit := q.Limit
	if limit <= 0 {
		limit = audit.DefaultLimit
	}
	limit = min(limit, audit.MaxLimit)
	query, args := auditQuery(tenant, q, limit)
	rows, err := a.s.db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: query audit events: %w", err)
	}
	defer rows.Close()
	var out []audit.Event
	for rows.Next() {
		var e audit.Event
		var seq, t int64
		var kind, action, outcome string
		var meta sql.NullString
		if err := rows.Scan(&e.Tenant, &seq, &e.ID, &t, &kind, &e.Actor.ID, &e.Actor.Email, &action, &e.Target,
			&e.IP, &e.UserAgent, &outcome, &e.Reason, &meta, &e.PrevMAC, &e.MAC); err != nil {
			return nil, fmt.Errorf("sqlitestore: query audit events: %w", err)
		}
		e.Seq = uint64(seq)
		e.Time = fromMicros(t)
		e.Actor.Kind = audit.ActorKind(kind)
		e.Action = audit.Action(action)
		e.Outcome = audit.Outcome(outcome)
		if meta.Valid {
			e.Meta = decodeMeta(meta.String)
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlitestore: query audit events: %w", err)
	}
	return out, nil
}
