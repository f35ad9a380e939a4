//go:build unix

package sqlitestore_test

import (
	"context"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/store/sqlitestore"
)

// Open creates a new database file readable by its owner only, whatever
// the umask lets through, and SQLite's -wal and -shm files follow it; an
// existing file keeps its mode.
func TestOpenCreatesPrivateFile(t *testing.T) {
	old := syscall.Umask(0o022)
	defer syscall.Umask(old)
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "guard.db")
	st := openFile(t, path)
	if err := st.Tenants.CreateTenant(ctx, guard.Tenant{ID: "acme", Name: "Acme", Version: 1, CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{path, path + "-wal", path + "-shm"} {
		fi, err := os.Stat(name)
		if errors.Is(err, fs.ErrNotExist) && name != path {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		if perm := fi.Mode().Perm(); perm != 0o600 {
			t.Errorf("%s: mode %v, want 0600", filepath.Base(name), perm)
		}
	}

	shared := filepath.Join(dir, "shared.db")
	if err := os.WriteFile(shared, nil, 0o640); err != nil {
		t.Fatal(err)
	}
	st2, err := sqlitestore.Open(ctx, shared)
	if err != nil {
		t.Fatal(err)
	}
	st2.Close()
	if fi, err := os.Stat(shared); err != nil || fi.Mode().Perm() != 0o640 {
		t.Errorf("an existing file's mode changed: %v %v", fi.Mode(), err)
	}
}
