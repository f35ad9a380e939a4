package guard_test

import (
	"errors"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// The request that finds a session expired and removes it records the
// expiry (session.expired), once (SECURITY-CHECKLIST AU-1): a step-up
// (Reauthenticate) whose session reached its end while the request ran
// (between the Middleware's check and the renewal, while the password is
// hashed) records it, as Authenticate does; no later request can, the
// session being gone.
func TestReauthenticateRecordsTheExpiryItFinds(t *testing.T) {
	f := newMFAFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	res, p := f.signIn(t, adaEmail, ownerPW)
	// The request's session reaches its absolute end (7 days by default)
	// while the step-up runs.
	f.clock.Advance(7 * 24 * time.Hour)
	_, _, err := f.g.Reauthenticate(f.ctx, p, res.Token, guard.Proof{Password: ownerPW})
	if !errors.Is(err, guard.ErrUnauthenticated) {
		t.Fatalf("Reauthenticate of a session past its lifetime = %v, want ErrUnauthenticated", err)
	}
	if _, err := f.g.Authenticate(f.ctx, res.Token); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Fatalf("Authenticate after = %v, want ErrUnauthenticated", err)
	}
	var got []string
	for _, e := range f.events(t, audit.SessionExpired) {
		if e.Target == res.Session.ID() {
			got = append(got, e.Reason)
		}
	}
	if len(got) != 1 || got[0] != "lifetime" {
		t.Errorf("session.expired records of the session = %q, want one with reason lifetime: the expiry Reauthenticate found and removed is never recorded", got)
	}
}
