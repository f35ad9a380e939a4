package guard_test

import (
	"context"
	"errors"
	"strconv"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/store/memstore"
)

// A purge whose record failed stays accounted for when the next PurgeAudit
// comes within 10 minutes (a host retrying the ErrUnavailable, or Maintain
// on another replica) and purges further: that purge's record counts the
// events from the newest purge on record, the unrecorded one's included, so
// that the audit.purged records account for every event purged.
func TestPurgeRetriedSoonCoversUnrecordedPurge(t *testing.T) {
	st := memstore.New().Stores()
	fa := &failingAudit{Audit: st.Audit.(*memstore.Audit)}
	down := &downAfterPurge{failingAudit: fa}
	st.Audit = down
	g, c := retentionTenant(t, st) // Seq 1: tenant.created at t0
	ctx := context.Background()
	sys := guard.System("cron")
	t0 := c.Now()
	for i := range 4 { // Seq 2..5, one a day
		c.Advance(24 * time.Hour)
		if _, err := g.CreateUser(ctx, sys, guard.NewUser{Tenant: tenantID, Email: "u" + strconv.Itoa(i) + "@example.test", Name: "Some Body"}); err != nil {
			t.Fatal(err)
		}
	}
	c.Advance(time.Hour)
	// Purge Seq 1..3; its record fails.
	down.armed = true
	if _, err := g.PurgeAudit(ctx, sys, tenantID, t0.Add(2*24*time.Hour+time.Minute)); !errors.Is(err, guard.ErrUnavailable) {
		t.Fatalf("PurgeAudit with the record failing = %v, want ErrUnavailable", err)
	}
	down.armed = false
	fa.set(false)
	// Retried a minute later with a later cut: purges Seq 4.
	c.Advance(time.Minute)
	if n, err := g.PurgeAudit(ctx, sys, tenantID, t0.Add(3*24*time.Hour+time.Minute)); err != nil || n != 1 {
		t.Fatalf("second PurgeAudit = %d, %v; want 1, nil", n, err)
	}
	// Long after: Maintain would record any purge still missing.
	c.Advance(time.Hour)
	if _, err := g.Maintain(ctx, sys, guard.MaintainOptions{}); err != nil {
		t.Fatal(err)
	}
	cp, err := fa.Checkpoint(ctx, tenantID)
	if err != nil || cp.Seq != 4 {
		t.Fatalf("checkpoint %+v, %v; want Seq 4", cp, err)
	}
	// Every purged event must be covered by some audit.purged record.
	recorded := 0
	for _, e := range purgeRecords(t, g) {
		n, _ := strconv.Atoi(e.Meta["events"])
		recorded += n
		t.Logf("audit.purged reason=%q meta=%v", e.Reason, e.Meta)
	}
	if recorded != int(cp.Seq) {
		t.Errorf("%d events purged (checkpoint Seq %d) but the audit.purged records account for %d: "+
			"the purge whose record failed is never recorded", cp.Seq, cp.Seq, recorded)
	}
}
