package sqlitestore_test

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/guardhq/guard/store/sqlitestore"
)

// Open of a migrated file in WAL mode only reads until the Store's first
// write: another process's write transaction (a replica's Migrate or
// purge, a migration run ahead of a ring-fenced tenant's open) does not
// block it, nor make it fail. Readers in WAL mode never wait for the
// writer. Open must not need the write lock to check that the file can
// be written.
func TestOpenWhileAnotherConnectionWrites(t *testing.T) {
	path := filepath.Join(t.TempDir(), "guard.db")
	openFile(t, path).Close() // created and migrated

	other, err := sql.Open("sqlite", sqlitestore.DSN(path))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	c, err := other.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.ExecContext(t.Context(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	released := make(chan struct{})
	go func() {
		defer close(released)
		time.Sleep(sqlitestore.BusyTimeout + 2*time.Second)
		_, _ = c.ExecContext(context.Background(), "ROLLBACK")
		_ = c.Close()
	}()
	defer func() { <-released }()

	start := time.Now()
	s, err := sqlitestore.Open(t.Context(), path)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("Open while another connection holds the write lock = %v after %v, want a Store (WAL readers do not wait for the writer)", err, took)
	}
	defer s.Close()
	if took > time.Second {
		t.Errorf("Open waited %v for another connection's write transaction", took)
	}
}
