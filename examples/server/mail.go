package main

import (
	"context"
	"errors"
	"fmt"
	"html/template"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/mfa"
)

// consoleSender stands in for an email and SMS provider during an
// evaluation: it prints every message (one-time codes, reset links) to the
// console's output, where the person trying Guard reads them. A real host
// plugs in mfa.SMTPSender, mfa.WebhookSMSSender or its own provider.
type consoleSender struct {
	mu  sync.Mutex
	w   io.Writer
	log []sentMessage // the latest messages, for the tests
}

type sentMessage struct {
	To, Subject, Text string
}

const keepMessages = 50

var (
	_ mfa.EmailSender = (*consoleSender)(nil)
	_ mfa.SMSSender   = (*consoleSender)(nil)
)

func (s *consoleSender) SendEmail(_ context.Context, m mfa.Message) error {
	s.put(sentMessage{To: m.To, Subject: m.Subject, Text: m.Text})
	return nil
}

func (s *consoleSender) SendSMS(_ context.Context, to, text string) error {
	s.put(sentMessage{To: to, Subject: "(SMS)", Text: text})
	return nil
}

func (s *consoleSender) put(m sentMessage) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.w, "\n----- message to %s: %s -----\n%s\n----- end of message -----\n\n", m.To, m.Subject, strings.TrimSpace(m.Text))
	s.log = append(s.log, m)
	if len(s.log) > keepMessages {
		s.log = s.log[len(s.log)-keepMessages:]
	}
}

// last returns the newest message sent to the address, if any.
func (s *consoleSender) last(to string) (sentMessage, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := len(s.log) - 1; i >= 0; i-- {
		if s.log[i].To == to {
			return s.log[i], true
		}
	}
	return sentMessage{}, false
}

// captchaUI is how the console's forms carry a CAPTCHA: which field holds
// the token and what the form shows.
type captchaUI struct {
	// Field is the form field of the token.
	Field string
	// Standin: the local "I am human" checkbox, not a real CAPTCHA.
	Standin bool
	// Script, Class and SiteKey load a provider's widget; ScriptOrigin and
	// FrameOrigin are added to the Content-Security-Policy for it.
	Script       string
	Class        string
	SiteKey      string
	ScriptOrigin string
}

// Widget is the HTML of the CAPTCHA inside a form.
func (c captchaUI) Widget() template.HTML {
	if c.Standin {
		return template.HTML(`<label class="captcha"><input type="checkbox" name="` + c.Field + `" value="` + standinToken + `"> I am human` +
			` <span class="muted">(a local stand-in for reCAPTCHA, hCaptcha or Turnstile: see -captcha-provider)</span></label>`)
	}
	return template.HTML(`<div class="` + template.HTMLEscapeString(c.Class) + `" data-sitekey="` + template.HTMLEscapeString(c.SiteKey) + `"></div>`)
}

// standinToken is what the stand-in checkbox sends when ticked.
const standinToken = "i-am-human"

// errNotTicked is the stand-in's refusal.
var errNotTicked = &auth.CaptchaError{Reason: auth.CaptchaMissing}

// newCaptcha returns the verifier and form parts for the -captcha-*
// flags: the stand-in checkbox by default, or a provider's siteverify.
func newCaptcha(provider, secret, siteKey string, hostnames []string) (auth.CaptchaVerifier, captchaUI, error) {
	if provider == "" {
		return auth.CaptchaFunc(func(_ context.Context, token, _ string) error {
			if token != standinToken {
				return errNotTicked
			}
			return nil
		}), captchaUI{Field: "captcha", Standin: true}, nil
	}
	var (
		endpoint string
		ui       captchaUI
	)
	switch provider {
	case "turnstile":
		endpoint = auth.TurnstileEndpoint
		ui = captchaUI{Field: "cf-turnstile-response", Script: "https://challenges.cloudflare.com/turnstile/v0/api.js", Class: "cf-turnstile",
			ScriptOrigin: "https://challenges.cloudflare.com"}
	case "hcaptcha":
		endpoint = auth.HCaptchaEndpoint
		ui = captchaUI{Field: "h-captcha-response", Script: "https://js.hcaptcha.com/1/api.js", Class: "h-captcha",
			ScriptOrigin: "https://js.hcaptcha.com https://*.hcaptcha.com"}
	case "recaptcha":
		endpoint = auth.RecaptchaEndpoint
		ui = captchaUI{Field: "g-recaptcha-response", Script: "https://www.google.com/recaptcha/api.js", Class: "g-recaptcha",
			ScriptOrigin: "https://www.google.com https://www.gstatic.com"}
	default:
		return nil, captchaUI{}, fmt.Errorf("-captcha-provider: %q is not turnstile, hcaptcha or recaptcha", provider)
	}
	if secret == "" || siteKey == "" {
		return nil, captchaUI{}, errors.New("-captcha-provider needs -captcha-secret and -captcha-sitekey")
	}
	ui.SiteKey = siteKey
	v, err := auth.NewSiteverify(auth.SiteverifyConfig{Endpoint: endpoint, Secret: secret, SiteKey: siteKey, Hostnames: hostnames})
	if err != nil {
		return nil, captchaUI{}, err
	}
	return v, ui, nil
}

// inviteMail writes the invitation (Recovery.ComposeInvite). Its link is
// the reset page's with "invite=1" added, so that the page says "Choose
// your password" and "Your password is set" rather than words about a
// new password; the mark changes only those words, nothing that is
// checked.
func inviteMail(link string, ttl time.Duration) (string, string) {
	return "You are invited", fmt.Sprintf("An administrator invited you to the Guard console. Set your password within %d days with this link:\n\n%s\n",
		int(ttl/(24*time.Hour)), link+"&invite=1")
}
