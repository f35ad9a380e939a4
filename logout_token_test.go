package guard_test

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/store/memstore"
)

// A client still holding a token that another tab (or whoever else holds
// a copy) rotated signs out: the session the user signed in with ends,
// whatever it was rotated to.
func TestLogoutTokenEndsTheRotatedSession(t *testing.T) {
	f := newFixture(t)
	f.createUser(t, "alice@example.com", ownerPW)
	res, err := f.login("alice@example.com", ownerPW)
	if err != nil {
		t.Fatal(err)
	}
	t2, _, err := f.g.RotateSession(f.ctx, res.Token, 0)
	if err != nil {
		t.Fatal(err)
	}
	t3, s3, err := f.g.RotateSession(f.ctx, t2, 0)
	if err != nil {
		t.Fatal(err)
	}
	// The old token is unauthenticated, not "signed in elsewhere".
	if _, err := f.g.Authenticate(f.ctx, res.Token); !errors.Is(err, guard.ErrUnauthenticated) || errors.Is(err, guard.ErrSignedInElsewhere) {
		t.Fatalf("Authenticate(old token) = %v, want ErrUnauthenticated only", err)
	}
	if err := f.g.LogoutToken(f.ctx, res.Token, "", ""); err != nil {
		t.Fatalf("LogoutToken(old token): %v", err)
	}
	if _, err := f.g.Authenticate(f.ctx, t3); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Fatalf("the rotated session after sign-out with the old token: %v, want ErrUnauthenticated", err)
	}
	evs := f.events(t, audit.Logout)
	if len(evs) != 1 || evs[0].Target != s3.ID() || evs[0].Meta["via"] != "rotated_token" || evs[0].Actor.ID != res.Session.UserID {
		t.Fatalf("logout events = %+v; want one on the rotated session, via rotated_token", evs)
	}
	// Nothing is left to end.
	for _, tok := range []string{res.Token, t2, t3} {
		if err := f.g.LogoutToken(f.ctx, tok, "", ""); !errors.Is(err, guard.ErrUnauthenticated) {
			t.Errorf("LogoutToken again = %v, want ErrUnauthenticated", err)
		}
	}
	if n := len(f.events(t, audit.Logout)); n != 1 {
		t.Errorf("%d logout events, want 1", n)
	}
}

func TestLogoutToken(t *testing.T) {
	t.Run("Live", func(t *testing.T) {
		f := newFixture(t)
		f.createUser(t, "alice@example.com", ownerPW)
		res, _ := f.login("alice@example.com", ownerPW)
		if err := f.g.LogoutToken(f.ctx, res.Token, "203.0.113.7", "Tab/1.0"); err != nil {
			t.Fatal(err)
		}
		if _, err := f.g.Authenticate(f.ctx, res.Token); !errors.Is(err, guard.ErrUnauthenticated) {
			t.Errorf("after LogoutToken: %v", err)
		}
		evs := f.events(t, audit.Logout)
		if len(evs) != 1 || evs[0].Target != res.Session.ID() || evs[0].Meta["via"] != "" {
			t.Errorf("logout events = %+v; want one on the session, not via a rotated token", evs)
		}
		if len(evs) == 1 && (evs[0].IP != "203.0.113.7" || evs[0].UserAgent != "Tab/1.0") {
			t.Errorf("logout recorded from %q, %q; want the sign-out request's client 203.0.113.7, Tab/1.0", evs[0].IP, evs[0].UserAgent)
		}
	})
	t.Run("EvictedEndsNothing", func(t *testing.T) {
		f := newFixture(t) // one session per user
		f.createUser(t, "alice@example.com", ownerPW)
		old, _ := f.login("alice@example.com", ownerPW)
		f.clock.Advance(time.Minute)
		cur, _ := f.login("alice@example.com", ownerPW)
		if err := f.g.LogoutToken(f.ctx, old.Token, "", ""); !errors.Is(err, guard.ErrUnauthenticated) {
			t.Fatalf("LogoutToken(evicted) = %v, want ErrUnauthenticated", err)
		}
		if _, err := f.g.Authenticate(f.ctx, cur.Token); err != nil {
			t.Errorf("the newer sign-in: %v", err)
		}
		if n := len(f.events(t, audit.Logout)); n != 0 {
			t.Errorf("%d logout events, want 0", n)
		}
	})
	t.Run("BadTokens", func(t *testing.T) {
		f := newFixture(t)
		for _, tok := range []string{"", "nope", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"} {
			if err := f.g.LogoutToken(f.ctx, tok, "", ""); !errors.Is(err, guard.ErrUnauthenticated) {
				t.Errorf("LogoutToken(%q) = %v, want ErrUnauthenticated", tok, err)
			}
		}
	})
	t.Run("StoreDown", func(t *testing.T) {
		var fs *failingSessions
		f := newFixture(t, func(c *guard.Config) {
			fs = &failingSessions{Sessions: f0sessions(c)}
			c.Stores.Sessions = fs
		})
		f.createUser(t, "alice@example.com", ownerPW)
		res, _ := f.login("alice@example.com", ownerPW)
		t2, _, err := f.g.RotateSession(f.ctx, res.Token, 0)
		if err != nil {
			t.Fatal(err)
		}
		fs.set(true)
		if err := f.g.LogoutToken(f.ctx, res.Token, "", ""); !errors.Is(err, guard.ErrUnavailable) {
			t.Fatalf("LogoutToken with the store down = %v, want ErrUnavailable", err)
		}
		fs.set(false)
		if _, err := f.g.Authenticate(f.ctx, t2); err != nil {
			t.Errorf("the session after a failed sign-out: %v", err)
		}
	})
	t.Run("AuditDown", func(t *testing.T) {
		var fa *failingAudit
		f := newFixture(t, func(c *guard.Config) {
			fa = &failingAudit{Audit: c.Stores.Audit.(*memstore.Audit)}
			c.Stores.Audit = fa
		})
		f.createUser(t, "alice@example.com", ownerPW)
		res, _ := f.login("alice@example.com", ownerPW)
		t2, _, err := f.g.RotateSession(f.ctx, res.Token, 0)
		if err != nil {
			t.Fatal(err)
		}
		fa.set(true)
		if err := f.g.LogoutToken(f.ctx, res.Token, "", ""); !errors.Is(err, guard.ErrUnavailable) {
			t.Fatalf("LogoutToken with the audit log down = %v, want ErrUnavailable", err)
		}
		fa.set(false)
		// The revocation stands.
		if _, err := f.g.Authenticate(f.ctx, t2); !errors.Is(err, guard.ErrUnauthenticated) {
			t.Errorf("the session after an unrecorded sign-out: %v", err)
		}
	})
}

// Tabs rotate the session while others sign out with old tokens: once a
// LogoutToken has succeeded, no session of the user is left.
func TestLogoutTokenRacesRotation(t *testing.T) {
	f := newFixture(t)
	f.createUser(t, "alice@example.com", ownerPW)
	var successes atomic.Int64
	for round := range 10 {
		res, err := f.login("alice@example.com", ownerPW)
		if err != nil {
			t.Fatal(err)
		}
		var (
			mu       sync.Mutex
			tokens   = []string{res.Token}
			rotators sync.WaitGroup
			signouts sync.WaitGroup
			ended    = make(chan struct{})
		)
		for range 4 {
			rotators.Add(1)
			go func() {
				defer rotators.Done()
				for {
					select {
					case <-ended:
						return
					default:
					}
					mu.Lock()
					cur := tokens[len(tokens)-1]
					mu.Unlock()
					nt, _, err := f.g.RotateSession(f.ctx, cur, 0)
					switch {
					case err == nil:
						mu.Lock()
						tokens = append(tokens, nt)
						mu.Unlock()
					case !errors.Is(err, guard.ErrUnauthenticated):
						t.Errorf("RotateSession: %v", err)
						return
					}
				}
			}()
		}
		for i := range 4 {
			signouts.Add(1)
			go func() {
				defer signouts.Done()
				for range 30 {
					mu.Lock()
					tok := tokens[min(i, len(tokens)-1)]
					mu.Unlock()
					err := f.g.LogoutToken(f.ctx, tok, "", "")
					switch {
					case err == nil:
						successes.Add(1)
						for _, tok := range tokensOf(&mu, &tokens) {
							if _, err := f.g.Authenticate(f.ctx, tok); !errors.Is(err, guard.ErrUnauthenticated) {
								t.Errorf("round %d: a token of the lineage still authenticates after LogoutToken: %v", round, err)
							}
						}
						return
					case !errors.Is(err, guard.ErrUnauthenticated):
						t.Errorf("LogoutToken: %v", err)
						return
					}
				}
			}()
		}
		signouts.Wait()
		close(ended)
		rotators.Wait()
		f.clock.Advance(time.Minute)
	}
	if successes.Load() == 0 {
		t.Error("no LogoutToken succeeded")
	}
}

func tokensOf(mu *sync.Mutex, tokens *[]string) []string {
	mu.Lock()
	defer mu.Unlock()
	return append([]string(nil), *tokens...)
}
