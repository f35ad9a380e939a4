package auth

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrCaptcha is wrapped by every CAPTCHA refusal (see CaptchaError).
var ErrCaptcha = errors.New("auth: captcha refused")

// Reasons of a CaptchaError: safe to record in an audit event, never to
// show (the user only learns that the check failed).
const (
	CaptchaMissing       = "missing_token"   // no token in the request
	CaptchaTooLong       = "token_too_long"  // longer than MaxTokenBytes: not sent
	CaptchaUnavailable   = "unavailable"     // network error, timeout, non-200, provider internal error
	CaptchaMalformed     = "malformed_reply" // not the siteverify JSON, or too big
	CaptchaRejected      = "rejected"        // success false (or error codes with success)
	CaptchaDuplicate     = "duplicate"       // timeout-or-duplicate: a token used twice, or too old
	CaptchaMisconfigured = "misconfigured"   // the provider refused our secret or site key
	CaptchaHostname      = "wrong_hostname"  // solved on a site not in Hostnames
	CaptchaAction        = "wrong_action"    // reCAPTCHA v3 / Turnstile action differs
	CaptchaScore         = "low_score"       // reCAPTCHA v3 score below MinScore, or missing
	CaptchaStale         = "stale"           // challenge_ts older than MaxAge, as far in the future, or missing
)

// CaptchaError is a CAPTCHA refusal. It wraps ErrCaptcha and, for
// CaptchaUnavailable, the transport error. It never holds the token or
// the secret.
type CaptchaError struct {
	Reason string   // one of the Captcha* reasons
	Codes  []string // the provider's error-codes, if any
	Status int      // the HTTP status of a non-200 reply
	Err    error    // the underlying failure, if any
}

func (e *CaptchaError) Error() string {
	msg := "auth: captcha refused: " + e.Reason
	if len(e.Codes) > 0 {
		msg += " (" + strings.Join(e.Codes, ", ") + ")"
	}
	if e.Status != 0 {
		msg += " (status " + strconv.Itoa(e.Status) + ")"
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap makes errors.Is(err, ErrCaptcha) hold, and exposes Err.
func (e *CaptchaError) Unwrap() []error {
	if e.Err == nil {
		return []error{ErrCaptcha}
	}
	return []error{ErrCaptcha, e.Err}
}

// CaptchaVerifier checks the token a CAPTCHA widget put in a form: on
// forgot-password, change-password and on login after failures. It fails
// closed: it returns nil only when the provider has confirmed the token,
// and any doubt (the provider unreachable, a malformed reply) is a refusal
// wrapping ErrCaptcha.
type CaptchaVerifier interface {
	// Verify checks token, solved by the client at remoteIP ("" if
	// unknown). nil means verified; anything else means refuse.
	Verify(ctx context.Context, token, remoteIP string) error
}

// CaptchaFunc adapts a function to CaptchaVerifier (for tests and for
// hosts with their own check).
type CaptchaFunc func(ctx context.Context, token, remoteIP string) error

// Verify calls f.
func (f CaptchaFunc) Verify(ctx context.Context, token, remoteIP string) error {
	return f(ctx, token, remoteIP)
}

// Siteverify endpoints of the providers that speak the shared protocol.
const (
	RecaptchaEndpoint = "https://www.google.com/recaptcha/api/siteverify"
	HCaptchaEndpoint  = "https://api.hcaptcha.com/siteverify"
	TurnstileEndpoint = "https://challenges.cloudflare.com/turnstile/v0/siteverify"
)

// Defaults of SiteverifyConfig.
const (
	DefaultCaptchaTimeout  = 5 * time.Second
	DefaultMaxTokenBytes   = 4096
	maxSiteverifyReplySize = 64 << 10
)

// SiteverifyConfig configures a Siteverify verifier.
type SiteverifyConfig struct {
	// Endpoint is the provider's siteverify URL (required, https): one of
	// RecaptchaEndpoint, HCaptchaEndpoint, TurnstileEndpoint, or another
	// that speaks the same protocol.
	Endpoint string
	// Secret is the site's secret key (required). It is sent in the POST
	// body, never in the URL, and never appears in errors.
	Secret string
	// SiteKey, when set, is sent as "sitekey" (hCaptcha checks it).
	SiteKey string
	// Hostnames are the sites the widget may be solved on (required,
	// compared without regard to case). A reply for another hostname, or
	// without one, is refused.
	Hostnames []string
	// Action, when set, must equal the reply's action (reCAPTCHA v3 and
	// Turnstile let the page name the action, "login" or "forgot").
	Action string
	// MinScore, when above zero, is the lowest reCAPTCHA v3 score
	// accepted (0 to 1, 1 being surely human; Google suggests 0.5). A
	// reply without a score is then refused. hCaptcha Enterprise scores
	// run the other way (higher is riskier): do not set MinScore for it.
	MinScore float64
	// MaxAge, when above zero, refuses a challenge solved longer ago than
	// this (by challenge_ts), or dated further than this in the future, or
	// a reply without challenge_ts. The
	// providers already refuse tokens older than a few minutes.
	MaxAge time.Duration
	// MaxTokenBytes bounds the token (default 4096); a longer one is
	// refused without calling the provider.
	MaxTokenBytes int
	// Client makes the requests (default: a client with Timeout).
	// Redirects are never followed.
	Client *http.Client
	// Timeout bounds one verification (default 5 s).
	Timeout time.Duration
	// Now is the clock for MaxAge (default time.Now).
	Now func() time.Time
}

// Siteverify is a CaptchaVerifier for the "siteverify" protocol shared by
// reCAPTCHA v3, hCaptcha and Cloudflare Turnstile: it POSTs secret,
// response (the token), remoteip and sitekey as a form and reads the JSON
// reply, strictly: one object and nothing after it, no key twice, the
// protocol's keys spelled exactly as the protocol spells them (anything
// else is CaptchaMalformed). It is safe for concurrent use.
type Siteverify struct {
	cfg      SiteverifyConfig
	endpoint string
	client   *http.Client
}

var _ CaptchaVerifier = (*Siteverify)(nil)

// NewSiteverify validates cfg and returns a Siteverify. A bad field is a
// *ConfigError, which never echoes the secret.
func NewSiteverify(cfg SiteverifyConfig) (*Siteverify, error) {
	u, err := url.Parse(cfg.Endpoint)
	switch {
	case err != nil || u.Host == "":
		return nil, &ConfigError{"Endpoint", "must be an absolute URL"}
	case u.Scheme != "https":
		return nil, &ConfigError{"Endpoint", "must use https"}
	case u.User != nil:
		return nil, &ConfigError{"Endpoint", "must not carry credentials"}
	case cfg.Secret == "":
		return nil, &ConfigError{"Secret", "is required"}
	case len(cfg.Hostnames) == 0:
		return nil, &ConfigError{"Hostnames", "must name at least one site"}
	case slices.Contains(cfg.Hostnames, ""):
		return nil, &ConfigError{"Hostnames", "must not hold an empty name"}
	case cfg.MinScore < 0 || cfg.MinScore > 1:
		return nil, &ConfigError{"MinScore", "must be between 0 and 1"}
	case cfg.MaxAge < 0:
		return nil, &ConfigError{"MaxAge", "must not be negative"}
	case cfg.MaxTokenBytes < 0:
		return nil, &ConfigError{"MaxTokenBytes", "must not be negative"}
	case cfg.Timeout < 0:
		return nil, &ConfigError{"Timeout", "must not be negative"}
	}
	if cfg.MaxTokenBytes == 0 {
		cfg.MaxTokenBytes = DefaultMaxTokenBytes
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultCaptchaTimeout
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Hostnames = slices.Clone(cfg.Hostnames)
	client := &http.Client{Timeout: cfg.Timeout}
	if cfg.Client != nil {
		c := *cfg.Client
		client = &c
	}
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &Siteverify{cfg: cfg, endpoint: u.String(), client: client}, nil
}

// siteverifyReply is the JSON reply of the protocol; providers add fields
// of their own, which are ignored (see decodeReply).
type siteverifyReply struct {
	Success     *bool    `json:"success"`
	ChallengeTS string   `json:"challenge_ts"`
	Hostname    string   `json:"hostname"`
	ErrorCodes  []string `json:"error-codes"`
	Action      string   `json:"action"`
	Score       *float64 `json:"score"`
}

// Verify implements CaptchaVerifier. Every refusal is a *CaptchaError.
func (s *Siteverify) Verify(ctx context.Context, token, remoteIP string) error {
	if len(token) > s.cfg.MaxTokenBytes {
		return &CaptchaError{Reason: CaptchaTooLong}
	}
	if strings.TrimSpace(token) == "" {
		return &CaptchaError{Reason: CaptchaMissing}
	}
	form := url.Values{"secret": {s.cfg.Secret}, "response": {token}}
	if ip, err := netip.ParseAddr(remoteIP); err == nil {
		form.Set("remoteip", ip.Unmap().String())
	}
	if s.cfg.SiteKey != "" {
		form.Set("sitekey", s.cfg.SiteKey)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.endpoint, strings.NewReader(form.Encode()))
	if err != nil {
		return &CaptchaError{Reason: CaptchaUnavailable, Err: err}
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the endpoint is not secret, but keep errors short
		}
		return &CaptchaError{Reason: CaptchaUnavailable, Err: err}
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		return &CaptchaError{Reason: CaptchaUnavailable, Status: resp.StatusCode}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxSiteverifyReplySize+1))
	if err != nil {
		return &CaptchaError{Reason: CaptchaUnavailable, Err: err}
	}
	if len(body) > maxSiteverifyReplySize {
		return &CaptchaError{Reason: CaptchaMalformed, Err: errors.New("reply too large")}
	}
	return s.judge(body)
}

// decodeReply reads body as the siteverify reply: exactly one JSON
// object with nothing after it but white space, no key twice, and the
// protocol's keys only as the protocol spells them (a key that differs
// from one of them only in case is refused; a provider's own keys are
// skipped). encoding/json alone would stop at the end of the first value
// (so "{…}]" would pass), match keys without regard to case and let the
// last of two equal keys win: a reply that says two things ("success":
// false, then "Success": true) is not an answer. It reports false for
// anything else.
func decodeReply(body []byte) (siteverifyReply, bool) {
	var r siteverifyReply
	fields := map[string]any{"success": &r.Success, "challenge_ts": &r.ChallengeTS, "hostname": &r.Hostname,
		"error-codes": &r.ErrorCodes, "action": &r.Action, "score": &r.Score}
	dec := json.NewDecoder(bytes.NewReader(body))
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return r, false
	}
	seen := make(map[string]bool, len(fields))
	for dec.More() {
		t, err := dec.Token()
		key, ok := t.(string)
		if err != nil || !ok || seen[key] {
			return r, false
		}
		seen[key] = true
		dst, ok := fields[key]
		if !ok {
			for k := range fields {
				if strings.EqualFold(k, key) {
					return r, false
				}
			}
			dst = new(json.RawMessage)
		}
		if err := dec.Decode(dst); err != nil {
			return r, false
		}
	}
	if t, err := dec.Token(); err != nil || t != json.Delim('}') {
		return r, false
	}
	if _, err := dec.Token(); err != io.EOF {
		return r, false
	}
	return r, true
}

// judge decides on a reply body.
func (s *Siteverify) judge(body []byte) error {
	r, ok := decodeReply(body)
	if !ok || r.Success == nil {
		return &CaptchaError{Reason: CaptchaMalformed, Err: errors.New("reply is not the siteverify JSON object")}
	}
	codes := clipCodes(r.ErrorCodes)
	if !*r.Success || len(codes) > 0 {
		reason := CaptchaRejected
		for _, c := range codes {
			switch c {
			case "timeout-or-duplicate", "already-seen-response":
				reason = CaptchaDuplicate
			case "missing-input-secret", "invalid-input-secret", "invalid-keys", "sitekey-secret-mismatch",
				"invalid-or-already-seen-response-secret", "not-using-dummy-passcode", "invalid-sitekey":
				reason = CaptchaMisconfigured
			case "internal-error":
				reason = CaptchaUnavailable
			}
		}
		return &CaptchaError{Reason: reason, Codes: codes}
	}
	if !slices.ContainsFunc(s.cfg.Hostnames, func(h string) bool { return strings.EqualFold(h, r.Hostname) }) {
		return &CaptchaError{Reason: CaptchaHostname}
	}
	if s.cfg.Action != "" && r.Action != s.cfg.Action {
		return &CaptchaError{Reason: CaptchaAction}
	}
	if s.cfg.MinScore > 0 && (r.Score == nil || *r.Score < s.cfg.MinScore) {
		return &CaptchaError{Reason: CaptchaScore}
	}
	if s.cfg.MaxAge > 0 {
		// Solved longer ago than MaxAge, or further ahead of this clock
		// than MaxAge: no clock skew explains a challenge from the future.
		ts, err := time.Parse(time.RFC3339Nano, r.ChallengeTS)
		if age := s.cfg.Now().Sub(ts); err != nil || age > s.cfg.MaxAge || -age > s.cfg.MaxAge {
			return &CaptchaError{Reason: CaptchaStale}
		}
	}
	return nil
}

// clipCodes keeps at most 8 provider error codes of at most 64 printable
// ASCII bytes each, so a hostile reply cannot flood the audit log.
func clipCodes(codes []string) []string {
	var out []string
	for _, c := range codes {
		if len(out) == 8 {
			break
		}
		if len(c) > 64 {
			c = c[:64]
		}
		c = strings.Map(func(r rune) rune {
			if r < 0x21 || r > 0x7e {
				return '?'
			}
			return r
		}, c)
		out = append(out, c)
	}
	return out
}
