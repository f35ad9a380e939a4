package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// The SMS form takes a number written as its placeholder shows it (with
// spaces), or with dashes, dots and parentheses, and the confirmation
// page names the factor "SMS".
func TestSMSNumberAsTyped(t *testing.T) {
	c, password := newClient(t)
	c.signIn(ownerEmail, password)
	for _, typed := range []string{"+44 7700 900123", "+44 (7700) 900-123", "+44.7700.900.123"} {
		resp, body := c.post("/account/mfa/oob", url.Values{"kind": {"sms"}, "destination": {typed}})
		if resp.StatusCode != http.StatusOK || !strings.Contains(body, "Confirm your SMS factor") {
			t.Errorf("SMS factor for %q: %d\n%.1500s", typed, resp.StatusCode, body)
			continue
		}
		if !strings.Contains(body, "<b>&#43;447700900123</b>") {
			t.Errorf("SMS factor for %q: the code was not sent to +447700900123", typed)
		}
		smsCode(t, c.con, "+447700900123")
	}
}
