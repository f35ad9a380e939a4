package sqlitestore_test

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"

	"github.com/guardhq/guard/store/sqlitestore"
)

// A database of another application with a view named as one of this
// package's tables (or its version table) clashes as surely as a table of
// that name does, and so does a table named as one in another case
// (SQLite's names are case-insensitive: "Guard_Users" is "guard_users"):
// Open refuses it with ErrForeignSchema and writes nothing to it (not even
// the switch to WAL), rather than opening it, turning it to WAL and
// leaving Migrate to fail on an SQL error ("table guard_users already
// exists").
func TestOpenForeignNames(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stmts []string
	}{
		{"ViewOfTableName", []string{`CREATE TABLE things (a TEXT)`, `INSERT INTO things VALUES ('theirs')`,
			`CREATE VIEW guard_sessions AS SELECT a FROM things`}},
		{"ViewOfVersionTable", []string{`CREATE TABLE things (a INTEGER)`, `INSERT INTO things VALUES (1)`,
			`CREATE VIEW guard_schema_version AS SELECT a AS version FROM things`}},
		{"TableInOtherCase", []string{`CREATE TABLE Guard_Users (id INTEGER PRIMARY KEY, data TEXT)`, `INSERT INTO Guard_Users (data) VALUES ('theirs')`}},
		{"VersionTableInOtherCase", []string{`CREATE TABLE GUARD_SCHEMA_VERSION (v TEXT)`, `INSERT INTO GUARD_SCHEMA_VERSION VALUES ('x')`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "app.db")
			foreignDB(t, path, tc.stmts...)
			content := readFile(t, path)
			s, err := sqlitestore.Open(t.Context(), path)
			if err == nil {
				mErr := s.Migrate(t.Context())
				s.Close()
				t.Errorf("Open = nil (then Migrate = %v), want ErrForeignSchema", mErr)
			} else if !errors.Is(err, sqlitestore.ErrForeignSchema) {
				t.Errorf("Open = %v, want ErrForeignSchema", err)
			}
			if !bytes.Equal(readFile(t, path), content) {
				t.Error("the foreign database file was changed (journal mode or content)")
			}
		})
	}
}

// A view with the name of a table that a later migration creates, added
// to a database this package migrated part of the way, is refused by Open
// with ErrForeignSchema too, rather than failing Migrate on raw SQL.
func TestOpenForeignViewInMigratedDatabase(t *testing.T) {
	path := filepath.Join(t.TempDir(), "guard.db")
	s, err := sqlitestore.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	if err := sqlitestore.MigrateTo(t.Context(), s, 1); err != nil {
		t.Fatal(err)
	}
	if _, err := s.DB().Exec(`CREATE VIEW guard_api_keys AS SELECT 1 AS id`); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	content := readFile(t, path)
	s, err = sqlitestore.Open(t.Context(), path)
	if err == nil {
		mErr := s.Migrate(t.Context())
		s.Close()
		t.Fatalf("Open = nil (then Migrate = %v), want ErrForeignSchema", mErr)
	}
	if !errors.Is(err, sqlitestore.ErrForeignSchema) {
		t.Errorf("Open = %v, want ErrForeignSchema", err)
	}
	if !bytes.Equal(readFile(t, path), content) {
		t.Error("Open changed the file")
	}
}
