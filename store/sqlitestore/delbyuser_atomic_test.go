package sqlitestore_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/guardhq/guard/session"
)

// Sessions.DeleteByUser runs its two DELETEs (the user's sessions, then
// the user's tombstones) in one transaction, as pgstore's
// session_delete_by_user2 does in one call: when the second fails (the
// caller's context ending between them, SQLITE_BUSY from another process,
// here a trigger that refuses it) the error leaves every session in place,
// so that the facade, which reports the revocation failed and records
// nothing, is right.
func TestDeleteByUserIsOneTransaction(t *testing.T) {
	s := openFile(t, filepath.Join(t.TempDir(), "guard.db"))
	ctx := context.Background()
	sess := func(b byte) session.Session {
		return session.Session{Hash: session.Hash{b, 7}, Tenant: "acme", UserID: "u", CreatedAt: t0.Add(time.Duration(b) * time.Second),
			LastSeen: t0.Add(time.Duration(b) * time.Second), ExpiresAt: t0.Add(24 * time.Hour), IdleTimeout: time.Hour}
	}
	a, b, c := sess(1), sess(2), sess(3)
	if _, err := s.Sessions.Create(ctx, a, session.Limit{}); err != nil {
		t.Fatal(err)
	}
	// a rotated to b: a's tombstone, with b as successor.
	if err := s.Sessions.Rotate(ctx, a.Hash, b); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Sessions.Create(ctx, c, session.Limit{}); err != nil {
		t.Fatal(err)
	}
	// The second statement (a's tombstone does not lead to c) fails.
	if _, err := s.DB().ExecContext(ctx, `CREATE TRIGGER review_refuse BEFORE DELETE ON guard_session_evictions
		BEGIN SELECT RAISE(ABORT, 'refused by the test'); END`); err != nil {
		t.Fatal(err)
	}
	_, err := s.Sessions.DeleteByUser(ctx, "acme", "u", c.Hash)
	if err == nil {
		t.Fatal("DeleteByUser succeeded: the injected failure did not happen")
	}
	left, lerr := s.Sessions.ListByUser(ctx, "acme", "u")
	if lerr != nil {
		t.Fatal(lerr)
	}
	if len(left) != 2 {
		t.Errorf("DeleteByUser failed (%v) yet the user has %d sessions left, want both (b and c): the sessions' DELETE committed alone", err, len(left))
	}
}
