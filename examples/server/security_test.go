package main

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// The security settings form: a refused value is named by its label, not
// by its Go field, and the form comes back as typed; an inactivity limit
// longer than the session lifetime, either being Guard's default (24
// hours, 7 days), is refused with the reason (guard.PolicyError).
func TestSecurityFormErrors(t *testing.T) {
	c, password := newClient(t)
	c.signInAdmin(ownerEmail, password)
	_, page := c.get("/security")
	version := field(t, page, "version")
	input := func(body, name string) string {
		m := regexp.MustCompile(`name="` + name + `"[^>]*value="([^"]*)"`).FindStringSubmatch(body)
		if m == nil {
			return "(none)"
		}
		return m[1]
	}
	errorOf := func(body string) string {
		m := regexp.MustCompile(`id="error">([^<]*)<`).FindStringSubmatch(body)
		if m == nil {
			return ""
		}
		return html.UnescapeString(m[1])
	}
	for _, tc := range []struct {
		name      string
		form      url.Values
		want, not string
	}{
		{"retention", url.Values{"audit_retention_days": {"5"}, "session_limit": {"3"}}, "Keep audit events", "AuditRetention"},
		{"min length", url.Values{"password_min_length": {"4"}, "session_limit": {"3"}}, "Minimum password length", "PasswordMinLength"},
		{"not a number", url.Values{"idle_minutes": {"ten"}, "session_limit": {"3"}}, "Sign out after inactivity", "idle minutes"},
		{"too large a number", url.Values{"idle_minutes": {"9007199254741022"}, "session_limit": {"3"}}, "The number for Sign out after inactivity (minutes) is too large.", "idle_minutes"},
		{"idle beyond lifetime", url.Values{"idle_minutes": {"600"}, "lifetime_hours": {"2"}, "session_limit": {"3"}}, "Sign out after inactivity: must not be longer than the session lifetime.", "IdleTimeout"},
		{"idle beyond the default lifetime", url.Values{"idle_minutes": {"20160"}, "session_limit": {"3"}}, "Sign out after inactivity: must not be longer than the session lifetime.", "IdleTimeout"},
		{"lifetime below the default idle", url.Values{"lifetime_hours": {"2"}, "session_limit": {"3"}}, "Sign out after: must not be shorter than the idle timeout.", "SessionLifetime"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.form.Set("version", version)
			resp, body := c.post("/security", tc.form)
			if resp.StatusCode == http.StatusSeeOther {
				_, body = c.get(resp.Header.Get("Location"))
				t.Errorf("refused with a redirect: the page shows the policy in force")
			}
			msg := errorOf(body)
			if !strings.Contains(msg, tc.want) || tc.not != "" && strings.Contains(msg, tc.not) {
				t.Errorf("error %q, want one with %q", msg, tc.want)
			}
			for k := range tc.form {
				if k != "version" && input(body, k) != tc.form.Get(k) {
					t.Errorf("%s shown as %q after the error, typed %q", k, input(body, k), tc.form.Get(k))
				}
			}
		})
	}
	// A valid change is saved.
	resp, _ := c.post("/security", url.Values{"version": {version}, "idle_minutes": {"60"}, "lifetime_hours": {"2"}})
	if msg := flashAfter(c, resp); !strings.Contains(msg, "saved") {
		t.Errorf("a valid change: %q", msg)
	}
}
