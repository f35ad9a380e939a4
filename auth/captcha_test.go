package auth_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/guardhq/guard/auth"
)

const (
	captchaSecret = "0x4AAAAAAA-site-secret"
	captchaToken  = "XXXX.DUMMY.TOKEN.XXXX-this-is-the-widget-token"
)

var captchaNow = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// Replies in the shapes the three providers document.
const (
	recaptchaV3OK = `{"success": true, "challenge_ts": "2026-03-01T11:59:30Z", "hostname": "app.example.com", "score": 0.9, "action": "login"}`
	hcaptchaOK    = `{"success": true, "challenge_ts": "2026-03-01T11:59:30.000Z", "hostname": "app.example.com", "credit": false}`
	turnstileOK   = `{"success": true, "challenge_ts": "2026-03-01T11:59:30.123Z", "hostname": "app.example.com", "error-codes": [], "action": "login", "cdata": "sessionid-123", "metadata": {"ephemeral_id": "x:012345"}}`
)

type captchaCall struct {
	form url.Values
	ct   string
}

// captchaServer answers every siteverify request with status and body.
func captchaServer(t *testing.T, status int, body string) (*httptest.Server, func() []captchaCall) {
	t.Helper()
	var mu sync.Mutex
	var calls []captchaCall
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		form, _ := url.ParseQuery(string(b))
		mu.Lock()
		calls = append(calls, captchaCall{form: form, ct: r.Header.Get("Content-Type")})
		mu.Unlock()
		if status == http.StatusFound {
			http.Redirect(w, r, "https://elsewhere.example/", status)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}))
	t.Cleanup(srv.Close)
	return srv, func() []captchaCall {
		mu.Lock()
		defer mu.Unlock()
		return append([]captchaCall(nil), calls...)
	}
}

func newSiteverify(t *testing.T, srv *httptest.Server, mod func(*auth.SiteverifyConfig)) *auth.Siteverify {
	t.Helper()
	cfg := auth.SiteverifyConfig{
		Endpoint:  srv.URL + "/siteverify",
		Secret:    captchaSecret,
		Hostnames: []string{"app.example.com"},
		Client:    srv.Client(),
		Now:       func() time.Time { return captchaNow },
	}
	if mod != nil {
		mod(&cfg)
	}
	v, err := auth.NewSiteverify(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestSiteverifyProviders(t *testing.T) {
	for _, tc := range []struct {
		name  string
		reply string
		mod   func(*auth.SiteverifyConfig)
	}{
		{"RecaptchaV3", recaptchaV3OK, func(c *auth.SiteverifyConfig) { c.Action, c.MinScore = "login", 0.5 }},
		{"HCaptcha", hcaptchaOK, func(c *auth.SiteverifyConfig) { c.SiteKey = "10000000-ffff-ffff-ffff-000000000001" }},
		{"Turnstile", turnstileOK, func(c *auth.SiteverifyConfig) { c.Action, c.MaxAge = "login", 5*time.Minute }},
		{"HostnameCase", strings.Replace(hcaptchaOK, "app.example.com", "App.Example.COM", 1), nil},
		{"SecondHostname", strings.Replace(hcaptchaOK, "app.example.com", "www.example.com", 1),
			func(c *auth.SiteverifyConfig) { c.Hostnames = append(c.Hostnames, "www.example.com") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, calls := captchaServer(t, http.StatusOK, tc.reply)
			v := newSiteverify(t, srv, tc.mod)
			if err := v.Verify(t.Context(), captchaToken, "::ffff:203.0.113.9"); err != nil {
				t.Fatalf("Verify = %v, want nil", err)
			}
			c := calls()
			if len(c) != 1 {
				t.Fatalf("%d calls", len(c))
			}
			f := c[0].form
			if f.Get("secret") != captchaSecret || f.Get("response") != captchaToken || f.Get("remoteip") != "203.0.113.9" ||
				c[0].ct != "application/x-www-form-urlencoded" {
				t.Errorf("request form %v, content type %q", f, c[0].ct)
			}
			if tc.name == "HCaptcha" && f.Get("sitekey") != "10000000-ffff-ffff-ffff-000000000001" {
				t.Errorf("sitekey not sent: %v", f)
			}
		})
	}
}

func TestSiteverifyFailsClosed(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		reply  string
		mod    func(*auth.SiteverifyConfig)
		token  string
		reason string
	}{
		{"Status500", 500, `{"success": true, "hostname": "app.example.com"}`, nil, "", auth.CaptchaUnavailable},
		{"Status403", 403, ``, nil, "", auth.CaptchaUnavailable},
		{"Redirect", http.StatusFound, ``, nil, "", auth.CaptchaUnavailable},
		{"NotJSON", 200, `<html>ok</html>`, nil, "", auth.CaptchaMalformed},
		{"Empty", 200, ``, nil, "", auth.CaptchaMalformed},
		{"Array", 200, `[{"success": true}]`, nil, "", auth.CaptchaMalformed},
		{"Truncated", 200, `{"success": true, "hostname": "app.exa`, nil, "", auth.CaptchaMalformed},
		{"TrailingObject", 200, hcaptchaOK + `{"success": true}`, nil, "", auth.CaptchaMalformed},
		{"NoSuccess", 200, `{"hostname": "app.example.com"}`, nil, "", auth.CaptchaMalformed},
		{"SuccessString", 200, `{"success": "true", "hostname": "app.example.com"}`, nil, "", auth.CaptchaMalformed},
		{"SuccessNull", 200, `{"success": null, "hostname": "app.example.com"}`, nil, "", auth.CaptchaMalformed},
		{"TooLarge", 200, `{"success": true, "hostname": "app.example.com", "x": "` + strings.Repeat("a", 70<<10) + `"}`, nil, "", auth.CaptchaMalformed},
		{"Failed", 200, `{"success": false, "error-codes": ["invalid-input-response"]}`, nil, "", auth.CaptchaRejected},
		{"FailedNoCodes", 200, `{"success": false}`, nil, "", auth.CaptchaRejected},
		{"Duplicate", 200, `{"success": false, "error-codes": ["timeout-or-duplicate"]}`, nil, "", auth.CaptchaDuplicate},
		{"HCaptchaAlreadySeen", 200, `{"success": false, "error-codes": ["already-seen-response"]}`, nil, "", auth.CaptchaDuplicate},
		{"BadSecret", 200, `{"success": false, "error-codes": ["invalid-input-secret"]}`, nil, "", auth.CaptchaMisconfigured},
		{"ProviderInternal", 200, `{"success": false, "error-codes": ["internal-error"]}`, nil, "", auth.CaptchaUnavailable},
		{"SuccessWithCodes", 200, `{"success": true, "hostname": "app.example.com", "error-codes": ["bad-request"]}`, nil, "", auth.CaptchaRejected},
		{"WrongHostname", 200, strings.Replace(hcaptchaOK, "app.example.com", "evil.example", 1), nil, "", auth.CaptchaHostname},
		{"SuffixHostname", 200, strings.Replace(hcaptchaOK, "app.example.com", "app.example.com.evil.example", 1), nil, "", auth.CaptchaHostname},
		{"NoHostname", 200, `{"success": true}`, nil, "", auth.CaptchaHostname},
		{"WrongAction", 200, recaptchaV3OK, func(c *auth.SiteverifyConfig) { c.Action = "forgot_password" }, "", auth.CaptchaAction},
		{"NoAction", 200, hcaptchaOK, func(c *auth.SiteverifyConfig) { c.Action = "login" }, "", auth.CaptchaAction},
		{"LowScore", 200, strings.Replace(recaptchaV3OK, "0.9", "0.3", 1), func(c *auth.SiteverifyConfig) { c.MinScore = 0.5 }, "", auth.CaptchaScore},
		{"NoScore", 200, hcaptchaOK, func(c *auth.SiteverifyConfig) { c.MinScore = 0.5 }, "", auth.CaptchaScore},
		{"Stale", 200, recaptchaV3OK, func(c *auth.SiteverifyConfig) { c.MaxAge = 10 * time.Second }, "", auth.CaptchaStale},
		{"FromTheFuture", 200, strings.Replace(recaptchaV3OK, "2026-03-01T11:59:30Z", "2026-03-01T13:00:00Z", 1), func(c *auth.SiteverifyConfig) { c.MaxAge = time.Minute }, "", auth.CaptchaStale},
		{"NoChallengeTS", 200, `{"success": true, "hostname": "app.example.com"}`, func(c *auth.SiteverifyConfig) { c.MaxAge = time.Minute }, "", auth.CaptchaStale},
		{"EmptyToken", 200, hcaptchaOK, nil, " ", auth.CaptchaMissing},
		{"OversizedToken", 200, hcaptchaOK, nil, strings.Repeat("t", 4097), auth.CaptchaTooLong},
		{"10KBToken", 200, hcaptchaOK, nil, strings.Repeat("t", 10<<10), auth.CaptchaTooLong},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv, calls := captchaServer(t, tc.status, tc.reply)
			v := newSiteverify(t, srv, tc.mod)
			token := tc.token
			if token == "" {
				token = captchaToken
			}
			err := v.Verify(t.Context(), token, "203.0.113.9")
			wantCaptcha(t, err, tc.reason)
			if tc.reason == auth.CaptchaMissing || tc.reason == auth.CaptchaTooLong {
				if n := len(calls()); n != 0 {
					t.Errorf("the provider was called %d times for a token refused up front", n)
				}
			}
		})
	}
}

// wantCaptcha checks a refusal: ErrCaptcha, the reason, and no secret or
// token in the message.
func wantCaptcha(t *testing.T, err error, reason string) {
	t.Helper()
	var ce *auth.CaptchaError
	if !errors.Is(err, auth.ErrCaptcha) || !errors.As(err, &ce) {
		t.Fatalf("Verify = %v, want a *CaptchaError wrapping ErrCaptcha", err)
	}
	if ce.Reason != reason {
		t.Errorf("reason %q, want %q (%v)", ce.Reason, reason, err)
	}
	if msg := err.Error(); strings.Contains(msg, captchaSecret) || strings.Contains(msg, captchaToken) {
		t.Errorf("error %q leaks the secret or the token", msg)
	}
}

func TestSiteverifyUnavailable(t *testing.T) {
	t.Run("Closed", func(t *testing.T) {
		srv, _ := captchaServer(t, 200, hcaptchaOK)
		v := newSiteverify(t, srv, nil)
		srv.Close()
		wantCaptcha(t, v.Verify(t.Context(), captchaToken, ""), auth.CaptchaUnavailable)
	})
	t.Run("UntrustedCertificate", func(t *testing.T) {
		srv, _ := captchaServer(t, 200, hcaptchaOK)
		v := newSiteverify(t, srv, func(c *auth.SiteverifyConfig) { c.Client = nil })
		wantCaptcha(t, v.Verify(t.Context(), captchaToken, ""), auth.CaptchaUnavailable)
	})
	t.Run("Timeout", func(t *testing.T) {
		release := make(chan struct{})
		srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-release:
			case <-r.Context().Done():
			}
		}))
		defer srv.Close()
		defer close(release)
		v := newSiteverify(t, srv, func(c *auth.SiteverifyConfig) { c.Timeout = 100 * time.Millisecond })
		start := time.Now()
		wantCaptcha(t, v.Verify(t.Context(), captchaToken, ""), auth.CaptchaUnavailable)
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("took %v", d)
		}
	})
	t.Run("Cancelled", func(t *testing.T) {
		srv, _ := captchaServer(t, 200, hcaptchaOK)
		v := newSiteverify(t, srv, nil)
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		wantCaptcha(t, v.Verify(ctx, captchaToken, ""), auth.CaptchaUnavailable)
	})
}

func TestSiteverifyRemoteIP(t *testing.T) {
	srv, calls := captchaServer(t, 200, hcaptchaOK)
	v := newSiteverify(t, srv, nil)
	for _, ip := range []string{"", "not an ip", "203.0.113.9\r\nX: y", "2001:db8::1"} {
		if err := v.Verify(t.Context(), captchaToken, ip); err != nil {
			t.Fatal(err)
		}
	}
	c := calls()
	for i, want := range []string{"", "", "", "2001:db8::1"} {
		if got := c[i].form.Get("remoteip"); got != want {
			t.Errorf("remoteip for input %d = %q, want %q", i, got, want)
		}
	}
}

func TestSiteverifyErrorCodesClipped(t *testing.T) {
	reply := `{"success": false, "error-codes": ["` + strings.Repeat("x", 500) + `", "a\nb", "1", "2", "3", "4", "5", "6", "7", "8"]}`
	srv, _ := captchaServer(t, 200, reply)
	err := newSiteverify(t, srv, nil).Verify(t.Context(), captchaToken, "")
	var ce *auth.CaptchaError
	if !errors.As(err, &ce) || len(ce.Codes) != 8 || len(ce.Codes[0]) != 64 || ce.Codes[1] != "a?b" {
		t.Errorf("codes %q", ce.Codes)
	}
}

func TestSiteverifyConfig(t *testing.T) {
	ok := auth.SiteverifyConfig{Endpoint: auth.TurnstileEndpoint, Secret: captchaSecret, Hostnames: []string{"app.example.com"}}
	if _, err := auth.NewSiteverify(ok); err != nil {
		t.Fatalf("NewSiteverify = %v", err)
	}
	for name, mod := range map[string]func(*auth.SiteverifyConfig){
		"NoEndpoint": func(c *auth.SiteverifyConfig) { c.Endpoint = "" },
		"HTTP": func(c *auth.SiteverifyConfig) {
			c.Endpoint = "http://challenges.cloudflare.com/turnstile/v0/siteverify"
		},
		"UserInfo":      func(c *auth.SiteverifyConfig) { c.Endpoint = "https://u:p@example.com/siteverify" },
		"NoSecret":      func(c *auth.SiteverifyConfig) { c.Secret = "" },
		"NoHostnames":   func(c *auth.SiteverifyConfig) { c.Hostnames = nil },
		"EmptyHostname": func(c *auth.SiteverifyConfig) { c.Hostnames = []string{""} },
		"ScoreAbove1":   func(c *auth.SiteverifyConfig) { c.MinScore = 1.5 },
		"NegativeScore": func(c *auth.SiteverifyConfig) { c.MinScore = -0.1 },
		"NegativeAge":   func(c *auth.SiteverifyConfig) { c.MaxAge = -1 },
		"NegativeToken": func(c *auth.SiteverifyConfig) { c.MaxTokenBytes = -1 },
		"NegativeTime":  func(c *auth.SiteverifyConfig) { c.Timeout = -1 },
	} {
		t.Run(name, func(t *testing.T) {
			cfg := ok
			mod(&cfg)
			_, err := auth.NewSiteverify(cfg)
			var ce *auth.ConfigError
			if !errors.As(err, &ce) || strings.Contains(err.Error(), captchaSecret) {
				t.Errorf("NewSiteverify = %v, want a *ConfigError without the secret", err)
			}
		})
	}
}

func TestCaptchaFunc(t *testing.T) {
	var v auth.CaptchaVerifier = auth.CaptchaFunc(func(_ context.Context, token, _ string) error {
		if token != "pass" {
			return &auth.CaptchaError{Reason: auth.CaptchaRejected}
		}
		return nil
	})
	if err := v.Verify(t.Context(), "pass", ""); err != nil {
		t.Error(err)
	}
	wantCaptcha(t, v.Verify(t.Context(), "fail", ""), auth.CaptchaRejected)
}
