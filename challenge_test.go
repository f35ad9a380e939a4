package guard_test

import (
	"net/http"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/rbac"
)

// RFC 9110 §11.6.1: a 401 must carry WWW-Authenticate. Every guarded
// route takes an API key as a Bearer token, so every 401 Guard writes
// carries the challenge a bad key gets, with Config.OnRefuse or without
// (the hook finds it on w), and keeps its Guard-Reason.
func TestEvery401CarriesAChallenge(t *testing.T) {
	const want = `Bearer realm="api"`
	for _, hook := range []bool{false, true} {
		name := "plain"
		if hook {
			name = "OnRefuse"
		}
		t.Run(name, func(t *testing.T) {
			var seen http.Header // w's header when OnRefuse ran
			f := newFixture(t, func(c *guard.Config) {
				if hook {
					c.OnRefuse = func(w http.ResponseWriter, r *http.Request, status int, cause error) {
						seen = w.Header().Clone()
						w.WriteHeader(status)
					}
				}
			})
			f.createUser(t, "alice@example.com", ownerPW)
			first, err := f.login("alice@example.com", ownerPW)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := f.login("alice@example.com", ownerPW); err != nil { // ends the first session
				t.Fatal(err)
			}
			ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
			mw := f.g.Middleware
			for _, c := range []struct {
				name   string
				h      http.Handler
				token  string
				header []string
				reason string // Guard-Reason expected
				byHook bool   // the answer goes through OnRefuse
			}{
				{name: "Middleware, a bad API key", h: mw(ok), header: []string{"Authorization", "Bearer gk_not-a-key"}, byHook: true},
				{name: "Middleware, two Authorization headers", h: mw(ok),
					header: []string{"Authorization", "Bearer gk_a", "Authorization", "Bearer gk_b"}, byHook: true},
				{name: "RequireSession, anonymous", h: mw(guard.RequireSession(ok))},
				{name: "RequireSession, signed in elsewhere", h: mw(guard.RequireSession(ok)), token: first.Token,
					reason: guard.ReasonSignedInElsewhere},
				{name: "Require, anonymous", h: mw(f.g.Require(rbac.Reports, rbac.Read)(ok)), byHook: true},
				{name: "Require, signed in elsewhere", h: mw(f.g.Require(rbac.Reports, rbac.Read)(ok)), token: first.Token,
					reason: guard.ReasonSignedInElsewhere, byHook: true},
				{name: "RequireApprovable, anonymous", h: mw(f.g.RequireApprovable(rbac.Campaigns, rbac.Send)(ok)), byHook: true},
				{name: "RequireMFA, anonymous", h: mw(f.g.RequireMFA(ok)), byHook: true},
				{name: "Require outside Middleware", h: f.g.Require(rbac.Reports, rbac.Read)(ok), byHook: true},
			} {
				seen = nil
				w := serveHandler(c.h, "/", c.token, client, c.header...)
				if w.Code != http.StatusUnauthorized {
					t.Errorf("%s: status %d, want 401", c.name, w.Code)
					continue
				}
				if got := w.Header().Get("WWW-Authenticate"); got != want {
					t.Errorf("%s: WWW-Authenticate %q, want %q", c.name, got, want)
				}
				if got := w.Header().Get(guard.ReasonHeader); got != c.reason {
					t.Errorf("%s: Guard-Reason %q, want %q", c.name, got, c.reason)
				}
				if hook && c.byHook && seen.Get("WWW-Authenticate") != want {
					t.Errorf("%s: OnRefuse found WWW-Authenticate %q on w, want %q", c.name, seen.Get("WWW-Authenticate"), want)
				}
			}
		})
	}
}
