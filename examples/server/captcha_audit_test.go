package main

import (
	"fmt"
	"net/url"
	"testing"
)

// Audit of the CAPTCHA axis on the console: each test fails on the code
// as it stands because of the defect it names.

// Severity: medium (the console side of guard's
// TestAuditCaptcha_CAPTCHA1_RequiredOnlyInExistingTenant).
// The sign-in page answers a made-up organisation as a wrong password
// ("Incorrect email or password."). But once the client's address has
// 10 failed sign-ins, a real organisation answers "please confirm you
// are human" (and shows the widget) while a made-up one still says
// "Incorrect email or password.": each probe of an organisation ID, not
// counted as a failure, tells whether it exists.
func TestAuditCaptcha_CAPTCHA1_ConsoleCaptchaRevealsOrganisation(t *testing.T) {
	c, _ := newClient(t)
	for i := range 10 {
		c.post("/login", url.Values{"tenant": {demoTenant}, "email": {fmt.Sprintf("nobody%d@demo.example", i)}, "password": {"a wrong password"}})
	}
	answer := map[string]string{}
	for _, tenant := range []string{demoTenant, "no-such-org"} {
		resp, body := c.post("/login", url.Values{"tenant": {tenant}, "email": {"probe@demo.example"}, "password": {"a wrong password"}})
		answer[tenant] = fmt.Sprintf("%d %s", resp.StatusCode, pageError(body))
	}
	if answer[demoTenant] != answer["no-such-org"] {
		t.Errorf("sign-in after 10 failures from the address answers %q in the existing organisation and %q in a made-up one",
			answer[demoTenant], answer["no-such-org"])
	}
}
