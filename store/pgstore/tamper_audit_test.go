package pgstore_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/store/pgstore"
)

var tamperKey = bytes.Repeat([]byte{0x7e}, audit.MinKeySize)

func tamperEvent(tenant string) audit.Event {
	return audit.Event{
		Tenant: tenant, Actor: audit.Actor{Kind: audit.ActorUser, ID: "u1", Email: "alice@example.com"},
		Action: audit.LoginSucceeded, Target: "u1", IP: "198.51.100.4", UserAgent: "Mozilla/5.0",
		Outcome: audit.Success, Reason: "ok", Meta: map[string]string{"method": "password"},
	}
}

// tamperLog returns a Log over st's audit store with n events recorded for
// "acme" and for "other".
func tamperLog(t *testing.T, st *pgstore.Store, n int) *audit.Log {
	t.Helper()
	l, err := audit.New(audit.Config{Store: st.Audit, Key: tamperKey, Now: func() time.Time {
		return time.Now().In(time.FixedZone("x", 5*3600+1800))
	}})
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		for _, tenant := range []string{"acme", "other"} {
			if _, err := l.Record(t.Context(), tamperEvent(tenant)); err != nil {
				t.Fatalf("Record: %v", err)
			}
		}
	}
	return l
}

func execSQL(t *testing.T, st *pgstore.Store, stmt string) {
	t.Helper()
	stmt = strings.ReplaceAll(stmt, "{t}", pgx.Identifier{st.Schema(), "audit_events"}.Sanitize())
	stmt = strings.ReplaceAll(stmt, "{h}", pgx.Identifier{st.Schema(), "audit_heads"}.Sanitize())
	if _, err := testPool(t).Exec(t.Context(), stmt); err != nil {
		t.Fatalf("%s: %v", stmt, err)
	}
}

// See the SQLite test of the same name: a Log that appended Seq 1…5 and
// then meets a head truncated to 3 chains onto it and forgets the events it
// appended.
func TestAuditTamper_PGTruncationLaunderedByNextRecord(t *testing.T) {
	st := newStore(t)
	l := tamperLog(t, st, 5)
	execSQL(t, st, `DELETE FROM {t} WHERE tenant = 'acme' AND seq > 3`)
	execSQL(t, st, `UPDATE {h} SET seq = 3, mac = (SELECT mac FROM {t} WHERE tenant = 'acme' AND seq = 3) WHERE tenant = 'acme'`)
	rep, err := l.Verify(t.Context(), "acme")
	if err != nil || rep.OK || rep.FirstBad != 4 || rep.Reason != "missing events" {
		t.Fatalf("Verify right after the truncation = %+v, %v; want FirstBad 4, missing events", rep, err)
	}
	e, recErr := l.Record(t.Context(), audit.Event{Tenant: "acme", Action: audit.LoginFailed, Outcome: audit.Failure, Reason: "bad_password"})
	rep, err = l.Verify(t.Context(), "acme")
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if recErr == nil && rep.OK {
		t.Errorf("after truncating Seq 4 and 5 (appended by this Log), Record was accepted as Seq %d and Verify = %+v: "+
			"the truncation is no longer reported", e.Seq, rep)
	}
}

// See the SQLite test of the same name: after a purge, a row inserted with
// a Seq at or below the checkpoint is shown by Query but never verified.
func TestAuditTamper_PGForgedEventBelowCheckpointPassesVerify(t *testing.T) {
	st := newStore(t)
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	l, err := audit.New(audit.Config{Store: st.Audit, Key: tamperKey, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	for range 5 {
		now = now.Add(time.Hour)
		if _, err := l.Record(ctx, audit.Event{Tenant: "acme", Action: audit.LoginFailed, Outcome: audit.Failure, Reason: "bad_password"}); err != nil {
			t.Fatal(err)
		}
	}
	if n, err := l.Purge(ctx, "acme", now.Add(-90*time.Minute)); err != nil || n != 3 {
		t.Fatalf("Purge = %d, %v; want 3", n, err)
	}
	execSQL(t, st, `INSERT INTO {t} SELECT tenant, 2, 'forged', time, 'user', 'alice', 'alice@example.com', 'login.succeeded',
		target, '203.0.113.66', user_agent, 'success', '', meta, prev_mac, mac FROM {t} WHERE tenant = 'acme' AND seq = 4`)
	var buf bytes.Buffer
	if err := l.Export(ctx, "acme", audit.Query{}, &buf, audit.JSONLines); err != nil {
		t.Fatal(err)
	}
	rep, err := l.Verify(ctx, "acme")
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if strings.Contains(buf.String(), `"alice@example.com"`) && rep.OK {
		t.Errorf("Export holds a forged event (Seq 2, below the checkpoint at 3) and Verify = %+v", rep)
	}
}
