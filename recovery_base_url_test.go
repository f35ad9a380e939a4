package guard_test

import (
	"errors"
	"net/url"
	"strings"
	"testing"

	guard "github.com/guardhq/guard"
)

// Recovery.BaseURL may end with a slash, as most copied from a browser
// do: the links are built as from the same URL without it (a reset link's
// path is "/reset", not "//reset"). A BaseURL carrying a user name or
// password is refused by New with a *PolicyError on Recovery.BaseURL.
func TestRecoveryBaseURLNormalised(t *testing.T) {
	for _, c := range []struct{ base, path string }{
		{"https://app.example.test/", "/reset"},
		{"https://app.example.test//", "/reset"},
		{"https://app.example.test/app/", "/app/reset"},
	} {
		t.Run(c.base, func(t *testing.T) {
			f := newMFAFixture(t, func(cfg *guard.Config) { cfg.Recovery.BaseURL = c.base })
			f.createUser(t, adaEmail, ownerPW)
			if err := f.g.ForgotPassword(f.ctx, guard.ForgotRequest{Tenant: tenantID, Email: adaEmail, IP: "203.0.113.5"}); err != nil {
				t.Fatal(err)
			}
			sent := f.mailTo(adaEmail)
			if len(sent) != 1 {
				t.Fatalf("%d mails, want the reset link", len(sent))
			}
			text := sent[0].Text
			i := strings.Index(text, "https://")
			if i < 0 {
				t.Fatalf("no link in %q", text)
			}
			raw := strings.Fields(text[i:])[0]
			u, err := url.Parse(raw)
			if err != nil {
				t.Fatal(err)
			}
			if u.Path != c.path {
				t.Errorf("reset link %q has path %q, want %q", raw, u.Path, c.path)
			}
		})
	}
	for _, base := range []string{"https://admin:secret@app.example.test", "https://admin@app.example.test/"} {
		g, err := guard.New(guard.Config{Stores: newMem(), AuditKey: auditKey, Hasher: fastHasher,
			Recovery: guard.RecoveryConfig{Email: &outbox{}, BaseURL: base}})
		if err == nil {
			g.Close()
		}
		var pe *guard.PolicyError
		if !errors.As(err, &pe) || pe.Field != "Recovery.BaseURL" {
			t.Errorf("New with BaseURL %q = %v, want a *PolicyError on Recovery.BaseURL", base, err)
		} else if strings.Contains(err.Error(), "secret") {
			t.Errorf("the error %q echoes the password in BaseURL", err)
		}
	}
}
