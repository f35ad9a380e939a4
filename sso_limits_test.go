package guard_test

import (
	"encoding/base64"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"testing"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/sso"
)

// endless is an endless reader of one byte value.
type endless byte

func (e endless) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = byte(e)
	}
	return len(p), nil
}

// TestSSOHostileBodiesGeneric403: at the host's ACS, a body of 20 MB, a
// document nested 100,000 deep and elements with 65 or 10,000 attributes
// all get the one generic refusal, 403 with ErrSSOFailed's message, and
// the precise reason goes to acme's sso.failed events (SECURITY-CHECKLIST
// SAML-28; the time and memory bounds are sso's TestACSHostileSizes).
func TestSSOHostileBodiesGeneric403(t *testing.T) {
	s := newSSOSite(t)
	acs := s.srv.URL + "/saml/acme/acs"
	generic := guard.ErrSSOFailed.Error()
	const response = `<samlp:Response xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="r1" Version="2.0">%s</samlp:Response>`
	attrs := func(n int) string {
		var b strings.Builder
		b.WriteString("<samlp:Status")
		for i := range n {
			fmt.Fprintf(&b, ` a%d="v"`, i)
		}
		b.WriteString("/>")
		return fmt.Sprintf(response, b.String())
	}
	form := func(doc string) io.Reader {
		return strings.NewReader("RelayState=x&SAMLResponse=" + url.QueryEscape(base64.StdEncoding.EncodeToString([]byte(doc))))
	}
	for _, tc := range []struct {
		name string
		body io.Reader
		want sso.Reason
	}{
		{"65 attributes", form(attrs(65)), sso.ReasonTooComplex},
		{"10,000 attributes", form(attrs(10_000)), sso.ReasonTooComplex},
		{"100,000 nested elements", form(fmt.Sprintf(response, strings.Repeat("<x>", 100_000)+strings.Repeat("</x>", 100_000))), sso.ReasonBodyTooLarge},
		{"20 MB", io.MultiReader(strings.NewReader("SAMLResponse="), io.LimitReader(endless('A'), 20<<20)), sso.ReasonBodyTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := ssoFailureReasons(t, s)
			r := httptest.NewRequest(http.MethodPost, acs, tc.body)
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			w := httptest.NewRecorder()
			s.srv.Config.Handler.ServeHTTP(w, r)
			if w.Code != http.StatusForbidden || strings.TrimSpace(w.Body.String()) != generic {
				t.Errorf("%d %q, want 403 %q", w.Code, w.Body.String(), generic)
			}
			if got, want := ssoFailureReasons(t, s), append(before, string(tc.want)); !slices.Equal(got, want) {
				t.Errorf("sso.failed reasons %v, want %v", got, want)
			}
		})
	}
}

// ssoFailureReasons returns the reasons of acme's sso.failed events on s,
// oldest first.
func ssoFailureReasons(t *testing.T, s *ssoSite) []string {
	t.Helper()
	page, err := s.g.QueryAudit(t.Context(), guard.System("test"), tenantID, audit.Query{Action: string(audit.SSOFailed), Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	var r []string
	for _, e := range page.Events {
		r = append(r, e.Reason)
	}
	return r
}
