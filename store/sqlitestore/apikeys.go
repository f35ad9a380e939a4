package sqlitestore

import (
	"cmp"
	"context"
	"database/sql"
	"fmt"
	"slices"
	"time"

	"github.com/guardhq/guard/auth"
)

// APIKeys is the auth.APIKeyStore of a Store: one row per key, keyed by
// (tenant, id), with a unique index on the key's hash across tenants.
//
// CreateAPIKey is one INSERT: the primary key and the unique index refuse
// a duplicate in the statement that stores the key, and with a bound of
// live keys the statement counts them first, under the database's write
// lock, so the bound holds across processes. RevokeAPIKey,
// RevokeByCreator and TouchAPIKey are one conditional UPDATE each (keep
// the first revocation; set if newer), and PurgeAPIKeys one DELETE, so
// they hold across processes. APIKeyByHash, the check
// of every request made with a key, is one SELECT through the hash index.
type APIKeys struct{ s *Store }

var _ auth.APIKeyStore = (*APIKeys)(nil)

func scanAPIKey(r scanner) (auth.APIKey, error) {
	var k auth.APIKey
	var created int64
	var expires, used, revoked sql.NullInt64
	if err := r.Scan(&k.Tenant, &k.ID, blob32{&k.Hash}, &k.Name, &k.Prefix, &k.CreatedBy,
		&created, &expires, &used, &revoked); err != nil {
		return auth.APIKey{}, err
	}
	k.CreatedAt = fromMicros(created)
	k.ExpiresAt = fromNullMicros(expires)
	k.LastUsedAt = fromNullMicros(used)
	k.RevokedAt = fromNullMicros(revoked)
	return k, nil
}

// CreateAPIKey implements auth.APIKeyStore with one INSERT; with maxLive
// above zero, one INSERT … SELECT that stores the key only while the
// tenant has fewer than maxLive keys usable at k.CreatedAt.
func (ks *APIKeys) CreateAPIKey(ctx context.Context, k auth.APIKey, maxLive int) error {
	stored := true
	err := ks.s.writeOne(ctx, func(w *wtx) error {
		args := []any{k.Tenant, k.ID, k.Hash[:], k.Name, k.Prefix, k.CreatedBy,
			micros(k.CreatedAt), nullMicros(k.ExpiresAt), nullMicros(k.LastUsedAt), nullMicros(k.RevokedAt)}
		if maxLive <= 0 {
			_, err := w.exec(keyCreate, args...)
			return err
		}
		var err error
		stored, err = affected(w.exec(keyCreateLive, append(args, maxLive)...))
		return err
	})
	if isConstraint(err) {
		return auth.ErrDuplicateID
	}
	if err != nil {
		return fmt.Errorf("sqlitestore: create api key: %w", err)
	}
	if !stored {
		return auth.ErrTooManyAPIKeys
	}
	return nil
}

// APIKeyByHash implements auth.APIKeyStore with one SELECT.
func (ks *APIKeys) APIKeyByHash(ctx context.Context, h [32]byte) (auth.APIKey, error) {
	if err := ks.s.ready(ctx); err != nil {
		return auth.APIKey{}, err
	}
	k, err := scanAPIKey(ks.s.reads.queryRow(ctx, keyByHash, h[:]))
	if isNoRows(err) {
		return auth.APIKey{}, auth.ErrNotFound
	}
	if err != nil {
		return auth.APIKey{}, fmt.Errorf("sqlitestore: api key by hash: %w", err)
	}
	return k, nil
}

// ListAPIKeys implements auth.APIKeyStore. Keys created at the same time
// are ordered by ID byte by byte.
func (ks *APIKeys) ListAPIKeys(ctx context.Context, tenant string) ([]auth.APIKey, error) {
	if err := ks.s.ready(ctx); err != nil {
		return nil, err
	}
	out, err := queryAll(ctx, ks.s.reads, keyList, scanAPIKey, tenant)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: list api keys: %w", err)
	}
	return out, nil
}

// RevokeAPIKey implements auth.APIKeyStore with one UPDATE that keeps a
// stored revocation time.
func (ks *APIKeys) RevokeAPIKey(ctx context.Context, tenant, id string, at time.Time) error {
	var found bool
	err := ks.s.writeOne(ctx, func(w *wtx) error {
		var err error
		found, err = affected(w.exec(keyRevoke, tenant, id, nullMicros(at)))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlitestore: revoke api key: %w", err)
	}
	if !found {
		return auth.ErrNotFound
	}
	return nil
}

// RevokeByCreator implements auth.APIKeyStore with one UPDATE … RETURNING
// of the creator's keys that are not revoked yet.
func (ks *APIKeys) RevokeByCreator(ctx context.Context, tenant, userID string, at time.Time) ([]auth.APIKey, error) {
	var out []auth.APIKey
	err := ks.s.writeOne(ctx, func(w *wtx) error {
		var err error
		out, err = queryAll(ctx, w.st, keyRevokeBy, scanAPIKey, tenant, userID, nullMicros(at))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: revoke api keys of creator: %w", err)
	}
	slices.SortFunc(out, func(a, b auth.APIKey) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// TouchAPIKey implements auth.APIKeyStore with one UPDATE that writes only
// when at is later than the stored LastUsedAt. When it writes nothing, a
// read tells an older time (nothing to do) from a missing key.
func (ks *APIKeys) TouchAPIKey(ctx context.Context, tenant, id string, at time.Time) error {
	var moved bool
	err := ks.s.writeOne(ctx, func(w *wtx) error {
		var err error
		moved, err = affected(w.exec(keyTouch, tenant, id, nullMicros(at)))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlitestore: touch api key: %w", err)
	}
	if moved {
		return nil
	}
	var one int
	switch err := ks.s.reads.queryRow(ctx, keyExists, tenant, id).Scan(&one); {
	case isNoRows(err):
		return auth.ErrNotFound
	case err != nil:
		return fmt.Errorf("sqlitestore: touch api key: %w", err)
	}
	return nil
}

// PurgeAPIKeys implements auth.APIKeyStore with one DELETE of the
// tenant's keys revoked or expired before before.
func (ks *APIKeys) PurgeAPIKeys(ctx context.Context, tenant string, before time.Time) (int, error) {
	var n int64
	err := ks.s.writeOne(ctx, func(w *wtx) error {
		res, err := w.exec(keyPurge, tenant, micros(before))
		if err != nil {
			return err
		}
		n, err = res.RowsAffected()
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlitestore: purge api keys: %w", err)
	}
	return int(n), nil
}
