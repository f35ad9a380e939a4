package main

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The access review page: the last reviewer by email, "No API keys" when
// there are none, "never signed in" alone for who never did, and the
// admin tile labelled for what it counts.
func TestReviewPageTexts(t *testing.T) {
	c, password := newClient(t)
	c.signInAdmin(ownerEmail, password)
	c.post("/users", url.Values{"email": {"sam@demo.example"}, "name": {"Sam Staff"}, "role": {"member"}, "password": {"plum tree on the hill 42"}})
	_, body := c.get("/keys")
	for _, m := range regexp.MustCompile(`name="id" value="([^"]+)"`).FindAllStringSubmatch(body, -1) {
		c.post("/keys/revoke", url.Values{"id": {m[1]}})
	}
	if resp, _ := c.post("/review", url.Values{}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("record the review: %d", resp.StatusCode)
	}
	c.clock.Advance(5 * time.Minute) // Sam's account is minutes old
	resp, body := c.get("/review?refresh=1")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("review page: %d", resp.StatusCode)
	}
	if !strings.Contains(body, `<span id="last-reviewer">`+ownerEmail+`</span>`) {
		t.Errorf("the last reviewer is not shown by email:\n%s", regexp.MustCompile(`Last review:[^\n]*`).FindString(body))
	}
	if strings.Contains(body, "Every key is in use") || !strings.Contains(body, "No API keys.") {
		t.Error("with no API key, the page does not say \"No API keys\"")
	}
	row := regexp.MustCompile(`(?s)sam@demo.example</span></td>.*?</tr>`).FindString(body)
	if !strings.Contains(row, "never signed in") || strings.Contains(row, " ago") {
		t.Errorf("Sam, who never signed in:\n%s", row)
	}
	if !strings.Contains(body, "owners and admins <small>(users, deactivated included)</small>") {
		t.Error("the admin tile does not say what it counts")
	}
}

// A user who set their address with guard's ChangeEmail is counted and
// flagged "unverified" on the review page, and listed under its own tab;
// a user whose address an administrator gave is not.
func TestReviewPageUnverified(t *testing.T) {
	owner, password := newClient(t)
	owner.signInAdmin(ownerEmail, password)
	for _, u := range []string{"sam", "vic"} {
		if resp, _ := owner.post("/users", url.Values{"email": {u + "@demo.example"}, "name": {u}, "role": {"member"},
			"password": {"plum tree on the hill 42"}}); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("creating %s: %d", u, resp.StatusCode)
		}
	}
	changeOwnEmail(t, owner.con.g, "sam@demo.example", "plum tree on the hill 42", "sam.new@demo.example")
	const badge = `>unverified</span>`
	resp, body := owner.get("/review?refresh=1")
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("review page: %d", resp.StatusCode)
	}
	if !strings.Contains(body, `id="count-unverified">1<`) {
		t.Errorf("the unverified tile does not count Sam:\n%s", regexp.MustCompile(`.*count-unverified.*`).FindString(body))
	}
	if !regexp.MustCompile(`<a href="/review\?filter=unverified"[^>]*>Unverified address <span class="count">1</span></a>`).MatchString(body) {
		t.Errorf("no unverified tab counting Sam:\n%s", regexp.MustCompile(`<nav class="tabs">.*</nav>`).FindString(body))
	}
	sam := regexp.MustCompile(`(?s)sam.new@demo.example</span>.*?</td>`).FindString(body)
	vic := regexp.MustCompile(`(?s)vic@demo.example</span>.*?</td>`).FindString(body)
	if !strings.Contains(sam, badge) || vic == "" || strings.Contains(vic, badge) || strings.Count(body, badge) != 1 {
		t.Errorf("Sam's row %q, Vic's %q: want only Sam's address flagged unverified", sam, vic)
	}
	_, body = owner.get("/review?filter=unverified")
	if !strings.Contains(body, "sam.new@demo.example") || strings.Contains(body, "vic@demo.example") || strings.Contains(body, ownerEmail+"</span>") {
		t.Error("the unverified tab does not list Sam alone")
	}
}
