package guard_test

import (
	"context"
	"errors"
	"net/netip"
	"sync"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/store/memstore"
)

// keysFixture is a tenant with an owner, an admin (adam) who created an
// API key, and another admin (ann) who created one too.
type keysFixture struct {
	*fixture
	owner, adam, ann      guard.Principal
	adamKey, annKey       auth.APIKey
	adamBearer, annBearer string
}

func newKeysFixture(t *testing.T, mutate ...func(*guard.Config)) *keysFixture {
	t.Helper()
	f := &keysFixture{fixture: newFixture(t, mutate...)}
	f.owner, _ = f.userWithRoles(t, "olga@example.test", rbac.Owner)
	f.adam, _ = f.userWithRoles(t, "adam@example.test", rbac.Admin)
	f.ann, _ = f.userWithRoles(t, "ann@example.test", rbac.Admin)
	mk := func(by guard.Principal, name string) (string, auth.APIKey) {
		key, k, err := f.g.CreateAPIKey(f.ctx, by, guard.NewAPIKey{Tenant: tenantID, Name: name, Roles: []string{rbac.ReportsOnly}})
		if err != nil {
			t.Fatal(err)
		}
		return "Bearer " + key, k
	}
	f.adamBearer, f.adamKey = mk(f.adam, "adam's export")
	f.annBearer, f.annKey = mk(f.ann, "ann's sync")
	for _, b := range []string{f.adamBearer, f.annBearer} {
		if code := f.call(b); code != 204 {
			t.Fatalf("a new key's request: %d, want 204", code)
		}
	}
	return f
}

// call makes one request with bearer through Middleware and
// Require(reports, read) and returns the status code.
func (f *keysFixture) call(bearer string) int {
	return serve(f.g, "", client, rbac.Reports, rbac.Read, "Authorization", bearer)
}

// wantRevoked checks that adam's key is revoked, everywhere it shows, for
// reason, and that ann's key still works.
func (f *keysFixture) wantRevoked(t *testing.T, reason string) {
	t.Helper()
	if code := f.call(f.adamBearer); code != 401 {
		t.Errorf("the key of a creator who left: %d, want 401", code)
	}
	if _, err := f.g.AuthenticateAPIKey(f.ctx, f.adamBearer[len("Bearer "):], netip.MustParseAddr("203.0.113.5")); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("AuthenticateAPIKey of a creator who left: %v, want ErrUnauthenticated", err)
	}
	if code := f.call(f.annBearer); code != 204 {
		t.Errorf("the key of another admin: %d, want 204", code)
	}
	ks, err := f.g.ListAPIKeys(f.ctx, f.owner, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ks {
		if revoked := !k.RevokedAt.IsZero(); revoked != (k.ID == f.adamKey.ID) {
			t.Errorf("ListAPIKeys: key %s (%s) revoked at %v", k.ID, k.Name, k.RevokedAt)
		}
		if k.ID == f.adamKey.ID && !k.RevokedAt.Equal(f.clock.Now()) {
			t.Errorf("ListAPIKeys: key %s revoked at %v, want now (%v)", k.ID, k.RevokedAt, f.clock.Now())
		}
	}
	evs := f.events(t, audit.APIKeyRevoked)
	if len(evs) != 1 || evs[0].Target != f.adamKey.ID || evs[0].Meta["reason"] != reason ||
		evs[0].Meta["created_by"] != f.adam.UserID || evs[0].Outcome != audit.Success {
		t.Errorf("apikey.revoked events %+v, want one for %s with reason %s", evs, f.adamKey.ID, reason)
	}
	if rs, err := f.g.RolesOf(f.ctx, f.owner, tenantID, "key:"+f.adamKey.ID); err != nil || len(rs) != 0 {
		t.Errorf("roles of the revoked key: %v, %v", rs, err)
	}
}

// lastMeta returns Meta[key] of the last event with action.
func (f *keysFixture) lastMeta(t *testing.T, action audit.Action, key string) string {
	t.Helper()
	evs := f.events(t, action)
	if len(evs) == 0 {
		t.Fatalf("no %s event", action)
	}
	return evs[len(evs)-1].Meta[key]
}

// A key must not outlive its creator's access: every way a user leaves
// revokes the keys they created, at once.
func TestCreatorLeavingRevokesTheirKeys(t *testing.T) {
	t.Run("DeactivateUser", func(t *testing.T) {
		f := newKeysFixture(t)
		if err := f.g.DeactivateUser(f.ctx, f.owner, tenantID, f.adam.UserID); err != nil {
			t.Fatal(err)
		}
		f.wantRevoked(t, "creator_deactivated")
		if n := f.lastMeta(t, audit.UserDeactivated, "api_keys_revoked"); n != "1" {
			t.Errorf("user.deactivated api_keys_revoked = %q, want 1", n)
		}
		// Reactivation does not bring the key back.
		if err := f.g.ReactivateUser(f.ctx, f.owner, tenantID, f.adam.UserID); err != nil {
			t.Fatal(err)
		}
		if code := f.call(f.adamBearer); code != 401 {
			t.Errorf("the key after its creator's reactivation: %d, want 401", code)
		}
		// Deactivating again finds no key left to revoke.
		if err := f.g.DeactivateUser(f.ctx, f.owner, tenantID, f.adam.UserID); err != nil {
			t.Fatal(err)
		}
		if n := len(f.events(t, audit.APIKeyRevoked)); n != 1 {
			t.Errorf("%d apikey.revoked events after a second deactivation, want 1", n)
		}
		if n := f.lastMeta(t, audit.UserDeactivated, "api_keys_revoked"); n != "0" {
			t.Errorf("second user.deactivated api_keys_revoked = %q, want 0", n)
		}
	})
	t.Run("DeleteUser", func(t *testing.T) {
		f := newKeysFixture(t)
		if err := f.g.DeleteUser(f.ctx, f.owner, tenantID, f.adam.UserID); err != nil {
			t.Fatal(err)
		}
		f.wantRevoked(t, "creator_deleted")
		if n := f.lastMeta(t, audit.UserDeleted, "api_keys_revoked"); n != "1" {
			t.Errorf("user.deleted api_keys_revoked = %q, want 1", n)
		}
	})
	t.Run("ApplyReview", func(t *testing.T) {
		f := newKeysFixture(t)
		res, err := f.g.ApplyReview(f.ctx, f.owner, tenantID, []guard.Decision{{UserID: f.adam.UserID, Deactivate: true}})
		if err != nil {
			t.Fatal(err)
		}
		f.wantRevoked(t, "creator_deactivated")
		if res.Deactivated != 1 || res.KeysRevoked != 1 {
			t.Errorf("ReviewResult %+v, want 1 deactivated and 1 key revoked", res)
		}
		if n := f.lastMeta(t, audit.ReviewCompleted, "keys_revoked"); n != "1" {
			t.Errorf("access_review.completed keys_revoked = %q, want 1", n)
		}
		if n := f.lastMeta(t, audit.UserDeactivated, "api_keys_revoked"); n != "1" {
			t.Errorf("user.deactivated api_keys_revoked = %q, want 1", n)
		}
	})
	t.Run("DeactivateDormant", func(t *testing.T) {
		f := newKeysFixture(t)
		sys := guard.System("cron")
		tn, err := f.g.Tenant(f.ctx, tenantID)
		if err != nil {
			t.Fatal(err)
		}
		pol := tn.Policy
		pol.AutoDeactivateDormant, pol.DormantAfter = true, 30*day
		if _, err := f.g.SetPolicy(f.ctx, sys, tenantID, pol, tn.Version); err != nil {
			t.Fatal(err)
		}
		// Adam does not sign in for 31 days; ann does (the owner is never
		// deactivated automatically).
		f.clock.Advance(31 * day)
		if _, err := f.login("ann@example.test", ownerPW); err != nil {
			t.Fatal(err)
		}
		got, err := f.g.DeactivateDormant(f.ctx, sys, tenantID)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0] != f.adam.UserID {
			t.Fatalf("DeactivateDormant = %v, want adam only (%s)", got, f.adam.UserID)
		}
		f.wantRevoked(t, "creator_deactivated")
		if n := f.lastMeta(t, audit.UserDeactivated, "api_keys_revoked"); n != "1" {
			t.Errorf("user.deactivated api_keys_revoked = %q, want 1", n)
		}
	})
}

// failingKeys fails RevokeByCreator while fail is set.
type failingKeys struct {
	*memstore.APIKeys
	mu   sync.Mutex
	fail bool
}

func (k *failingKeys) set(v bool) { k.mu.Lock(); k.fail = v; k.mu.Unlock() }

func (k *failingKeys) RevokeByCreator(ctx context.Context, tenant, userID string, at time.Time) ([]auth.APIKey, error) {
	k.mu.Lock()
	fail := k.fail
	k.mu.Unlock()
	if fail {
		return nil, errDown
	}
	return k.APIKeys.RevokeByCreator(ctx, tenant, userID, at)
}

// When the keys cannot be revoked, the call fails with ErrUnavailable and
// the user stays deactivated (unable to sign in); calling it again revokes
// the keys.
func TestCreatorKeysStoreFailure(t *testing.T) {
	for _, tc := range []struct {
		name   string
		leave  func(f *keysFixture) error
		reason string
	}{
		{"DeactivateUser", func(f *keysFixture) error {
			return f.g.DeactivateUser(f.ctx, f.owner, tenantID, f.adam.UserID)
		}, "creator_deactivated"},
		{"DeleteUser", func(f *keysFixture) error {
			return f.g.DeleteUser(f.ctx, f.owner, tenantID, f.adam.UserID)
		}, "creator_deleted"},
		{"ApplyReview", func(f *keysFixture) error {
			_, err := f.g.ApplyReview(f.ctx, f.owner, tenantID, []guard.Decision{{UserID: f.adam.UserID, Deactivate: true}})
			return err
		}, "creator_deactivated"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys := &failingKeys{APIKeys: memstore.NewAPIKeys()}
			f := newKeysFixture(t, func(c *guard.Config) { c.Stores.APIKeys = keys })
			keys.set(true)
			if err := tc.leave(f); !errors.Is(err, guard.ErrUnavailable) {
				t.Fatalf("with the key store down: %v, want ErrUnavailable", err)
			}
			if u, err := f.g.User(f.ctx, f.owner, tenantID, f.adam.UserID); err != nil || u.Status != auth.StatusDeactivated {
				t.Errorf("after the failure: %+v, %v; want the user there and deactivated", u, err)
			}
			if _, err := f.login("adam@example.test", ownerPW); !errors.Is(err, guard.ErrInvalidCredentials) {
				t.Errorf("sign-in after the failure: %v, want ErrInvalidCredentials", err)
			}
			for _, a := range []audit.Action{audit.UserDeactivated, audit.UserDeleted, audit.APIKeyRevoked} {
				if evs := f.events(t, a); len(evs) != 0 {
					t.Errorf("%s recorded though the keys were not revoked: %+v", a, evs)
				}
			}
			keys.set(false)
			if err := tc.leave(f); err != nil {
				t.Fatalf("again with the key store back: %v", err)
			}
			f.wantRevoked(t, tc.reason)
		})
	}
}

// racingKeys runs before, once, when a key is about to be stored.
type racingKeys struct {
	*memstore.APIKeys
	before func()
}

func (k *racingKeys) CreateAPIKey(ctx context.Context, key auth.APIKey, maxLive int) error {
	if f := k.before; f != nil {
		k.before = nil
		f()
	}
	return k.APIKeys.CreateAPIKey(ctx, key, maxLive)
}

// A key whose creation was under way while its creator was deactivated or
// deleted (their revocation ran before the key was stored) is revoked, and
// the creation fails.
func TestCreatorLeavingWhileCreatingAKey(t *testing.T) {
	for _, tc := range []struct {
		name  string
		leave func(f *keysFixture) error
	}{
		{"DeactivateUser", func(f *keysFixture) error {
			return f.g.DeactivateUser(f.ctx, f.owner, tenantID, f.adam.UserID)
		}},
		{"DeleteUser", func(f *keysFixture) error {
			return f.g.DeleteUser(f.ctx, f.owner, tenantID, f.adam.UserID)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			keys := &racingKeys{APIKeys: memstore.NewAPIKeys()}
			f := newKeysFixture(t, func(c *guard.Config) { c.Stores.APIKeys = keys })
			keys.before = func() {
				if err := tc.leave(f); err != nil {
					t.Error(err)
				}
			}
			_, _, err := f.g.CreateAPIKey(f.ctx, f.adam, guard.NewAPIKey{Tenant: tenantID, Name: "last minute"})
			if !errors.Is(err, guard.ErrUnauthenticated) {
				t.Errorf("CreateAPIKey by a creator who left meanwhile: %v, want ErrUnauthenticated", err)
			}
			ks, err := f.g.ListAPIKeys(f.ctx, f.owner, tenantID)
			if err != nil {
				t.Fatal(err)
			}
			for _, k := range ks {
				if k.CreatedBy == f.adam.UserID && k.RevokedAt.IsZero() {
					t.Errorf("key %s (%s) of a creator who left is not revoked", k.ID, k.Name)
				}
			}
			if code := f.call(f.annBearer); code != 204 {
				t.Errorf("the key of another admin: %d, want 204", code)
			}
		})
	}
}
