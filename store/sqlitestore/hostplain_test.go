package sqlitestore_test

import (
	"bytes"
	"context"
	"database/sql"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/guardhq/guard/session"
	"github.com/guardhq/guard/store/sqlitestore"
)

// One Store alone, in one process, must answer its reads while it writes:
// a read that meets its own writer's commit must not fail with "database
// is locked". That needs WAL and a busy timeout on every connection of the
// pool, so New refuses a host's *sql.DB without them (opened without DSN's
// pragmas, or with a PRAGMA run on one connection only) with ErrBadDSN,
// naming the file and writing nothing to it; with them (even without the
// rest of DSN) the Store reads while it writes without an error.
func TestNewOnPlainHostDBReadsWhileWriting(t *testing.T) {
	for _, tc := range []struct {
		name, query string
		exec        string // run with db.Exec before New
	}{
		{"NoPragmas", "", ""},
		{"WALOnly", "?_pragma=journal_mode(WAL)", ""},
		{"BusyTimeoutOnly", "?_pragma=busy_timeout(5000)", ""},
		{"BusyTimeoutByExec", "?_pragma=journal_mode(WAL)", "PRAGMA busy_timeout = 5000"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "host.db")
			db, err := sql.Open("sqlite", "file:"+path+tc.query)
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if tc.exec != "" {
				if _, err := db.Exec(tc.exec); err != nil {
					t.Fatal(err)
				}
			}
			if err := db.Ping(); err != nil {
				t.Fatal(err)
			}
			before := readFile(t, path)
			s, err := sqlitestore.New(db)
			if err == nil {
				s.Close()
				t.Fatal("New accepted a *sql.DB whose connections lack WAL or a busy timeout")
			}
			if !errors.Is(err, sqlitestore.ErrBadDSN) || !strings.Contains(err.Error(), path) {
				t.Errorf("New = %v, want ErrBadDSN naming %s", err, path)
			}
			if !bytes.Equal(readFile(t, path), before) {
				t.Error("New wrote to the database it refused")
			}
		})
	}
	path := filepath.Join(t.TempDir(), "host.db")
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(5000)&_pragma=journal_mode(WAL)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := sqlitestore.New(db)
	if err != nil {
		t.Fatal(err)
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
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	if n, m := readErrs.Load(), writeErrs.Load(); n+m > 0 {
		t.Errorf("one Store on a *sql.DB with WAL and a busy timeout: %d reads and %d writes failed, first: %v", n, m, firstErr.Load())
	}
}
