package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"time"

	"github.com/guardhq/guard/rbac"
)

// PolicyHistory is the number of latest changes of each tenant's policy
// that Policies keeps for Changes (at least rbac.MinHistory). Each Update
// deletes the changes that fall out of it, so a tenant's log holds
// PolicyHistory changes once it has had that many.
const PolicyHistory = 1024

// Policies is the rbac.PolicyStore of a Store.
//
// A tenant's version is one row of its own, which Version reads by primary
// key (on every authorization decision). The rules are rows of a set keyed
// by every field; Policy reads the version and the rules in one SELECT,
// hence from one snapshot. Update is one write transaction (BEGIN
// IMMEDIATE holds the database write lock, in every process, until it
// commits): it compares the version with the one expected, removes and
// adds the rules, moves the version, logs the change and deletes the
// changes older than the latest PolicyHistory. Of concurrent Updates from
// one version, in any number of processes, exactly one succeeds; the
// others get rbac.ErrConflict and change nothing.
//
// Rules are stored as given, byte for byte; a change's rules are kept in
// the order given.
type Policies struct {
	s    *Store
	keep int64 // changes kept per tenant: PolicyHistory but in tests
}

var _ rbac.PolicyStore = (*Policies)(nil)

// flatRules returns rules as five strings each, for encodeStrings.
func flatRules(rules []rbac.Rule) []string {
	out := make([]string, 0, 5*len(rules))
	for _, r := range rules {
		out = append(out, string(r.Type), r.Role, r.Subject, string(r.Section), string(r.Action))
	}
	return out
}

// decodeRules reverses encodeStrings(flatRules(rules)) (nil for none).
func decodeRules(b []byte) ([]rbac.Rule, error) {
	flat, err := decodeStrings(b)
	if err != nil || len(flat)%5 != 0 {
		return nil, fmt.Errorf("%w: rules of a policy change", errStrings)
	}
	var out []rbac.Rule
	for i := 0; i < len(flat); i += 5 {
		out = append(out, rbac.Rule{Type: rbac.RuleType(flat[i]), Role: flat[i+1], Subject: flat[i+2],
			Section: rbac.Section(flat[i+3]), Action: rbac.Action(flat[i+4])})
	}
	return out, nil
}

// ruleArgs are the arguments of polRemove and polAdd for r.
func ruleArgs(tenant string, r rbac.Rule) []any {
	return []any{tenant, string(r.Type), r.Role, r.Subject, string(r.Section), string(r.Action)}
}

// Policy implements rbac.PolicyStore with one SELECT.
func (p *Policies) Policy(ctx context.Context, tenant string) ([]rbac.Rule, uint64, error) {
	if err := p.s.ready(ctx); err != nil {
		return nil, 0, err
	}
	rows, err := p.s.reads.query(ctx, polGet, tenant)
	if err != nil {
		return nil, 0, fmt.Errorf("sqlitestore: read policy: %w", err)
	}
	defer rows.Close()
	var rules []rbac.Rule
	var version int64
	for rows.Next() {
		var typ, role, subject, section, action sql.NullString
		if err := rows.Scan(&version, &typ, &role, &subject, &section, &action); err != nil {
			return nil, 0, fmt.Errorf("sqlitestore: read policy: %w", err)
		}
		if typ.Valid {
			rules = append(rules, rbac.Rule{Type: rbac.RuleType(typ.String), Role: role.String, Subject: subject.String,
				Section: rbac.Section(section.String), Action: rbac.Action(action.String)})
		}
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("sqlitestore: read policy: %w", err)
	}
	return rules, uint64(version), nil
}

// Version implements rbac.PolicyStore: one SELECT by primary key.
func (p *Policies) Version(ctx context.Context, tenant string) (uint64, error) {
	if err := p.s.ready(ctx); err != nil {
		return 0, err
	}
	var v int64
	err := p.s.reads.queryRow(ctx, polVersion, tenant).Scan(&v)
	if isNoRows(err) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("sqlitestore: read policy version: %w", err)
	}
	return uint64(v), nil
}

// Update implements rbac.PolicyStore in one write transaction.
func (p *Policies) Update(ctx context.Context, tenant string, expect uint64, remove, add []rbac.Rule) error {
	if expect >= math.MaxInt64 {
		return rbac.ErrConflict // no stored version is that high
	}
	next := int64(expect) + 1
	removed, added := encodeStrings(flatRules(remove)), encodeStrings(flatRules(add))
	return p.s.write(ctx, func(w *wtx) error {
		var v int64
		if err := w.queryRow(polVersion, tenant).Scan(&v); err != nil && !isNoRows(err) {
			return fmt.Errorf("sqlitestore: update policy: %w", err)
		}
		if uint64(v) != expect {
			return rbac.ErrConflict
		}
		for _, r := range remove {
			if _, err := w.exec(polRemove, ruleArgs(tenant, r)...); err != nil {
				return fmt.Errorf("sqlitestore: update policy: %w", err)
			}
		}
		for _, r := range add {
			if _, err := w.exec(polAdd, ruleArgs(tenant, r)...); err != nil {
				return fmt.Errorf("sqlitestore: update policy: %w", err)
			}
		}
		if _, err := w.exec(polSetVersion, tenant, next); err != nil {
			return fmt.Errorf("sqlitestore: update policy: %w", err)
		}
		if _, err := w.exec(polLog, tenant, next, removed, added); err != nil {
			return fmt.Errorf("sqlitestore: update policy: %w", err)
		}
		// Each Update logs one change, so once the log is full this
		// deletes one; sweepBatch bounds the first trim after a smaller
		// keep.
		if _, err := w.exec(polTrim, tenant, next-p.keep, sweepBatch); err != nil {
			return fmt.Errorf("sqlitestore: update policy: trim history: %w", err)
		}
		return nil
	})
}

// Changes implements rbac.PolicyStore with one SELECT. When the oldest
// change held is above since+1, it returns rbac.ErrHistoryGone.
func (p *Policies) Changes(ctx context.Context, tenant string, since uint64) ([]rbac.Change, error) {
	if err := p.s.ready(ctx); err != nil {
		return nil, err
	}
	if since >= math.MaxInt64 {
		return nil, nil // no version is that high
	}
	rows, err := p.s.reads.query(ctx, polChanges, tenant, int64(since))
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: policy changes: %w", err)
	}
	defer rows.Close()
	var out []rbac.Change
	var current int64
	for rows.Next() {
		var version sql.NullInt64
		var remove, add []byte
		if err := rows.Scan(&current, &version, &remove, &add); err != nil {
			return nil, fmt.Errorf("sqlitestore: policy changes: %w", err)
		}
		if !version.Valid {
			continue // no change above since
		}
		c := rbac.Change{Version: uint64(version.Int64)}
		if c.Remove, err = decodeRules(remove); err != nil {
			return nil, err
		}
		if c.Add, err = decodeRules(add); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("sqlitestore: policy changes: %w", err)
	}
	if since >= uint64(current) {
		return nil, nil
	}
	// The log holds the latest changes without a gap, up to the current
	// version: it has every change asked for if it starts at since+1.
	if len(out) == 0 || out[0].Version != since+1 || out[len(out)-1].Version != uint64(current) ||
		len(out) != int(uint64(current)-since) {
		return nil, rbac.ErrHistoryGone
	}
	return out, nil
}

// Approvals is the rbac.ApprovalStore of a Store: one row per approval,
// keyed by (tenant, id), with an index by status for ListApprovals.
//
// CreateApproval is one INSERT … ON CONFLICT DO NOTHING. DecideApproval
// and ConsumeApproval are one write transaction each: they read the
// approval, check it in the order of the contract and write the new
// status, under the database write lock, so an approval is decided once
// and consumed once across processes. Approvals are kept until the
// database is dropped.
type Approvals struct{ s *Store }

var _ rbac.ApprovalStore = (*Approvals)(nil)

func scanApproval(r scanner) (rbac.Approval, error) {
	var a rbac.Approval
	var reqKind, decKind, created, expires int64
	var section, action, status string
	var decided, consumed sql.NullInt64
	if err := r.Scan(&a.Tenant, &a.ID, &reqKind, &a.Requester.ID, &section, &action, &a.Target, blob32{&a.PayloadHash},
		&created, &expires, &status, &decKind, &a.Decider.ID, &decided, &consumed); err != nil {
		return rbac.Approval{}, err
	}
	a.Requester.Kind = rbac.SubjectKind(reqKind)
	a.Permission = rbac.Permission{Section: rbac.Section(section), Action: rbac.Action(action)}
	a.CreatedAt = fromMicros(created)
	a.ExpiresAt = fromMicros(expires)
	a.Status = rbac.Status(status)
	a.Decider.Kind = rbac.SubjectKind(decKind)
	a.DecidedAt = fromNullMicros(decided)
	a.ConsumedAt = fromNullMicros(consumed)
	return a, nil
}

// CreateApproval implements rbac.ApprovalStore with one INSERT.
func (as *Approvals) CreateApproval(ctx context.Context, a rbac.Approval) error {
	var created bool
	err := as.s.writeOne(ctx, func(w *wtx) error {
		var err error
		created, err = affected(w.exec(apprCreate, a.Tenant, a.ID, int64(a.Requester.Kind), a.Requester.ID,
			string(a.Permission.Section), string(a.Permission.Action), a.Target, a.PayloadHash[:],
			micros(a.CreatedAt), micros(a.ExpiresAt), string(a.Status), int64(a.Decider.Kind), a.Decider.ID,
			nullMicros(a.DecidedAt), nullMicros(a.ConsumedAt)))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlitestore: create approval: %w", err)
	}
	if !created {
		return rbac.ErrDuplicate
	}
	return nil
}

// Approval implements rbac.ApprovalStore.
func (as *Approvals) Approval(ctx context.Context, tenant, id string) (rbac.Approval, error) {
	if err := as.s.ready(ctx); err != nil {
		return rbac.Approval{}, err
	}
	a, err := scanApproval(as.s.reads.queryRow(ctx, apprGet, tenant, id))
	if isNoRows(err) {
		return rbac.Approval{}, rbac.ErrNotFound
	}
	if err != nil {
		return rbac.Approval{}, fmt.Errorf("sqlitestore: read approval: %w", err)
	}
	return a, nil
}

// change runs f on the tenant's approval id in one write transaction: f
// checks the approval and returns the statement and arguments that store
// its new state (or an error, which changes nothing).
func (as *Approvals) change(ctx context.Context, op, tenant, id string, f func(a *rbac.Approval) (stmtID, []any, error)) (rbac.Approval, error) {
	var a rbac.Approval
	err := as.s.write(ctx, func(w *wtx) error {
		var err error
		a, err = scanApproval(w.queryRow(apprGet, tenant, id))
		if isNoRows(err) {
			return rbac.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("sqlitestore: %s: %w", op, err)
		}
		stmt, args, err := f(&a)
		if err != nil {
			return err
		}
		if _, err := w.exec(stmt, append([]any{tenant, id}, args...)...); err != nil {
			return fmt.Errorf("sqlitestore: %s: %w", op, err)
		}
		return nil
	})
	if err != nil {
		return rbac.Approval{}, err
	}
	return a, nil
}

// DecideApproval implements rbac.ApprovalStore in one write transaction.
// A status other than rbac.StatusApproved and rbac.StatusRejected gives an
// *rbac.InputError and changes nothing.
func (as *Approvals) DecideApproval(ctx context.Context, tenant, id string, by rbac.Subject, status rbac.Status, at time.Time) (rbac.Approval, error) {
	if status != rbac.StatusApproved && status != rbac.StatusRejected {
		return rbac.Approval{}, &rbac.InputError{Field: "decision", Reason: "must be approved or rejected"}
	}
	return as.change(ctx, "decide approval", tenant, id, func(a *rbac.Approval) (stmtID, []any, error) {
		switch {
		case a.Requester == by:
			return 0, nil, rbac.ErrSelfApproval
		case a.Status != rbac.StatusPending:
			return 0, nil, rbac.ErrNotPending
		case !at.Before(a.ExpiresAt):
			return 0, nil, rbac.ErrExpired
		}
		a.Status, a.Decider, a.DecidedAt = status, by, fromMicros(micros(at))
		return apprDecide, []any{string(status), int64(by.Kind), by.ID, micros(at)}, nil
	})
}

// ConsumeApproval implements rbac.ApprovalStore in one write transaction.
func (as *Approvals) ConsumeApproval(ctx context.Context, tenant, id string, c rbac.Claim, at time.Time) (rbac.Approval, error) {
	return as.change(ctx, "consume approval", tenant, id, func(a *rbac.Approval) (stmtID, []any, error) {
		switch {
		case c.Requester != a.Requester || c.Permission != a.Permission || c.Target != a.Target || c.PayloadHash != a.PayloadHash:
			return 0, nil, rbac.ErrMismatch
		case a.Status == rbac.StatusConsumed:
			return 0, nil, rbac.ErrConsumed
		case a.Status != rbac.StatusApproved:
			return 0, nil, rbac.ErrNotApproved
		case !at.Before(a.ExpiresAt):
			return 0, nil, rbac.ErrExpired
		}
		a.Status, a.ConsumedAt = rbac.StatusConsumed, fromMicros(micros(at))
		return apprConsume, []any{string(rbac.StatusConsumed), micros(at)}, nil
	})
}

// ListApprovals implements rbac.ApprovalStore with one SELECT that reads a
// range of the primary key or of the status index backwards. IDs are
// ordered byte by byte; a negative Limit returns no approvals.
func (as *Approvals) ListApprovals(ctx context.Context, tenant string, q rbac.ApprovalQuery) ([]rbac.Approval, error) {
	if err := as.s.ready(ctx); err != nil {
		return nil, err
	}
	limit := q.Limit
	if limit == 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	if limit < 0 {
		return nil, nil
	}
	stmt := apprList
	switch {
	case q.Status != "" && q.Before != "":
		stmt = apprListStatusBefore
	case q.Status != "":
		stmt = apprListStatus
	case q.Before != "":
		stmt = apprListBefore
	}
	out, err := queryAll(ctx, as.s.reads, stmt, scanApproval, tenant, string(q.Status), q.Before, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: list approvals: %w", err)
	}
	return out, nil
}
