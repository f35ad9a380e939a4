package sso

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"html/template"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
)

// LoginOptions are the choices of one SP-initiated login.
type LoginOptions struct {
	// ReturnTo is the relative path on this site to go to after the login;
	// "" means Config.DefaultReturnTo. It must pass SafeRedirect.
	ReturnTo string
	// Binding, if not empty, ties the login to the browser that started
	// it: the host sets it to a new random value at every login start,
	// which it also puts in a short __Host- cookie (Secure, HttpOnly,
	// Path=/, SameSite=None, since the IdP's POST to the ACS is
	// cross-site; never adopting a value the browser brings), and passes
	// the cookie's value to ACS (through the facade). Only its
	// SHA-256 is stored. Without it, a response could be delivered to
	// another browser (login CSRF).
	Binding string
	// ForceAuthn asks the IdP to authenticate the user again even if it
	// has a session (for a step-up or a break-glass check).
	ForceAuthn bool
	// RequireMFA asks the IdP for a multi-factor login: the AuthnRequest
	// carries a RequestedAuthnContext, Comparison exact, listing the
	// connection's MFAAuthnContexts. A connection without any gives
	// ErrNoMFAContexts. Whether the login counts as multi-factor is still
	// decided by the answer (Result.MFA): an IdP may ignore the request.
	RequireMFA bool
}

// Login is a started SP-initiated login: send the browser to RedirectURL
// (HTTP-Redirect binding), or, if the IdP offers only the HTTP-POST
// binding, serve Form.
type Login struct {
	RequestID   string
	RelayState  string
	Expires     time.Time
	RedirectURL string
	Form        *PostForm
}

// PostForm is a SAML message to send with the HTTP-POST binding: a form
// the browser posts to Action.
type PostForm struct {
	Action      string
	SAMLRequest string
	RelayState  string
}

var postTemplate = template.Must(template.New("post").Parse(`<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Signing in…</title></head>
<body><form method="post" action="{{.Action}}" id="saml">
<input type="hidden" name="SAMLRequest" value="{{.SAMLRequest}}">
<input type="hidden" name="RelayState" value="{{.RelayState}}">
<noscript><button type="submit">Continue</button></noscript>
</form><script nonce="{{.Nonce}}">document.getElementById("saml").submit();</script></body></html>
`))

// HTML returns a page that posts the form as soon as it loads. nonce is
// the CSP nonce of the page's one inline script ("" for none).
func (f *PostForm) HTML(nonce string) []byte {
	var b bytes.Buffer
	_ = postTemplate.Execute(&b, struct {
		PostForm
		Nonce string
	}{*f, nonce})
	return b.Bytes()
}

// StartLogin starts an SP-initiated login for tenant: it builds an
// AuthnRequest with a fresh 160-bit ID for the tenant's IdP (signed if the
// IdP's metadata says WantAuthnRequestsSigned), tracks it in
// the RequestStore until Config.RequestTTL has passed, with an opaque
// RelayState handle standing for opts.ReturnTo (which never leaves the
// server), and returns where to send the browser.
//
// It returns an *InputError for an unacceptable tenant or ReturnTo,
// ErrNotFound if the tenant has no connection, ErrNoMFAContexts for
// RequireMFA when the connection lists no MFAAuthnContexts, a *RejectError
// (ReasonMetadataUnavailable or ReasonMetadataExpired) if the stored IdP
// metadata cannot be used, and a wrapped error if a store fails.
func (p *Provider) StartLogin(ctx context.Context, tenant string, opts LoginOptions) (*Login, error) {
	if err := checkTenant(tenant); err != nil {
		return nil, err
	}
	returnTo := opts.ReturnTo
	if returnTo == "" {
		returnTo = p.cfg.DefaultReturnTo
	}
	if !SafeRedirect(returnTo) {
		return nil, &InputError{Field: "ReturnTo", Reason: "must be a relative path on this site"}
	}
	if len(opts.Binding) > 1024 {
		return nil, &InputError{Field: "Binding", Reason: "is too long"}
	}
	comp, err := p.connection(ctx, tenant)
	if err != nil {
		return nil, err
	}
	if opts.RequireMFA && len(comp.conn.MFAAuthnContexts) == 0 {
		return nil, ErrNoMFAContexts
	}
	now := p.cfg.Now()
	if rej := comp.usable(now); rej != nil {
		return nil, rej
	}
	id, err := p.randomID()
	if err != nil {
		return nil, err
	}
	relay, err := p.randomHandle()
	if err != nil {
		return nil, err
	}
	sp := comp.spAt(now)
	if comp.idp.WantAuthnRequestsSigned {
		sp.SignatureMethod = p.sigAlg
	}
	binding, dest := saml.HTTPRedirectBinding, comp.idp.SSORedirectURL
	if dest == "" {
		binding, dest = saml.HTTPPostBinding, comp.idp.SSOPostURL
	}
	// Built for the Redirect binding, which does not sign the XML, so
	// that the ID can be replaced before any signature is made.
	req, err := sp.MakeAuthenticationRequest(dest, saml.HTTPRedirectBinding, saml.HTTPPostBinding)
	if err != nil {
		return nil, fmt.Errorf("sso: build AuthnRequest: %w", err)
	}
	req.ID = id
	req.IssueInstant = now
	if opts.ForceAuthn {
		t := true
		req.ForceAuthn = &t
	}
	if opts.RequireMFA {
		req.RequestedAuthnContext = &saml.RequestedAuthnContext{Comparison: "exact",
			AuthnContextClassRefs: slices.Clone(comp.conn.MFAAuthnContexts)}
	}
	login := &Login{RequestID: id, RelayState: relay, Expires: now.Add(p.cfg.RequestTTL)}
	switch {
	case binding == saml.HTTPRedirectBinding && sp.SignatureMethod == "":
		u, err := redirectURL(dest, req.Element(), relay)
		if err != nil {
			return nil, err
		}
		login.RedirectURL = u
	case binding == saml.HTTPRedirectBinding:
		u, err := req.Redirect(relay, sp) // with a query string signature
		if err != nil {
			return nil, fmt.Errorf("sso: encode AuthnRequest: %w", err)
		}
		login.RedirectURL = u.String()
	default:
		if sp.SignatureMethod != "" {
			if err := sp.SignAuthnRequest(req); err != nil {
				return nil, fmt.Errorf("sso: sign AuthnRequest: %w", err)
			}
		}
		form, err := postForm(dest, req.Element(), relay, "SAMLRequest")
		if err != nil {
			return nil, err
		}
		login.Form = form
	}
	r := Request{
		Tenant: tenant, ID: id, Kind: KindLogin, RelayState: relay, ReturnTo: returnTo,
		Binding: bindingHash(opts.Binding), CreatedAt: now, Expires: login.Expires,
	}
	if err := p.cfg.Stores.Requests.RememberRequest(ctx, r); err != nil {
		return nil, storeErr("remember request", err)
	}
	return login, nil
}

// flateWriters are reused: a new flate.Writer allocates about 800 KB.
var flateWriters = sync.Pool{New: func() any {
	w, _ := flate.NewWriter(nil, flate.BestCompression)
	return w
}}

// redirectURL returns dest with an unsigned message of the HTTP-Redirect
// binding (saml-bindings §3.4.4): el deflated, in base64, as SAMLRequest,
// and relay as RelayState.
func redirectURL(dest string, el *etree.Element, relay string) (string, error) {
	u, err := url.Parse(dest)
	if err != nil {
		return "", fmt.Errorf("sso: IdP endpoint: %w", err)
	}
	var b strings.Builder
	enc := base64.NewEncoder(base64.StdEncoding, &b)
	fw := flateWriters.Get().(*flate.Writer)
	defer flateWriters.Put(fw)
	fw.Reset(enc)
	doc := etree.NewDocument()
	doc.SetRoot(el)
	if _, err := doc.WriteTo(fw); err != nil {
		return "", fmt.Errorf("sso: encode AuthnRequest: %w", err)
	}
	if err := fw.Close(); err != nil {
		return "", fmt.Errorf("sso: encode AuthnRequest: %w", err)
	}
	if err := enc.Close(); err != nil {
		return "", fmt.Errorf("sso: encode AuthnRequest: %w", err)
	}
	q := "SAMLRequest=" + url.QueryEscape(b.String()) + "&RelayState=" + url.QueryEscape(relay)
	if u.RawQuery != "" {
		q = u.RawQuery + "&" + q
	}
	u.RawQuery = q
	return u.String(), nil
}

// bindingHash returns the hex SHA-256 of a non-empty browser binding.
func bindingHash(b string) string {
	if b == "" {
		return ""
	}
	h := sha256.Sum256([]byte("guard-sso-binding:" + b))
	return hex.EncodeToString(h[:])
}
