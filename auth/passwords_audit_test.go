package auth_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/guardhq/guard/auth"
)

// PW-3: RangeAPI asks for padding, so a working range service never
// answers with no line at all, yet an empty 200 answer (a misbehaving
// mirror or proxy, an answer cut before its first byte) passes for "not
// breached": the breach check fails open, against ParseRange's "a broken
// answer must not pass for not breached".
func TestAuditPasswords_PW3_EmptyRangeAnswer(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {}))
	t.Cleanup(srv.Close)
	a, err := auth.NewRangeAPI(auth.RangeAPIConfig{BaseURL: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	got, err := a.Breached(t.Context(), "Summer-2019-password")
	if !errors.Is(err, auth.ErrBreachCheck) || got {
		t.Errorf("empty 200 answer: Breached = %v, %v; want an error wrapping ErrBreachCheck", got, err)
	}
	for _, body := range []string{"", "\r\n", "\n\n"} {
		if n, err := auth.ParseRange(strings.NewReader(body), "0018A45C4D1DEF81644B54AB7F969B88D65"); !errors.Is(err, auth.ErrBreachCheck) {
			t.Errorf("ParseRange(%q) = %d, %v; want an error wrapping ErrBreachCheck", body, n, err)
		}
	}
}
