package main

import (
	"crypto/rand"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/sso"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// app is the console: HTTP handlers over one Guard.
type app struct {
	g       *guard.Guard
	tenant  string // the demo tenant, the default of the sign-in form
	base    *url.URL
	mail    *consoleSender
	captcha captchaUI
	now     func() time.Time
	logf    func(string, ...any)
	pages   map[string]*template.Template
	// csp is the Content-Security-Policy of every answer; captchaCSP,
	// which allows the CAPTCHA provider's widget, replaces it on the
	// captchaPages.
	csp, captchaCSP string
	// mfaConfigured: the Guard has Config.MFA.
	mfaConfigured bool
	// breachCheck: new passwords are checked against breaches
	// (-breach-api, Config.BreachCheck); the pages say so only then.
	breachCheck bool
	reviews     reviewCache
	adoptions   adoptionCache
	// insecureMetadata: IdP metadata may come over plain http from local
	// addresses (-idp-metadata on loopback).
	insecureMetadata bool
	// adminMFA: the Administration pages need a session that passed a
	// second factor (guard.RequireMFA; SECURITY-CHECKLIST RB-11). On
	// unless the console runs with -admin-mfa=false.
	adminMFA bool
	// mux is the console's router, set by routes: a form kept across a
	// step-up goes back only to a path it routes (resumable).
	mux *http.ServeMux
}

// forget drops what the console keeps of a tenant's users (the access
// review and MFA adoption reports) after it changed them.
func (a *app) forget(tenant string) {
	a.reviews.forget(tenant)
	a.adoptions.forget(tenant)
}

// maxBody bounds every request body: the console's forms are small.
const maxBody = 64 << 10

// routes returns the console's handler. Every request goes through, from
// the outside in: security headers, the body limit, Go's cross-origin
// protection for every state-changing request (with one exemption: the
// SAML ACS, where the IdP posts the user's answer from its own site), and
// Guard's Middleware, which authenticates the session cookie or API key,
// applies the IP allow-list (which does not stop a sign-out:
// logoutOutsideAllowList) and puts the principal in the context. Pages
// then use RequireSession and Require(section, action), and the
// Administration pages RequireMFA too (see admin; the Approvals page,
// whose Guard calls check each request's permission, adminOwn).
func (a *app) routes() http.Handler {
	mux := http.NewServeMux()
	a.mux = mux
	static, _ := fs.Sub(staticFS, "static")
	mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))

	// Signing in and out, and recovery: open to anonymous requests.
	mux.HandleFunc("GET /{$}", a.home)
	mux.HandleFunc("GET /login", a.loginForm)
	mux.HandleFunc("POST /login", a.login)
	mux.HandleFunc("GET /login/mfa", a.mfaForm)
	mux.HandleFunc("POST /login/mfa", a.mfaSubmit)
	mux.HandleFunc("POST /login/mfa/send", a.mfaSend)
	mux.HandleFunc("GET /login/enrol", a.enrolForm)
	mux.HandleFunc("POST /login/enrol/begin", a.enrolBegin)
	mux.HandleFunc("POST /login/enrol/confirm", a.enrolConfirm)
	mux.HandleFunc("GET /forgot", a.forgotForm)
	mux.HandleFunc("POST /forgot", a.forgot)
	mux.HandleFunc("GET /reset", a.resetForm)
	mux.HandleFunc("POST /reset", a.reset)
	mux.Handle("POST /logout", a.logoutAny())

	// SAML single sign-on: Guard is each tenant's service provider.
	mux.HandleFunc("GET /saml/{tenant}/metadata", a.samlMetadata)
	mux.HandleFunc("GET /saml/{tenant}/login", a.samlLogin)
	mux.HandleFunc(acsPattern, a.samlACS)
	mux.HandleFunc("/saml/{tenant}/slo", a.samlSLO)

	// My account.
	mux.Handle("GET /account", a.signedIn(a.account))
	mux.Handle("POST /account/password", a.signedIn(a.changePassword))
	mux.Handle("POST /account/email", a.signedIn(a.requestEmailChange))
	mux.HandleFunc("GET /email/confirm", a.emailConfirmForm)
	mux.HandleFunc("POST /email/confirm", a.confirmEmail)
	mux.Handle("POST /account/mfa/totp", a.signedIn(a.beginTOTP))
	mux.Handle("POST /account/mfa/oob", a.signedIn(a.beginOOB))
	mux.Handle("POST /account/mfa/confirm", a.signedIn(a.confirmFactor))
	mux.Handle("POST /account/mfa/remove", a.signedIn(a.removeOwnFactor))
	mux.Handle("POST /account/recovery", a.signedIn(a.regenerateRecovery))
	mux.Handle("POST /account/sessions/revoke", a.signedIn(a.revokeOwnSession))
	mux.Handle("POST /account/sessions/others", a.signedIn(a.revokeOtherSessions))
	mux.Handle("GET /reauth", a.signedIn(a.reauthForm))
	mux.Handle("POST /reauth", a.signedIn(a.reauth))

	// Administration: each page needs its section's permission and a
	// session that passed a second factor (admin); Approvals, where Guard
	// checks the permission of each request, the second factor (adminOwn).
	mux.Handle("GET /users", a.admin(rbac.Users, rbac.Read, a.users))
	mux.Handle("POST /users", a.admin(rbac.Users, rbac.Manage, a.createUser))
	mux.Handle("GET /users/{id}", a.admin(rbac.Users, rbac.Read, a.userDetail))
	mux.Handle("POST /users/{id}/{op}", a.admin(rbac.Users, rbac.Manage, a.userAction))
	mux.Handle("GET /roles", a.admin(rbac.Users, rbac.Read, a.roles))
	mux.Handle("POST /roles", a.admin(rbac.Users, rbac.Manage, a.defineRole))
	mux.Handle("POST /roles/delete", a.admin(rbac.Users, rbac.Manage, a.deleteRole))
	mux.Handle("GET /security", a.admin(rbac.Settings, rbac.Read, a.security))
	mux.Handle("POST /security", a.admin(rbac.Settings, rbac.Manage, a.setPolicy))
	mux.Handle("POST /security/approvals", a.admin(rbac.Settings, rbac.Manage, a.setApprovalRule))
	mux.Handle("GET /security/sso", a.admin(rbac.Settings, rbac.Read, a.ssoPage))
	mux.Handle("POST /security/sso", a.admin(rbac.Settings, rbac.Manage, a.setSSOConnection))
	mux.Handle("POST /security/sso/delete", a.admin(rbac.Settings, rbac.Manage, a.deleteSSOConnection))
	mux.Handle("POST /security/sso/require", a.admin(rbac.Settings, rbac.Manage, a.setRequireSSO))
	mux.Handle("GET /ip", a.admin(rbac.Settings, rbac.Read, a.ipLists))
	mux.Handle("POST /ip", a.admin(rbac.Settings, rbac.Manage, a.setIPList))
	mux.Handle("POST /ip/add", a.admin(rbac.Settings, rbac.Manage, a.addIP))
	mux.Handle("GET /keys", a.admin(rbac.APIKeys, rbac.Read, a.keys))
	mux.Handle("POST /keys", a.admin(rbac.APIKeys, rbac.Manage, a.createKey))
	mux.Handle("POST /keys/revoke", a.admin(rbac.APIKeys, rbac.Manage, a.revokeKey))
	mux.Handle("GET /audit", a.admin(rbac.Audit, rbac.Read, a.auditLog))
	mux.Handle("GET /audit/export", a.admin(rbac.Audit, rbac.Read, a.auditExport))
	mux.Handle("POST /audit/verify", a.admin(rbac.Audit, rbac.Read, a.auditVerify))
	mux.Handle("GET /approvals", a.adminOwn(a.approvals))
	mux.Handle("POST /approvals/{id}/{op}", a.adminOwn(a.decideApproval))
	mux.Handle("GET /review", a.admin(rbac.Users, rbac.Read, a.review))
	mux.Handle("POST /review", a.admin(rbac.Users, rbac.Manage, a.applyReview))
	mux.Handle("POST /review/dormant", a.admin(rbac.Users, rbac.Manage, a.deactivateDormant))

	// The host application's own pages, to try roles and four-eyes
	// approval on: a campaigns section and a small JSON API that accepts
	// a session or an API key.
	mux.Handle("GET /campaigns", a.permitted(rbac.Campaigns, rbac.Read, a.campaigns))
	mux.Handle("POST /campaigns/send", a.approvable(rbac.Campaigns, rbac.Send, a.sendCampaign))
	mux.Handle("GET /api/whoami", a.api(guard.RequireSession(http.HandlerFunc(a.whoami))))
	mux.Handle("GET /api/reports", a.api(a.g.Require(rbac.Reports, rbac.Read)(http.HandlerFunc(a.apiReports))))

	var h http.Handler = a.guarded(a.g.Middleware, a.signedOutNotice(mux))
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a.logf("refused a cross-origin %s %q (Origin %q, Sec-Fetch-Site %q)", r.Method, r.URL.Path, r.Header.Get("Origin"), r.Header.Get("Sec-Fetch-Site"))
		a.errorPage(w, r, http.StatusForbidden, "Request refused", "This form was sent from another site, so it was refused. Open the page here and submit it again.")
	}))
	// The IdP's POST to the ACS comes from the IdP's site: it is checked
	// by Guard instead (a tracked request, consumed once, bound to this
	// browser by the binding cookie; the assertion accepted once).
	cop.AddInsecureBypassPattern(acsPattern)
	h = cop.Handler(h)
	return a.headers(bodyLimit(h))
}

// bodyLimit bounds request bodies: maxBody, but more for a SAML response
// and for pasted IdP metadata.
func bodyLimit(h http.Handler) http.Handler {
	small, acs, metadata := http.MaxBytesHandler(h, maxBody), http.MaxBytesHandler(h, maxSAMLBody), http.MaxBytesHandler(h, maxMetadataForm)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method != http.MethodPost:
			small.ServeHTTP(w, r)
		case r.URL.Path == "/security/sso":
			metadata.ServeHTTP(w, r)
		case strings.HasPrefix(r.URL.Path, "/saml/") && strings.HasSuffix(r.URL.Path, "/acs"):
			acs.ServeHTTP(w, r)
		default:
			small.ServeHTTP(w, r)
		}
	})
}

// maxMetadataForm bounds the SSO connection form, which may carry pasted
// IdP metadata (Guard takes up to sso.MaxMetadataBytes, URL-encoded here).
const maxMetadataForm = 3 * sso.MaxMetadataBytes

// headers sets the security headers of every answer.
func (a *app) headers(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", a.csp)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Cache-Control", "no-store")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
		// Browsers ignore it over plain HTTP (a local evaluation); behind
		// TLS it keeps them on HTTPS for a year.
		h.Set("Strict-Transport-Security", "max-age=31536000")
		next.ServeHTTP(w, r)
	})
}

// contentSecurityPolicy allows the console's own stylesheet and images
// (the QR code is a data: image), no script at all unless c is a CAPTCHA
// provider's widget, and no framing.
//
// The console's policy is that of captchaUI{} on every page but the
// captchaPages: the provider's script runs only on a page that shows its
// widget, never on one that shows a secret (a new authenticator key,
// recovery codes, a new API key).
func contentSecurityPolicy(c captchaUI) string {
	script, frame := "'none'", "'none'"
	if c.ScriptOrigin != "" {
		script, frame = c.ScriptOrigin, c.ScriptOrigin
	}
	return "default-src 'none'; script-src " + script + "; style-src 'self'; img-src 'self' data:; frame-src " + frame +
		"; connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'; object-src 'none'"
}

// captchaPages are the page templates whose forms carry a CAPTCHA
// (captchaUI.Widget): only they load the provider's script, under
// captchaCSP.
var captchaPages = map[string]bool{"login.html": true, "forgot.html": true, "reset.html": true, "account.html": true, "reauth.html": true}

// signedIn is a page for signed-in users.
func (a *app) signedIn(h http.HandlerFunc) http.Handler {
	return a.guarded(guard.RequireSession, h)
}

// permitted is a page that needs a permission: RequireSession, then
// Require(section, action).
func (a *app) permitted(s rbac.Section, act rbac.Action, h http.HandlerFunc) http.Handler {
	req := a.g.Require(s, act)
	return a.guarded(func(next http.Handler) http.Handler { return guard.RequireSession(req(next)) }, h)
}

// approvable is permitted for a page whose handler takes part in
// four-eyes approval (Guard's RequireApprovable): an action under
// approval reaches it, and it consumes an approval before acting.
func (a *app) approvable(s rbac.Section, act rbac.Action, h http.HandlerFunc) http.Handler {
	req := a.g.RequireApprovable(s, act)
	return a.guarded(func(next http.Handler) http.Handler { return guard.RequireSession(req(next)) }, h)
}

// admin is a page of the Administration block: permitted, and then,
// unless -admin-mfa=false, RequireMFA: the session must have passed a
// second factor (SECURITY-CHECKLIST RB-11; a password-only or email-code
// session gets 403 with Guard-Step-Up, which guarded turns into the
// step-up, see needMFA). The permission is checked first, so a user
// whose role does not allow the page is refused as before and is not
// asked for a second factor.
func (a *app) admin(s rbac.Section, act rbac.Action, h http.HandlerFunc) http.Handler {
	if !a.adminMFA {
		return a.permitted(s, act, h)
	}
	req := a.g.Require(s, act)
	return a.guarded(func(next http.Handler) http.Handler { return guard.RequireSession(req(a.g.RequireMFA(next))) }, h)
}

// adminOwn is an Administration page with no section of its own, whose
// Guard calls check each item's permission themselves: the Approvals
// page (Approvals lists a user's own requests and those they may
// approve; ApproveRequest and RejectRequest need the request's section's
// approve permission). Deciding a four-eyes request is an administrative
// act, so the page needs what the others do besides the permission: a
// session, and then, unless -admin-mfa=false, RequireMFA.
func (a *app) adminOwn(h http.HandlerFunc) http.Handler {
	if !a.adminMFA {
		return a.signedIn(h)
	}
	return a.guarded(func(next http.Handler) http.Handler { return guard.RequireSession(a.g.RequireMFA(next)) }, h)
}

// stepUpHeader is the header with which guard.RequireMFA asks for a
// second factor ("mfa").
const stepUpHeader = "Guard-Step-Up"

// needMFA answers a page request that RequireMFA refused: the session is
// signed in without a second factor (SECURITY-CHECKLIST RB-11). Nothing
// was done. A user with an authenticator app confirms it is them with it
// (the step-up, /reauth), which makes the session one that passed a
// second factor; one without sets an app up first (My account), then
// steps up. Either way they come back to the page they asked for (for a
// form, to its section's page). A user signed in through single sign-on,
// when the tenant's IdP connection trusts some multi-factor contexts
// (sso.Connection.MFAAuthnContexts), is offered on the step-up page to
// sign in again at the IdP with two factors (SSOStart RequireMFA and
// ForceAuthn): an offer, not a redirect, so an IdP that answers without
// them sends nobody round in a loop. Otherwise a user without a password
// cannot step up here (Reauthenticate checks the password): they get a
// page that says so.
func (a *app) needMFA(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	next := r.URL.RequestURI()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		next = sectionPage(r.URL.Path)
	}
	u, err := a.g.User(r.Context(), p, p.Tenant, p.UserID)
	if err != nil {
		a.fail(w, r, err, "/")
		return
	}
	fs, err := a.g.Factors(r.Context(), p, p.Tenant, p.UserID)
	if err != nil {
		a.fail(w, r, err, "/")
		return
	}
	ssoMFA := false
	if p.Flags&guard.FlagSSO != 0 {
		if ssoMFA, err = a.ssoMFA(r.Context(), p.Tenant); err != nil {
			a.fail(w, r, err, "/")
			return
		}
	}
	if !u.HasPassword && !ssoMFA {
		a.errorPage(w, r, http.StatusForbidden, "Two-step verification needed", adminMFAWhy+
			" Your account signs in through single sign-on and has no password, so it cannot confirm it is you here with an authenticator app;"+
			" and your organisation has not told Guard how your identity provider reports a sign-in with two steps, so a sign-in there does not count as one.")
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		a.setFlash(w, "error", "Nothing was changed: "+strings.ToLower(adminMFAWhy[:1])+adminMFAWhy[1:])
	}
	if hasTOTP(fs) || ssoMFA {
		http.Redirect(w, r, stepUpURL(next), http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, accountURL(next)+"#mfa", http.StatusSeeOther)
}

// adminMFAWhy says why the Administration pages ask for a second factor.
const adminMFAWhy = "Administration needs two-step verification."

// sectionPage is the page of the section of an Administration form's path
// ("/users/x/deactivate" → "/users").
func sectionPage(path string) string {
	section, _, _ := strings.Cut(strings.TrimPrefix(path, "/"), "/")
	return localPath("/" + section)
}

// hasTOTP reports whether fs holds a confirmed authenticator app: the
// second factor a step-up (Reauthenticate) checks.
func hasTOTP(fs []mfa.Factor) bool {
	return slices.ContainsFunc(fs, func(f mfa.Factor) bool { return f.Kind == mfa.KindTOTP && f.Confirmed() })
}

// api keeps Guard's plain answers (401, 403, 503) for the JSON API.
func (a *app) api(h http.Handler) http.Handler { return h }

// guarded runs h inside wrap (Guard's Middleware, RequireSession or
// Require) and turns the plain-text errors those answer with, before h is
// reached, into console pages: 401 sends the browser to sign in. A
// sign-out that the IP allow-list refused signs out all the same
// (logoutOutsideAllowList).
func (a *app) guarded(wrap func(http.Handler) http.Handler, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if isAPI(r) {
			wrap(h).ServeHTTP(w, r)
			return
		}
		iw := &intercept{ResponseWriter: w}
		wrap(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			iw.reached = true
			h.ServeHTTP(w, r)
		})).ServeHTTP(iw, r)
		if iw.code == 0 {
			return
		}
		switch iw.code {
		case http.StatusUnauthorized:
			// A redirect, not a 401: Guard's challenge does not apply,
			// and its reason goes in the flash, not in a header.
			w.Header().Del("WWW-Authenticate")
			if reason := iw.Header().Get(guard.ReasonHeader); reason != "" {
				a.signedOutBecause(w, reason)
			}
			w.Header().Del(guard.ReasonHeader)
			next := "/"
			if r.Method == http.MethodGet {
				next = r.URL.RequestURI()
			}
			http.Redirect(w, r, "/login?next="+url.QueryEscape(next), http.StatusSeeOther)
		case http.StatusForbidden:
			if errors.Is(iw.cause, guard.ErrIPNotAllowed) && r.Method == http.MethodPost && r.URL.Path == "/logout" {
				a.logoutOutsideAllowList(w, r)
				return
			}
			if iw.Header().Get(guard.ReasonHeader) == guard.ReasonPasswordExpired {
				// The session signed in with a password that must
				// be changed: nothing else until it is.
				a.setFlash(w, "error", "Your password must be changed before you can do anything else: choose a new one here.")
				http.Redirect(w, r, "/account#change-password", http.StatusSeeOther)
				return
			}
			if iw.Header().Get(stepUpHeader) == "mfa" {
				a.needMFA(w, r)
				return
			}
			if iw.Header().Get(guard.ReasonHeader) == guard.ReasonApprovalRequired {
				a.errorPage(w, r, http.StatusForbidden, "Approval needed",
					"Your organisation requires another person's approval for this action, and this page cannot ask for one. Nothing was done.")
				return
			}
			a.errorPage(w, r, http.StatusForbidden, "Access denied",
				"Your role does not allow this, or your network address is not on your organisation's allow-list. The refusal is in the audit log.")
		case http.StatusTooManyRequests:
			a.errorPage(w, r, http.StatusTooManyRequests, "Too many attempts", "Please wait a few minutes and try again.")
		default:
			// A store failure: its cause, from onRefuse, is logged
			// under a reference that the page shows.
			cause := iw.cause
			if cause == nil {
				cause = fmt.Errorf("answered %d", iw.code)
			}
			ref := a.ref(fmt.Errorf("%s %q: %w", r.Method, r.URL.Path, cause))
			a.renderStatus(w, r, iw.code, "error.html", view{Title: "Temporarily unavailable",
				Data: errorView{Status: iw.code, Message: "The service cannot answer right now. Please try again shortly.", Ref: ref}})
		}
	})
}

// logoutOutsideAllowList is POST /logout from a browser whose session
// Guard's Middleware refused because of where the client is (the
// tenant's allow-list for people: ip.denied is recorded as for any
// request). Signing out must work there too, or the session would live
// on and come back once the browser is on an allowed network again: the
// cookie's session is ended with LogoutToken, which applies no
// allow-list (audit.Logout, with this request's address), and the cookie
// is cleared. The request has passed the cross-origin protection, as
// every POST. There is no single logout at the IdP: the principal it
// would be named by is the one Middleware refused.
func (a *app) logoutOutsideAllowList(w http.ResponseWriter, r *http.Request) {
	tok, _ := a.g.SessionToken(r)
	if !a.logoutToken(w, r, tok) { // ended already
		a.signedOut(w)
		a.ok(w, r, "/login", "Signed out.")
	}
}

// signedOutNotice tells a user whose session Guard's Middleware refused
// with a reason (SignedOutReason: signed in elsewhere, policy changed): a
// page request is sent back to its own address, now without the session
// cookie, with a flash that the page it ends on (the sign-in page, for a
// page that needs a session) shows. The address is the raw one the mux
// has not cleaned yet, so it goes through sitePath: "//evil.test/x"
// goes to "/", never off-site. (The SSO start, the console's own link,
// is sent back too: the redirect keeps the request's Sec-Fetch-Site, so
// one from another site still asks.) Other requests go on: one that needs a
// session gets the flash from guarded.
func (a *app) signedOutNotice(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if reason := guard.SignedOutReason(r.Context()); reason != "" && !isAPI(r) &&
			(r.Method == http.MethodGet || r.Method == http.MethodHead) {
			a.signedOutBecause(w, reason)
			http.Redirect(w, r, sitePath(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		next.ServeHTTP(w, r)
	})
}

// signedOutBecause sets the flash that says why the session ended
// (Guard's reason: guard.ReasonSignedInElsewhere, ReasonPolicyChanged).
func (a *app) signedOutBecause(w http.ResponseWriter, reason string) {
	switch reason {
	case guard.ReasonSignedInElsewhere:
		a.setFlash(w, "error", "You were signed out because your account signed in elsewhere.")
	case guard.ReasonPolicyChanged:
		a.setFlash(w, "error", "You were signed out because your organisation's security policy changed: sign in again.")
	}
}

// isAPI reports whether r is a request of the JSON API (or carries an API
// key): those get Guard's plain status codes, never a page or a redirect.
func isAPI(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, "/api/") || r.Header.Get("Authorization") != ""
}

// intercept holds back an error answer written before the page is reached.
// A redirect through it drops Guard's Guard-Reason header (which
// Middleware sets for a session ended with a reason): that header is for
// API clients, and a page is told why by a flash (signedOutBecause).
type intercept struct {
	http.ResponseWriter
	reached bool
	code    int
	cause   error // from onRefuse
}

// onRefuse is the console's guard.Config.OnRefuse. Under guarded (a
// console page) the cause goes to the intercept, whose page logs it under
// the reference it shows; on the JSON API a store failure is logged here,
// and the answer carries the reference.
func onRefuse(logf func(string, ...any)) func(http.ResponseWriter, *http.Request, int, error) {
	return func(w http.ResponseWriter, r *http.Request, status int, cause error) {
		if iw, ok := w.(*intercept); ok {
			iw.cause = cause
		} else if status == http.StatusServiceUnavailable {
			ref := newRef()
			logf("error %s: %s %q: %v", ref, r.Method, r.URL.Path, cause)
			http.Error(w, "Service temporarily unavailable (reference "+ref+")", status)
			return
		}
		http.Error(w, http.StatusText(status), status)
	}
}

func (i *intercept) WriteHeader(code int) {
	if !i.reached && code >= 400 {
		i.code = code
		return
	}
	if code >= 300 && code < 400 {
		i.Header().Del(guard.ReasonHeader)
	}
	i.ResponseWriter.WriteHeader(code)
}

func (i *intercept) Write(b []byte) (int, error) {
	if i.code != 0 {
		return len(b), nil
	}
	return i.ResponseWriter.Write(b)
}

func (i *intercept) Unwrap() http.ResponseWriter { return i.ResponseWriter }

// view is what every page template gets.
type view struct {
	Title   string
	Nav     string // the active navigation item
	Me      *guard.User
	P       guard.Principal
	Flash   *flash
	Error   string
	Tenant  string
	Captcha captchaUI // the CAPTCHA's widget and script: set on the captchaPages only
	Next    string
	Data    any
	// BreachCheck: new passwords known from breaches are refused
	// (-breach-api); set by the renderer for every page.
	BreachCheck bool
	// SignedOut: the page answers a sign-out, so it shows no one as
	// signed in (the request still carries the ended session).
	SignedOut bool
}

// page renders a page template with status 200.
func (a *app) page(w http.ResponseWriter, r *http.Request, name string, v view) {
	a.renderStatus(w, r, http.StatusOK, name, v)
}

// renderStatus renders a page template with status. A form refused for
// what was typed (a wrong password or code, a missing CAPTCHA, bad input,
// a sign-in step that expired) comes back with 400 and the form: never
// 401, which must carry a WWW-Authenticate challenge (RFC 9110 §15.5.2),
// and Guard's (Bearer, for API keys) does not apply to a form.
func (a *app) renderStatus(w http.ResponseWriter, r *http.Request, status int, name string, v view) {
	t, ok := a.pages[name]
	if !ok {
		panic("no template " + name)
	}
	if p, ok := guard.PrincipalFrom(r.Context()); ok && p.Kind == guard.KindUser && !v.SignedOut {
		v.P = p
		if v.Me == nil {
			if u, err := a.g.User(r.Context(), p, p.Tenant, p.UserID); err == nil {
				v.Me = &u
			}
		}
	}
	if v.Tenant == "" {
		v.Tenant = a.tenant
	}
	if captchaPages[name] {
		v.Captcha = a.captcha
		w.Header().Set("Content-Security-Policy", a.captchaCSP)
	}
	v.BreachCheck = a.breachCheck
	if v.Flash == nil && !flashSet(w) {
		v.Flash = a.takeFlash(w, r)
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := t.ExecuteTemplate(w, "layout", v); err != nil {
		a.logf("render %s: %v", name, err)
	}
}

// errorPage renders a generic error page: a title, a sentence, and for
// server errors a reference to find the details in the console's log.
func (a *app) errorPage(w http.ResponseWriter, r *http.Request, status int, title, msg string) {
	a.renderStatus(w, r, status, "error.html", view{Title: title, Data: errorView{Status: status, Message: msg}})
}

type errorView struct {
	Status  int
	Message string
	Ref     string
}

// fail answers an error from Guard on a page: a step-up sends the user
// to confirm their identity and come back to next (a posted form that
// can be kept is shown the step-up page in place, with status 200, and
// comes back with the form: stepupform.go); a refusal or a store failure
// gets a generic page. Everything else is an internal error, logged with
// a reference shown to the user (no internals reach the page).
func (a *app) fail(w http.ResponseWriter, r *http.Request, err error, next string) {
	switch {
	case errors.Is(err, guard.ErrStepUpRequired):
		if r.Method == http.MethodPost && r.ParseForm() == nil {
			if fields, ok := a.keepForm(r.URL.Path, r.PostForm); ok {
				if v, ok := a.reauthPage(w, r, next, false, false, resumeOf(r.URL.Path, fields)); ok {
					a.page(w, r, "reauth.html", v)
				}
				return
			}
		}
		http.Redirect(w, r, "/reauth?next="+url.QueryEscape(next), http.StatusSeeOther)
	case errors.Is(err, guard.ErrUnauthenticated):
		a.g.ClearSessionCookie(w)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
	case errors.Is(err, guard.ErrPasswordChangeRequired):
		// As guarded does for Require's refusal: nothing else until the
		// password is changed.
		a.setFlash(w, "error", "Your password must be changed before you can do anything else: choose a new one here.")
		http.Redirect(w, r, "/account#change-password", http.StatusSeeOther)
	case errors.Is(err, guard.ErrForbidden):
		a.errorPage(w, r, http.StatusForbidden, "Access denied", "Your role does not allow this. The refusal is in the audit log.")
	case errors.Is(err, guard.ErrIPNotAllowed):
		// The tenant's allow-list for people (a step of a pending
		// sign-in checks it again): a refusal, recorded as ip.denied,
		// not a server error.
		a.errorPage(w, r, http.StatusForbidden, "Access denied",
			"Access from your network address is not allowed by your organisation.")
	case errors.Is(err, guard.ErrSSORequired):
		// A sign-in waiting for its second factor when the organisation
		// turned on "require SSO" (failStep also ends the sign-in). (A
		// password step-up under it is answered on the step-up page,
		// reauth.)
		a.errorPage(w, r, http.StatusForbidden, "Single sign-on required",
			"Your organisation requires single sign-on: use \"Sign in with SSO\" on the sign-in page.")
	case errors.Is(err, guard.ErrUnavailable):
		ref := a.ref(err)
		a.renderStatus(w, r, http.StatusServiceUnavailable, "error.html", view{Title: "Temporarily unavailable",
			Data: errorView{Status: 503, Message: "A store did not answer, so nothing was done. Please try again shortly.", Ref: ref}})
	default:
		ref := a.ref(err)
		a.renderStatus(w, r, http.StatusInternalServerError, "error.html", view{Title: "Something went wrong",
			Data: errorView{Status: 500, Message: "The request could not be completed.", Ref: ref}})
	}
}

// ref logs err under a new reference and returns the reference.
func (a *app) ref(err error) string {
	ref := newRef()
	a.logf("error %s: %v", ref, err)
	return ref
}

// newRef returns a random reference for a log line.
func newRef() string {
	var b [6]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// problem returns what to tell the user about err when it is about their
// input or the state of things (a rule, a conflict): a sentence that
// names the field or rule, never a secret. ok is false for every other
// error, which fail handles.
func problem(err error) (string, bool) {
	var (
		ie   *guard.InputError
		pe   *guard.PolicyError
		aie  *auth.InputError
		ape  *auth.PolicyError
		ipe  *ipfilter.ParseError
		iie  *ipfilter.InputError
		rie  *rbac.InputError
		mie  *mfa.InputError
		cape *auth.CaptchaError
		sie  *sso.InputError
		sfe  *sso.FetchError
		aue  *audit.InputError
	)
	switch {
	case errors.Is(err, guard.ErrStepUpRequired), errors.Is(err, guard.ErrUnavailable), errors.Is(err, guard.ErrUnauthenticated):
		return "", false
	case errors.Is(err, rbac.ErrEscalation):
		return "You cannot give or take away a role with permissions you do not hold yourself.", true
	case errors.Is(err, rbac.ErrLastOwner):
		return "The organisation must keep at least one owner.", true
	case errors.Is(err, guard.ErrBreakGlassUser):
		return "This user is the break-glass owner while single sign-on is required: name another break-glass owner, or stop requiring single sign-on, first (Single sign-on page).", true
	case errors.Is(err, guard.ErrFactorRequired):
		return "Your organisation requires two-step verification: add another second factor before you remove your last one.", true
	case errors.Is(err, rbac.ErrSelfApproval):
		return "You cannot approve your own request: someone else must.", true
	case errors.Is(err, rbac.ErrDenied):
		return "Your role does not allow this.", true
	case errors.Is(err, guard.ErrForbidden):
		return "", false
	case errors.Is(err, ipfilter.ErrSelfLockout):
		return "That list would lock you out: your current address is not on it. Add your address, or save the list as report-only first.", true
	case errors.Is(err, ipfilter.ErrTooManyEntries):
		return "The list has too many entries.", true
	case errors.Is(err, guard.ErrConflict):
		return "Someone changed this at the same time. The page shows the current state: check it and try again.", true
	case errors.Is(err, guard.ErrCaptchaRequired), errors.As(err, &cape):
		return "Please complete the CAPTCHA.", true
	case errors.Is(err, guard.ErrEmailTaken):
		return "A user with this email already exists.", true
	case errors.Is(err, guard.ErrTooManyAttempts):
		return "Too many requests for now: try again in an hour.", true
	case errors.Is(err, guard.ErrUserNotFound), errors.Is(err, guard.ErrNotFound), errors.Is(err, mfa.ErrNotFound), errors.Is(err, rbac.ErrNotFound):
		return "It does not exist (any more).", true
	case errors.Is(err, auth.ErrPasswordTooLong):
		return "That password is too long.", true
	case errors.Is(err, guard.ErrMFANotConfigured):
		return "MFA is not configured on this server.", true
	case errors.Is(err, guard.ErrSSONotConfigured):
		return "Single sign-on is not configured on this server.", true
	case errors.As(err, &sie):
		return ssoInputSentence(sie), true
	case errors.As(err, &sfe):
		return "The identity provider's metadata could not be fetched.", true
	case errors.As(err, &aue):
		return auditInputSentence(aue), true
	case errors.Is(err, rbac.ErrRoleNotFound):
		return "There is no such role.", true
	case errors.Is(err, rbac.ErrBuiltInRole):
		return "Built-in roles cannot be changed or deleted.", true
	case errors.Is(err, rbac.ErrTooManyRoles):
		return "The organisation has too many custom roles.", true
	case errors.Is(err, auth.ErrTooManyAPIKeys):
		return "The organisation has as many live API keys as it may have: revoke a key it no longer needs, then create the new one.", true
	case errors.Is(err, mfa.ErrLimit):
		return "You have the largest number of second factors allowed: remove one first.", true
	case errors.Is(err, rbac.ErrNotPending), errors.Is(err, rbac.ErrExpired), errors.Is(err, rbac.ErrConsumed), errors.Is(err, rbac.ErrNotApproved):
		return "That request is no longer pending.", true
	case errors.As(err, &ape):
		return "The password was refused: " + strings.TrimPrefix(ape.Error(), "auth: password rejected: ") + ".", true
	case errors.As(err, &ipe):
		return "Not a valid IP address or range: " + strings.TrimPrefix(ipe.Error(), "ipfilter: "), true
	case errors.As(err, &ie), errors.As(err, &pe), errors.As(err, &aie), errors.As(err, &iie), errors.As(err, &rie), errors.As(err, &mie):
		return sentence(err.Error()), true
	}
	return "", false
}

// fieldSentence says what is wrong with a field of an input error err:
// "<the field's name in names> <rule>.", or err as a sentence for a field
// names does not have.
func fieldSentence(names map[string]string, field, rule string, err error) string {
	name, ok := names[field]
	if !ok {
		return sentence(err.Error())
	}
	return name + " " + rule + "."
}

// sentence turns "pkg: invalid field: reason" into "Invalid field: reason."
func sentence(s string) string {
	if i := strings.Index(s, ": "); i >= 0 && !strings.Contains(s[:i], " ") {
		s = s[i+2:]
	}
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:] + "."
}

// failOr shows err's problem as a flash on back, or hands it to fail.
func (a *app) failOr(w http.ResponseWriter, r *http.Request, err error, back string) {
	if msg, ok := problem(err); ok {
		a.setFlash(w, "error", msg)
		http.Redirect(w, r, back, http.StatusSeeOther)
		return
	}
	a.fail(w, r, err, back)
}

// flash is a one-time message shown on the next page.
type flash struct {
	Kind    string // "ok" or "error"
	Message string
}

const flashCookie = "__Host-flash"

// maxFlash bounds a flash message, in bytes, to keep its cookie small.
const maxFlash = 500

// setFlash sets the flash for the next page: msg, cut between characters
// to at most maxFlash bytes.
func (a *app) setFlash(w http.ResponseWriter, kind, msg string) {
	if len(msg) > maxFlash {
		i := maxFlash
		for i > maxFlash-utf8.UTFMax+1 && !utf8.RuneStart(msg[i]) {
			i--
		}
		msg = msg[:i]
	}
	b, _ := json.Marshal(flash{Kind: kind, Message: msg})
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: base64.RawURLEncoding.EncodeToString(b), Path: "/", MaxAge: 60,
		Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// flashSet reports whether the response already sets a flash, for the
// next page (the recovery codes shown at the end of a sign-in): the page
// rendered now must not take, and so clear, the cookie after it.
func flashSet(w http.ResponseWriter) bool {
	for _, c := range w.Header().Values("Set-Cookie") {
		if strings.HasPrefix(c, flashCookie+"=") && !strings.Contains(c, "Max-Age=0") {
			return true
		}
	}
	return false
}

func (a *app) takeFlash(w http.ResponseWriter, r *http.Request) *flash {
	c, err := r.Cookie(flashCookie)
	if err != nil {
		return nil
	}
	http.SetCookie(w, &http.Cookie{Name: flashCookie, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	b, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		return nil
	}
	var f flash
	if json.Unmarshal(b, &f) != nil || (f.Kind != "ok" && f.Kind != "error") {
		return nil
	}
	return &f
}

// ok sets a success flash and redirects to back.
func (a *app) ok(w http.ResponseWriter, r *http.Request, back, format string, args ...any) {
	a.setFlash(w, "ok", fmt.Sprintf(format, args...))
	http.Redirect(w, r, back, http.StatusSeeOther)
}

// localPath returns next when it is a path on this site (sitePath) and
// not the SSO start, else "/".
func localPath(next string) string {
	next = sitePath(next)
	u, err := url.Parse(next)
	if err != nil {
		return "/"
	}
	// Never the SSO start: a redirect of the console's own after a form
	// (a sign-in) is a navigation from its pages, which starts SSO at
	// once (ownNavigation), so a link from another site naming it as next
	// would start a sign-in to a tenant of the sender's choosing.
	if p := path.Clean(u.Path); p == "/saml" || strings.HasPrefix(p, "/saml/") {
		return "/"
	}
	return next
}

// sitePath returns next when it is a path on this site, else "/": no
// other host, no scheme-relative "//" or "/\", no control characters.
func sitePath(next string) string {
	if next == "" || next[0] != '/' || len(next) > 1 && (next[1] == '/' || next[1] == '\\') {
		return "/"
	}
	for _, c := range next {
		if c < 0x20 || c == 0x7f || c == '\\' {
			return "/"
		}
	}
	u, err := url.Parse(next)
	if err != nil || u.IsAbs() || u.Host != "" {
		return "/"
	}
	return next
}

// principal returns the request's principal (the pages that call it are
// behind RequireSession).
func principal(r *http.Request) guard.Principal {
	p, _ := guard.PrincipalFrom(r.Context())
	return p
}

// form parses a posted form; false means a 400 was sent.
func (a *app) form(w http.ResponseWriter, r *http.Request) bool {
	if err := r.ParseForm(); err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			a.errorPage(w, r, http.StatusRequestEntityTooLarge, "Request too large", "The form is larger than this page accepts.")
			return false
		}
		a.errorPage(w, r, http.StatusBadRequest, "Bad request", "The form could not be read.")
		return false
	}
	return true
}
