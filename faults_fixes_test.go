package guard_test

// Store failures found by TestFaultSweep, one test each: what a call
// leaves behind when one store call of its own fails (faultCounter.armName).

import (
	"errors"
	"slices"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/rbac"
)

// failing runs act with the first store call named call failing, and
// fails the test unless act returns ErrUnavailable and the call failed.
func (fx *ffix) failing(t *testing.T, call string, act func() error) {
	t.Helper()
	fx.failingNth(t, call, 1, act)
}

// failingNth is failing, with the nth call named call failing.
func (fx *ffix) failingNth(t *testing.T, call string, nth int, act func() error) {
	t.Helper()
	fx.fc.armNth(call, nth)
	err := act()
	if _, fired := fx.fc.disarm(); fired != call {
		t.Fatalf("%s #%d never called (err %v)", call, nth, err)
	}
	if !errors.Is(err, guard.ErrUnavailable) {
		t.Fatalf("with %s failing: %v, want ErrUnavailable", call, err)
	}
}

// ChangePassword ends the other sessions before it sets the password: a
// failure ending them leaves the password as it was, never the new one
// beside the old sessions.
func TestChangePasswordSessionsFailKeepsPassword(t *testing.T) {
	fx := newFaultFix(t, false)
	p, _ := fx.user(t, "ada@example.test", rbac.Member)
	other := fx.login2(t, "ada@example.test")
	before, _ := fx.memUser(t, p.UserID)
	fx.failing(t, "SessionIndex.DeleteByUser", func() error {
		return fx.g.ChangePassword(fx.ctx, p, guard.PasswordChange{Current: ownerPW, New: "an entirely new passphrase"})
	})
	if u, _ := fx.memUser(t, p.UserID); u.PasswordHash != before.PasswordHash {
		t.Fatalf("password changed with the other session (works: %v) not ended", fx.tokenWorks(other))
	}
}

// ResetPassword records the reset before it sets the password: a reset
// that cannot be recorded leaves the password as it was, and the link
// usable.
func TestResetPasswordUnrecordedKeepsPassword(t *testing.T) {
	fx := newFaultFix(t, true)
	u := fx.createUser(t, adaEmail, ownerPW)
	before, _ := fx.memUser(t, u.ID)
	if err := fx.g.ForgotPassword(fx.ctx, guard.ForgotRequest{Tenant: tenantID, Email: adaEmail, IP: "203.0.113.5", UserAgent: "test"}); err != nil {
		t.Fatal(err)
	}
	fx.g.Close() // the link is mailed in the background
	link := lastResetLink(t, fx.mailTo(adaEmail))
	req := guard.ResetRequest{Tenant: link.Get("tenant"), UserID: link.Get("user"), Token: link.Get("token"), NewPassword: "an entirely new passphrase"}
	fx.failing(t, "Audit.Append", func() error { return fx.g.ResetPassword(fx.ctx, req) })
	if cur, _ := fx.memUser(t, u.ID); cur.PasswordHash != before.PasswordHash {
		t.Fatal("password reset without password.reset")
	}
	if err := fx.g.ResetPassword(fx.ctx, req); err != nil {
		t.Fatalf("the link again: %v", err)
	}
	if !fx.recorded(t, audit.PasswordReset, u.ID) {
		t.Error("reset without password.reset")
	}
}

// ConfirmFactor undoes an enrolment stopped by a store failure after the
// code was accepted: the factor is pending again and no recovery codes
// are left, none returned.
func TestConfirmFactorStoppedIsUndone(t *testing.T) {
	for _, call := range []string{"Throttle.Settle", "SessionIndex.DeleteByUser", "MFA.Recovery.RecoveryCodes", "MFA.Recovery.SwapRecoveryCodes"} {
		t.Run(call, func(t *testing.T) {
			fx := newFaultFix(t, true)
			u := fx.createUser(t, adaEmail, ownerPW)
			_, p := fx.signIn(t, adaEmail, ownerPW)
			en, err := fx.g.BeginTOTP(fx.ctx, p, "Phone")
			if err != nil {
				t.Fatal(err)
			}
			var codes []string
			fx.failing(t, call, func() (err error) {
				codes, err = fx.g.ConfirmFactor(fx.ctx, p, en.Factor.ID, fx.code(t, en.Secret))
				return err
			})
			if n := len(fx.confirmedFactors(t, u.ID)); n != 0 || len(codes) != 0 {
				t.Fatalf("%d confirmed factors, %d codes returned", n, len(codes))
			}
			if n := fx.recoveryLeft(t, u.ID); n != 0 {
				t.Fatalf("%d recovery codes stored", n)
			}
			// Pending again: the next code confirms it.
			fx.clock.Advance(time.Minute)
			if _, err := fx.g.ConfirmFactor(fx.ctx, p, en.Factor.ID, fx.code(t, en.Secret)); err != nil {
				t.Fatalf("ConfirmFactor again: %v", err)
			}
		})
	}
}

// RemoveFactor puts the factor back when a store failure stops it after
// the factor was deleted: the factor signs in again, and the user's other
// session lives on.
func TestRemoveFactorStoppedIsUndone(t *testing.T) {
	for _, call := range []string{"MFA.Factors.Factors", "MFA.Recovery.ReplaceRecoveryCodes", "SessionIndex.DeleteByUser"} {
		t.Run(call, func(t *testing.T) {
			fx := newFaultFix(t, true)
			u := fx.createUser(t, adaEmail, ownerPW)
			_, p := fx.signIn(t, adaEmail, ownerPW)
			fx.enrolTOTP(t, p)
			fid := fx.confirmedFactors(t, u.ID)[0].ID
			fx.failing(t, call, func() error { return fx.g.RemoveFactor(fx.ctx, p, tenantID, u.ID, fid) })
			if n := len(fx.confirmedFactors(t, u.ID)); n != 1 {
				t.Fatalf("%d confirmed factors after the failed removal, want it back", n)
			}
			if fx.recorded(t, audit.MFARemoved, u.ID) {
				t.Error("mfa.removed recorded for a removal that failed")
			}
		})
	}
}

// RequestApproval rejects a request that cannot be recorded: nobody can
// approve it.
func TestRequestApprovalUnrecordedIsRejected(t *testing.T) {
	fx := newFaultFix(t, false)
	rob, _ := fx.user(t, "rob@example.test", rbac.Manager)
	ann, _ := fx.user(t, "ann@example.test", rbac.Manager)
	if err := fx.g.SetApprovalRequired(fx.ctx, guard.System("t"), tenantID, "campaigns:send", true); err != nil {
		t.Fatal(err)
	}
	fx.failing(t, "Audit.Append", func() error {
		_, err := fx.g.RequestApproval(fx.ctx, rob, "campaigns:send", "c1", []byte("p"), time.Hour)
		return err
	})
	aps, err := fx.mem.Approvals.ListApprovals(fx.ctx, tenantID, rbac.ApprovalQuery{})
	if err != nil || len(aps) != 1 {
		t.Fatalf("%d approvals stored, %v", len(aps), err)
	}
	if aps[0].Status != rbac.StatusRejected {
		t.Errorf("unrecorded request is %s, want rejected", aps[0].Status)
	}
	if _, err := fx.g.ApproveRequest(fx.ctx, ann, aps[0].ID); !errors.Is(err, rbac.ErrNotPending) {
		t.Errorf("approving the unrecorded request: %v, want rbac.ErrNotPending", err)
	}
}

// DeleteUser takes the roles while the user can still be found, and
// records the deletion as soon as the user record is gone: a failure
// before leaves a deactivated user that a call again deletes, one after
// a deletion on record with no grant left.
func TestDeleteUserStopped(t *testing.T) {
	for _, tc := range []struct {
		call    string
		deleted bool // the user record is gone after the failure
	}{
		{"Policies.Update", false},
		{"Users.DeleteUser", false},
		{"Throttle.Reset", true},
	} {
		t.Run(tc.call, func(t *testing.T) {
			fx := newFaultFix(t, false)
			admin, _ := fx.user(t, "adam@example.test", rbac.Owner)
			bob, _ := fx.user(t, "bob@example.test", rbac.Admin)
			fx.failing(t, tc.call, func() error { return fx.g.DeleteUser(fx.ctx, admin, tenantID, bob.UserID) })
			u, exists := fx.memUser(t, bob.UserID)
			if exists == tc.deleted {
				t.Fatalf("user exists: %v, want %v", exists, !tc.deleted)
			}
			if exists {
				if u.Status != auth.StatusDeactivated {
					t.Fatalf("half-deleted user is %s", u.Status)
				}
				if err := fx.g.DeleteUser(fx.ctx, admin, tenantID, bob.UserID); err != nil {
					t.Fatalf("DeleteUser again: %v", err)
				}
			}
			if !fx.recorded(t, audit.UserDeleted, bob.UserID) {
				t.Error("user deleted without user.deleted")
			}
			if fx.holds(t, "user:"+bob.UserID, rbac.Admin) {
				t.Error("user deleted, its admin grant stays")
			}
		})
	}
}

// A ForgotPassword whose tenant cannot be read sends no link, and says so
// in the audit log (a failed password.reset_requested, reason
// unavailable), as its other failures do.
func TestForgotPasswordTenantReadFailureRecorded(t *testing.T) {
	fx := newFaultFix(t, true)
	fx.createUser(t, adaEmail, ownerPW)
	fx.clock.Advance(time.Hour) // past the policy cache
	fx.fc.armName("Tenants.Tenant")
	err := fx.g.ForgotPassword(fx.ctx, guard.ForgotRequest{Tenant: tenantID, Email: adaEmail, IP: "203.0.113.5", UserAgent: "test"})
	fx.g.Close() // the work is done in the background
	if _, fired := fx.fc.disarm(); fired != "Tenants.Tenant" {
		t.Fatalf("Tenants.Tenant never called (err %v)", err)
	}
	if err != nil {
		t.Fatalf("ForgotPassword = %v, want the same answer as ever", err)
	}
	if n := len(fx.mailTo(adaEmail)); n != 0 {
		t.Errorf("%d mails went out", n)
	}
	if !slices.ContainsFunc(fx.events(t, audit.PasswordResetRequested), func(e audit.Event) bool {
		return e.Outcome == audit.Failure && e.Reason == guard.ReasonUnavailable
	}) {
		t.Error("no failed password.reset_requested with reason unavailable")
	}
}
