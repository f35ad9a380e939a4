package guard_test

import (
	"context"
	"sync"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/mfa"
)

// hookTxns runs before once, at the first ConsumeTransaction: what lands
// between CompleteLogin's check of the second factor and the session it
// then creates.
type hookTxns struct {
	mfa.TransactionStore
	once   sync.Once
	before func()
}

func (h *hookTxns) ConsumeTransaction(ctx context.Context, hash mfa.Hash) (mfa.Transaction, error) {
	if h.before != nil {
		h.once.Do(h.before)
	}
	return h.TransactionStore.ConsumeTransaction(ctx, hash)
}

// TestSignInWithFactorRemovedMeanwhile: an administrator removes a user's
// authenticator app (a phone reported stolen): "the user's sessions all
// end" (RemoveFactor). A sign-in that checked a code of that app just
// before, and creates its session just after the removal ended the
// sessions, gets a session all the same, flagged MFA, with no factor
// behind it. createSession re-reads what a sign-in proved for the other
// such races (a password changed or reset meanwhile, a factor added to a
// user who had none); a factor removed is not looked at.
func TestSignInWithFactorRemovedMeanwhile(t *testing.T) {
	var h *hookTxns
	f := newMFAFixture(t, func(c *guard.Config) {
		h = &hookTxns{TransactionStore: c.Stores.MFA.Transactions}
		c.Stores.MFA.Transactions = h
	})
	sys := guard.System("test")
	f.createUser(t, adaEmail, ownerPW)
	_, p := f.signIn(t, adaEmail, ownerPW)
	secret, _ := f.enrolTOTP(t, p)
	fs, err := f.g.Factors(f.ctx, sys, tenantID, p.UserID)
	if err != nil || len(fs) != 1 {
		t.Fatalf("Factors = %v, %v", fs, err)
	}
	f.clock.Advance(30e9)
	pend := f.pending(t, adaEmail, ownerPW)
	h.before = func() {
		if err := f.g.RemoveFactor(f.ctx, sys, tenantID, p.UserID, fs[0].ID); err != nil {
			t.Errorf("the administrator's RemoveFactor: %v", err)
		}
	}
	res, err := f.complete(guard.MethodTOTP, pend.Token, f.code(t, secret))
	if err != nil {
		return // refused: the removal was seen
	}
	if left, _ := f.g.Factors(f.ctx, sys, tenantID, p.UserID); len(left) != 0 {
		t.Fatalf("the factor is still there: %v", left)
	}
	if q, err := f.g.Authenticate(f.ctx, res.Token); err == nil {
		t.Errorf("a session signed in with an authenticator app removed (all sessions ended) before the session was created is live: flags %b, HasMFA %v", q.Flags, q.HasMFA())
	}
}
