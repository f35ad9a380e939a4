package guard_test

import (
	"errors"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
)

// TestPendingSignInCycleSameClockTick: since 3c32bfd a pending sign-in of
// a user never reactivated (its Purpose carries no reactivation part, as
// pendPurpose writes for such users) is judged by time only:
// ReactivatedAt.After(txn.CreatedAt). A deactivation and reactivation
// stamped at or before the sign-in's start (same clock tick: a frozen or
// coarse clock; or a replica whose clock is behind the one that began the
// sign-in) no longer end it, though the deactivation came after it began.
// Before 3c32bfd the missing stamp meant "never reactivated" and any
// ReactivatedAt refused it, whatever the clocks.
func TestPendingSignInCycleSameClockTick(t *testing.T) {
	for _, tc := range []struct {
		name string
		skew time.Duration // the deactivating replica's clock vs the one that began the sign-in
	}{
		{"same tick", 0},
		{"replica clock 2s behind", -2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newMFAFixture(t)
			sys := guard.System("test")
			f.createUser(t, adaEmail, ownerPW)
			_, p := f.signIn(t, adaEmail, ownerPW)
			secret, _ := f.enrolTOTP(t, p)
			f.clock.Advance(30 * time.Second)
			pend := f.pending(t, adaEmail, ownerPW)
			f.clock.Advance(tc.skew)
			if err := f.g.DeactivateUser(f.ctx, sys, tenantID, p.UserID); err != nil {
				t.Fatal(err)
			}
			if err := f.g.ReactivateUser(f.ctx, sys, tenantID, p.UserID); err != nil {
				t.Fatal(err)
			}
			f.clock.Advance(-tc.skew)
			res, err := f.complete(guard.MethodTOTP, pend.Token, f.code(t, secret))
			if err != nil {
				if !errors.Is(err, guard.ErrLoginExpired) && !errors.Is(err, guard.ErrInvalidCredentials) {
					t.Fatalf("CompleteLogin: %v", err)
				}
				return
			}
			if _, err := f.g.Authenticate(f.ctx, res.Token); err == nil {
				t.Errorf("a pending sign-in begun before a deactivation completed into a live session after the reactivation (cycle stamped not after the sign-in's CreatedAt)")
			}
		})
	}
}
