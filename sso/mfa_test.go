package sso

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
)

// The AuthnContextClassRefs of the tests: Entra ID's, the SAML class and
// the REFEDS profile.
const (
	entraMFA  = "http://schemas.microsoft.com/claims/multipleauthn"
	samlMFA   = "urn:oasis:names:tc:SAML:2.0:ac:classes:MultiFactor"
	refedsMFA = "https://refeds.org/profile/mfa"
	password  = "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"
)

func TestConnectionValidateMFAAuthnContexts(t *testing.T) {
	k := loadKeys(t)
	ok := Connection{Tenant: "acme", Metadata: idpMetadata(time.Time{}, k.idp.cert),
		MFAAuthnContexts: []string{entraMFA, samlMFA, refedsMFA, strings.Repeat("x", 256)}}
	if err := ok.Validate(t0); err != nil {
		t.Fatalf("Validate with three known contexts and one of 256 bytes: %v", err)
	}
	twenty := ok.clone()
	twenty.MFAAuthnContexts = manyRefs(20)
	if err := twenty.Validate(t0); err != nil {
		t.Fatalf("Validate with 20 contexts: %v", err)
	}
	for _, tc := range []struct {
		name string
		refs []string
	}{
		{"too many", manyRefs(21)},
		{"empty", []string{entraMFA, ""}},
		{"too long", []string{strings.Repeat("x", 257)}},
		{"control character", []string{"urn:mfa\n"}},
		{"format character", []string{"urn:\u200bmfa"}},
		{"surrounding space", []string{" " + samlMFA}},
		{"not UTF-8", []string{"urn:\xffmfa"}},
		{"duplicate", []string{samlMFA, entraMFA, samlMFA}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := ok.clone()
			c.MFAAuthnContexts = tc.refs
			var in *InputError
			err := c.Validate(t0)
			if !errors.As(err, &in) || in.Field != "MFAAuthnContexts" {
				t.Fatalf("Validate = %v; want an *InputError for MFAAuthnContexts", err)
			}
			if strings.Contains(err.Error(), "urn:") {
				t.Errorf("the error echoes the value: %v", err)
			}
		})
	}
	// Case differs: a different value, so not a duplicate.
	c := ok.clone()
	c.MFAAuthnContexts = []string{samlMFA, strings.ToLower(samlMFA)}
	if err := c.Validate(t0); err != nil {
		t.Errorf("two values that differ in case: %v", err)
	}
}

// manyRefs returns n distinct class references.
func manyRefs(n int) []string {
	refs := make([]string, n)
	for i := range refs {
		refs[i] = "urn:example:mfa:" + strconv.Itoa(i)
	}
	return refs
}

func TestResultMFA(t *testing.T) {
	k := loadKeys(t)
	for _, tc := range []struct {
		name     string
		list     []string
		classRef string // "" the default, PasswordProtectedTransport
		noRef    bool
		want     bool
	}{
		{name: "listed", list: []string{samlMFA}, classRef: samlMFA, want: true},
		{name: "listed among several", list: []string{entraMFA, samlMFA, refedsMFA}, classRef: refedsMFA, want: true},
		{name: "XML white space around", list: []string{entraMFA}, classRef: "\n  " + entraMFA + "\t\n", want: true},
		{name: "not listed", list: []string{samlMFA}, classRef: password},
		{name: "no class ref", list: []string{samlMFA}, noRef: true},
		{name: "empty list", classRef: samlMFA},
		{name: "case differs", list: []string{samlMFA}, classRef: strings.ToUpper(samlMFA)},
		{name: "prefix", list: []string{refedsMFA}, classRef: refedsMFA + "/extra"},
		{name: "other space inside", list: []string{samlMFA}, classRef: samlMFA + "\u00a0"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, func(c *Connection) { c.MFAAuthnContexts = tc.list })
			e.track(requestID, relayState)
			s := valid()
			s.classRef, s.noClassRef = tc.classRef, tc.noRef
			res, err := e.post(s.build(k), relayState)
			if err != nil {
				t.Fatal(err)
			}
			if res.MFA != tc.want {
				t.Errorf("MFA = %v with class ref %q and list %q; want %v", res.MFA, res.AuthnContext, tc.list, tc.want)
			}
		})
	}
}

// A change of MFAAuthnContexts takes effect at once: the Provider's cache
// of compiled connections is not stale.
func TestResultMFAFollowsConnection(t *testing.T) {
	k := loadKeys(t)
	e := newEnv(t, nil)
	login := func(id string) *Result {
		t.Helper()
		e.track("id-"+id, relayState)
		s := valid()
		s.classRef, s.inResponseTo, s.assertionID = samlMFA, "id-"+id, "id-assertion-"+id
		res, err := e.post(s.build(k), relayState)
		if err != nil {
			t.Fatal(err)
		}
		return res
	}
	if login("a").MFA {
		t.Error("MFA with an empty list")
	}
	c := e.conn.clone()
	c.MFAAuthnContexts = []string{samlMFA}
	if _, err := e.p.PutConnection(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	if !login("b").MFA {
		t.Error("no MFA once the class ref is listed")
	}
	c.MFAAuthnContexts = []string{entraMFA}
	if _, err := e.p.PutConnection(t.Context(), c); err != nil {
		t.Fatal(err)
	}
	if login("c").MFA {
		t.Error("MFA after the class ref was taken off the list")
	}
}

// authnRequest decodes the AuthnRequest of a login sent with the
// HTTP-Redirect binding.
func authnRequest(t *testing.T, l *Login) saml.AuthnRequest {
	t.Helper()
	u, err := url.Parse(l.RedirectURL)
	if err != nil {
		t.Fatal(err)
	}
	raw := inflate(t, u.Query().Get("SAMLRequest"))
	var req saml.AuthnRequest
	if err := xml.Unmarshal(raw, &req); err != nil {
		t.Fatal(err)
	}
	return req
}

func TestStartLoginRequireMFA(t *testing.T) {
	ctx := t.Context()
	list := []string{entraMFA, samlMFA}
	e := newEnv(t, func(c *Connection) { c.MFAAuthnContexts = list })

	l, err := e.p.StartLogin(ctx, tenant, LoginOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if req := authnRequest(t, l); req.RequestedAuthnContext != nil {
		t.Errorf("a plain login carries RequestedAuthnContext %+v", req.RequestedAuthnContext)
	}

	l, err = e.p.StartLogin(ctx, tenant, LoginOptions{RequireMFA: true, ForceAuthn: true})
	if err != nil {
		t.Fatal(err)
	}
	req := authnRequest(t, l)
	rac := req.RequestedAuthnContext
	if rac == nil || rac.Comparison != "exact" || !slices.Equal(rac.ClassRefs(), list) {
		t.Fatalf("RequestedAuthnContext = %+v; want exact %q", rac, list)
	}
	if req.ForceAuthn == nil || !*req.ForceAuthn {
		t.Error("ForceAuthn is lost beside RequireMFA")
	}

	// Signed, with the HTTP-POST binding: the element is in the signed
	// message.
	e = newEnv(t, func(c *Connection) {
		c.Metadata = strings.Replace(idpMetadata(time.Time{}, keys.idp.cert),
			`Binding="urn:oasis:names:tc:SAML:2.0:bindings:HTTP-Redirect" Location="`+idpSSOURL+`"`, `Binding="urn:x" Location="`+idpSSOURL+`"`, 1)
		wantSigned(c)
		c.MFAAuthnContexts = list
	})
	l, err = e.p.StartLogin(ctx, tenant, LoginOptions{RequireMFA: true})
	if err != nil {
		t.Fatal(err)
	}
	if l.Form == nil {
		t.Fatalf("login = %+v; want an HTTP-POST form", l)
	}
	raw, _ := base64.StdEncoding.DecodeString(l.Form.SAMLRequest)
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil {
		t.Fatal(err)
	}
	vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{e.k.sp.cert}})
	signed, err := vc.Validate(doc.Root())
	if err != nil {
		t.Fatalf("AuthnRequest signature: %v", err)
	}
	var got []string
	for _, el := range signed.FindElements("./RequestedAuthnContext[@Comparison='exact']/AuthnContextClassRef") {
		got = append(got, el.Text())
	}
	if !slices.Equal(got, list) {
		t.Errorf("signed RequestedAuthnContext class refs %q; want %q", got, list)
	}
}

func TestStartLoginRequireMFAWithoutContexts(t *testing.T) {
	e := newEnv(t, nil)
	_, err := e.p.StartLogin(t.Context(), tenant, LoginOptions{RequireMFA: true})
	if !errors.Is(err, ErrNoMFAContexts) {
		t.Fatalf("StartLogin(RequireMFA) without MFAAuthnContexts = %v; want ErrNoMFAContexts", err)
	}
	if n := len(e.st.reqs); n != 0 {
		t.Errorf("%d requests tracked for a refused login", n)
	}
	if _, err := e.p.StartLogin(context.Background(), tenant, LoginOptions{}); err != nil {
		t.Errorf("a plain login on the same connection: %v", err)
	}
}
