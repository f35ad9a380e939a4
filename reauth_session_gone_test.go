package guard_test

import (
	"errors"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// A step-up whose proof is right but whose session is gone when it comes
// to be renewed (renewed first by a request of its own, as a password-only
// step-up submitted twice; ended; expired) is ErrUnauthenticated and, as
// every step-up attempt, on record: session.reauthenticated failed, reason
// login_expired. It used to return without a record.
func TestStepUpSessionGoneRecorded(t *testing.T) {
	f := newFixture(t, manySessions)
	f.createUser(t, adaEmail, ownerPW)
	p, token := f.signIn(t, adaEmail)
	if _, _, err := f.g.Reauthenticate(f.ctx, p, token, guard.Proof{Password: ownerPW}); err != nil {
		t.Fatalf("the first step-up: %v", err)
	}
	before := len(f.events(t, audit.Reauthenticated))
	_, _, err := f.g.Reauthenticate(f.ctx, p, token, guard.Proof{Password: ownerPW})
	if !errors.Is(err, guard.ErrUnauthenticated) {
		t.Fatalf("the second step-up, its token renewed: %v, want ErrUnauthenticated", err)
	}
	evs := f.events(t, audit.Reauthenticated)[before:]
	if len(evs) != 1 || evs[0].Outcome != audit.Failure || evs[0].Reason != guard.ReasonLoginExpired || evs[0].Actor.ID != p.UserID {
		t.Errorf("session.reauthenticated events after the second step-up: %+v, want one failure, reason %s, by Ada",
			evs, guard.ReasonLoginExpired)
	}
}
