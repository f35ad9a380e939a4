package guard_test

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/store/memstore"
	"golang.org/x/crypto/bcrypt"
)

// cpAfterPurge is an audit store whose Checkpoint fails once right after
// a Purge (noThrough), or whose Appends all fail right after one (down).
type cpAfterPurge struct {
	*failingAudit
	mu              sync.Mutex
	noThrough, down bool
	cpFails         bool
}

func (d *cpAfterPurge) Purge(ctx context.Context, tenant string, cp audit.Checkpoint) error {
	if err := d.failingAudit.Purge(ctx, tenant, cp); err != nil {
		return err
	}
	d.mu.Lock()
	d.cpFails = d.noThrough
	d.mu.Unlock()
	d.set(d.down)
	return nil
}

func (d *cpAfterPurge) Checkpoint(ctx context.Context, tenant string) (audit.Checkpoint, error) {
	d.mu.Lock()
	fail := d.cpFails
	d.cpFails = false
	d.mu.Unlock()
	if fail {
		return audit.Checkpoint{}, errDown
	}
	return d.failingAudit.Checkpoint(ctx, tenant)
}

// The newest purge on record decides whether the last purge is on record:
// an older record without Meta through (its checkpoint could not be read
// then) does not hide a purge that is missing its record.
func TestReviewA_1_LatePurgeBehindOlderRecord(t *testing.T) {
	st := memstore.New().Stores()
	fa := &failingAudit{Audit: st.Audit.(*memstore.Audit)}
	d := &cpAfterPurge{failingAudit: fa}
	st.Audit = d
	g, c := retentionTenant(t, st)
	ctx := context.Background()
	sys := guard.System("cron")
	t0 := c.Now()      // Seq 1: the tenant
	for i := range 3 { // Seq 2, 3, 4: one user a day
		c.Advance(24 * time.Hour)
		if _, err := g.CreateUser(ctx, sys, guard.NewUser{Tenant: tenantID, Email: "u" + strconv.Itoa(i) + "@example.test", Name: "Some Body"}); err != nil {
			t.Fatal(err)
		}
	}
	c.Advance(24 * time.Hour)
	purge := func(before time.Time, wantErr bool) {
		t.Helper()
		if _, err := g.PurgeAudit(ctx, sys, tenantID, before); (err != nil) != wantErr {
			t.Fatalf("PurgeAudit = %v, want error %v", err, wantErr)
		}
		c.Advance(time.Minute)
	}
	// Seq 1 purged, recorded without through (Seq 5).
	d.noThrough = true
	purge(t0.Add(12*time.Hour), false)
	d.noThrough = false
	// Seq 2 purged, recorded with through 2 (Seq 6).
	purge(t0.Add(36*time.Hour), false)
	// Seq 3 purged, unrecorded.
	d.down = true
	purge(t0.Add(60*time.Hour), true)
	d.down = false
	fa.set(false)
	c.Advance(15 * time.Minute)
	purge(t0, false) // nothing to purge: records the missing one first
	recs := purgeRecords(t, g)
	var late []audit.Event
	for _, e := range recs {
		if e.Reason == "recorded_late" {
			late = append(late, e)
		}
	}
	if len(late) != 1 || late[0].Meta["through"] != "3" || late[0].Meta["events"] != "1" {
		t.Fatalf("late records %+v (all: %+v), want one, through 3, events 1", late, recs)
	}
}

// A purge the host made (PurgeAudit) in a tenant without an audit
// retention, whose record failed, is recorded late by the next Maintain,
// as PurgeAudit's documentation says.
func TestReviewA_2_LatePurgeWithoutRetention(t *testing.T) {
	st := memstore.New().Stores()
	fa := &failingAudit{Audit: st.Audit.(*memstore.Audit)}
	d := &cpAfterPurge{failingAudit: fa}
	st.Audit = d
	c := newClock()
	g, err := guard.New(guard.Config{Stores: st, AuditKey: auditKey, Hasher: fastHasher, Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	sys := guard.System("cron")
	if _, err := g.CreateTenant(ctx, sys, tenantID, "Acme", guard.Policy{}); err != nil {
		t.Fatal(err)
	}
	c.Advance(24 * time.Hour)
	d.down = true
	if _, err := g.PurgeAudit(ctx, sys, tenantID, c.Now().Add(-time.Hour)); err == nil {
		t.Fatal("PurgeAudit with its record failing succeeded")
	}
	d.down = false
	fa.set(false)
	c.Advance(15 * time.Minute)
	if _, err := g.Maintain(ctx, sys, guard.MaintainOptions{}); err != nil {
		t.Fatal(err)
	}
	recs := purgeRecords(t, g)
	if len(recs) != 1 || recs[0].Reason != "recorded_late" {
		t.Fatalf("purge records %+v, want the late one", recs)
	}
}

// The break-glass owner's password sign-in refused under RequireSSO (no
// second factor to take it on) changes nothing either: no rehash of an
// outdated hash, as for any other sign-in RequireSSO refuses (PW-5).
func TestReviewA_3_BreakGlassRefusedNoRehash(t *testing.T) {
	s := newSSOSite(t)
	ctx, sys := t.Context(), guard.System("test")
	pat, _ := s.userWithTOTP(t, "pat@corp.example", rbac.Owner)
	if _, err := s.g.CreateUser(ctx, sys, guard.NewUser{Tenant: tenantID, Email: "ann@corp.example", Roles: []string{rbac.Owner}}); err != nil {
		t.Fatal(err)
	}
	old, err := bcrypt.GenerateFromPassword([]byte(ownerPW), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	cur, err := s.stores.Users.User(ctx, tenantID, pat.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.stores.UserUpdates.RehashPassword(ctx, tenantID, pat.ID, cur.PasswordHash, string(old)); err != nil {
		t.Fatal(err)
	}
	tn, _ := s.g.Tenant(ctx, tenantID)
	if _, err := s.g.SetPolicy(ctx, sys, tenantID, guard.Policy{RequireSSO: true, BreakGlassUser: pat.ID}, tn.Version); err != nil {
		t.Fatal(err)
	}
	// Its last factor gone (Guard refuses to remove it while the user is
	// the break-glass owner; a race, or the store, may still): the
	// break-glass sign-in is refused.
	fs, err := s.g.Factors(ctx, sys, tenantID, pat.ID)
	if err != nil || len(fs) != 1 {
		t.Fatalf("factors %+v, %v", fs, err)
	}
	if _, err := s.stores.MFA.Factors.DeleteFactor(ctx, tenantID, pat.ID, fs[0].ID); err != nil {
		t.Fatal(err)
	}
	_, err = s.g.Login(ctx, guard.LoginRequest{Tenant: tenantID, Email: pat.Email, Password: ownerPW, IP: "203.0.113.5", UserAgent: "test"})
	if !errors.Is(err, guard.ErrSSORequired) {
		t.Fatalf("break-glass sign-in without a second factor: %v, want ErrSSORequired", err)
	}
	if now, _ := s.stores.Users.User(ctx, tenantID, pat.ID); now.PasswordHash != string(old) {
		t.Errorf("a refused break-glass sign-in rewrote the stored hash")
	}
	if evs := s.events(t, audit.PasswordRehashed); len(evs) != 0 {
		t.Errorf("password.rehashed recorded for a refused sign-in: %+v", evs)
	}
}
