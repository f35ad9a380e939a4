package auth

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// BreachChecker reports whether a password is known from data breaches
// (NIST SP 800-63B §3.1.1.2: "passwords obtained from previous breach
// corpuses"). An error means the check could not be made.
type BreachChecker interface {
	Breached(ctx context.Context, password string) (bool, error)
}

// ErrBreachCheck is wrapped by every failure of RangeAPI to make the
// check (the service unreachable, slow, or answering nonsense).
var ErrBreachCheck = errors.New("auth: breach check unavailable")

// Defaults of RangeAPIConfig.
const (
	DefaultRangeAPIURL     = "https://api.pwnedpasswords.com"
	DefaultRangeAPITimeout = 3 * time.Second
	// MaxRangeReply bounds the answer read for one prefix. Pwned
	// Passwords answers about 800–1,000 suffixes (padded: up to 1,000),
	// 30–40 kB.
	MaxRangeReply = 1 << 20
)

// RangeAPIConfig configures a RangeAPI.
type RangeAPIConfig struct {
	// BaseURL is the service; GET {BaseURL}/range/{prefix} is asked.
	// Default DefaultRangeAPIURL. It must be https, except for a
	// loopback host (tests, a local mirror).
	BaseURL string
	// MinCount is how many times a password must have been seen in
	// breaches to be refused (default 1).
	MinCount int
	// Client makes the requests (default: a client with Timeout). A copy
	// is used that follows no redirect: an answer other than 200 is a
	// failure of the check.
	Client *http.Client
	// Timeout bounds one check (default DefaultRangeAPITimeout).
	Timeout time.Duration
}

// RangeAPI is a BreachChecker on the k-anonymity "range" protocol of Have
// I Been Pwned's Pwned Passwords, which local mirrors also serve: the
// password's SHA-1 is computed here and only its first 5 hex digits leave
// the process; the service answers every known hash with that prefix
// ("SUFFIX:COUNT" lines), compared here. Requests ask for padding
// (Add-Padding: true), so the answer's size does not tell the prefix
// either; padding lines have a count of 0 and never match.
type RangeAPI struct {
	base     string
	minCount int
	client   *http.Client
	timeout  time.Duration
}

var _ BreachChecker = (*RangeAPI)(nil)

// NewRangeAPI returns a RangeAPI, or a *ConfigError.
func NewRangeAPI(cfg RangeAPIConfig) (*RangeAPI, error) {
	if cfg.BaseURL == "" {
		cfg.BaseURL = DefaultRangeAPIURL
	}
	u, err := url.Parse(cfg.BaseURL)
	switch {
	case err != nil || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil:
		return nil, &ConfigError{"BaseURL", "must be an absolute URL without query, fragment or credentials"}
	case u.Scheme != "https" && !(u.Scheme == "http" && isLoopback(u.Hostname())):
		return nil, &ConfigError{"BaseURL", "must be https (http only for a loopback host)"}
	case cfg.MinCount < 0:
		return nil, &ConfigError{"MinCount", "must not be negative"}
	case cfg.Timeout < 0:
		return nil, &ConfigError{"Timeout", "must not be negative"}
	}
	if cfg.MinCount == 0 {
		cfg.MinCount = 1
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultRangeAPITimeout
	}
	client := &http.Client{Timeout: cfg.Timeout}
	if cfg.Client != nil {
		c := *cfg.Client
		client = &c
	}
	// A redirect is not followed, and so is a failure: it could lead to
	// plain http (where anyone on the path could answer "not breached")
	// or to another service.
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &RangeAPI{base: strings.TrimSuffix(cfg.BaseURL, "/"), minCount: cfg.MinCount, client: client, timeout: cfg.Timeout}, nil
}

// Breached implements BreachChecker. Any failure to get a well-formed
// answer is an error wrapping ErrBreachCheck; the error never holds the
// password or its hash.
func (a *RangeAPI) Breached(ctx context.Context, password string) (bool, error) {
	sum := sha1.Sum([]byte(password))
	h := strings.ToUpper(hex.EncodeToString(sum[:]))
	prefix, suffix := h[:5], h[5:]
	ctx, cancel := context.WithTimeout(ctx, a.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, a.base+"/range/"+prefix, nil)
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrBreachCheck, err)
	}
	req.Header.Set("Add-Padding", "true")
	req.Header.Set("User-Agent", "guard-breach-check")
	resp, err := a.client.Do(req)
	if err != nil {
		return false, fmt.Errorf("%w: %v", ErrBreachCheck, errors.Unwrap(err))
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false, fmt.Errorf("%w: status %d", ErrBreachCheck, resp.StatusCode)
	}
	count, err := ParseRange(io.LimitReader(resp.Body, MaxRangeReply+1), suffix)
	if err != nil {
		return false, err
	}
	return count >= a.minCount, nil
}

// ParseRange reads a range answer ("SUFFIX:COUNT" lines, 35 hex digits
// each, CRLF or LF) and returns the count of suffix (0 if absent). An
// answer over MaxRangeReply bytes, with a malformed line, or with no line
// at all (a service never answers a prefix with nothing, padded or not) is
// an error wrapping ErrBreachCheck: a broken answer must not pass for
// "not breached".
func ParseRange(r io.Reader, suffix string) (int, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 128), 128)
	want := []byte(suffix)
	n, count, lines := 0, 0, 0
	for sc.Scan() {
		line := bytes.TrimSuffix(sc.Bytes(), []byte("\r"))
		n += len(sc.Bytes()) + 1
		if n > MaxRangeReply {
			return 0, fmt.Errorf("%w: answer over %d bytes", ErrBreachCheck, MaxRangeReply)
		}
		if len(line) == 0 {
			continue
		}
		hash, num, ok := bytes.Cut(line, []byte(":"))
		if !ok || len(hash) != 35 || !isHex(hash) {
			return 0, fmt.Errorf("%w: malformed answer", ErrBreachCheck)
		}
		c, err := strconv.Atoi(string(num))
		if err != nil || c < 0 {
			return 0, fmt.Errorf("%w: malformed answer", ErrBreachCheck)
		}
		lines++
		if bytes.EqualFold(hash, want) {
			count = c
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("%w: %v", ErrBreachCheck, err)
	}
	if lines == 0 {
		return 0, fmt.Errorf("%w: empty answer", ErrBreachCheck)
	}
	return count, nil
}

func isHex(b []byte) bool {
	for _, c := range b {
		if !('0' <= c && c <= '9' || 'A' <= c && c <= 'F' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func isLoopback(host string) bool {
	return host == "localhost" || host == "127.0.0.1" || host == "::1"
}
