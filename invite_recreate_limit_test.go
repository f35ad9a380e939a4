package guard_test

import (
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
)

// Invitations are bounded "so that an administrator's session or key in a
// loop cannot flood an inbox" (SendInvitation). A loop that deletes the
// invited user and creates them again, with the same address, gets a
// fresh count each time: the address receives invitations without bound.
// The invitations to one address an hour must stay within
// Recovery.Limits.PerAccount (default 5).
func TestInvitationsToOneAddressBoundedAcrossRecreatedUsers(t *testing.T) {
	f := newMFAFixture(t)
	f.createUser(t, adaEmail, ownerPW) // the tenant's owner stays
	admin := guard.System("test")
	const invitee = "invitee@elsewhere.test"
	refused := 0
	for i := range 4 {
		u := f.createUser(t, invitee, "a long enough passphrase 1")
		for range 5 {
			switch err := f.g.SendInvitation(f.ctx, admin, tenantID, u.ID); {
			case errors.Is(err, guard.ErrTooManyAttempts):
				refused++
			case err != nil:
				t.Fatalf("round %d: SendInvitation: %v", i, err)
			}
		}
		if err := f.g.DeleteUser(f.ctx, admin, tenantID, u.ID); err != nil {
			t.Fatalf("round %d: DeleteUser: %v", i, err)
		}
	}
	if n := len(f.mailTo(invitee)); n > 5 {
		t.Errorf("%d invitations mailed to one address within the hour (%d refused), want at most 5", n, refused)
	}
}
