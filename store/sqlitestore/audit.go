package sqlitestore

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/guardhq/guard/audit"
)

// Audit is the audit.Store of a Store. Each tenant has a head row (the
// chain's last link and its checkpoint) and its events keyed by (tenant,
// Seq), with indexes for Query by time, actor, action and outcome, each
// ending in Seq for the cursor.
//
// Append is one write transaction: it checks the batch against the head
// row, inserts every event with one prepared statement and moves the head,
// so a batch from audit.Log's group commit costs one commit. Purge deletes
// and stores the checkpoint in one write transaction. Head, Checkpoint and
// Query are single SELECTs, each a consistent snapshot (WAL), so a reader
// never sees part of a batch.
type Audit struct{ s *Store }

var _ audit.Store = (*Audit)(nil)

const eventCols = `tenant, seq, id, time, actor_kind, actor_id, actor_email, action, target, ip, user_agent, outcome, reason, meta, prev_mac, mac`

// insertEvents is the multi-row INSERT of n events.
func insertEvents(n int) string {
	var b strings.Builder
	b.WriteString(`INSERT INTO guard_audit_events (` + eventCols + `) VALUES `)
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`(?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`)
	}
	return b.String()
}

// maxInsertRows is the most events one INSERT statement carries (16
// parameters each, well below SQLite's limit of 32766).
const maxInsertRows = 64

// insertChunk is the INSERT of maxInsertRows events, built once.
var insertChunk = insertEvents(maxInsertRows)

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

// Append implements audit.Store.
func (a *Audit) Append(ctx context.Context, tenant string, events []audit.Event) error {
	if len(events) == 0 {
		return nil
	}
	// Everything that needs no lock is done first: the continuity of the
	// batch itself and the rows' arguments.
	for i := 1; i < len(events); i++ {
		if events[i].Seq != events[i-1].Seq+1 || !bytes.Equal(events[i].PrevMAC, events[i-1].MAC) {
			return audit.ErrConflict
		}
	}
	args := make([]any, 0, 16*len(events))
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
	return a.s.write(ctx, func(c *sql.Conn) error {
		var seq int64
		var mac []byte
		err := c.QueryRowContext(ctx, `SELECT seq, mac FROM guard_audit_heads WHERE tenant = ?`, tenant).Scan(&seq, &mac)
		exists := err == nil
		if err != nil && !isNoRows(err) {
			return fmt.Errorf("sqlitestore: append audit events: %w", err)
		}
		if first.Seq != uint64(seq)+1 || !bytes.Equal(first.PrevMAC, mac) {
			return audit.ErrConflict
		}
		// The head first: events reference it.
		if exists {
			_, err = c.ExecContext(ctx, `UPDATE guard_audit_heads SET seq = ?, mac = ? WHERE tenant = ? AND seq = ?`,
				int64(last.Seq), nullBytes(last.MAC), tenant, seq)
		} else {
			_, err = c.ExecContext(ctx, `INSERT INTO guard_audit_heads (tenant, seq, mac) VALUES (?, ?, ?)`,
				tenant, int64(last.Seq), nullBytes(last.MAC))
		}
		if err != nil {
			return fmt.Errorf("sqlitestore: append audit events: moving head: %w", err)
		}
		var chunk *sql.Stmt
		for rest := args; len(rest) > 0; {
			n := min(len(rest)/16, maxInsertRows)
			if n == maxInsertRows {
				if chunk == nil {
					if chunk, err = c.PrepareContext(ctx, insertChunk); err != nil {
						return fmt.Errorf("sqlitestore: append audit events: %w", err)
					}
					defer chunk.Close()
				}
				_, err = chunk.ExecContext(ctx, rest[:16*n]...)
			} else {
				_, err = c.ExecContext(ctx, insertEvents(n), rest[:16*n]...)
			}
			if err != nil {
				if isConstraint(err) {
					return audit.ErrConflict // a row of this Seq exists: the chain moved on
				}
				return fmt.Errorf("sqlitestore: append audit events: %w", err)
			}
			rest = rest[16*n:]
		}
		return nil
	})
}

// Head implements audit.Store.
func (a *Audit) Head(ctx context.Context, tenant string) (audit.Link, error) {
	st, err := a.s.ready(ctx)
	if err != nil {
		return audit.Link{}, err
	}
	var seq int64
	var mac []byte
	switch err := st.audHead.QueryRowContext(ctx, tenant).Scan(&seq, &mac); {
	case isNoRows(err):
		return audit.Link{}, nil
	case err != nil:
		return audit.Link{}, fmt.Errorf("sqlitestore: audit head: %w", err)
	}
	return audit.Link{Seq: uint64(seq), MAC: mac}, nil
}

// Checkpoint implements audit.Store.
func (a *Audit) Checkpoint(ctx context.Context, tenant string) (audit.Checkpoint, error) {
	st, err := a.s.ready(ctx)
	if err != nil {
		return audit.Checkpoint{}, err
	}
	var seq int64
	var at sql.NullInt64
	var cp audit.Checkpoint
	switch err := st.audCheckpoint.QueryRowContext(ctx, tenant).Scan(&seq, &cp.MAC, &at, &cp.CheckpointMAC); {
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
	return a.s.write(ctx, func(c *sql.Conn) error {
		var cpSeq int64
		err := c.QueryRowContext(ctx, `SELECT cp_seq FROM guard_audit_heads WHERE tenant = ?`, tenant).Scan(&cpSeq)
		switch {
		case isNoRows(err):
			_, err = c.ExecContext(ctx, `INSERT INTO guard_audit_heads (tenant, seq, mac, cp_seq, cp_mac, cp_at, cp_hmac)
				VALUES (?1, ?2, ?3, ?2, ?3, ?4, ?5)`,
				tenant, int64(cp.Seq), nullBytes(cp.MAC), nullMicros(cp.At), nullBytes(cp.CheckpointMAC))
			if err != nil {
				return fmt.Errorf("sqlitestore: purge audit events: %w", err)
			}
			return nil
		case err != nil:
			return fmt.Errorf("sqlitestore: purge audit events: %w", err)
		case cp.Seq < uint64(cpSeq):
			return audit.ErrConflict
		}
		if _, err := c.ExecContext(ctx, `DELETE FROM guard_audit_events WHERE tenant = ? AND seq <= ?`, tenant, int64(cp.Seq)); err != nil {
			return fmt.Errorf("sqlitestore: purge audit events: %w", err)
		}
		// When no event is left, the checkpoint is the head.
		if _, err := c.ExecContext(ctx, `UPDATE guard_audit_heads SET cp_seq = ?2, cp_mac = ?3, cp_at = ?4, cp_hmac = ?5,
				seq = CASE WHEN seq <= ?2 THEN ?2 ELSE seq END,
				mac = CASE WHEN seq <= ?2 THEN ?3 ELSE mac END
			WHERE tenant = ?1`,
			tenant, int64(cp.Seq), nullBytes(cp.MAC), nullMicros(cp.At), nullBytes(cp.CheckpointMAC)); err != nil {
			return fmt.Errorf("sqlitestore: purge audit events: %w", err)
		}
		return nil
	})
}

// Query implements audit.Store with one SELECT.
func (a *Audit) Query(ctx context.Context, tenant string, q audit.Query) ([]audit.Event, error) {
	if _, err := a.s.ready(ctx); err != nil {
		return nil, err
	}
	limit := q.Limit
	if limit <= 0 {
		limit = audit.DefaultLimit
	}
	limit = min(limit, audit.MaxLimit)
	var b strings.Builder
	args := make([]any, 0, 8)
	b.WriteString(`SELECT ` + eventCols + ` FROM guard_audit_events WHERE tenant = ?`)
	args = append(args, tenant)
	if q.After != 0 {
		if q.Desc {
			b.WriteString(` AND seq < ?`)
		} else {
			b.WriteString(` AND seq > ?`)
		}
		args = append(args, int64(q.After))
	}
	if !q.From.IsZero() {
		b.WriteString(` AND time >= ?`)
		args = append(args, micros(q.From))
	}
	if !q.To.IsZero() {
		b.WriteString(` AND time < ?`)
		args = append(args, micros(q.To))
	}
	if q.Actor != "" {
		b.WriteString(` AND (actor_id = ? OR actor_email = ?)`)
		args = append(args, q.Actor, q.Actor)
	}
	if q.Action != "" {
		b.WriteString(` AND action = ?`)
		args = append(args, q.Action)
	}
	if q.Outcome != "" {
		b.WriteString(` AND outcome = ?`)
		args = append(args, string(q.Outcome))
	}
	if q.Desc {
		b.WriteString(` ORDER BY seq DESC`)
	} else {
		b.WriteString(` ORDER BY seq`)
	}
	b.WriteString(` LIMIT ?`)
	args = append(args, limit)
	rows, err := a.s.db.QueryContext(ctx, b.String(), args...)
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
			if err := json.Unmarshal([]byte(meta.String), &e.Meta); err != nil {
				return nil, fmt.Errorf("sqlitestore: stored audit meta of Seq %d: %w", seq, err)
			}
		}
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlitestore: query audit events: %w", err)
	}
	return out, nil
}
