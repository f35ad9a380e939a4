package guard_test

import (
	"strconv"
	"strings"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
)

// The notice of a permanent lock is what tells the user that only an
// administrator can let them in again: it is mailed even when a notice
// of a temporary lock went out within the hour (the once-an-hour bound
// keeps a stranger's repeated temporary locks from flooding the inbox; a
// permanent lock happens once until an administrator unlocks it).
func TestPermanentLockNoticedWithinTheHour(t *testing.T) {
	lim := auth.Limit{Max: 2, ResetAfter: time.Hour, LockFor: time.Minute, MaxLockFor: time.Minute, PermanentAfter: 1}
	f := newMFAFixture(t, func(c *guard.Config) { c.AccountLimit = lim })
	f.createUser(t, adaEmail, ownerPW)
	ip := 0
	lock := func() {
		t.Helper()
		for range lim.Max {
			ip++
			_, _ = f.g.Login(f.ctx, guard.LoginRequest{Tenant: tenantID, Email: adaEmail, Password: "wrong guess",
				IP: "198.51.100." + strconv.Itoa(ip), UserAgent: "probe"})
		}
	}
	lock() // temporary
	f.clock.Advance(2 * lim.LockFor)
	lock() // permanent
	locks := f.events(t, audit.LoginLocked)
	if len(locks) != 2 || locks[1].Meta["permanent"] != "true" {
		t.Fatalf("login.locked events %d (the last %v), want 2, the second permanent", len(locks), locks[len(locks)-1].Meta)
	}
	var texts []string
	for _, m := range f.mailTo(adaEmail) {
		if m.Subject == "Your account was locked" {
			texts = append(texts, m.Text)
		}
	}
	if len(texts) != 2 || !strings.Contains(texts[1], "until an administrator unlocks it") {
		t.Errorf("lock notices %q; want two, the second saying an administrator must unlock the account", texts)
	}
}
