package guard_test

import (
	"errors"
	"net/http"
	"sync"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/rbac"
)

// refusal is one call of Config.OnRefuse.
type refusal struct {
	status int
	cause  error
	header http.Header // w's header when the hook ran
}

// Config.OnRefuse answers every refusal of Middleware, Require and
// RequireMFA, with the cause (a store failure's own error included) and
// the headers Guard set already on w.
func TestOnRefuse(t *testing.T) {
	var (
		fs  *failingSessions
		mu  sync.Mutex
		got []refusal
	)
	f := newFixture(t, func(c *guard.Config) {
		fs = &failingSessions{Sessions: f0sessions(c)}
		c.Stores.Sessions = fs
		c.OnRefuse = func(w http.ResponseWriter, r *http.Request, status int, cause error) {
			mu.Lock()
			got = append(got, refusal{status, cause, w.Header().Clone()})
			mu.Unlock()
			w.WriteHeader(status)
			w.Write([]byte("host page"))
		}
	})
	last := func(t *testing.T, w interface{ Result() *http.Response }, want int) refusal {
		t.Helper()
		mu.Lock()
		defer mu.Unlock()
		if len(got) == 0 {
			t.Fatalf("OnRefuse was not called")
		}
		r := got[len(got)-1]
		got = nil
		if resp := w.Result(); resp.StatusCode != want || r.status != want {
			t.Fatalf("status %d, OnRefuse's %d; want %d", resp.StatusCode, r.status, want)
		}
		return r
	}
	f.createUser(t, "alice@example.com", ownerPW)
	res, _ := f.login("alice@example.com", ownerPW)
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })

	h := f.g.Middleware(ok)
	w := serveHandler(h, "/", "", client, "Authorization", "Bearer gk_not-a-key")
	if r := last(t, w, http.StatusUnauthorized); r.header.Get("WWW-Authenticate") == "" || w.Body.String() != "host page" {
		t.Errorf("a bad API key: WWW-Authenticate %q, body %q", r.header.Get("WWW-Authenticate"), w.Body)
	}

	w = serveHandler(f.g.Middleware(f.g.RequireMFA(ok)), "/", res.Token, client)
	if r := last(t, w, http.StatusForbidden); r.header.Get("Guard-Step-Up") != "mfa" || !errors.Is(r.cause, guard.ErrStepUpRequired) {
		t.Errorf("RequireMFA on a password session: step-up %q, cause %v", r.header.Get("Guard-Step-Up"), r.cause)
	}

	w = serveHandler(f.g.Middleware(f.g.Require(rbac.Users, rbac.Manage)(ok)), "/", res.Token, client)
	if r := last(t, w, http.StatusForbidden); !errors.Is(r.cause, guard.ErrForbidden) {
		t.Errorf("Require without the role: cause %v, want ErrForbidden", r.cause)
	}
	w = serveHandler(f.g.Require(rbac.Users, rbac.Manage)(ok), "/", "", client)
	if r := last(t, w, http.StatusUnauthorized); !errors.Is(r.cause, guard.ErrUnauthenticated) {
		t.Errorf("Require without a principal: cause %v", r.cause)
	}

	fs.set(true)
	w = serveHandler(h, "/", res.Token, client)
	if r := last(t, w, http.StatusServiceUnavailable); !errors.Is(r.cause, guard.ErrUnavailable) || !errors.Is(r.cause, errDown) {
		t.Errorf("session store down: cause %v, want ErrUnavailable wrapping the store's error", r.cause)
	}
}
