package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/guardhq/guard/mfa"
)

// MFA is every PostgreSQL mfa store: factors (mfa.FactorStore,
// mfa.FactorUpdater, mfa.EnrolmentIndex), recovery codes
// (mfa.RecoveryStore), one-time codes (mfa.CodeStore), send rates
// (mfa.RateStore) and pending logins (mfa.TransactionStore). Stores returns
// it as every role of mfa.Stores.
//
// Every method is one statement or one call of an SQL function, so every
// invariant holds across replicas:
//   - CreateFactor calls mfa_create_factor, which locks the user's row in
//     mfa_users before it checks the id and the limit of confirmed
//     factors, voids the pending factors of the kind and inserts;
//   - DeleteFactorKeeping calls mfa_delete_factor_keeping, which locks the
//     user's confirmed factors FOR UPDATE before it counts them and
//     deletes, so concurrent removals never go below the number to keep;
//   - ConfirmFactor, AdvanceStep and ResealSecret are one conditional
//     UPDATE each (confirmed_at IS NULL; last_step < step; secret = old),
//     which PostgreSQL re-checks on the row as it is once locked, so of
//     concurrent AdvanceStep calls with one step exactly one succeeds and
//     the others get mfa.ErrReplay;
//   - a user's recovery codes are one row holding an array of hashes:
//     UseRecoveryCode removes one with UPDATE … WHERE hash = ANY(hashes),
//     so a code is used once, and SwapRecoveryCodes writes the row only
//     WHERE it holds the hashes read (an INSERT … ON CONFLICT DO UPDATE
//     WHERE it holds none, from no set), so of concurrent swaps from one
//     set one writes;
//   - CheckCode calls mfa_check_code, mfa.Code.Attempt on the code's row
//     locked FOR UPDATE;
//   - Hit is one INSERT … ON CONFLICT DO UPDATE, and ConsumeTransaction
//     one DELETE … RETURNING.
//
// Expired one-time codes, rate windows and transactions are deleted by
// PutCode, Hit and CreateTransaction, up to GCBatch rows each, once they
// expired MFAGCGrace before the time the caller passes (skipping rows
// other transactions hold), so these tables stay bounded by the rate of
// events: Hit never returns mfa.ErrFull.
type MFA struct {
	pool *pgxpool.Pool
	sql  mfaSQL
}

var (
	_ mfa.FactorStore      = (*MFA)(nil)
	_ mfa.FactorUpdater    = (*MFA)(nil)
	_ mfa.EnrolmentIndex   = (*MFA)(nil)
	_ mfa.RecoveryStore    = (*MFA)(nil)
	_ mfa.CodeStore        = (*MFA)(nil)
	_ mfa.RateStore        = (*MFA)(nil)
	_ mfa.TransactionStore = (*MFA)(nil)
)

// Stores returns s as every role of mfa.Stores.
func (s *MFA) Stores() mfa.Stores {
	return mfa.Stores{
		Factors:       s,
		FactorUpdates: s,
		Enrolments:    s,
		Recovery:      s,
		Codes:         s,
		Rates:         s,
		Transactions:  s,
	}
}

type mfaSQL struct {
	createFactor, factor, factors, deleteFactor string
	deleteKeeping                               string
	confirm, advance, reseal, enrolments        string
	replaceRecovery, clearRecovery, useRecovery string
	recoveryLeft, recoveryCodes                 string
	swapRecoveryEmpty, swapRecovery             string
	putCode, checkCode, deleteCode              string
	hit, forget                                 string
	createTxn, txn, consumeTxn                  string
}

const factorCols = `tenant, user_id, id, kind, label, destination, key_id, secret, created_at, confirmed_at, last_step`

// factorExists is the second operand of the updates: it tells a refused
// update (the factor exists) from a missing factor.
const factorExists = `EXISTS (SELECT 1 FROM {s}.mfa_factors WHERE tenant = $1 AND user_id = $2 AND id = $3`

func newMFASQL(q string) mfaSQL {
	s := func(sql string) string { return schemaSQL(q, sql) }
	return mfaSQL{
		createFactor: s(`SELECT {s}.mfa_create_factor($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`),
		factor:       s(`SELECT ` + factorCols + ` FROM {s}.mfa_factors WHERE tenant = $1 AND user_id = $2 AND id = $3`),
		factors: s(`SELECT ` + factorCols + ` FROM {s}.mfa_factors WHERE tenant = $1 AND user_id = $2
			ORDER BY created_at NULLS FIRST, id`),
		deleteFactor:  s(`DELETE FROM {s}.mfa_factors WHERE tenant = $1 AND user_id = $2 AND id = $3 RETURNING ` + factorCols),
		deleteKeeping: s(`SELECT ` + factorCols + ` FROM {s}.mfa_delete_factor_keeping($1, $2, $3, $4)`),
		confirm:       s(`SELECT o_updated, o_exists FROM {s}.mfa_confirm_factor($1, $2, $3, $4, $5, $6)`),
		// The TOTP replay check: set if newer, on the confirmed factor.
		advance: s(`WITH u AS (
				UPDATE {s}.mfa_factors SET last_step = $4
				WHERE tenant = $1 AND user_id = $2 AND id = $3 AND confirmed_at IS NOT NULL AND last_step < $4
				RETURNING 1)
			SELECT EXISTS (SELECT 1 FROM u), ` + factorExists + ` AND confirmed_at IS NOT NULL)`),
		reseal: s(`WITH u AS (
				UPDATE {s}.mfa_factors SET key_id = $5, secret = $6
				WHERE tenant = $1 AND user_id = $2 AND id = $3 AND secret = $4
				RETURNING 1)
			SELECT EXISTS (SELECT 1 FROM u), ` + factorExists + `)`),
		enrolments: s(`SELECT user_id, array_agg(DISTINCT kind ORDER BY kind) FROM {s}.mfa_factors
			WHERE tenant = $1 AND user_id > $2 AND confirmed_at IS NOT NULL
			GROUP BY user_id ORDER BY user_id LIMIT $3`),

		replaceRecovery: s(`INSERT INTO {s}.mfa_recovery (tenant, user_id, hashes) VALUES ($1, $2, $3)
			ON CONFLICT (tenant, user_id) DO UPDATE SET hashes = EXCLUDED.hashes`),
		clearRecovery: s(`DELETE FROM {s}.mfa_recovery WHERE tenant = $1 AND user_id = $2`),
		// Re-checked on the locked row: of concurrent uses of one hash,
		// one removes it and the others match no row.
		useRecovery: s(`UPDATE {s}.mfa_recovery SET hashes = array_remove(hashes, $3::bytea)
			WHERE tenant = $1 AND user_id = $2 AND $3::bytea = ANY (hashes)
			RETURNING cardinality(hashes)`),
		recoveryLeft:  s(`SELECT cardinality(hashes) FROM {s}.mfa_recovery WHERE tenant = $1 AND user_id = $2`),
		recoveryCodes: s(`SELECT hashes FROM {s}.mfa_recovery WHERE tenant = $1 AND user_id = $2`),
		// From no set: inserted, or written over a row whose codes are all
		// used, re-checked on the locked row (a concurrent insert is seen).
		swapRecoveryEmpty: s(`INSERT INTO {s}.mfa_recovery AS r (tenant, user_id, hashes) VALUES ($1, $2, $3)
			ON CONFLICT (tenant, user_id) DO UPDATE SET hashes = EXCLUDED.hashes WHERE cardinality(r.hashes) = 0
			RETURNING 1`),
		// From a set: the same hashes, each contained in the other;
		// re-checked on the locked row, so of concurrent swaps from one
		// set the first writes and the others match no row.
		swapRecovery: s(`UPDATE {s}.mfa_recovery SET hashes = $3
			WHERE tenant = $1 AND user_id = $2 AND hashes @> $4::bytea[] AND hashes <@ $4::bytea[]
			RETURNING 1`),

		// $10 is CreatedAt less MFAGCGrace.
		putCode: s(`WITH gc AS (
				DELETE FROM {s}.mfa_codes WHERE (tenant, txn) IN (
					SELECT tenant, txn FROM {s}.mfa_codes
					WHERE expires_us <= $10 AND NOT (tenant = $1 AND txn = $2)
					ORDER BY expires_us
					LIMIT ` + gcBatch + `
					FOR UPDATE SKIP LOCKED))
			INSERT INTO {s}.mfa_codes (tenant, txn, user_id, factor_id, kind, hash, created_us, expires_us, tries_left)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
			ON CONFLICT (tenant, txn) DO UPDATE SET user_id = EXCLUDED.user_id, factor_id = EXCLUDED.factor_id,
				kind = EXCLUDED.kind, hash = EXCLUDED.hash, created_us = EXCLUDED.created_us,
				expires_us = EXCLUDED.expires_us, tries_left = EXCLUDED.tries_left`),
		checkCode:  s(`SELECT * FROM {s}.mfa_check_code($1, $2, $3, $4)`),
		deleteCode: s(`DELETE FROM {s}.mfa_codes WHERE tenant = $1 AND txn = $2`),

		// A window that has ended ($2 at or after ends_us) starts again
		// at $2 and ends at $3; every SET expression reads the old row.
		// $4 is now less MFAGCGrace.
		hit: s(`WITH gc AS (
				DELETE FROM {s}.mfa_rates WHERE key IN (
					SELECT key FROM {s}.mfa_rates
					WHERE ends_us <= $4 AND key <> $1
					ORDER BY ends_us
					LIMIT ` + gcBatch + `
					FOR UPDATE SKIP LOCKED))
			INSERT INTO {s}.mfa_rates AS r (key, count, ends_us) VALUES ($1, 1, $3)
			ON CONFLICT (key) DO UPDATE SET
				count = CASE WHEN $2 < r.ends_us THEN r.count + 1 ELSE 1 END,
				ends_us = CASE WHEN $2 < r.ends_us THEN r.ends_us ELSE $3 END
			RETURNING count`),
		forget: s(`DELETE FROM {s}.mfa_rates WHERE key = $1 AND ends_us = $2`),

		// $9 is CreatedAt less MFAGCGrace.
		createTxn: s(`WITH gc AS (
				DELETE FROM {s}.mfa_transactions WHERE hash IN (
					SELECT hash FROM {s}.mfa_transactions
					WHERE expires_us <= $9 AND hash <> $1
					ORDER BY expires_us
					LIMIT ` + gcBatch + `
					FOR UPDATE SKIP LOCKED))
			INSERT INTO {s}.mfa_transactions (` + txnCols + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (hash) DO NOTHING`),
		txn:        s(`SELECT ` + txnCols + ` FROM {s}.mfa_transactions WHERE hash = $1`),
		consumeTxn: s(`DELETE FROM {s}.mfa_transactions WHERE hash = $1 RETURNING ` + txnCols),
	}
}

// checkMFAText returns an *mfa.InputError for a field that PostgreSQL text
// cannot hold.
func checkMFAText(fields ...string) error {
	for i := 0; i+1 < len(fields); i += 2 {
		if p := textProblem(fields[i+1]); p != "" {
			return &mfa.InputError{Field: fields[i], Reason: p}
		}
	}
	return nil
}

func scanFactor(row pgx.Row) (mfa.Factor, error) {
	var (
		f                  mfa.Factor
		kind               string
		created, confirmed *time.Time
	)
	err := row.Scan(&f.Tenant, &f.UserID, &f.ID, &kind, &f.Label, &f.Destination, &f.KeyID, &f.Secret,
		&created, &confirmed, &f.LastStep)
	if err != nil {
		return mfa.Factor{}, err
	}
	f.Kind = mfa.Kind(kind)
	if len(f.Secret) == 0 {
		f.Secret = nil
	}
	f.CreatedAt = fromNullTime(created)
	f.ConfirmedAt = fromNullTime(confirmed)
	return f, nil
}

// CreateFactor implements mfa.FactorStore with one call of the SQL
// function mfa_create_factor. A string field that PostgreSQL text cannot
// hold gives an *mfa.InputError.
func (s *MFA) CreateFactor(ctx context.Context, f mfa.Factor, maxConfirmed int) error {
	if err := checkMFAText("tenant", f.Tenant, "user", f.UserID, "factor id", f.ID, "kind", string(f.Kind),
		"label", f.Label, "destination", f.Destination, "key id", f.KeyID); err != nil {
		return err
	}
	_, err := s.pool.Exec(ctx, s.sql.createFactor, f.Tenant, f.UserID, f.ID, string(f.Kind), f.Label, f.Destination,
		f.KeyID, nonNil(f.Secret), nullTime(f.CreatedAt), nullTime(f.ConfirmedAt), f.LastStep, clampInt32(max(maxConfirmed, 0)))
	switch code, _ := pgCode(err); {
	case err == nil:
		return nil
	case code == codeUniqueViolation:
		return mfa.ErrDuplicate
	case code == codeFactorLimit:
		return mfa.ErrLimit
	}
	return wrap("mfa: create factor", err)
}

// Factor implements mfa.FactorStore.
func (s *MFA) Factor(ctx context.Context, tenant, userID, id string) (mfa.Factor, error) {
	if checkMFAText("tenant", tenant, "user", userID, "factor id", id) != nil {
		return mfa.Factor{}, mfa.ErrNotFound // cannot be stored, so is not
	}
	f, err := scanFactor(s.pool.QueryRow(ctx, s.sql.factor, tenant, userID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return mfa.Factor{}, mfa.ErrNotFound
	}
	if err != nil {
		return mfa.Factor{}, wrap("mfa: factor", err)
	}
	return f, nil
}

// Factors implements mfa.FactorStore. Factors with equal CreatedAt are
// ordered by ID byte by byte; a zero CreatedAt sorts first.
func (s *MFA) Factors(ctx context.Context, tenant, userID string) ([]mfa.Factor, error) {
	if checkMFAText("tenant", tenant, "user", userID) != nil {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, s.sql.factors, tenant, userID)
	if err != nil {
		return nil, wrap("mfa: factors", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (mfa.Factor, error) { return scanFactor(r) })
	if err != nil {
		return nil, wrap("mfa: factors", err)
	}
	return out, nil
}

// DeleteFactor implements mfa.FactorStore with DELETE … RETURNING.
func (s *MFA) DeleteFactor(ctx context.Context, tenant, userID, id string) (mfa.Factor, error) {
	if checkMFAText("tenant", tenant, "user", userID, "factor id", id) != nil {
		return mfa.Factor{}, mfa.ErrNotFound
	}
	f, err := scanFactor(s.pool.QueryRow(ctx, s.sql.deleteFactor, tenant, userID, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return mfa.Factor{}, mfa.ErrNotFound
	}
	if err != nil {
		return mfa.Factor{}, wrap("mfa: delete factor", err)
	}
	return f, nil
}

// DeleteFactorKeeping implements mfa.FactorStore with one call of the SQL
// function mfa_delete_factor_keeping, which holds the user's confirmed
// factors locked while it counts them and deletes.
func (s *MFA) DeleteFactorKeeping(ctx context.Context, tenant, userID, id string, keep int) (mfa.Factor, error) {
	if keep <= 0 {
		return s.DeleteFactor(ctx, tenant, userID, id)
	}
	if checkMFAText("tenant", tenant, "user", userID, "factor id", id) != nil {
		return mfa.Factor{}, mfa.ErrNotFound
	}
	f, err := scanFactor(s.pool.QueryRow(ctx, s.sql.deleteKeeping, tenant, userID, id, clampInt32(keep)))
	if errors.Is(err, pgx.ErrNoRows) {
		return mfa.Factor{}, mfa.ErrNotFound
	}
	if code, _ := pgCode(err); code == codeLastFactor {
		return mfa.Factor{}, mfa.ErrLastFactor
	}
	if err != nil {
		return mfa.Factor{}, wrap("mfa: delete factor", err)
	}
	return f, nil
}

// update runs one of the conditional factor updates, whose statement
// returns (updated, exists): refused is returned when the factor exists
// but the condition did not hold, mfa.ErrNotFound when it does not exist.
func (s *MFA) update(ctx context.Context, op, sql string, refused error, tenant, userID, id string, args ...any) error {
	if checkMFAText("tenant", tenant, "user", userID, "factor id", id) != nil {
		return mfa.ErrNotFound
	}
	var updated, exists bool
	if err := s.pool.QueryRow(ctx, sql, append([]any{tenant, userID, id}, args...)...).Scan(&updated, &exists); err != nil {
		return wrap("mfa: "+op, err)
	}
	switch {
	case updated:
		return nil
	case exists:
		return refused
	default:
		return mfa.ErrNotFound
	}
}

// ConfirmFactor implements mfa.FactorUpdater with one call of the SQL
// function mfa_confirm_factor, which holds the user locked, as
// CreateFactor does, while it counts the confirmed factors (for max) and
// confirms.
func (s *MFA) ConfirmFactor(ctx context.Context, tenant, userID, id string, at time.Time, step int64, maxConfirmed int) error {
	err := s.update(ctx, "confirm factor", s.sql.confirm, mfa.ErrConflict, tenant, userID, id, nullTime(at), step,
		clampInt32(max(maxConfirmed, 0)))
	if code, _ := pgCode(err); code == codeFactorLimit {
		return mfa.ErrLimit
	}
	return err
}

// AdvanceStep implements mfa.FactorUpdater in one UPDATE … WHERE last_step
// < step of the confirmed factor: the TOTP replay check is the database's
// compare-and-set.
func (s *MFA) AdvanceStep(ctx context.Context, tenant, userID, id string, step int64) error {
	return s.update(ctx, "advance step", s.sql.advance, mfa.ErrReplay, tenant, userID, id, step)
}

// ResealSecret implements mfa.FactorUpdater in one UPDATE … WHERE secret =
// old. A nil and an empty secret are the same (no secret).
func (s *MFA) ResealSecret(ctx context.Context, tenant, userID, id string, old []byte, keyID string, secret []byte) error {
	if err := checkMFAText("key id", keyID); err != nil {
		return err
	}
	return s.update(ctx, "reseal secret", s.sql.reseal, mfa.ErrConflict, tenant, userID, id, nonNil(old), keyID, nonNil(secret))
}

// Enrolments implements mfa.EnrolmentIndex in one grouped query over the
// partial index of confirmed factors. User IDs and kinds are ordered byte
// by byte; a limit of 0 or less returns no users.
func (s *MFA) Enrolments(ctx context.Context, tenant, after string, limit int) ([]mfa.Enrolment, error) {
	if limit <= 0 || checkMFAText("tenant", tenant) != nil {
		return nil, nil
	}
	if err := checkMFAText("after", after); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, s.sql.enrolments, tenant, after, limit)
	if err != nil {
		return nil, wrap("mfa: enrolments", err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (mfa.Enrolment, error) {
		var e mfa.Enrolment
		var kinds []string
		if err := r.Scan(&e.UserID, &kinds); err != nil {
			return e, err
		}
		e.Kinds = make([]mfa.Kind, len(kinds))
		for i, k := range kinds {
			e.Kinds[i] = mfa.Kind(k)
		}
		return e, nil
	})
	if err != nil {
		return nil, wrap("mfa: enrolments", err)
	}
	return out, nil
}

// ReplaceRecoveryCodes implements mfa.RecoveryStore: the user's row is
// written (or, for an empty set, deleted) in one statement. A hash given
// twice is stored once.
func (s *MFA) ReplaceRecoveryCodes(ctx context.Context, tenant, userID string, hashes []mfa.Hash) error {
	if err := checkMFAText("tenant", tenant, "user", userID); err != nil {
		return err
	}
	if len(hashes) == 0 {
		if _, err := s.pool.Exec(ctx, s.sql.clearRecovery, tenant, userID); err != nil {
			return wrap("mfa: replace recovery codes", err)
		}
		return nil
	}
	if _, err := s.pool.Exec(ctx, s.sql.replaceRecovery, tenant, userID, hashArray(hashes)); err != nil {
		return wrap("mfa: replace recovery codes", err)
	}
	return nil
}

// hashArray returns hashes as a bytea[] parameter, each hash once (never
// NULL: an empty array for none).
func hashArray(hashes []mfa.Hash) [][]byte {
	set := make([][]byte, 0, len(hashes))
	seen := make(map[mfa.Hash]bool, len(hashes))
	for i := range hashes {
		if !seen[hashes[i]] {
			seen[hashes[i]] = true
			set = append(set, hashes[i][:])
		}
	}
	return set
}

// RecoveryCodes implements mfa.RecoveryStore.
func (s *MFA) RecoveryCodes(ctx context.Context, tenant, userID string) ([]mfa.Hash, error) {
	if checkMFAText("tenant", tenant, "user", userID) != nil {
		return nil, nil
	}
	var raw [][]byte
	err := s.pool.QueryRow(ctx, s.sql.recoveryCodes, tenant, userID).Scan(&raw)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, wrap("mfa: recovery codes", err)
	}
	hs := make([]mfa.Hash, len(raw))
	for i, b := range raw {
		if len(b) != len(hs[i]) {
			return nil, fmt.Errorf("pgstore: mfa: recovery codes: a stored hash of %d bytes", len(b))
		}
		hs[i] = mfa.Hash(b)
	}
	return hs, nil
}

// SwapRecoveryCodes implements mfa.RecoveryStore in one statement: from
// no set (old empty), an insert that writes over the user's row only if
// its codes are all used; from a set, an update of the user's row only if
// it holds the same hashes as old.
func (s *MFA) SwapRecoveryCodes(ctx context.Context, tenant, userID string, old, hashes []mfa.Hash) error {
	if err := checkMFAText("tenant", tenant, "user", userID); err != nil {
		return err
	}
	q, args := s.sql.swapRecovery, []any{tenant, userID, hashArray(hashes), hashArray(old)}
	if len(old) == 0 {
		q, args = s.sql.swapRecoveryEmpty, args[:3]
	}
	var one int
	err := s.pool.QueryRow(ctx, q, args...).Scan(&one)
	if errors.Is(err, pgx.ErrNoRows) {
		return mfa.ErrConflict
	}
	if err != nil {
		return wrap("mfa: swap recovery codes", err)
	}
	return nil
}

// UseRecoveryCode implements mfa.RecoveryStore in one UPDATE that removes
// h from the user's set only if it is there.
func (s *MFA) UseRecoveryCode(ctx context.Context, tenant, userID string, h mfa.Hash) (int, error) {
	if checkMFAText("tenant", tenant, "user", userID) != nil {
		return 0, mfa.ErrNotFound
	}
	var left int
	err := s.pool.QueryRow(ctx, s.sql.useRecovery, tenant, userID, h[:]).Scan(&left)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, mfa.ErrNotFound
	}
	if err != nil {
		return 0, wrap("mfa: use recovery code", err)
	}
	return left, nil
}

// RecoveryCodesLeft implements mfa.RecoveryStore.
func (s *MFA) RecoveryCodesLeft(ctx context.Context, tenant, userID string) (int, error) {
	if checkMFAText("tenant", tenant, "user", userID) != nil {
		return 0, nil
	}
	var left int
	err := s.pool.QueryRow(ctx, s.sql.recoveryLeft, tenant, userID).Scan(&left)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, nil
	}
	if err != nil {
		return 0, wrap("mfa: recovery codes left", err)
	}
	return left, nil
}
