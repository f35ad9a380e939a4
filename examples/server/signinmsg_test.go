package main

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
)

// setPolicy changes the demo tenant's policy as the system would, and
// waits out the policy cache.
func setPolicy(t *testing.T, con *console, change func(*guard.Policy)) {
	t.Helper()
	g, ctx := con.g, t.Context()
	tn, err := g.Tenant(ctx, demoTenant)
	if err != nil {
		t.Fatal(err)
	}
	pol := tn.Policy
	change(&pol)
	if _, err := g.SetPolicy(ctx, guard.System("test"), demoTenant, pol, tn.Version); err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond) // past the policy cache (500 ms)
}

// flashAfter follows a redirect and returns the page's flash message.
func flashAfter(c *client, resp *http.Response) string {
	c.t.Helper()
	_, body := c.get(resp.Header.Get("Location"))
	m := regexp.MustCompile(`<p class="flash [a-z]+" role="status">([^<]*)</p>`).FindStringSubmatch(body)
	if m == nil {
		return ""
	}
	return m[1]
}

// The messages of a session limit say the limit in force: with two
// sessions allowed, a third sign-in ends the oldest and says "2", and
// under "refuse new" the refusal says it too.
func TestSessionLimitMessages(t *testing.T) {
	owner, password := newClient(t)
	owner.signInAdmin(ownerEmail, password)
	const samEmail, samPW = "sam@demo.example", "plum tree on the hill 42"
	owner.post("/users", url.Values{"email": {samEmail}, "name": {"Sam Staff"}, "role": {"member"}, "password": {samPW}})
	setPolicy(t, owner.con, func(p *guard.Policy) { p.SessionLimit, p.OnSessionLimit = 2, guard.EndOldestSession })
	var last *client
	for range 3 {
		last = newClientOf(t, owner.srv, owner.con)
		if resp := last.signIn(samEmail, samPW); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("Sam's sign-in: %d", resp.StatusCode)
		} else if msg := flashAfter(last, resp); msg != "" {
			if !strings.Contains(msg, "oldest session was ended") || strings.Contains(msg, "one session") || !strings.Contains(msg, "allows 2 sessions per user") {
				t.Errorf("after ending the oldest of 2 sessions: %q", msg)
			}
			last = nil
		}
	}
	if last != nil {
		t.Fatal("the third sign-in said nothing of the session it ended")
	}

	setPolicy(t, owner.con, func(p *guard.Policy) { p.OnSessionLimit = guard.RefuseNewSession })
	c := newClientOf(t, owner.srv, owner.con)
	resp, body := c.post("/login", url.Values{"tenant": {demoTenant}, "email": {samEmail}, "password": {samPW}})
	if resp.StatusCode != http.StatusConflict || strings.Contains(body, "allows one session") || !strings.Contains(body, "You already have 2 sessions open elsewhere") {
		t.Errorf("a third sign-in under refuse-new: %d\n%s", resp.StatusCode, body)
	}
}

// A password an admin marked compromised must be changed after a sign-in
// that enrols a second factor too: the recovery codes' Continue goes to
// My account, which asks for a new password.
func TestExpiredPasswordAfterEnrolment(t *testing.T) {
	owner, password := newClient(t)
	owner.signInAdmin(ownerEmail, password)
	const samEmail, samPW = "sam@demo.example", "plum tree on the hill 42"
	resp, _ := owner.post("/users", url.Values{"email": {samEmail}, "name": {"Sam Staff"}, "role": {"member"}, "password": {samPW}})
	user := resp.Header.Get("Location")
	if resp, _ := owner.post(user+"/expire-password", url.Values{}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("expire password: %d", resp.StatusCode)
	}
	setPolicy(t, owner.con, func(p *guard.Policy) { p.RequireMFA = true })

	sam := newClientOf(t, owner.srv, owner.con)
	if resp := sam.signIn(samEmail, samPW); resp.Header.Get("Location") != "/login/enrol" {
		t.Fatalf("sign-in went to %q, want /login/enrol", resp.Header.Get("Location"))
	}
	_, page := sam.post("/login/enrol/begin", url.Values{})
	m := totpSecretRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no key on the enrolment page:\n%s", page)
	}
	a := &authenticatorApp{secret: m[1]}
	resp, page = sam.post("/login/enrol/confirm", url.Values{"factor": {field(t, page, "factor")}, "code": {sam.totp(a)}})
	if resp.StatusCode != 200 || !strings.Contains(page, `id="recovery-codes"`) {
		t.Fatalf("confirm: %d", resp.StatusCode)
	}
	next := href(page, "continue")
	if next != "/account" {
		t.Errorf("Continue after the recovery codes goes to %q, want /account", next)
	}
	if _, page := sam.get(next); !strings.Contains(page, "Your password has expired") {
		t.Error("My account does not ask for a new password")
	}
}
