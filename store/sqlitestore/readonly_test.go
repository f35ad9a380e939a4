package sqlitestore_test

import (
	"database/sql"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/guardhq/guard/session"
	"github.com/guardhq/guard/store/sqlitestore"
)

// A host's *sql.DB that cannot write (mode=ro) on a migrated file gives
// ErrReadOnly at start, from New or Migrate, not a Store that starts
// and then fails every write with "attempt to write a readonly database".
func TestNewOnReadOnlyHostDB(t *testing.T) {
	path := filepath.Join(t.TempDir(), "guard.db")
	if err := openFile(t, path).Close(); err != nil {
		t.Fatal(err)
	}
	db, err := sql.Open("sqlite", sqlitestore.DSN(path)+"&mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := sqlitestore.New(db)
	if err != nil {
		if !errors.Is(err, sqlitestore.ErrReadOnly) {
			t.Errorf("New = %v, want ErrReadOnly", err)
		}
		return
	}
	defer s.Close()
	if err := s.Migrate(t.Context()); err != nil {
		if !errors.Is(err, sqlitestore.ErrReadOnly) {
			t.Errorf("Migrate = %v, want ErrReadOnly", err)
		}
		return
	}
	now := time.Now()
	_, err = s.Sessions.Create(t.Context(), session.Session{Hash: session.Hash{1}, Tenant: "t", UserID: "u",
		CreatedAt: now, LastSeen: now, ExpiresAt: now.Add(time.Hour), IdleTimeout: time.Hour}, session.Limit{})
	t.Errorf("New and Migrate accepted a read-only database; the first write then fails: %v", err)
}
