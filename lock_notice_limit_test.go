package guard_test

import (
	"strconv"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// Every lock is recorded, but the account's owner is mailed at most one
// lock notice an hour: a stranger who locks the account again and again
// cannot flood the inbox. The next hour's first lock is noticed again.
func TestLockNoticeOnceAnHour(t *testing.T) {
	f := newMFAFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	ip := 0
	lock := func() {
		t.Helper()
		for range guard.DefaultAccountLimit.Max {
			ip++
			_, _ = f.g.Login(f.ctx, guard.LoginRequest{Tenant: tenantID, Email: adaEmail, Password: "wrong guess",
				IP: "198.51.100." + strconv.Itoa(ip), UserAgent: "probe"})
		}
	}
	notices := func() int {
		n := 0
		for _, m := range f.mailTo(adaEmail) {
			if m.Subject == "Your account was locked" {
				n++
			}
		}
		return n
	}
	lock()
	f.clock.Advance(5 * time.Minute)
	lock()
	if n := len(f.events(t, audit.LoginLocked)); n != 2 {
		t.Fatalf("%d login.locked events, want 2", n)
	}
	if n := notices(); n != 1 {
		t.Errorf("%d lock notices for two locks in an hour, want 1", n)
	}
	f.clock.Advance(time.Hour)
	lock()
	if n := len(f.events(t, audit.LoginLocked)); n != 3 {
		t.Fatalf("%d login.locked events, want 3", n)
	}
	if n := notices(); n != 2 {
		t.Errorf("%d lock notices after a lock the next hour, want 2", n)
	}
}
