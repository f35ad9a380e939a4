package guard_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
)

// The failure that locks a client IP is recorded as login.locked with
// Meta scope ip, once, in the tenant of the attempt (it was not recorded
// at all); an account's lock has scope account, and both are recorded
// when one failure starts both.
func TestIPLockRecorded(t *testing.T) {
	f := newFixture(t, func(c *guard.Config) {
		c.IPLimit = auth.Limit{Max: 5, ResetAfter: time.Hour, LockFor: 5 * time.Minute, MaxLockFor: time.Hour}
	})
	f.createUser(t, "alice@example.com", ownerPW)
	// Four failures on four invented names, then the fifth on alice's
	// account, its fifth failure too: one failure starts both locks.
	for i := range 4 {
		if _, err := f.login(fmt.Sprintf("nobody%d@example.com", i), "wrong password 1"); !errors.Is(err, guard.ErrInvalidCredentials) {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	if n := len(f.events(t, audit.LoginLocked)); n != 0 {
		t.Fatalf("%d login.locked before any lock", n)
	}
	if _, err := f.login("alice@example.com", "wrong password 1"); !errors.Is(err, guard.ErrInvalidCredentials) {
		t.Fatal(err)
	}
	locks := f.events(t, audit.LoginLocked)
	scopes := map[string]int{}
	for _, e := range locks {
		scopes[e.Meta["scope"]]++
		if e.Meta["until"] == "" || e.Meta["lockouts"] != "1" {
			t.Errorf("login.locked %s: Meta %v", e.Meta["scope"], e.Meta)
		}
	}
	if len(locks) != 1 || scopes["ip"] != 1 {
		t.Fatalf("login.locked scopes %v, want one ip", scopes)
	}
	// Refused while locked: no second record.
	if _, err := f.login("alice@example.com", ownerPW); !errors.Is(err, guard.ErrInvalidCredentials) {
		t.Fatalf("while the address is locked: %v", err)
	}
	if n := len(f.events(t, audit.LoginLocked)); n != 1 {
		t.Errorf("%d login.locked after a refused attempt, want 1", n)
	}

	// Both at once: a new address's fifth failure is alice's account's fifth.
	g := newFixture(t, func(c *guard.Config) {
		c.IPLimit = auth.Limit{Max: 5, ResetAfter: time.Hour, LockFor: 5 * time.Minute, MaxLockFor: time.Hour}
	})
	g.createUser(t, "alice@example.com", ownerPW)
	for i := range 5 {
		if _, err := g.login("alice@example.com", "wrong password 1"); !errors.Is(err, guard.ErrInvalidCredentials) {
			t.Fatalf("failure %d: %v", i, err)
		}
	}
	scopes = map[string]int{}
	for _, e := range g.events(t, audit.LoginLocked) {
		scopes[e.Meta["scope"]]++
	}
	if scopes["ip"] != 1 || scopes["account"] != 1 || len(scopes) != 2 {
		t.Errorf("one failure locking both: scopes %v, want one ip and one account", scopes)
	}
}
