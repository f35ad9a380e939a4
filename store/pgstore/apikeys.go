package pgstore

import (
	"cmp"
	"context"
	"errors"
	"math"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/guardhq/guard/auth"
)

// APIKeys is the PostgreSQL auth.APIKeyStore. The primary key (tenant, id)
// and a unique index on the hash refuse a duplicate in the same statement
// that stores the key; a creation within a bound of live keys first locks
// the tenant's row in api_key_tenants (function api_key_create), then
// counts and inserts; revocation (of a key, or of every key of a creator)
// and touches are one conditional UPDATE each, and a purge of revoked and
// expired keys one DELETE, so they hold across replicas.
type APIKeys struct {
	pool *pgxpool.Pool
	sql  apiKeySQL
}

var _ auth.APIKeyStore = (*APIKeys)(nil)

type apiKeySQL struct {
	create, createLive, byHash, list, revoke, touch, revokeBy, purge string
}

const apiKeyCols = `tenant, id, hash, name, prefix, created_by, created_at, expires_at, last_used_at, revoked_at`

func newAPIKeySQL(q string) apiKeySQL {
	s := func(sql string) string { return schemaSQL(q, sql) }
	return apiKeySQL{
		create: s(`INSERT INTO {s}.api_keys (` + apiKeyCols + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`),
		// Within a bound: the function of migration 24 locks the
		// tenant's row, then counts and inserts.
		createLive: s(`SELECT {s}.api_key_create($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`),
		byHash:     s(`SELECT ` + apiKeyCols + ` FROM {s}.api_keys WHERE hash = $1`),
		list:       s(`SELECT ` + apiKeyCols + ` FROM {s}.api_keys WHERE tenant = $1 ORDER BY created_at NULLS FIRST, id`),
		// The first revocation time stays: COALESCE keeps a stored one.
		revoke: s(`UPDATE {s}.api_keys SET revoked_at = COALESCE(revoked_at, $3) WHERE tenant = $1 AND id = $2`),
		// Every live key of a creator, in one statement: a concurrent
		// call waits for the row lock, then finds revoked_at set and
		// skips the row, so each key is returned once. The primary key's
		// tenant prefix finds the rows; a tenant has few keys.
		revokeBy: s(`UPDATE {s}.api_keys SET revoked_at = $3
			WHERE tenant = $1 AND created_by = $2 AND revoked_at IS NULL RETURNING ` + apiKeyCols),
		// The keys revoked or expired before $2 (NULL compares as not
		// before): the primary key's tenant prefix finds the rows. The
		// bound of live keys counts none of them, so api_key_tenants is
		// left alone.
		purge: s(`DELETE FROM {s}.api_keys WHERE tenant = $1 AND (revoked_at < $2 OR expires_at < $2)`),
		// Set if newer, checked on the locked row; the row is written only
		// when the time moves. The second operand tells an older time
		// (nothing to do) from a missing key.
		touch: s(`WITH u AS (
				UPDATE {s}.api_keys SET last_used_at = $3
				WHERE tenant = $1 AND id = $2 AND $3::timestamptz IS NOT NULL AND (last_used_at IS NULL OR last_used_at < $3)
				RETURNING 1)
			SELECT EXISTS (SELECT 1 FROM u) OR EXISTS (SELECT 1 FROM {s}.api_keys WHERE tenant = $1 AND id = $2)`),
	}
}

func scanAPIKey(row pgx.Row) (auth.APIKey, error) {
	var (
		k                                  auth.APIKey
		created, expires, lastUsed, revoke *time.Time
	)
	err := row.Scan(&k.Tenant, &k.ID, (*byteaHash)(&k.Hash), &k.Name, &k.Prefix, &k.CreatedBy,
		&created, &expires, &lastUsed, &revoke)
	if err != nil {
		return auth.APIKey{}, err
	}
	k.CreatedAt = fromNullTime(created)
	k.ExpiresAt = fromNullTime(expires)
	k.LastUsedAt = fromNullTime(lastUsed)
	k.RevokedAt = fromNullTime(revoke)
	return k, nil
}

// CreateAPIKey implements auth.APIKeyStore in one INSERT: a used (tenant,
// id) or a used hash violates a constraint and gives auth.ErrDuplicateID.
// With maxLive above zero it calls api_key_create, which locks the
// tenant's row in api_key_tenants before it counts the tenant's live keys
// and inserts, so that the bound holds across replicas. A string field
// that PostgreSQL text cannot hold gives an *auth.InputError.
func (s *APIKeys) CreateAPIKey(ctx context.Context, k auth.APIKey, maxLive int) error {
	if err := checkUserText("tenant", k.Tenant, "API key id", k.ID, "API key name", k.Name,
		"API key prefix", k.Prefix, "API key creator", k.CreatedBy); err != nil {
		return err
	}
	args := []any{k.Tenant, k.ID, k.Hash[:], k.Name, k.Prefix, k.CreatedBy,
		nullTime(k.CreatedAt), nullTime(k.ExpiresAt), nullTime(k.LastUsedAt), nullTime(k.RevokedAt)}
	stored := true
	var err error
	if maxLive <= 0 {
		_, err = s.pool.Exec(ctx, s.sql.create, args...)
	} else {
		err = s.pool.QueryRow(ctx, s.sql.createLive, append(args, min(maxLive, math.MaxInt32))...).Scan(&stored)
	}
	if code, _ := pgCode(err); code == codeUniqueViolation {
		return auth.ErrDuplicateID
	}
	if err != nil {
		return wrap("api keys: create", err)
	}
	if !stored {
		return auth.ErrTooManyAPIKeys
	}
	return nil
}

// APIKeyByHash implements auth.APIKeyStore.
func (s *APIKeys) APIKeyByHash(ctx context.Context, h [32]byte) (auth.APIKey, error) {
	k, err := scanAPIKey(s.pool.QueryRow(ctx, s.sql.byHash, h[:]))
	if errors.Is(err, pgx.ErrNoRows) {
		return auth.APIKey{}, auth.ErrNotFound
	}
	if err != nil {
		return auth.APIKey{}, wrap("api keys: by hash", err)
	}
	return k, nil
}

// ListAPIKeys implements auth.APIKeyStore. Keys with equal CreatedAt are
// ordered by ID byte by byte; a zero CreatedAt sorts first.
func (s *APIKeys) ListAPIKeys(ctx context.Context, tenant string) ([]auth.APIKey, error) {
	if checkUserText("tenant", tenant) != nil {
		return nil, nil // no key can be stored under it
	}
	rows, err := s.pool.Query(ctx, s.sql.list, tenant)
	if err != nil {
		return nil, wrap("api keys: list", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (auth.APIKey, error) { return scanAPIKey(r) })
	if err != nil {
		return nil, wrap("api keys: list", err)
	}
	return out, nil
}

// RevokeAPIKey implements auth.APIKeyStore in one UPDATE that keeps a
// stored revocation time.
func (s *APIKeys) RevokeAPIKey(ctx context.Context, tenant, id string, at time.Time) error {
	if checkUserText("tenant", tenant, "id", id) != nil {
		return auth.ErrNotFound
	}
	tag, err := s.pool.Exec(ctx, s.sql.revoke, tenant, id, nullTime(at))
	if err != nil {
		return wrap("api keys: revoke", err)
	}
	if tag.RowsAffected() == 0 {
		return auth.ErrNotFound
	}
	return nil
}

// RevokeByCreator implements auth.APIKeyStore in one UPDATE … RETURNING
// of the creator's keys that are not revoked yet.
func (s *APIKeys) RevokeByCreator(ctx context.Context, tenant, userID string, at time.Time) ([]auth.APIKey, error) {
	if checkUserText("tenant", tenant, "user id", userID) != nil {
		return nil, nil // no key can be stored under them
	}
	rows, err := s.pool.Query(ctx, s.sql.revokeBy, tenant, userID, nullTime(at))
	if err != nil {
		return nil, wrap("api keys: revoke by creator", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (auth.APIKey, error) { return scanAPIKey(r) })
	if err != nil {
		return nil, wrap("api keys: revoke by creator", err)
	}
	slices.SortFunc(out, func(a, b auth.APIKey) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// TouchAPIKey implements auth.APIKeyStore in one statement that writes
// only when at is later than the stored LastUsedAt.
func (s *APIKeys) TouchAPIKey(ctx context.Context, tenant, id string, at time.Time) error {
	if checkUserText("tenant", tenant, "id", id) != nil {
		return auth.ErrNotFound
	}
	var found bool
	if err := s.pool.QueryRow(ctx, s.sql.touch, tenant, id, nullTime(at)).Scan(&found); err != nil {
		return wrap("api keys: touch", err)
	}
	if !found {
		return auth.ErrNotFound
	}
	return nil
}

// PurgeAPIKeys implements auth.APIKeyStore in one DELETE of the tenant's
// keys revoked or expired before before. It counts no live key, so the
// tenant's row in api_key_tenants, which bounded creations lock, is
// neither needed nor touched.
func (s *APIKeys) PurgeAPIKeys(ctx context.Context, tenant string, before time.Time) (int, error) {
	if checkUserText("tenant", tenant) != nil {
		return 0, nil // no key can be stored under it
	}
	tag, err := s.pool.Exec(ctx, s.sql.purge, tenant, nullTime(before))
	if err != nil {
		return 0, wrap("api keys: purge", err)
	}
	return int(tag.RowsAffected()), nil
}
