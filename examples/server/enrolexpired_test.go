package main

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	guard "github.com/guardhq/guard"
)

// An enrolment at sign-in whose app Guard confirmed, with its recovery
// codes, but whose pending sign-in could not be used up after (it
// expired while the code was checked, say) comes back as ErrLoginExpired with the codes (see
// guard.CompletePendingEnrolment). The codes work and are the user's only
// copy: the console shows them, with the way back to the sign-in, rather
// than dropping them for the sign-in page. That race cannot be timed from
// outside, so the console's answer is called with what Guard gives.
func TestEnrolAtSignInExpiredShowsCodes(t *testing.T) {
	c, _ := newClient(t)
	st := pendingState{Token: "pending", Tenant: demoTenant, Enrol: true, Next: "/account"}
	codes := []string{"code-one", "code-two"}
	w := httptest.NewRecorder()
	c.con.app.enrolDone(w, httptest.NewRequest(http.MethodPost, "/login/enrol/confirm", nil), st,
		guard.LoginResult{RecoveryCodes: codes}, guard.ErrLoginExpired)
	body := w.Body.String()
	for _, code := range codes {
		if !strings.Contains(body, "<li><code>"+code+"</code></li>") {
			t.Errorf("recovery code %q not shown (%d, Location %q):\n%s", code, w.Code, w.Header().Get("Location"), body)
		}
	}
	if !strings.Contains(body, `href="/login?next=%2Faccount"`) {
		t.Errorf("no way back to the sign-in:\n%s", body)
	}
	if k, ok := cookieFrom(w, pendingCookie); !ok || k.MaxAge >= 0 {
		t.Error("the pending sign-in's cookie was not cleared")
	}
	if k, ok := cookieFrom(w, sessionCookie); ok && k.MaxAge >= 0 {
		t.Error("a session cookie was set")
	}
}

// The app confirmed at a sign-in that then expired is a new second factor
// of the tenant all the same: the MFA adoption counts the console keeps
// for a minute are dropped, as when the sign-in finishes.
func TestEnrolAtSignInExpiredForgetsAdoption(t *testing.T) {
	c, _ := newClient(t)
	app := c.con.app
	key := demoTenant + "/someone"
	app.adoptions.mu.Lock()
	if app.adoptions.m == nil {
		app.adoptions.m = map[string]cachedAdoption{}
	}
	app.adoptions.m[key] = cachedAdoption{at: app.now()}
	app.adoptions.mu.Unlock()
	st := pendingState{Token: "pending", Tenant: demoTenant, Enrol: true, Next: "/account"}
	w := httptest.NewRecorder()
	app.enrolDone(w, httptest.NewRequest(http.MethodPost, "/login/enrol/confirm", nil), st,
		guard.LoginResult{RecoveryCodes: []string{"code-one"}}, guard.ErrLoginExpired)
	app.adoptions.mu.Lock()
	_, kept := app.adoptions.m[key]
	app.adoptions.mu.Unlock()
	if kept {
		t.Error("the tenant's cached MFA adoption counts were kept after an app was added")
	}
}
