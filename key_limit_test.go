package guard_test

import (
	"errors"
	"fmt"
	"strconv"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/store/memstore"
)

// Nothing bounded the API keys of a tenant: an automation bug, or an
// administrator's session in the wrong hands, could create keys in a loop,
// each kept for good (revoked keys stay listed). Config.MaxAPIKeys bounds
// the live ones (neither revoked nor expired): one more is refused with
// auth.ErrTooManyAPIKeys, stores nothing, and is recorded as a failed
// apikey.created, reason limit; a revoked or expired key frees a place.
func TestAPIKeyLimit(t *testing.T) {
	f := newFixture(t, func(c *guard.Config) { c.MaxAPIKeys = 2 })
	sys := guard.System("ops")
	create := func(name string, expires time.Time) (auth.APIKey, error) {
		_, k, err := f.g.CreateAPIKey(f.ctx, sys, guard.NewAPIKey{Tenant: tenantID, Name: name, ExpiresAt: expires})
		return k, err
	}
	first, err := create("first", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := create("brief", f.clock.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	key, k, err := f.g.CreateAPIKey(f.ctx, sys, guard.NewAPIKey{Tenant: tenantID, Name: "third"})
	if !errors.Is(err, auth.ErrTooManyAPIKeys) || key != "" || k.ID != "" {
		t.Fatalf("a third key with MaxAPIKeys 2: %q, %+v, %v; want auth.ErrTooManyAPIKeys and no key", key, k, err)
	}
	ks, err := f.g.ListAPIKeys(f.ctx, sys, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ks) != 2 {
		t.Errorf("%d keys listed after the refusal, want 2", len(ks))
	}
	evs := f.events(t, audit.APIKeyCreated)
	if n := len(evs); n != 3 {
		t.Fatalf("%d apikey.created events, want 2 successes and 1 failure: %+v", n, evs)
	}
	if e := evs[2]; e.Outcome != audit.Failure || e.Reason != "limit" || e.Target != "third" || e.Meta["max"] != "2" {
		t.Errorf("the refusal recorded as %+v; want a failed apikey.created, reason limit, target the name, Meta max 2", e)
	}

	// A revoked key frees a place.
	if err := f.g.RevokeAPIKey(f.ctx, sys, tenantID, first.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := create("third", time.Time{}); err != nil {
		t.Fatalf("a key after one was revoked: %v", err)
	}
	if _, err := create("fourth", time.Time{}); !errors.Is(err, auth.ErrTooManyAPIKeys) {
		t.Fatalf("a key past the bound again: %v, want auth.ErrTooManyAPIKeys", err)
	}
	// So does an expired one.
	f.clock.Advance(time.Hour)
	if _, err := create("fourth", time.Time{}); err != nil {
		t.Fatalf("a key after one expired: %v", err)
	}
}

// The default bound is DefaultMaxAPIKeys live keys.
func TestAPIKeyLimitDefault(t *testing.T) {
	f := newFixture(t)
	now := f.clock.Now()
	for i := range guard.DefaultMaxAPIKeys {
		k := auth.APIKey{Tenant: tenantID, ID: fmt.Sprintf("k%04d", i), Name: "bulk", CreatedBy: "test", CreatedAt: now}
		k.Hash[0], k.Hash[1] = byte(i>>8), byte(i)
		if err := f.mem.APIKeys.CreateAPIKey(f.ctx, k, 0); err != nil {
			t.Fatal(err)
		}
	}
	sys := guard.System("ops")
	if _, _, err := f.g.CreateAPIKey(f.ctx, sys, guard.NewAPIKey{Tenant: tenantID, Name: "one more"}); !errors.Is(err, auth.ErrTooManyAPIKeys) {
		t.Fatalf("key %d: %v, want auth.ErrTooManyAPIKeys", guard.DefaultMaxAPIKeys+1, err)
	}
	evs := f.events(t, audit.APIKeyCreated)
	if len(evs) != 1 || evs[0].Reason != "limit" || evs[0].Meta["max"] != strconv.Itoa(guard.DefaultMaxAPIKeys) {
		t.Errorf("apikey.created events %+v, want one failure, reason limit, Meta max %d", evs, guard.DefaultMaxAPIKeys)
	}
	if err := f.g.RevokeAPIKey(f.ctx, sys, tenantID, "k0007"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.g.CreateAPIKey(f.ctx, sys, guard.NewAPIKey{Tenant: tenantID, Name: "one more"}); err != nil {
		t.Fatalf("a key once one of %d was revoked: %v", guard.DefaultMaxAPIKeys, err)
	}
}

// A negative MaxAPIKeys is refused: there is no "unbounded".
func TestMaxAPIKeysNegative(t *testing.T) {
	_, err := guard.New(guard.Config{Stores: memstore.New().Stores(), AuditKey: auditKey, MaxAPIKeys: -1})
	var pe *guard.PolicyError
	if !errors.As(err, &pe) || pe.Field != "MaxAPIKeys" {
		t.Errorf("New with MaxAPIKeys -1: %v, want a *PolicyError on MaxAPIKeys", err)
	}
}
