package sqlitestore

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"math"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/guardhq/guard/mfa"
)

// MFA is every mfa store of a Store: factors (mfa.FactorStore,
// mfa.FactorUpdater, mfa.EnrolmentIndex), recovery codes
// (mfa.RecoveryStore), one-time codes (mfa.CodeStore), send rates
// (mfa.RateStore) and pending logins (mfa.TransactionStore). Stores returns
// it as every role of mfa.Stores.
//
// Every invariant is one statement or one write transaction (BEGIN
// IMMEDIATE holds the database write lock, in every process, until it
// commits), so it holds across processes:
//   - CreateFactor checks the id and the limit of confirmed factors,
//     voids the user's pending factors of the kind and inserts, in one
//     write transaction; DeleteFactorKeeping counts the user's other
//     confirmed factors and deletes in one write transaction, so
//     concurrent removals never go below the number to keep;
//   - ConfirmFactor, AdvanceStep and ResealSecret are one conditional
//     UPDATE each (confirmed_at IS NULL; last_step < step; secret IS old):
//     of concurrent AdvanceStep calls with one step exactly one changes
//     the row and the others get mfa.ErrReplay. When nothing changed, a
//     read tells the refusal from a missing factor;
//   - a recovery code is one row: UseRecoveryCode deletes it and counts
//     the rest in one write transaction, so a code is used once;
//     SwapRecoveryCodes reads, compares and replaces the set in one;
//   - CheckCode reads the code, applies mfa.Code.Attempt and writes the
//     result, in one write transaction;
//   - Hit is one INSERT … ON CONFLICT DO UPDATE … RETURNING, and
//     ConsumeTransaction one DELETE … RETURNING.
//
// Expired one-time codes, ended rate windows and expired transactions are
// deleted as the stores go: every defaultSweepEvery-th PutCode, Hit and
// CreateTransaction of a Store also deletes, in the same transaction, up
// to sweepBatch rows of its table that expired SweepGrace or more before
// the time the caller passes (never by the clock), so these tables are
// bounded by the rate of events and Hit never returns mfa.ErrFull. Sweep
// deletes them all.
// Factors and recovery codes stay until deleted.
type MFA struct {
	s          *Store
	sweepEvery uint64
	puts       atomic.Uint64
	hits       atomic.Uint64
	creates    atomic.Uint64
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

// Stores returns m as every role of mfa.Stores.
func (m *MFA) Stores() mfa.Stores {
	return mfa.Stores{
		Factors:       m,
		FactorUpdates: m,
		Enrolments:    m,
		Recovery:      m,
		Codes:         m,
		Rates:         m,
		Transactions:  m,
	}
}

// sweepNow reports whether the n-th call of a sweeping method sweeps.
func (m *MFA) sweepNow(n *atomic.Uint64) bool {
	return m.sweepEvery > 0 && n.Add(1)%m.sweepEvery == 0
}

func scanFactor(r scanner) (mfa.Factor, error) {
	var f mfa.Factor
	var kind string
	var created int64
	var confirmed sql.NullInt64
	if err := r.Scan(&f.Tenant, &f.UserID, &f.ID, &kind, &f.Label, &f.Destination, &f.KeyID, &f.Secret,
		&created, &confirmed, &f.LastStep); err != nil {
		return mfa.Factor{}, err
	}
	f.Kind = mfa.Kind(kind)
	if len(f.Secret) == 0 {
		f.Secret = nil
	}
	f.CreatedAt = fromMicros(created)
	f.ConfirmedAt = fromNullMicros(confirmed)
	return f, nil
}

// CreateFactor implements mfa.FactorStore in one write transaction.
func (m *MFA) CreateFactor(ctx context.Context, f mfa.Factor, maxConfirmed int) error {
	return m.s.write(ctx, func(w *wtx) error {
		var one int
		switch err := w.queryRow(mfaDup, f.Tenant, f.UserID, f.ID).Scan(&one); {
		case err == nil:
			return mfa.ErrDuplicate
		case !isNoRows(err):
			return fmt.Errorf("sqlitestore: create factor: %w", err)
		}
		if maxConfirmed > 0 {
			var n int
			if err := w.queryRow(mfaCount, f.Tenant, f.UserID).Scan(&n); err != nil {
				return fmt.Errorf("sqlitestore: create factor: %w", err)
			}
			if n >= maxConfirmed {
				return mfa.ErrLimit
			}
		}
		if _, err := w.exec(mfaVoid, f.Tenant, f.UserID, string(f.Kind)); err != nil {
			return fmt.Errorf("sqlitestore: create factor: %w", err)
		}
		if _, err := w.exec(mfaInsert, f.Tenant, f.UserID, f.ID, string(f.Kind), f.Label, f.Destination, f.KeyID,
			nullBytes(f.Secret), micros(f.CreatedAt), nullMicros(f.ConfirmedAt), f.LastStep); err != nil {
			return fmt.Errorf("sqlitestore: create factor: %w", err)
		}
		return nil
	})
}

// Factor implements mfa.FactorStore.
func (m *MFA) Factor(ctx context.Context, tenant, userID, id string) (mfa.Factor, error) {
	if err := m.s.ready(ctx); err != nil {
		return mfa.Factor{}, err
	}
	f, err := scanFactor(m.s.reads.queryRow(ctx, mfaFactor, tenant, userID, id))
	if isNoRows(err) {
		return mfa.Factor{}, mfa.ErrNotFound
	}
	if err != nil {
		return mfa.Factor{}, fmt.Errorf("sqlitestore: read factor: %w", err)
	}
	return f, nil
}

// Factors implements mfa.FactorStore. Factors created at the same time
// are ordered by ID byte by byte.
func (m *MFA) Factors(ctx context.Context, tenant, userID string) ([]mfa.Factor, error) {
	if err := m.s.ready(ctx); err != nil {
		return nil, err
	}
	out, err := queryAll(ctx, m.s.reads, mfaFactors, scanFactor, tenant, userID)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: list factors: %w", err)
	}
	return out, nil
}

// DeleteFactor implements mfa.FactorStore with one DELETE … RETURNING.
func (m *MFA) DeleteFactor(ctx context.Context, tenant, userID, id string) (mfa.Factor, error) {
	var f mfa.Factor
	err := m.s.writeOne(ctx, func(w *wtx) error {
		var err error
		f, err = scanFactor(w.queryRow(mfaDelete, tenant, userID, id))
		return err
	})
	if isNoRows(err) {
		return mfa.Factor{}, mfa.ErrNotFound
	}
	if err != nil {
		return mfa.Factor{}, fmt.Errorf("sqlitestore: delete factor: %w", err)
	}
	return f, nil
}

// DeleteFactorKeeping implements mfa.FactorStore in one write transaction:
// it finds the factor, counts the user's other confirmed factors and
// deletes, all under the database write lock.
func (m *MFA) DeleteFactorKeeping(ctx context.Context, tenant, userID, id string, keep int) (mfa.Factor, error) {
	if keep <= 0 {
		return m.DeleteFactor(ctx, tenant, userID, id)
	}
	var f mfa.Factor
	err := m.s.write(ctx, func(w *wtx) error {
		var one, others int
		switch err := w.queryRow(mfaDup, tenant, userID, id).Scan(&one); {
		case isNoRows(err):
			return mfa.ErrNotFound
		case err != nil:
			return err
		}
		if err := w.queryRow(mfaOthers, tenant, userID, id).Scan(&others); err != nil {
			return err
		}
		if others < keep {
			return mfa.ErrLastFactor
		}
		var err error
		f, err = scanFactor(w.queryRow(mfaDelete, tenant, userID, id))
		return err
	})
	switch {
	case err == nil:
		return f, nil
	case errors.Is(err, mfa.ErrNotFound), isNoRows(err):
		return mfa.Factor{}, mfa.ErrNotFound
	case errors.Is(err, mfa.ErrLastFactor):
		return mfa.Factor{}, mfa.ErrLastFactor
	}
	return mfa.Factor{}, fmt.Errorf("sqlitestore: delete factor: %w", err)
}

// Factor states told apart when a conditional update changed nothing.
const (
	factorMissing = iota
	factorPending
	factorConfirmed
)

// update runs one conditional UPDATE of a factor. If it changed nothing,
// it reads the factor's state and returns refused(state).
func (m *MFA) update(ctx context.Context, op string, refused func(state int) error, id stmtID, tenant, userID, factorID string, args ...any) error {
	var changed bool
	err := m.s.writeOne(ctx, func(w *wtx) error {
		var err error
		changed, err = affected(w.exec(id, append([]any{tenant, userID, factorID}, args...)...))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlitestore: %s: %w", op, err)
	}
	if changed {
		return nil
	}
	var confirmed bool
	state := factorPending
	switch err := m.s.reads.queryRow(ctx, mfaState, tenant, userID, factorID).Scan(&confirmed); {
	case isNoRows(err):
		state = factorMissing
	case err != nil:
		return fmt.Errorf("sqlitestore: %s: %w", op, err)
	case confirmed:
		state = factorConfirmed
	}
	return refused(state)
}

// conflictUnlessMissing is the refusal of ConfirmFactor and ResealSecret.
func conflictUnlessMissing(state int) error {
	if state == factorMissing {
		return mfa.ErrNotFound
	}
	return mfa.ErrConflict
}

// ConfirmFactor implements mfa.FactorUpdater with one UPDATE of the pending
// factor.
// A zero at gives an *mfa.InputError (a factor confirmed at no time would
// read as pending) and changes nothing.
// The count of the user's confirmed factors (for max) is in the same
// UPDATE, under the database write lock; a pending factor it leaves
// pending is over the limit (ErrLimit).
func (m *MFA) ConfirmFactor(ctx context.Context, tenant, userID, id string, at time.Time, step int64, max int) error {
	if at.IsZero() {
		return &mfa.InputError{Field: "confirmation time", Reason: "is zero"}
	}
	return m.update(ctx, "confirm factor", func(state int) error {
		if state == factorPending {
			return mfa.ErrLimit
		}
		return conflictUnlessMissing(state)
	}, mfaConfirm, tenant, userID, id, nullMicros(at), step, max)
}

// AdvanceStep implements mfa.FactorUpdater with one UPDATE … WHERE
// last_step < step of the confirmed factor: the TOTP replay check is
// SQLite's compare-and-set, under the database write lock.
func (m *MFA) AdvanceStep(ctx context.Context, tenant, userID, id string, step int64) error {
	return m.update(ctx, "advance step", func(state int) error {
		if state == factorConfirmed {
			return mfa.ErrReplay
		}
		return mfa.ErrNotFound
	}, mfaAdvance, tenant, userID, id, step)
}

// ResealSecret implements mfa.FactorUpdater with one UPDATE … WHERE
// secret IS old. A nil and an empty secret are the same (no secret).
func (m *MFA) ResealSecret(ctx context.Context, tenant, userID, id string, old []byte, keyID string, secret []byte) error {
	return m.update(ctx, "reseal secret", conflictUnlessMissing, mfaReseal, tenant, userID, id, nullBytes(old), keyID, nullBytes(secret))
}

// Enrolments implements mfa.EnrolmentIndex with one SELECT of the
// confirmed factors of the users up to the limit-th after after, packed in
// one row (see packed.go): the number of factors, the byte lengths of
// their user IDs and kinds, and those texts. User IDs and kinds are
// ordered byte by byte; a limit of zero or less returns no users.
func (m *MFA) Enrolments(ctx context.Context, tenant, after string, limit int) ([]mfa.Enrolment, error) {
	if err := m.s.ready(ctx); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	var n int
	var idLens, kindLens, ids, kinds string
	if err := m.s.reads.queryRow(ctx, mfaEnrol, tenant, after, limit).Scan(&n, &idLens, &ids, &kindLens, &kinds); err != nil {
		return nil, fmt.Errorf("sqlitestore: enrolments: %w", err)
	}
	type factor struct{ user, kind string }
	fs := make([]factor, 0, min(max(n, 0), len(idLens))) // a digit at least for each
	il, kl, it, kt := numbers{s: idLens}, numbers{s: kindLens}, texts(ids), texts(kinds)
	for range n {
		var f factor
		var uok, kok bool
		f.user, uok = text(&il, &it)
		f.kind, kok = text(&kl, &kt)
		if !uok || !kok {
			return nil, fmt.Errorf("sqlitestore: enrolments: %w", errPacked)
		}
		fs = append(fs, f)
	}
	if !il.done(n) || !kl.done(n) || it != "" || kt != "" {
		return nil, fmt.Errorf("sqlitestore: enrolments: %w", errPacked)
	}
	// The aggregates take the rows in the order SQLite reads them, by
	// user and then by factor ID as a rule, not by kind.
	byUserKind := func(a, b factor) int { return cmp.Or(strings.Compare(a.user, b.user), strings.Compare(a.kind, b.kind)) }
	if !slices.IsSortedFunc(fs, byUserKind) {
		slices.SortFunc(fs, byUserKind)
	}
	var out []mfa.Enrolment
	for _, f := range fs {
		if k := len(out); k == 0 || out[k-1].UserID != f.user {
			out = append(out, mfa.Enrolment{UserID: f.user})
		}
		e := &out[len(out)-1]
		if k := len(e.Kinds); k == 0 || e.Kinds[k-1] != mfa.Kind(f.kind) {
			e.Kinds = append(e.Kinds, mfa.Kind(f.kind))
		}
	}
	if len(out) > limit || len(out) > 0 && out[0].UserID <= after {
		return nil, fmt.Errorf("sqlitestore: enrolments: %d users after %q for a limit of %d", len(out), after, limit)
	}
	return out, nil
}

// ReplaceRecoveryCodes implements mfa.RecoveryStore in one write
// transaction. A hash given twice is stored once.
func (m *MFA) ReplaceRecoveryCodes(ctx context.Context, tenant, userID string, hashes []mfa.Hash) error {
	return m.s.write(ctx, func(w *wtx) error {
		if err := replaceRecovery(w, tenant, userID, hashes); err != nil {
			return fmt.Errorf("sqlitestore: replace recovery codes: %w", err)
		}
		return nil
	})
}

// replaceRecovery stores hashes as the user's set in w.
func replaceRecovery(w *wtx, tenant, userID string, hashes []mfa.Hash) error {
	if _, err := w.exec(recClear, tenant, userID); err != nil {
		return err
	}
	for i := range hashes {
		if _, err := w.exec(recInsert, tenant, userID, hashes[i][:]); err != nil {
			return err
		}
	}
	return nil
}

// RecoveryCodes implements mfa.RecoveryStore.
func (m *MFA) RecoveryCodes(ctx context.Context, tenant, userID string) ([]mfa.Hash, error) {
	if err := m.s.ready(ctx); err != nil {
		return nil, err
	}
	hs, err := queryAll(ctx, m.s.reads, recList, scanHash, tenant, userID)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: recovery codes: %w", err)
	}
	return hs, nil
}

// SwapRecoveryCodes implements mfa.RecoveryStore in one write
// transaction: the read of the set, its comparison with old and the
// replacement.
func (m *MFA) SwapRecoveryCodes(ctx context.Context, tenant, userID string, old, hashes []mfa.Hash) error {
	return m.s.write(ctx, func(w *wtx) error {
		rows, err := w.query(recList, tenant, userID)
		if err != nil {
			return fmt.Errorf("sqlitestore: swap recovery codes: %w", err)
		}
		set := make(map[mfa.Hash]bool)
		for rows.Next() {
			h, err := scanHash(rows)
			if err != nil {
				rows.Close()
				return fmt.Errorf("sqlitestore: swap recovery codes: %w", err)
			}
			set[h] = true
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return fmt.Errorf("sqlitestore: swap recovery codes: %w", err)
		}
		read := make(map[mfa.Hash]bool, len(old))
		for _, h := range old {
			read[h] = true
		}
		if !maps.Equal(set, read) {
			return mfa.ErrConflict
		}
		if err := replaceRecovery(w, tenant, userID, hashes); err != nil {
			return fmt.Errorf("sqlitestore: swap recovery codes: %w", err)
		}
		return nil
	})
}

func scanHash(r scanner) (mfa.Hash, error) {
	var h mfa.Hash
	err := r.Scan(blob32{(*[32]byte)(&h)})
	return h, err
}

// UseRecoveryCode implements mfa.RecoveryStore in one write transaction:
// the DELETE of the code's row and the count of those left.
func (m *MFA) UseRecoveryCode(ctx context.Context, tenant, userID string, h mfa.Hash) (int, error) {
	var left int
	err := m.s.write(ctx, func(w *wtx) error {
		used, err := affected(w.exec(recUse, tenant, userID, h[:]))
		if err != nil {
			return fmt.Errorf("sqlitestore: use recovery code: %w", err)
		}
		if !used {
			return mfa.ErrNotFound
		}
		if err := w.queryRow(recLeft, tenant, userID).Scan(&left); err != nil {
			return fmt.Errorf("sqlitestore: use recovery code: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return left, nil
}

// RecoveryCodesLeft implements mfa.RecoveryStore.
func (m *MFA) RecoveryCodesLeft(ctx context.Context, tenant, userID string) (int, error) {
	if err := m.s.ready(ctx); err != nil {
		return 0, err
	}
	var n int
	if err := m.s.reads.queryRow(ctx, recLeft, tenant, userID).Scan(&n); err != nil {
		return 0, fmt.Errorf("sqlitestore: recovery codes left: %w", err)
	}
	return n, nil
}

func scanCode(r scanner) (mfa.Code, error) {
	var c mfa.Code
	var kind string
	var created, expires, tries int64
	if err := r.Scan(&c.Tenant, &c.Txn, &c.UserID, &c.FactorID, &kind, blob32{(*[32]byte)(&c.Hash)},
		&created, &expires, &tries); err != nil {
		return mfa.Code{}, err
	}
	c.Kind = mfa.Kind(kind)
	c.CreatedAt = fromMicros(created)
	c.ExpiresAt = fromMicros(expires)
	c.TriesLeft = int(tries)
	return c, nil
}

// PutCode implements mfa.CodeStore with one upsert. Every
// defaultSweepEvery-th PutCode of a Store also deletes, in the same
// transaction, up to sweepBatch codes that expired SweepGrace or more
// before c.CreatedAt.
func (m *MFA) PutCode(ctx context.Context, c mfa.Code) error {
	put := func(w *wtx) error {
		_, err := w.exec(codePut, c.Tenant, c.Txn, c.UserID, c.FactorID, string(c.Kind), c.Hash[:],
			micros(c.CreatedAt), micros(c.ExpiresAt), int64(c.TriesLeft))
		return err
	}
	var err error
	if m.sweepNow(&m.puts) {
		err = m.s.write(ctx, func(w *wtx) error {
			if _, err := w.exec(codeSweep, sweepCutoff(c.CreatedAt), sweepBatch); err != nil {
				return fmt.Errorf("sweep: %w", err)
			}
			return put(w)
		})
	} else {
		err = m.s.writeOne(ctx, put)
	}
	if err != nil {
		return fmt.Errorf("sqlitestore: put code: %w", err)
	}
	return nil
}

// CheckCode implements mfa.CodeStore in one write transaction: it reads
// the code, applies mfa.Code.Attempt and stores the result (fewer tries,
// or the code removed), so concurrent checks of one code, in any process,
// run one after the other.
func (m *MFA) CheckCode(ctx context.Context, tenant, txn string, h mfa.Hash, now time.Time) (mfa.Code, error) {
	var next mfa.Code
	var result error
	err := m.s.write(ctx, func(w *wtx) error {
		c, err := scanCode(w.queryRow(codeGet, tenant, txn))
		if isNoRows(err) {
			return mfa.ErrNotFound
		}
		if err != nil {
			return fmt.Errorf("sqlitestore: check code: %w", err)
		}
		var keep bool
		next, keep, result = c.Attempt(h, now)
		switch {
		case !keep:
			_, err = w.exec(codeDel, tenant, txn)
		case next.TriesLeft != c.TriesLeft:
			_, err = w.exec(codeTry, tenant, txn, int64(next.TriesLeft))
		}
		if err != nil {
			return fmt.Errorf("sqlitestore: check code: %w", err)
		}
		return nil
	})
	if err != nil {
		return mfa.Code{}, err
	}
	return next, result
}

// DeleteCode implements mfa.CodeStore with one DELETE.
func (m *MFA) DeleteCode(ctx context.Context, tenant, txn string) error {
	err := m.s.writeOne(ctx, func(w *wtx) error {
		_, err := w.exec(codeDel, tenant, txn)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlitestore: delete code: %w", err)
	}
	return nil
}

// windowEnd returns, in Unix microseconds, the end of a window of length d
// that starts at start: d is rounded up to the microsecond, and the sum
// saturates.
func windowEnd(start int64, d time.Duration) int64 {
	us := int64(d / time.Microsecond)
	if d%time.Microsecond > 0 {
		us++
	}
	if us <= 0 {
		return start
	}
	if start > math.MaxInt64-us {
		return math.MaxInt64
	}
	return start + us
}

// Hit implements mfa.RateStore with one INSERT … ON CONFLICT DO UPDATE …
// RETURNING on the key's row. Every defaultSweepEvery-th Hit of a Store
// also deletes, in the same transaction, up to sweepBatch windows that
// ended SweepGrace or more before now. The window is kept to the
// microsecond, rounded up: a window opening at now starts at now rounded
// up and lasts window rounded up, so it never ends before now+window (up
// to 2 µs after it); now is compared with the ends truncated, which is
// exact. Hit never returns mfa.ErrFull.
func (m *MFA) Hit(ctx context.Context, key string, now time.Time, window time.Duration) (int, error) {
	at := micros(now)
	end := windowEnd(ceilMicros(now), window)
	var n int
	hit := func(w *wtx) error { return w.queryRow(rateHit, key, at, end).Scan(&n) }
	var err error
	if m.sweepNow(&m.hits) {
		err = m.s.write(ctx, func(w *wtx) error {
			if _, err := w.exec(rateSweep, sweepCutoff(now), sweepBatch); err != nil {
				return fmt.Errorf("sweep: %w", err)
			}
			return hit(w)
		})
	} else {
		err = m.s.writeOne(ctx, hit)
	}
	if err != nil {
		return 0, fmt.Errorf("sqlitestore: hit: %w", err)
	}
	return n, nil
}

// Forget implements mfa.RateStore with one DELETE of the key's row if
// it ends where Hit puts the end of a window opened at opened (a key's
// windows all have one length, so no other window of it ends there).
func (m *MFA) Forget(ctx context.Context, key string, opened time.Time, window time.Duration) error {
	end := windowEnd(ceilMicros(opened), window)
	err := m.s.writeOne(ctx, func(w *wtx) error {
		_, err := w.exec(rateForget, key, end)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlitestore: forget: %w", err)
	}
	return nil
}

func scanTxn(r scanner) (mfa.Transaction, error) {
	var t mfa.Transaction
	var flags, created, expires int64
	if err := r.Scan(blob32{(*[32]byte)(&t.Hash)}, &t.Tenant, &t.UserID, blob32{(*[32]byte)(&t.Binding)}, &t.Purpose,
		&flags, &created, &expires); err != nil {
		return mfa.Transaction{}, err
	}
	var err error
	if t.Flags, err = flags32("MFA transaction", flags); err != nil {
		return mfa.Transaction{}, err
	}
	t.CreatedAt = fromMicros(created)
	t.ExpiresAt = fromMicros(expires)
	return t, nil
}

// CreateTransaction implements mfa.TransactionStore with one INSERT … ON
// CONFLICT DO NOTHING. Every defaultSweepEvery-th CreateTransaction of a
// Store also deletes, in the same transaction, up to sweepBatch other
// transactions that expired SweepGrace or more before t.CreatedAt.
func (m *MFA) CreateTransaction(ctx context.Context, t mfa.Transaction) error {
	var created bool
	create := func(w *wtx) error {
		var err error
		created, err = affected(w.exec(txnCreate, t.Hash[:], t.Tenant, t.UserID, t.Binding[:], t.Purpose,
			int64(t.Flags), micros(t.CreatedAt), micros(t.ExpiresAt)))
		return err
	}
	var err error
	if m.sweepNow(&m.creates) {
		err = m.s.write(ctx, func(w *wtx) error {
			if _, err := w.exec(txnSweep, sweepCutoff(t.CreatedAt), t.Hash[:], sweepBatch); err != nil {
				return fmt.Errorf("sweep: %w", err)
			}
			return create(w)
		})
	} else {
		err = m.s.writeOne(ctx, create)
	}
	if err != nil {
		return fmt.Errorf("sqlitestore: create transaction: %w", err)
	}
	if !created {
		return mfa.ErrDuplicate
	}
	return nil
}

// Transaction implements mfa.TransactionStore with one SELECT.
func (m *MFA) Transaction(ctx context.Context, h mfa.Hash) (mfa.Transaction, error) {
	if err := m.s.ready(ctx); err != nil {
		return mfa.Transaction{}, err
	}
	t, err := scanTxn(m.s.reads.queryRow(ctx, txnGet, h[:]))
	if isNoRows(err) {
		return mfa.Transaction{}, mfa.ErrNotFound
	}
	if err != nil {
		return mfa.Transaction{}, fmt.Errorf("sqlitestore: read transaction: %w", err)
	}
	return t, nil
}

// ConsumeTransaction implements mfa.TransactionStore with one DELETE …
// RETURNING: of concurrent calls, in any process, one gets the row.
func (m *MFA) ConsumeTransaction(ctx context.Context, h mfa.Hash) (mfa.Transaction, error) {
	var t mfa.Transaction
	err := m.s.writeOne(ctx, func(w *wtx) error {
		var err error
		t, err = scanTxn(w.queryRow(txnConsume, h[:]))
		return err
	})
	if isNoRows(err) {
		return mfa.Transaction{}, mfa.ErrNotFound
	}
	if err != nil {
		return mfa.Transaction{}, fmt.Errorf("sqlitestore: consume transaction: %w", err)
	}
	return t, nil
}

// Sweep deletes every one-time code, transaction and rate window that
// expired SweepGrace or more before now, in one write transaction, and
// returns how many rows it deleted. PutCode, Hit and CreateTransaction
// sweep now and then; a host may also call Sweep periodically.
func (m *MFA) Sweep(ctx context.Context, now time.Time) (int64, error) {
	var n int64
	err := m.s.write(ctx, func(w *wtx) error {
		for _, q := range []struct {
			id   stmtID
			args []any
		}{
			{codeSweep, []any{sweepCutoff(now), -1}},
			{rateSweep, []any{sweepCutoff(now), -1}},
			{txnSweep, []any{sweepCutoff(now), nil, -1}},
		} {
			res, err := w.exec(q.id, q.args...)
			if err != nil {
				return err
			}
			k, err := res.RowsAffected()
			if err != nil {
				return err
			}
			n += k
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("sqlitestore: sweep mfa: %w", err)
	}
	return n, nil
}
