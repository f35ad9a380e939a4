package main

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	guard "github.com/guardhq/guard"
)

// captchaWidget is the stand-in CAPTCHA's field on a page.
const captchaWidget = `name="captcha"`

// Every form that can ask for a CAPTCHA shows the widget on the page that
// answers a refusal for want of one (ErrCaptchaRequired), and, on the
// forms that show it only when asked (sign-in, step-up), again after an
// attempt made with the CAPTCHA done that failed on its password: the
// next attempt needs it as much (Guard asks for it until the failures
// are forgotten), and without it would be refused unevaluated.
func TestCaptchaWidgetShownAgain(t *testing.T) {
	c, password := newClient(t)
	for _, email := range []string{"sam@demo.example", "kim@demo.example"} {
		if _, err := c.con.g.CreateUser(t.Context(), guard.System("test"), guard.NewUser{Tenant: demoTenant, Email: email,
			Password: "plum tree on the hill 42"}); err != nil {
			t.Fatal(err)
		}
	}
	// asked checks the answer to an attempt refused for want of the
	// CAPTCHA: status, the page saying so, the widget.
	asked := func(what string, resp *http.Response, body string, status int, says string) {
		t.Helper()
		if resp.StatusCode != status || !strings.Contains(body, says) || !strings.Contains(body, captchaWidget) {
			t.Errorf("%s: %d %q, widget shown %v; want %d saying %q, with the widget",
				what, resp.StatusCode, pageError(body), strings.Contains(body, captchaWidget), status, says)
		}
	}

	// askedThenKept fails three times with wrong at path on b, then
	// wants the widget on the refusal for want of the CAPTCHA and on the
	// next failure, made with the CAPTCHA done.
	askedThenKept := func(b *client, what, path string, wrong url.Values) {
		t.Helper()
		for range 3 {
			b.post(path, wrong)
		}
		resp, body := b.post(path, wrong)
		asked(what+" without the CAPTCHA", resp, body, http.StatusBadRequest, "confirm you are human")
		wrong.Set("captcha", standinToken)
		resp, body = b.post(path, wrong)
		if resp.StatusCode != http.StatusBadRequest || !strings.Contains(body, captchaWidget) {
			t.Errorf("%s: a wrong password with the CAPTCHA done: %d %q, widget shown %v; want 400 with the widget",
				what, resp.StatusCode, pageError(body), strings.Contains(body, captchaWidget))
		}
	}

	t.Run("sign-in", func(t *testing.T) {
		b := newClientOf(t, c.srv, c.con)
		askedThenKept(b, "sign-in", "/login", url.Values{"tenant": {demoTenant}, "email": {ownerEmail}, "password": {"a wrong guess"}})
		// Why: the next attempt without it is refused unevaluated.
		resp, body := b.post("/login", url.Values{"tenant": {demoTenant}, "email": {ownerEmail}, "password": {password}})
		asked("the right password without the CAPTCHA after that", resp, body, http.StatusBadRequest, "confirm you are human")
	})
	t.Run("step-up", func(t *testing.T) {
		b := newClientOf(t, c.srv, c.con)
		if resp := b.signIn("sam@demo.example", "plum tree on the hill 42"); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("Sam's sign-in: %d", resp.StatusCode)
		}
		askedThenKept(b, "step-up", "/reauth", url.Values{"password": {"a wrong guess"}, "next": {"/account"}})
	})
	t.Run("forgot password", func(t *testing.T) {
		b := newClientOf(t, c.srv, c.con)
		resp, body := b.post("/forgot", url.Values{"tenant": {demoTenant}, "email": {ownerEmail}})
		asked("forgot password without the CAPTCHA", resp, body, http.StatusBadRequest, "Please complete the CAPTCHA.")
	})
	t.Run("change password", func(t *testing.T) {
		b := newClientOf(t, c.srv, c.con)
		if resp := b.signIn("kim@demo.example", "plum tree on the hill 42"); resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("Kim's sign-in: %d", resp.StatusCode)
		}
		resp, _ := b.post("/account/password", url.Values{"current": {"plum tree on the hill 42"},
			"new": {"a new and long passphrase 7"}, "confirm": {"a new and long passphrase 7"}})
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != "/account" {
			t.Fatalf("change password without the CAPTCHA: %d to %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		resp, body := b.get("/account")
		asked("change password without the CAPTCHA", resp, body, http.StatusOK, "Please complete the CAPTCHA.")
	})
}
