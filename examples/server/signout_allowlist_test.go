package main

import (
	"net/http"
	"net/url"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/ipfilter"
)

// A user whose address is outside the tenant's allow-list for people
// (or no longer on it) can still sign out: POST /logout ends the session
// and clears the cookie, though Guard's Middleware refuses the session
// everything else from there, so the session does not come back when the
// browser is on an allowed network again (SECURITY-CHECKLIST SE-4: after
// a sign-out the token is refused).
func TestSignOutOutsideAllowListEndsSession(t *testing.T) {
	c, password := newClient(t)
	if resp := c.signIn(ownerEmail, password); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	token := c.cookie(sessionCookie)
	g, ctx, sys := c.con.g, t.Context(), guard.System("test")
	setList := func(entries ...string) {
		t.Helper()
		lists, err := g.IPAllowLists(ctx, sys, demoTenant)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := g.SetIPAllowList(ctx, sys, demoTenant, guard.IPListChange{Scope: ipfilter.Users,
			Entries: entries, Version: lists.Version}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(600 * time.Millisecond) // past any policy cache
	}
	setList("198.51.100.0/24") // the test client (127.0.0.1) is not on it

	resp, _ := c.post("/logout", url.Values{})
	if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/login" {
		t.Errorf("POST /logout from an address outside the allow-list: %d to %q, want 303 to /login (signed out)", resp.StatusCode, resp.Header.Get("Location"))
	}
	if c.cookie(sessionCookie) != "" {
		t.Errorf("the session cookie is still in the browser after signing out")
	}
	page, err := g.QueryAudit(ctx, sys, demoTenant, audit.Query{Action: string(audit.Logout), Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Events) != 1 || page.Events[0].Outcome != audit.Success || page.Events[0].IP != "127.0.0.1" {
		t.Errorf("the sign-out is recorded as %+v, want one successful logout from 127.0.0.1", page.Events)
	}

	// Back on an allowed network: the session the user tried to end.
	setList()
	other := newClientOf(t, c.srv, c.con)
	u, _ := url.Parse(c.srv.URL)
	other.c.Jar.SetCookies(u, []*http.Cookie{{Name: sessionCookie, Value: token, Path: "/", Secure: true, HttpOnly: true}})
	if code, w := other.whoami(); code != http.StatusUnauthorized {
		t.Errorf("the session signed out from outside the allow-list still works: whoami %d as %s, want 401", code, w.Email)
	}
}
