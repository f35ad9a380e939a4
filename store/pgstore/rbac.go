package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/guardhq/guard/rbac"
)

// PolicyHistory is the number of latest changes of each tenant's policy
// that Policies keeps for Changes (at least rbac.MinHistory). Each Update
// deletes up to GCBatch older ones, so a tenant's log holds PolicyHistory
// changes once it has had that many.
const PolicyHistory = 1024

// Policies is the PostgreSQL rbac.PolicyStore.
//
// A tenant's version is one row of its own, which Version reads by primary
// key (one indexed single-row read, on every authorization decision). The
// rules are rows of a set keyed by every field; Policy reads the version
// and the rules in one statement, hence from one snapshot. Update is one
// call of the SQL function rbac_update: it moves the version with a
// compare-and-set (of concurrent Updates from one version, on any number
// of replicas, exactly one succeeds, the others get rbac.ErrConflict),
// which locks the tenant's row; then it removes and adds the rules,
// appends the change to the log and deletes up to GCBatch changes older
// than the latest PolicyHistory, all in the same transaction.
type Policies struct {
	pool  *pgxpool.Pool
	sql   policySQL
	keep  int64 // changes kept per tenant: PolicyHistory but in tests
	watch *versionWatch
}

var _ rbac.PolicyStore = (*Policies)(nil)

type policySQL struct {
	policy, version, update, changes string
}

func newPolicySQL(q string) policySQL {
	s := func(sql string) string { return schemaSQL(q, sql) }
	return policySQL{
		// One row per rule, each with the version; a version row without
		// rules gives one row with has_rule false.
		policy: s(`SELECT v.version, r.tenant IS NOT NULL, r.rule_type, r.role, r.subject, r.section, r.action
			FROM {s}.rbac_versions v LEFT JOIN {s}.rbac_rules r ON r.tenant = v.tenant
			WHERE v.tenant = $1`),
		version: s(`SELECT version FROM {s}.rbac_versions WHERE tenant = $1`),
		update:  s(`SELECT {s}.rbac_update($1, $2, $3, $4, $5, $6)`),
		// The tenant's version with each change above $2 (NULLs when
		// there is none), from one snapshot, so that a pruned or missing
		// change is seen.
		changes: s(`SELECT v.version, c.version, c.remove_rules, c.add_rules
			FROM {s}.rbac_versions v LEFT JOIN {s}.rbac_changes c ON c.tenant = v.tenant AND c.version > $2
			WHERE v.tenant = $1
			ORDER BY c.version`),
	}
}

// flatRules returns rules as the flat bytea array of rbac_update and
// rbac_changes: five elements per rule. It is never nil (NOT NULL).
func flatRules(rules []rbac.Rule) [][]byte {
	out := make([][]byte, 0, 5*len(rules))
	for _, r := range rules {
		out = append(out, nonNil([]byte(r.Type)), nonNil([]byte(r.Role)), nonNil([]byte(r.Subject)),
			nonNil([]byte(r.Section)), nonNil([]byte(r.Action)))
	}
	return out
}

// rulesOf is the inverse of flatRules (nil for none).
func rulesOf(flat []byteaString) ([]rbac.Rule, error) {
	if len(flat)%5 != 0 {
		return nil, fmt.Errorf("stored rule list has %d elements, not five per rule", len(flat))
	}
	if len(flat) == 0 {
		return nil, nil
	}
	out := make([]rbac.Rule, len(flat)/5)
	for i := range out {
		f := flat[5*i:]
		out[i] = rbac.Rule{Type: rbac.RuleType(f[0]), Role: string(f[1]), Subject: string(f[2]),
			Section: rbac.Section(f[3]), Action: rbac.Action(f[4])}
	}
	return out, nil
}

// Policy implements rbac.PolicyStore in one statement.
func (s *Policies) Policy(ctx context.Context, tenant string) ([]rbac.Rule, uint64, error) {
	rows, err := s.pool.Query(ctx, s.sql.policy, nonNil([]byte(tenant)))
	if err != nil {
		return nil, 0, wrap("rbac policies: policy", err)
	}
	defer rows.Close()
	var (
		version int64
		rules   []rbac.Rule
	)
	for rows.Next() {
		var (
			hasRule                             bool
			typ, role, subject, section, action byteaString
		)
		if err := rows.Scan(&version, &hasRule, &typ, &role, &subject, &section, &action); err != nil {
			return nil, 0, wrap("rbac policies: policy", err)
		}
		if hasRule {
			rules = append(rules, rbac.Rule{Type: rbac.RuleType(typ), Role: string(role), Subject: string(subject),
				Section: rbac.Section(section), Action: rbac.Action(action)})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, wrap("rbac policies: policy", err)
	}
	return rules, uint64(version), nil
}

// Version implements rbac.PolicyStore: one primary-key read of one
// bigint, or none while Store.Watch runs and holds the tenant's version.
func (s *Policies) Version(ctx context.Context, tenant string) (uint64, error) {
	return s.watch.version(ctx, kindPolicies, tenant, func(ctx context.Context) (uint64, error) {
		return s.readVersion(ctx, tenant)
	})
}

func (s *Policies) readVersion(ctx context.Context, tenant string) (uint64, error) {
	var version int64
	err := s.pool.QueryRow(ctx, s.sql.version, nonNil([]byte(tenant))).Scan(&version)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, wrap("rbac policies: version", err)
	}
	return uint64(version), nil
}

// Update implements rbac.PolicyStore with one call of the SQL function
// rbac_update.
func (s *Policies) Update(ctx context.Context, tenant string, expect uint64, remove, add []rbac.Rule) error {
	if expect >= math.MaxInt64 {
		return rbac.ErrConflict // no stored version is that high
	}
	var updated bool
	err := s.pool.QueryRow(ctx, s.sql.update, nonNil([]byte(tenant)), int64(expect), flatRules(remove), flatRules(add),
		s.keep, GCBatch).Scan(&updated)
	s.watch.forget(kindPolicies, tenant, false) // whatever happened, read it again
	if err != nil {
		return wrap("rbac policies: update", err)
	}
	if !updated {
		return rbac.ErrConflict
	}
	return nil
}

// Changes implements rbac.PolicyStore in one statement. It returns
// rbac.ErrHistoryGone when the log no longer holds every change above
// since.
func (s *Policies) Changes(ctx context.Context, tenant string, since uint64) ([]rbac.Change, error) {
	if since >= math.MaxInt64 {
		return nil, nil // no stored version is above it
	}
	rows, err := s.pool.Query(ctx, s.sql.changes, nonNil([]byte(tenant)), int64(since))
	if err != nil {
		return nil, wrap("rbac policies: changes", err)
	}
	defer rows.Close()
	var (
		current int64
		out     []rbac.Change
	)
	for rows.Next() {
		var (
			v              *int64
			remove, addRls []byteaString
		)
		if err := rows.Scan(&current, &v, &remove, &addRls); err != nil {
			return nil, wrap("rbac policies: changes", err)
		}
		if v == nil {
			continue // no change above since
		}
		c := rbac.Change{Version: uint64(*v)}
		if c.Remove, err = rulesOf(remove); err == nil {
			c.Add, err = rulesOf(addRls)
		}
		if err != nil {
			return nil, wrap("rbac policies: changes", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap("rbac policies: changes", err)
	}
	if uint64(current) <= since {
		return nil, nil
	}
	// The log is written with the version, so it ends at the version; it
	// may have been pruned at its start.
	if uint64(len(out)) != uint64(current)-since || out[0].Version != since+1 {
		return nil, rbac.ErrHistoryGone
	}
	return out, nil
}

// Approvals is the PostgreSQL rbac.ApprovalStore. CreateApproval is one
// INSERT … ON CONFLICT DO NOTHING; DecideApproval and ConsumeApproval are
// one call each of the SQL functions rbac_decide_approval and
// rbac_consume_approval, which check the contract's conditions, in its
// order, on the approval's row locked FOR UPDATE and change it only if
// they all hold: of concurrent calls for one approval, on any number of
// replicas, one decides it (or consumes it) and the others see it decided
// (or consumed). Expiry is judged by the time the caller passes, never by
// the database's clock. Approvals are never deleted.
type Approvals struct {
	pool *pgxpool.Pool
	sql  approvalSQL
}

var _ rbac.ApprovalStore = (*Approvals)(nil)

type approvalSQL struct {
	create, get, decide, consume string
	// list is indexed by [has a status][has a cursor].
	list [2][2]string
}

const approvalCols = `tenant, id, requester_kind, requester_id, section, action, target, payload_hash,
	created_at, expires_at, status, decider_kind, decider_id, decided_at, consumed_at`

// approvalOut is approvalCols of the composite OUT parameter r_approval of
// the approval functions.
const approvalOut = `(f.r_approval).tenant, (f.r_approval).id, (f.r_approval).requester_kind,
	(f.r_approval).requester_id, (f.r_approval).section, (f.r_approval).action, (f.r_approval).target,
	(f.r_approval).payload_hash, (f.r_approval).created_at, (f.r_approval).expires_at, (f.r_approval).status,
	(f.r_approval).decider_kind, (f.r_approval).decider_id, (f.r_approval).decided_at, (f.r_approval).consumed_at`

// Results of the SQL functions rbac_decide_approval and
// rbac_consume_approval.
const (
	approvalDone     = 0
	approvalNotFound = 1
	// rbac_decide_approval
	decideSelf       = 2
	decideNotPending = 3
	decideExpired    = 4
	// rbac_consume_approval
	consumeMismatch    = 2
	consumeConsumed    = 3
	consumeNotApproved = 4
	consumeExpired     = 5
)

func newApprovalSQL(q string) approvalSQL {
	s := func(sql string) string { return schemaSQL(q, sql) }
	list := func(status, before bool) string {
		sql, n := `SELECT `+approvalCols+` FROM {s}.rbac_approvals WHERE tenant = $1`, 2
		if status {
			sql += fmt.Sprintf(` AND status = $%d`, n)
			n++
		}
		if before {
			sql += fmt.Sprintf(` AND id < $%d`, n)
			n++
		}
		return s(sql + fmt.Sprintf(` ORDER BY id DESC LIMIT $%d`, n))
	}
	return approvalSQL{
		create: s(`INSERT INTO {s}.rbac_approvals (` + approvalCols + `)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)
			ON CONFLICT (tenant, id) DO NOTHING`),
		get:     s(`SELECT ` + approvalCols + ` FROM {s}.rbac_approvals WHERE tenant = $1 AND id = $2`),
		decide:  s(`SELECT f.r_status, ` + approvalOut + ` FROM {s}.rbac_decide_approval($1, $2, $3, $4, $5, $6) AS f`),
		consume: s(`SELECT f.r_status, ` + approvalOut + ` FROM {s}.rbac_consume_approval($1, $2, $3, $4, $5, $6, $7, $8, $9) AS f`),
		list:    [2][2]string{{list(false, false), list(false, true)}, {list(true, false), list(true, true)}},
	}
}

// scanApproval scans approvalCols after the columns of extra. NULLs (the
// approval functions' result for no approval) scan as zero values.
func scanApproval(row pgx.Row, extra ...any) (rbac.Approval, error) {
	var (
		a                                   rbac.Approval
		reqKind, decKind                    *int16
		section, action, status             byteaString
		hash                                []byte
		created, expires, decided, consumed *time.Time
	)
	dest := append(extra, (*byteaString)(&a.Tenant), (*byteaString)(&a.ID), &reqKind, (*byteaString)(&a.Requester.ID),
		&section, &action, (*byteaString)(&a.Target), &hash, &created, &expires, &status,
		&decKind, (*byteaString)(&a.Decider.ID), &decided, &consumed)
	if err := row.Scan(dest...); err != nil {
		return rbac.Approval{}, err
	}
	if hash != nil && len(hash) != len(a.PayloadHash) {
		return rbac.Approval{}, fmt.Errorf("stored payload hash is %d bytes, want %d", len(hash), len(a.PayloadHash))
	}
	copy(a.PayloadHash[:], hash)
	if reqKind != nil {
		a.Requester.Kind = rbac.SubjectKind(*reqKind)
	}
	if decKind != nil {
		a.Decider.Kind = rbac.SubjectKind(*decKind)
	}
	a.Permission = rbac.Permission{Section: rbac.Section(section), Action: rbac.Action(action)}
	a.Status = rbac.Status(status)
	a.CreatedAt, a.ExpiresAt = fromNullTime(created), fromNullTime(expires)
	a.DecidedAt, a.ConsumedAt = fromNullTime(decided), fromNullTime(consumed)
	return a, nil
}

// CreateApproval implements rbac.ApprovalStore in one INSERT … ON CONFLICT
// DO NOTHING.
func (s *Approvals) CreateApproval(ctx context.Context, a rbac.Approval) error {
	tag, err := s.pool.Exec(ctx, s.sql.create, nonNil([]byte(a.Tenant)), nonNil([]byte(a.ID)),
		int16(a.Requester.Kind), nonNil([]byte(a.Requester.ID)), nonNil([]byte(a.Permission.Section)),
		nonNil([]byte(a.Permission.Action)), nonNil([]byte(a.Target)), a.PayloadHash[:],
		nullTime(a.CreatedAt), nullTime(a.ExpiresAt), nonNil([]byte(a.Status)),
		int16(a.Decider.Kind), nonNil([]byte(a.Decider.ID)), nullTime(a.DecidedAt), nullTime(a.ConsumedAt))
	if err != nil {
		return wrap("rbac approvals: create", err)
	}
	if tag.RowsAffected() == 0 {
		return rbac.ErrDuplicate
	}
	return nil
}

// Approval implements rbac.ApprovalStore.
func (s *Approvals) Approval(ctx context.Context, tenant, id string) (rbac.Approval, error) {
	a, err := scanApproval(s.pool.QueryRow(ctx, s.sql.get, nonNil([]byte(tenant)), nonNil([]byte(id))))
	if errors.Is(err, pgx.ErrNoRows) {
		return rbac.Approval{}, rbac.ErrNotFound
	}
	if err != nil {
		return rbac.Approval{}, wrap("rbac approvals: approval", err)
	}
	return a, nil
}

// DecideApproval implements rbac.ApprovalStore with one call of the SQL
// function rbac_decide_approval. A status other than rbac.StatusApproved
// and rbac.StatusRejected is an *rbac.InputError, and changes nothing.
func (s *Approvals) DecideApproval(ctx context.Context, tenant, id string, by rbac.Subject, status rbac.Status, at time.Time) (rbac.Approval, error) {
	if status != rbac.StatusApproved && status != rbac.StatusRejected {
		return rbac.Approval{}, &rbac.InputError{Field: "status", Reason: "must be approved or rejected"}
	}
	var code int32
	a, err := scanApproval(s.pool.QueryRow(ctx, s.sql.decide, nonNil([]byte(tenant)), nonNil([]byte(id)),
		int16(by.Kind), nonNil([]byte(by.ID)), []byte(status), nullTime(at)), &code)
	if err != nil {
		return rbac.Approval{}, wrap("rbac approvals: decide", err)
	}
	switch code {
	case approvalDone:
		return a, nil
	case approvalNotFound:
		return rbac.Approval{}, rbac.ErrNotFound
	case decideSelf:
		return rbac.Approval{}, rbac.ErrSelfApproval
	case decideNotPending:
		return rbac.Approval{}, rbac.ErrNotPending
	case decideExpired:
		return rbac.Approval{}, rbac.ErrExpired
	}
	return rbac.Approval{}, wrap("rbac approvals: decide", fmt.Errorf("unexpected result %d of rbac_decide_approval", code))
}

// ConsumeApproval implements rbac.ApprovalStore with one call of the SQL
// function rbac_consume_approval.
func (s *Approvals) ConsumeApproval(ctx context.Context, tenant, id string, c rbac.Claim, at time.Time) (rbac.Approval, error) {
	var code int32
	a, err := scanApproval(s.pool.QueryRow(ctx, s.sql.consume, nonNil([]byte(tenant)), nonNil([]byte(id)),
		int16(c.Requester.Kind), nonNil([]byte(c.Requester.ID)), nonNil([]byte(c.Permission.Section)),
		nonNil([]byte(c.Permission.Action)), nonNil([]byte(c.Target)), c.PayloadHash[:], nullTime(at)), &code)
	if err != nil {
		return rbac.Approval{}, wrap("rbac approvals: consume", err)
	}
	switch code {
	case approvalDone:
		return a, nil
	case approvalNotFound:
		return rbac.Approval{}, rbac.ErrNotFound
	case consumeMismatch:
		return rbac.Approval{}, rbac.ErrMismatch
	case consumeConsumed:
		return rbac.Approval{}, rbac.ErrConsumed
	case consumeNotApproved:
		return rbac.Approval{}, rbac.ErrNotApproved
	case consumeExpired:
		return rbac.Approval{}, rbac.ErrExpired
	}
	return rbac.Approval{}, wrap("rbac approvals: consume", fmt.Errorf("unexpected result %d of rbac_consume_approval", code))
}

// ListApprovals implements rbac.ApprovalStore in one statement, over the
// primary key (tenant, id) or, with a status, the index (tenant, status,
// id), read backwards from the cursor. IDs compare byte by byte. A
// negative Limit returns no approvals.
func (s *Approvals) ListApprovals(ctx context.Context, tenant string, q rbac.ApprovalQuery) ([]rbac.Approval, error) {
	limit := q.Limit
	if limit < 0 {
		return nil, nil
	}
	if limit == 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	args := []any{nonNil([]byte(tenant))}
	hasStatus, hasBefore := 0, 0
	if q.Status != "" {
		args, hasStatus = append(args, []byte(q.Status)), 1
	}
	if q.Before != "" {
		args, hasBefore = append(args, []byte(q.Before)), 1
	}
	rows, err := s.pool.Query(ctx, s.sql.list[hasStatus][hasBefore], append(args, limit)...)
	if err != nil {
		return nil, wrap("rbac approvals: list", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (rbac.Approval, error) { return scanApproval(r) })
	if err != nil {
		return nil, wrap("rbac approvals: list", err)
	}
	return out, nil
}
