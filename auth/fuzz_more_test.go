package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// FuzzCheckName: a display name (from a sign-up form, an invitation or an
// SSO attribute) is refused with an *InputError, or is valid UTF-8 of at
// most MaxNameBytes holding no control, line/paragraph separator or bidi
// override/isolate character.
func FuzzCheckName(f *testing.F) {
	for _, s := range []string{"", "Ada Lovelace", "Zoë", "a\nb", "a\u0085b", "\u202eevil", "\u2066x\u2069",
		"\u2028", "\xff", "\x7f", "日本語", "a\tb", "\u200b", "\U0001F600"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := CheckName(s)
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) || ie.Field != "name" {
				t.Fatalf("CheckName(%q) = %#v: not an *InputError for name", s, err)
			}
			return
		}
		if len(s) > MaxNameBytes || !utf8.ValidString(s) {
			t.Fatalf("CheckName accepted %q", s)
		}
		for _, r := range s {
			if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' ||
				'\u202a' <= r && r <= '\u202e' || '\u2066' <= r && r <= '\u2069' {
				t.Fatalf("CheckName accepted %q holding %U", s, r)
			}
		}
		if CheckName(s) != nil {
			t.Fatal("not deterministic")
		}
	})
}

// FuzzSiteverifyReply: the CAPTCHA provider's reply is outside input.
// judge must never panic; every refusal is a *CaptchaError with at most 8
// codes of at most 64 printable ASCII bytes; an acceptance only follows a
// single JSON object with success true, no error codes, one of the
// configured hostnames, the configured action, a score of at least
// MinScore and a challenge_ts no older than MaxAge.
func FuzzSiteverifyReply(f *testing.F) {
	for _, s := range []string{
		`{"success":true,"hostname":"example.com","action":"login","score":0.9,"challenge_ts":"2026-03-01T08:59:30Z"}`,
		`{"success":true,"hostname":"EXAMPLE.COM","action":"login","score":0.5,"challenge_ts":"2026-03-01T08:59:30.5+00:00"}`,
		`{"success":false,"error-codes":["timeout-or-duplicate"]}`, `{"success":true}`, `{}`, `[]`, `null`, ``,
		`{"success":true,"hostname":"example.com"} {"x":1}`, `{"success":true,"error-codes":["\u0000\u00ff"]}`,
		`{"SUCCESS":true,"HOSTNAME":"example.com","ACTION":"login","SCORE":1,"CHALLENGE_TS":"2026-03-01T09:00:00Z"}`,
		`{"success":true,"hostname":"example.com","action":"login","score":0.9,"challenge_ts":"2099-01-01T00:00:00Z"}`,
	} {
		f.Add([]byte(s))
	}
	now := time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)
	s, err := NewSiteverify(SiteverifyConfig{Endpoint: "https://captcha.test/siteverify", Secret: "s",
		Hostnames: []string{"example.com"}, Action: "login", MinScore: 0.5, MaxAge: 5 * time.Minute,
		Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		err := s.judge(body)
		if err != nil {
			var ce *CaptchaError
			if !errors.As(err, &ce) || ce.Reason == "" || len(ce.Codes) > 8 {
				t.Fatalf("judge(%q) = %#v", body, err)
			}
			for _, c := range ce.Codes {
				if len(c) > 64 || strings.ContainsFunc(c, func(r rune) bool { return r < 0x21 || r > 0x7e }) {
					t.Fatalf("judge(%q): unclipped code %q", body, c)
				}
			}
			return
		}
		var r siteverifyReply
		dec := json.NewDecoder(bytes.NewReader(body))
		if dec.Decode(&r) != nil || dec.More() || r.Success == nil || !*r.Success || len(r.ErrorCodes) > 0 ||
			!strings.EqualFold(r.Hostname, "example.com") || r.Action != "login" || r.Score == nil || *r.Score < 0.5 {
			t.Fatalf("judge accepted %q", body)
		}
		ts, perr := time.Parse(time.RFC3339Nano, r.ChallengeTS)
		if perr != nil || now.Sub(ts) > 5*time.Minute {
			t.Fatalf("judge accepted stale %q", body)
		}
	})
}
