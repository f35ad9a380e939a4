package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// Under four-eyes approval, a second click of Send files no second
// request for the same campaign, and says so.
func TestSendTwiceFilesOneRequest(t *testing.T) {
	owner, password := newClient(t)
	owner.signInAdmin(ownerEmail, password)
	if resp, _ := owner.post("/security/approvals", url.Values{"required": {"on"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("four-eyes on: %d", resp.StatusCode)
	}
	send := func() string {
		resp, _ := owner.post("/campaigns/send", url.Values{"campaign": {"spring-newsletter"}})
		return flashAfter(owner, resp)
	}
	if msg := send(); !strings.Contains(msg, "needs a second person") {
		t.Fatalf("first send: %q", msg)
	}
	if msg := send(); !strings.Contains(msg, "already waits") {
		t.Errorf("second send: %q", msg)
	}
	send() // a third click: still one request
	// Another campaign files its own.
	owner.post("/campaigns/send", url.Values{"campaign": {"win-back"}})
	_, body := owner.get("/approvals")
	if n := strings.Count(body, "<td>spring-newsletter</td>"); n != 1 {
		t.Errorf("%d pending requests for spring-newsletter, want 1", n)
	}
	if n := strings.Count(body, "<td>win-back</td>"); n != 1 {
		t.Errorf("%d pending requests for win-back, want 1", n)
	}
}
