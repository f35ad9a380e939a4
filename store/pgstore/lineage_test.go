package pgstore_test

import (
	"crypto/sha256"
	"errors"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/guardhq/guard/session"
	"github.com/guardhq/guard/store/pgstore"
)

// lineageResult is what a DeleteLineage call returned.
type lineageResult struct {
	s       session.Session
	rotated bool
	err     error
}

// createLineageRoot stores session a of user t/u in st and returns it.
func createLineageRoot(t *testing.T, st *pgstore.Store) session.Session {
	t.Helper()
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	a := session.Session{Hash: sha256.Sum256([]byte("a")), Tenant: "t", UserID: "u", CreatedAt: now, LastSeen: now,
		ExpiresAt: now.Add(time.Hour), IdleTimeout: time.Hour}
	if _, err := st.Sessions.Create(t.Context(), a, session.Limit{}); err != nil {
		t.Fatal(err)
	}
	return a
}

// A sign-out (DeleteLineage) that starts while a rotation of the session
// is under way, its row already deleted but not committed, waits for that
// rotation and ends the session it rotated to. A single statement that
// walked and deleted would have read the chain before the rotation
// committed, found the old row gone once it did, and ended nothing; the
// lock of the user, taken first, is what orders the two.
func TestDeleteLineageWaitsForRotation(t *testing.T) {
	st := newStore(t)
	ctx := t.Context()
	a := createLineageRoot(t, st)
	b := a
	b.Hash = sha256.Sum256([]byte("b"))

	// The rotation a → b, as Sessions.Rotate makes it, left open.
	tx, err := testPool(t).Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) // a no-op after Commit
	var rotated bool
	if err := tx.QueryRow(ctx, `SELECT `+pgx.Identifier{st.Schema(), "session_rotate"}.Sanitize()+
		`($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
		a.Hash[:], b.Hash[:], []byte(b.Tenant), []byte(b.UserID), b.CreatedAt.UnixMicro(), b.LastSeen.UnixMicro(),
		b.ExpiresAt.UnixMicro(), int64(b.IdleTimeout), []byte{}, []byte{}, int64(0)).Scan(&rotated); err != nil || !rotated {
		t.Fatalf("session_rotate: %v, %v", rotated, err)
	}

	done := make(chan lineageResult, 1)
	go func() {
		s, rot, err := st.Sessions.DeleteLineage(ctx, a.Hash, session.MaxLineageHops)
		done <- lineageResult{s, rot, err}
	}()
	// Wait until DeleteLineage waits for a lock the rotation holds.
	for deadline := time.Now().Add(10 * time.Second); ; {
		var waiting bool
		if err := testPool(t).QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE wait_event_type = 'Lock' AND position($1 in query) > 0)`, st.Schema()).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting {
			break
		}
		select {
		case r := <-done:
			t.Fatalf("DeleteLineage did not wait for the rotation under way: %+v", r)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("DeleteLineage never waited for the rotation under way")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := tx.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil || r.s.Hash != b.Hash || !r.rotated {
		t.Fatalf("DeleteLineage(a) = %s, rotated %v, %v; want b, rotated", r.s.Hash, r.rotated, r.err)
	}
	for _, h := range []session.Hash{a.Hash, b.Hash} {
		if s, err := st.Sessions.Lookup(ctx, h); err == nil {
			t.Errorf("Lookup(%s) = session %s after DeleteLineage", h, s.Hash)
		} else if !errors.Is(err, session.ErrNotFound) {
			t.Errorf("Lookup(%s): %v", h, err)
		}
	}
}
