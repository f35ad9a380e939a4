package main

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// The IP allow-list page names a bad entry by its line, from 1, keeps
// what was typed after an error, and counts "1 entry".
func TestIPListMessages(t *testing.T) {
	c, password := newClient(t)
	c.signInAdmin(ownerEmail, password)
	textarea := func(body string) string {
		m := regexp.MustCompile(`(?s)<textarea name="entries"[^>]*id="entries-users">(.*?)</textarea>`).FindStringSubmatch(body)
		if m == nil {
			t.Fatal("no textarea for people")
		}
		return html.UnescapeString(m[1])
	}
	const typed = "127.0.0.1\nnot-an-ip"
	resp, body := c.post("/ip", url.Values{"scope": {"users"}, "entries": {typed}})
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("a bad entry: %d, want 400", resp.StatusCode)
		if resp.StatusCode == http.StatusSeeOther {
			_, body = c.get(resp.Header.Get("Location"))
		}
	}
	if msg := html.UnescapeString(body); !strings.Contains(msg, `line 2 "not-an-ip"`) || strings.Contains(msg, "entry 1") {
		t.Errorf("the error does not name line 2:\n%s", regexp.MustCompile(`<p class="flash error"[^>]*>[^<]*`).FindString(body))
	}
	if got := strings.TrimSpace(textarea(body)); got != typed {
		t.Errorf("the textarea after the error holds %q, want %q", got, typed)
	}

	version := func() string {
		_, body := c.get("/ip")
		return field(t, body, "version")
	}
	resp, _ = c.post("/ip", url.Values{"scope": {"users"}, "entries": {"127.0.0.1\n\n10.1.2.3/8"}, "version": {version()}})
	if msg := flashAfter(c, resp); !strings.Contains(msg, "(2 entries)") || !strings.Contains(msg, "line 3") {
		t.Errorf("saving two entries, the second adjusted: %q", html.UnescapeString(msg))
	}
	resp, _ = c.post("/ip", url.Values{"scope": {"users"}, "entries": {"127.0.0.1"}, "version": {version()}})
	if msg := flashAfter(c, resp); !strings.Contains(msg, "(1 entry)") {
		t.Errorf("saving one entry: %q", msg)
	}
}
