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

// An email factor at an address too long for "Email " and the address to
// fit a label (100 bytes) can be enrolled: the console leaves the label
// to mfa's default, which shortens it.
func TestEmailFactorLongAddress(t *testing.T) {
	c, password := newClient(t)
	c.signIn(ownerEmail, password)
	addr := strings.Repeat("o", 64) + "@" + strings.Repeat("d", 50) + ".example"
	resp, body := c.post("/account/mfa/oob", url.Values{"kind": {"email"}, "destination": {addr}})
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("begin an email factor at a %d-byte address: %d\n%.1500s", len(addr), resp.StatusCode, body)
	}
	factor := field(t, body, "factor")
	if resp, _ := c.post("/account/mfa/confirm", url.Values{"factor": {factor}, "code": {emailCode(t, c.con, addr)}}); resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("confirm the email factor: %d", resp.StatusCode)
	}
}
