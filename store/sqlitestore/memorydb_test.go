package sqlitestore_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"
	"time"

	"github.com/guardhq/guard/session"
	"github.com/guardhq/guard/store/sqlitestore"
)

// A host's *sql.DB on ":memory:" gives every pooled connection a database
// of its own, so the Store's writer and its readers would see different
// databases (every read failing with "no such table" after a Migrate that
// reported success). New refuses it with ErrBadDSN, as it refuses every
// in-memory database (none can use WAL), shared cache or not.
func TestNewOnMemoryDB(t *testing.T) {
	for _, dsn := range []string{":memory:", "file::memory:?cache=shared", "file:/guard?vfs=memdb"} {
		t.Run(dsn, func(t *testing.T) { newOnMemoryDB(t, dsn) })
	}
}

func newOnMemoryDB(t *testing.T, dsn string) {
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	s, err := sqlitestore.New(db)
	if err != nil {
		if !errors.Is(err, sqlitestore.ErrBadDSN) {
			t.Errorf("New = %v, want ErrBadDSN", err)
		}
		return
	}
	defer s.Close()
	t.Error("New accepted a :memory: *sql.DB")
	ctx := context.Background()
	if err := s.Migrate(ctx); err != nil {
		t.Fatalf("Migrate: %v", err)
	}
	now := time.Now()
	sess := session.Session{Hash: session.Hash{1}, Tenant: "t", UserID: "u", CreatedAt: now, LastSeen: now,
		ExpiresAt: now.Add(time.Hour), IdleTimeout: time.Hour}
	if _, err := s.Sessions.Create(ctx, sess, session.Limit{}); err != nil {
		t.Fatalf("Create: %v", err)
	}
	if _, err := s.Sessions.Lookup(ctx, sess.Hash); err != nil {
		t.Errorf("Lookup of the session just created on a migrated Store: %v", err)
	}
	if _, err := s.Sessions.Lookup(ctx, session.Hash{2}); !errors.Is(err, session.ErrNotFound) {
		t.Errorf("Lookup of an unknown session: %v, want ErrNotFound", err)
	}
}
