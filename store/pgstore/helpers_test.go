package pgstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/internal/testenv"
	"github.com/guardhq/guard/store/pgstore"
)

var (
	sharedOnce sync.Once
	sharedPool *pgxpool.Pool
	sharedErr  error
)

// testPool returns the pool shared by the tests of this package, on the
// server named by GUARD_TEST_POSTGRES (skipping the test without it).
func testPool(t testing.TB) *pgxpool.Pool {
	t.Helper()
	dsn := testenv.Postgres(t)
	sharedOnce.Do(func() {
		sharedPool, sharedErr = newPool(dsn, 8)
	})
	if sharedErr != nil {
		t.Fatalf("pgxpool: %v", sharedErr)
	}
	return sharedPool
}

// newPool opens a pool of at most maxConns connections on dsn.
func newPool(dsn string, maxConns int32) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, err
	}
	cfg.MaxConns = maxConns
	return pgxpool.NewWithConfig(context.Background(), cfg)
}

// ownPool returns a new pool on the test server, closed when t ends: a
// replica of its own.
func ownPool(t testing.TB, maxConns int32) *pgxpool.Pool {
	t.Helper()
	p, err := newPool(testenv.Postgres(t), maxConns)
	if err != nil {
		t.Fatalf("pgxpool: %v", err)
	}
	t.Cleanup(p.Close)
	return p
}

// newSchemaName returns a fresh schema name guardtest_<random>.
func newSchemaName(t testing.TB) string {
	t.Helper()
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return "guardtest_" + hex.EncodeToString(b[:])
}

// dropSchemaOnCleanup drops schema (if it exists) when t ends.
func dropSchemaOnCleanup(t testing.TB, schema string) {
	t.Helper()
	dropOnCleanup(t, testPool(t), schema)
}

// dropOnCleanup drops schema with p when t ends. Unlike
// dropSchemaOnCleanup it may be called for t from a subtest.
func dropOnCleanup(t testing.TB, p *pgxpool.Pool, schema string) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := p.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("dropping schema %s: %v", schema, err)
		}
	})
}

// newStore returns a migrated Store on a fresh, empty schema of the shared
// pool, dropped when t ends.
func newStore(t testing.TB) *pgstore.Store {
	t.Helper()
	return newStoreOn(t, testPool(t), "")
}

// newStoreOn returns a migrated Store on pool with the given schema (a
// fresh one, dropped when t ends, if schema is "").
func newStoreOn(t testing.TB, pool *pgxpool.Pool, schema string) *pgstore.Store {
	t.Helper()
	if schema == "" {
		schema = newSchemaName(t)
		dropSchemaOnCleanup(t, schema)
	}
	st, err := pgstore.New(pool, pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	return st
}

// testPoolDSN returns the DSN of the test server.
func testPoolDSN(t testing.TB) string {
	t.Helper()
	return testenv.Postgres(t)
}

// dsnWithDatabase returns dsn naming database db instead.
func dsnWithDatabase(t testing.TB, dsn, db string) string {
	t.Helper()
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("postgres://%s@%s:%d/%s?sslmode=disable&connect_timeout=5", url.PathEscape(cfg.User), cfg.Host, cfg.Port, db)
}

// tenantFixture returns a tenant with id.
func tenantFixture(id string) guard.Tenant {
	return guard.Tenant{ID: id, Name: "Tenant " + id, CreatedAt: time.Date(2026, 1, 2, 3, 4, 5, 6000, time.UTC)}
}

// recycler hands out empty, migrated stores for the subtests of one test.
// A subtest's schema is emptied when the subtest ends and handed to the
// next one, which is much cheaper than migrating a fresh schema per
// subtest; every schema is dropped when the test ends. Subtests that run
// at the same time get different schemas.
type recycler struct {
	t    *testing.T // the test whose end drops the schemas
	mu   sync.Mutex
	free []*pgstore.Store
}

// newRecycler returns a recycler whose schemas are dropped when t ends. It
// skips t (before any subtest runs) when there is no test server.
func newRecycler(t *testing.T) *recycler {
	t.Helper()
	testPool(t)
	return &recycler{t: t}
}

// store returns an empty migrated store, emptied and recycled when t ends.
func (r *recycler) store(t testing.TB) *pgstore.Store {
	t.Helper()
	r.mu.Lock()
	var st *pgstore.Store
	if n := len(r.free); n > 0 {
		st, r.free = r.free[n-1], r.free[:n-1]
	}
	r.mu.Unlock()
	if st == nil {
		schema := newSchemaName(t)
		dropOnCleanup(r.t, testPool(t), schema)
		st = newStoreOn(t, testPool(t), schema)
	}
	t.Cleanup(func() {
		// Every table of the schema but its migrations, so that a table a
		// migration adds is never left out.
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := testPool(t).Exec(ctx, `DO $$
			DECLARE t text;
			BEGIN
				FOR t IN SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) FROM pg_tables
					WHERE schemaname = `+quoteLiteral(st.Schema())+` AND tablename <> 'schema_migrations'
				LOOP
					EXECUTE 'DELETE FROM ' || t;
				END LOOP;
			END $$`); err != nil {
			t.Errorf("emptying schema %s: %v", st.Schema(), err)
			return
		}
		r.mu.Lock()
		r.free = append(r.free, st)
		r.mu.Unlock()
	})
	return st
}

// rowCount returns the number of rows of table in st's schema.
func rowCount(t *testing.T, st *pgstore.Store, table string) int {
	t.Helper()
	var n int
	if err := testPool(t).QueryRow(t.Context(), `SELECT count(*) FROM `+pgx.Identifier{st.Schema(), table}.Sanitize()).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// quoteLiteral quotes s as an SQL string literal.
func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
