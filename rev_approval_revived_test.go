package guard_test

import (
	"errors"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/rbac"
)

// TestApprovalOfMarkedApproverRevivedByPasswordChange: an approval given
// with a stolen password (ExpirePassword: "it may have been given by
// whoever holds the password") is only suspended: once a new password is
// chosen, it stands again and is consumed. The new password may be chosen
// by whoever holds the stolen one (ChangePassword needs only the current
// password): the thief approves, the admin marks the password, the thief
// changes it, and the four-eyes action goes through on the thief's
// approval. An approval decided before the password change that lifted
// the mark (DecidedAt not after PasswordChangedAt) should stay refused.
func TestApprovalOfMarkedApproverRevivedByPasswordChange(t *testing.T) {
	f := newFixture(t)
	owner, _ := f.userWithRoles(t, "olga@example.test", rbac.Owner)
	rob, _ := f.userWithRoles(t, "rob@example.test", rbac.Manager)
	ann, _ := f.userWithRoles(t, "ann@example.test", rbac.Manager)
	ap, err := f.g.RequestApproval(f.ctx, rob, "campaigns:send", "c1", []byte("p"), time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// Given by the thief, signed in as ann with her stolen password.
	if _, err := f.g.ApproveRequest(f.ctx, ann, ap.ID); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	if err := f.g.ExpirePassword(f.ctx, owner, tenantID, ann.UserID); err != nil {
		t.Fatal(err)
	}
	// The thief signs in again with the stolen password and changes it.
	thief, token := f.signIn(t, "ann@example.test")
	if _, _, err := f.g.ChangePasswordAndRotate(f.ctx, thief, token, guard.PasswordChange{Current: ownerPW, New: "the thief's own new passphrase"}); err != nil {
		t.Fatal(err)
	}
	if _, err := f.g.ConsumeApproval(f.ctx, rob, ap.ID, "campaigns:send", "c1", []byte("p")); !errors.Is(err, rbac.ErrApproverRevoked) {
		t.Errorf("ConsumeApproval of an approval given before the approver's password was marked compromised and then changed = %v; want rbac.ErrApproverRevoked", err)
	}
}
