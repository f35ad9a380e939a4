package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	guard "github.com/guardhq/guard"
)

// Tenants is the guard.TenantStore of a Store: one row per tenant, its
// last review and the last change of its IdP in columns of their own
// (migrations 14 and 15). The
// policy is stored as JSON (guard.Policy's json tags), so fields added to
// Policy need no migration: a policy stored before they existed reads them
// as zero, which means "the default".
type Tenants struct{ s *Store }

var _ guard.TenantStore = (*Tenants)(nil)

func scanTenant(r scanner) (guard.Tenant, error) {
	var t guard.Tenant
	var policy string
	var created int64
	var reviewed, idpChanged sql.NullInt64
	if err := r.Scan(&t.ID, &t.Name, &policy, &t.Version, &created, &reviewed, &idpChanged); err != nil {
		return guard.Tenant{}, err
	}
	t.LastReview, t.IdPChangedAt = fromNullMicros(reviewed), fromNullMicros(idpChanged)
	var err error
	if t.Policy, err = decodePolicy(policy); err != nil {
		return guard.Tenant{}, err
	}
	t.CreatedAt = fromMicros(created)
	return t, nil
}

// decodePolicy reverses encodePolicy.
func decodePolicy(s string) (guard.Policy, error) {
	var p guard.Policy
	if err := json.Unmarshal([]byte(s), &p); err != nil {
		return guard.Policy{}, fmt.Errorf("sqlitestore: stored policy of tenant: %w", err)
	}
	return p, nil
}

func encodePolicy(p guard.Policy) (string, error) {
	b, err := json.Marshal(p)
	if err != nil {
		return "", fmt.Errorf("sqlitestore: encode policy: %w", err)
	}
	return string(b), nil
}

// CreateTenant implements guard.TenantStore with one INSERT.
func (ts *Tenants) CreateTenant(ctx context.Context, t guard.Tenant) error {
	policy, err := encodePolicy(t.Policy)
	if err != nil {
		return err
	}
	var created bool
	err = ts.s.writeOne(ctx, func(w *wtx) error {
		var err error
		created, err = affected(w.exec(tenCreate, t.ID, t.Name, policy, micros(t.CreatedAt), nullMicros(t.LastReview), nullMicros(t.IdPChangedAt)))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlitestore: create tenant: %w", err)
	}
	if !created {
		return guard.ErrTenantExists
	}
	return nil
}

// Tenant implements guard.TenantStore.
func (ts *Tenants) Tenant(ctx context.Context, id string) (guard.Tenant, error) {
	if err := ts.s.ready(ctx); err != nil {
		return guard.Tenant{}, err
	}
	t, err := scanTenant(ts.s.reads.queryRow(ctx, tenGet, id))
	if isNoRows(err) {
		return guard.Tenant{}, guard.ErrTenantNotFound
	}
	if err != nil {
		return guard.Tenant{}, fmt.Errorf("sqlitestore: read tenant: %w", err)
	}
	return t, nil
}

// SetPolicy implements guard.TenantStore in one write transaction: a
// compare-and-set on the version.
func (ts *Tenants) SetPolicy(ctx context.Context, id string, p guard.Policy, version int64) (int64, error) {
	policy, err := encodePolicy(p)
	if err != nil {
		return 0, err
	}
	var v int64
	err = ts.s.write(ctx, func(w *wtx) error {
		err := w.queryRow(tenSet, policy, id, version).Scan(&v)
		if err == nil {
			return nil
		}
		if !isNoRows(err) {
			return fmt.Errorf("sqlitestore: set policy: %w", err)
		}
		var one int
		switch err := w.queryRow(tenExists, id).Scan(&one); {
		case isNoRows(err):
			return guard.ErrTenantNotFound
		case err != nil:
			return fmt.Errorf("sqlitestore: set policy: %w", err)
		}
		return guard.ErrConflict
	})
	if err != nil {
		return 0, err
	}
	return v, nil
}

// DeleteTenant implements guard.TenantStore in one write transaction: a
// delete on the version.
func (ts *Tenants) DeleteTenant(ctx context.Context, id string, version int64) error {
	return ts.s.write(ctx, func(w *wtx) error {
		deleted, err := affected(w.exec(tenDelete, id, version))
		if err != nil {
			return fmt.Errorf("sqlitestore: delete tenant: %w", err)
		}
		if deleted {
			return nil
		}
		var one int
		switch err := w.queryRow(tenExists, id).Scan(&one); {
		case isNoRows(err):
			return guard.ErrTenantNotFound
		case err != nil:
			return fmt.Errorf("sqlitestore: delete tenant: %w", err)
		}
		return guard.ErrConflict
	})
}

// ListTenants implements guard.TenantStore. Ids are ordered byte by byte;
// a limit of zero or less returns no tenants.
func (ts *Tenants) ListTenants(ctx context.Context, after string, limit int) ([]guard.Tenant, error) {
	if err := ts.s.ready(ctx); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	out, err := queryAll(ctx, ts.s.reads, tenList, scanTenant, after, limit)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: list tenants: %w", err)
	}
	return out, nil
}

// MarkReviewed implements guard.TenantStore with one UPDATE (set if newer).
func (ts *Tenants) MarkReviewed(ctx context.Context, id string, at time.Time) error {
	return ts.setIfNewer(ctx, tenReviewed, "mark tenant reviewed", id, at)
}

// MarkIdPChanged implements guard.TenantStore with one UPDATE (set if
// newer).
func (ts *Tenants) MarkIdPChanged(ctx context.Context, id string, at time.Time) error {
	return ts.setIfNewer(ctx, tenIdPChanged, "mark tenant idp changed", id, at)
}

// setIfNewer runs the set-if-newer UPDATE q of a time column of tenant id.
func (ts *Tenants) setIfNewer(ctx context.Context, q stmtID, what, id string, at time.Time) error {
	var found bool
	err := ts.s.writeOne(ctx, func(w *wtx) error {
		var err error
		found, err = affected(w.exec(q, id, micros(at)))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlitestore: %s: %w", what, err)
	}
	if !found {
		return guard.ErrTenantNotFound
	}
	return nil
}
