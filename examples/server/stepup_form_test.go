package main

import (
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
)

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([^"]*)" value="([^"]*)">`)

// formFields returns the hidden inputs of the first form of page that
// posts to action (the fields a person types, the caller adds), or false
// when the page has no such form.
func formFields(page, action string) (url.Values, bool) {
	start := strings.Index(page, `<form method="post" action="`+action+`"`)
	if start < 0 {
		return nil, false
	}
	end := strings.Index(page[start:], "</form>")
	if end < 0 {
		return nil, false
	}
	f := url.Values{}
	for _, m := range hiddenRE.FindAllStringSubmatch(page[start:start+end], -1) {
		f.Add(html.UnescapeString(m[1]), html.UnescapeString(m[2]))
	}
	return f, true
}

// keyNames returns the names of the demo tenant's API keys.
func keyNames(t *testing.T, c *client) []string {
	t.Helper()
	ks, err := c.con.app.g.ListAPIKeys(t.Context(), guard.System("test"), demoTenant)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, k := range ks {
		names = append(names, k.Name)
	}
	return names
}

// staleAdmin returns the owner's client, signed in with two steps longer
// ago than the step-up window, and their password.
func staleAdmin(t *testing.T) (*client, string) {
	t.Helper()
	owner, password := newClient(t)
	owner.signInAdmin(ownerEmail, password)
	owner.clock.Advance(guard.DefaultStepUpWindow + time.Minute)
	return owner, password
}

// A form refused for want of a recent sign-in is kept, as GitHub's sudo
// mode does: the step-up page comes in place of the form's answer (200)
// and carries its path and fields, hidden; a wrong password shows it
// again still carrying them; the right one gives a page whose Continue
// button posts them to the form's path, which then does what was asked.
// Nothing else rides along: no password, and nothing the step-up form
// has of its own.
func TestStepUpKeepsSubmittedForm(t *testing.T) {
	owner, password := staleAdmin(t)
	const name = `Nightly "CRM" sync & <co>`
	typed := url.Values{"name": {name}, "role": {"reports-only"}, "days": {"30"}}
	resp, page := owner.post("/keys", typed)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `id="reauth-password"`) {
		t.Fatalf("a stale admin creating a key: %d to %q, want 200 with the step-up page", resp.StatusCode, resp.Header.Get("Location"))
	}
	if slices.Contains(keyNames(t, owner), name) {
		t.Fatal("a stale sign-in created the key")
	}
	kept, ok := formFields(page, "/reauth")
	if !ok {
		t.Fatal("no step-up form")
	}
	want := url.Values{"next": {"/keys"}, resumeField: {"/keys"}}
	for k, v := range typed {
		want[keptPrefix+k] = v
	}
	if !equalForms(kept, want) {
		t.Fatalf("the step-up form carries %v, want %v", kept, want)
	}

	app := owner.app(ownerEmail)
	withProof := func(pw string) url.Values {
		f := url.Values{}
		for k, v := range kept {
			f[k] = v
		}
		f.Set("password", pw)
		f.Set("totp", owner.totp(app))
		return f
	}
	t.Run("wrong password", func(t *testing.T) {
		resp, page := owner.post("/reauth", withProof("a wrong guess"))
		again, ok := formFields(page, "/reauth")
		if resp.StatusCode != http.StatusBadRequest || !ok || !equalForms(again, want) {
			t.Fatalf("a wrong password: %d, the form carries %v, want 400 carrying %v", resp.StatusCode, again, want)
		}
	})

	resp, page = owner.post("/reauth", withProof(password))
	cont, ok := formFields(page, "/keys")
	if resp.StatusCode != http.StatusOK || !ok || !strings.Contains(page, `id="resume"`) {
		t.Fatalf("the step-up: %d to %q, want 200 with a Continue form to /keys", resp.StatusCode, resp.Header.Get("Location"))
	}
	if !equalForms(cont, typed) {
		t.Fatalf("the Continue form carries %v, want %v", cont, typed)
	}
	if csp := resp.Header.Get("Content-Security-Policy"); strings.Contains(page, "<script") ||
		!strings.Contains(csp, "script-src 'none'") || !strings.Contains(csp, "form-action 'self'") {
		t.Errorf("the Continue page runs a script or may post off-site (CSP %q)", csp)
	}
	if strings.Contains(page, password) {
		t.Error("the Continue page shows the password")
	}
	resp, page = owner.post("/keys", cont)
	if resp.StatusCode != http.StatusOK || !strings.Contains(page, `id="api-key"`) {
		t.Fatalf("Continue: %d, no new key shown", resp.StatusCode)
	}
	if !slices.Contains(keyNames(t, owner), name) {
		t.Errorf("keys after Continue: %q, want %q among them", keyNames(t, owner), name)
	}
}

func equalForms(a, b url.Values) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if !slices.Equal(v, b[k]) {
			return false
		}
	}
	return true
}

// A form the step-up cannot carry goes the old way, to the step-up page
// at its own address and back to the form's page (303), nothing kept: one
// with a password or another secret, which must not come back in a page,
// and one larger than the bounds.
func TestStepUpFormTooSecretOrLargeRedirects(t *testing.T) {
	owner, _ := staleAdmin(t)
	many := url.Values{"name": {"many"}}
	for i := range maxKeptFields {
		many.Set(fmt.Sprintf("x%d", i), "1")
	}
	for _, c := range []struct {
		name, path string
		form       url.Values
		back       string
	}{
		{"a password", "/users", url.Values{"email": {"eve@demo.example"}, "name": {"Eve"}, "role": {"admin"}, "password": {"plum tree on the hill 43"}}, "/users"},
		{"a token", "/keys", url.Values{"name": {"tok"}, "api_token": {"x"}}, "/keys"},
		{"a code", "/keys", url.Values{"name": {"code"}, "recovery_code": {"x"}}, "/keys"},
		{"a CAPTCHA", "/keys", url.Values{"name": {"captcha"}, "captcha": {standinToken}}, "/keys"},
		{"a secret", "/keys", url.Values{"name": {"secret"}, "SECRET": {"x"}}, "/keys"},
		{"too many fields", "/keys", many, "/keys"},
		{"too many bytes", "/keys", url.Values{"name": {"big"}, "note": {strings.Repeat("n", maxKeptBytes)}}, "/keys"},
	} {
		resp, page := owner.post(c.path, c.form)
		if want := "/reauth?next=" + url.QueryEscape(c.back); resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
			t.Errorf("%s: %d to %q, want 303 to %s", c.name, resp.StatusCode, resp.Header.Get("Location"), want)
		}
		if strings.Contains(page, keptPrefix) {
			t.Errorf("%s: the answer carries the form", c.name)
		}
	}
	if names := keyNames(t, owner); len(names) != 0 {
		t.Errorf("keys created by a stale sign-in: %q", names)
	}
}

// The path a kept form goes back to comes from the browser: one that is
// not a form of this console (off-site, unknown, the step-up itself, not
// clean) gets no Continue page; the step-up goes on to next as before,
// and nothing is posted anywhere.
func TestStepUpFormUnsafePathRefused(t *testing.T) {
	owner, password := staleAdmin(t)
	app := owner.app(ownerEmail)
	for _, path := range []string{"//evil.test/keys", "https://evil.test/keys", "/\\evil.test/keys", "/nowhere", "/reauth",
		"/keys/../keys", "/keys?x=1", "keys", ""} {
		resp, page := owner.post("/reauth", url.Values{"password": {password}, "totp": {owner.totp(app)}, "next": {"/keys"},
			resumeField: {path}, keptPrefix + "name": {"from " + path}})
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/keys" {
			t.Errorf("resume %q: %d to %q, want 303 to /keys", path, resp.StatusCode, resp.Header.Get("Location"))
		}
		if strings.Contains(page, `id="resume"`) {
			t.Errorf("resume %q: a Continue form", path)
		}
		// The session is fresh now: make it stale again.
		owner.clock.Advance(guard.DefaultStepUpWindow + time.Minute)
	}
	// A wrong password does not carry an unsafe path on either.
	resp, page := owner.post("/reauth", url.Values{"password": {"a wrong guess"}, "totp": {owner.totp(app)}, "next": {"/keys"},
		resumeField: {"//evil.test/keys"}, keptPrefix + "name": {"evil"}})
	if resp.StatusCode != http.StatusBadRequest || strings.Contains(page, "evil.test") || strings.Contains(page, keptPrefix) {
		t.Errorf("a wrong password with an off-site path: %d, carried on", resp.StatusCode)
	}
	if names := keyNames(t, owner); len(names) != 0 {
		t.Errorf("keys created: %q", names)
	}
}

// keepForm decides what rides through a step-up; a form it refuses goes
// the old way.
func TestKeepForm(t *testing.T) {
	owner, _ := newClient(t)
	a := owner.con.app
	for _, c := range []struct {
		name, path string
		form       url.Values
		want       url.Values // nil: refused
	}{
		{"a key", "/keys", url.Values{"name": {"X"}, "role": {"admin"}}, url.Values{"name": {"X"}, "role": {"admin"}}},
		{"a role grant", "/users/u1/grant", url.Values{"role": {"admin"}}, url.Values{"role": {"admin"}}},
		{"an empty form", "/keys/revoke", url.Values{}, url.Values{}},
		{"repeated values", "/roles", url.Values{"name": {"r"}, "perm": {"a:b", "c:d"}}, url.Values{"name": {"r"}, "perm": {"a:b", "c:d"}}},
		{"a password", "/users", url.Values{"email": {"e"}, "password": {"x"}}, nil},
		{"the password rules", "/security", url.Values{"password_min_length": {"12"}, "password_history": {"3"}, "password_max_age_days": {"0"}, "confirm": {"yes"}},
			url.Values{"password_min_length": {"12"}, "password_history": {"3"}, "password_max_age_days": {"0"}, "confirm": {"yes"}}},
		{"the password rules elsewhere", "/keys", url.Values{"password_min_length": {"12"}}, nil},
		{"a password on the security form", "/security", url.Values{"password": {"x"}}, nil},
		{"a new password", "/account/password", url.Values{"current": {"x"}, "new": {"y"}, "confirm": {"y"}}, nil},
		{"a token", "/keys", url.Values{"csrf_token": {"x"}}, nil},
		{"a TOTP code", "/account/mfa/confirm", url.Values{"factor": {"f"}, "code": {"123456"}}, nil},
		{"the CAPTCHA", "/account/email", url.Values{a.captcha.Field: {"x"}}, nil},
		{"an unknown path", "/nowhere", url.Values{"name": {"X"}}, nil},
		{"a GET-only path", "/audit", url.Values{"name": {"X"}}, nil},
		{"the step-up", "/reauth", url.Values{"name": {"X"}}, nil},
		{"off-site", "//evil.test/keys", url.Values{"name": {"X"}}, nil},
		{"another spelling", "/account/%70assword", url.Values{"current": {"x"}}, nil},
		{"a space", "/users/a b/grant", url.Values{"role": {"admin"}}, nil},
		{"50 fields", "/keys", fields(maxKeptFields), fields(maxKeptFields)},
		{"51 fields", "/keys", fields(maxKeptFields + 1), nil},
		{"8 KiB", "/keys", url.Values{"name": {strings.Repeat("n", maxKeptBytes-len("name"))}}, url.Values{"name": {strings.Repeat("n", maxKeptBytes-len("name"))}}},
		{"over 8 KiB", "/keys", url.Values{"name": {strings.Repeat("n", maxKeptBytes-len("name")+1)}}, nil},
	} {
		got, ok := a.keepForm(c.path, c.form)
		if ok != (c.want != nil) || ok && !equalForms(got, c.want) {
			t.Errorf("%s: kept %v (%d fields), want kept %v (%d fields)", c.name, ok, len(got), c.want != nil, len(c.want))
		}
	}
}

// fields returns a form of n fields.
func fields(n int) url.Values {
	f := url.Values{}
	for i := range n {
		f.Set(fmt.Sprintf("f%d", i), "v")
	}
	return f
}
