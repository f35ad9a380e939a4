package guard_test

import (
	"errors"
	"net/netip"
	"slices"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// RevokeAPIKey records the revocation before it takes the key's roles
// away. Whichever step after the revocation fails, the key stays revoked
// and a second call, which finds it so, records it and takes the roles
// away: the log then holds the revocation, once per successful record.
func TestRevokeAPIKeyRecordsBeforeRoles(t *testing.T) {
	for _, c := range []struct {
		call     string
		recorded int // apikey.revoked events after the failed call
	}{
		{"Audit.Append", 0},
		{"Policies.Update", 1},
	} {
		t.Run(c.call, func(t *testing.T) {
			fx := newFaultFix(t, false)
			owner, _ := fx.user(t, "olga@example.test", rbac.Owner)
			key, k, err := fx.g.CreateAPIKey(fx.ctx, owner, guard.NewAPIKey{Tenant: tenantID, Name: "exports", Roles: []string{rbac.ReportsOnly}})
			if err != nil {
				t.Fatal(err)
			}
			fx.failing(t, c.call, func() error { return fx.g.RevokeAPIKey(fx.ctx, owner, tenantID, k.ID) })
			if _, err := fx.g.AuthenticateAPIKey(fx.ctx, key, netip.MustParseAddr("198.51.100.7")); !errors.Is(err, guard.ErrUnauthenticated) {
				t.Errorf("key after the failed revocation: %v, want ErrUnauthenticated", err)
			}
			if n := len(fx.events(t, audit.APIKeyRevoked)); n != c.recorded {
				t.Errorf("%d apikey.revoked events after %s failed, want %d", n, c.call, c.recorded)
			}
			if err := fx.g.RevokeAPIKey(fx.ctx, owner, tenantID, k.ID); err != nil {
				t.Fatalf("second RevokeAPIKey: %v", err)
			}
			if n := len(fx.events(t, audit.APIKeyRevoked)); n != c.recorded+1 {
				t.Errorf("%d apikey.revoked events after the second call, want %d", n, c.recorded+1)
			}
		})
	}
}

// GrantRole to an API key the tenant does not have, or has revoked, is
// refused with ErrNotFound, recorded as a failed role.granted (reason
// unknown_key, key_revoked), and leaves no grant.
func TestGrantToMissingOrRevokedKey(t *testing.T) {
	f := newFixture(t)
	owner, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	revoked := f.keyWithRole(t, rbac.ReportsOnly).KeyID
	if err := f.g.RevokeAPIKey(f.ctx, owner, tenantID, revoked); err != nil {
		t.Fatal(err)
	}
	for subject, reason := range map[string]string{"key:" + revoked: guard.ReasonKeyRevoked, "key:0123456789abcdef": guard.ReasonUnknownKey} {
		if err := f.g.GrantRole(f.ctx, owner, tenantID, subject, rbac.Admin); !errors.Is(err, guard.ErrNotFound) {
			t.Errorf("GrantRole(%s) = %v, want ErrNotFound", subject, err)
		}
		if rs, err := f.g.RolesOf(f.ctx, owner, tenantID, subject); err != nil || len(rs) != 0 {
			t.Errorf("RolesOf(%s) = %v, %v; want none", subject, rs, err)
		}
		var found bool
		for _, e := range f.events(t, audit.RoleGranted) {
			if e.Target == subject && e.Outcome == audit.Failure && e.Reason == reason && e.Meta["role"] == rbac.Admin {
				found = true
			}
		}
		if !found {
			t.Errorf("no failed role.granted for %s with reason %s", subject, reason)
		}
	}
}

// GrantRole to an API key past its ExpiresAt is refused like one to a
// revoked key: ErrNotFound, a failed role.granted with reason key_expired,
// and no grant, so that a key that cannot be used holds no role.
func TestGrantToExpiredKey(t *testing.T) {
	f := newFixture(t)
	owner, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	_, k, err := f.g.CreateAPIKey(f.ctx, owner, guard.NewAPIKey{Tenant: tenantID, Name: "exports",
		Roles: []string{rbac.ReportsOnly}, ExpiresAt: f.clock.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Hour)
	// A grant needs a recent authentication: the owner signs in again.
	owner, _ = f.signIn(t, "olga@example.test")
	subject := "key:" + k.ID
	if err := f.g.GrantRole(f.ctx, owner, tenantID, subject, rbac.Admin); !errors.Is(err, guard.ErrNotFound) {
		t.Errorf("GrantRole(expired key) = %v, want ErrNotFound", err)
	}
	rs, err := f.g.RolesOf(f.ctx, owner, tenantID, subject)
	if err != nil || slices.Contains(rs, rbac.Admin) {
		t.Errorf("RolesOf(expired key) = %v, %v; want no admin", rs, err)
	}
	var found bool
	for _, e := range f.events(t, audit.RoleGranted) {
		if e.Target == subject && e.Outcome == audit.Failure && e.Reason == guard.ReasonKeyExpired && e.Meta["role"] == rbac.Admin {
			found = true
		}
	}
	if !found {
		t.Error("no failed role.granted with reason key_expired")
	}
}
