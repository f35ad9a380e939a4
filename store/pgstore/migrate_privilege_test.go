package pgstore_test

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/guardhq/guard/internal/testenv"
	"github.com/guardhq/guard/store/pgstore"
)

// Migrate on a schema that is up to date "changes nothing", so a replica
// whose role may use and create in its own schema (but not create schemas
// in the database, the usual least-privilege grant) can run it at start,
// as examples/server does. CREATE SCHEMA IF NOT EXISTS checks the database
// CREATE privilege before it looks whether the schema exists, so today
// such a start fails with "permission denied for database".
func TestMigrateUpToDateWithoutDatabaseCreate(t *testing.T) {
	ctx := context.Background()
	st := newStore(t) // migrated by the test's superuser
	schema := st.Schema()
	q := pgx.Identifier{schema}.Sanitize()
	// The application's role (a built-in role without CREATE on the
	// database) gets every right on its own schema only: pg_write_all_data
	// writes every table but reads none, so it is granted SELECT on the
	// schema's tables (the grants go with the schema when the test drops it).
	for _, grant := range []string{
		"GRANT USAGE, CREATE ON SCHEMA " + q + " TO pg_write_all_data",
		"GRANT SELECT ON ALL TABLES IN SCHEMA " + q + " TO pg_write_all_data",
	} {
		if _, err := testPool(t).Exec(ctx, grant); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := pgxpool.ParseConfig(testenv.Postgres(t))
	if err != nil {
		t.Fatal(err)
	}
	cfg.MaxConns = 2
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, "SET ROLE pg_write_all_data")
		return err
	}
	app, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	var canCreate bool
	if err := app.QueryRow(ctx, "SELECT has_database_privilege(current_database(), 'CREATE')").Scan(&canCreate); err != nil {
		t.Fatal(err)
	}
	if canCreate {
		t.Skip("pg_write_all_data may create schemas here")
	}
	replica, err := pgstore.New(app, pgstore.Options{Schema: schema})
	if err != nil {
		t.Fatal(err)
	}
	if err := replica.Migrate(ctx); err != nil {
		t.Errorf("Migrate of an up-to-date schema by its application role: %v", err)
	}
}
