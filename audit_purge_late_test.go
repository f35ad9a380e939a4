package guard_test

import (
	"context"
	"crypto/rand"
	"strconv"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/store/memstore"
)

// downAfterPurge is an audit store that goes down (every Append fails)
// right after a Purge, when armed.
type downAfterPurge struct {
	*failingAudit
	armed bool
}

func (d *downAfterPurge) Purge(ctx context.Context, tenant string, cp audit.Checkpoint) error {
	if err := d.failingAudit.Purge(ctx, tenant, cp); err != nil {
		return err
	}
	d.set(d.armed)
	return nil
}

// retentionTenant returns a Guard on st, with its clock, and the tenant
// created with an audit retention of 30 days.
func retentionTenant(t *testing.T, st guard.Stores) (*guard.Guard, *clock) {
	t.Helper()
	c := newClock()
	g, err := guard.New(guard.Config{Stores: st, AuditKey: auditKey, Hasher: fastHasher, Now: c.Now, Rand: rand.Reader})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.CreateTenant(context.Background(), guard.System("cron"), tenantID, "Acme", guard.Policy{AuditRetention: 30 * 24 * time.Hour}); err != nil {
		t.Fatal(err)
	}
	return g, c
}

// purgeRecords returns the tenant's audit.purged events, oldest first.
func purgeRecords(t *testing.T, g *guard.Guard) []audit.Event {
	t.Helper()
	p, err := g.QueryAudit(context.Background(), guard.System("test"), tenantID,
		audit.Query{Action: string(audit.AuditPurged), Limit: audit.MaxLimit})
	if err != nil {
		t.Fatal(err)
	}
	return p.Events
}

// A purge whose record failed is recorded late (AUDITOPS-4): not while its
// record may still be on its way (10 minutes), then once, by the next
// Maintain, counting from the purge on record before it; a purge on record
// is never recorded again.
func TestPurgeRecordedLate(t *testing.T) {
	st := memstore.New().Stores()
	fa := &failingAudit{Audit: st.Audit.(*memstore.Audit)}
	down := &downAfterPurge{failingAudit: fa}
	st.Audit = down
	g, c := retentionTenant(t, st)
	ctx := context.Background()
	sys := guard.System("cron")
	day := func() {
		c.Advance(24 * time.Hour)
		if _, err := g.CreateUser(ctx, sys, guard.NewUser{Tenant: tenantID, Email: strconv.FormatInt(c.Now().Unix(), 10) + "@example.test", Name: "Some Body"}); err != nil {
			t.Fatal(err)
		}
	}
	maintain := func(wantErr bool) {
		t.Helper()
		if _, err := g.Maintain(ctx, sys, guard.MaintainOptions{}); (err != nil) != wantErr {
			t.Fatalf("Maintain = %v, want error %v", err, wantErr)
		}
	}
	for range 3 {
		day()
	}
	// A first purge, recorded: the tenant's creation and the first day's
	// user (Seq 1 and 2).
	c.Advance(28*24*time.Hour + time.Hour)
	maintain(false)
	recs := purgeRecords(t, g)
	if len(recs) != 1 || recs[0].Meta["through"] != "2" || recs[0].Meta["events"] != "2" {
		t.Fatalf("first purge recorded as %+v, want events 2 through 2", recs)
	}
	// Later runs with nothing to purge record nothing: the purge is on record.
	c.Advance(time.Hour)
	maintain(false)
	if n := len(purgeRecords(t, g)); n != 1 {
		t.Fatalf("%d purge records after a run with nothing to purge, want 1", n)
	}
	// A second purge (the users of the next two days, Seq 3 and 4) whose
	// record fails.
	c.Advance(2 * 24 * time.Hour)
	down.armed = true
	maintain(true)
	fa.set(false)
	cp, err := fa.Checkpoint(ctx, tenantID)
	if err != nil || cp.Seq != 4 {
		t.Fatalf("checkpoint %+v, %v; want Seq 4", cp, err)
	}
	// Not yet: its record may be on its way from another replica.
	c.Advance(5 * time.Minute)
	maintain(false)
	if n := len(purgeRecords(t, g)); n != 1 {
		t.Fatalf("%d purge records 5 minutes after the purge, want 1", n)
	}
	c.Advance(10 * time.Minute)
	maintain(false)
	recs = purgeRecords(t, g)
	if len(recs) != 2 {
		t.Fatalf("%d purge records, want 2: the late one", len(recs))
	}
	late := recs[1]
	if late.Reason != "recorded_late" || late.Outcome != audit.Success || late.Meta["events"] != "2" || late.Meta["through"] != "4" ||
		late.Meta["purged_at"] != cp.At.Format(time.RFC3339Nano) || late.Actor.Kind != audit.ActorSystem {
		t.Errorf("late record %+v, want recorded_late, events 2 through 4, purged_at %s", late, cp.At.Format(time.RFC3339Nano))
	}
	// Once.
	c.Advance(time.Hour)
	maintain(false)
	if n := len(purgeRecords(t, g)); n != 2 {
		t.Errorf("%d purge records after another run, want 2", n)
	}
	if rep, err := g.VerifyAudit(ctx, sys, tenantID); err != nil || !rep.OK {
		t.Errorf("VerifyAudit = %+v, %v", rep, err)
	}
}
