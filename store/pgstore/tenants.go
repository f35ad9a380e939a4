package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	guard "github.com/guardhq/guard"
)

// Tenants is the PostgreSQL guard.TenantStore. The policy is stored as
// JSON (jsonb), so fields added to guard.Policy need no migration: a
// policy written by older code reads with the new fields zero, and fields
// unknown to older code are ignored (and dropped if that code writes the
// policy back).
type Tenants struct {
	pool *pgxpool.Pool
	sql  tenantSQL
}

var _ guard.TenantStore = (*Tenants)(nil)

type tenantSQL struct {
	create, get, setPolicy, del, list, reviewed, idpChanged string
}

const tenantCols = `id, name, policy, version, created_at, last_review, idp_changed_at`

func newTenantSQL(q string) tenantSQL {
	s := func(sql string) string { return schemaSQL(q, sql) }
	return tenantSQL{
		create: s(`INSERT INTO {s}.tenants (` + tenantCols + `) VALUES ($1, $2, $3, 1, $4, $5, $6) ON CONFLICT (id) DO NOTHING`),
		// Set if newer, on the locked row (greatest ignores a NULL).
		reviewed:   s(`UPDATE {s}.tenants SET last_review = greatest(last_review, $2) WHERE id = $1`),
		idpChanged: s(`UPDATE {s}.tenants SET idp_changed_at = greatest(idp_changed_at, $2) WHERE id = $1`),
		get:        s(`SELECT ` + tenantCols + ` FROM {s}.tenants WHERE id = $1`),
		// Compare-and-set on the version; the second column tells
		// ErrConflict from ErrTenantNotFound when nothing was updated.
		setPolicy: s(`WITH u AS (
				UPDATE {s}.tenants SET policy = $2, version = version + 1
				WHERE id = $1 AND version = $3
				RETURNING version)
			SELECT (SELECT version FROM u), EXISTS (SELECT 1 FROM {s}.tenants WHERE id = $1)`),
		// Delete on the version; the second column as for setPolicy.
		del: s(`WITH d AS (
				DELETE FROM {s}.tenants WHERE id = $1 AND version = $2
				RETURNING id)
			SELECT EXISTS (SELECT 1 FROM d), EXISTS (SELECT 1 FROM {s}.tenants WHERE id = $1)`),
		list: s(`SELECT ` + tenantCols + ` FROM {s}.tenants WHERE id > $1 ORDER BY id LIMIT $2`),
	}
}

func checkTenantText(fields ...string) error {
	for i := 0; i+1 < len(fields); i += 2 {
		if p := textProblem(fields[i+1]); p != "" {
			return &guard.InputError{Field: fields[i], Reason: p}
		}
	}
	return nil
}

func scanTenant(row pgx.Row) (guard.Tenant, error) {
	var t guard.Tenant
	var policy []byte
	var created, reviewed, idpChanged *time.Time
	if err := row.Scan(&t.ID, &t.Name, &policy, &t.Version, &created, &reviewed, &idpChanged); err != nil {
		return guard.Tenant{}, err
	}
	t.LastReview, t.IdPChangedAt = fromNullTime(reviewed), fromNullTime(idpChanged)
	var err error
	if t.Policy, err = decodePolicy(policy); err != nil {
		return guard.Tenant{}, fmt.Errorf("tenant %q: %w", t.ID, err)
	}
	t.CreatedAt = fromNullTime(created)
	return t, nil
}

// decodePolicy reads a policy column (guard.Policy as JSON).
func decodePolicy(b []byte) (guard.Policy, error) {
	var p guard.Policy
	if err := json.Unmarshal(b, &p); err != nil {
		return guard.Policy{}, fmt.Errorf("decoding the policy: %w", err)
	}
	return p, nil
}

// CreateTenant implements guard.TenantStore.
func (s *Tenants) CreateTenant(ctx context.Context, t guard.Tenant) error {
	if err := checkTenantText("tenant id", t.ID, "tenant name", t.Name); err != nil {
		return err
	}
	policy, err := json.Marshal(t.Policy)
	if err != nil {
		return fmt.Errorf("pgstore: tenants: encoding the policy: %w", err)
	}
	tag, err := s.pool.Exec(ctx, s.sql.create, t.ID, t.Name, policy, nullTime(t.CreatedAt), nullTime(t.LastReview), nullTime(t.IdPChangedAt))
	if err != nil {
		return wrap("tenants: create", err)
	}
	if tag.RowsAffected() == 0 {
		return guard.ErrTenantExists
	}
	return nil
}

// Tenant implements guard.TenantStore.
func (s *Tenants) Tenant(ctx context.Context, id string) (guard.Tenant, error) {
	if checkTenantText("tenant id", id) != nil {
		return guard.Tenant{}, guard.ErrTenantNotFound
	}
	t, err := scanTenant(s.pool.QueryRow(ctx, s.sql.get, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return guard.Tenant{}, guard.ErrTenantNotFound
	}
	if err != nil {
		return guard.Tenant{}, wrap("tenants: get", err)
	}
	return t, nil
}

// SetPolicy implements guard.TenantStore with UPDATE … WHERE version = $v.
func (s *Tenants) SetPolicy(ctx context.Context, id string, p guard.Policy, version int64) (int64, error) {
	if checkTenantText("tenant id", id) != nil {
		return 0, guard.ErrTenantNotFound
	}
	policy, err := json.Marshal(p)
	if err != nil {
		return 0, fmt.Errorf("pgstore: tenants: encoding the policy: %w", err)
	}
	var newVersion *int64
	var exists bool
	if err := s.pool.QueryRow(ctx, s.sql.setPolicy, id, policy, version).Scan(&newVersion, &exists); err != nil {
		return 0, wrap("tenants: set policy", err)
	}
	switch {
	case newVersion != nil:
		return *newVersion, nil
	case exists:
		return 0, guard.ErrConflict
	default:
		return 0, guard.ErrTenantNotFound
	}
}

// DeleteTenant implements guard.TenantStore with DELETE … WHERE version = $v.
func (s *Tenants) DeleteTenant(ctx context.Context, id string, version int64) error {
	if checkTenantText("tenant id", id) != nil {
		return guard.ErrTenantNotFound
	}
	var deleted, exists bool
	if err := s.pool.QueryRow(ctx, s.sql.del, id, version).Scan(&deleted, &exists); err != nil {
		return wrap("tenants: delete", err)
	}
	switch {
	case deleted:
		return nil
	case exists:
		return guard.ErrConflict
	default:
		return guard.ErrTenantNotFound
	}
}

// ListTenants implements guard.TenantStore. Ids are ordered byte by byte;
// a limit of zero or less returns no tenants.
func (s *Tenants) ListTenants(ctx context.Context, after string, limit int) ([]guard.Tenant, error) {
	if err := checkTenantText("after", after); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, s.sql.list, after, limit)
	if err != nil {
		return nil, wrap("tenants: list", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (guard.Tenant, error) { return scanTenant(r) })
	if err != nil {
		return nil, wrap("tenants: list", err)
	}
	return out, nil
}

// MarkReviewed implements guard.TenantStore with one UPDATE (set if newer).
func (s *Tenants) MarkReviewed(ctx context.Context, id string, at time.Time) error {
	return s.setIfNewer(ctx, s.sql.reviewed, "tenants: mark reviewed", id, at)
}

// MarkIdPChanged implements guard.TenantStore with one UPDATE (set if
// newer).
func (s *Tenants) MarkIdPChanged(ctx context.Context, id string, at time.Time) error {
	return s.setIfNewer(ctx, s.sql.idpChanged, "tenants: mark idp changed", id, at)
}

// setIfNewer runs the set-if-newer UPDATE q of a time column of tenant id.
func (s *Tenants) setIfNewer(ctx context.Context, q, what, id string, at time.Time) error {
	if checkTenantText("tenant id", id) != nil {
		return guard.ErrTenantNotFound
	}
	tag, err := s.pool.Exec(ctx, q, id, nullTime(at))
	if err != nil {
		return wrap(what, err)
	}
	if tag.RowsAffected() == 0 {
		return guard.ErrTenantNotFound
	}
	return nil
}
