package guard_test

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"

	"github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/sso"
)

// The AuthnContextClassRefs of the tests.
const (
	classMFA      = "urn:oasis:names:tc:SAML:2.0:ac:classes:MultiFactor"
	classEntraMFA = "http://schemas.microsoft.com/claims/multipleauthn"
	classPassword = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
)

// setMFAContexts makes refs the tenant's trusted multi-factor contexts.
func (s *ssoSite) setMFAContexts(t *testing.T, refs ...string) {
	t.Helper()
	sys := guard.System("test")
	c, err := s.g.SSOConnection(t.Context(), sys, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	c.MFAAuthnContexts = refs
	if _, err := s.g.SetSSOConnection(t.Context(), sys, c); err != nil {
		t.Fatal(err)
	}
}

// classRef makes the test IdP assert ref (nil: no AuthnContextClassRef).
func (s *ssoSite) classRef(t *testing.T, ref *string) {
	t.Helper()
	s.edit.set(func(a *saml.Assertion) {
		if ref == nil {
			a.AuthnStatements[0].AuthnContext.AuthnContextClassRef = nil
			return
		}
		a.AuthnStatements[0].AuthnContext.AuthnContextClassRef = &saml.AuthnContextClassRef{Value: *ref}
	})
	t.Cleanup(func() { s.edit.set(nil) })
}

// tokenOf returns browser b's Guard session token on s.
func (s *ssoSite) tokenOf(t *testing.T, b *http.Client) string {
	t.Helper()
	u, _ := url.Parse(s.srv.URL)
	for _, c := range b.Jar.Cookies(u) {
		if _, err := s.g.Authenticate(t.Context(), c.Value); err == nil {
			return c.Value
		}
	}
	t.Fatal("the browser has no Guard session")
	return ""
}

// mfaRoute is a route behind RequireMFA; it answers 204.
func (s *ssoSite) mfaRoute(t *testing.T, token string) *http.Response {
	t.Helper()
	h := s.g.Middleware(s.g.RequireMFA(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(204) })))
	return serveHandler(h, "/admin/users", token, client).Result()
}

func ptr(s string) *string { return &s }

// An SSO session passes RequireMFA only when the IdP asserted a class
// reference the tenant's connection lists, exactly.
func TestSSOMFAAuthnContext(t *testing.T) {
	s := newSSOSite(t)
	ctx := t.Context()
	sys := guard.System("test")

	for i, tc := range []struct {
		name string
		list []string
		ref  *string // nil: no AuthnContextClassRef
		want bool
	}{
		{name: "listed", list: []string{classEntraMFA, classMFA}, ref: ptr(classMFA), want: true},
		{name: "not listed", list: []string{classMFA}, ref: ptr(classPassword)},
		{name: "no class ref", list: []string{classMFA}, ref: nil},
		{name: "empty list", list: nil, ref: ptr(classMFA)},
		{name: "case differs", list: []string{classMFA}, ref: ptr(strings.ToLower(classMFA))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s.setMFAContexts(t, tc.list...)
			s.classRef(t, tc.ref)
			user := "u" + string(rune('a'+i))
			b, p := s.ssoUser(t, user, user+"@corp.example")
			if p.HasMFA() != tc.want || p.Flags&guard.FlagSSO == 0 {
				t.Errorf("HasMFA = %v, flags %b; want %v, with FlagSSO", p.HasMFA(), p.Flags, tc.want)
			}
			resp := s.mfaRoute(t, s.tokenOf(t, b))
			switch {
			case tc.want && resp.StatusCode != 204:
				t.Errorf("RequireMFA: %s; want 204", resp.Status)
			case !tc.want && (resp.StatusCode != http.StatusForbidden || resp.Header.Get("Guard-Step-Up") != "mfa"):
				t.Errorf("RequireMFA: %s, Guard-Step-Up %q; want 403 asking for mfa", resp.Status, resp.Header.Get("Guard-Step-Up"))
			}

			// The audit events say which class reference the IdP gave and
			// whether it counted.
			okEv, err := s.g.QueryAudit(ctx, sys, tenantID, audit.Query{Action: string(audit.SSOSucceeded), Actor: p.UserID})
			if err != nil || len(okEv.Events) != 1 {
				t.Fatalf("sso.succeeded events %+v, %v", okEv.Events, err)
			}
			m := okEv.Events[0].Meta
			wantRef := ""
			if tc.ref != nil {
				wantRef = *tc.ref
			}
			if m["authn_context"] != wantRef || m["idp_mfa"] != boolText(tc.want) {
				t.Errorf("sso.succeeded meta %v; want authn_context %q, idp_mfa %v", m, wantRef, tc.want)
			}
			login, err := s.g.QueryAudit(ctx, sys, tenantID, audit.Query{Action: string(audit.LoginSucceeded), Actor: p.UserID})
			if err != nil || len(login.Events) != 1 {
				t.Fatalf("login.succeeded events %+v, %v", login.Events, err)
			}
			if lm := login.Events[0].Meta; lm["authn_context"] != wantRef || (lm["mfa"] == "idp") != tc.want {
				t.Errorf("login.succeeded meta %v; want authn_context %q, mfa=idp %v", lm, wantRef, tc.want)
			}
		})
	}

	// The connection's audit event lists the trusted contexts.
	s.setMFAContexts(t, classEntraMFA, classMFA)
	pg, err := s.g.QueryAudit(ctx, sys, tenantID, audit.Query{Action: string(audit.SSOConfigured)})
	if err != nil || len(pg.Events) == 0 {
		t.Fatalf("sso.configured events %+v, %v", pg.Events, err)
	}
	if got := pg.Events[len(pg.Events)-1].Meta["mfa_authn_contexts"]; got != classEntraMFA+" "+classMFA {
		t.Errorf("sso.configured mfa_authn_contexts = %q", got)
	}
}

func boolText(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// A class reference of the longest length a connection may list counts;
// a longer one never does, and the audit event keeps its first 256 bytes.
func TestSSOMFAAuthnContextLength(t *testing.T) {
	s := newSSOSite(t)
	long := "urn:example:mfa:" + strings.Repeat("x", 240) // 256 bytes
	s.setMFAContexts(t, long)
	for _, tc := range []struct {
		user, ref string
		want      bool
	}{
		{"long", long, true},
		{"longer", long + "y", false},
	} {
		s.classRef(t, ptr(tc.ref))
		_, p := s.ssoUser(t, tc.user, tc.user+"@corp.example")
		if p.HasMFA() != tc.want {
			t.Errorf("%d bytes: HasMFA = %v, want %v", len(tc.ref), p.HasMFA(), tc.want)
		}
		ev, err := s.g.QueryAudit(t.Context(), guard.System("test"), tenantID, audit.Query{Action: string(audit.SSOSucceeded), Actor: p.UserID})
		if err != nil || len(ev.Events) != 1 || ev.Events[0].Meta["authn_context"] != long {
			t.Errorf("%d bytes: sso.succeeded %+v, %v; want authn_context of 256 bytes", len(tc.ref), ev.Events, err)
		}
	}
}

// FlagMFA says how the user signed in, FlagStaleAuthn when: an IdP that
// answered from its own older multi-factor session gives both, so the
// session passes RequireMFA and step-up checks still ask for a new
// sign-in.
func TestSSOMFAStaleAuthnInstant(t *testing.T) {
	s := newSSOSite(t)
	s.setMFAContexts(t, classMFA)
	s.edit.set(func(a *saml.Assertion) {
		a.AuthnStatements[0].AuthnInstant = time.Now().Add(-time.Hour)
		a.AuthnStatements[0].AuthnContext.AuthnContextClassRef = &saml.AuthnContextClassRef{Value: classMFA}
	})
	t.Cleanup(func() { s.edit.set(nil) })
	b, p := s.ssoUser(t, "stale", "stale@corp.example")
	if p.Flags&guard.FlagStaleAuthn == 0 || !p.HasMFA() {
		t.Errorf("flags %b; want FlagStaleAuthn and FlagMFA", p.Flags)
	}
	if resp := s.mfaRoute(t, s.tokenOf(t, b)); resp.StatusCode != 204 {
		t.Errorf("RequireMFA: %s; want 204", resp.Status)
	}
	if _, err := s.g.BeginTOTP(t.Context(), p, "stale"); !errors.Is(err, guard.ErrStepUpRequired) {
		t.Errorf("BeginTOTP on a stale sign-in with MFA: %v; want ErrStepUpRequired", err)
	}
}

// samlRequest decodes the AuthnRequest of a login sent with the
// HTTP-Redirect binding.
func samlRequest(t *testing.T, l *sso.Login) saml.AuthnRequest {
	t.Helper()
	u, err := url.Parse(l.RedirectURL)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(u.Query().Get("SAMLRequest"))
	if err != nil {
		t.Fatal(err)
	}
	doc, err := io.ReadAll(flate.NewReader(bytes.NewReader(raw)))
	if err != nil {
		t.Fatal(err)
	}
	var req saml.AuthnRequest
	if err := xml.Unmarshal(doc, &req); err != nil {
		t.Fatal(err)
	}
	return req
}

func TestStartSSORequireMFA(t *testing.T) {
	s := newSSOSite(t)
	ctx := t.Context()

	// Without trusted contexts, asking for MFA is an error, and nothing
	// is started.
	_, err := s.g.StartSSO(ctx, guard.SSOStart{Tenant: tenantID, RequireMFA: true})
	if !errors.Is(err, sso.ErrNoMFAContexts) || errors.Is(err, guard.ErrUnavailable) {
		t.Fatalf("StartSSO(RequireMFA) without MFAAuthnContexts = %v; want sso.ErrNoMFAContexts, not ErrUnavailable", err)
	}

	s.setMFAContexts(t, classEntraMFA, classMFA)
	l, err := s.g.StartSSO(ctx, guard.SSOStart{Tenant: tenantID})
	if err != nil {
		t.Fatal(err)
	}
	if req := samlRequest(t, l); req.RequestedAuthnContext != nil {
		t.Errorf("a plain sign-in asks for %+v", req.RequestedAuthnContext)
	}
	l, err = s.g.StartSSO(ctx, guard.SSOStart{Tenant: tenantID, RequireMFA: true, ForceAuthn: true})
	if err != nil {
		t.Fatal(err)
	}
	req := samlRequest(t, l)
	if rac := req.RequestedAuthnContext; rac == nil || rac.Comparison != "exact" || !slices.Equal(rac.ClassRefs(), []string{classEntraMFA, classMFA}) {
		t.Errorf("RequestedAuthnContext = %+v; want exact, the connection's contexts", rac)
	}
	if req.ForceAuthn == nil || !*req.ForceAuthn {
		t.Error("ForceAuthn is lost beside RequireMFA")
	}
}

// The step-up of an SSO user refused by RequireMFA: a new SP-initiated
// sign-in asking the IdP for a multi-factor login gives a session that
// passes.
func TestSSOMFAStepUp(t *testing.T) {
	s := newSSOSite(t)
	s.setMFAContexts(t, classMFA)
	b, _ := s.ssoUser(t, "stepper", "stepper@corp.example")
	if resp := s.mfaRoute(t, s.tokenOf(t, b)); resp.StatusCode != http.StatusForbidden {
		t.Fatalf("RequireMFA after a password sign-in at the IdP: %s; want 403", resp.Status)
	}

	// The IdP signs the user in with a second factor this time.
	s.classRef(t, ptr(classMFA))
	l, err := s.g.StartSSO(t.Context(), guard.SSOStart{Tenant: tenantID, ReturnTo: "/api/whoami", RequireMFA: true, ForceAuthn: true})
	if err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	b = &http.Client{Jar: jar}
	action, fields := formOf(t, s.get(t, b, l.RedirectURL))
	fields.Set("user", "stepper")
	fields.Set("password", "correct horse")
	resp, err := b.PostForm(action, fields)
	if err != nil {
		t.Fatal(err)
	}
	page, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	acs, acsFields := formOf(t, string(page))
	final, err := b.PostForm(acs, acsFields)
	if err != nil {
		t.Fatal(err)
	}
	final.Body.Close()
	if final.StatusCode != http.StatusOK {
		t.Fatalf("the step-up sign-in: %s", final.Status)
	}
	if resp := s.mfaRoute(t, s.tokenOf(t, b)); resp.StatusCode != 204 {
		t.Errorf("RequireMFA after the multi-factor sign-in: %s; want 204", resp.Status)
	}
}
