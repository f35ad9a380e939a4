package guard_test

import (
	"errors"
	"testing"

	"golang.org/x/crypto/bcrypt"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// An outdated password hash is rehashed only by a sign-in the password
// let through: one the session limit refuses (RefuseNewSession) leaves
// the stored hash as it is (the mailed reset and email-change links are
// bound to it) and records no password.rehashed. One that goes on to its
// second factor rehashes (else a user who always signs in with one would
// keep an imported or weaker hash for ever), as one that gets its session
// does.
func TestLoginRehashesOnlySignInsLetThrough(t *testing.T) {
	tests := []struct {
		name       string
		setup      func(t *testing.T, f *mfaFixture, p guard.Principal)
		check      func(t *testing.T, res guard.LoginResult, err error)
		wantRehash bool
	}{
		{"session limit refuses", func(t *testing.T, f *mfaFixture, _ guard.Principal) {
			tn, _ := f.g.Tenant(f.ctx, tenantID)
			if _, err := f.g.SetPolicy(f.ctx, guard.System("test"), tenantID, guard.Policy{SessionLimit: 1, OnSessionLimit: guard.RefuseNewSession}, tn.Version); err != nil {
				t.Fatal(err)
			}
		}, func(t *testing.T, _ guard.LoginResult, err error) {
			if !errors.Is(err, guard.ErrSessionLimit) {
				t.Fatalf("second sign-in at a limit of one, refuse_new: %v, want ErrSessionLimit", err)
			}
		}, false},
		{"second factor pending", func(t *testing.T, f *mfaFixture, p guard.Principal) {
			f.enrolTOTP(t, p)
		}, func(t *testing.T, res guard.LoginResult, err error) {
			if err != nil || res.Pending == nil {
				t.Fatalf("sign-in of a user with an authenticator app: %+v, %v; want it pending", res, err)
			}
		}, true},
		{"session created", func(*testing.T, *mfaFixture, guard.Principal) {}, func(t *testing.T, res guard.LoginResult, err error) {
			if err != nil || res.Token == "" {
				t.Fatalf("sign-in: %+v, %v; want a session", res, err)
			}
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newMFAFixture(t)
			u := f.createUser(t, "alice@example.com", ownerPW)
			_, p := f.signIn(t, "alice@example.com", ownerPW)
			tt.setup(t, f, p)
			// An imported bcrypt hash of the same password: outdated.
			old, err := bcrypt.GenerateFromPassword([]byte(ownerPW), bcrypt.MinCost)
			if err != nil {
				t.Fatal(err)
			}
			stores := f.mem.Stores()
			cur, err := stores.Users.User(f.ctx, tenantID, u.ID)
			if err != nil {
				t.Fatal(err)
			}
			if err := stores.UserUpdates.RehashPassword(f.ctx, tenantID, u.ID, cur.PasswordHash, string(old)); err != nil {
				t.Fatal(err)
			}
			before := len(f.events(t, audit.PasswordRehashed))
			res, err := f.login("alice@example.com", ownerPW)
			tt.check(t, res, err)
			now, _ := stores.Users.User(f.ctx, tenantID, u.ID)
			if rehashed := now.PasswordHash != string(old); rehashed != tt.wantRehash {
				t.Errorf("stored hash rewritten: %v, want %v", rehashed, tt.wantRehash)
			}
			want := 0
			if tt.wantRehash {
				want = 1
			}
			if n := len(f.events(t, audit.PasswordRehashed)) - before; n != want {
				t.Errorf("password.rehashed recorded %d times, want %d", n, want)
			}
		})
	}
}
