package guard_test

import (
	"errors"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// newEvents returns the events of the fixture's tenant recorded since
// the tenant had n of them.
func newEvents(t *testing.T, f *fixture, n int) []audit.Event {
	t.Helper()
	return f.events(t, "")[n:]
}

// recorded is an audit event a refused call must leave: its action, and
// its reason.
type recorded struct {
	action audit.Action
	reason string
}

// wantRecorded fails unless evs holds exactly one failed event, want.
func wantRecorded(t *testing.T, name string, evs []audit.Event, want recorded) {
	t.Helper()
	if len(evs) != 1 {
		t.Errorf("%s: %d new audit events %v, want one %s (reason %s)", name, len(evs), evs, want.action, want.reason)
		return
	}
	if e := evs[0]; e.Action != want.action || e.Reason != want.reason || e.Outcome != audit.Failure {
		t.Errorf("%s: recorded %s %s (reason %q), want a failed %s (reason %q)", name, e.Action, e.Outcome, e.Reason, want.action, want.reason)
	}
}

// doc.go: "Actions the principal may not take return ErrForbidden
// (recorded as access.denied)". ApplyReview checks every decision first;
// one a reviewer may not make is refused with ErrForbidden and recorded as
// GrantRole, RevokeRole and DeactivateUser record the same recorded: making
// a user owner (a role the admin could not grant) is a failed role.granted
// with reason escalation, taking the owner role away a failed
// role.revoked, and a decision about the reviewer's own account an
// access.denied (own_account). Nothing else changes.
func TestApplyReviewRecordsRefusedDecisions(t *testing.T) {
	f := newReviewFixture(t)
	for _, c := range []struct {
		name string
		d    guard.Decision
		want recorded
	}{
		{"make a user owner", guard.Decision{UserID: f.manager.ID, DowngradeTo: rbac.Owner}, recorded{audit.RoleGranted, "escalation"}},
		{"take the owner role", guard.Decision{UserID: f.owner.UserID, RevokeRoles: []string{rbac.Owner}}, recorded{audit.RoleRevoked, "escalation"}},
		{"own account", guard.Decision{UserID: f.admin.UserID, Deactivate: true}, recorded{audit.AccessDenied, "own_account"}},
	} {
		before := len(f.events(t, ""))
		_, err := f.g.ApplyReview(f.ctx, f.admin, tenantID, []guard.Decision{c.d})
		if !errors.Is(err, guard.ErrForbidden) {
			t.Errorf("%s: %v, want ErrForbidden", c.name, err)
			continue
		}
		evs := newEvents(t, f.fixture, before)
		wantRecorded(t, c.name, evs, c.want)
		if len(evs) == 1 && evs[0].Actor.ID != f.admin.UserID {
			t.Errorf("%s: recorded actor %+v, want the reviewer", c.name, evs[0].Actor)
		}
	}
	roles, err := f.g.RolesOf(f.ctx, guard.System("test"), tenantID, "user:"+f.manager.ID)
	if err != nil || len(roles) != 1 || roles[0] != rbac.Manager {
		t.Errorf("roles of the manager after the refused reviews: %v %v", roles, err)
	}
}

// Every ErrForbidden of the facade is on record: refusals that are no
// permission check (an action only the system takes, one a user may not
// take on their own account, a Principal that Guard did not make) as
// access.denied with their own reason, refusals of the rbac package
// (roles, approval rules) as a failed event of the change, as GrantRole
// records them.
func TestForbiddenIsRecorded(t *testing.T) {
	f := newMFAFixture(t)
	sys := guard.System("test")
	f.createUser(t, "ann@acme.test", ownerPW)
	_, p := f.signIn(t, "ann@acme.test", ownerPW)
	admin, _ := f.userWithRoles(t, "adam@acme.test", rbac.Admin)
	manager, _ := f.userWithRoles(t, "mona@acme.test", rbac.Manager)
	bob := f.createUser(t, "bob@acme.test", ownerPW)
	if err := f.g.DefineRole(f.ctx, sys, tenantID, "helper", []string{"reports:read"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.CreateTenant(f.ctx, sys, "beta", "Beta", guard.Policy{}); err != nil {
		t.Fatal(err)
	}
	// A Principal the host built by hand (Kind unset): not one Guard made.
	forged := guard.Principal{Tenant: tenantID, UserID: bob.ID}

	for _, c := range []struct {
		name string
		call func() error
		want recorded
	}{
		{"PurgeAudit by a user", func() error {
			_, err := f.g.PurgeAudit(f.ctx, p, tenantID, f.clock.Now().Add(time.Hour))
			return err
		}, recorded{audit.AccessDenied, "system_only"}},
		{"Maintain by a user", func() error {
			_, err := f.g.Maintain(f.ctx, admin, guard.MaintainOptions{})
			return err
		}, recorded{audit.AccessDenied, "system_only"}},
		{"CreateTenant by a user", func() error {
			_, err := f.g.CreateTenant(f.ctx, admin, "gamma", "Gamma", guard.Policy{})
			return err
		}, recorded{audit.AccessDenied, "system_only"}},
		{"DeactivateUser of oneself", func() error { return f.g.DeactivateUser(f.ctx, admin, tenantID, admin.UserID) },
			recorded{audit.AccessDenied, "own_account"}},
		{"DeleteUser of oneself", func() error { return f.g.DeleteUser(f.ctx, admin, tenantID, admin.UserID) },
			recorded{audit.AccessDenied, "own_account"}},
		{"ExpirePassword of oneself", func() error { return f.g.ExpirePassword(f.ctx, admin, tenantID, admin.UserID) },
			recorded{audit.AccessDenied, "own_account"}},
		{"Approvals by a forged principal", func() error {
			_, err := f.g.Approvals(f.ctx, forged, rbac.ApprovalQuery{})
			return err
		}, recorded{audit.AccessDenied, "invalid_principal"}},
		{"RequestApproval by a forged principal", func() error {
			_, err := f.g.RequestApproval(f.ctx, forged, "campaigns:send", "c1", nil, 0)
			return err
		}, recorded{audit.AccessDenied, "invalid_principal"}},
		{"ApproveRequest by a forged principal", func() error {
			_, err := f.g.ApproveRequest(f.ctx, forged, "r1")
			return err
		}, recorded{audit.AccessDenied, "invalid_principal"}},
		{"User by a forged principal", func() error {
			_, err := f.g.User(f.ctx, forged, tenantID, admin.UserID)
			return err
		}, recorded{audit.AccessDenied, "invalid_principal"}},
		{"GrantRole by a forged principal", func() error {
			return f.g.GrantRole(f.ctx, forged, tenantID, "user:"+bob.ID, rbac.Owner)
		}, recorded{audit.AccessDenied, "invalid_principal"}},
		{"GrantRole in another tenant", func() error {
			return f.g.GrantRole(f.ctx, admin, "beta", "user:"+admin.UserID, rbac.Owner)
		}, recorded{audit.AccessDenied, "other_tenant"}},
		{"DefineRole with a permission the definer lacks", func() error {
			return f.g.DefineRole(f.ctx, admin, tenantID, "billing", []string{"billing:read"})
		}, recorded{audit.RoleDefined, "escalation"}},
		{"DeleteRole without users:manage", func() error { return f.g.DeleteRole(f.ctx, manager, tenantID, "helper") },
			recorded{audit.RoleDeleted, "no_permission"}},
		{"SetApprovalRequired without settings:manage", func() error {
			return f.g.SetApprovalRequired(f.ctx, manager, tenantID, "campaigns:send", true)
		}, recorded{audit.ApprovalRuleChanged, "no_permission"}},
	} {
		before := len(f.events(t, ""))
		if err := c.call(); !errors.Is(err, guard.ErrForbidden) {
			t.Errorf("%s: %v, want ErrForbidden", c.name, err)
			continue
		}
		evs := newEvents(t, f.fixture, before)
		wantRecorded(t, c.name, evs, c.want)
		if len(evs) == 1 && c.want.reason == "invalid_principal" && evs[0].Actor.Kind != audit.ActorAnonymous {
			t.Errorf("%s: recorded actor %+v: a forged principal is recorded as anonymous, not as who it claims to be", c.name, evs[0].Actor)
		}
	}
	if _, err := f.g.Tenant(f.ctx, "gamma"); err == nil {
		t.Error("a user created a tenant")
	}
}
