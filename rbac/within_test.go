package rbac_test

import (
	"errors"
	"testing"

	"github.com/guardhq/guard/rbac"
)

// A subject acting within another's permissions (an API key within its
// creator's) is allowed only what both hold, decided and re-read at one
// policy version.
func TestDecideWithin(t *testing.T) {
	e := tenantWith(t)
	k := rbac.Key("ops")
	grant(t, e, "acme", k, rbac.Admin)
	decide := func(within rbac.Subject, s rbac.Section, a rbac.Action) bool {
		t.Helper()
		d, err := e.DecideWithin(ctx, "acme", k, within, s, a)
		if err != nil {
			t.Fatal(err)
		}
		return d.Allowed
	}
	if !decide(bob, rbac.Users, rbac.Manage) || !decide(rbac.Subject{}, rbac.Users, rbac.Manage) {
		t.Fatal("an admin key within an admin, or within nobody, lacks users:manage")
	}
	revoke(t, e, "acme", bob, rbac.Admin)
	grant(t, e, "acme", bob, rbac.ReportsOnly)
	if decide(bob, rbac.Users, rbac.Manage) {
		t.Error("the key of a demoted admin still holds users:manage")
	}
	if !decide(bob, rbac.Reports, rbac.Read) {
		t.Error("the key lost reports:read, which both hold")
	}
	if !decide(rbac.Subject{}, rbac.Users, rbac.Manage) {
		t.Error("a key within nobody (made by the host) lost its own roles")
	}
	if decide(cleo, rbac.Billing, rbac.Read) {
		t.Error("billing:read allowed: the admin key does not hold it")
	}
	if _, err := e.DecideWithin(ctx, "acme", k, rbac.User(""), rbac.Users, rbac.Manage); err == nil {
		t.Error("a malformed within subject gave no error")
	}

	p, err := e.PermissionsWithin(ctx, "acme", k, bob)
	if err != nil || p.Len() != 1 || !p.Has(rbac.Reports, rbac.Read) {
		t.Fatalf("PermissionsWithin = %s, %v; want reports:read", p, err)
	}
	// As the by of a change, re-read for both at the version it lands on:
	// the key cannot give anyone back what its creator lost.
	grant(t, e, "acme", bob, rbac.Admin)
	p, err = e.PermissionsWithin(ctx, "acme", k, bob)
	if err != nil || !p.Has(rbac.Users, rbac.Manage) {
		t.Fatalf("PermissionsWithin after promotion = %s, %v", p, err)
	}
	revoke(t, e, "acme", bob, rbac.Admin)
	if err := e.Grant(ctx, p, "acme", dan, rbac.Admin); !errors.Is(err, rbac.ErrDenied) {
		t.Errorf("Grant with a key's stale permissions after its creator's demotion = %v, want ErrDenied", err)
	}
	if got := perms(t, e, "acme", dan); got.Has(rbac.Users, rbac.Manage) {
		t.Error("dan was made admin")
	}
}
