package guard_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/session"
	"github.com/guardhq/guard/store/memstore"
)

// setSessionLimit sets the tenant's session limit (and what a sign-in
// beyond it does) as the system, and moves the clock past the policy
// cache. It returns SetPolicy's answer.
func setSessionLimit(t *testing.T, g *guard.Guard, c *clock, n int, on string) (int64, error) {
	t.Helper()
	ctx := context.Background()
	tn, err := g.Tenant(ctx, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	pol := tn.Policy
	pol.SessionLimit, pol.OnSessionLimit = n, on
	v, err := g.SetPolicy(ctx, guard.System("admin"), tenantID, pol, tn.Version)
	c.Advance(time.Second)
	return v, err
}

// signIns signs email in n times, a second apart (so that each session
// is newer than the last), and returns the results, oldest first.
func signIns(t *testing.T, g *guard.Guard, c *clock, email string, n int) []guard.LoginResult {
	t.Helper()
	out := make([]guard.LoginResult, n)
	for i := range out {
		res, err := g.Login(context.Background(), guard.LoginRequest{Tenant: tenantID, Email: email, Password: ownerPW, IP: "203.0.113.5", UserAgent: "test"})
		if err != nil || res.Token == "" {
			t.Fatalf("sign-in %d of %s: %+v, %v", i, email, res, err)
		}
		out[i] = res
		c.Advance(time.Second)
	}
	return out
}

// working reports, for each sign-in, whether its token still authenticates.
func working(t *testing.T, g *guard.Guard, rs []guard.LoginResult) []bool {
	t.Helper()
	out := make([]bool, len(rs))
	for i, r := range rs {
		_, err := g.Authenticate(context.Background(), r.Token)
		switch {
		case err == nil:
			out[i] = true
		case !errors.Is(err, guard.ErrUnauthenticated):
			t.Fatalf("Authenticate of sign-in %d: %v, want nil or ErrUnauthenticated", i, err)
		}
	}
	return out
}

// trimEvents returns the session.revoked events of the trim (by the
// system, reason session_limit) by session ID, failing on any other
// session.revoked event or on two for one session.
func trimEvents(t *testing.T, f *fixture) map[string]audit.Event {
	t.Helper()
	out := map[string]audit.Event{}
	for _, e := range f.events(t, audit.SessionRevoked) {
		if e.Reason != guard.ReasonSessionLimit || e.Actor.Kind != audit.ActorSystem || e.Outcome != audit.Success || e.Meta["user"] == "" {
			t.Errorf("session.revoked event %+v, want by the system, reason session_limit, with the user", e)
		}
		if _, dup := out[e.Target]; dup {
			t.Errorf("two session.revoked events for session %s", e.Target)
		}
		out[e.Target] = e
	}
	return out
}

// A lowered session limit reaches the sessions already open: each user's
// oldest beyond it end at once, the newest are kept, whatever the limit
// does to new sign-ins; a raised limit, or any other change, ends
// nothing. Before, a user kept every session opened under the old limit
// until it expired.
func TestLoweredSessionLimitEndsOldestSessions(t *testing.T) {
	for _, on := range []string{guard.EndOldestSession, guard.RefuseNewSession} {
		t.Run(on, func(t *testing.T) {
			f := newFixture(t)
			ada := f.createUser(t, adaEmail, ownerPW)
			f.createUser(t, "bob@example.test", ownerPW)
			if _, err := setSessionLimit(t, f.g, f.clock, 3, on); err != nil {
				t.Fatal(err)
			}
			adas := signIns(t, f.g, f.clock, adaEmail, 3)
			bobs := signIns(t, f.g, f.clock, "bob@example.test", 1)
			if _, err := setSessionLimit(t, f.g, f.clock, 1, on); err != nil {
				t.Fatalf("SetPolicy lowering the limit: %v", err)
			}
			if w := working(t, f.g, adas); w[0] || w[1] || !w[2] {
				t.Errorf("ada's three sessions working after the limit went 3 → 1: %v, want only the newest", w)
			}
			if w := working(t, f.g, bobs); !w[0] {
				t.Error("bob's only session ended")
			}
			evs := trimEvents(t, f)
			if len(evs) != 2 {
				t.Fatalf("%d session.revoked events, want 2", len(evs))
			}
			for _, r := range adas[:2] {
				if e, ok := evs[r.Session.ID()]; !ok || e.Meta["user"] != ada.ID {
					t.Errorf("the ended session %s: event %+v, want one naming ada", r.Session.ID(), e)
				}
			}
			ss, err := f.g.UserSessions(f.ctx, guard.System("test"), tenantID, ada.ID)
			if err != nil || len(ss) != 1 || ss[0].Hash != adas[2].Session.Hash {
				t.Errorf("ada's sessions: %d, %v; want the newest only", len(ss), err)
			}
			// The session kept counts toward the limit as any other.
			res, err := f.login(adaEmail, ownerPW)
			switch on {
			case guard.RefuseNewSession:
				if !errors.Is(err, guard.ErrSessionLimit) {
					t.Errorf("a new sign-in under refuse_new: %v, want ErrSessionLimit", err)
				}
			default:
				if err != nil || res.Evicted != 1 {
					t.Errorf("a new sign-in under end_oldest: evicted %d, %v; want 1", res.Evicted, err)
				}
			}
		})
	}
	t.Run("RaisedOrUnchangedEndsNothing", func(t *testing.T) {
		users := &listSpy{}
		f := newFixture(t, func(c *guard.Config) {
			users.UserStore = c.Stores.Users
			c.Stores.Users = users
		})
		f.createUser(t, adaEmail, ownerPW)
		if _, err := setSessionLimit(t, f.g, f.clock, 3, ""); err != nil {
			t.Fatal(err)
		}
		adas := signIns(t, f.g, f.clock, adaEmail, 3)
		users.reset()
		if _, err := setSessionLimit(t, f.g, f.clock, 5, ""); err != nil {
			t.Fatal(err)
		}
		if _, err := setSessionLimit(t, f.g, f.clock, 5, guard.RefuseNewSession); err != nil {
			t.Fatal(err)
		}
		if w := working(t, f.g, adas); !w[0] || !w[1] || !w[2] {
			t.Errorf("sessions working after the limit went 3 → 5: %v, want all", w)
		}
		if evs := f.events(t, audit.SessionRevoked); len(evs) != 0 {
			t.Errorf("session.revoked events %+v, want none", evs)
		}
		if calls, _ := users.counts(); calls != 0 {
			t.Errorf("the tenant's users listed %d times, want no trim at all", calls)
		}
	})
	t.Run("DefaultTakenAgain", func(t *testing.T) {
		// 0 takes the default (1): from 3 that lowers the limit too.
		f := newFixture(t)
		f.createUser(t, adaEmail, ownerPW)
		if _, err := setSessionLimit(t, f.g, f.clock, 3, ""); err != nil {
			t.Fatal(err)
		}
		adas := signIns(t, f.g, f.clock, adaEmail, 2)
		if _, err := setSessionLimit(t, f.g, f.clock, 0, ""); err != nil {
			t.Fatal(err)
		}
		if w := working(t, f.g, adas); w[0] || !w[1] {
			t.Errorf("sessions working after the limit went 3 → the default 1: %v, want the newest", w)
		}
	})
	t.Run("PagedThroughUsers", func(t *testing.T) {
		// More users than one page of the listing: the trim reaches
		// users on every page, reading them a page at a time.
		users := &listSpy{}
		f := newFixture(t, func(c *guard.Config) {
			users.UserStore = c.Stores.Users
			c.Stores.Users = users
		})
		if _, err := setSessionLimit(t, f.g, f.clock, 2, ""); err != nil {
			t.Fatal(err)
		}
		for i := range 230 {
			f.createUser(t, fmt.Sprintf("user%03d@example.test", i), ownerPW)
		}
		all, err := f.g.ListUsers(f.ctx, guard.System("test"), tenantID, "", 1000)
		if err != nil || len(all) != 230 {
			t.Fatalf("ListUsers: %d, %v", len(all), err)
		}
		// The first and last users by ID, and one in between.
		var rs [][]guard.LoginResult
		for _, u := range []guard.User{all[0], all[115], all[229]} {
			rs = append(rs, signIns(t, f.g, f.clock, u.Email, 2))
		}
		users.reset()
		if _, err := setSessionLimit(t, f.g, f.clock, 1, ""); err != nil {
			t.Fatal(err)
		}
		for i, r := range rs {
			if w := working(t, f.g, r); w[0] || !w[1] {
				t.Errorf("user %d: sessions working %v, want the newest", i, w)
			}
		}
		if calls, most := users.counts(); calls < 3 || most > 100 {
			t.Errorf("users listed in %d calls of at most %d, want pages of at most 100", calls, most)
		}
	})
}

// listSpy counts the calls that list users, and the largest page asked.
type listSpy struct {
	auth.UserStore
	mu          sync.Mutex
	calls, most int
}

func (s *listSpy) ListUserSummaries(ctx context.Context, tenant, after string, limit int) ([]auth.UserSummary, error) {
	s.note(limit)
	return s.UserStore.ListUserSummaries(ctx, tenant, after, limit)
}

func (s *listSpy) ListUsers(ctx context.Context, tenant, after string, limit int) ([]auth.User, error) {
	s.note(limit)
	return s.UserStore.ListUsers(ctx, tenant, after, limit)
}

func (s *listSpy) note(limit int) {
	s.mu.Lock()
	s.calls++
	s.most = max(s.most, limit)
	s.mu.Unlock()
}

func (s *listSpy) reset() { s.mu.Lock(); s.calls, s.most = 0, 0; s.mu.Unlock() }

func (s *listSpy) counts() (int, int) { s.mu.Lock(); defer s.mu.Unlock(); return s.calls, s.most }

// deleteFailer fails session deletes once the allowance runs out
// (negative: never).
type deleteFailer struct {
	*memstore.Sessions
	left atomic.Int64
}

func (s *deleteFailer) Delete(ctx context.Context, h session.Hash) (session.Session, error) {
	if s.left.Load() >= 0 && s.left.Add(-1) < 0 {
		return session.Session{}, errDown
	}
	return s.Sessions.Delete(ctx, h)
}

// A store failure in the middle of the trim: the policy change stands
// (stored, recorded) and SetPolicy says the trim failed (ErrUnavailable)
// with the new version; every session is either ended and recorded or
// untouched — none ended without its event, none recorded and left
// working — and Maintain ends the rest.
func TestSessionLimitTrimStoreFailure(t *testing.T) {
	ds := &deleteFailer{}
	ds.left.Store(-1)
	f := newFixture(t, func(c *guard.Config) {
		ds.Sessions = f0sessions(c)
		c.Stores.Sessions = ds
	})
	f.createUser(t, adaEmail, ownerPW)
	f.createUser(t, "bob@example.test", ownerPW)
	if _, err := setSessionLimit(t, f.g, f.clock, 3, ""); err != nil {
		t.Fatal(err)
	}
	rs := append(signIns(t, f.g, f.clock, adaEmail, 3), signIns(t, f.g, f.clock, "bob@example.test", 3)...)
	before, _ := f.g.Tenant(f.ctx, tenantID)

	ds.left.Store(1) // one delete, then the store fails
	v, err := setSessionLimit(t, f.g, f.clock, 1, "")
	if !errors.Is(err, guard.ErrUnavailable) || !errors.Is(err, errDown) {
		t.Fatalf("SetPolicy with the session store failing mid-trim: %v, want ErrUnavailable", err)
	}
	after, err := f.g.Tenant(f.ctx, tenantID)
	if err != nil || v != before.Version+1 || after.Version != v || after.Policy.SessionLimit != 1 {
		t.Fatalf("after the failed trim: version %d returned, tenant %+v, %v; want the change stored", v, after, err)
	}
	if evs := f.events(t, audit.TenantPolicySet); len(evs) != 2 || evs[1].Meta["session_limit"] != "1" {
		t.Errorf("tenant.policy_changed events %+v, want the change recorded", evs)
	}
	consistent := func(want int) {
		t.Helper()
		evs := trimEvents(t, f)
		w := working(t, f.g, rs)
		ended := 0
		for i, r := range rs {
			_, recorded := evs[r.Session.ID()]
			if recorded == w[i] {
				t.Errorf("session %d: working %v, recorded as ended %v", i, w[i], recorded)
			}
			if !w[i] {
				ended++
			}
		}
		if ended != want || len(evs) != want {
			t.Errorf("%d sessions ended, %d recorded; want %d", ended, len(evs), want)
		}
	}
	consistent(1)

	ds.left.Store(-1)
	rep, err := f.g.Maintain(f.ctx, guard.System("cron"), guard.MaintainOptions{})
	if err != nil || rep.SessionsTrimmed[tenantID] != 3 {
		t.Fatalf("Maintain after the failure: %+v, %v; want 3 sessions trimmed", rep, err)
	}
	consistent(4)
	if w := working(t, f.g, rs); !w[2] || !w[5] {
		t.Errorf("sessions working %v, want each user's newest", w)
	}
}

// A sign-in on a replica that has not yet seen the lowered limit (its
// policy cache) opens a session under the old one after the trim;
// Maintain ends the extra one within its next run, keeping the newest,
// and a run with nothing to trim ends and records nothing.
func TestMaintainTrimsSessionsMissed(t *testing.T) {
	var cfg guard.Config
	f := newFixture(t, func(c *guard.Config) { cfg = *c })
	cfg.PolicyCacheTTL = time.Hour
	stale, err := guard.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.createUser(t, adaEmail, ownerPW)
	if _, err := setSessionLimit(t, f.g, f.clock, 3, ""); err != nil {
		t.Fatal(err)
	}
	adas := signIns(t, f.g, f.clock, adaEmail, 3)
	if pol, err := stale.EffectivePolicy(f.ctx, tenantID); err != nil || pol.SessionLimit != 3 {
		t.Fatalf("the other replica's policy: %+v, %v", pol, err)
	}
	if _, err := setSessionLimit(t, f.g, f.clock, 1, ""); err != nil {
		t.Fatal(err)
	}
	late := signIns(t, stale, f.clock, adaEmail, 1)
	if w := working(t, f.g, append(adas, late...)); w[0] || w[1] || !w[2] || !w[3] {
		t.Fatalf("sessions working %v, want the trim's newest and the late sign-in's", w)
	}

	sys := guard.System("cron")
	rep, err := f.g.Maintain(f.ctx, sys, guard.MaintainOptions{})
	if err != nil || rep.SessionsTrimmed[tenantID] != 1 {
		t.Fatalf("Maintain: %+v, %v; want one session trimmed", rep, err)
	}
	if w := working(t, f.g, append(adas, late...)); w[2] || !w[3] {
		t.Errorf("sessions working after Maintain %v, want the newest only", w)
	}
	if evs := trimEvents(t, f); len(evs) != 3 {
		t.Errorf("%d session.revoked events, want 3", len(evs))
	}
	rep, err = f.g.Maintain(f.ctx, sys, guard.MaintainOptions{})
	if err != nil || len(rep.SessionsTrimmed) != 0 {
		t.Errorf("a second run: %+v, %v; want nothing trimmed", rep, err)
	}
	if evs := trimEvents(t, f); len(evs) != 3 {
		t.Errorf("%d session.revoked events after a run with nothing to trim, want 3", len(evs))
	}
}

// The trim races sign-ins: users with three sessions each sign in again
// while the limit goes 3 → 1, half on the replica that makes the change
// and half on one whose policy cache still holds the old limit. No new
// sign-in is ever ended by the trim; every old session ends exactly once
// (evicted by a sign-in or revoked by the trim, never both); and after
// Maintain each user has the new session only.
func TestSessionLimitTrimRacesSignIns(t *testing.T) {
	var cfg guard.Config
	f := newFixture(t, func(c *guard.Config) {
		c.AccountLimit, c.IPLimit = guard.DefaultAccountLimit, guard.DefaultIPLimit
		c.AccountLimit.Max, c.IPLimit.Max = 1000, 1000
		cfg = *c
	})
	cfg.PolicyCacheTTL = time.Hour
	stale, err := guard.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := setSessionLimit(t, f.g, f.clock, 3, ""); err != nil {
		t.Fatal(err)
	}
	const users = 12
	var olds [][]guard.LoginResult
	var ids []string
	for i := range users {
		u := f.createUser(t, fmt.Sprintf("user%02d@example.test", i), ownerPW)
		ids = append(ids, u.ID)
		olds = append(olds, signIns(t, f.g, f.clock, u.Email, 3))
	}
	if _, err := stale.EffectivePolicy(f.ctx, tenantID); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Second)

	tn, err := f.g.Tenant(f.ctx, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	news := make([]guard.LoginResult, users)
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range users {
		g := f.g
		if i%2 == 1 {
			g = stale
		}
		wg.Go(func() {
			<-start
			res, err := g.Login(f.ctx, guard.LoginRequest{Tenant: tenantID, Email: fmt.Sprintf("user%02d@example.test", i), Password: ownerPW, IP: "203.0.113.5"})
			if err != nil {
				t.Errorf("sign-in of user %d: %v", i, err)
			}
			news[i] = res
		})
	}
	pol := tn.Policy
	pol.SessionLimit = 1
	wg.Go(func() {
		<-start
		if _, err := f.g.SetPolicy(f.ctx, guard.System("admin"), tenantID, pol, tn.Version); err != nil {
			t.Errorf("SetPolicy: %v", err)
		}
	})
	close(start)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	check := func(when string) {
		t.Helper()
		for i := range users {
			if w := working(t, f.g, news[i:i+1]); !w[0] {
				t.Errorf("%s: user %d's new sign-in was ended", when, i)
			}
		}
	}
	check("after the race")
	if _, err := f.g.Maintain(f.ctx, guard.System("cron"), guard.MaintainOptions{}); err != nil {
		t.Fatal(err)
	}
	check("after Maintain")
	revoked := trimEvents(t, f)
	evicted := map[string]int{}
	for _, e := range f.events(t, audit.SessionEvicted) {
		evicted[e.Target]++
	}
	for i := range users {
		for j, r := range olds[i] {
			id := r.Session.ID()
			_, rv := revoked[id]
			if n := evicted[id] + map[bool]int{true: 1}[rv]; n != 1 {
				t.Errorf("user %d's old session %d: %d ending events (revoked %v, evicted %d), want exactly 1", i, j, n, rv, evicted[id])
			}
		}
		if _, rv := revoked[news[i].Session.ID()]; rv || evicted[news[i].Session.ID()] != 0 {
			t.Errorf("user %d's new session recorded as ended", i)
		}
		if w := working(t, f.g, olds[i]); w[0] || w[1] || w[2] {
			t.Errorf("user %d's old sessions working %v, want none", i, w)
		}
		ss, err := f.g.UserSessions(f.ctx, guard.System("test"), tenantID, ids[i])
		if err != nil || len(ss) != 1 || ss[0].Hash != news[i].Session.Hash {
			t.Errorf("user %d has %d sessions, %v; want the new one only", i, len(ss), err)
		}
	}
}
