package guard_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/session"
)

// Maintain runs each tenant's scheduled chores as its policy asks, and
// only those: dormant users deactivated, audit events past retention
// purged (the chain still verifies), nothing recorded when there is
// nothing to do; a failing tenant is reported, the others go on.
func TestMaintain(t *testing.T) {
	tenants := &flakyTenants{}
	f := newFixture(t, func(c *guard.Config) {
		tenants.TenantStore = c.Stores.Tenants
		c.Stores.Tenants = tenants
	})
	sys := guard.System("cron")
	tn, err := f.g.Tenant(f.ctx, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	pol := tn.Policy
	pol.AutoDeactivateDormant, pol.AuditRetention = true, 30*24*time.Hour
	if _, err := f.g.SetPolicy(f.ctx, guard.System("admin"), tenantID, pol, tn.Version); err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.CreateTenant(f.ctx, guard.System("admin"), "globex", "Globex", guard.Policy{}); err != nil {
		t.Fatal(err)
	}
	dormant := f.createUser(t, "dora@example.test", ownerPW)
	other, err := f.g.CreateUser(f.ctx, guard.System("admin"), guard.NewUser{Tenant: "globex", Email: "gus@globex.example", Password: ownerPW})
	if err != nil {
		t.Fatal(err)
	}
	admin, _ := f.userWithRoles(t, "ada@example.test", "owner")
	// A key of a user deactivated before DeactivateUser revoked keys (set
	// in the store here), and one the host made: the first goes.
	kim, _ := f.userWithRoles(t, "kim@example.test", "admin")
	_, kimKey, err := f.g.CreateAPIKey(f.ctx, kim, guard.NewAPIKey{Tenant: tenantID, Name: "kim's export"})
	if err != nil {
		t.Fatal(err)
	}
	_, hostKey, err := f.g.CreateAPIKey(f.ctx, guard.System("bootstrap"), guard.NewAPIKey{Tenant: tenantID, Name: "host"})
	if err != nil {
		t.Fatal(err)
	}
	if err := f.mem.Users.SetStatus(f.ctx, tenantID, kim.UserID, auth.StatusDeactivated); err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.Maintain(f.ctx, admin, guard.MaintainOptions{}); !errors.Is(err, guard.ErrForbidden) {
		t.Errorf("Maintain by a user: %v, want ErrForbidden", err)
	}

	f.clock.Advance(31 * 24 * time.Hour)
	rep, err := f.g.Maintain(f.ctx, sys, guard.MaintainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Tenants != 2 || !slices.Equal(rep.Deactivated[tenantID], []string{dormant.ID}) || len(rep.Deactivated["globex"]) != 0 ||
		rep.Purged[tenantID] == 0 || rep.Purged["globex"] != 0 || rep.KeysRevoked[tenantID] != 1 || len(rep.Failed) != 0 {
		t.Fatalf("report %+v", rep)
	}
	keys, err := f.g.ListAPIKeys(f.ctx, sys, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if revoked := !k.RevokedAt.IsZero(); revoked != (k.ID == kimKey.ID) {
			t.Errorf("key %s (kim's %v, the host's %v) revoked %v", k.Name, k.ID == kimKey.ID, k.ID == hostKey.ID, revoked)
		}
	}
	if u, _ := f.g.User(f.ctx, sys, "globex", other.ID); u.Status != "active" {
		t.Errorf("a dormant user of a tenant without AutoDeactivateDormant: %v", u.Status)
	}
	if rp, err := f.g.VerifyAudit(f.ctx, sys, tenantID); err != nil || !rp.OK {
		t.Errorf("the chain after the purge: %+v, %v", rp, err)
	}
	count := func() int {
		page, err := f.g.QueryAudit(f.ctx, sys, tenantID, audit.Query{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		return len(page.Events)
	}
	before := count()
	if rep, err := f.g.Maintain(f.ctx, sys, guard.MaintainOptions{}); err != nil || len(rep.Deactivated) != 0 || len(rep.Purged) != 0 {
		t.Errorf("a second run: %+v, %v; want nothing to do", rep, err)
	}
	if n := count(); n != before {
		t.Errorf("a run with nothing to do recorded %d events", n-before)
	}

	f.clock.Advance(time.Second) // past the policy cache
	tenants.fail.Store(true)
	rep, err = f.g.Maintain(f.ctx, sys, guard.MaintainOptions{})
	if !errors.Is(err, guard.ErrUnavailable) || rep.Tenants != 2 || len(rep.Failed) != 2 {
		t.Errorf("with the tenant store failing: %+v, %v; want both tenants reported failed", rep, err)
	}
}

// failingDeleteByUser fails the UserIndex's DeleteByUser while fail is
// set.
type failingDeleteByUser struct {
	session.UserIndex
	fail atomic.Bool
}

func (f *failingDeleteByUser) DeleteByUser(ctx context.Context, tenant, userID string, except session.Hash) ([]session.Session, error) {
	if f.fail.Load() {
		return nil, errors.New("injected")
	}
	return f.UserIndex.DeleteByUser(ctx, tenant, userID, except)
}

// A deactivation stopped by a store failure after the user was
// deactivated (their sessions not yet ended) returns ErrUnavailable and
// leaves the session live; the next Maintain ends it, on record.
func TestMaintainEndsSessionsOfDeactivated(t *testing.T) {
	idx := &failingDeleteByUser{}
	f := newFixture(t, func(c *guard.Config) {
		idx.UserIndex = c.Stores.SessionIndex
		c.Stores.SessionIndex = idx
	})
	sys := guard.System("cron")
	bob, tok := f.userWithRoles(t, "bob@example.test")
	_, annTok := f.userWithRoles(t, "ann@example.test") // active: her session stays
	idx.fail.Store(true)
	if err := f.g.DeactivateUser(f.ctx, guard.System("admin"), tenantID, bob.UserID); !errors.Is(err, guard.ErrUnavailable) {
		t.Fatalf("DeactivateUser with the session store failing: %v, want ErrUnavailable", err)
	}
	idx.fail.Store(false)
	if _, err := f.g.Authenticate(f.ctx, tok); err != nil {
		t.Fatalf("precondition: the session lives on after the failed deactivation (%v)", err)
	}
	rep, err := f.g.Maintain(f.ctx, sys, guard.MaintainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.SessionsOfDeactivated[tenantID] != 1 {
		t.Errorf("SessionsOfDeactivated %v, want 1 in %s", rep.SessionsOfDeactivated, tenantID)
	}
	if _, err := f.g.Authenticate(f.ctx, tok); err == nil {
		t.Error("the deactivated user's session still authenticates after Maintain")
	}
	if _, err := f.g.Authenticate(f.ctx, annTok); err != nil {
		t.Errorf("an active user's session after Maintain: %v", err)
	}
	var got []audit.Event
	for _, e := range f.events(t, audit.SessionRevoked) {
		if e.Target == bob.UserID && e.Meta["reason"] == guard.ReasonDeactivated {
			got = append(got, e)
		}
	}
	if len(got) != 1 || got[0].Meta["sessions_ended"] != "1" || got[0].Actor.Kind != audit.ActorSystem {
		t.Errorf("session.revoked for bob: %+v, want one by the system, reason deactivated, 1 ended", got)
	}
	// Nothing more to do: the next run ends nothing and records nothing.
	before := len(f.events(t, audit.SessionRevoked))
	if rep, err := f.g.Maintain(f.ctx, sys, guard.MaintainOptions{}); err != nil || len(rep.SessionsOfDeactivated) != 0 {
		t.Errorf("second Maintain: %v, %v", rep.SessionsOfDeactivated, err)
	}
	if n := len(f.events(t, audit.SessionRevoked)); n != before {
		t.Errorf("%d more session.revoked events from a Maintain with nothing to do", n-before)
	}
}

// Maintain's destructive chores (the retention purge, the dormant
// deactivations) read the tenant's policy from the store, not from the
// replica's cache: a retention raised on another replica a moment ago
// is in force, and nothing it keeps is purged.
func TestMaintainReadsPolicyFresh(t *testing.T) {
	f := newFixture(t, func(c *guard.Config) { c.PolicyCacheTTL = time.Hour })
	other, err := guard.New(guard.Config{Stores: f.mem.Stores(), AuditKey: auditKey, Hasher: fastHasher, Now: f.clock.Now,
		PolicyCacheTTL: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	set := func(g *guard.Guard, retention time.Duration) {
		t.Helper()
		tn, err := g.Tenant(f.ctx, tenantID)
		if err != nil {
			t.Fatal(err)
		}
		pol := tn.Policy
		pol.AuditRetention = retention
		if _, err := g.SetPolicy(f.ctx, guard.System("admin"), tenantID, pol, tn.Version); err != nil {
			t.Fatal(err)
		}
	}
	set(f.g, 30*24*time.Hour)
	f.createUser(t, adaEmail, ownerPW) // events to keep
	f.clock.Advance(40 * 24 * time.Hour)
	if _, err := f.g.EffectivePolicy(f.ctx, tenantID); err != nil { // cached here: 30 days
		t.Fatal(err)
	}
	set(other, 365*24*time.Hour) // raised on another replica
	rep, err := f.g.Maintain(f.ctx, guard.System("cron"), guard.MaintainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := rep.Purged[tenantID]; n != 0 {
		t.Errorf("Maintain purged %d events under the retention its cache held; want none (raised to a year)", n)
	}
}
