package guard_test

import (
	"context"
	"errors"
	"net/netip"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
)

// purgeAddr is the client address the purge tests present keys from.
var purgeAddr = netip.MustParseAddr("198.51.100.20")

// purgeKeys are the keys of the purge tests, made on f's clock:
// revoked 91 days, expired about 91 days, revoked 89 days before the
// clock's time when it returns, and one live.
type purgeKeys struct {
	revOld, expired, revRecent, live auth.APIKey
	revOldKey                        string // revOld in clear
}

func makePurgeKeys(t *testing.T, f *fixture) purgeKeys {
	t.Helper()
	sys := guard.System("test")
	mk := func(name string, expires time.Time) (string, auth.APIKey) {
		t.Helper()
		key, k, err := f.g.CreateAPIKey(f.ctx, sys, guard.NewAPIKey{Tenant: tenantID, Name: name, ExpiresAt: expires})
		if err != nil {
			t.Fatal(err)
		}
		return key, k
	}
	revoke := func(k *auth.APIKey) {
		t.Helper()
		if err := f.g.RevokeAPIKey(f.ctx, sys, tenantID, k.ID); err != nil {
			t.Fatal(err)
		}
		k.RevokedAt = f.clock.Now()
	}
	var p purgeKeys
	p.revOldKey, p.revOld = mk("rotated", time.Time{})
	revoke(&p.revOld)
	_, p.expired = mk("short-lived", f.clock.Now().Add(time.Hour))
	_, p.live = mk("live", time.Time{})
	f.clock.Advance(2 * 24 * time.Hour)
	_, p.revRecent = mk("rotated later", time.Time{})
	revoke(&p.revRecent)
	f.clock.Advance(89 * 24 * time.Hour)
	return p
}

// keyIDsOf lists the IDs of the tenant's stored keys.
func (f *fixture) keyIDsOf(t *testing.T) map[string]bool {
	t.Helper()
	ks, err := f.mem.APIKeys.ListAPIKeys(f.ctx, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[string]bool{}
	for _, k := range ks {
		ids[k.ID] = true
	}
	return ids
}

// Maintain purges the keys revoked or expired more than
// Config.APIKeyRetention ago (90 days by default) and keeps the others,
// records the purge once (apikey.purged, by the system principal it runs
// as, Meta count and before), and a second run purges and records
// nothing. A purged key presented again is unknown: refused as any
// unknown key, recorded nowhere.
func TestMaintainPurgesOldKeys(t *testing.T) {
	f := newFixture(t)
	p := makePurgeKeys(t, f)
	cron := guard.System("cron")
	rep, err := f.g.Maintain(f.ctx, cron, guard.MaintainOptions{})
	if err != nil {
		t.Fatalf("Maintain: %v", err)
	}
	if n := rep.KeysPurged[tenantID]; n != 2 {
		t.Errorf("KeysPurged = %d, want 2 (revoked 91 days ago, expired 91 days ago)", n)
	}
	ids := f.keyIDsOf(t)
	for _, k := range []auth.APIKey{p.revOld, p.expired} {
		if ids[k.ID] {
			t.Errorf("key %s (%s) kept after Maintain, want it purged", k.ID, k.Name)
		}
	}
	for _, k := range []auth.APIKey{p.revRecent, p.live} {
		if !ids[k.ID] {
			t.Errorf("key %s (%s) purged, want it kept", k.ID, k.Name)
		}
	}
	evs := f.events(t, audit.APIKeyPurged)
	if len(evs) != 1 {
		t.Fatalf("%d apikey.purged events, want 1", len(evs))
	}
	before := f.clock.Now().Add(-guard.DefaultAPIKeyRetention).UTC().Format(time.RFC3339)
	if e := evs[0]; e.Actor.Kind != audit.ActorSystem || e.Actor.ID != "cron" || e.Outcome != audit.Success ||
		e.Meta["count"] != "2" || e.Meta["before"] != before {
		t.Errorf("apikey.purged = %+v, want by system cron, Meta count 2, before %s", e, before)
	}

	rep, err = f.g.Maintain(f.ctx, cron, guard.MaintainOptions{})
	if err != nil {
		t.Fatalf("second Maintain: %v", err)
	}
	if n, ok := rep.KeysPurged[tenantID]; ok {
		t.Errorf("second Maintain: KeysPurged = %d, want none", n)
	}
	if n := len(f.events(t, audit.APIKeyPurged)); n != 1 {
		t.Errorf("second Maintain: %d apikey.purged events, want still 1", n)
	}

	denied := len(f.events(t, audit.APIKeyDenied))
	if _, err := f.g.AuthenticateAPIKey(f.ctx, p.revOldKey, purgeAddr); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("purged key presented: %v, want ErrUnauthenticated", err)
	}
	if n := len(f.events(t, audit.APIKeyDenied)); n != denied {
		t.Errorf("purged key presented: %d apikey.denied events, want none (an unknown key has no tenant)", n-denied)
	}
}

// A negative Config.APIKeyRetention keeps revoked and expired keys
// forever: Maintain purges none and records no purge.
func TestMaintainPurgeNegativeRetentionKeepsKeys(t *testing.T) {
	f := newFixture(t, func(c *guard.Config) { c.APIKeyRetention = -1 })
	p := makePurgeKeys(t, f)
	f.clock.Advance(10 * 365 * 24 * time.Hour)
	rep, err := f.g.Maintain(f.ctx, guard.System("cron"), guard.MaintainOptions{})
	if err != nil {
		t.Fatalf("Maintain: %v", err)
	}
	if n, ok := rep.KeysPurged[tenantID]; ok {
		t.Errorf("KeysPurged = %d with a negative retention, want none", n)
	}
	ids := f.keyIDsOf(t)
	for _, k := range []auth.APIKey{p.revOld, p.expired, p.revRecent, p.live} {
		if !ids[k.ID] {
			t.Errorf("key %s (%s) purged with a negative retention", k.ID, k.Name)
		}
	}
	if n := len(f.events(t, audit.APIKeyPurged)); n != 0 {
		t.Errorf("%d apikey.purged events with a negative retention, want 0", n)
	}
}

// A retention set in Config replaces the default: with 30 days, the key
// revoked 89 days ago goes too.
func TestMaintainPurgeConfiguredRetention(t *testing.T) {
	f := newFixture(t, func(c *guard.Config) { c.APIKeyRetention = 30 * 24 * time.Hour })
	p := makePurgeKeys(t, f)
	rep, err := f.g.Maintain(f.ctx, guard.System("cron"), guard.MaintainOptions{})
	if err != nil {
		t.Fatalf("Maintain: %v", err)
	}
	if n := rep.KeysPurged[tenantID]; n != 3 {
		t.Errorf("KeysPurged = %d with a retention of 30 days, want 3", n)
	}
	if ids := f.keyIDsOf(t); len(ids) != 1 || !ids[p.live.ID] {
		t.Errorf("keys left = %v, want only the live one %s", ids, p.live.ID)
	}
}

// When the purge cannot be recorded, Maintain fails the tenant with
// ErrUnavailable; the keys are gone all the same (a deletion is not
// undone), and the next run finds none left to purge or record.
func TestMaintainPurgeRecordFails(t *testing.T) {
	var fa *failingAudit
	f := newFixture(t, func(c *guard.Config) {
		fa = &failingAudit{Audit: c.Stores.Audit.(*memstoreAudit)}
		c.Stores.Audit = fa
	})
	p := makePurgeKeys(t, f)
	fa.set(true)
	rep, err := f.g.Maintain(f.ctx, guard.System("cron"), guard.MaintainOptions{})
	fa.set(false)
	if !errors.Is(err, guard.ErrUnavailable) || !errors.Is(rep.Failed[tenantID], guard.ErrUnavailable) {
		t.Fatalf("Maintain with the audit store down = %v (tenant: %v), want ErrUnavailable", err, rep.Failed[tenantID])
	}
	if n := rep.KeysPurged[tenantID]; n != 2 {
		t.Errorf("KeysPurged = %d, want the 2 keys the failed run deleted", n)
	}
	if ids := f.keyIDsOf(t); ids[p.revOld.ID] || ids[p.expired.ID] {
		t.Errorf("keys left = %v, want the old ones gone", ids)
	}
	if _, err := f.g.Maintain(f.ctx, guard.System("cron"), guard.MaintainOptions{}); err != nil {
		t.Fatalf("next Maintain: %v", err)
	}
	if n := len(f.events(t, audit.APIKeyPurged)); n != 0 {
		t.Errorf("%d apikey.purged events, want 0 (the purge's record failed and nothing was left to purge)", n)
	}
}

// A store failure stops the tenant's chores with ErrUnavailable and
// records nothing.
func TestMaintainPurgeStoreFails(t *testing.T) {
	fk := &failingPurge{}
	f := newFixture(t, func(c *guard.Config) {
		fk.APIKeyStore = c.Stores.APIKeys
		c.Stores.APIKeys = fk
	})
	makePurgeKeys(t, f)
	fk.fail = true
	rep, err := f.g.Maintain(f.ctx, guard.System("cron"), guard.MaintainOptions{})
	if !errors.Is(err, guard.ErrUnavailable) || !errors.Is(rep.Failed[tenantID], guard.ErrUnavailable) {
		t.Fatalf("Maintain with PurgeAPIKeys failing = %v (tenant: %v), want ErrUnavailable", err, rep.Failed[tenantID])
	}
	if n := len(f.events(t, audit.APIKeyPurged)); n != 0 {
		t.Errorf("%d apikey.purged events after a failed purge, want 0", n)
	}
	if len(f.keyIDsOf(t)) != 4 {
		t.Error("keys purged by a failed purge")
	}
}

// failingPurge fails PurgeAPIKeys while fail is set (set before the
// Maintain run that reads it, never during).
type failingPurge struct {
	auth.APIKeyStore
	fail bool
}

func (k *failingPurge) PurgeAPIKeys(ctx context.Context, tenant string, before time.Time) (int, error) {
	if k.fail {
		return 0, errDown
	}
	return k.APIKeyStore.PurgeAPIKeys(ctx, tenant, before)
}
