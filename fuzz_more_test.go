package guard

import (
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"
)

// FuzzCheckTenantID: a tenant ID (from a URL, a form, a SAML RelayState)
// is refused with an *InputError, or is 1 to MaxTenantIDBytes of [a-z0-9]
// then [a-z0-9_-].
func FuzzCheckTenantID(f *testing.F) {
	for _, s := range []string{"", "acme", "-acme", "Acme", "acme corp", "a_b-c", strings.Repeat("a", 64), "ü", "a\x00"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := CheckTenantID(s)
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) || ie.Field != "tenant" {
				t.Fatalf("CheckTenantID(%q) = %#v", s, err)
			}
			return
		}
		if s == "" || len(s) > MaxTenantIDBytes || s[0] == '-' || s[0] == '_' ||
			strings.Trim(s, "abcdefghijklmnopqrstuvwxyz0123456789-_") != "" {
			t.Fatalf("CheckTenantID accepted %q", s)
		}
	})
}

// FuzzCheckText: the free-text fields it guards (tenant and API key
// names, the client IP and user agent of a sign-in) are, as its
// documentation says, "valid UTF-8, no control characters, at most max
// bytes"; a refusal is an *InputError naming the field.
func FuzzCheckText(f *testing.F) {
	for _, s := range []string{"", "Acme Corp", "Mozilla/5.0 (X11)", "a\nb", "a\x7fb", "\xff", "Zoë", "\t"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		err := checkText("name", s, 200)
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) || ie.Field != "name" {
				t.Fatalf("checkText(%q) = %#v", s, err)
			}
			return
		}
		if len(s) > 200 || !utf8.ValidString(s) {
			t.Fatalf("checkText accepted %q", s)
		}
		for _, r := range s {
			if unicode.IsControl(r) {
				t.Fatalf("checkText accepted %q holding control character %U", s, r)
			}
		}
	})
}

// FuzzBearer: an API key is read only from "Authorization: Bearer <key>"
// (scheme case-insensitive); the key comes back trimmed, and a header
// without the scheme yields nothing.
func FuzzBearer(f *testing.F) {
	for _, s := range []string{"", "Bearer gk_abc", "bearer  gk_abc ", "BEARER gk", "Basic dXNlcjpwYXNz", "Bearer",
		"Bearer ", "Bearergk_abc", "Bearer\tgk_abc", "bearer gk_a b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, h string) {
		r := &http.Request{Header: http.Header{"Authorization": {h}}}
		key, ok := bearer(r)
		want := len(h) >= 7 && strings.EqualFold(h[:7], "bearer ")
		if ok != want {
			t.Fatalf("bearer(%q) ok = %v", h, ok)
		}
		if !ok {
			if key != "" {
				t.Fatalf("bearer(%q) gave %q without the scheme", h, key)
			}
			return
		}
		if key != strings.TrimSpace(key) || !strings.Contains(h, key) {
			t.Fatalf("bearer(%q) = %q", h, key)
		}
	})
}

// FuzzPolicyJSON: a tenant policy as JSON (from an admin API) either fails
// to decode, or Validate gives nil or a *PolicyError; a policy that
// validates survives a JSON round trip unchanged and still validates.
func FuzzPolicyJSON(f *testing.F) {
	for _, s := range []string{`{}`, `{"session_limit":5,"on_session_limit":"refuse_new"}`, `{"session_limit":-1}`,
		`{"idle_timeout":60000000000,"session_lifetime":30000000000}`, `{"on_session_limit":"END_OLDEST"}`,
		`{"password_min_length":7}`, `{"mfa_grace":-1}`, `{"review_every":86400000000000}`,
		`{"audit_retention":1}`, `{"mfa_required_since":"2026-01-01T00:00:00Z","require_mfa":true}`,
		`{"break_glass_user":"\u202e\u0000"}`, `{"session_lifetime":9223372036854775807}`, `[]`, `null`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		var p Policy
		if json.Unmarshal(b, &p) != nil {
			return
		}
		err := p.Validate()
		if err != nil {
			var pe *PolicyError
			if !errors.As(err, &pe) || pe.Field == "" || pe.Reason == "" {
				t.Fatalf("Validate(%s) = %#v", b, err)
			}
			return
		}
		if err := p.validateWith(Policy{}); err != nil {
			var pe *PolicyError
			if !errors.As(err, &pe) {
				t.Fatalf("validateWith(%s) = %#v", b, err)
			}
		}
		out, err := json.Marshal(p)
		if err != nil {
			t.Fatalf("a valid policy %s does not marshal: %v", b, err)
		}
		var q Policy
		if err := json.Unmarshal(out, &q); err != nil {
			t.Fatalf("%s does not unmarshal: %v", out, err)
		}
		if !q.MFARequiredSince.Equal(p.MFARequiredSince) {
			t.Fatalf("MFARequiredSince changed: %v -> %v", p.MFARequiredSince, q.MFARequiredSince)
		}
		q.MFARequiredSince = p.MFARequiredSince
		if q != p || q.Validate() != nil {
			t.Fatalf("round trip of %s: %+v -> %+v", b, p, q)
		}
	})
}
