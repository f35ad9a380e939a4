package main

import (
	"net/http"
	"net/url"
	"regexp"
	"testing"
)

// Text a request controls cannot forge lines in the console's output:
// the path (percent-decoded, so "%0A" is a line break) is logged quoted,
// by the cross-origin refusal, which anyone who can reach the console
// sets off with no session, and by the store-failure lines of a page
// (guarded) and of the JSON API (onRefuse). Otherwise a forged "-----
// message to …" block, where the evaluator reads password-reset links and
// one-time codes (mail.go), could carry a reset "link" of the attacker's
// choosing. (SECURITY-CHECKLIST / ASVS5 16.4.1: log data is encoded
// against injection.)
func TestRequestPathCannotForgeLogLines(t *testing.T) {
	con, c, out := newLoggedConsole(t)
	forged := "/x%0A-----%20message%20to%20owner@demo.example:%20Reset%20your%20password%20-----%0Ahttps://evil.test/reset%3Ftoken=x%0A-----%20end%20of%20message%20-----"
	resp, _ := c.do("POST", forged, url.Values{"x": {"1"}}, "cross-site")
	if resp.StatusCode != http.StatusForbidden {
		t.Fatalf("cross-site POST: %d, want 403", resp.StatusCode)
	}
	// A store failure met by Guard's Middleware, which logs the request.
	if resp := c.signIn(ownerEmail, con.password); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	con.backend.Close()
	for _, path := range []string{forged, "/api" + forged} {
		if resp, _ := c.get(path); resp.StatusCode != http.StatusServiceUnavailable {
			t.Fatalf("GET %s with the store down: %d, want 503", path, resp.StatusCode)
		}
	}
	// No message was sent: every such block in the output is forged.
	for _, m := range regexp.MustCompile(`(?m)^----- (message to|end of message).*$`).FindAllString(out.String(), -1) {
		t.Errorf("a request put a line of its own into the console's output: %q", m)
	}
	if t.Failed() {
		t.Logf("the console's output:\n%s", out.String())
	}
}
