package main

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/mfa"
)

// The console runs no script, so a double click on a form's button sends
// the form twice, and the browser shows the second answer. Of a factor's
// confirmation, the first answer holds the recovery codes of a first
// factor (shown once) and the second finds the factor confirmed: these
// tests send the confirmation twice, one after the other, and check what
// the second answer tells the user.

var recoveryCodeRE = regexp.MustCompile(`<li><code>([^<]+)</code></li>`)

// recoveryCodes returns the recovery codes a page shows.
func recoveryCodes(page string) []string {
	var codes []string
	for _, m := range recoveryCodeRE.FindAllStringSubmatch(page, -1) {
		codes = append(codes, m[1])
	}
	return codes
}

// confirmTwiceUser creates a demo tenant user with password pw and
// returns a client of their own on c's console.
func confirmTwiceUser(t *testing.T, c *client, email, pw string) *client {
	t.Helper()
	if _, err := c.con.g.CreateUser(t.Context(), guard.System("test"), guard.NewUser{Tenant: demoTenant, Email: email, Password: pw}); err != nil {
		t.Fatal(err)
	}
	u := newClientOf(t, c.srv, c.con)
	u.clock = c.clock
	return u
}

// beginApp begins an authenticator app with the form begin posted to
// path, and returns the app and its confirmation's form (the factor and
// a code).
func beginApp(t *testing.T, u *client, path string, begin url.Values) (*authenticatorApp, url.Values) {
	t.Helper()
	_, page := u.post(path, begin)
	m := totpSecretRE.FindStringSubmatch(page)
	if m == nil {
		t.Fatalf("no key on the enrolment page:\n%.2000s", page)
	}
	app := &authenticatorApp{secret: m[1]}
	return app, url.Values{"factor": {field(t, page, "factor")}, "code": {u.totp(app)}}
}

// twinOf returns a client on c's console holding c's cookies as they are
// now: a browser's second request of a double click, sent before the
// first answer came back.
func twinOf(t *testing.T, c *client) *client {
	t.Helper()
	twin := newClientOf(t, c.srv, c.con)
	twin.clock = c.clock
	u, _ := url.Parse(c.srv.URL)
	twin.c.Jar.SetCookies(u, c.c.Jar.Cookies(u))
	return twin
}

// An authenticator app confirmed twice at My account: the second answer
// says the factor is set up (the form was probably sent twice), not that
// someone changed something, and offers a new set of recovery codes right
// there, whose button gives them, through the step-up once the sign-in
// is no longer recent. It shows no code of the first answer. A
// confirmation sent for an Administration page keeps the way on to it.
func TestFactorConfirmedTwiceAtAccount(t *testing.T) {
	c, _ := newClient(t)
	const pw = "plum tree on the hill 42"
	for _, tc := range []struct {
		name, email, next string
	}{
		{"account", "sam@demo.example", ""},
		{"for an Administration page", "lea@demo.example", "/users"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := confirmTwiceUser(t, c, tc.email, pw)
			if resp := u.signIn(tc.email, pw); resp.StatusCode != http.StatusSeeOther {
				t.Fatalf("sign-in: %d", resp.StatusCode)
			}
			begin := url.Values{}
			if tc.next != "" {
				begin.Set("next", tc.next)
			}
			app, form := beginApp(t, u, "/account/mfa/totp", begin)
			if tc.next != "" {
				form.Set("next", tc.next)
			}
			resp, page := u.post("/account/mfa/confirm", form)
			first := recoveryCodes(page)
			if resp.StatusCode != http.StatusOK || len(first) != mfa.DefaultRecoveryCodes {
				t.Fatalf("the first confirmation: %d with %d recovery codes", resp.StatusCode, len(first))
			}

			resp, page = u.post("/account/mfa/confirm", form)
			if resp.StatusCode == http.StatusSeeOther {
				// Today's answer: a flash on the account page.
				_, page = u.get(resp.Header.Get("Location"))
			}
			if strings.Contains(page, "Someone changed this") || !strings.Contains(page, `id="confirmed-twice"`) ||
				!strings.Contains(page, "already set up") || !strings.Contains(page, "sent twice") {
				t.Fatalf("the second confirmation: %d to %q, does not say the factor is set up:\n%.3000s",
					resp.StatusCode, resp.Header.Get("Location"), page)
			}
			if resp.StatusCode != http.StatusConflict {
				t.Errorf("the second confirmation: %d, want 409", resp.StatusCode)
			}
			for _, code := range first {
				if strings.Contains(page, code) {
					t.Fatalf("the second answer shows a recovery code of the first")
				}
			}
			hint := page[strings.Index(page, `id="confirmed-twice"`):]
			hint = hint[:strings.Index(hint, "</section>")]
			regen, ok := formFields(hint, "/account/recovery")
			if !ok || !strings.Contains(hint, "recovery codes") {
				t.Fatalf("the second answer offers no new recovery codes beside what it says:\n%s", hint)
			}
			if tc.next != "" && !strings.Contains(page, `id="admin-mfa-step-up"`) {
				t.Errorf("the second answer lost the way on to %s", tc.next)
			}

			// The button, at once: new codes.
			resp, page = u.post("/account/recovery", regen)
			second := recoveryCodes(page)
			if resp.StatusCode != http.StatusOK || len(second) != mfa.DefaultRecoveryCodes || slices.Contains(second, first[0]) {
				t.Fatalf("new recovery codes: %d with %d codes", resp.StatusCode, len(second))
			}
			// Their Continue goes on as the first answer's would have: to
			// the step-up for the Administration page, or to My account.
			onward := `href="/account" id="continue"`
			if tc.next != "" {
				onward = `href="/reauth?mfa=1&amp;next=%2Fusers" id="continue"`
			}
			if !strings.Contains(page, onward) {
				t.Errorf("the new recovery codes' Continue is not %s:\n%.3000s", onward, page)
			}

			// The button, once the sign-in is no longer recent: the
			// step-up keeps the form, and Continue gives the codes.
			u.clock.Advance(guard.DefaultStepUpWindow + time.Minute)
			resp, page = u.post("/account/recovery", regen)
			kept, ok := formFields(page, "/reauth")
			if resp.StatusCode != http.StatusOK || !ok || kept.Get(resumeField) != "/account/recovery" {
				t.Fatalf("new recovery codes after the step-up window: %d to %q, want the step-up page keeping the form",
					resp.StatusCode, resp.Header.Get("Location"))
			}
			kept.Set("password", pw)
			kept.Set("totp", u.totp(app))
			resp, page = u.post("/reauth", kept)
			cont, ok := formFields(page, "/account/recovery")
			if resp.StatusCode != http.StatusOK || !ok {
				t.Fatalf("the step-up: %d to %q, want a Continue form to /account/recovery", resp.StatusCode, resp.Header.Get("Location"))
			}
			resp, page = u.post("/account/recovery", cont)
			if third := recoveryCodes(page); resp.StatusCode != http.StatusOK || len(third) != mfa.DefaultRecoveryCodes || slices.Contains(third, second[0]) {
				t.Fatalf("Continue: %d with %d recovery codes", resp.StatusCode, len(third))
			}
		})
	}
}

// An authenticator app confirmed twice at the second step of a sign-in
// ("require MFA" sent the user to set one up). The first answer signs the
// user in and shows the recovery codes. The second comes either with the
// cookies the browser had before the first answer (it never got that
// answer: no session, and the sign-in's step used up) or with those the
// first answer set (the session; the step's cookie cleared). Either way
// the user is told that the app may be set up and how to get recovery
// codes they did not see: on the sign-in page when not signed in, on
// the account page, with the button, when signed in.
func TestEnrolAtSignInConfirmedTwice(t *testing.T) {
	c, _ := newClient(t)
	const pw = "plum tree on the hill 42"
	setPolicy(t, c.con, func(p *guard.Policy) { p.RequireMFA = true })
	for _, tc := range []struct {
		name, email string
		firstLost   bool // the second request carries the cookies from before the first answer
	}{
		{"first answer lost", "sam@demo.example", true},
		{"first answer's cookies kept", "lea@demo.example", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := confirmTwiceUser(t, c, tc.email, pw)
			if resp := u.signIn(tc.email, pw); resp.Header.Get("Location") != "/login/enrol" {
				t.Fatalf("sign-in went to %q, want /login/enrol", resp.Header.Get("Location"))
			}
			_, form := beginApp(t, u, "/login/enrol/begin", url.Values{})
			second := u
			if tc.firstLost {
				second = twinOf(t, u)
			}
			resp, page := u.post("/login/enrol/confirm", form)
			first := recoveryCodes(page)
			if resp.StatusCode != http.StatusOK || len(first) != mfa.DefaultRecoveryCodes {
				t.Fatalf("the first confirmation: %d with %d recovery codes", resp.StatusCode, len(first))
			}

			resp, page = second.post("/login/enrol/confirm", form)
			where := resp.Header.Get("Location")
			for hops := 0; resp.StatusCode == http.StatusSeeOther && hops < 3; hops++ {
				resp, page = second.get(resp.Header.Get("Location"))
			}
			for _, code := range first {
				if strings.Contains(page, code) {
					t.Fatalf("the second answer shows a recovery code of the first")
				}
			}
			signedIn, _ := second.whoami()
			if tc.firstLost {
				if signedIn == http.StatusOK {
					t.Fatal("the second confirmation signed the browser in")
				}
				if !strings.Contains(page, `action="/login"`) || !strings.Contains(page, "sent twice") ||
					!strings.Contains(page, "recovery codes") {
					t.Fatalf("the second confirmation (to %q) ends on a page that says nothing of the app or its codes:\n%.3000s", where, page)
				}
				return
			}
			if signedIn != http.StatusOK {
				t.Fatalf("signed out after the second confirmation: %d", signedIn)
			}
			hint, _, ok := strings.Cut(page[max(strings.Index(page, `id="confirmed-twice"`), 0):], "</section>")
			if !strings.Contains(page, `id="confirmed-twice"`) || !ok || !strings.Contains(hint, "already set up") ||
				!strings.Contains(hint, "recovery codes") {
				t.Fatalf("the second confirmation (to %q) ends signed in on a page that says nothing of the codes:\n%.3000s", where, page)
			}
			regen, ok := formFields(hint, "/account/recovery")
			if !ok {
				t.Fatalf("no button for new recovery codes beside the hint:\n%s", hint)
			}
			if resp, page := second.post("/account/recovery", regen); resp.StatusCode != http.StatusOK || len(recoveryCodes(page)) != mfa.DefaultRecoveryCodes {
				t.Fatalf("new recovery codes: %d", resp.StatusCode)
			}
		})
	}
}
