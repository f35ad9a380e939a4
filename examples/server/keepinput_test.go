package main

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
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
		t.Run(tc.name, func(t *testing.T) { refusedAsTyped(t, c, "/forgot", tc.form, "email") })
	}
}

// selected returns the option selected in the first select named name.
func selected(body, name string) string {
	s := regexp.MustCompile(`(?s)<select name="` + regexp.QuoteMeta(name) + `"[^>]*>.*?</select>`).FindString(body)
	m := regexp.MustCompile(`<option(?: value="([^"]*)")? selected>([^<]*)</option>`).FindStringSubmatch(s)
	switch {
	case m == nil:
		return ""
	case m[1] != "":
		return html.UnescapeString(m[1])
	}
	return html.UnescapeString(m[2])
}

// refusedAsTyped posts form to path, which refuses it: it wants the form
// shown again (400) with each of fields, and the role selected (if form
// has one), as sent; it returns the page.
func refusedAsTyped(t *testing.T, c *client, path string, form url.Values, fields ...string) string {
	t.Helper()
	resp, body := c.post(path, form)
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("%d, want 400 with the form", resp.StatusCode)
	}
	for _, f := range fields {
		if got, _ := inputValue(body, f); got != form.Get(f) {
			t.Errorf("the %s field holds %q, want %q (%s)", f, got, form.Get(f), pageError(body))
		}
	}
	if role := form.Get("role"); role != "" {
		if got := selected(body, "role"); got != role {
			t.Errorf("the role selected is %q, want %s", got, role)
		}
	}
	return body
}

// The add-user form shown again with an error (an address taken, a
// password refused) keeps the address, name and role typed, never the
// password.
func TestAddUserKeepsInput(t *testing.T) {
	c, password := newClient(t)
	c.signInAdmin(ownerEmail, password)
	for _, tc := range []struct {
		name string
		form url.Values
	}{
		{"address taken", url.Values{"email": {ownerEmail}, "name": {`Sam "<Staff>"`}, "role": {"admin"}, "password": {"plum tree on the hill 42"}}},
		{"password refused", url.Values{"email": {"sam@demo.example"}, "name": {"Sam"}, "role": {"admin"}, "password": {"short"}}},
		{"malformed address", url.Values{"email": {`"><i>sam`}, "name": {"Sam"}, "role": {"admin"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := refusedAsTyped(t, c, "/users", tc.form, "email", "name")
			if got, ok := inputValue(body, "password"); ok {
				t.Errorf("the password field holds %q, want nothing", got)
			}
		})
	}
}

// The custom role form shown again with an error (a name refused, a
// built-in role, no permission ticked) keeps the name and the
// permissions ticked.
func TestRoleFormKeepsInput(t *testing.T) {
	c, password := newClient(t)
	c.signInAdmin(ownerEmail, password)
	ticked := func(body string) []string {
		var out []string
		for _, m := range regexp.MustCompile(`<input type="checkbox" name="perm" value="([^"]*)"[^>]*\bchecked\b`).FindAllStringSubmatch(body, -1) {
			out = append(out, m[1])
		}
		return out
	}
	for _, tc := range []struct {
		name string
		form url.Values
	}{
		{"name refused", url.Values{"name": {`Campaign "<Editor>"`}, "perm": {"campaigns:read", "campaigns:write"}}},
		{"built-in role", url.Values{"name": {"owner"}, "perm": {"reports:read"}}},
		{"no permission", url.Values{"name": {"campaign-editor"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := c.post("/roles", tc.form)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("%d, want 400 with the form", resp.StatusCode)
			}
			if got, _ := inputValue(body, "name"); got != tc.form.Get("name") {
				t.Errorf("the name field holds %q, want %q (%s)", got, tc.form.Get("name"), pageError(body))
			}
			if got := ticked(body); !slices.Equal(got, tc.form["perm"]) {
				t.Errorf("ticked %q, want %q", got, tc.form["perm"])
			}
		})
	}
}

// The create-key form shown again with an error (a life in days that is
// not one, a name refused) keeps the name, role and days typed.
func TestCreateKeyKeepsInput(t *testing.T) {
	c, password := newClient(t)
	c.signInAdmin(ownerEmail, password)
	for _, tc := range []struct {
		name string
		form url.Values
	}{
		{"days not a number", url.Values{"name": {`CRM "<sync>"`}, "role": {"admin"}, "days": {"ninety"}}},
		{"name too long", url.Values{"name": {strings.Repeat("n", 101)}, "role": {"admin"}, "days": {"30"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if body := refusedAsTyped(t, c, "/keys", tc.form, "name", "days"); strings.Contains(body, `id="api-key"`) {
				t.Error("a key is shown")
			}
		})
	}
}

// The account page shown again after a refused new address (an email
// change, an email or SMS factor) keeps the address or number typed in
// its own form.
func TestAccountFormsKeepInput(t *testing.T) {
	c, password := newClient(t)
	if resp := c.signIn(ownerEmail, password); resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("sign-in: %d", resp.StatusCode)
	}
	// value returns the value of the input whose opening tag has marker.
	value := func(body, marker string) string {
		m := regexp.MustCompile(`<input[^>]*` + regexp.QuoteMeta(marker) + `[^>]*>`).FindString(body)
		v := regexp.MustCompile(` value="([^"]*)"`).FindStringSubmatch(m)
		if v == nil {
			return ""
		}
		return html.UnescapeString(v[1])
	}
	for _, tc := range []struct {
		name, path string
		form       url.Values
		marker     string // of the field that should hold it
		others     []string
	}{
		{"email change", "/account/email", url.Values{"email": {`"><b>not an address`}}, `id="new-email-address"`,
			[]string{`type="email" name="destination"`, `type="tel" name="destination"`}},
		{"email factor", "/account/mfa/oob", url.Values{"kind": {"email"}, "destination": {`"><b>not an address`}}, `type="email" name="destination"`,
			[]string{`id="new-email-address"`, `type="tel" name="destination"`}},
		{"SMS factor", "/account/mfa/oob", url.Values{"kind": {"sms"}, "destination": {"+44 7700 9OO123"}}, `type="tel" name="destination"`,
			[]string{`id="new-email-address"`, `type="email" name="destination"`}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			typed := tc.form.Get("email") + tc.form.Get("destination")
			resp, body := c.post(tc.path, tc.form)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("%d, want 400 with the page", resp.StatusCode)
			}
			if got := value(body, tc.marker); got != typed {
				t.Errorf("the field holds %q, want %q (%s)", got, typed, pageError(body))
			}
			for _, o := range tc.others {
				if got := value(body, o); got != "" {
					t.Errorf("another form's field (%s) holds %q", o, got)
				}
			}
		})
	}
}

// The connection form of the single sign-on page shown again with an
// error (no metadata, both kinds, metadata Guard refuses, a mapping to
// no role) keeps every field as typed.
func TestSSOConnectionFormKeepsInput(t *testing.T) {
	c, password := newClient(t)
	c.signInAdmin(ownerEmail, password)
	textarea := func(body, id string) string {
		m := regexp.MustCompile(`(?s)<textarea [^>]*id="` + id + `"[^>]*>(.*?)</textarea>`).FindStringSubmatch(body)
		if m == nil {
			return ""
		}
		return html.UnescapeString(m[1])
	}
	typed := url.Values{"metadata_url": {"https://idp.example.com/md?a=1&b=<2>"}, "domains": {"example.com, demo.example"},
		"group_roles": {"admins = admin\nstaff = member"}, "mfa_contexts": {"urn:x:mfa"}, "default_role": {"manager"}, "sync_roles": {"on"}}
	for _, tc := range []struct {
		name   string
		change func(url.Values)
	}{
		{"no metadata", func(f url.Values) { f.Del("metadata_url") }},
		{"both kinds of metadata", func(f url.Values) { f.Set("metadata_xml", "<EntityDescriptor/>") }},
		{"metadata refused", func(f url.Values) { f.Del("metadata_url"); f.Set("metadata_xml", "<not metadata>") }},
		{"a mapping to no role", func(f url.Values) { f.Set("group_roles", "admins = no-such-role") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := url.Values{}
			for k, v := range typed {
				form[k] = slices.Clone(v)
			}
			tc.change(form)
			resp, body := c.post("/security/sso", form)
			if resp.StatusCode != http.StatusBadRequest {
				t.Fatalf("%d, want 400 with the form", resp.StatusCode)
			}
			if got, _ := inputValue(body, "metadata_url"); got != form.Get("metadata_url") {
				t.Errorf("the metadata URL holds %q, want %q (%s)", got, form.Get("metadata_url"), pageError(body))
			}
			if got, _ := inputValue(body, "domains"); got != form.Get("domains") {
				t.Errorf("the domains hold %q, want %q", got, form.Get("domains"))
			}
			for name, id := range map[string]string{"metadata_xml": "metadata-xml", "group_roles": "group-roles-input", "mfa_contexts": "mfa-contexts-input"} {
				if got := strings.TrimSpace(textarea(body, id)); got != form.Get(name) {
					t.Errorf("%s holds %q, want %q", name, got, form.Get(name))
				}
			}
			if got := selected(body, "default_role"); got != "manager" {
				t.Errorf("the default role selected is %q, want manager", got)
			}
			jit := regexp.MustCompile(`<input type="checkbox" name="jit"[^>]*>`).FindString(body)
			sync := regexp.MustCompile(`<input type="checkbox" name="sync_roles"[^>]*>`).FindString(body)
			if strings.Contains(jit, "checked") || !strings.Contains(sync, "checked") {
				t.Errorf("the boxes: %s %s, want just in time unticked and sync ticked", jit, sync)
			}
		})
	}
}
