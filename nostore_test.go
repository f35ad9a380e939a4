package guard_test

import (
	"net/http"
	"net/http/httptest"
	"testing"

	guard "github.com/guardhq/guard"
)

// Answers to requests that carry a credential are marked no-store
// (SECURITY-CHECKLIST WEB-13: the back button after a sign-out, a shared
// cache), refused or not; a handler may set its own; anonymous requests
// are left alone. Answers that set or clear the session cookie too.
func TestMiddlewareMarksCredentialedAnswersNoStore(t *testing.T) {
	f := newFixture(t)
	f.createUser(t, "alice@example.com", ownerPW)
	res, err := f.login("alice@example.com", ownerPW)
	if err != nil {
		t.Fatal(err)
	}
	key, _, err := f.g.CreateAPIKey(f.ctx, guard.System("test"), guard.NewAPIKey{Tenant: tenantID, Name: "reporting"})
	if err != nil {
		t.Fatal(err)
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })
	own := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "private, max-age=60")
		w.WriteHeader(204)
	})
	h := f.g.Middleware(ok)
	for _, c := range []struct {
		name   string
		w      *httptest.ResponseRecorder
		want   string
		status int
	}{
		{"a session", serveHandler(h, "/", res.Token, client), "no-store", 204},
		{"an API key", serveHandler(h, "/", "", client, "Authorization", "Bearer "+key), "no-store", 204},
		{"a bad API key", serveHandler(h, "/", "", client, "Authorization", "Bearer gk_not-a-key"), "no-store", 401},
		{"a stale cookie", serveHandler(h, "/", "stale-token", client), "no-store", 204},
		{"no credential", serveHandler(h, "/", "", client), "", 204},
		{"a handler's own", serveHandler(f.g.Middleware(own), "/", res.Token, client), "private, max-age=60", 204},
	} {
		if got := c.w.Header().Get("Cache-Control"); got != c.want || c.w.Code != c.status {
			t.Errorf("%s: %d, Cache-Control %q; want %d, %q", c.name, c.w.Code, got, c.status, c.want)
		}
	}

	w := httptest.NewRecorder()
	f.g.SetSessionCookie(w, res.Token, res.Session)
	if got := w.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("SetSessionCookie: Cache-Control %q, want no-store", got)
	}
	w = httptest.NewRecorder()
	f.g.ClearSessionCookie(w)
	if got := w.Header().Get("Cache-Control"); got != "no-store" {
		t.Errorf("ClearSessionCookie: Cache-Control %q, want no-store", got)
	}
}
