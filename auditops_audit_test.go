package guard_test

// Auditor tests of the audit log under failure and operations (axis
// "auditops"): the facade's retention. Each test fails on the current code
// for the reason its comment gives.

import (
	"context"
	"errors"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/store/memstore"
)

// purgeThenDown is an audit store that goes down (every Append fails)
// right after a Purge succeeded: a database outage, or a failover, in the
// moment between the retention's delete and its audit.purged record.
type purgeThenDown struct{ *failingAudit }

func (p purgeThenDown) Purge(ctx context.Context, tenant string, cp audit.Checkpoint) error {
	if err := p.failingAudit.Purge(ctx, tenant, cp); err != nil {
		return err
	}
	p.set(true)
	return nil
}

// Severity: low. PurgeAudit: "The purge is itself recorded (audit.purged,
// Meta events: the number deleted)", and DESIGN.md: "An audit event is
// written before the action it records is reported as done". PurgeAudit
// (audits.go) deletes first and records afterwards; when the record fails
// (the audit store down a moment), the events are gone, PurgeAudit answers
// ErrUnavailable, and nothing is ever recorded: the next run (Maintain, or
// the host retrying PurgeAudit) finds nothing older than the cut — Maintain
// skips the purge, a retried PurgeAudit records events 0. The deletion of
// the tenant's oldest events is then nowhere in its log. Expected: once
// the store is back, the log holds an audit.purged event that counts the
// deleted events (e.g. the purge recorded before the delete, as
// ExportAudit records before it exports, or the unrecorded checkpoint
// recorded by the next run).
func TestAuditAuditOps_4_PurgeLeftUnrecordedAfterAStoreBlip(t *testing.T) {
	st := memstore.New().Stores()
	fa := &failingAudit{Audit: st.Audit.(*memstore.Audit)}
	st.Audit = purgeThenDown{fa}
	g, c := retentionTenant(t, st)
	ctx := context.Background()
	sys := guard.System("cron")
	for _, email := range []string{"ada@example.test", "bob@example.test"} {
		if _, err := g.CreateUser(ctx, sys, guard.NewUser{Tenant: tenantID, Email: email, Name: "Some Body"}); err != nil {
			t.Fatal(err)
		}
	}
	c.Advance(31 * 24 * time.Hour)
	if _, err := g.Maintain(ctx, sys, guard.MaintainOptions{}); !errors.Is(err, guard.ErrUnavailable) {
		t.Fatalf("Maintain with the audit store down after the purge = %v, want ErrUnavailable", err)
	}
	cp, err := fa.Checkpoint(ctx, tenantID)
	if err != nil || cp.Seq == 0 {
		t.Fatalf("checkpoint %+v, %v: the purge did not happen", cp, err)
	}
	fa.set(false)
	c.Advance(time.Hour)
	if _, err := g.Maintain(ctx, sys, guard.MaintainOptions{}); err != nil {
		t.Fatalf("Maintain once the store is back: %v", err)
	}
	purged := 0
	var after uint64
	for {
		p, err := g.QueryAudit(ctx, sys, tenantID, audit.Query{Action: string(audit.AuditPurged), After: after, Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range p.Events {
			if e.Outcome == audit.Success && e.Meta["events"] != "0" {
				purged++
			}
		}
		if p.Next == 0 {
			break
		}
		after = p.Next
	}
	if purged == 0 {
		t.Errorf("the purge of %d events (checkpoint at %v) is not in the log: no audit.purged event counts them", cp.Seq, cp.At)
	}
}
