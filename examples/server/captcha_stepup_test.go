package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// The step-up asks for a CAPTCHA once the account has had several
// failures, as the sign-in form does: the form says so and shows the
// widget, and the step-up goes through with it ticked.
func TestStepUpShowsCaptcha(t *testing.T) {
	c, password := newClient(t)
	if resp := c.signIn(ownerEmail, password); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	for i := range 3 {
		if resp, _ := c.post("/reauth", url.Values{"password": {"a wrong guess"}, "next": {"/account"}}); resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("wrong guess %d: %d", i, resp.StatusCode)
		}
	}
	resp, body := c.post("/reauth", url.Values{"password": {password}, "next": {"/account"}})
	if resp.StatusCode != http.StatusBadRequest || !strings.Contains(pageError(body), "confirm you are human") ||
		!strings.Contains(body, `name="captcha"`) {
		t.Fatalf("step-up after 3 failures without a CAPTCHA: %d %q; want 400 asking for the CAPTCHA, with its widget",
			resp.StatusCode, pageError(body))
	}
	resp, body = c.post("/reauth", url.Values{"password": {password}, "captcha": {standinToken}, "next": {"/account"}})
	if resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("step-up with the CAPTCHA ticked: %d %q", resp.StatusCode, pageError(body))
	}
}
