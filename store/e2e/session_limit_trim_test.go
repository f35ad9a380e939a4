package e2e_test

import (
	"context"
	"errors"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// A limit lowered on one replica (PostgreSQL for tenants, users and audit,
// Redis for sessions) ends each user's oldest sessions beyond it at once,
// on every replica; a replica whose policy cache still holds the old limit
// may open one more under it, and Maintain ends the extra one.
func TestLoweredSessionLimitReachesEveryReplica(t *testing.T) {
	c := newCluster(t, false)
	a := c.replica()
	b := c.replica(func(cfg *guard.Config) { cfg.PolicyCacheTTL = time.Hour })
	ctx := context.Background()
	sys := guard.System("e2e")
	setup(t, a, "ada@example.test")
	setup(t, a, "bob@example.test")
	setLimit := func(n int) {
		t.Helper()
		tn, err := a.Tenant(ctx, tenantID)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := a.SetPolicy(ctx, sys, tenantID, guard.Policy{SessionLimit: n}, tn.Version); err != nil {
			t.Fatalf("SetPolicy(SessionLimit %d): %v", n, err)
		}
	}
	setLimit(3)
	if pol, err := b.EffectivePolicy(ctx, tenantID); err != nil || pol.SessionLimit != 3 {
		t.Fatalf("b's policy: %+v, %v", pol, err)
	}
	var adas []guard.LoginResult
	for i := range 3 {
		res, err := login(a, "ada@example.test", password)
		if err != nil {
			t.Fatal(err)
		}
		if i > 0 && !res.Session.CreatedAt.After(adas[i-1].Session.CreatedAt) {
			t.Fatalf("sign-in %d not newer than the one before", i)
		}
		adas = append(adas, res)
	}
	bob, err := login(b, "bob@example.test", password)
	if err != nil {
		t.Fatal(err)
	}

	setLimit(1)
	works := func(g *guard.Guard, r guard.LoginResult) bool {
		t.Helper()
		_, err := g.Authenticate(ctx, r.Token)
		if err != nil && !errors.Is(err, guard.ErrUnauthenticated) {
			t.Fatalf("Authenticate: %v", err)
		}
		return err == nil
	}
	if works(b, adas[0]) || works(b, adas[1]) || !works(b, adas[2]) || !works(b, bob) {
		t.Errorf("on the other replica after the limit went 3 → 1: ada's %v %v %v, bob's %v; want ada's newest and bob's",
			works(b, adas[0]), works(b, adas[1]), works(b, adas[2]), works(b, bob))
	}
	revoked := func() map[string]bool {
		t.Helper()
		page, err := a.QueryAudit(ctx, sys, tenantID, audit.Query{Action: string(audit.SessionRevoked)})
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, e := range page.Events {
			if e.Reason != guard.ReasonSessionLimit || e.Actor.Kind != audit.ActorSystem {
				t.Errorf("session.revoked event %+v, want by the system, reason session_limit", e)
			}
			out[e.Target] = true
		}
		return out
	}
	if r := revoked(); len(r) != 2 || !r[adas[0].Session.ID()] || !r[adas[1].Session.ID()] {
		t.Errorf("session.revoked events for %v, want ada's two oldest", r)
	}

	// b has not seen the change: a sign-in there is under the old limit.
	late, err := login(b, "ada@example.test", password)
	if err != nil || late.Evicted != 0 {
		t.Fatalf("sign-in on the stale replica: evicted %d, %v", late.Evicted, err)
	}
	rep, err := a.Maintain(ctx, guard.System("cron"), guard.MaintainOptions{})
	if err != nil || rep.SessionsTrimmed[tenantID] != 1 {
		t.Fatalf("Maintain: %+v, %v; want one session trimmed", rep, err)
	}
	if works(a, adas[2]) || !works(a, late) || !works(a, bob) {
		t.Error("after Maintain: want ada's newest sign-in and bob's session only")
	}
	if r := revoked(); len(r) != 3 || !r[adas[2].Session.ID()] {
		t.Errorf("session.revoked events for %v, want the three of ada's sessions ended", r)
	}
	if rp, err := a.VerifyAudit(ctx, sys, tenantID); err != nil || !rp.OK {
		t.Errorf("VerifyAudit: %+v, %v", rp, err)
	}
}
