package guard_test

// Tests of the fixes of the lifecycle audit (lifecycle_audit_test.go)
// beyond the audit's own: the other paths of each fix.

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/rbac"
)

// A reactivation undone because the user was given, meanwhile, a role the
// caller could not grant (outranksStill) leaves no way in either: the
// session of a sign-in that landed while the status said active ends with
// the undo.
func TestUndoneReactivationEndsSessionOnEscalation(t *testing.T) {
	eachStore(t, func(t *testing.T, st guard.Stores) {
		up := &statusHook{}
		f := newLifecycleFixture(t, st, func(c *guard.Config) {
			up.UserUpdater = c.Stores.UserUpdates
			c.Stores.UserUpdates = up
		})
		olga, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
		admin, _ := f.userWithRoles(t, "adam@example.test", rbac.Admin)
		mia, _ := f.userWithRoles(t, "mia@example.test", rbac.Member)
		if err := f.g.DeactivateUser(f.ctx, olga, tenantID, mia.UserID); err != nil {
			t.Fatal(err)
		}
		var token string
		up.arm(auth.StatusActive, func() {
			// The owner makes mia an owner, and mia signs in, while the
			// admin's reactivation has written the status.
			if err := f.g.GrantRole(f.ctx, olga, tenantID, "user:"+mia.UserID, rbac.Owner); err != nil {
				t.Errorf("the owner's grant: %v", err)
			}
			res, err := f.login("mia@example.test", ownerPW)
			if err != nil || res.Token == "" {
				t.Errorf("sign-in during the reactivation: %+v, %v", res, err)
			}
			token = res.Token
		})
		err := f.g.ReactivateUser(f.ctx, admin, tenantID, mia.UserID)
		if !errors.Is(err, guard.ErrForbidden) {
			t.Fatalf("ReactivateUser of a user made owner meanwhile: %v, want ErrForbidden", err)
		}
		if u, err := f.g.User(f.ctx, guard.System("test"), tenantID, mia.UserID); err != nil || u.Status != auth.StatusDeactivated {
			t.Fatalf("mia after the undone reactivation: %v, %v; want deactivated", u.Status, err)
		}
		if _, err := f.g.Authenticate(f.ctx, token); err == nil {
			t.Error("mia is deactivated (the reactivation was undone) but her session opened meanwhile authenticates")
		}
	})
}

// readHook runs hook once, armed, right after the first Users.User read
// of the user it names: what lands between a read of the user and the
// next step of the call that read it.
type readHook struct {
	auth.UserStore
	id   atomic.Pointer[string]
	hook func()
}

func (u *readHook) User(ctx context.Context, tenant, id string) (auth.User, error) {
	got, err := u.UserStore.User(ctx, tenant, id)
	if p := u.id.Load(); p != nil && *p == id && u.id.CompareAndSwap(p, nil) {
		u.hook()
	}
	return got, err
}

// A deletion that completes between GrantRole's look-up of the user and
// the write of the grant: the look-up after the write finds the user
// gone, and the grant is taken back, refused (ErrUserNotFound) and
// recorded as refused (reason unknown_user). So for the owner role in a
// tenant with no owner: the take-back of the grant this call wrote is not
// refused by the last-owner rule (it was ErrUnavailable, the grant left).
func TestGrantRoleRacingDeletionTakenBack(t *testing.T) {
	admin := guard.System("admin")
	for _, role := range []string{rbac.Admin, rbac.Owner} {
		t.Run(role, func(t *testing.T) {
			eachStore(t, func(t *testing.T, st guard.Stores) {
				users := &readHook{}
				f := newLifecycleFixture(t, st, func(c *guard.Config) {
					users.UserStore = c.Stores.Users
					c.Stores.Users = users
				})
				bob := f.createUser(t, "bob@example.test", ownerPW)
				users.hook = func() {
					if err := f.g.DeleteUser(f.ctx, admin, tenantID, bob.ID); err != nil {
						t.Errorf("DeleteUser racing the grant: %v", err)
					}
				}
				users.id.Store(&bob.ID)
				if err := f.g.GrantRole(f.ctx, admin, tenantID, "user:"+bob.ID, role); !errors.Is(err, guard.ErrUserNotFound) {
					t.Errorf("GrantRole racing the deletion: %v, want ErrUserNotFound", err)
				}
				if users.id.Load() != nil {
					t.Fatal("the deletion did not run")
				}
				if rs, err := f.g.RolesOf(f.ctx, admin, tenantID, "user:"+bob.ID); err != nil || len(rs) != 0 {
					t.Errorf("roles of the deleted user: %v, %v; want none", rs, err)
				}
				evs := f.events(t, audit.RoleGranted)
				if n := len(evs); n == 0 || evs[n-1].Outcome != audit.Failure || evs[n-1].Reason != guard.ReasonUnknownUser ||
					evs[n-1].Meta["role"] != role || evs[n-1].Target != "user:"+bob.ID {
					t.Errorf("role.granted events %+v; want the last refused, reason unknown_user, Meta role %s", evs, role)
				}
			})
		})
	}
}

// refuseGrantOf fails every policy change that grants role.
type refuseGrantOf struct {
	rbac.PolicyStore
	role string
}

func (p refuseGrantOf) Update(ctx context.Context, tenant string, expect uint64, remove, add []rbac.Rule) error {
	for _, r := range add {
		if r.Type == rbac.RuleGrant && r.Role == p.role {
			return errInjected
		}
	}
	return p.PolicyStore.Update(ctx, tenant, expect, remove, add)
}

// The rollback of a creation whose second grant fails takes every grant
// of the user, the tenant's only owner grant included (RevokeAll refused
// it with rbac.ErrLastOwner, and so revoked nothing: the deleted user kept
// every grant).
func TestCreateUserRollbackTakesEveryGrant(t *testing.T) {
	f := newFixture(t, func(c *guard.Config) {
		c.Stores.Policies = refuseGrantOf{c.Stores.Policies, rbac.Member}
	})
	_, err := f.g.CreateUser(f.ctx, guard.System("test"), guard.NewUser{Tenant: tenantID, Email: adaEmail, Name: "Ada",
		Roles: []string{rbac.Owner, rbac.Admin, rbac.Member}})
	if !errors.Is(err, guard.ErrUnavailable) {
		t.Fatalf("CreateUser with the member grant failing = %v, want ErrUnavailable", err)
	}
	rules, _, err := f.mem.Policies.Policy(f.ctx, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules {
		if r.Type == rbac.RuleGrant {
			t.Errorf("grant left after the rollback of the creation: %+v", r)
		}
	}
}

// newCodeHookFixture is newLifecycleFixture with the codes of the links
// (Txn starting with prefix) stored through a putCodeHook.
func newCodeHookFixture(t *testing.T, st guard.Stores, prefix string) (*mfaFixture, *putCodeHook) {
	t.Helper()
	codes := &putCodeHook{prefix: prefix}
	f := newLifecycleFixture(t, st, func(c *guard.Config) {
		codes.CodeStore = c.Stores.MFA.Codes
		c.Stores.MFA.Codes = codes
	})
	return f, codes
}

// The reset link and the invitation are voided as the email-change link
// is when a deactivation or ExpirePassword lands between the read of the
// user and the store of the link's code: a reset link asked for
// (ForgotPassword) while the user is deactivated does not work once they
// are reactivated, nor does an invitation sent while their password is
// marked expired; the password stays as it was.
func TestResetLinkStoredDuringVoidingVoided(t *testing.T) {
	admin := guard.System("admin")
	for _, tc := range []struct {
		name string
		send func(f *mfaFixture, id string) error
		void func(f *mfaFixture, id string) error
	}{
		{"ForgotPasswordDuringDeactivateUser", func(f *mfaFixture, _ string) error {
			return f.g.ForgotPassword(f.ctx, guard.ForgotRequest{Tenant: tenantID, Email: adaEmail, IP: "203.0.113.5"})
		}, func(f *mfaFixture, id string) error {
			if err := f.g.DeactivateUser(f.ctx, admin, tenantID, id); err != nil {
				return err
			}
			return f.g.ReactivateUser(f.ctx, admin, tenantID, id)
		}},
		{"SendInvitationDuringExpirePassword", func(f *mfaFixture, id string) error {
			return f.g.SendInvitation(f.ctx, admin, tenantID, id)
		}, func(f *mfaFixture, id string) error {
			return f.g.ExpirePassword(f.ctx, admin, tenantID, id)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			eachStore(t, func(t *testing.T, st guard.Stores) {
				f, codes := newCodeHookFixture(t, st, "reset:")
				ada := f.createUser(t, adaEmail, ownerPW)
				act := func() {
					if err := tc.void(f, ada.ID); err != nil {
						t.Errorf("the voiding action: %v", err)
					}
				}
				codes.hook.Store(&act)
				if err := tc.send(f, ada.ID); err != nil {
					t.Fatal(err)
				}
				link := lastResetLink(t, f.mailTo(adaEmail))
				if codes.hook.Load() != nil {
					t.Fatal("the voiding action did not run")
				}
				if err := f.g.ResetPassword(f.ctx, resetTo(link, "an entirely new passphrase")); !errors.Is(err, guard.ErrInvalidResetToken) {
					t.Errorf("ResetPassword with a link made while the action ran: %v, want ErrInvalidResetToken", err)
				}
				if _, err := f.login(adaEmail, ownerPW); err != nil {
					t.Errorf("sign-in with the old password: %v", err)
				}
			})
		})
	}
}

// A deactivation and a reactivation that both land between the read of
// the user and the store of an email-change link's code leave the user as
// they were read but for the reactivation time (User.ReactivatedAt): the
// link, whose voiding came before its store, is voided all the same.
func TestLinkVoidedByDeactivationAndReactivationInBetween(t *testing.T) {
	admin := guard.System("admin")
	eachStore(t, func(t *testing.T, st guard.Stores) {
		f, codes := newCodeHookFixture(t, st, "email:")
		ada := f.createUser(t, adaEmail, ownerPW)
		_, p := f.signIn(t, adaEmail, ownerPW)
		act := func() {
			if err := f.g.DeactivateUser(f.ctx, admin, tenantID, ada.ID); err != nil {
				t.Errorf("DeactivateUser: %v", err)
			}
			f.clock.Advance(time.Second)
			if err := f.g.ReactivateUser(f.ctx, admin, tenantID, ada.ID); err != nil {
				t.Errorf("ReactivateUser: %v", err)
			}
		}
		codes.hook.Store(&act)
		link := f.requestChange(t, p, "mallory@example.test")
		if codes.hook.Load() != nil {
			t.Fatal("the deactivation did not run")
		}
		if err := f.g.ConfirmEmailChange(f.ctx, confirmOf(link)); !errors.Is(err, guard.ErrInvalidEmailChange) {
			t.Errorf("ConfirmEmailChange of a link whose voiding came before its store: %v, want ErrInvalidEmailChange", err)
		}
		f.wantEmail(t, ada.ID, adaEmail)
	})
}

// createApprovalHook runs hook once, armed, in the first CreateApproval,
// before the request is stored: what lands between RequestApproval's
// checks and the store.
type createApprovalHook struct {
	rbac.ApprovalStore
	hook atomic.Pointer[func()]
}

func (a *createApprovalHook) CreateApproval(ctx context.Context, ap rbac.Approval) error {
	if h := a.hook.Swap(nil); h != nil {
		(*h)()
	}
	return a.ApprovalStore.CreateApproval(ctx, ap)
}

// Deactivating or deleting a user withdraws the requests they filed,
// each on record (approval.rejected, Meta reason requester_deactivated or
// requester_deleted); the requests of others stay. A request stored just
// after its requester's deactivation withdrew their requests is rejected
// too, and RequestApproval answers ErrUnauthenticated.
func TestRequestsWithdrawnWithTheirRequester(t *testing.T) {
	eachStore(t, func(t *testing.T, st guard.Stores) {
		aps := &createApprovalHook{}
		f := newLifecycleFixture(t, st, func(c *guard.Config) {
			aps.ApprovalStore = c.Stores.Approvals
			c.Stores.Approvals = aps
		})
		owner, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
		rob, _ := f.userWithRoles(t, "rob@example.test", rbac.Manager)
		dan, _ := f.userWithRoles(t, "dan@example.test", rbac.Manager)
		ann, _ := f.userWithRoles(t, "ann@example.test", rbac.Manager)
		request := func(p guard.Principal, target string) rbac.Approval {
			t.Helper()
			ap, err := f.g.RequestApproval(f.ctx, p, "campaigns:send", target, []byte("p"), 0)
			if err != nil {
				t.Fatal(err)
			}
			return ap
		}
		robs, dans, anns := request(rob, "c1"), request(dan, "c2"), request(ann, "c3")
		if err := f.g.DeactivateUser(f.ctx, owner, tenantID, rob.UserID); err != nil {
			t.Fatal(err)
		}
		if err := f.g.DeleteUser(f.ctx, owner, tenantID, dan.UserID); err != nil {
			t.Fatal(err)
		}
		listed, err := f.g.Approvals(f.ctx, owner, rbac.ApprovalQuery{Status: rbac.StatusPending})
		if err != nil || len(listed) != 1 || listed[0].ID != anns.ID {
			t.Errorf("pending requests after their requesters went: %+v, %v; want ann's alone", listed, err)
		}
		withdrawn := map[string]string{}
		for _, e := range f.events(t, audit.ApprovalRejected) {
			if e.Actor.ID != owner.UserID || e.Meta["permission"] != "campaigns:send" {
				t.Errorf("approval.rejected %+v; want by the owner, Meta permission campaigns:send", e)
			}
			withdrawn[e.Target] = e.Meta["reason"] + " " + e.Meta["requester"]
		}
		want := map[string]string{robs.ID: "requester_deactivated user:" + rob.UserID, dans.ID: "requester_deleted user:" + dan.UserID}
		if len(withdrawn) != len(want) || withdrawn[robs.ID] != want[robs.ID] || withdrawn[dans.ID] != want[dans.ID] {
			t.Errorf("approval.rejected events %v, want %v", withdrawn, want)
		}
		// Racing: ann is deactivated just before her request is stored.
		deactivate := func() {
			if err := f.g.DeactivateUser(f.ctx, owner, tenantID, ann.UserID); err != nil {
				t.Errorf("DeactivateUser racing the request: %v", err)
			}
		}
		aps.hook.Store(&deactivate)
		if _, err := f.g.RequestApproval(f.ctx, ann, "campaigns:send", "c4", []byte("p"), 0); !errors.Is(err, guard.ErrUnauthenticated) {
			t.Errorf("RequestApproval racing the requester's deactivation: %v, want ErrUnauthenticated", err)
		}
		if aps.hook.Load() != nil {
			t.Fatal("the deactivation did not run")
		}
		if listed, err := f.g.Approvals(f.ctx, owner, rbac.ApprovalQuery{Status: rbac.StatusPending}); err != nil || len(listed) != 0 {
			t.Errorf("pending requests after ann went: %+v, %v; want none", listed, err)
		}
	})
}

// A deactivation withdraws its user's requests already approved too: once
// reactivated, the user cannot consume an approval of a request filed
// before (rbac.ErrWithdrawn, recorded as a failed approval.consumed with
// reason withdrawn, the approval left unconsumed). A request filed after
// the reactivation is consumed as any other.
func TestApprovedRequestWithdrawnByDeactivation(t *testing.T) {
	eachStore(t, func(t *testing.T, st guard.Stores) {
		f := newLifecycleFixture(t, st)
		owner, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
		rob, _ := f.userWithRoles(t, "rob@example.test", rbac.Manager)
		ap, err := f.g.RequestApproval(f.ctx, rob, "campaigns:send", "c1", []byte("p"), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.g.ApproveRequest(f.ctx, owner, ap.ID); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Minute)
		if err := f.g.DeactivateUser(f.ctx, owner, tenantID, rob.UserID); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Minute)
		if err := f.g.ReactivateUser(f.ctx, owner, tenantID, rob.UserID); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Minute)
		_, rob2 := f.signIn(t, "rob@example.test", ownerPW)
		if _, err := f.g.ConsumeApproval(f.ctx, rob2, ap.ID, "campaigns:send", "c1", []byte("p")); !errors.Is(err, rbac.ErrWithdrawn) {
			t.Errorf("ConsumeApproval of a request approved before its requester's deactivation = %v, want rbac.ErrWithdrawn", err)
		}
		var refused []string
		for _, e := range f.events(t, audit.ApprovalConsumed) {
			if e.Target == ap.ID && e.Outcome == audit.Failure {
				refused = append(refused, e.Reason)
			}
		}
		if len(refused) != 1 || refused[0] != "withdrawn" {
			t.Errorf("refused approval.consumed reasons %q, want [withdrawn]", refused)
		}
		if got, err := f.g.Approvals(f.ctx, owner, rbac.ApprovalQuery{Status: rbac.StatusApproved}); err != nil || len(got) != 1 || got[0].ID != ap.ID {
			t.Errorf("approved requests after the refusal: %+v, %v; want the withdrawn one, unconsumed", got, err)
		}
		// A request filed after the reactivation stands.
		f.clock.Advance(time.Minute)
		ap2, err := f.g.RequestApproval(f.ctx, rob2, "campaigns:send", "c2", []byte("p"), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.g.ApproveRequest(f.ctx, owner, ap2.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := f.g.ConsumeApproval(f.ctx, rob2, ap2.ID, "campaigns:send", "c2", []byte("p")); err != nil {
			t.Errorf("ConsumeApproval of a request filed after the reactivation: %v", err)
		}
	})
}

// idleHook runs hook once, armed, right after the first DeactivateIdle
// that deactivates: what lands between a dormant deactivation's status
// write and its next step.
type idleHook struct {
	auth.UserUpdater
	hook atomic.Pointer[func()]
}

func (u *idleHook) DeactivateIdle(ctx context.Context, tenant, id string, idleSince time.Time) error {
	if err := u.UserUpdater.DeactivateIdle(ctx, tenant, id, idleSince); err != nil {
		return err
	}
	if h := u.hook.Swap(nil); h != nil {
		(*h)()
	}
	return nil
}

// A deactivation that a reactivation undid just after its status write
// is refused with ErrConflict and recorded as refused (reason conflict,
// Meta sessions_ended and api_keys_revoked); so is a dormant
// deactivation, which DeactivateDormant then passes over.
func TestDeactivationUndoneByReactivationRefused(t *testing.T) {
	for _, dormant := range []bool{false, true} {
		t.Run(map[bool]string{false: "DeactivateUser", true: "DeactivateDormant"}[dormant], func(t *testing.T) {
			eachStore(t, func(t *testing.T, st guard.Stores) {
				up := &statusHook{}
				idle := &idleHook{UserUpdater: up}
				f := newLifecycleFixture(t, st, func(c *guard.Config) {
					up.UserUpdater = c.Stores.UserUpdates
					c.Stores.UserUpdates = idle
				})
				ada := f.createUser(t, adaEmail, ownerPW)
				reactivate := func() {
					if err := f.g.ReactivateUser(f.ctx, guard.System("other-admin"), tenantID, ada.ID); err != nil {
						t.Errorf("ReactivateUser racing the deactivation: %v", err)
					}
				}
				if dormant {
					f.allDormant(t)
					idle.hook.Store(&reactivate)
					if done, err := f.g.DeactivateDormant(f.ctx, guard.System("cron"), tenantID); err != nil || len(done) != 0 {
						t.Errorf("DeactivateDormant = %v, %v; want none deactivated, no error", done, err)
					}
				} else {
					up.arm(auth.StatusDeactivated, reactivate)
					if err := f.g.DeactivateUser(f.ctx, guard.System("admin"), tenantID, ada.ID); !errors.Is(err, guard.ErrConflict) {
						t.Errorf("DeactivateUser undone by a reactivation: %v, want ErrConflict", err)
					}
				}
				evs := f.events(t, audit.UserDeactivated)
				if n := len(evs); n != 1 || evs[0].Outcome != audit.Failure || evs[0].Reason != "conflict" ||
					evs[0].Meta["sessions_ended"] != "0" || evs[0].Meta["api_keys_revoked"] != "0" {
					t.Errorf("user.deactivated events %+v; want one, refused, reason conflict, Meta sessions_ended and api_keys_revoked 0", evs)
				}
				if u, err := f.g.User(f.ctx, guard.System("test"), tenantID, ada.ID); err != nil || u.Status != auth.StatusActive {
					t.Errorf("ada: %v, %v; want active", u.Status, err)
				}
			})
		})
	}
}

// A user deactivated after their principal was authenticated (the
// deactivation ended the session a request in flight already holds)
// cannot change their own account with it: each self-service call is
// ErrUnauthenticated and changes nothing.
func TestSelfServiceRefusedAfterDeactivation(t *testing.T) {
	f := newMFAFixture(t)
	ada := f.createUser(t, adaEmail, ownerPW)
	res, p := f.signIn(t, adaEmail, ownerPW)
	if err := f.g.DeactivateUser(f.ctx, guard.System("admin"), tenantID, ada.ID); err != nil {
		t.Fatal(err)
	}
	for name, call := range map[string]func() error{
		"ChangeEmail":        func() error { return f.g.ChangeEmail(f.ctx, p, newAdaEmail) },
		"RequestEmailChange": func() error { return f.g.RequestEmailChange(f.ctx, p, newAdaEmail) },
		"ChangePassword": func() error {
			return f.g.ChangePassword(f.ctx, p, guard.PasswordChange{Current: ownerPW, New: "a brand new passphrase"})
		},
		"BeginTOTP": func() error { _, err := f.g.BeginTOTP(f.ctx, p, "Phone"); return err },
		"Reauthenticate": func() error {
			_, _, err := f.g.Reauthenticate(f.ctx, p, res.Token, guard.Proof{Password: ownerPW})
			return err
		},
	} {
		if err := call(); !errors.Is(err, guard.ErrUnauthenticated) {
			t.Errorf("%s after the deactivation = %v, want ErrUnauthenticated", name, err)
		}
	}
	u, err := f.g.User(f.ctx, guard.System("test"), tenantID, ada.ID)
	if err != nil {
		t.Fatal(err)
	}
	if u.Email != adaEmail || u.PasswordChangedAt != ada.PasswordChangedAt {
		t.Errorf("the account changed: email %q, password changed at %v", u.Email, u.PasswordChangedAt)
	}
	if fs, err := f.g.Factors(f.ctx, guard.System("test"), tenantID, ada.ID); err != nil || len(fs) != 0 {
		t.Errorf("factors after the refused enrolment: %+v, %v", fs, err)
	}
	if n := len(f.mailTo(newAdaEmail)); n != 0 {
		t.Errorf("%d mails to the new address", n)
	}
}
