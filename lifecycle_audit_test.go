package guard_test

// Audit of the life of a user account through the facade (the
// "lifecycle" axis): creation, deactivation, reactivation, deletion,
// dormancy, and what each leaves behind in the other packages.

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/rbac"
)

// newLifecycleFixture is newMFAFixture (MFA, recovery links, an outbox)
// on the given stores.
func newLifecycleFixture(t *testing.T, st guard.Stores, mutate ...func(*guard.Config)) *mfaFixture {
	t.Helper()
	return newMFAFixture(t, append([]func(*guard.Config){func(c *guard.Config) { c.Stores = st }}, mutate...)...)
}

// eachStore runs test on the in-memory stores and on SQLite.
func eachStore(t *testing.T, test func(t *testing.T, st guard.Stores)) {
	for name, stores := range idpStoreKinds() {
		t.Run(name, func(t *testing.T) { test(t, stores(t)) })
	}
}

// Severity medium. A user deactivated as dormant and reactivated by an
// administrator is still "dormant" (UserAccess.LastActive is the last
// sign-in, or the creation, whatever the reactivation), so the next run
// of DeactivateDormant (Maintain, hourly) deactivates them again before
// they could sign in: the administrator's reactivation is undone by the
// scheduled job, and the user is locked out again, recorded as a dormant
// deactivation by the system. Expected: a reactivation gives the user a
// fresh DormantAfter (it counts as activity for the dormancy rule), so a
// run right after it passes over them and they can sign in.
func TestAuditLifecycle_ReactivatedDormantUserDeactivatedAgain(t *testing.T) {
	eachStore(t, func(t *testing.T, st guard.Stores) {
		f := newLifecycleFixture(t, st)
		ada := f.createUser(t, adaEmail, ownerPW)
		tn, err := f.g.Tenant(f.ctx, tenantID)
		if err != nil {
			t.Fatal(err)
		}
		pol := tn.Policy
		pol.AutoDeactivateDormant, pol.DormantAfter = true, 30*24*time.Hour
		if _, err := f.g.SetPolicy(f.ctx, guard.System("test"), tenantID, pol, tn.Version); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(31 * 24 * time.Hour)
		cron := guard.System("cron")
		if got, err := f.g.DeactivateDormant(f.ctx, cron, tenantID); err != nil || len(got) != 1 || got[0] != ada.ID {
			t.Fatalf("first run: %v, %v; want ada deactivated as dormant", got, err)
		}
		if err := f.g.ReactivateUser(f.ctx, guard.System("admin"), tenantID, ada.ID); err != nil {
			t.Fatal(err)
		}
		f.clock.Advance(time.Hour) // the next hourly run
		got, err := f.g.DeactivateDormant(f.ctx, cron, tenantID)
		if err != nil {
			t.Fatal(err)
		}
		if len(got) != 0 {
			t.Errorf("the run an hour after the reactivation deactivated %v again; want nobody (the reactivation is an hour old)", got)
		}
		if u, err := f.g.User(f.ctx, guard.System("test"), tenantID, ada.ID); err != nil || u.Status != auth.StatusActive {
			t.Errorf("ada after the run: %+v, %v; want active", u.Status, err)
		}
		if _, err := f.login(adaEmail, ownerPW); errors.Is(err, guard.ErrInvalidCredentials) {
			t.Errorf("the reactivated user cannot sign in: %v", err)
		}
	})
}

// statusHook runs hook once, armed, right after the first SetStatus to
// status is written: something happening between a call's status write
// and its next step.
type statusHook struct {
	auth.UserUpdater
	mu     sync.Mutex
	status auth.Status
	hook   func()
}

func (u *statusHook) arm(status auth.Status, hook func()) {
	u.mu.Lock()
	u.status, u.hook = status, hook
	u.mu.Unlock()
}

func (u *statusHook) SetStatus(ctx context.Context, tenant, id string, s auth.Status) error {
	if err := u.UserUpdater.SetStatus(ctx, tenant, id, s); err != nil {
		return err
	}
	u.wrote(s)
	return nil
}

// Deactivate is a deactivation's status write: a write of deactivated.
func (u *statusHook) Deactivate(ctx context.Context, tenant, id string) (bool, error) {
	changed, err := u.UserUpdater.Deactivate(ctx, tenant, id)
	if err != nil {
		return false, err
	}
	u.wrote(auth.StatusDeactivated)
	return changed, nil
}

// wrote runs the hook once s, the status it is armed for, is written.
func (u *statusHook) wrote(s auth.Status) {
	u.mu.Lock()
	h := u.hook
	if h != nil && s == u.status {
		u.hook = nil
	} else {
		h = nil
	}
	u.mu.Unlock()
	if h != nil {
		h()
	}
}

// switchedAudit fails Append while fail is set (any backend).
type switchedAudit struct {
	audit.Store
	fail atomic.Bool
}

func (a *switchedAudit) Append(ctx context.Context, tenant string, evs []audit.Event) error {
	if a.fail.Load() {
		return errors.New("injected")
	}
	return a.Store.Append(ctx, tenant, evs)
}

// Severity low. ReactivateUser writes the status first and takes it back
// when the reactivation cannot be recorded ("does not stand: the user's
// previous status is set back and ErrUnavailable returned"); the same
// undo follows a role granted meanwhile (outranksStill). A sign-in that
// lands in between finds the user active and keeps its session: after
// the call the user is deactivated, the reactivation reported as not
// done, and yet a session of the user works (until a Maintain run ends
// it). Expected: a reactivation that does not stand leaves no way in;
// the undo ends the sessions opened meanwhile (as DeleteUser ends those
// of a sign-in that raced it).
func TestAuditLifecycle_UndoneReactivationKeepsSession(t *testing.T) {
	eachStore(t, func(t *testing.T, st guard.Stores) {
		up, au := &statusHook{}, &switchedAudit{}
		f := newLifecycleFixture(t, st, func(c *guard.Config) {
			up.UserUpdater, au.Store = c.Stores.UserUpdates, c.Stores.Audit
			c.Stores.UserUpdates, c.Stores.Audit = up, au
		})
		ada := f.createUser(t, adaEmail, ownerPW)
		if err := f.g.DeactivateUser(f.ctx, guard.System("admin"), tenantID, ada.ID); err != nil {
			t.Fatal(err)
		}
		var token string
		up.arm(auth.StatusActive, func() {
			// The user signs in while the status says active; then
			// the audit store fails the reactivation's record.
			res, err := f.login(adaEmail, ownerPW)
			if err != nil || res.Token == "" {
				t.Errorf("sign-in during the reactivation: %+v, %v", res, err)
			}
			token = res.Token
			au.fail.Store(true)
		})
		err := f.g.ReactivateUser(f.ctx, guard.System("admin"), tenantID, ada.ID)
		au.fail.Store(false)
		if !errors.Is(err, guard.ErrUnavailable) {
			t.Fatalf("ReactivateUser with the record failing: %v, want ErrUnavailable", err)
		}
		if u, err := f.g.User(f.ctx, guard.System("test"), tenantID, ada.ID); err != nil || u.Status != auth.StatusDeactivated {
			t.Fatalf("ada after the undone reactivation: %v, %v; want deactivated", u.Status, err)
		}
		if p, err := f.g.Authenticate(f.ctx, token); err == nil {
			t.Errorf("ada is deactivated (the reactivation did not stand) but her session opened meanwhile authenticates: %+v", p.UserID)
		}
	})
}

// deleteHook runs hook once, armed, in the first Users.DeleteUser, before
// the record is removed: what lands between DeleteUser's RevokeAll of the
// user's roles and the removal of the record.
type deleteHook struct {
	auth.UserStore
	hook atomic.Pointer[func()]
}

func (u *deleteHook) DeleteUser(ctx context.Context, tenant, id string) error {
	if h := u.hook.Swap(nil); h != nil {
		(*h)()
	}
	return u.UserStore.DeleteUser(ctx, tenant, id)
}

// Severity low. A role can be held by a user who does not exist:
// GrantRole never checks that "user:<id>" names a user of the tenant, so
// a grant made after DeleteUser, or one racing it (landing after the
// deletion took the user's roles and before the record went), succeeds,
// is recorded as role.granted, and stays in the tenant's policy for good
// (RolesOf, Assignments, the tenant's grant count) though DeleteUser
// reported the user gone with their roles. The facade's own fault sweep
// calls a grant to a user who is not there a violation. Expected: a
// grant to a user who is not (or no longer) there is refused
// (ErrUserNotFound), checked once the grant is written so that a
// deletion racing it cannot leave it behind, and nothing stays.
func TestAuditLifecycle_RoleGrantOutlivesDeletedUser(t *testing.T) {
	admin := guard.System("admin")
	eachStore(t, func(t *testing.T, st guard.Stores) {
		users := &deleteHook{}
		f := newLifecycleFixture(t, st, func(c *guard.Config) {
			users.UserStore = c.Stores.Users
			c.Stores.Users = users
		})
		ada := f.createUser(t, adaEmail, ownerPW)
		bob := f.createUser(t, "bob@example.test", ownerPW)
		// Racing: the grant lands between RevokeAll and the removal.
		grant := func() {
			if err := f.g.GrantRole(f.ctx, admin, tenantID, "user:"+ada.ID, rbac.Member); err != nil {
				t.Logf("grant racing the deletion: %v", err)
			}
		}
		users.hook.Store(&grant)
		if err := f.g.DeleteUser(f.ctx, admin, tenantID, ada.ID); err != nil {
			t.Fatal(err)
		}
		if rs, err := f.g.RolesOf(f.ctx, admin, tenantID, "user:"+ada.ID); err != nil || len(rs) != 0 {
			t.Errorf("roles of the deleted user ada after a grant raced the deletion: %v, %v; want none", rs, err)
		}
		// After: a grant to the deleted user bob.
		if err := f.g.DeleteUser(f.ctx, admin, tenantID, bob.ID); err != nil {
			t.Fatal(err)
		}
		err := f.g.GrantRole(f.ctx, admin, tenantID, "user:"+bob.ID, rbac.Admin)
		if !errors.Is(err, guard.ErrUserNotFound) {
			t.Errorf("GrantRole to the deleted user bob: %v, want ErrUserNotFound", err)
		}
		if rs, err := f.g.RolesOf(f.ctx, admin, tenantID, "user:"+bob.ID); err != nil || len(rs) != 0 {
			t.Errorf("roles of the deleted user bob: %v, %v; want none", rs, err)
		}
	})
}

// Severity low. The record of a password reset (password.reset) and of
// an email change (user.email_changed) says how many sessions ended
// (Meta sessions_ended) by counting every session the store handed back,
// expired ones included (the session store deletes those too and returns
// them), where DeactivateUser, ExpirePassword and the role changes count
// only those still live (liveCount): a user whose sessions had all timed
// out is recorded as having had them ended by the reset. Expected:
// sessions_ended counts the live sessions the action ended, as the other
// records do.
func TestAuditLifecycle_SessionsEndedCountsExpiredSessions(t *testing.T) {
	eachStore(t, func(t *testing.T, st guard.Stores) {
		f := newLifecycleFixture(t, st, manySessions)
		f.createUser(t, adaEmail, ownerPW)
		f.signIn(t, adaEmail, ownerPW)
		f.clock.Advance(23 * time.Hour)
		res, p := f.signIn(t, adaEmail, ownerPW)
		f.clock.Advance(2 * time.Hour) // the first session is past the idle timeout (24 h)
		p, _ = f.stepUp(t, p, res.Token)
		// ChangeEmail ends every session but p's: none is live.
		if err := f.g.ChangeEmail(f.ctx, p, newAdaEmail); err != nil {
			t.Fatal(err)
		}
		wantNoneEnded(t, f.events(t, audit.UserEmailChanged))
		f.clock.Advance(25 * time.Hour) // p is over too
		link := f.forgot(t, newAdaEmail)
		if err := f.g.ResetPassword(f.ctx, resetTo(link, "an entirely new passphrase")); err != nil {
			t.Fatal(err)
		}
		wantNoneEnded(t, f.events(t, audit.PasswordReset))
	})
}

// wantNoneEnded checks that evs is one event that ended no live session.
func wantNoneEnded(t *testing.T, evs []audit.Event) {
	t.Helper()
	switch {
	case len(evs) != 1:
		t.Errorf("%d events, want one", len(evs))
	case evs[0].Meta["sessions_ended"] != "0":
		t.Errorf("%s with no other live session of the user: Meta %v, want sessions_ended 0", evs[0].Action, evs[0].Meta)
	}
}

// putCodeHook runs hook once, armed, in the first PutCode of a code whose
// Txn starts with prefix, before it is stored: what lands between a
// link's checks and the store of its code.
type putCodeHook struct {
	mfa.CodeStore
	prefix string
	hook   atomic.Pointer[func()]
}

func (c *putCodeHook) PutCode(ctx context.Context, code mfa.Code) error {
	if strings.HasPrefix(code.Txn, c.prefix) {
		if h := c.hook.Swap(nil); h != nil {
			(*h)()
		}
	}
	return c.CodeStore.PutCode(ctx, code)
}

// Severity low. A deactivation "voids their mailed links (reset,
// invitation, email change: a reactivation does not bring them back)",
// and ExpirePassword voids the outstanding email-change links ("a link
// asked for before the mark may be in the wrong hands too"); but a link
// whose code is stored after the voiding survives it: RequestEmailChange
// (SendInvitation and ForgotPassword alike) reads the user, finds them
// active and unmarked, and stores the code without looking again, and
// the code is bound to the address and the password hash, which neither
// action changes. Whoever asked, from a session the action was meant to
// end (a stolen one), for an email change to their own address confirms
// it once the user is reactivated, or at once after ExpirePassword: the
// account's address becomes theirs, and a reset link to it gives them
// the account. Expected: a link stored while the voiding action runs
// does not outlive it, as one stored before does not.
func TestAuditLifecycle_LinkStoredDuringVoidingSurvives(t *testing.T) {
	admin := guard.System("admin")
	for _, action := range []string{"DeactivateUser", "ExpirePassword"} {
		t.Run(action, func(t *testing.T) {
			eachStore(t, func(t *testing.T, st guard.Stores) {
				codes := &putCodeHook{prefix: "email:"}
				f := newLifecycleFixture(t, st, func(c *guard.Config) {
					codes.CodeStore = c.Stores.MFA.Codes
					c.Stores.MFA.Codes = codes
				})
				ada := f.createUser(t, adaEmail, ownerPW)
				_, p := f.signIn(t, adaEmail, ownerPW)
				act := func() {
					var err error
					if action == "DeactivateUser" {
						err = f.g.DeactivateUser(f.ctx, admin, tenantID, ada.ID)
					} else {
						err = f.g.ExpirePassword(f.ctx, admin, tenantID, ada.ID)
					}
					if err != nil {
						t.Errorf("%s: %v", action, err)
					}
				}
				codes.hook.Store(&act)
				const theirs = "mallory@example.test"
				link := f.requestChange(t, p, theirs)
				if codes.hook.Load() != nil {
					t.Fatalf("%s did not run", action)
				}
				if action == "DeactivateUser" {
					if err := f.g.ReactivateUser(f.ctx, admin, tenantID, ada.ID); err != nil {
						t.Fatal(err)
					}
				}
				if err := f.g.ConfirmEmailChange(f.ctx, confirmOf(link)); !errors.Is(err, guard.ErrInvalidEmailChange) {
					t.Errorf("ConfirmEmailChange, after %s, of a link asked for by a session it ended: %v, want ErrInvalidEmailChange",
						action, err)
				}
				f.wantEmail(t, ada.ID, adaEmail)
			})
		})
	}
}

// Severity low. The four-eyes requests a user filed outlive the user: a
// deactivation ends every session, key and mailed link of the user, but
// their pending approval requests stay pending, listed to every approver
// (Approvals) and approvable (ApproveRequest succeeds, recorded as
// approval.approved), and once the user is reactivated they consume the
// approval given while they were out and carry out the action; a deleted
// user's requests stay pending for approvers to decide until they
// expire. Expected: deactivating or deleting a user withdraws the
// requests they filed (rejected by the system, on record), as it voids
// their links: an approver is never asked to approve the action of
// someone removed, and a reactivation brings no request back.
func TestAuditLifecycle_RequestsOutliveTheirRequester(t *testing.T) {
	eachStore(t, func(t *testing.T, st guard.Stores) {
		f := newLifecycleFixture(t, st)
		owner, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
		rob, _ := f.userWithRoles(t, "rob@example.test", rbac.Manager)
		ann, _ := f.userWithRoles(t, "ann@example.test", rbac.Manager)
		ap, err := f.g.RequestApproval(f.ctx, rob, "campaigns:send", "c1", []byte("p"), time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		if err := f.g.DeactivateUser(f.ctx, owner, tenantID, rob.UserID); err != nil {
			t.Fatal(err)
		}
		listed, err := f.g.Approvals(f.ctx, ann, rbac.ApprovalQuery{Status: rbac.StatusPending})
		if err != nil {
			t.Fatal(err)
		}
		if len(listed) != 0 {
			t.Errorf("pending requests listed to an approver after their requester was deactivated: %d, want none", len(listed))
		}
		if _, err := f.g.ApproveRequest(f.ctx, ann, ap.ID); err == nil {
			t.Error("ApproveRequest of a deactivated user's request succeeded; want it refused (the request withdrawn)")
		}
		if err := f.g.ReactivateUser(f.ctx, owner, tenantID, rob.UserID); err != nil {
			t.Fatal(err)
		}
		_, rob2 := f.signIn(t, "rob@example.test", ownerPW)
		if _, err := f.g.ConsumeApproval(f.ctx, rob2, ap.ID, "campaigns:send", "c1", []byte("p")); err == nil {
			t.Error("the reactivated user consumed, and carried out, an approval of a request filed before the deactivation")
		}
	})
}

// Severity low. A deactivation whose status a concurrent reactivation
// undid is reported done and recorded last: DeactivateUser writes the
// status, and an administrator's ReactivateUser landing right after it
// sets the user active again and records user.reactivated; the
// deactivation then ends the sessions, records user.deactivated and
// returns nil. The caller is told the user is deactivated, the audit log's
// last word on the user is user.deactivated, and the user is active and
// signs in. The last active owner is already guarded against this
// ("never reported done" when another caller undid it: ErrConflict);
// other users are not. Expected: a deactivation that no longer holds when
// it is recorded is refused with ErrConflict (recorded with reason
// conflict), or holds: the log and the caller never say deactivated of a
// user who is active.
func TestAuditLifecycle_DeactivationUndoneByReactivationReportedDone(t *testing.T) {
	eachStore(t, func(t *testing.T, st guard.Stores) {
		up := &statusHook{}
		f := newLifecycleFixture(t, st, func(c *guard.Config) {
			up.UserUpdater = c.Stores.UserUpdates
			c.Stores.UserUpdates = up
		})
		ada := f.createUser(t, adaEmail, ownerPW)
		up.arm(auth.StatusDeactivated, func() {
			if err := f.g.ReactivateUser(f.ctx, guard.System("other-admin"), tenantID, ada.ID); err != nil {
				t.Errorf("ReactivateUser racing the deactivation: %v", err)
			}
		})
		err := f.g.DeactivateUser(f.ctx, guard.System("admin"), tenantID, ada.ID)
		u, uerr := f.g.User(f.ctx, guard.System("test"), tenantID, ada.ID)
		if uerr != nil {
			t.Fatal(uerr)
		}
		var last audit.Action
		for _, e := range f.events(t, "") {
			if (e.Action == audit.UserDeactivated || e.Action == audit.UserReactivated) && e.Outcome == audit.Success {
				last = e.Action
			}
		}
		if u.Status == auth.StatusActive && (err == nil || last == audit.UserDeactivated) {
			t.Errorf("ada is active, yet DeactivateUser returned %v and the log's last word on her is %s", err, last)
		}
	})
}
