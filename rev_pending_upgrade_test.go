package guard_test

import (
	"context"
	"strings"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/mfa"
)

// oldPurposeTxns stores transactions as a Guard from before 8a9fc03 wrote
// them: purpose[":"password], without the reactivation stamp.
type oldPurposeTxns struct{ mfa.TransactionStore }

func (o oldPurposeTxns) CreateTransaction(ctx context.Context, t mfa.Transaction) error {
	if parts := strings.Split(t.Purpose, ":"); len(parts) == 3 {
		t.Purpose = parts[0] + ":" + parts[1]
	}
	return o.TransactionStore.CreateTransaction(ctx, t)
}

// TestPendingSignInFromOlderReplicaOfReactivatedUser: in a rolling upgrade
// a pending sign-in begun by a replica still on the older Guard (its
// Purpose carries no reactivation stamp) and completed on an upgraded one
// is refused (ErrLoginExpired, reason deactivated) for every user ever
// reactivated, however long ago, though no deactivation came during the
// sign-in: loadPending reads a missing stamp as "never reactivated".
// (The older replica, conversely, reads the new three-part Purpose's
// "password:reactivation" as a password stamp and refuses it as
// password_changed.) Such a sign-in should be judged as an older Guard
// would (status and password only), or the stamp kept where old readers
// ignore it.
func TestPendingSignInFromOlderReplicaOfReactivatedUser(t *testing.T) {
	f := newMFAFixture(t, func(c *guard.Config) {
		c.Stores.MFA.Transactions = oldPurposeTxns{c.Stores.MFA.Transactions}
	})
	sys := guard.System("test")
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	secret, _ := f.enrolTOTP(t, p)
	// Reactivated a month ago.
	if err := f.g.DeactivateUser(f.ctx, sys, tenantID, p.UserID); err != nil {
		t.Fatal(err)
	}
	if err := f.g.ReactivateUser(f.ctx, sys, tenantID, p.UserID); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(30 * 24 * time.Hour)
	pend := f.pending(t, adaEmail, ownerPW)
	if _, err := f.complete(guard.MethodTOTP, pend.Token, f.code(t, secret)); err != nil {
		t.Errorf("CompleteLogin of a pending sign-in an older replica began, for a user reactivated a month before: %v; want a session", err)
	}
}
