package main

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/sso"
)

// Single sign-on (SAML 2.0): Guard is the service provider of each
// tenant, at /saml/{tenant}/…; the IdP's POST to the ACS is the one
// request that crosses sites, so it is the one exemption from the
// cross-origin protection (the tracked request and the binding cookie
// protect it instead).

// acsPattern is the assertion consumer service's route, and the only
// pattern exempt from http.CrossOriginProtection.
const acsPattern = "POST /saml/{tenant}/acs"

// maxSAMLBody bounds the body of a POST to the ACS: a signed response
// with many group attributes is larger than the console's forms (Guard's
// own limit, sso.DefaultMaxBodyBytes, applies inside).
const maxSAMLBody = sso.DefaultMaxBodyBytes

// The binding cookie ties an SP-initiated login to the browser that
// started it (no login CSRF): a random value, fresh at every login start,
// sent with the IdP's cross-site POST (SameSite=None, so Secure), living
// as long as Guard tracks the request. It is a __Host- cookie (Path=/, no
// Domain), so a host on a sibling subdomain cannot plant its own value
// in the browser; and a value the browser presents is never adopted at
// login start. A login started by a signed-in browser replaces its
// session: the cookie then also holds that session's ID (after a dot;
// guard.SSOStart.Replaces, which Guard commits with the binding), since
// the session cookie itself (SameSite=Lax) does not come with the IdP's
// cross-site POST. An ID is no credential, and Guard accepts the answer
// only with the one the login started with.
const (
	bindingCookie = "__Host-guard-sso"
	bindingTTL    = sso.DefaultRequestTTL
)

// The single logout binding cookie ties the IdP's LogoutResponse to the
// browser that signed out (no logout CSRF), as the binding cookie does a
// login: a random value set with the step to the IdP, which the console
// also puts in the sign-out's return address (kept by Guard with the
// tracked LogoutRequest, never sent to the IdP). The IdP comes back by a
// top-level GET, so SameSite=Lax is enough.
const (
	sloCookie = "__Host-guard-slo"
	sloParam  = "slo" // the binding's query parameter in the return address
)

// newBinding returns 256 random bits, base64url.
func newBinding() string {
	var b [32]byte
	rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// bindingValue is the binding cookie's value: the binding, and the ID of
// the session the login replaces, if any.
func bindingValue(binding, replaces string) string {
	if replaces == "" {
		return binding
	}
	return binding + "." + replaces
}

// boundLogin returns the binding and replaced session ID that r's binding
// cookie holds ("" for none).
func boundLogin(r *http.Request) (binding, replaces string) {
	c, err := r.Cookie(bindingCookie)
	if err != nil {
		return "", ""
	}
	binding, replaces, _ = strings.Cut(c.Value, ".")
	return binding, replaces
}

func setBinding(w http.ResponseWriter, v string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: bindingCookie, Value: v, Path: "/", MaxAge: maxAge,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteNoneMode})
}

func setSLOBinding(w http.ResponseWriter, v string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: sloCookie, Value: v, Path: "/", MaxAge: maxAge,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// sloReturn is the return address of a sign-out that goes on to the IdP:
// back, bound to binding.
func sloReturn(back, binding string) string {
	return back + "?" + url.Values{sloParam: {binding}}.Encode()
}

// sloBound reports whether r comes from the browser that started the
// single logout whose return address is to (sloReturn), and returns the
// address without the binding.
func sloBound(r *http.Request, to string) (string, bool) {
	u, err := url.Parse(to)
	if err != nil {
		return "/", false
	}
	binding := u.Query().Get(sloParam)
	c, err := r.Cookie(sloCookie)
	return u.Path, err == nil && binding != "" && subtle.ConstantTimeCompare([]byte(c.Value), []byte(binding)) == 1
}

// samlMetadata serves a tenant's SP metadata, for its IdP. It is served
// for any well-formed tenant ID, whether or not the organisation exists:
// it is made of the ID, the base URL and the server's one SP certificate
// (nothing is made or stored per tenant), and answering 404 for an
// unknown organisation would tell anyone which IDs exist, as the login
// and logout endpoints do not. A malformed ID is 404.
func (a *app) samlMetadata(w http.ResponseWriter, r *http.Request) {
	md, err := a.g.SSOMetadata(r.PathValue("tenant"))
	if err != nil {
		var ie *sso.InputError
		if errors.As(err, &ie) {
			http.NotFound(w, r)
			return
		}
		a.fail(w, r, err, "/")
		return
	}
	w.Header().Set("Content-Type", "application/samlmetadata+xml")
	w.Write(md)
}

// samlLogin starts an SP-initiated login: a tracked AuthnRequest, bound
// to this browser by a new binding cookie, and the browser sent to the
// IdP. The binding is new even when the browser presents one: adopting
// it would let whoever planted it deliver an answer of their own (only
// the latest login started in a browser can complete). The sign-in
// replaces the session the browser has now (this top-level request
// carries its cookie), which Guard ends before it creates the new one:
// the browser's own session does not fill a session limit against a
// step-up, and a session left in the browser (perhaps someone else's)
// ends though the IdP's answer comes without its cookie
// (SECURITY-CHECKLIST SE-1).
//
// It starts only on a navigation from the console's own pages
// (ownNavigation); any other asks first (ssoConfirm), on a page whose
// link comes back here from the console. Otherwise any site could send
// a browser here (a link, a redirect, a link in a mail) for a tenant
// whose IdP it controls, and an IdP that answers at once would end the
// browser's session and sign it in to the attacker's account (login
// CSRF: the binding cookie does not stop it, since the victim's own
// browser started the login). No next of the console's leads here
// (localPath), so a redirect of its own after a form cannot either.
func (a *app) samlLogin(w http.ResponseWriter, r *http.Request) {
	if !ownNavigation(r) {
		a.ssoConfirm(w, r)
		return
	}
	if !a.form(w, r) {
		return
	}
	binding := newBinding()
	replaces := ""
	if p, ok := guard.PrincipalFrom(r.Context()); ok && p.Kind == guard.KindUser {
		replaces = p.SessionID()
	}
	next := ssoNext(r)
	// force=1 is the step-up: the IdP must authenticate the user again,
	// not reuse its session (or the sign-in does not count as recent).
	// mfa=1 asks it for a sign-in with two steps, which the Administration
	// pages need (needMFA offers it).
	q := r.Form
	l, err := a.g.StartSSO(r.Context(), guard.SSOStart{Tenant: r.PathValue("tenant"), ReturnTo: next, Binding: binding, IP: a.g.ClientIP(r),
		ForceAuthn: q.Get("force") == "1" || q.Get("mfa") == "1", RequireMFA: q.Get("mfa") == "1", Replaces: replaces})
	if err != nil {
		a.ssoStartFailed(w, r, err)
		return
	}
	setBinding(w, bindingValue(binding, replaces), int(bindingTTL/time.Second))
	if l.Form != nil {
		// An IdP that takes the HTTP-POST binding only: a page that posts
		// the request to it, allowed by this answer's own policy.
		nonce := newBinding()[:22]
		origin := ""
		if u, err := url.Parse(l.Form.Action); err == nil {
			origin = u.Scheme + "://" + u.Host
		}
		w.Header().Set("Content-Security-Policy", "default-src 'none'; script-src 'nonce-"+nonce+"'; form-action "+origin+
			"; base-uri 'none'; frame-ancestors 'none'")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Write(l.Form.HTML(nonce))
		return
	}
	http.Redirect(w, r, l.RedirectURL, http.StatusSeeOther)
}

// ownNavigation reports whether the browser says r is a navigation
// (a GET with Sec-Fetch-Mode navigate: not an image, a fetch or a HEAD)
// from the console's own pages (Sec-Fetch-Site same-origin, every hop of
// its redirects included). Another site, a sibling on the same site, a
// browser that does not say, and "none" are not: "none" is a typed
// address or a bookmark, but also a link opened from a mail or chat
// application, which anyone can send (fail closed; unlike auditExport,
// which lets a browser that sends no Sec-Fetch-Site export, this GET
// would change who the browser is signed in as).
func ownNavigation(r *http.Request) bool {
	return r.Method == http.MethodGet && r.Header.Get("Sec-Fetch-Mode") == "navigate" &&
		r.Header.Get("Sec-Fetch-Site") == "same-origin"
}

// ssoNext is where a sign-in with SSO goes back to: the request's next,
// if a path on this site that Guard accepts, else "/".
func ssoNext(r *http.Request) string {
	next := localPath(r.FormValue("next"))
	if !sso.SafeRedirect(next) {
		return "/"
	}
	return next
}

// ssoConfirmView is the page that asks before a sign-in with SSO starts:
// Start is the link that starts it, the request's own with its next made
// safe.
type ssoConfirmView struct {
	Tenant string
	Start  string
}

// ssoConfirm answers a GET of the SSO start that did not come from the
// console's pages (an IdP portal's link, another site's, a bookmark): a
// page that asks whether to sign in to the tenant with SSO, and says that
// the current session ends, whose link starts it (a navigation from the
// console's page: ownNavigation). A link, not a form: the page's
// form-action 'self' would stop a form's redirect to the IdP (as for
// the sign-out: see logout). It reads no store, so it answers alike for every
// well-formed tenant ID (it tells nobody which exist), and a malformed
// one gets the answer StartSSO's input error gets. Nothing is started
// and nothing is recorded.
func (a *app) ssoConfirm(w http.ResponseWriter, r *http.Request) {
	tenant := r.PathValue("tenant")
	if guard.CheckTenantID(tenant) != nil {
		a.ssoNotSetUp(w, r)
		return
	}
	q := r.URL.Query()
	start := url.Values{"next": {ssoNext(r)}}
	for _, k := range []string{"force", "mfa"} {
		if q.Get(k) == "1" {
			start.Set(k, "1")
		}
	}
	a.page(w, r, "ssostart.html", view{Title: "Sign in with SSO", Data: ssoConfirmView{Tenant: tenant,
		Start: "/saml/" + tenant + "/login?" + start.Encode()}})
}

// ssoStartFailed answers a login that could not start.
func (a *app) ssoStartFailed(w http.ResponseWriter, r *http.Request, err error) {
	var (
		ie *sso.InputError
		re *sso.RejectError
	)
	switch {
	case errors.Is(err, sso.ErrNoMFAContexts):
		a.errorPage(w, r, http.StatusConflict, "Two-step sign-in is not set up",
			"Your organisation has not told Guard how its identity provider reports a sign-in with two steps, so one cannot be asked for. An owner can list them under Security › Single sign-on.")
	case errors.Is(err, sso.ErrNotFound), errors.Is(err, guard.ErrTenantNotFound), errors.Is(err, guard.ErrSSONotConfigured), errors.As(err, &ie):
		a.ssoNotSetUp(w, r)
	case errors.Is(err, guard.ErrTooManyAttempts):
		a.errorPage(w, r, http.StatusTooManyRequests, "Too many attempts", "Please wait a minute and try again.")
	case errors.As(err, &re):
		a.logf("single sign-on cannot start: the IdP's stored metadata cannot be used: %v", re)
		a.errorPage(w, r, http.StatusServiceUnavailable, "Single sign-on is unavailable",
			"The identity provider's settings cannot be used (its metadata is invalid or has expired). An owner can check them under Security › Single sign-on.")
	default:
		a.fail(w, r, err, "/login")
	}
}

// ssoNotSetUp answers a login to an organisation without an IdP, or to
// none (alike: it tells nobody which organisations exist).
func (a *app) ssoNotSetUp(w http.ResponseWriter, r *http.Request) {
	a.errorPage(w, r, http.StatusNotFound, "Single sign-on is not set up",
		"This organisation has not connected an identity provider. Sign in with your password, or ask an owner to connect one under Security › Single sign-on.")
}

// ssoMFA reports whether the tenant's IdP connection lists the
// AuthnContextClassRefs with which its IdP reports a sign-in with two
// steps: a user signed in through it can then step up there for the
// Administration pages. The console reads it as the host, not as the
// user, who may not see the security settings.
func (a *app) ssoMFA(ctx context.Context, tenant string) (bool, error) {
	c, err := a.g.SSOConnection(ctx, guard.System("console"), tenant)
	switch {
	case errors.Is(err, sso.ErrNotFound), errors.Is(err, guard.ErrSSONotConfigured):
		return false, nil
	case err != nil:
		return false, err
	}
	return len(c.MFAAuthnContexts) > 0, nil
}

// samlACS receives the IdP's answer: Guard checks it, signs the user in
// and says where to go.
func (a *app) samlACS(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	tenant := r.PathValue("tenant")
	binding, replaces := boundLogin(r)
	res, to, err := a.g.CompleteSSO(ctx, guard.SSOResponse{Tenant: tenant, Request: r, Binding: binding, Replaces: replaces,
		IP: a.g.ClientIP(r), UserAgent: r.UserAgent()})
	if err != nil {
		switch {
		case errors.Is(err, guard.ErrUnavailable):
			a.fail(w, r, err, "/login")
		case errors.Is(err, guard.ErrSessionLimit):
			a.errorPage(w, r, http.StatusConflict, "Already signed in elsewhere", limitRefusedText(a.sessionLimit(r, tenant)))
		case errors.Is(err, guard.ErrIPNotAllowed):
			a.errorPage(w, r, http.StatusForbidden, "Sign-in refused", "Sign-in from your network address is not allowed by your organisation.")
		default:
			// ErrSSOFailed, whatever the cause: the reason is in the
			// sso.failed audit event, never on the page.
			a.errorPage(w, r, http.StatusForbidden, "Single sign-on failed",
				"Your identity provider's answer was not accepted. Start again from the sign-in page; if it keeps failing, an administrator can see why in the audit log.")
		}
		return
	}
	setBinding(w, "", -1)
	a.forget(tenant) // a user may have been created
	// Guard ended the session the browser had when the login started;
	// signedInAs ends the one it has now, if another (and if its cookie
	// came: a same-site POST).
	a.signedInAs(w, r, res, localPath(to))
}

// samlSLO is the single logout URL: the IdP's answer to a sign-out
// started here, or the IdP asking to end a user's sessions. Only the
// HTTP-Redirect binding (GET) is published; a POST meets the cross-origin
// protection like any other. The IdP's answer signs out only the browser
// that started the sign-out (its binding cookie): another browser sent
// there by a link, cross-site, keeps its session and hears nothing of it
// (SECURITY-CHECKLIST WEB-5, WEB-6).
func (a *app) samlSLO(w http.ResponseWriter, r *http.Request) {
	to, err := a.g.HandleSLO(r.Context(), r.PathValue("tenant"), r)
	switch {
	case errors.Is(err, guard.ErrUnavailable):
		a.fail(w, r, err, "/")
		return
	case errors.Is(err, guard.ErrSSONotConfigured), errors.Is(err, sso.ErrNotFound):
		a.errorPage(w, r, http.StatusNotFound, "Single sign-on is not set up", "This organisation has not connected an identity provider.")
		return
	case err != nil:
		// ErrSSOFailed, or ErrTenantNotFound: an organisation that does
		// not exist is answered as one without an IdP, which tells
		// nobody which organisations exist.
		a.errorPage(w, r, http.StatusBadRequest, "Single logout failed",
			"The identity provider's logout message was not accepted. If you are still signed in here, use Sign out.")
		return
	}
	switch {
	case to == "":
		a.clearEndedSession(w, r)
		a.ok(w, r, "/login", "Signed out.")
	case localPath(to) == to: // the answer to a sign-out started here
		back, ok := sloBound(r, to)
		if !ok {
			a.logf("single logout: the IdP's answer came from a browser that did not sign out: its session is left alone")
			http.Redirect(w, r, "/", http.StatusSeeOther)
			return
		}
		setSLOBinding(w, "", -1)
		a.signedOut(w)
		a.ok(w, r, back, "Signed out, at your identity provider too.")
	default:
		a.clearEndedSession(w, r)
		http.Redirect(w, r, to, http.StatusSeeOther) // the answer to the IdP's request
	}
}

// clearEndedSession clears the browser's session cookie after the IdP's
// LogoutRequest, only if the session it holds no longer works: the
// request named the user of another browser (anyone may bring a signed
// request here), whose sign-out must not reach this one.
func (a *app) clearEndedSession(w http.ResponseWriter, r *http.Request) {
	if tok, ok := a.g.SessionToken(r); ok {
		if _, err := a.g.Authenticate(r.Context(), tok); err == nil {
			return
		}
	}
	a.g.ClearSessionCookie(w)
}

// The demo tenant's IdP from -idp-metadata.

// idpSource is -idp-metadata: a URL, or a file (read at start).
type idpSource struct {
	raw  string
	url  *url.URL // nil for a file
	data []byte   // the file
}

func parseIdPSource(s string) (idpSource, error) {
	src := idpSource{raw: s}
	switch {
	case s == "":
	case strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://"):
		u, err := url.Parse(s)
		if err != nil || u.Host == "" {
			return idpSource{}, fmt.Errorf("-idp-metadata %q: not a URL", s)
		}
		src.url = u
	default:
		b, err := os.ReadFile(s)
		if err != nil {
			return idpSource{}, fmt.Errorf("-idp-metadata: %w", err)
		}
		src.data = b
	}
	return src, nil
}

// insecure reports whether the metadata URL is on loopback: the console
// then lets Guard fetch metadata over plain http and from local
// addresses (sso.Config.AllowInsecureMetadata), for a local evaluation
// with the demo IdP.
func (s idpSource) insecure() bool {
	if s.url == nil {
		return false
	}
	h := s.url.Hostname()
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && ip.IsLoopback()
}

// demoConnection is the demo tenant's connection before an owner changes
// it: users created at their first sign-in, the demo IdP's groups mapped
// to roles, and only its users' domain.
func demoConnection() sso.Connection {
	return sso.Connection{
		Tenant:         demoTenant,
		JIT:            true,
		GroupRoles:     map[string]string{"admins": rbac.Admin, "staff": rbac.Member},
		DefaultRole:    rbac.Member,
		AllowedDomains: []string{"example.com"},
	}
}

// idpRetry connects the IdP in the background until it answers.
type idpRetry struct {
	cancel context.CancelFunc
	done   chan struct{}
}

func (r *idpRetry) stop() {
	if r != nil {
		r.cancel()
		<-r.done
	}
}

// idpRetryEvery is how often an IdP whose metadata URL did not answer is
// tried again.
const idpRetryEvery = 2 * time.Second

// connectIdP sets the demo tenant's IdP from -idp-metadata, as the
// system. An existing connection keeps its settings (mapping, domains,
// just-in-time) and takes the new metadata; a new one gets
// demoConnection's. A metadata URL where nothing answers yet (the demo
// IdP started after the console) is tried again in the background; any
// other failure stops the start.
func connectIdP(ctx context.Context, g *guard.Guard, src idpSource, logf func(string, ...any)) (*idpRetry, error) {
	err := putIdP(ctx, g, src, logf)
	if !unanswered(err) {
		return nil, err
	}
	logf("single sign-on: the IdP's metadata at %s cannot be fetched yet (%v); trying again every %s", src.raw, err, idpRetryEvery)
	ctx, cancel := context.WithCancel(ctx)
	r := &idpRetry{cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		t := time.NewTicker(idpRetryEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			err := putIdP(ctx, g, src, logf)
			if unanswered(err) {
				continue
			}
			if err != nil && ctx.Err() == nil {
				logf("single sign-on: the IdP's metadata at %s cannot be used: %v", src.raw, err)
			}
			return
		}
	}()
	return r, nil
}

// unanswered reports whether err is a metadata fetch that got no answer
// at all (nothing listens there yet, or it timed out).
func unanswered(err error) bool {
	var fe *sso.FetchError
	return errors.As(err, &fe) && fe.Status == 0
}

func putIdP(ctx context.Context, g *guard.Guard, src idpSource, logf func(string, ...any)) error {
	sys := guard.System("console")
	c, err := g.SSOConnection(ctx, sys, demoTenant)
	switch {
	case errors.Is(err, sso.ErrNotFound):
		c = demoConnection()
	case err != nil:
		return err
	}
	c.MetadataURL, c.Metadata = "", ""
	if src.url != nil {
		c.MetadataURL = src.raw
	} else {
		c.Metadata = string(src.data)
	}
	out, err := g.SetSSOConnection(ctx, sys, c)
	if err != nil {
		return fmt.Errorf("-idp-metadata %s: %w", src.raw, err)
	}
	entity := "?"
	if idp, err := sso.ParseMetadata([]byte(out.Metadata), time.Now()); err == nil {
		entity = idp.EntityID
	}
	logf("single sign-on: tenant %q signs in through the IdP %s (metadata from %s); %s", demoTenant, entity, src.raw, describe(out))
	return nil
}

// describe sums up a connection's choices for the log.
func describe(c sso.Connection) string {
	var parts []string
	if c.JIT {
		parts = append(parts, "new users created at their first sign-in")
	}
	for _, m := range mappingOf(c) {
		parts = append(parts, "group "+m.Group+" → "+m.Role)
	}
	if c.DefaultRole != "" {
		parts = append(parts, "others "+c.DefaultRole)
	}
	if len(c.AllowedDomains) > 0 {
		parts = append(parts, "domains "+strings.Join(c.AllowedDomains, ", "))
	}
	if n := len(c.MetadataSigningCertificates); n > 0 {
		parts = append(parts, fmt.Sprintf("metadata must be signed (%d certificate(s))", n))
	}
	return strings.Join(parts, "; ")
}
