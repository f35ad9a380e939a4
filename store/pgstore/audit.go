package pgstore

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/guardhq/guard/audit"
)

// Audit is the PostgreSQL audit.Store.
//
// Append is one statement, so one round trip and one commit per batch: it
// moves the tenant's row in audit_heads with a compare-and-set on the old
// Seq and MAC (or inserts it for a chain's first event) and, only if that
// succeeded, inserts every event of the batch from arrays. A writer that
// lost the race changes nothing and gets audit.ErrConflict. Purge deletes
// and stores the checkpoint in one statement too.
type Audit struct {
	pool *pgxpool.Pool
	sql  auditSQL
}

var _ audit.Store = (*Audit)(nil)

type auditSQL struct {
	appendFirst, appendNext, head, checkpoint, purge string
	query                                            string // up to the WHERE clause
}

const auditCols = `seq, id, time, actor_kind, actor_id, actor_email, action, target, ip, user_agent, outcome, reason, meta, prev_mac, mac`

// auditInsert inserts the events of arrays $4.. if the CTE h (which moves
// the head) returned a row; $1 is the tenant.
const auditInsert = `
	INSERT INTO {s}.audit_events (tenant, ` + auditCols + `)
	SELECT $1, e.* FROM unnest($4::bigint[], $5::bytea[], $6::timestamptz[], $7::bytea[], $8::bytea[], $9::bytea[],
		$10::bytea[], $11::bytea[], $12::bytea[], $13::bytea[], $14::bytea[], $15::bytea[], $16::text[], $17::bytea[],
		$18::bytea[]) AS e
	WHERE EXISTS (SELECT 1 FROM h)`

func newAuditSQL(q string, async bool) auditSQL {
	s := func(sql string) string { return schemaSQL(q, sql) }
	insert := auditInsert
	if async {
		// set_config(…, true) holds for the statement's own transaction,
		// whose commit then does not wait for the WAL flush.
		insert += ` AND (SELECT set_config('synchronous_commit', 'off', true)) = 'off'`
	}
	return auditSQL{
		// The first event of a chain inserts the head row; if one exists
		// the chain has moved on. Both variants take the same parameters:
		// $2 the old head MAC, $3 and $19 the new head, $20 the count.
		appendFirst: s(`WITH h AS (
				INSERT INTO {s}.audit_heads (tenant, seq, mac)
				SELECT $1, $3, $19 WHERE $2::bytea = '' AND $20::bigint > 0
				ON CONFLICT (tenant) DO NOTHING
				RETURNING 1)` + insert),
		appendNext: s(`WITH h AS (
				UPDATE {s}.audit_heads SET seq = $3, mac = $19
				WHERE tenant = $1 AND seq = $3 - $20::bigint AND mac = $2
				RETURNING 1)` + insert),
		head:       s(`SELECT seq, mac FROM {s}.audit_heads WHERE tenant = $1`),
		checkpoint: s(`SELECT seq, mac, at, checkpoint_mac FROM {s}.audit_checkpoints WHERE tenant = $1`),
		// The checkpoint moves only forward, strictly (the upsert's WHERE,
		// checked on the locked row); the events up to it go, and the
		// head is raised to it if it was behind, all or nothing.
		purge: s(`WITH cp AS (
				INSERT INTO {s}.audit_checkpoints AS c (tenant, seq, mac, at, checkpoint_mac) VALUES ($1, $2, $3, $4, $5)
				ON CONFLICT (tenant) DO UPDATE SET seq = EXCLUDED.seq, mac = EXCLUDED.mac, at = EXCLUDED.at,
					checkpoint_mac = EXCLUDED.checkpoint_mac
				WHERE c.seq < EXCLUDED.seq
				RETURNING seq
			), del AS (
				DELETE FROM {s}.audit_events WHERE tenant = $1 AND seq <= (SELECT seq FROM cp)
			), hd AS (
				INSERT INTO {s}.audit_heads AS hd (tenant, seq, mac) SELECT $1, $2, $3 FROM cp WHERE $2 > 0
				ON CONFLICT (tenant) DO UPDATE SET seq = EXCLUDED.seq, mac = EXCLUDED.mac WHERE hd.seq < EXCLUDED.seq
			)
			SELECT count(*) FROM cp`),
		query: s(`SELECT ` + auditCols + ` FROM {s}.audit_events WHERE tenant = $1`),
	}
}

// checkTenant returns an *audit.InputError for a tenant that PostgreSQL
// text cannot hold.
func checkAuditTenant(tenant string) error {
	if p := textProblem(tenant); p != "" {
		return &audit.InputError{Field: "Tenant", Rule: p}
	}
	return nil
}

// Append implements audit.Store.
func (s *Audit) Append(ctx context.Context, tenant string, events []audit.Event) error {
	if len(events) == 0 {
		return nil
	}
	if err := checkAuditTenant(tenant); err != nil {
		return err
	}
	// Continuity inside the batch is a property of the argument: checked
	// here. Continuity with the stored head is the statement's
	// compare-and-set.
	for i := range events {
		e := &events[i]
		if e.Tenant != tenant {
			return &audit.InputError{Field: "Tenant", Rule: "differs from the tenant of the Append"}
		}
		if e.Seq == 0 || e.Seq > math.MaxInt64 {
			return audit.ErrConflict // never Head.Seq+1 of a chain this store can hold
		}
		if i > 0 && (e.Seq != events[i-1].Seq+1 || !bytes.Equal(e.PrevMAC, events[i-1].MAC)) {
			return audit.ErrConflict
		}
	}
	first, last := &events[0], &events[len(events)-1]
	if first.Seq == 1 && len(first.PrevMAC) != 0 {
		return audit.ErrConflict // the head of an empty chain has no MAC
	}
	n := len(events)
	var (
		seqs     = make([]int64, n)
		ids      = make([][]byte, n)
		times    = make([]*time.Time, n)
		kinds    = make([][]byte, n)
		actorIDs = make([][]byte, n)
		emails   = make([][]byte, n)
		actions  = make([][]byte, n)
		targets  = make([][]byte, n)
		ips      = make([][]byte, n)
		agents   = make([][]byte, n)
		outcomes = make([][]byte, n)
		reasons  = make([][]byte, n)
		metas    = make([]*string, n)
		prevs    = make([][]byte, n)
		macs     = make([][]byte, n)
	)
	for i := range events {
		e := &events[i]
		seqs[i] = int64(e.Seq)
		ids[i] = []byte(e.ID)
		times[i] = nullTime(e.Time)
		kinds[i] = []byte(e.Actor.Kind)
		actorIDs[i] = []byte(e.Actor.ID)
		emails[i] = []byte(e.Actor.Email)
		actions[i] = []byte(e.Action)
		targets[i] = []byte(e.Target)
		ips[i] = []byte(e.IP)
		agents[i] = []byte(e.UserAgent)
		outcomes[i] = []byte(e.Outcome)
		reasons[i] = []byte(e.Reason)
		if len(e.Meta) > 0 {
			b, err := json.Marshal(e.Meta)
			if err != nil {
				return &audit.InputError{Field: "Meta", Rule: "not encodable as JSON"}
			}
			m := string(b)
			metas[i] = &m
		}
		prevs[i] = nonNil(e.PrevMAC)
		macs[i] = nonNil(e.MAC)
	}
	sql := s.sql.appendNext
	if first.Seq == 1 {
		sql = s.sql.appendFirst
	}
	tag, err := s.pool.Exec(ctx, sql, tenant, nonNil(first.PrevMAC), int64(last.Seq),
		seqs, ids, times, kinds, actorIDs, emails, actions, targets, ips, agents, outcomes, reasons, metas, prevs, macs,
		nonNil(last.MAC), int64(n))
	if err != nil {
		if code, _ := pgCode(err); code == codeUniqueViolation {
			return audit.ErrConflict // another writer's events hold these Seqs
		}
		return wrap("audit: append", err)
	}
	if tag.RowsAffected() != int64(n) {
		return audit.ErrConflict
	}
	return nil
}

// Head implements audit.Store: the head row is kept by Append and Purge.
func (s *Audit) Head(ctx context.Context, tenant string) (audit.Link, error) {
	if checkAuditTenant(tenant) != nil {
		return audit.Link{}, nil // no chain can be stored under it
	}
	var l audit.Link
	var seq int64
	err := s.pool.QueryRow(ctx, s.sql.head, tenant).Scan(&seq, &l.MAC)
	if errors.Is(err, pgx.ErrNoRows) {
		return audit.Link{}, nil
	}
	if err != nil {
		return audit.Link{}, wrap("audit: head", err)
	}
	l.Seq = uint64(seq)
	return l, nil
}

// Query implements audit.Store. The filters and the Seq cursor are one
// statement; the indexes on (tenant, seq), (tenant, time), (tenant,
// actor_id, seq), (tenant, actor_email, seq) and (tenant, action, seq)
// serve them.
func (s *Audit) Query(ctx context.Context, tenant string, q audit.Query) ([]audit.Event, error) {
	if checkAuditTenant(tenant) != nil {
		return nil, nil
	}
	limit := q.Limit
	if limit <= 0 {
		limit = audit.DefaultLimit
	}
	limit = min(limit, audit.MaxLimit)
	var sb strings.Builder
	sb.WriteString(s.sql.query)
	args := []any{tenant}
	arg := func(cond string, v any) {
		args = append(args, v)
		sb.WriteString(" AND ")
		sb.WriteString(strings.ReplaceAll(cond, "$?", "$"+strconv.Itoa(len(args))))
	}
	// timestamptz has microseconds (and the driver truncates to them): a
	// bound between two is rounded up, which keeps From <= Time < To
	// exact.
	if !q.From.IsZero() {
		arg("time >= $?", ceilMicro(q.From))
	}
	if !q.To.IsZero() {
		arg("time < $?", ceilMicro(q.To))
	}
	if q.Actor != "" {
		arg("(actor_id = $? OR actor_email = $?)", []byte(q.Actor))
	}
	if q.Action != "" {
		arg("action = $?", []byte(q.Action))
	}
	if q.Outcome != "" {
		arg("outcome = $?", []byte(q.Outcome))
	}
	if q.After != 0 {
		after := int64(min(q.After, math.MaxInt64))
		if q.Desc {
			arg("seq < $?", after)
		} else {
			arg("seq > $?", after)
		}
	}
	if q.Desc {
		sb.WriteString(" ORDER BY seq DESC")
	} else {
		sb.WriteString(" ORDER BY seq")
	}
	args = append(args, limit)
	sb.WriteString(" LIMIT $" + strconv.Itoa(len(args)))
	rows, err := s.pool.Query(ctx, sb.String(), args...)
	if err != nil {
		return nil, wrap("audit: query", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (audit.Event, error) { return scanEvent(r, tenant) })
	if err != nil {
		return nil, wrap("audit: query", err)
	}
	return out, nil
}

// ceilMicro rounds t up to a whole microsecond.
func ceilMicro(t time.Time) time.Time {
	if r := t.Truncate(time.Microsecond); r.Before(t) {
		return r.Add(time.Microsecond)
	}
	return t
}

func scanEvent(row pgx.Row, tenant string) (audit.Event, error) {
	var (
		seq                int64
		kind, action, outc string
		t                  *time.Time
		meta               *string
		e                  = audit.Event{Tenant: tenant}
	)
	if err := row.Scan(&seq, (*byteaString)(&e.ID), &t, (*byteaString)(&kind), (*byteaString)(&e.Actor.ID),
		(*byteaString)(&e.Actor.Email), (*byteaString)(&action), (*byteaString)(&e.Target), (*byteaString)(&e.IP),
		(*byteaString)(&e.UserAgent), (*byteaString)(&outc), (*byteaString)(&e.Reason), &meta,
		&e.PrevMAC, &e.MAC); err != nil {
		return audit.Event{}, err
	}
	e.Seq = uint64(seq)
	e.Time = fromNullTime(t)
	e.Actor.Kind = audit.ActorKind(kind)
	e.Action = audit.Action(action)
	e.Outcome = audit.Outcome(outc)
	if meta != nil {
		e.Meta = decodeMeta(*meta)
	}
	return e, nil
}

// decodeMeta reads a meta column that is not NULL (a JSON object). A
// column that does not decode (edited behind the store) is returned as the
// text it holds under the empty key, which no event recorded can carry
// (Meta keys are not empty): its MAC fails, and Verify reports the event.
func decodeMeta(s string) map[string]string {
	var m map[string]string
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return map[string]string{"": s}
	}
	return m
}

// Checkpoint implements audit.Store.
func (s *Audit) Checkpoint(ctx context.Context, tenant string) (audit.Checkpoint, error) {
	if checkAuditTenant(tenant) != nil {
		return audit.Checkpoint{}, nil
	}
	var cp audit.Checkpoint
	var seq int64
	var at *time.Time
	err := s.pool.QueryRow(ctx, s.sql.checkpoint, tenant).Scan(&seq, &cp.MAC, &at, &cp.CheckpointMAC)
	if errors.Is(err, pgx.ErrNoRows) {
		return audit.Checkpoint{}, nil
	}
	if err != nil {
		return audit.Checkpoint{}, wrap("audit: checkpoint", err)
	}
	cp.Seq = uint64(seq)
	cp.At = fromNullTime(at)
	return cp, nil
}

// Purge implements audit.Store in one statement.
func (s *Audit) Purge(ctx context.Context, tenant string, cp audit.Checkpoint) error {
	if err := checkAuditTenant(tenant); err != nil {
		return err
	}
	if cp.Seq > math.MaxInt64 {
		return &audit.InputError{Field: "Checkpoint.Seq", Rule: "out of range"}
	}
	if cp.Seq == 0 {
		return audit.ErrConflict // not above any checkpoint, 0 included
	}
	var n int
	err := s.pool.QueryRow(ctx, s.sql.purge, tenant, int64(cp.Seq), nonNil(cp.MAC), nullTime(cp.At),
		nonNil(cp.CheckpointMAC)).Scan(&n)
	if err != nil {
		return wrap("audit: purge", err)
	}
	if n == 0 {
		return audit.ErrConflict
	}
	return nil
}
