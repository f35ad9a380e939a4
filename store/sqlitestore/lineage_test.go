package sqlitestore_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/guardhq/guard/session"
	"github.com/guardhq/guard/store/sqlitestore"
)

// TestDeleteLineageOfNothingSkipsTheWriter: a sign-out with a token that
// names nothing to end (made up, or an evicted session's) is answered
// without the writer, so a flood of them does not queue behind it or
// hold up sign-ins; one that names a session waits for the writer.
func TestDeleteLineageOfNothingSkipsTheWriter(t *testing.T) {
	s := openStore(t)
	ctx := t.Context()
	now := time.Now().UTC().Truncate(time.Microsecond)
	mk := func(tok string) session.Session {
		return session.Session{Hash: session.Hash{tok[0]}, Tenant: "t", UserID: "u", CreatedAt: now, LastSeen: now,
			ExpiresAt: now.Add(time.Hour), IdleTimeout: time.Hour}
	}
	old, cur := mk("a"), mk("b")
	for _, n := range []session.Session{old, cur} {
		if _, err := s.Sessions.Create(ctx, n, session.Limit{Max: 1, Policy: session.EvictOldest}); err != nil {
			t.Fatalf("Create: %v", err)
		}
	}
	held, release, done := make(chan struct{}), make(chan struct{}), make(chan error)
	go func() { done <- sqlitestore.HoldWriter(ctx, s, held, release) }()
	<-held
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	for _, h := range []session.Hash{{'z'}, old.Hash} {
		if _, _, err := s.Sessions.DeleteLineage(short, h, session.MaxLineageHops); !errors.Is(err, session.ErrNotFound) {
			t.Errorf("DeleteLineage(%s) with the writer held: %v, want ErrNotFound at once", h, err)
		}
	}
	if _, _, err := s.Sessions.DeleteLineage(short, cur.Hash, session.MaxLineageHops); err == nil {
		t.Errorf("DeleteLineage of a session with the writer held succeeded")
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("HoldWriter: %v", err)
	}
	if got, _, err := s.Sessions.DeleteLineage(ctx, cur.Hash, session.MaxLineageHops); err != nil || got.Hash != cur.Hash {
		t.Errorf("DeleteLineage(%s) = %s, %v; want it", cur.Hash, got.Hash, err)
	}
}
