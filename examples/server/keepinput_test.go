package main

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"testing"
)

// inputValue returns the value of the first input named name on a page
// (unescaped), and whether the input has one.
func inputValue(body, name string) (string, bool) {
	m := regexp.MustCompile(`<input[^>]* name="` + regexp.QuoteMeta(name) + `"[^>]*>`).FindString(body)
	v := regexp.MustCompile(` value="([^"]*)"`).FindStringSubmatch(m)
	if v == nil {
		return "", false
	}
	return html.UnescapeString(v[1]), true
}

// The forgotten-password form shown again with an error (the CAPTCHA
// refused, a malformed address) keeps the address typed, escaped.
func TestForgotKeepsEmail(t *testing.T) {
	c, _ := newClient(t)
	for _, tc := range []struct {
		name string
		form url.Values
	}{
		{"no CAPTCHA", url.Values{"tenant": {demoTenant}, "email": {ownerEmail}}},
		{"malformed address", url.Values{"tenant": {demoTenant}, "email": {`"><b>not an address`}, "captcha": {standinToken}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := c.post("/forgot", tc.form)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("%d, want 400", resp.StatusCode)
			}
			if got, _ := inputValue(body, "email"); got != tc.form.Get("email") {
				t.Errorf("the email field holds %q, want %q (%s)", got, tc.form.Get("email"), pageError(body))
			}
		})
	}
}
