package guard_test

import (
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// Under end_oldest, a session the tenant's policy has already ended (here
// idle past a lowered timeout) neither keeps its place at the session
// limit while a live one is evicted, nor is recorded as evicted: the
// sign-in ends it as the session check would, recorded as
// session.expired (idle_timeout), and the user's live session stays.
func TestSessionLimitEndsPolicyEndedNotLive(t *testing.T) {
	f := newFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	auditSetPolicy(t, f, func(p *guard.Policy) { p.SessionLimit = 2 })
	live, err := f.login(adaEmail, ownerPW)
	if err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	dead, err := f.login(adaEmail, ownerPW)
	if err != nil {
		t.Fatal(err)
	}
	deadP, err := f.g.Authenticate(f.ctx, dead.Token)
	if err != nil {
		t.Fatal(err)
	}
	auditSetPolicy(t, f, func(p *guard.Policy) { p.IdleTimeout = time.Hour })
	f.clock.Advance(50 * time.Minute)
	if _, err := f.g.Authenticate(f.ctx, live.Token); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(20 * time.Minute) // the newer session is 70 min idle under a 1 h timeout

	res, err := f.login(adaEmail, ownerPW)
	if err != nil || res.Token == "" {
		t.Fatalf("sign-in at the limit: %+v, %v", res, err)
	}
	if res.Evicted != 0 {
		t.Errorf("Evicted = %d, want 0: the only session beside the live one had ended under the policy", res.Evicted)
	}
	if _, err := f.g.Authenticate(f.ctx, live.Token); err != nil {
		t.Errorf("the live session after the sign-in: %v, want still signed in", err)
	}
	for _, e := range f.events(t, audit.SessionEvicted) {
		t.Errorf("session.evicted %s recorded; want none", e.Target)
	}
	found := false
	for _, e := range f.events(t, audit.SessionExpired) {
		found = found || e.Target == deadP.SessionID() && e.Reason == "idle_timeout"
	}
	if !found {
		t.Errorf("the session ended under the policy is not on record as session.expired (idle_timeout)")
	}
}

// At the default limit (one session per user, the oldest ending) a
// sign-in evicts the previous session in the same store step; if the
// tenant's policy had already ended it (idle past a lowered timeout), it
// is recorded as session.expired (idle_timeout), not as evicted, and
// LoginResult.Evicted does not count it.
func TestSessionLimitOneRecordsPolicyEnded(t *testing.T) {
	f := newFixture(t)
	f.createUser(t, adaEmail, ownerPW)
	auditSetPolicy(t, f, func(p *guard.Policy) { p.SessionLimit = 1 })
	old, err := f.login(adaEmail, ownerPW)
	if err != nil {
		t.Fatal(err)
	}
	oldP, err := f.g.Authenticate(f.ctx, old.Token)
	if err != nil {
		t.Fatal(err)
	}
	auditSetPolicy(t, f, func(p *guard.Policy) { p.IdleTimeout = time.Hour })
	f.clock.Advance(70 * time.Minute)
	res, err := f.login(adaEmail, ownerPW)
	if err != nil || res.Evicted != 0 {
		t.Fatalf("sign-in: Evicted %d, %v; want 0, nil", res.Evicted, err)
	}
	for _, e := range f.events(t, audit.SessionEvicted) {
		t.Errorf("session.evicted %s recorded; want none", e.Target)
	}
	found := false
	for _, e := range f.events(t, audit.SessionExpired) {
		found = found || e.Target == oldP.SessionID() && e.Reason == "idle_timeout"
	}
	if !found {
		t.Error("the session the policy had ended is not on record as session.expired (idle_timeout)")
	}
	// A live previous session is evicted, and recorded so.
	res2, err := f.login(adaEmail, ownerPW)
	if err != nil || res2.Evicted != 1 {
		t.Fatalf("second sign-in: Evicted %d, %v; want 1, nil", res2.Evicted, err)
	}
	if evs := f.events(t, audit.SessionEvicted); len(evs) != 1 || evs[0].Target != res.Session.ID() {
		t.Errorf("session.evicted events %+v, want one for the previous live session", evs)
	}
}

// The sessions_ended of a record counts the sessions the call ended that
// were live under the tenant's policy too: one idle past a lowered
// timeout had already ended.
func TestSessionsEndedCountsByPolicy(t *testing.T) {
	f := newFixture(t)
	ada := f.createUser(t, adaEmail, ownerPW)
	auditSetPolicy(t, f, func(p *guard.Policy) { p.SessionLimit = 2 })
	if _, err := f.login(adaEmail, ownerPW); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Minute)
	active, err := f.login(adaEmail, ownerPW)
	if err != nil {
		t.Fatal(err)
	}
	auditSetPolicy(t, f, func(p *guard.Policy) { p.IdleTimeout = time.Hour })
	f.clock.Advance(50 * time.Minute)
	if _, err := f.g.Authenticate(f.ctx, active.Token); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(20 * time.Minute) // the first is 71 min idle under a 1 h timeout, the other 20 min
	if err := f.g.ExpirePassword(f.ctx, guard.System("admin"), tenantID, ada.ID); err != nil {
		t.Fatal(err)
	}
	evs := f.events(t, audit.PasswordExpired)
	if len(evs) != 1 || evs[0].Meta["sessions_ended"] != "1" {
		t.Errorf("password.expired events %+v, want one with sessions_ended 1 (the other had ended under the policy)", evs)
	}
}
