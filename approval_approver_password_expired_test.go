package guard_test

import (
	"errors"
	"testing"
	"time"

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
