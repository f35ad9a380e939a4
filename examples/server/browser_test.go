package main

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"
)

// The browser tests drive Debian's Chromium, headless, through the
// console's pages over plain HTTP on 127.0.0.1, as a newcomer would after
// `go run ./examples/server`. They skip when no Chromium is installed,
// unless CI is set: then they must run (.ci/run installs chromium).

// chromiumPath finds a Chromium or Chrome binary.
func chromiumPath() string {
	if p := os.Getenv("GUARD_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome-stable", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	return ""
}

// chrome is one headless Chromium with a fresh profile.
type chrome struct {
	t   *testing.T
	ctx context.Context // the browser's first tab
}

func newChrome(t *testing.T) *chrome {
	t.Helper()
	path := chromiumPath()
	if path == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("no Chromium found (chromium, chromium-browser, google-chrome or $GUARD_CHROMIUM) and CI is set: install it with apt-get install chromium")
		}
		t.Skip("no Chromium found: install it (apt-get install chromium) or set GUARD_CHROMIUM to run the browser tests")
	}
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.NoFirstRun,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	t.Cleanup(func() { cancel(); cancelAlloc() })
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("starting Chromium: %v", err)
	}
	return &chrome{t: t, ctx: ctx}
}

// user is one person at their own browser: a separate browser context
// (own cookies), as a second person on another machine would be.
type user struct {
	t   *testing.T
	ctx context.Context
	url string // the console
}

func (b *chrome) user(base string) *user {
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	b.t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil {
		b.t.Fatal(err)
	}
	return &user{t: b.t, ctx: ctx, url: base}
}

// step runs actions with a timeout and fails the test on error.
func (u *user) step(what string, actions ...chromedp.Action[chromedp.Void]) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		u.t.Fatalf("%s: %v (at %s)", what, err, u.location())
	}
}

func (u *user) location() string {
	ctx, cancel := context.WithTimeout(u.ctx, 5*time.Second)
	defer cancel()
	l, _ := chromedp.Run(ctx, chromedp.Location())
	return l
}

// text returns the text of the first element matching a CSS selector.
func (u *user) text(sel string) string {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 20*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel), chromedp.NodeVisible))
	if err != nil {
		u.t.Fatalf("text of %s: %v (at %s)", sel, err, u.location())
	}
	return strings.TrimSpace(s)
}

// value returns the value of a form field.
func (u *user) value(sel string) string {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 20*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(sel)))
	if err != nil {
		u.t.Fatalf("value of %s: %v (at %s)", sel, err, u.location())
	}
	return strings.TrimSpace(s)
}

// open navigates to a path of the console.
func (u *user) open(path string) {
	u.t.Helper()
	u.step("open "+path, chromedp.Navigate(u.url+path), chromedp.WaitReady(chromedp.CSS("body")))
}

// submit clicks a button that submits a form (or a link) and waits for
// the next page to load.
func (u *user) submit(sel string) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 20*time.Second)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.WaitEvent(page.LoadEventFired, nil, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))); err != nil {
		u.t.Fatalf("submit %s: %v (at %s)", sel, err, u.location())
	}
}

// fill types into form fields by CSS selector.
func (u *user) fill(pairs ...string) {
	u.t.Helper()
	for i := 0; i+1 < len(pairs); i += 2 {
		u.step("fill "+pairs[i], chromedp.SetValue(chromedp.CSS(pairs[i]), pairs[i+1], chromedp.NodeVisible))
	}
}

// serveConsole serves a console on a real listener on 127.0.0.1 over
// plain HTTP, as `go run ./examples/server` does.
func serveConsole(t *testing.T, clock *testClock) (*console, string) {
	t.Helper()
	return serveConsoleIdP(t, clock, "")
}

// serveConsoleIdP is serveConsole with -idp-metadata.
func serveConsoleIdP(t *testing.T, clock *testClock, idpMetadata string) (*console, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	c := newTestConsoleWith(t, testOptions(t, base, clock, idpMetadata), nil)
	srv := &http.Server{Handler: c.app.routes(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			t.Error(err)
		}
	}()
	t.Cleanup(func() { srv.Close() })
	return c, base
}

// count returns the number of elements matching a CSS selector.
func (u *user) count(sel string) int {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, 10*time.Second)
	defer cancel()
	n, err := chromedp.Run(ctx, chromedp.Evaluate[int](`document.querySelectorAll(`+jsString(sel)+`).length`))
	if err != nil {
		u.t.Fatalf("count %s: %v", sel, err)
	}
	return n
}

func jsString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// waitPath waits until the browser shows the page at path (after
// redirects and pages that post themselves).
func (u *user) waitPath(path string) {
	u.t.Helper()
	for range 200 {
		if u.path() == path {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	u.t.Fatalf("the browser is at %s, want %s", u.location(), path)
}

// path is the path of the page the browser shows.
func (u *user) path() string { return strings.TrimPrefix(u.location(), u.url) }

// flash returns the text of the page's message.
func (u *user) flash() string { return u.text(".flash") }

// signIn signs in on the sign-in page with a password.
func (u *user) signIn(email, password string) {
	u.t.Helper()
	u.open("/login")
	u.fill("input[name=email]", email, "input[name=password]", password)
	u.submit("#sign-in")
	if u.path() == "/login" && u.count("input[name=captcha]") == 1 {
		// After several failures from this address, Guard asks for the
		// CAPTCHA: tick it, as a person would.
		u.fill("input[name=password]", password)
		u.check("input[name=captcha]")
		u.submit("#sign-in")
	}
}

// check ticks a checkbox.
func (u *user) check(sel string) {
	u.t.Helper()
	u.step("wait for "+sel, chromedp.WaitReady(chromedp.CSS(sel)))
	u.step("tick "+sel, chromedp.Evaluate[chromedp.Void](`document.querySelector(`+jsString(sel)+`).checked = true`))
}

// screenshot saves the page as docs/screenshots/NAME.png when
// GUARD_SCREENSHOTS is set (the images of the README).
func (u *user) screenshot(name string) { u.shoot(name, chromedp.FullScreenshot(100)) }

// viewShot saves only what the window shows, for long pages.
func (u *user) viewShot(name string) { u.shoot(name, chromedp.CaptureScreenshot()) }

func (u *user) shoot(name string, shot chromedp.Action[[]byte]) {
	u.t.Helper()
	if os.Getenv("GUARD_SCREENSHOTS") == "" {
		return
	}
	ctx, cancel := context.WithTimeout(u.ctx, 20*time.Second)
	defer cancel()
	png, err := chromedp.Run(ctx, shot)
	if err != nil {
		u.t.Fatalf("screenshot %s: %v", name, err)
	}
	dir := filepath.Join("..", "..", "docs", "screenshots")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		u.t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		u.t.Fatal(err)
	}
}

// totpCode is the authenticator app: the code of secret at the console's
// time, one 30-second step later than the last one it gave, since a code
// is accepted once.
func totpCode(t *testing.T, clock *testClock, secret string) string {
	t.Helper()
	clock.Advance(30 * time.Second)
	code, err := totp.GenerateCode(secret, clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	return code
}

// download clicks a download link and returns the file's content.
func (u *user) download(sel string) []byte {
	u.t.Helper()
	dir := u.t.TempDir()
	ctx, cancel := context.WithTimeout(u.ctx, 30*time.Second)
	defer cancel()
	progress := chromedp.BrowserEvents(ctx, browser.DownloadProgress)
	bc := chromedp.FromContext(u.ctx).BrowserContextID
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, BrowserContextID: bc, DownloadPath: dir, EventsEnabled: new(true),
	}); err != nil {
		u.t.Fatal(err)
	}
	u.step("click "+sel, chromedp.Click(chromedp.CSS(sel), chromedp.NodeVisible))
	for ev, err := range progress {
		if err != nil {
			u.t.Fatalf("download %s: %v", sel, err)
		}
		if ev.State == browser.DownloadProgressStateCanceled {
			u.t.Fatalf("download %s cancelled", sel)
		}
		if ev.State != browser.DownloadProgressStateCompleted {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, ev.GUID))
		if err != nil {
			u.t.Fatal(err)
		}
		return b
	}
	u.t.Fatalf("download %s: no completion", sel)
	return nil
}

// TestBrowserConsole walks through every capability of the console in
// Chromium, as a tenant administrator and a second person would.
func TestBrowserConsole(t *testing.T) {
	b := newChrome(t)
	clock := &testClock{}
	c, base := serveConsole(t, clock)
	owner := b.user(base)
	var secret, samID string

	must := func(ok bool, format string, args ...any) {
		t.Helper()
		if !ok {
			t.Fatalf(format, args...)
		}
	}

	// Sign in with the password printed at start.
	owner.open("/")
	must(owner.path() == "/login", "an anonymous visit lands on %s", owner.path())
	owner.screenshot("01-sign-in")
	owner.fill("input[name=email]", ownerEmail, "input[name=password]", "not the password")
	owner.submit("#sign-in")
	must(strings.Contains(owner.text("#error"), "Incorrect email or password"), "wrong password: %q", owner.text("#error"))
	owner.fill("input[name=email]", ownerEmail, "input[name=password]", c.password)
	owner.submit("#sign-in")
	must(owner.path() == "/", "signed in at %s", owner.path())
	must(strings.Contains(owner.text(".who"), ownerEmail), "header %q", owner.text(".who"))
	owner.screenshot("02-overview")

	// Administration needs two-step verification (SECURITY-CHECKLIST
	// RB-11): signed in with a password only and without a second
	// factor, the owner opening Users is sent to set up an authenticator
	// app, and told why.
	owner.open("/users")
	must(owner.path() == "/account?mfa=1&next=%2Fusers#mfa", "a password-only session opening /users is at %s", owner.path())
	must(strings.Contains(owner.text("#admin-mfa"), "Administration needs two-step verification."), "the set-up page says %q", owner.text("#admin-mfa"))

	// Enrol an authenticator app from the QR page's secret.
	owner.open("/account")
	owner.submit("#add-totp")
	secret = owner.text("#totp-secret")
	must(len(secret) == 32, "TOTP secret %q", secret)
	must(owner.count(".qr img") == 1, "no QR code")
	owner.screenshot("03-enrol-authenticator")
	owner.fill("#totp-code", totpCode(t, clock, secret))
	owner.submit("#confirm")
	must(owner.count("#recovery-codes li") == 10, "%d recovery codes shown", owner.count("#recovery-codes li"))
	owner.submit("#continue")
	must(owner.path() == "/account", "after the codes at %s", owner.path())
	must(owner.text("#codes-left") == "10", "codes left %q", owner.text("#codes-left"))
	owner.screenshot("04-my-account")

	// Enrolling is not passing the factor: Users asks for the step-up
	// with the new app, then opens.
	owner.open("/users")
	must(owner.path() == "/reauth?mfa=1&next=%2Fusers", "a session that enrolled but did not use the app opening /users is at %s", owner.path())
	must(strings.Contains(owner.text("#admin-mfa"), "Administration needs two-step verification."), "the step-up page says %q", owner.text("#admin-mfa"))
	must(owner.count("#reauth-sso") == 0, "the step-up for Administration offers SSO, which is no second factor here")
	owner.fill("#reauth-password", c.password, "#reauth-totp", totpCode(t, clock, secret))
	owner.submit("#reauth")
	must(owner.path() == "/users", "after the step-up at %s", owner.path())
	must(owner.count("#users tbody tr") == 4, "%d users listed", owner.count("#users tbody tr"))

	// Sign out, and in again with a code from the app.
	owner.submit("#sign-out")
	must(owner.path() == "/login", "signed out to %s", owner.path())
	owner.fill("input[name=email]", ownerEmail, "input[name=password]", c.password)
	owner.submit("#sign-in")
	must(owner.path() == "/login/mfa", "second step at %s", owner.path())
	owner.screenshot("05-second-factor")
	owner.fill("#totp", "000000")
	owner.submit("#verify")
	must(strings.Contains(owner.text("#error"), "not accepted"), "wrong code: %q", owner.text("#error"))
	owner.fill("#totp", totpCode(t, clock, secret))
	owner.submit("#verify")
	must(owner.path() == "/", "after the second factor at %s", owner.path())

	// Add a user, who signs in in their own browser; deactivating them
	// ends their session at once.
	owner.open("/users")
	owner.fill("#create-user input[name=email]", "sam@demo.example", "#create-user input[name=name]", "Sam Staff",
		"#create-user input[name=password]", "plum tree on the hill 42")
	owner.submit("#add-user")
	must(strings.HasPrefix(owner.path(), "/users/"), "after adding at %s", owner.path())
	samID = strings.TrimPrefix(owner.path(), "/users/")
	sam := b.user(base)
	sam.signIn("sam@demo.example", "plum tree on the hill 42")
	must(sam.path() == "/", "Sam signed in at %s", sam.path())
	sam.open("/users")
	must(strings.Contains(sam.text("h1"), "Access denied"), "a member on the users page: %q", sam.text("h1"))
	owner.open("/users")
	must(owner.count("#users tbody tr") == 5, "%d users listed", owner.count("#users tbody tr"))
	owner.screenshot("06-users")
	owner.open("/users/" + samID)
	owner.screenshot("07-user")
	owner.submit("#deactivate")
	must(strings.Contains(owner.flash(), "Deactivated"), "flash %q", owner.flash())
	sam.open("/account")
	must(sam.path() == "/login?next=%2Faccount", "Sam's next request after deactivation went to %s", sam.path())
	sam.signIn("sam@demo.example", "plum tree on the hill 42")
	must(sam.path() == "/login", "a deactivated user signed in (%s)", sam.path())

	// IP allow-list: the admin's own address is shown; adding it works, a
	// list without it is refused.
	owner.open("/ip")
	must(owner.text("#client-ip") == "127.0.0.1", "current IP %q", owner.text("#client-ip"))
	owner.submit("#add-button-users")
	must(strings.Contains(owner.flash(), "Saved the list (1 entry)"), "flash %q", owner.flash())
	owner.fill("#entries-users", "10.0.0.0/8\n192.0.2.0/24")
	owner.submit("#save-users")
	must(strings.Contains(owner.flash(), "lock you out"), "self-lockout: %q", owner.flash())
	must(owner.value("#entries-users") == "10.0.0.0/8\n192.0.2.0/24", "the form after the refusal: %q", owner.value("#entries-users"))
	owner.open("/ip")
	must(owner.value("#entries-users") == "127.0.0.1", "list after the refusal: %q", owner.value("#entries-users"))
	owner.screenshot("08-ip-allow-lists")

	// API keys: created and shown once, then used by a program.
	owner.open("/keys")
	owner.fill("#key-name", "Reporting export")
	owner.submit("#create-key")
	key := owner.text("#api-key")
	must(strings.HasPrefix(key, "gk_"), "key %q", key)
	owner.screenshot("09-api-keys")
	req, _ := http.NewRequest("GET", base+"/api/reports", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err := http.DefaultClient.Do(req)
	must(err == nil && resp.StatusCode == 200, "the API with the key: %v %v", resp, err)
	resp.Body.Close()
	owner.open("/keys")
	must(owner.count("code.secret") == 0, "the key is shown again")

	// Four-eyes approval: a send needs a second person, who gets a
	// password through "Forgot your password?" with the CAPTCHA.
	owner.open("/security")
	owner.check("#four-eyes")
	owner.submit("#save-four-eyes")
	must(strings.Contains(owner.flash(), "second person"), "flash %q", owner.flash())
	owner.open("/campaigns")
	owner.submit("#send-spring-newsletter")
	must(strings.Contains(owner.flash(), "needs a second person"), "flash %q", owner.flash())
	owner.open("/approvals")
	must(owner.count("#pending .approve") == 0 && strings.Contains(owner.text("#pending"), "your request"), "own request approvable")

	maxU := b.user(base)
	maxU.open("/forgot")
	maxU.fill("input[name=email]", "max@demo.example")
	maxU.submit("#send-link")
	must(strings.Contains(maxU.flash(), "CAPTCHA"), "forgot without the CAPTCHA: %q", maxU.flash())
	maxU.fill("input[name=email]", "max@demo.example")
	maxU.check("input[name=captcha]")
	maxU.submit("#send-link")
	must(maxU.count("#sent") == 1, "no confirmation")
	link := waitLink(t, c, "max@demo.example")
	maxU.open(strings.TrimPrefix(link, base))
	must(maxU.path() == "/reset", "the reset page kept the token in its URL: %s", maxU.path())
	maxU.fill("input[name=password]", "green kettle morning song", "input[name=confirm]", "green kettle morning song")
	maxU.check("input[name=captcha]")
	maxU.submit("#set-password")
	must(strings.Contains(maxU.flash(), "password was changed"), "reset: %q", maxU.flash())
	maxU.signIn("max@demo.example", "green kettle morning song")
	must(maxU.path() == "/", "Max signed in at %s", maxU.path())
	// Approving is an administrative act: Max, signed in with a password
	// only, sets up an authenticator app and confirms it is him first.
	maxU.open("/approvals")
	must(maxU.path() == "/account?mfa=1&next=%2Fapprovals#mfa", "a password-only session opening /approvals is at %s", maxU.path())
	maxU.submit("#add-totp")
	maxSecret := maxU.text("#totp-secret")
	maxU.fill("#totp-code", totpCode(t, clock, maxSecret))
	maxU.submit("#confirm")
	maxU.submit("#continue")
	must(maxU.path() == "/reauth?mfa=1&next=%2Fapprovals", "after Max's recovery codes at %s", maxU.path())
	maxU.fill("#reauth-password", "green kettle morning song", "#reauth-totp", totpCode(t, clock, maxSecret))
	maxU.submit("#reauth")
	must(maxU.path() == "/approvals", "after Max's step-up at %s", maxU.path())
	must(maxU.count("#pending .approve") == 1, "Max sees %d approvable requests", maxU.count("#pending .approve"))
	maxU.screenshot("10-approvals")
	maxU.submit("#pending .approve")
	must(strings.Contains(maxU.flash(), "Approved"), "approval: %q", maxU.flash())
	owner.open("/campaigns")
	must(strings.Contains(owner.text("#send-spring-newsletter"), "approved"), "button %q", owner.text("#send-spring-newsletter"))
	owner.submit("#send-spring-newsletter")
	must(strings.Contains(owner.flash(), "with the approval of a second person"), "send: %q", owner.flash())

	// Require MFA: the counts and who is affected come first; the change
	// needs a recent sign-in (step-up).
	clock.Advance(16 * time.Minute)
	owner.open("/security")
	// No IdP is connected here, so nobody counts as on SSO: neither is
	// Sam, Mia and Rita (Mia and Rita were invited, with no password).
	must(owner.text("#count-mfa") == "2" && owner.text("#count-sso") == "0" && owner.text("#count-neither") == "3",
		"counts MFA %s, SSO %s, neither %s", owner.text("#count-mfa"), owner.text("#count-sso"), owner.text("#count-neither"))
	owner.screenshot("11-security")
	owner.check("#require-mfa")
	owner.submit("#save-policy")
	must(owner.count("#confirm-mfa") == 1, "no confirmation step")
	must(owner.text("#would-enrol") == "2", "would enrol %q", owner.text("#would-enrol")) // Mia, Rita
	owner.screenshot("12-require-mfa")
	owner.submit("#confirm-require")
	// The step-up comes in place, and keeps the form (sudo mode): after
	// it, Continue sends the form as it was.
	must(owner.count("#reauth-password") == 1 && owner.count("#kept-form") == 1, "an old sign-in changed the policy (%s)", owner.path())
	owner.fill("#reauth-password", c.password, "#reauth-totp", totpCode(t, clock, secret))
	owner.submit("#reauth")
	must(owner.count("#resume") == 1, "after the step-up at %s: no Continue", owner.path())
	owner.submit("#resume")
	must(strings.Contains(owner.flash(), "saved"), "policy: %q", owner.flash())
	must(owner.count("#require-mfa[checked]") == 1, "MFA not required after saving")

	// A month later: an access review. Max signs in with a code from
	// his app; Mia and Rita never signed in: dormant.
	clock.Advance(31 * 24 * time.Hour)
	maxU.signIn("max@demo.example", "green kettle morning song")
	must(maxU.path() == "/login/mfa", "Max with an app went to %s", maxU.path())
	maxU.fill("#totp", totpCode(t, clock, maxSecret))
	maxU.submit("#verify")
	must(maxU.path() == "/", "Max landed on %s", maxU.path())

	owner.signIn(ownerEmail, c.password)
	owner.fill("#totp", totpCode(t, clock, secret))
	owner.submit("#verify")
	owner.open("/review")
	must(owner.text("#count-dormant") == "2", "dormant %q", owner.text("#count-dormant"))
	must(owner.count("#unused-keys input[type=checkbox]") == 1, "unused keys listed: %d", owner.count("#unused-keys input[type=checkbox]"))
	owner.screenshot("13-access-review")
	rowSelect := func(email string) string {
		return `select[aria-label="decision for ` + email + `"]`
	}
	owner.step("decide", chromedp.SetValue(chromedp.CSS(rowSelect("mia@demo.example")), "deactivate"),
		chromedp.SetValue(chromedp.CSS(rowSelect("max@demo.example")), "role:reports-only"))
	owner.check("#unused-keys input[type=checkbox]")
	owner.submit("#apply-review")
	must(strings.Contains(owner.flash(), "Review recorded: 1 deactivated, 1 with fewer roles, 1 keys revoked, 1 sessions ended"), "review: %q", owner.flash())
	must(owner.text("#next-due") == clock.Now().Add(14*24*time.Hour).UTC().Format("2 Jan 2006"), "next due %q", owner.text("#next-due"))
	maxU.open("/account")
	must(strings.HasPrefix(maxU.path(), "/login"), "the downgraded user's session survived (%s)", maxU.path())
	req, _ = http.NewRequest("GET", base+"/api/reports", nil)
	req.Header.Set("Authorization", "Bearer "+key)
	resp, err = http.DefaultClient.Do(req)
	must(err == nil && resp.StatusCode == 401, "the revoked key: %v %v", resp, err)
	resp.Body.Close()

	// The audit log: filter, verify the chain, export.
	owner.open("/audit?action=user.deactivated")
	must(owner.count("#events tbody tr") == 2, "%d user.deactivated events", owner.count("#events tbody tr"))
	owner.open("/audit")
	owner.viewShot("14-audit-log")
	owner.submit("#verify")
	must(strings.Contains(owner.text("#verify-result"), "Integrity verified"), "verify: %q", owner.text("#verify-result"))
	csv := string(owner.download("#export-csv"))
	must(strings.HasPrefix(csv, "id,tenant,seq,time,actor_kind") && strings.Contains(csv, "access_review.completed") && strings.Contains(csv, "approval.approved"),
		"CSV export: %.200q", csv)

	owner.open("/roles")
	owner.screenshot("15-roles")

	// A verified email change: the link goes to the new address, which
	// becomes the sign-in address when the link comes back.
	const newOwnerEmail = "olivia.owner@new.example"
	owner.open("/account")
	owner.fill("#new-email-address", newOwnerEmail)
	owner.submit("#change-email")
	must(strings.Contains(owner.flash(), "We sent a link to "+newOwnerEmail), "email change: %q", owner.flash())
	link = waitLinkTo(t, c, newOwnerEmail, "/email/confirm")
	owner.open(strings.TrimPrefix(link, base))
	must(owner.path() == "/email/confirm", "the confirmation page kept the token in its URL: %s", owner.path())
	must(owner.text("#new-email") == newOwnerEmail, "confirming %q", owner.text("#new-email"))
	owner.submit("#confirm-email")
	must(strings.Contains(owner.flash(), "Your email address is now "+newOwnerEmail), "confirmation: %q", owner.flash())
	clock.Advance(time.Minute) // a TOTP step is accepted once
	owner.signIn(newOwnerEmail, c.password)
	owner.fill("#totp", totpCode(t, clock, secret))
	owner.submit("#verify")
	must(owner.path() == "/", "the owner signed in with the new address at %s", owner.path())
}

// TestBrowserSSO signs in with SSO in Chromium: "Sign in with SSO" on the
// console's sign-in page, the IdP's form (crewjam's samlidp, as the demo
// IdP serves it), its answer posted back to the console from the IdP's
// site; the owner's single sign-on page and "require SSO"; signing out at
// the console and at the IdP.
func TestBrowserSSO(t *testing.T) {
	b := newChrome(t)
	idp := newTestIdP(t)
	clock := &testClock{}
	c, base := serveConsoleIdP(t, clock, idp.url+"/metadata")
	must := func(ok bool, format string, args ...any) {
		t.Helper()
		if !ok {
			t.Fatalf(format, args...)
		}
	}
	resp, err := http.Get(base + "/saml/demo/metadata")
	must(err == nil && resp.StatusCode == 200, "SP metadata: %v %v", resp, err)
	md, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	idp.put("/services/demo", string(md))
	idp.addUser("alice", "alice@example.com", "correct horse battery", "admins")

	alice := b.user(base)
	alice.open("/login")
	alice.submit("#sso")
	must(strings.HasPrefix(alice.location(), idp.url+"/sso?"), "Sign in with SSO went to %s", alice.location())
	alice.fill("input[name=user]", "alice", "input[name=password]", "correct horse battery")
	alice.submit("input[type=submit]")
	alice.waitPath("/")
	must(strings.Contains(alice.text(".who"), "alice@example.com"), "header %q", alice.text(".who"))

	owner := b.user(base)
	owner.signIn(ownerEmail, c.password)
	owner.open("/security/sso")
	// Administration needs two-step verification (SECURITY-CHECKLIST
	// RB-11): the owner sets up an authenticator app, confirms it is them
	// with it, and is back on the page.
	must(owner.path() == "/account?mfa=1&next=%2Fsecurity%2Fsso#mfa", "a password-only session opening the SSO page is at %s", owner.path())
	owner.submit("#add-totp")
	secret := owner.text("#totp-secret")
	owner.fill("#totp-code", totpCode(t, clock, secret))
	owner.submit("#confirm")
	must(owner.count("#recovery-codes li") == 10, "%d recovery codes shown", owner.count("#recovery-codes li"))
	owner.submit("#continue")
	must(owner.path() == "/reauth?mfa=1&next=%2Fsecurity%2Fsso", "after the recovery codes at %s", owner.path())
	owner.fill("#reauth-password", c.password, "#reauth-totp", totpCode(t, clock, secret))
	owner.submit("#reauth")
	must(owner.path() == "/security/sso", "after the step-up at %s", owner.path())
	must(strings.Contains(owner.flash(), "Administration is open for this session"), "flash %q", owner.flash())
	owner.open("/security/sso")
	must(owner.text("#idp-entity-id") == idp.url+"/metadata", "IdP %q", owner.text("#idp-entity-id"))
	// Alice, who signed in through the IdP; Max, Mia and Rita, invited
	// without a password, never did, so they are not on SSO.
	must(owner.text("#count-sso") == "1", "SSO users %q", owner.text("#count-sso"))
	owner.screenshot("16-single-sign-on")
	owner.check("#require-sso")
	owner.submit("#save-require-sso")
	must(owner.count("#confirm-sso") == 1, "no confirmation step")
	must(owner.text("#password-users") == "3", "users who would lose access %q", owner.text("#password-users")) // Max, Mia and Rita
	owner.screenshot("17-require-sso")
	owner.submit("#confirm-require-sso")
	must(strings.Contains(owner.flash(), "Single sign-on is required"), "flash %q", owner.flash())
	must(owner.count("#require-sso[checked]") == 1, "SSO not required after saving")

	// Signing out ends the session here, then at the IdP, which sends the
	// browser back.
	alice.submit("#sign-out")
	alice.waitPath("/login")
	must(strings.Contains(alice.flash(), "at your identity provider too"), "flash %q", alice.flash())
	alice.open("/account")
	must(strings.HasPrefix(alice.path(), "/login"), "Alice's session outlived the sign-out (%s)", alice.path())
}

// TestBrowserSignedInElsewhere signs the owner in on two browsers: the
// first one's next page is the sign-in page, saying why (SECURITY-CHECKLIST
// SE-7).
func TestBrowserSignedInElsewhere(t *testing.T) {
	b := newChrome(t)
	c, base := serveConsole(t, nil)
	first, second := b.user(base), b.user(base)
	first.signIn(ownerEmail, c.password)
	first.waitPath("/")
	second.signIn(ownerEmail, c.password)
	second.waitPath("/")
	if f := second.flash(); !strings.Contains(f, "Your other session was ended") {
		t.Errorf("the second sign-in says %q", f)
	}
	first.open("/account")
	if p := first.path(); !strings.HasPrefix(p, "/login") {
		t.Fatalf("the first browser opening /account is at %s, want the sign-in page", p)
	}
	if f := first.flash(); f != "You were signed out because your account signed in elsewhere." {
		t.Errorf("the sign-in page says %q", f)
	}
	second.open("/account")
	if p := second.path(); p != "/account" {
		t.Errorf("the second browser opening /account is at %s", p)
	}
}
