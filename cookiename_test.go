package guard_test

import (
	"errors"
	"net/http/httptest"
	"strings"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/store/memstore"
)

// Config.CookieName must keep the __Host- prefix the cookie's attributes
// are made for, and be a valid cookie name: New refuses another with a
// *PolicyError naming the field. An accepted name is the one set.
func TestCookieNameChecked(t *testing.T) {
	for name, ok := range map[string]bool{
		"":                                  true, // the default
		"__Host-app_session":                true,
		"guard":                             false, // no prefix: cookie tossing
		"__Secure-guard":                    false,
		"__Host-bad name":                   false,
		"__Host-a;b":                        false,
		"__Host-" + strings.Repeat("x", 80): false,
	} {
		cfg := guard.Config{Stores: memstore.New().Stores(), AuditKey: auditKey, Hasher: fastHasher, CookieName: name}
		g, err := guard.New(cfg)
		var pe *guard.PolicyError
		switch {
		case ok && err != nil:
			t.Errorf("CookieName %q: New = %v, want it accepted", name, err)
		case !ok && (!errors.As(err, &pe) || pe.Field != "CookieName"):
			t.Errorf("CookieName %q: New = %v, want a *PolicyError for CookieName", name, err)
		case ok:
			w := httptest.NewRecorder()
			g.ClearSessionCookie(w)
			want := name
			if want == "" {
				want = "__Host-guard"
			}
			if got := w.Header().Get("Set-Cookie"); !strings.HasPrefix(got, want+"=") {
				t.Errorf("CookieName %q: Set-Cookie %q", name, got)
			}
		}
	}
}
