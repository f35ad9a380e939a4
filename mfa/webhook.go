package mfa

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// DefaultWebhookTimeout bounds one webhook request.
const DefaultWebhookTimeout = 10 * time.Second

// WebhookConfig configures a WebhookSMSSender.
type WebhookConfig struct {
	// URL is the HTTPS endpoint that sends the SMS (required).
	URL string
	// Secret is sent as "Authorization: Bearer <Secret>" (required, at
	// least 16 bytes, no white space).
	Secret string
	// Client makes the requests (default: a client with Timeout). Redirects
	// are never followed: a 3xx reply is a failure.
	Client *http.Client
	// Timeout bounds one request (default 10 s); the context's deadline,
	// if earlier, wins.
	Timeout time.Duration
}

// WebhookSMSSender is an SMSSender for any SMS gateway reachable through a
// small HTTPS hook: it POSTs {"to": "+447700900123", "text": "…"} as JSON
// with a bearer secret, and takes any 2xx reply as sent. It is safe for
// concurrent use.
type WebhookSMSSender struct {
	url     string
	auth    string
	client  *http.Client
	timeout time.Duration
}

var _ SMSSender = (*WebhookSMSSender)(nil)

// NewWebhookSMSSender validates cfg and returns a WebhookSMSSender. A bad
// field is a *ConfigError, which never echoes the secret.
func NewWebhookSMSSender(cfg WebhookConfig) (*WebhookSMSSender, error) {
	u, err := url.Parse(cfg.URL)
	switch {
	case err != nil || u.Host == "":
		return nil, &ConfigError{Field: "URL", Reason: "must be an absolute URL"}
	case u.Scheme != "https":
		return nil, &ConfigError{Field: "URL", Reason: "must use https"}
	case u.User != nil:
		return nil, &ConfigError{Field: "URL", Reason: "must not carry credentials"}
	case len(cfg.Secret) < 16 || strings.ContainsFunc(cfg.Secret, func(r rune) bool { return r <= ' ' || r > '~' }):
		return nil, &ConfigError{Field: "Secret", Reason: "must be at least 16 printable ASCII characters"}
	case cfg.Timeout < 0:
		return nil, &ConfigError{Field: "Timeout", Reason: "must not be negative"}
	}
	timeout := or(cfg.Timeout, DefaultWebhookTimeout)
	client := &http.Client{Timeout: timeout}
	if cfg.Client != nil {
		c := *cfg.Client
		client = &c
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &WebhookSMSSender{url: u.String(), auth: "Bearer " + cfg.Secret, client: client, timeout: timeout}, nil
}

// SendSMS implements SMSSender. A transport failure or a reply other than
// 2xx is a *SendError (with the HTTP status when there was a reply); the
// reply body is never read beyond a few kilobytes nor reported.
func (s *WebhookSMSSender) SendSMS(ctx context.Context, to, text string) error {
	body, err := json.Marshal(struct {
		To   string `json:"to"`
		Text string `json:"text"`
	}{to, text})
	if err != nil {
		return &SendError{Channel: "sms", Err: err}
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(body))
	if err != nil {
		return &SendError{Channel: "sms", Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", s.auth)
	req.Header.Set("User-Agent", "guard-mfa")
	resp, err := s.client.Do(req)
	if err != nil {
		return &SendError{Channel: "sms", Err: redactURL(err)}
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return &SendError{Channel: "sms", Status: resp.StatusCode}
	}
	return nil
}

// redactURL drops the URL from a client error: a webhook URL may carry a
// token in its query.
func redactURL(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}
