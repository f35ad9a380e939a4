package sqlitestore_test

import (
	"bytes"
	"context"
	"testing"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/store/sqlitestore"
)

var tamperKey = bytes.Repeat([]byte{0x7e}, audit.MinKeySize)

// tamperLog returns a Log over s's audit store with n events recorded for
// "acme" and for "other".
func tamperLog(t *testing.T, s *sqlitestore.Store, n int) *audit.Log {
	t.Helper()
	l, err := audit.New(audit.Config{Store: s.Audit, Key: tamperKey})
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		for _, tenant := range []string{"acme", "other"} {
			if _, err := l.Record(context.Background(), audit.Event{
				Tenant: tenant, Actor: audit.Actor{Kind: audit.ActorUser, ID: "u1", Email: "alice@example.com"},
				Action: audit.LoginSucceeded, Target: "u1", IP: "198.51.100.4", UserAgent: "Mozilla/5.0",
				Outcome: audit.Success, Reason: "ok", Meta: map[string]string{"method": "password"},
			}); err != nil {
				t.Fatalf("Record: %v", err)
			}
		}
	}
	return l
}

// A Log that appended Seq 1…5 remembers its head, so that deleting the
// newest events is reported ("missing events", see the package
// documentation of audit). But the next Record on that Log meets the
// truncated head (ErrConflict), takes it as the new head and chains onto
// it, reusing Seq 4: from then on the same Log's Verify reports a whole
// chain, and the deletion of events it appended itself is laundered by the
// very next login attempt.
func TestAuditTamper_SQLiteTruncationLaunderedByNextRecord(t *testing.T) {
	s := openStore(t)
	l := tamperLog(t, s, 5)
	ctx := context.Background()
	db := s.DB()
	for _, stmt := range []string{
		`DELETE FROM guard_audit_tail WHERE tenant = 'acme' AND seq > 3`,
		`DELETE FROM guard_audit_events WHERE tenant = 'acme' AND seq > 3`,
		`UPDATE guard_audit_heads SET seq = 3, mac = (SELECT mac FROM guard_audit_tail WHERE tenant = 'acme' AND seq = 3) WHERE tenant = 'acme'`,
	} {
		if _, err := db.Exec(stmt); err != nil {
			t.Fatalf("%s: %v", stmt, err)
		}
	}
	rep, err := l.Verify(ctx, "acme")
	if err != nil || rep.OK || rep.FirstBad != 4 || rep.Reason != "missing events" {
		t.Fatalf("Verify right after the truncation = %+v, %v; want FirstBad 4, missing events", rep, err)
	}
	e, recErr := l.Record(ctx, audit.Event{Tenant: "acme", Action: audit.LoginFailed, Outcome: audit.Failure, Reason: "bad_password"})
	rep, err = l.Verify(ctx, "acme")
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if recErr == nil && rep.OK {
		t.Errorf("after truncating Seq 4 and 5 (appended by this Log), Record was accepted as Seq %d and Verify = %+v: "+
			"the truncation is no longer reported", e.Seq, rep)
	}
}

// After a purge, Verify starts its walk after the checkpoint (Query with
// After = checkpoint Seq), so a row inserted with a Seq at or below the
// checkpoint is never checked, while Query and Export, which start at the
// beginning of the table, return it as part of the log. Whoever can write
// to the database can thus add a made-up event (here a successful sign-in
// by alice) to any tenant that has had retention applied, and Verify still
// reports the chain whole.
func TestAuditTamper_SQLiteForgedEventBelowCheckpointPassesVerify(t *testing.T) {
	s := openStore(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l, err := audit.New(audit.Config{Store: s.Audit, Key: tamperKey, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for range 5 {
		now = now.Add(time.Hour)
		if _, err := l.Record(ctx, audit.Event{Tenant: "acme", Action: audit.LoginFailed, Outcome: audit.Failure, Reason: "bad_password"}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := l.Purge(ctx, "acme", now.Add(-90*time.Minute)); err != nil || n != 3 {
		t.Fatalf("Purge = %d, %v; want 3", n, err)
	}
	if _, err := s.DB().Exec(`INSERT INTO guard_audit_tail (` + eventColsForTest + `)
		SELECT tenant, 2, 'forged', time, 'user', 'alice', 'alice@example.com', 'login.succeeded', target, '203.0.113.66',
			user_agent, 'success', '', meta, prev_mac, mac FROM guard_audit_tail WHERE tenant = 'acme' AND seq = 4`); err != nil {
		t.Fatal(err)
	}
	page, err := l.Query(ctx, "acme", audit.Query{})
	if err != nil {
		t.Fatal(err)
	}
	shown := false
	for _, e := range page.Events {
		shown = shown || e.ID == "forged"
	}
	rep, err := l.Verify(ctx, "acme")
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if shown && rep.OK {
		t.Errorf("Query shows a forged event (Seq 2, below the checkpoint at 3) and Verify = %+v", rep)
	}
}

const eventColsForTest = `tenant, seq, id, time, actor_kind, actor_id, actor_email, action, target, ip, user_agent, outcome, reason, meta, prev_mac, mac`
