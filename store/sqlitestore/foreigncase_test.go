package sqlitestore_test

import (
	"bytes"
	"errors"
	"path/filepath"
	"testing"

	"github.com/guardhq/guard/store/sqlitestore"
)

// SQLite's names are case-insensitive: another application's table
// "Guard_Users" is the table "guard_users" to SQLite. Open must refuse the
// file with ErrForeignSchema and write nothing to it, as it does for
// "guard_users", rather than open it, turn it to WAL and leave Migrate to
// fail on "table guard_users already exists".
func TestOpenForeignSchemaOtherCase(t *testing.T) {
	for _, tc := range []struct {
		name  string
		stmts []string
	}{
		{"Table", []string{`CREATE TABLE Guard_Users (id INTEGER PRIMARY KEY, data TEXT)`, `INSERT INTO Guard_Users (data) VALUES ('theirs')`}},
		{"VersionTable", []string{`CREATE TABLE GUARD_SCHEMA_VERSION (v TEXT)`, `INSERT INTO GUARD_SCHEMA_VERSION VALUES ('x')`}},
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
