package main

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
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

// Over the requests a user may file in an hour, Send answers 429 with a
// page that says so, and files nothing.
func TestSendOverRequestBoundIs429(t *testing.T) {
	owner, password := newClient(t)
	owner.signInAdmin(ownerEmail, password)
	if resp, _ := owner.post("/security/approvals", url.Values{"required": {"on"}}); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("four-eyes on: %d", resp.StatusCode)
	}
	g, ctx := owner.con.app.g, t.Context()
	p, err := g.Authenticate(ctx, owner.cookie("__Host-guard"))
	if err != nil {
		t.Fatal(err)
	}
	// The hour's requests, filed elsewhere (the API, another tab).
	for i := range guard.MaxApprovalRequestsPerHour {
		target := "other-" + strconv.Itoa(i)
		if _, err := g.RequestApproval(ctx, p, "campaigns:send", target, []byte(target), time.Hour); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
	}
	resp, body := owner.post("/campaigns/send", url.Values{"campaign": {"spring-newsletter"}})
	if resp.StatusCode != http.StatusTooManyRequests || !strings.Contains(body, "Too many approval requests") || !strings.Contains(body, "Nothing was sent") {
		t.Errorf("send over the bound: %d %q", resp.StatusCode, body)
	}
	_, body = owner.get("/approvals")
	if n := strings.Count(body, "<td>spring-newsletter</td>"); n != 0 {
		t.Errorf("%d requests filed for spring-newsletter, want none", n)
	}
}
