package guard_test

import (
	"errors"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// ExpirePassword is how an administrator says an account's password is
// known or suspected to be compromised: it "stops their every permission
// until they change the password" and suspends the API keys the user
// created. An approval that account gave (possibly by whoever holds the
// stolen password) must not stand either: ConsumeApproval should refuse it
// (rbac.ErrApproverRevoked), as it does for an approver deactivated. It is
// consumed instead: the approver's suspended standing is never asked.
func TestApprovalOfApproverWithExpiredPasswordRefused(t *testing.T) {
	f := newFixture(t)
	owner, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	rob, _ := f.userWithRoles(t, "rob@example.test", rbac.Manager)
	ann, _ := f.userWithRoles(t, "ann@example.test", rbac.Manager)
	ap, err := f.g.RequestApproval(f.ctx, rob, "campaigns:send", "c1", []byte("p"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.ApproveRequest(f.ctx, ann, ap.ID); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	if err := f.g.ExpirePassword(f.ctx, owner, tenantID, ann.UserID); err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.ConsumeApproval(f.ctx, rob, ap.ID, "campaigns:send", "c1", []byte("p")); !errors.Is(err, rbac.ErrApproverRevoked) {
		t.Fatalf("ConsumeApproval of an approval given by a user whose password was then marked compromised = %v; want rbac.ErrApproverRevoked", err)
	}
}

// A user whose password is marked compromised cannot approve either: a
// password sign-in gives a session that every permission check refuses
// (ErrPasswordChangeRequired). The approvals the user gave before the mark
// are withdrawn, not suspended as the user's API keys are: they stay
// refused once a new password is chosen (whoever holds the stolen one may
// choose it), and an approval given with the new password stands.
func TestApprovalOfApproverWithExpiredPasswordWithdrawn(t *testing.T) {
	f := newFixture(t)
	owner, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	rob, _ := f.userWithRoles(t, "rob@example.test", rbac.Manager)
	ann, _ := f.userWithRoles(t, "ann@example.test", rbac.Manager)
	first, err := f.g.RequestApproval(f.ctx, rob, "campaigns:send", "c1", []byte("p"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.ApproveRequest(f.ctx, ann, first.ID); err != nil {
		t.Fatal(err)
	}
	second, err := f.g.RequestApproval(f.ctx, rob, "campaigns:send", "c2", []byte("p"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	if err := f.g.ExpirePassword(f.ctx, owner, tenantID, ann.UserID); err != nil {
		t.Fatal(err)
	}
	marked, token := f.signIn(t, "ann@example.test")
	if _, err := f.g.ApproveRequest(f.ctx, marked, second.ID); !errors.Is(err, guard.ErrPasswordChangeRequired) {
		t.Errorf("ApproveRequest by a session whose password is marked compromised = %v; want ErrPasswordChangeRequired", err)
	}
	if _, err := f.g.ConsumeApproval(f.ctx, rob, first.ID, "campaigns:send", "c1", []byte("p")); !errors.Is(err, rbac.ErrApproverRevoked) {
		t.Fatalf("ConsumeApproval while the approver's password is marked = %v; want rbac.ErrApproverRevoked", err)
	}
	if r := reasons(f.events(t, audit.ApprovalConsumed)); r["approver_revoked"] != 1 {
		t.Errorf("approval.consumed reasons %v; want one approver_revoked", r)
	}
	f.clock.Advance(time.Second)
	newToken, _, err := f.g.ChangePasswordAndRotate(f.ctx, marked, token, guard.PasswordChange{Current: ownerPW, New: "an entirely new passphrase"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.ConsumeApproval(f.ctx, rob, first.ID, "campaigns:send", "c1", []byte("p")); !errors.Is(err, rbac.ErrApproverRevoked) {
		t.Errorf("ConsumeApproval once the approver chose a new password = %v; want rbac.ErrApproverRevoked still", err)
	}
	changed, err := f.g.Authenticate(f.ctx, newToken)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Second)
	if _, err := f.g.ApproveRequest(f.ctx, changed, second.ID); err != nil {
		t.Fatalf("ApproveRequest with the new password: %v", err)
	}
	if _, err := f.g.ConsumeApproval(f.ctx, rob, second.ID, "campaigns:send", "c2", []byte("p")); err != nil {
		t.Errorf("ConsumeApproval of an approval given after the password change = %v; want it to stand", err)
	}
}
