package guard_test

import (
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/rbac"
)

// An API key that cannot act (expired, or revoked) is not counted among a
// tenant's admins, by AdminWarning as by the access review's warning: an
// expired one holding admin is listed in Excluded; a usable one is counted.
func TestAdminWarningLeavesOutKeysThatCannotAct(t *testing.T) {
	f := newReviewFixture(t)
	sys := guard.System("test")
	mk := func(name string, expires time.Time) string {
		_, k, err := f.g.CreateAPIKey(f.ctx, sys, guard.NewAPIKey{Tenant: tenantID, Name: name, ExpiresAt: expires, Roles: []string{rbac.Admin}})
		if err != nil {
			t.Fatal(err)
		}
		return k.ID
	}
	expired := mk("expired bot", f.clock.Now().Add(time.Hour))
	revoked := mk("revoked bot", time.Time{})
	live := mk("live bot", time.Time{})
	if err := f.g.RevokeAPIKey(f.ctx, sys, tenantID, revoked); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Hour)
	rv, err := f.g.AccessReview(f.ctx, f.owner, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	w, err := f.g.AdminWarning(f.ctx, f.owner, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	for name, w := range map[string]*rbac.AdminWarning{"AccessReview": rv.AdminWarning, "AdminWarning": w} {
		if w == nil {
			t.Errorf("%s: no warning", name)
			continue
		}
		counted := map[rbac.Subject]bool{}
		for _, s := range append(w.Owners, w.Admins...) {
			counted[s] = true
		}
		excluded := map[rbac.Subject]bool{}
		for _, s := range w.Excluded {
			excluded[s] = true
		}
		if counted[rbac.Key(expired)] || !excluded[rbac.Key(expired)] {
			t.Errorf("%s: expired key %s counted or not listed as excluded: %+v", name, expired, w)
		}
		// RevokeAPIKey takes the key's roles away: it is not counted.
		if counted[rbac.Key(revoked)] {
			t.Errorf("%s: revoked key %s counted: %+v", name, revoked, w)
		}
		if !counted[rbac.Key(live)] {
			t.Errorf("%s: usable key %s not counted: %+v", name, live, w)
		}
	}
}
