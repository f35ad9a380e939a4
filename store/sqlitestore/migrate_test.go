package sqlitestore_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/guardhq/guard/session"
	"github.com/guardhq/guard/store/sqlitestore"
)

// schemaOf returns the schema of the database at path (every object's
// SQL, in name order) and the versions recorded, read through a
// connection of its own.
func schemaOf(t *testing.T, path string) (schema string, versions []int) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query(`SELECT type || ' ' || name || ': ' || coalesce(sql, '') FROM sqlite_schema ORDER BY name`)
	if err != nil {
		t.Fatalf("reading schema: %v", err)
	}
	var b strings.Builder
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		b.WriteString(s + "\n")
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(b.String(), "guard_schema_version") {
		vrows, err := db.Query(`SELECT version FROM guard_schema_version ORDER BY version`)
		if err != nil {
			t.Fatal(err)
		}
		for vrows.Next() {
			var v int
			if err := vrows.Scan(&v); err != nil {
				t.Fatal(err)
			}
			versions = append(versions, v)
		}
	}
	return b.String(), versions
}

func wantVersions(t *testing.T, got []int, n int) {
	t.Helper()
	if len(got) != n {
		t.Fatalf("versions recorded %v, want 1..%d", got, n)
	}
	for i, v := range got {
		if v != i+1 {
			t.Fatalf("versions recorded %v, want 1..%d", got, n)
		}
	}
}

// readFile returns the content of path, nil if it does not exist.
func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// closeAndSnapshot closes s (which checkpoints the WAL into the file) and
// returns the file's bytes.
func closeAndSnapshot(t *testing.T, s *sqlitestore.Store, path string) []byte {
	t.Helper()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	return readFile(t, path)
}

func TestMigrateTwiceIsNoOp(t *testing.T) {
	path := filepath.Join(t.TempDir(), "guard.db")
	s := openFile(t, path)
	before, versions := schemaOf(t, path)
	wantVersions(t, versions, sqlitestore.SchemaVersion())
	for range 2 {
		if err := s.Migrate(t.Context()); err != nil {
			t.Fatalf("Migrate again: %v", err)
		}
	}
	after, versions := schemaOf(t, path)
	if after != before {
		t.Errorf("schema changed by a second Migrate:\n%s\nwant\n%s", after, before)
	}
	wantVersions(t, versions, sqlitestore.SchemaVersion())
	// And a second Store on the file sees it migrated.
	s2 := openFile(t, path)
	if _, err := s2.Sessions.Lookup(t.Context(), session.Hash{1}); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Lookup on a second Store: %v, want ErrNotFound", err)
	}
}

func TestNotMigrated(t *testing.T) {
	path := filepath.Join(t.TempDir(), "guard.db")
	s, err := sqlitestore.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Sessions.Lookup(t.Context(), session.Hash{1}); !errors.Is(err, sqlitestore.ErrNotMigrated) {
		t.Errorf("Lookup before Migrate: %v, want ErrNotMigrated", err)
	}
	if _, err := s.Sessions.Create(t.Context(), session.Session{Hash: session.Hash{1}}, session.Limit{}); !errors.Is(err, sqlitestore.ErrNotMigrated) {
		t.Errorf("Create before Migrate: %v, want ErrNotMigrated", err)
	}
	if err := s.Migrate(t.Context()); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sessions.Lookup(t.Context(), session.Hash{1}); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Lookup after Migrate: %v, want ErrNotFound", err)
	}
}

func TestMigrateConcurrently(t *testing.T) {
	// Several processes starting at once on a new file: each migration
	// runs once, every Migrate succeeds.
	path := filepath.Join(t.TempDir(), "guard.db")
	var stores []*sqlitestore.Store
	for range 4 {
		s, err := sqlitestore.Open(t.Context(), path)
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		stores = append(stores, s)
	}
	var wg sync.WaitGroup
	for _, s := range stores {
		wg.Go(func() {
			if err := s.Migrate(t.Context()); err != nil {
				t.Errorf("Migrate: %v", err)
			}
		})
	}
	wg.Wait()
	_, versions := schemaOf(t, path)
	wantVersions(t, versions, sqlitestore.SchemaVersion())
}

func TestSchemaTooNew(t *testing.T) {
	path := filepath.Join(t.TempDir(), "guard.db")
	s := openFile(t, path)
	// A newer version of this package migrated the file further.
	if err := sqlitestore.MigrateWith(t.Context(), s, []string{`CREATE TABLE guard_future (x INTEGER)`}); err != nil {
		t.Fatalf("migrating to a newer version: %v", err)
	}
	// A Store opened before keeps working for the old tables but cannot
	// migrate.
	if err := s.Migrate(t.Context()); !errors.Is(err, sqlitestore.ErrSchemaTooNew) {
		t.Errorf("Migrate of a newer schema: %v, want ErrSchemaTooNew", err)
	}
	file := closeAndSnapshot(t, s, path)
	schema, versions := schemaOf(t, path)
	wantVersions(t, versions, sqlitestore.SchemaVersion()+1)

	if s, err := sqlitestore.Open(t.Context(), path); !errors.Is(err, sqlitestore.ErrSchemaTooNew) {
		if err == nil {
			s.Close()
		}
		t.Errorf("Open of a newer schema: %v, want ErrSchemaTooNew", err)
	}
	db, err := sql.Open("sqlite", sqlitestore.DSN(path))
	if err != nil {
		t.Fatal(err)
	}
	if s, err := sqlitestore.New(db); !errors.Is(err, sqlitestore.ErrSchemaTooNew) {
		if err == nil {
			s.Close()
		}
		t.Errorf("New on a newer schema: %v, want ErrSchemaTooNew", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if got, v := schemaOf(t, path); got != schema || len(v) != len(versions) {
		t.Errorf("schema changed by a refused Open:\n%s\nwant\n%s", got, schema)
	}
	if !bytes.Equal(readFile(t, path), file) {
		t.Errorf("file changed by a refused Open")
	}
}

func TestMigrationFailingMidway(t *testing.T) {
	path := filepath.Join(t.TempDir(), "guard.db")
	s := openFile(t, path)
	ctx := t.Context()
	sess := session.Session{Hash: session.Hash{7}, Tenant: "t", UserID: "u", CreatedAt: time.Unix(1, 0),
		LastSeen: time.Unix(1, 0), ExpiresAt: time.Unix(3600, 0), IdleTimeout: time.Hour}
	if _, err := s.Sessions.Create(ctx, sess, session.Limit{}); err != nil {
		t.Fatal(err)
	}
	before, _ := schemaOf(t, path)
	err := sqlitestore.MigrateWith(ctx, s, []string{
		`CREATE TABLE guard_next (x INTEGER)`,
		`ALTER TABLE guard_sessions ADD COLUMN extra TEXT`,
		`INSERT INTO no_such_table VALUES (1)`, // fails
	})
	if err == nil {
		t.Fatal("a migration with a failing statement succeeded")
	}
	if !strings.Contains(err.Error(), "statement 3") {
		t.Errorf("error %q does not name the failing statement", err)
	}
	after, versions := schemaOf(t, path)
	if after != before {
		t.Errorf("a failed migration changed the schema:\n%s\nwant\n%s", after, before)
	}
	wantVersions(t, versions, sqlitestore.SchemaVersion())
	// The store still works, with its data.
	if got, err := s.Sessions.Lookup(ctx, sess.Hash); err != nil || got.UserID != "u" {
		t.Errorf("Lookup after a failed migration = %+v, %v", got, err)
	}
	// A later good migration goes through.
	if err := sqlitestore.MigrateWith(ctx, s, []string{`CREATE TABLE guard_next (x INTEGER)`}); err != nil {
		t.Fatalf("good migration after a failed one: %v", err)
	}
	_, versions = schemaOf(t, path)
	wantVersions(t, versions, sqlitestore.SchemaVersion()+1)
}

func TestFirstMigrationFailingLeavesEmptyFile(t *testing.T) {
	// On a new file, migrations 1..n commit one by one: a failure in n+1
	// leaves exactly 1..n.
	path := filepath.Join(t.TempDir(), "guard.db")
	s, err := sqlitestore.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := sqlitestore.MigrateWith(t.Context(), s, []string{`CREATE TABLE guard_next (x INTEGER)`, `SELECT * FROM nowhere`}); err == nil {
		t.Fatal("failing migration succeeded")
	}
	schema, versions := schemaOf(t, path)
	wantVersions(t, versions, sqlitestore.SchemaVersion())
	if strings.Contains(schema, "guard_next") {
		t.Errorf("the failed migration left guard_next behind:\n%s", schema)
	}
}

func TestOpenNotADatabase(t *testing.T) {
	dir := t.TempDir()
	for _, tc := range []struct {
		name    string
		content []byte
	}{
		{"Text", []byte(strings.Repeat("This is not an SQLite database, it is a text file.\n", 40))},
		{"ShortText", []byte("hello\n")},
		{"Zeros", make([]byte, 8192)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(dir, tc.name)
			if err := os.WriteFile(path, tc.content, 0o600); err != nil {
				t.Fatal(err)
			}
			s, err := sqlitestore.Open(t.Context(), path)
			if !errors.Is(err, sqlitestore.ErrNotDatabase) {
				if err == nil {
					s.Close()
				}
				t.Fatalf("Open = %v, want ErrNotDatabase", err)
			}
			if !strings.Contains(err.Error(), path) {
				t.Errorf("error %q does not name the file", err)
			}
			if !bytes.Equal(readFile(t, path), tc.content) {
				t.Error("Open changed the file")
			}
			for _, suffix := range []string{"-wal", "-shm", "-journal"} {
				if readFile(t, path+suffix) != nil {
					t.Errorf("Open left %s behind", path+suffix)
				}
			}
		})
	}
}

func TestOpenCorrupt(t *testing.T) {
	path := filepath.Join(t.TempDir(), "guard.db")
	s := openFile(t, path)
	content := closeAndSnapshot(t, s, path)
	if len(content) < 4096 || !bytes.HasPrefix(content, []byte("SQLite format 3\x00")) {
		t.Fatalf("unexpected file of %d bytes", len(content))
	}
	// Keep the 100-byte header, garble the rest of page 1 (the schema).
	corrupt := bytes.Clone(content)
	for i := 100; i < 4096; i++ {
		corrupt[i] = byte(i * 7)
	}
	if err := os.WriteFile(path, corrupt, 0o600); err != nil {
		t.Fatal(err)
	}
	s2, err := sqlitestore.Open(t.Context(), path)
	if !errors.Is(err, sqlitestore.ErrNotDatabase) {
		if err == nil {
			s2.Close()
		}
		t.Fatalf("Open of a corrupt file = %v, want ErrNotDatabase", err)
	}
	if !bytes.Equal(readFile(t, path), corrupt) {
		t.Error("Open changed the corrupt file")
	}
}

// foreignDB creates an SQLite database at path (rollback journal, as most
// applications leave it) with the given statements.
func foreignDB(t *testing.T, path string, stmts ...string) {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, q := range stmts {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func TestOpenForeignSchema(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stmts []string
	}{
		{"ConflictingTable", []string{`CREATE TABLE guard_sessions (id INTEGER PRIMARY KEY, data TEXT)`, `INSERT INTO guard_sessions (data) VALUES ('theirs')`}},
		{"ConflictingIndex", []string{`CREATE TABLE things (a, b)`, `CREATE INDEX guard_audit_time ON things (a)`}},
		{"ForeignVersionTable", []string{`CREATE TABLE guard_schema_version (v TEXT)`, `INSERT INTO guard_schema_version VALUES ('x')`}},
		// A version column alone does not make the table this package's.
		{"ForeignVersionTableWithVersion", []string{`CREATE TABLE guard_schema_version (version INTEGER, note TEXT)`, `INSERT INTO guard_schema_version VALUES (1, 'x')`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "app.db")
			foreignDB(t, path, tc.stmts...)
			content := readFile(t, path)
			s, err := sqlitestore.Open(t.Context(), path)
			if !errors.Is(err, sqlitestore.ErrForeignSchema) {
				if err == nil {
					s.Close()
				}
				t.Fatalf("Open = %v, want ErrForeignSchema", err)
			}
			if !bytes.Equal(readFile(t, path), content) {
				t.Error("Open changed the file (journal mode or content)")
			}
			// The host's own *sql.DB gets the same answer from New.
			db, err := sql.Open("sqlite", "file:"+path)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if s, err := sqlitestore.New(db); !errors.Is(err, sqlitestore.ErrForeignSchema) {
				if err == nil {
					s.Close()
				}
				t.Errorf("New = %v, want ErrForeignSchema", err)
			}
		})
	}
}

func TestOpenSharesFileWithUnrelatedTables(t *testing.T) {
	// An application's own tables, with names of their own, can live in
	// the same file.
	path := filepath.Join(t.TempDir(), "app.db")
	foreignDB(t, path, `CREATE TABLE customers (id INTEGER PRIMARY KEY, name TEXT)`, `INSERT INTO customers (name) VALUES ('Acme')`)
	s := openFile(t, path)
	var name string
	if err := s.DB().QueryRow(`SELECT name FROM customers`).Scan(&name); err != nil || name != "Acme" {
		t.Fatalf("customers after Migrate: %q, %v", name, err)
	}
}

func TestNewOnHostDB(t *testing.T) {
	// The host opens the database itself, with or without DSN's pragmas:
	// the Store works, its writes still take the write lock at once, and
	// Close leaves the host's *sql.DB open.
	for _, tc := range []struct{ name, dsn string }{
		{"DSN", "dsn"},
		{"PlainFile", "plain"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "host.db")
			dsn := sqlitestore.DSN(path)
			if tc.dsn == "plain" {
				dsn = "file:" + path + "?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)"
			}
			db, err := sql.Open("sqlite", dsn)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			s, err := sqlitestore.New(db)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Migrate(t.Context()); err != nil {
				t.Fatal(err)
			}
			ctx := context.Background()
			sess := session.Session{Hash: session.Hash{1}, Tenant: "t", UserID: "u", CreatedAt: time.Unix(10, 0),
				LastSeen: time.Unix(10, 0), ExpiresAt: time.Unix(1e9, 0), IdleTimeout: time.Hour}
			if _, err := s.Sessions.Create(ctx, sess, session.Limit{Max: 1}); err != nil {
				t.Fatal(err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if err := db.Ping(); err != nil {
				t.Errorf("host DB closed by Store.Close: %v", err)
			}
			if _, err := s.Sessions.Lookup(ctx, sess.Hash); !errors.Is(err, sqlitestore.ErrClosed) {
				t.Errorf("Lookup on a closed Store: %v, want ErrClosed", err)
			}
		})
	}
}
