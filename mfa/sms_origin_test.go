package mfa_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/guardhq/guard/mfa"
)

// With Config.SMSOrigin, every SMS ends with the origin-bound line
// "@host #code" (the host lower-cased), the default text's and a
// Compose's alike; email is untouched. Without it, no such line.
func TestSMSOriginBindsCodes(t *testing.T) {
	for _, c := range []struct {
		name    string
		compose func(mfa.Kind, string, time.Duration) (string, string)
	}{
		{"default text", nil},
		{"own Compose", func(_ mfa.Kind, code string, _ time.Duration) (string, string) {
			return "Code", "Acme code: " + code
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := newFixture(t, func(cfg *mfa.Config) { cfg.SMSOrigin, cfg.Compose = "Console.Example.COM", c.compose })
			f.enrolOOB(t, "u", mfa.KindSMS, "+447700900123")
			f.enrolOOB(t, "u", mfa.KindEmail, "u@example.com")
			sms := f.sms.sent[len(f.sms.sent)-1].Text
			lines := strings.Split(sms, "\n")
			code := codeRE.FindString(sms)
			if last := lines[len(lines)-1]; code == "" || last != "@console.example.com #"+code {
				t.Errorf("SMS %q: last line %q, want %q", sms, last, "@console.example.com #"+code)
			}
			if n := strings.Count(sms, code); n != 2 {
				t.Errorf("SMS %q holds the code %d times, want 2 (the text's, the origin line's)", sms, n)
			}
			if mail := f.email.sent[len(f.email.sent)-1].Text; strings.Contains(mail, "@console.example.com") {
				t.Errorf("email %q carries the SMS origin line", mail)
			}
		})
	}
	t.Run("unset", func(t *testing.T) {
		f := newFixture(t)
		f.enrolOOB(t, "u", mfa.KindSMS, "+447700900123")
		if sms := f.sms.sent[len(f.sms.sent)-1].Text; strings.Contains(sms, "#") || strings.Contains(sms, "@") {
			t.Errorf("SMS %q without SMSOrigin carries an origin line", sms)
		}
	})
}

// SMSOrigin must be a bare host name: anything else is a *ConfigError
// naming the field.
func TestSMSOriginRefused(t *testing.T) {
	for _, origin := range []string{
		"https://example.com", "example.com:443", "example.com/path", "-example.com", "example-.com",
		"exa mple.com", "example..com", ".example.com", "example.com.", "ex_ample.com", "éxample.com",
		"@example.com", "example.com #1", strings.Repeat("a", 64) + ".com", strings.Repeat("a.", 127) + "com",
		"example.com\n", "#",
	} {
		cfg := mfa.Config{Stores: newFixture(t).st.Stores(), Keyring: newKeyring(t, "k1", "k1"), Issuer: "I", SMSOrigin: origin}
		_, err := mfa.New(cfg)
		var ce *mfa.ConfigError
		if !errors.As(err, &ce) || ce.Field != "SMSOrigin" {
			t.Errorf("SMSOrigin %q: New = %v, want a *ConfigError for SMSOrigin", origin, err)
		}
	}
	for _, origin := range []string{"localhost", "example.com", "xn--bcher-kva.example", "a-b.c-d.example", "192.0.2.1"} {
		cfg := mfa.Config{Stores: newFixture(t).st.Stores(), Keyring: newKeyring(t, "k1", "k1"), Issuer: "I", SMSOrigin: origin}
		if _, err := mfa.New(cfg); err != nil {
			t.Errorf("SMSOrigin %q: New = %v, want nil", origin, err)
		}
	}
}
