package guard_test

import (
	"errors"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/rbac"
)

// Audit of the access review axis (ApplyReview's refusals and counts,
// AccessReview's admin warning).

// ApplyReview's doc: decisions "that would leave the tenant without an
// active owner (rbac.ErrLastOwner) ... change nothing". DeactivateUser and
// RevokeRole record that same refusal as a failed user.deactivated /
// role.revoked with reason last_owner (users.go, access.go), and the
// package rule is that every refusal of an admin action is on record. The
// review's check before any decision is applied (checkOwnersLeft) returns
// rbac.ErrLastOwner without recording anything, so a reviewer's attempt to
// remove the last owner leaves no trace in the audit log.
func TestAuditReview_LastOwnerRefusalIsRecorded(t *testing.T) {
	f := newReviewFixture(t)
	sys := guard.System("test")
	for _, c := range []struct {
		name string
		d    guard.Decision
		want recorded
	}{
		{"deactivate the last owner", guard.Decision{UserID: f.owner.UserID, Deactivate: true}, recorded{audit.UserDeactivated, "last_owner"}},
		{"take the last owner's role", guard.Decision{UserID: f.owner.UserID, RevokeRoles: []string{rbac.Owner}}, recorded{audit.RoleRevoked, "last_owner"}},
	} {
		before := len(f.events(t, ""))
		_, err := f.g.ApplyReview(f.ctx, sys, tenantID, []guard.Decision{c.d})
		if !errors.Is(err, rbac.ErrLastOwner) {
			t.Errorf("%s: %v, want rbac.ErrLastOwner", c.name, err)
			continue
		}
		wantRecorded(t, c.name, newEvents(t, f.fixture, before), c.want)
	}
	// For comparison, DeactivateUser records the same refusal.
	before := len(f.events(t, ""))
	if err := f.g.DeactivateUser(f.ctx, sys, tenantID, f.owner.UserID); !errors.Is(err, rbac.ErrLastOwner) {
		t.Fatalf("DeactivateUser of the last owner: %v", err)
	}
	wantRecorded(t, "DeactivateUser (reference)", newEvents(t, f.fixture, before), recorded{audit.UserDeactivated, "last_owner"})
}

// ApplyReview refuses a decision that would deactivate the break-glass
// owner of a tenant requiring SSO, or take the owner role from them, with
// ErrBreakGlassUser. RevokeRole, DeactivateUser and DeleteUser record that
// refusal (keepBreakGlass: a failed event, reason break_glass_user);
// planReview returns ErrBreakGlassUser bare, so the review's refusal is
// not on record. (TestBreakGlassOwnerKept's comment says "the refusal is
// on record" but counts only the three direct calls: its count of 3 must
// become 6 with the fix.)
func TestAuditReview_BreakGlassRefusalIsRecorded(t *testing.T) {
	s := newSSOSite(t)
	ctx := t.Context()
	sys := guard.System("test")
	owner, _ := s.userWithTOTP(t, "owner@corp.example", rbac.Owner)
	s.userWithTOTP(t, "second@corp.example", rbac.Owner)
	tn, _ := s.g.Tenant(ctx, tenantID)
	if _, err := s.g.SetPolicy(ctx, sys, tenantID, guard.Policy{RequireSSO: true, BreakGlassUser: owner.ID}, tn.Version); err != nil {
		t.Fatal(err)
	}
	count := func() int {
		page, err := s.g.QueryAudit(ctx, sys, tenantID, audit.Query{Limit: 1000})
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, e := range page.Events {
			if e.Reason == "break_glass_user" && e.Outcome == audit.Failure {
				n++
			}
		}
		return n
	}
	for _, c := range []struct {
		name string
		d    guard.Decision
	}{
		{"deactivate", guard.Decision{UserID: owner.ID, Deactivate: true}},
		{"revoke owner", guard.Decision{UserID: owner.ID, RevokeRoles: []string{rbac.Owner}}},
	} {
		before := count()
		_, err := s.g.ApplyReview(ctx, sys, tenantID, []guard.Decision{c.d})
		if !errors.Is(err, guard.ErrBreakGlassUser) {
			t.Errorf("%s: %v, want ErrBreakGlassUser", c.name, err)
			continue
		}
		if n := count() - before; n != 1 {
			t.Errorf("review decision %q on the break-glass owner refused: %d failed events with reason break_glass_user recorded, want 1", c.name, n)
		}
	}
}

// ReviewResult.KeysRevoked "counts the API keys revoked: by key decisions,
// and with the users deactivated (the keys they created)", and
// access_review.completed carries it as keys_revoked. applyDecision counts
// every key decision whose RevokeAPIKey returned nil, and RevokeAPIKey
// returns nil for a key that is already revoked (the store keeps the first
// time). So a key revoked since the reviewer read the review (a stale
// page), or revoked earlier in the same review because its creator was
// deactivated, is counted (twice in the second case) and a second
// apikey.revoked is recorded for it by the review.
func TestAuditReview_KeysRevokedCountsOnlyKeysTheReviewRevoked(t *testing.T) {
	t.Run("revoked before the review was applied", func(t *testing.T) {
		f := newReviewFixture(t)
		sys := guard.System("test")
		if err := f.g.RevokeAPIKey(f.ctx, sys, tenantID, f.unusedKey.ID); err != nil {
			t.Fatal(err)
		}
		revoked := len(f.events(t, audit.APIKeyRevoked))
		res, err := f.g.ApplyReview(f.ctx, f.owner, tenantID, []guard.Decision{{KeyID: f.unusedKey.ID}})
		if err != nil {
			// A refusal that changes nothing would do as well.
			if n := len(f.events(t, audit.APIKeyRevoked)); n != revoked {
				t.Errorf("refused review recorded %d more apikey.revoked", n-revoked)
			}
			return
		}
		if res.KeysRevoked != 0 {
			t.Errorf("KeysRevoked = %d for a key already revoked before the review, want 0", res.KeysRevoked)
		}
		if m := res.Recorded.Meta["keys_revoked"]; m != "0" {
			t.Errorf("access_review.completed keys_revoked = %q, want 0", m)
		}
	})
	t.Run("revoked with its creator in the same review", func(t *testing.T) {
		f := newReviewFixture(t)
		_, k, err := f.g.CreateAPIKey(f.ctx, f.admin, guard.NewAPIKey{Tenant: tenantID, Name: "adam's export"})
		if err != nil {
			t.Fatal(err)
		}
		res, err := f.g.ApplyReview(f.ctx, f.owner, tenantID, []guard.Decision{
			{UserID: f.admin.UserID, Deactivate: true},
			{KeyID: k.ID},
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.KeysRevoked != 1 {
			t.Errorf("KeysRevoked = %d, want 1 (one key, revoked once)", res.KeysRevoked)
		}
		if m := res.Recorded.Meta["keys_revoked"]; m != "1" {
			t.Errorf("access_review.completed keys_revoked = %q, want 1", m)
		}
		n := 0
		for _, e := range f.events(t, audit.APIKeyRevoked) {
			if e.Target == k.ID {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d apikey.revoked events for the one key, want 1", n)
		}
		if ks, _ := f.g.ListAPIKeys(f.ctx, f.owner, tenantID); len(ks) > 0 {
			for _, x := range ks {
				if x.ID == k.ID && x.RevokedAt.IsZero() {
					t.Error("the key is not revoked")
				}
			}
		}
	})
}

// ReviewResult.Deactivated counts "users deactivated". A Deactivate
// decision about a user who is already deactivated (the review lists
// deactivated users; a stale page; another admin got there first) is
// counted as a deactivation by the review, and the review records a
// second, successful user.deactivated (reason access_review) for a user
// who was deactivated all along.
func TestAuditReview_DeactivatedCountsOnlyUsersTheReviewDeactivated(t *testing.T) {
	f := newReviewFixture(t)
	if u, err := f.g.User(f.ctx, guard.System("test"), tenantID, f.gone.ID); err != nil || u.Status != auth.StatusDeactivated {
		t.Fatalf("fixture: %+v %v", u, err)
	}
	res, err := f.g.ApplyReview(f.ctx, f.owner, tenantID, []guard.Decision{{UserID: f.gone.ID, Deactivate: true}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Deactivated != 0 {
		t.Errorf("Deactivated = %d for a user deactivated before the review, want 0", res.Deactivated)
	}
	if m := res.Recorded.Meta["deactivated"]; m != "0" {
		t.Errorf("access_review.completed deactivated = %q, want 0", m)
	}
}

// Review.AdminWarning is set "when the tenant has more owners and admins
// (active users and API keys) than recommended; deactivated users who hold
// those roles are in its Excluded". An expired API key can no more
// administer the tenant than a deactivated user (UnusedKeys leaves it out
// as not usable), but it keeps its role grants, and AccessReview only
// excludes deactivated users: the expired key is counted among the admins,
// so the warning (and "who should be downgraded") names a key that cannot
// act, and can be raised by it alone.
func TestAuditReview_AdminWarningCountsExpiredKeys(t *testing.T) {
	f := newReviewFixture(t)
	sys := guard.System("test")
	_, k, err := f.g.CreateAPIKey(f.ctx, sys, guard.NewAPIKey{Tenant: tenantID, Name: "old admin bot",
		ExpiresAt: f.clock.Now().Add(time.Hour), Roles: []string{rbac.Admin}})
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Hour)
	rv, err := f.g.AccessReview(f.ctx, f.owner, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	if rv.AdminWarning == nil {
		t.Fatal("fixture: no admin warning (owner and admin are one more than recommended)")
	}
	for _, s := range append(rv.AdminWarning.Owners, rv.AdminWarning.Admins...) {
		if s == rbac.Key(k.ID) {
			t.Errorf("expired API key %s counted among the tenant's admins: %+v", k.ID, rv.AdminWarning)
		}
	}
}
