package sqlitestore_test

import (
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/guardhq/guard/store/sqlitestore"
)

// A path that names a directory is no SQLite database: Open says so with
// ErrNotDatabase, naming the path, and New on a *sql.DB opened on it with
// ErrCannotOpen (SQLite does not say why it cannot open the file), and
// both leave nothing in the directory; not an untyped "reading schema:
// unable to open database file".
func TestOpenDirectory(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	s, err := sqlitestore.Open(t.Context(), dir)
	if err == nil {
		s.Close()
		t.Fatal("Open of a directory succeeded")
	}
	if !errors.Is(err, sqlitestore.ErrNotDatabase) || !strings.Contains(err.Error(), dir) {
		t.Errorf("Open(directory) = %v, want ErrNotDatabase naming %s", err, dir)
	}
	db, err := sql.Open("sqlite", "file:"+dir)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if s, err := sqlitestore.New(db); !errors.Is(err, sqlitestore.ErrCannotOpen) {
		if err == nil {
			s.Close()
		}
		t.Errorf("New on a directory = %v, want ErrCannotOpen", err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) > 0 {
		t.Errorf("left %d entries in the directory", len(ents))
	}
}
