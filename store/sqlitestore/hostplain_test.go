package sqlitestore_test

import (
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guardhq/guard/session"
	"github.com/guardhq/guard/store/sqlitestore"
)

// New accepts a host's *sql.DB opened without DSN's pragmas (no WAL, no
// busy timeout); its doc says only that writers in other processes then
// fail at once. One Store alone, in one process, must still answer its
// reads while it writes: a read that meets its own writer's commit must
// not fail with "database is locked" (New should refuse such a DB with a
// clear error, or the Store should wait for its own writer).
func TestNewOnPlainHostDBReadsWhileWriting(t *testing.T) {
	path := filepath.Join(t.TempDir(), "host.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := sqlitestore.New(db)
	if err != nil {
		t.Logf("New refused it: %v", err)
		return
	}
	defer s.Close()
	ctx := context.Background()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var readErrs, writeErrs atomic.Int64
	var firstErr atomic.Value
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			var h session.Hash
			h[0], h[1], h[2] = byte(i), byte(i>>8), byte(i>>16)
			sess := session.Session{Hash: h, Tenant: "t", UserID: "u", CreatedAt: now, LastSeen: now,
				ExpiresAt: now.Add(time.Hour), IdleTimeout: time.Hour}
			if _, err := s.Sessions.Create(ctx, sess, session.Limit{Max: 5}); err != nil {
				writeErrs.Add(1)
				firstErr.CompareAndSwap(nil, err)
			}
		}
	}()
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := s.Sessions.Lookup(ctx, session.Hash{0xff}); !errors.Is(err, session.ErrNotFound) {
					readErrs.Add(1)
					firstErr.CompareAndSwap(nil, err)
				}
			}
		}()
	}
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	if n, m := readErrs.Load(), writeErrs.Load(); n+m > 0 {
		t.Errorf("one Store on the host's plain *sql.DB: %d reads and %d writes failed, first: %v", n, m, firstErr.Load())
	}
}
