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
// databases. New must refuse it with a clear error (as it refuses a pool
// of one connection); accepted, the Store must work. Today New accepts it,
// Migrate and Create succeed, and every read then fails with
// "no such table", after a Migrate that reported success.
func TestNewOnMemoryDB(t *testing.T) {
	db, err := sql.Open("sqlite", ":memory:")
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
