package guard_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/rbac"
)

// targetCase is an administrator's call on another user's account that
// only a caller holding every permission of the target's roles may make
// (doc.go, "Acting on a more privileged user").
type targetCase struct {
	name   string
	action audit.Action // recorded as failed, reason escalation, when refused
	// prep puts the target in the state the call acts on.
	prep func(t *testing.T, f *mfaFixture, id string)
	call func(f *mfaFixture, by guard.Principal, id string) error
	// unchanged fails unless the refused call left the target as prep did.
	unchanged func(t *testing.T, f *mfaFixture, id, token string)
}

func targetCases() []targetCase {
	sys := guard.System("test")
	active := func(t *testing.T, f *mfaFixture, id, token string) {
		t.Helper()
		u, err := f.g.User(f.ctx, sys, tenantID, id)
		if err != nil {
			t.Fatalf("the target after the refusal: %v", err)
		}
		if u.Status != auth.StatusActive || u.PasswordExpired {
			t.Errorf("the target after the refusal: status %v, password expired %v", u.Status, u.PasswordExpired)
		}
		if _, err := f.g.Authenticate(f.ctx, token); err != nil {
			t.Errorf("the target's session after the refusal: %v", err)
		}
		if rs, err := f.g.RolesOf(f.ctx, sys, tenantID, "user:"+id); err != nil || len(rs) == 0 {
			t.Errorf("the target's roles after the refusal: %v, %v", rs, err)
		}
	}
	return []targetCase{{
		name: "DeleteUser", action: audit.UserDeleted, unchanged: active,
		call: func(f *mfaFixture, by guard.Principal, id string) error {
			return f.g.DeleteUser(f.ctx, by, tenantID, id)
		},
	}, {
		name: "DeactivateUser", action: audit.UserDeactivated, unchanged: active,
		call: func(f *mfaFixture, by guard.Principal, id string) error {
			return f.g.DeactivateUser(f.ctx, by, tenantID, id)
		},
	}, {
		name: "ApplyReview", action: audit.UserDeactivated, unchanged: active,
		call: func(f *mfaFixture, by guard.Principal, id string) error {
			_, err := f.g.ApplyReview(f.ctx, by, tenantID, []guard.Decision{{UserID: id, Deactivate: true}})
			return err
		},
	}, {
		name: "ReactivateUser", action: audit.UserReactivated,
		prep: func(t *testing.T, f *mfaFixture, id string) {
			if err := f.g.DeactivateUser(f.ctx, sys, tenantID, id); err != nil {
				t.Fatal(err)
			}
		},
		call: func(f *mfaFixture, by guard.Principal, id string) error {
			return f.g.ReactivateUser(f.ctx, by, tenantID, id)
		},
		unchanged: func(t *testing.T, f *mfaFixture, id, _ string) {
			if u, err := f.g.User(f.ctx, sys, tenantID, id); err != nil || u.Status != auth.StatusDeactivated {
				t.Errorf("the target after the refusal: %+v, %v; want deactivated", u, err)
			}
		},
	}, {
		name: "UnlockUser", action: audit.UserUnlocked,
		prep: func(t *testing.T, f *mfaFixture, id string) {
			u, err := f.g.User(f.ctx, sys, tenantID, id)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.login(u.Email, "not the password"); !errors.Is(err, guard.ErrInvalidCredentials) {
				t.Fatalf("a wrong password: %v", err)
			}
		},
		call: func(f *mfaFixture, by guard.Principal, id string) error {
			return f.g.UnlockUser(f.ctx, by, tenantID, id)
		},
		unchanged: func(t *testing.T, f *mfaFixture, id, _ string) {
			if n := f.failures(t, id); n != 1 {
				t.Errorf("the target's failures after the refusal: %d, want 1", n)
			}
		},
	}, {
		name: "ExpirePassword", action: audit.PasswordExpired, unchanged: active,
		call: func(f *mfaFixture, by guard.Principal, id string) error {
			return f.g.ExpirePassword(f.ctx, by, tenantID, id)
		},
	}, {
		name: "SendInvitation", action: audit.UserInvited,
		call: func(f *mfaFixture, by guard.Principal, id string) error {
			return f.g.SendInvitation(f.ctx, by, tenantID, id)
		},
		unchanged: func(t *testing.T, f *mfaFixture, id, token string) {
			if n := f.out.count(); n != 0 {
				t.Errorf("%d emails sent after the refusal, want none", n)
			}
			active(t, f, id, token)
		},
	}, {
		name: "RemoveFactor", action: audit.MFARemoved,
		prep: func(t *testing.T, f *mfaFixture, id string) {
			u, err := f.g.User(f.ctx, sys, tenantID, id)
			if err != nil {
				t.Fatal(err)
			}
			_, p := f.signIn(t, u.Email, ownerPW)
			f.enrolTOTP(t, p)
		},
		call: func(f *mfaFixture, by guard.Principal, id string) error {
			fs, err := f.g.Factors(f.ctx, sys, tenantID, id)
			if err != nil || len(fs) != 1 {
				return fmt.Errorf("the target's factors: %d, %w", len(fs), err)
			}
			return f.g.RemoveFactor(f.ctx, by, tenantID, id, fs[0].ID)
		},
		unchanged: func(t *testing.T, f *mfaFixture, id, _ string) {
			if fs, err := f.g.Factors(f.ctx, sys, tenantID, id); err != nil || len(fs) != 1 || !fs[0].Confirmed() {
				t.Errorf("the target's factors after the refusal: %+v, %v; want their app", fs, err)
			}
		},
	}}
}

// An admin's call on an owner's account is refused, recorded as a failed
// event of the call with reason escalation naming the owner role, and
// changes nothing; an owner's same call on an admin's account goes ahead.
func TestActingOnAMorePrivilegedUser(t *testing.T) {
	for _, tc := range targetCases() {
		t.Run(tc.name+"/admin on owner", func(t *testing.T) {
			f := newMFAFixture(t)
			f.userWithRoles(t, "olga@example.test", rbac.Owner)
			otto, ottoTok := f.userWithRoles(t, "otto@example.test", rbac.Owner)
			admin, _ := f.userWithRoles(t, "adam@example.test", rbac.Admin)
			if tc.prep != nil {
				tc.prep(t, f, otto.UserID)
			}
			f.out.mu.Lock()
			f.out.mail = nil
			f.out.mu.Unlock()
			before := len(f.events(t, tc.action))
			err := tc.call(f, admin, otto.UserID)
			if !errors.Is(err, guard.ErrForbidden) || !errors.Is(err, rbac.ErrEscalation) {
				t.Fatalf("%s by an admin on an owner: %v, want ErrForbidden (escalation)", tc.name, err)
			}
			evs := f.events(t, tc.action)[before:]
			if len(evs) != 1 || evs[0].Outcome != audit.Failure || evs[0].Reason != "escalation" ||
				evs[0].Target != otto.UserID || evs[0].Meta["role"] != rbac.Owner || evs[0].Actor.ID != admin.UserID {
				t.Errorf("recorded %+v, want one failed %s of the owner, reason escalation, role owner", evs, tc.action)
			}
			tc.unchanged(t, f, otto.UserID, ottoTok)
			if n := len(f.events(t, audit.ReviewCompleted)); n != 0 {
				t.Errorf("%d access reviews recorded as done", n)
			}
		})
		t.Run(tc.name+"/owner on admin", func(t *testing.T) {
			f := newMFAFixture(t)
			olga, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
			admin, _ := f.userWithRoles(t, "adam@example.test", rbac.Admin)
			if tc.prep != nil {
				tc.prep(t, f, admin.UserID)
			}
			if err := tc.call(f, olga, admin.UserID); err != nil {
				t.Errorf("%s by an owner on an admin: %v", tc.name, err)
			}
			for _, e := range f.events(t, tc.action) {
				if e.Outcome != audit.Success {
					t.Errorf("recorded %+v", e)
				}
			}
		})
	}
}

// clerkUsers are the users of withBillingClerk.
type clerkUsers struct{ olga, bill, mia, admin guard.Principal }

// withBillingClerk returns a fixture whose tenant has a custom role
// billing-clerk (billing:manage, which admins lack) and, signed in, an
// owner (olga), a member who is a billing clerk too (bill), a member
// (mia) and an admin.
func withBillingClerk(t *testing.T) (*fixture, clerkUsers) {
	t.Helper()
	f := newFixture(t)
	if err := f.g.DefineRole(f.ctx, guard.System("test"), tenantID, "billing-clerk", []string{"billing:manage"}); err != nil {
		t.Fatal(err)
	}
	var u clerkUsers
	u.olga, _ = f.userWithRoles(t, "olga@example.test", rbac.Owner)
	u.bill, _ = f.userWithRoles(t, "bill@example.test", rbac.Member, "billing-clerk")
	u.mia, _ = f.userWithRoles(t, "mia@example.test", rbac.Member)
	u.admin, _ = f.userWithRoles(t, "adam@example.test", rbac.Admin)
	return f, u
}

// The rule is about permissions, not the owner role: an admin cannot
// delete the holder of a custom role with a permission admins lack
// (billing), and can delete a member.
func TestActingOnAHolderOfACustomRole(t *testing.T) {
	f, u := withBillingClerk(t)
	sys, bill, mia, admin := guard.System("test"), u.bill, u.mia, u.admin
	if err := f.g.DeleteUser(f.ctx, admin, tenantID, bill.UserID); !errors.Is(err, guard.ErrForbidden) {
		t.Errorf("an admin deleting a billing clerk: %v, want ErrForbidden", err)
	}
	evs := f.events(t, audit.UserDeleted)
	if len(evs) != 1 || evs[0].Reason != "escalation" || evs[0].Meta["role"] != "billing-clerk" {
		t.Errorf("recorded %+v, want one failed user.deleted naming billing-clerk", evs)
	}
	if err := f.g.DeleteUser(f.ctx, admin, tenantID, mia.UserID); err != nil {
		t.Errorf("an admin deleting a member: %v", err)
	}
	if _, err := f.g.User(f.ctx, sys, tenantID, bill.UserID); err != nil {
		t.Errorf("the billing clerk after the refusal: %v", err)
	}
}

// DeactivateDormant by an admin passes over a dormant user it does not
// outrank (as it passes over owners); by the system, or an owner, it
// deactivates them.
func TestDeactivateDormantPassesOverMorePrivilegedUsers(t *testing.T) {
	f, u := withBillingClerk(t)
	sys, olga, bill, mia, admin := guard.System("test"), u.olga, u.bill, u.mia, u.admin
	tn, err := f.g.Tenant(f.ctx, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	pol := tn.Policy
	pol.AutoDeactivateDormant, pol.DormantAfter = true, 30*24*time.Hour
	if _, err := f.g.SetPolicy(f.ctx, sys, tenantID, pol, tn.Version); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(31 * 24 * time.Hour)
	got, err := f.g.DeactivateDormant(f.ctx, admin, tenantID)
	if err != nil || len(got) != 1 || got[0] != mia.UserID {
		t.Fatalf("DeactivateDormant by an admin = %v, %v; want the member alone", got, err)
	}
	// The owner outranks both the billing clerk and the admin.
	if got, err := f.g.DeactivateDormant(f.ctx, olga, tenantID); err != nil || len(got) != 2 || !slices.Contains(got, bill.UserID) {
		t.Errorf("DeactivateDormant by an owner = %v, %v; want the billing clerk and the admin", got, err)
	}
}

// versionDownAfter fails every Version read after the first ok ones, once
// armed.
type versionDownAfter struct {
	rbac.PolicyStore
	mu    sync.Mutex
	armed bool
	ok    int
}

func (p *versionDownAfter) Version(ctx context.Context, tenant string) (uint64, error) {
	p.mu.Lock()
	fail := p.armed && p.ok == 0
	if p.armed && p.ok > 0 {
		p.ok--
	}
	p.mu.Unlock()
	if fail {
		return 0, errDown
	}
	return p.PolicyStore.Version(ctx, tenant)
}

// Unable to read the roles once the caller's users:manage is checked, a
// deletion is refused with ErrUnavailable and changes nothing: the check
// fails closed.
func TestActingOnAUserFailsClosed(t *testing.T) {
	var down *versionDownAfter
	f := newFixture(t, func(c *guard.Config) {
		down = &versionDownAfter{PolicyStore: c.Stores.Policies}
		c.Stores.Policies = down
	})
	f.userWithRoles(t, "olga@example.test", rbac.Owner)
	mia, miaTok := f.userWithRoles(t, "mia@example.test", rbac.Member)
	admin, _ := f.userWithRoles(t, "adam@example.test", rbac.Admin)
	down.mu.Lock()
	down.armed, down.ok = true, 1 // the users:manage decision
	down.mu.Unlock()
	err := f.g.DeleteUser(f.ctx, admin, tenantID, mia.UserID)
	down.mu.Lock()
	down.armed = false
	down.mu.Unlock()
	if !errors.Is(err, guard.ErrUnavailable) {
		t.Fatalf("DeleteUser with the role store down: %v, want ErrUnavailable", err)
	}
	if r := reasons(f.events(t, audit.AccessDenied)); r["error"] != 0 {
		t.Errorf("the users:manage decision failed (access.denied %v): the test misses the check it means", r)
	}
	if u, err := f.g.User(f.ctx, guard.System("test"), tenantID, mia.UserID); err != nil || u.Status != auth.StatusActive {
		t.Errorf("the member after the failure: %+v, %v", u, err)
	}
	if _, err := f.g.Authenticate(f.ctx, miaTok); err != nil {
		t.Errorf("the member's session after the failure: %v", err)
	}
}
