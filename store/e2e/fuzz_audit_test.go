package e2e_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/guardhq/guard/internal/sqlitetest"
	"github.com/guardhq/guard/internal/testenv"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/session"
	"github.com/guardhq/guard/store/pgstore"
)

// FUZZ-5: a session's (and an MFA transaction's) flags are a uint32,
// stored by sqlitestore and pgstore in a 64-bit integer column. A row
// changed outside the package to hold a flags value no uint32 has was read
// as its low 32 bits: -1 came back as every flag set, 1<<32 as none, where
// redisstore refuses such a row. It must be an error (prefixed with the
// package's name, not a sentinel), as any other row the package did not
// write.
func TestAuditFuzz_FUZZ5_FlagsOutOfRange(t *testing.T) {
	type backend struct {
		sessions interface {
			session.Store
			session.UserIndex
		}
		txns mfa.TransactionStore
		// setFlags writes flags into every session and transaction row.
		setFlags func(flags int64) error
	}
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		open func(t *testing.T) backend
	}{
		{"sqlitestore", func(t *testing.T) backend {
			s := sqlitetest.Open(t)
			return backend{s.Sessions, s.MFA, func(flags int64) error {
				return execAll(func(q string) error { _, err := s.DB().Exec(q, flags); return err },
					`UPDATE guard_sessions SET flags = ?`, `UPDATE guard_mfa_transactions SET flags = ?`)
			}}
		}},
		{"pgstore", func(t *testing.T) backend {
			pool, err := pgxpool.New(ctx, testenv.Postgres(t))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(pool.Close)
			name := "guardfuzz_" + randomHex(t, 6)
			schema := pgx.Identifier{name}.Sanitize()
			s, err := pgstore.New(pool, pgstore.Options{Schema: name})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { pool.Exec(context.Background(), "DROP SCHEMA IF EXISTS "+schema+" CASCADE") })
			if err := s.Migrate(ctx); err != nil {
				t.Fatal(err)
			}
			return backend{s.Sessions, s.MFA, func(flags int64) error {
				return execAll(func(q string) error { _, err := pool.Exec(ctx, q, flags); return err },
					`UPDATE `+schema+`.sessions SET flags = $1`, `UPDATE `+schema+`.mfa_transactions SET flags = $1`)
			}}
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			now := time.Now().UTC().Truncate(time.Microsecond)
			for _, flags := range []int64{-1, 1 << 32} {
				b := tc.open(t)
				h := session.Hash{1}
				if _, err := b.sessions.Create(ctx, session.Session{Hash: h, Tenant: "acme", UserID: "u1", CreatedAt: now, LastSeen: now,
					ExpiresAt: now.Add(time.Hour), IdleTimeout: time.Hour}, session.Limit{}); err != nil {
					t.Fatal(err)
				}
				txn := mfa.Transaction{Hash: mfa.Hash{2}, Tenant: "acme", UserID: "u1", Purpose: "login", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
				if err := b.txns.CreateTransaction(ctx, txn); err != nil {
					t.Fatal(err)
				}
				if err := b.setFlags(flags); err != nil {
					t.Fatal(err)
				}
				check := func(what string, got any, err error) {
					t.Helper()
					if err == nil || !strings.HasPrefix(err.Error(), tc.name+": ") || errors.Is(err, session.ErrNotFound) || errors.Is(err, mfa.ErrNotFound) {
						t.Errorf("flags %d: %s = %+v, %v; want an error prefixed %s:", flags, what, got, err, tc.name)
					}
				}
				for range 2 { // sqlitestore: the lookup connections, then the pool's
					got, err := b.sessions.Lookup(ctx, h)
					check("Lookup", got, err)
				}
				if lt, ok := b.sessions.(session.LookupToucher); ok {
					got, err := lt.LookupTouch(ctx, h, now, time.Minute, time.Hour)
					check("LookupTouch", got, err)
				}
				list, err := b.sessions.ListByUser(ctx, "acme", "u1")
				check("ListByUser", list, err)
				got, err := b.txns.Transaction(ctx, txn.Hash)
				check("Transaction", got, err)
			}
		})
	}
}

// execAll runs each query with exec, stopping at the first error.
func execAll(exec func(q string) error, queries ...string) error {
	for _, q := range queries {
		if err := exec(q); err != nil {
			return err
		}
	}
	return nil
}
