package main

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"slices"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/mfa"
)

// The half-way state of a sign-in (a second factor or an enrolment is due)
// is Guard's pending token, which opens nothing by itself, kept in a
// short-lived cookie with the tenant the sign-in is for and the user's
// factors (IDs, kinds and labels, no secret) to choose from. Guard binds
// the token to its tenant: the cookie's tenant only says whose rules the
// second step's answers quote (a session limit) and which organisation
// the sign-in form starts again with, so a state without one is no state.
const pendingCookie = "__Host-pending"

type pendingState struct {
	Token   string          `json:"t"`
	Tenant  string          `json:"tn"`
	Enrol   bool            `json:"e,omitempty"`
	Factors []pendingFactor `json:"f,omitempty"`
	Next    string          `json:"n,omitempty"`
}

type pendingFactor struct {
	ID    string   `json:"i"`
	Kind  mfa.Kind `json:"k"`
	Label string   `json:"l"`
}

func (a *app) setPending(w http.ResponseWriter, p *guard.Pending, tenant, next string) {
	st := pendingState{Token: p.Token, Tenant: tenant, Enrol: p.Enrol, Next: next}
	for _, f := range p.Factors {
		st.Factors = append(st.Factors, pendingFactor{ID: f.ID, Kind: f.Kind, Label: f.Label})
	}
	b, _ := json.Marshal(st)
	http.SetCookie(w, &http.Cookie{Name: pendingCookie, Value: base64.RawURLEncoding.EncodeToString(b), Path: "/",
		MaxAge: max(int(time.Until(p.ExpiresAt).Seconds()), 60), Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

func (a *app) pending(r *http.Request) (pendingState, bool) {
	c, err := r.Cookie(pendingCookie)
	if err != nil {
		return pendingState{}, false
	}
	b, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		return pendingState{}, false
	}
	var st pendingState
	if json.Unmarshal(b, &st) != nil || st.Token == "" || st.Tenant == "" {
		return pendingState{}, false
	}
	return st, true
}

func clearPending(w http.ResponseWriter) {
	http.SetCookie(w, &http.Cookie{Name: pendingCookie, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteStrictMode})
}

// failStep answers, as fail does, an error of a step of the pending
// sign-in that the step does not answer itself; a refusal that ends the
// sign-in (the organisation now requires single sign-on) clears its
// cookie too.
func (a *app) failStep(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, guard.ErrSSORequired) {
		clearPending(w)
	}
	a.fail(w, r, err, "/login")
}

type loginView struct {
	Email        string
	ShowCaptcha  bool
	SSOAvailable bool
}

func (a *app) home(w http.ResponseWriter, r *http.Request) {
	p, ok := guard.PrincipalFrom(r.Context())
	if !ok || p.Kind != guard.KindUser {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	a.page(w, r, "home.html", view{Title: "Overview", Nav: "home"})
}

func (a *app) loginForm(w http.ResponseWriter, r *http.Request) {
	if p, ok := guard.PrincipalFrom(r.Context()); ok && p.Kind == guard.KindUser {
		http.Redirect(w, r, localPath(r.URL.Query().Get("next")), http.StatusSeeOther)
		return
	}
	a.page(w, r, "login.html", view{Title: "Sign in", Next: localPath(r.URL.Query().Get("next")), Data: loginView{}})
}

func (a *app) login(w http.ResponseWriter, r *http.Request) {
	if !a.form(w, r) {
		return
	}
	tenant, email, next := r.PostForm.Get("tenant"), r.PostForm.Get("email"), localPath(r.PostForm.Get("next"))
	res, err := a.g.Login(r.Context(), guard.LoginRequest{
		Tenant: tenant, Email: email, Password: r.PostForm.Get("password"),
		IP: a.g.ClientIP(r), UserAgent: r.UserAgent(), Captcha: r.PostForm.Get(a.captcha.Field),
	})
	if err != nil {
		// The form shows the CAPTCHA when Guard asks for it, and keeps it
		// once the user was asked (the form came with it): Guard asks on
		// until the failures are forgotten, and an attempt without it is
		// refused unevaluated. That says nothing the user did not send.
		// A refused form is 400, as bad input is (see renderStatus).
		status, msg, captcha := http.StatusBadRequest, "Incorrect email or password.", r.PostForm.Get(a.captcha.Field) != ""
		switch {
		case errors.Is(err, guard.ErrCaptchaRequired):
			msg, captcha = "Several sign-ins failed: please confirm you are human, then sign in.", true
		case errors.Is(err, guard.ErrUnavailable):
			status, msg = http.StatusServiceUnavailable, "Sign-in is unavailable right now. Please try again shortly."
		case errors.Is(err, guard.ErrSessionLimit):
			status, msg = http.StatusConflict, limitRefusedText(a.sessionLimit(r, tenant))
		case errors.Is(err, guard.ErrIPNotAllowed):
			status, msg = http.StatusForbidden, "Sign-in from your network address is not allowed by your organisation."
		case errors.Is(err, guard.ErrSSORequired):
			// Said for every refused password sign-in of such a
			// tenant, right password or wrong.
			status, msg = http.StatusForbidden, "Your organisation requires single sign-on: use \"Sign in with SSO\" below."
		case !errors.Is(err, guard.ErrInvalidCredentials):
			if m, ok := problem(err); ok {
				msg = m
			}
		}
		a.renderStatus(w, r, status, "login.html", view{Title: "Sign in", Error: msg, Tenant: tenant, Next: next,
			Data: loginView{Email: email, ShowCaptcha: captcha}})
		return
	}
	if res.Pending != nil {
		a.setPending(w, res.Pending, tenant, next)
		if res.Pending.Enrol {
			http.Redirect(w, r, "/login/enrol", http.StatusSeeOther)
			return
		}
		http.Redirect(w, r, "/login/mfa", http.StatusSeeOther)
		return
	}
	a.signedInAs(w, r, res, next)
}

// signedInAs hands the new session to the browser and sends it on.
func (a *app) signedInAs(w http.ResponseWriter, r *http.Request, res guard.LoginResult, next string) {
	a.newSession(w, r, res)
	http.Redirect(w, r, a.afterSignIn(w, r, res, next), http.StatusSeeOther)
}

// newSession hands the new session to the browser, first ending the one
// the browser had (perhaps someone else's): the cookie value it replaces
// is then no session (SECURITY-CHECKLIST SE-1). Every way a sign-in ends
// (password, second factor, enrolment at sign-in, SSO) goes through here,
// and ends any sign-in the browser left half-way (its pending cookie) and
// any password reset (the reset link's cookie, which would otherwise let
// the next person at a shared browser set the account's password).
func (a *app) newSession(w http.ResponseWriter, r *http.Request, res guard.LoginResult) {
	if p, ok := guard.PrincipalFrom(r.Context()); ok && p.Kind == guard.KindUser {
		if err := a.g.Logout(r.Context(), p); err != nil && !errors.Is(err, guard.ErrUnauthenticated) {
			a.logf("sign-in: the browser's earlier session could not be ended: %v", err)
		}
	}
	clearPending(w)
	clearCookie(w, resetCookie)
	a.g.SetSessionCookie(w, res.Token, res.Session)
}

// signedOut clears the browser's session cookie after a sign-out, and
// the cookies of any sign-in or password reset it left half-way.
func (a *app) signedOut(w http.ResponseWriter) {
	clearPending(w)
	clearCookie(w, resetCookie)
	a.g.ClearSessionCookie(w)
}

// afterSignIn sets the flash a new session calls for and returns where
// the user goes next: a password to change (PasswordExpired, which is the
// session's FlagPasswordExpired) or a factor to set up comes before next.
// Every way a sign-in ends (password, second factor, enrolment at
// sign-in, SSO) goes through here.
func (a *app) afterSignIn(w http.ResponseWriter, r *http.Request, res guard.LoginResult, next string) string {
	switch {
	case res.PasswordExpired || res.Session.Flags&guard.FlagPasswordExpired != 0:
		a.setFlash(w, "error", "Your password has expired: please choose a new one.")
		next = "/account"
	case res.Session.Flags&guard.FlagMustEnrol != 0:
		a.setFlash(w, "error", "Your organisation requires a second factor: please set one up now.")
		next = "/account"
	case res.RecoveryLeft != nil && res.RecoveryLeft.Low:
		a.setFlash(w, "error", "You used a recovery code and have few left: generate a new set in My account.")
	case res.Evicted > 0:
		a.setFlash(w, "ok", "Signed in. "+evictedText(res.Evicted, a.sessionLimit(r, res.User.Tenant)))
	}
	return next
}

// sessionLimit returns the tenant's session limit in force, 0 if unknown.
func (a *app) sessionLimit(r *http.Request, tenant string) int {
	pol, err := a.g.EffectivePolicy(r.Context(), tenant)
	if err != nil {
		return 0
	}
	return pol.SessionLimit
}

// evictedText says that n older sessions were ended for a new one, under
// a session limit of limit (0: not known).
func evictedText(n, limit int) string {
	ended := "Your oldest session was ended"
	if n > 1 {
		ended = "Your " + itoa(n) + " oldest sessions were ended"
	}
	switch limit {
	case 0:
		return ended + ": your organisation limits how many sessions a user may have."
	case 1:
		if n == 1 {
			ended = "Your other session was ended"
		}
		return ended + ": your organisation allows one session per user."
	}
	return ended + ": your organisation allows " + itoa(limit) + " sessions per user."
}

// limitRefusedText says why a sign-in beyond the session limit (under
// "refuse new sessions") was refused.
func limitRefusedText(limit int) string {
	switch limit {
	case 0:
		return "You have as many sessions open elsewhere as your organisation allows: sign out of one first."
	case 1:
		return "You are already signed in elsewhere, and your organisation allows one session per user: sign out there first."
	}
	return "You already have " + itoa(limit) + " sessions open elsewhere, the most your organisation allows: sign out of one first."
}

type mfaView struct {
	Factors  []pendingFactor
	HasTOTP  bool
	Method   string
	Sent     bool
	Recovery bool
}

func (a *app) mfaForm(w http.ResponseWriter, r *http.Request) {
	st, ok := a.pending(r)
	if !ok || st.Enrol {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	a.page(w, r, "mfa.html", view{Title: "Second factor", Data: a.mfaView(st, r.URL.Query().Get("method"))})
}

func (a *app) mfaView(st pendingState, method string) mfaView {
	v := mfaView{Factors: st.Factors, Method: method}
	for _, f := range st.Factors {
		if f.Kind == mfa.KindTOTP {
			v.HasTOTP = true
		}
	}
	if v.Method == "" {
		v.Method = guard.MethodTOTP
		if !v.HasTOTP {
			v.Method = guard.MethodCode
		}
	}
	return v
}

func (a *app) mfaSubmit(w http.ResponseWriter, r *http.Request) {
	st, ok := a.pending(r)
	if !ok {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	if !a.form(w, r) {
		return // answered: an unreadable form
	}
	method := r.PostForm.Get("method")
	res, err := a.g.CompleteLogin(r.Context(), guard.SecondFactor{Pending: st.Token, Method: method, Code: r.PostForm.Get("code"),
		IP: a.g.ClientIP(r), UserAgent: r.UserAgent()})
	switch {
	case errors.Is(err, guard.ErrLoginExpired):
		clearPending(w)
		a.renderStatus(w, r, http.StatusBadRequest, "login.html", view{Title: "Sign in", Error: "Your sign-in expired: please start again.",
			Tenant: st.Tenant, Next: localPath(st.Next), Data: loginView{}})
		return
	case errors.Is(err, guard.ErrSessionLimit):
		// The code was right, but the user has as many sessions as the
		// organisation allows ("refuse new sessions"): this sign-in ends,
		// refused as at the password step.
		a.limitRefused(w, r, st)
		return
	case errors.Is(err, guard.ErrInvalidCode):
		a.renderStatus(w, r, http.StatusBadRequest, "mfa.html", view{Title: "Second factor", Error: "That code was not accepted. Codes work once; wait for the next one if you just used it.",
			Data: a.mfaView(st, method)})
		return
	case err != nil:
		if msg, ok := problem(err); ok {
			a.renderStatus(w, r, http.StatusBadRequest, "mfa.html", view{Title: "Second factor", Error: msg, Data: a.mfaView(st, method)})
			return
		}
		a.failStep(w, r, err)
		return
	}
	if res.Pending != nil && res.Pending.Enrol {
		// The code was an email one (or a recovery code of a user whose
		// only factor is email), which the organisation's "require MFA"
		// does not accept alone: an authenticator app comes next.
		a.setPending(w, res.Pending, st.Tenant, st.Next)
		http.Redirect(w, r, "/login/enrol", http.StatusSeeOther)
		return
	}
	a.signedInAs(w, r, res, localPath(st.Next))
}

func (a *app) mfaSend(w http.ResponseWriter, r *http.Request) {
	st, ok := a.pending(r)
	if !ok {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	if !a.form(w, r) {
		return // answered: an unreadable form
	}
	err := a.g.SendLoginCode(r.Context(), st.Token, r.PostForm.Get("factor"), a.g.ClientIP(r), r.UserAgent())
	if errors.Is(err, guard.ErrLoginExpired) {
		clearPending(w)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	if err != nil {
		if msg, ok := problem(err); ok {
			a.renderStatus(w, r, http.StatusBadRequest, "mfa.html", view{Title: "Second factor", Error: msg, Data: a.mfaView(st, guard.MethodCode)})
			return
		}
		a.failStep(w, r, err)
		return
	}
	v := a.mfaView(st, guard.MethodCode)
	v.Sent = true
	a.page(w, r, "mfa.html", view{Title: "Second factor", Data: v})
}

// Enrolment during sign-in, when the organisation requires MFA and the
// user has no second factor yet.

func (a *app) enrolForm(w http.ResponseWriter, r *http.Request) {
	if st, ok := a.pending(r); !ok || !st.Enrol {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	a.page(w, r, "enrol.html", view{Title: "Set up a second factor", Data: enrolView{Action: "/login/enrol/begin"}})
}

type enrolView struct {
	Action   string // where the "start" button posts
	Confirm  string // where the confirmation posts
	FactorID string
	QR       template.URL
	Secret   string
	URI      string
	Kind     mfa.Kind
	Dest     string
	// Next is the Administration page the enrolment was started for
	// (accountView.Next), sent on with the confirmation.
	Next string
}

func (a *app) enrolBegin(w http.ResponseWriter, r *http.Request) {
	st, ok := a.pending(r)
	if !ok || !st.Enrol {
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	en, err := a.g.BeginPendingTOTP(r.Context(), st.Token, a.g.ClientIP(r), r.UserAgent(), "Authenticator app")
	if errors.Is(err, guard.ErrLoginExpired) {
		clearPending(w)
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	if err != nil {
		a.failStep(w, r, err)
		return
	}
	a.page(w, r, "enrol.html", view{Title: "Set up a second factor", Data: totpView(en, "/login/enrol/confirm")})
}

func totpView(en mfa.TOTPEnrolment, confirm string) enrolView {
	return enrolView{Confirm: confirm, FactorID: en.Factor.ID, Kind: mfa.KindTOTP, Secret: en.Secret, URI: en.URI,
		QR: template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(en.QRPNG))}
}

func (a *app) enrolConfirm(w http.ResponseWriter, r *http.Request) {
	st, ok := a.pending(r)
	if !ok || !st.Enrol {
		if a.enrolledTwice(w, r) {
			return
		}
		http.Redirect(w, r, "/login", http.StatusSeeOther)
		return
	}
	if !a.form(w, r) {
		return // answered: an unreadable form
	}
	res, err := a.g.CompletePendingEnrolment(r.Context(), guard.SecondFactor{Pending: st.Token, FactorID: r.PostForm.Get("factor"),
		Code: r.PostForm.Get("code"), IP: a.g.ClientIP(r), UserAgent: r.UserAgent()})
	a.enrolDone(w, r, st, res, err)
}

// enrolDone answers the confirmation of the factor enrolled at the
// pending sign-in st, with what CompletePendingEnrolment gave.
func (a *app) enrolDone(w http.ResponseWriter, r *http.Request, st pendingState, res guard.LoginResult, err error) {
	switch {
	case errors.Is(err, guard.ErrLoginExpired) && len(res.RecoveryCodes) == 0:
		// With codes, the app was confirmed before the sign-in was found
		// gone (it expired meanwhile): they are shown below. Without,
		// the sign-in expired, or this form was sent twice (a double
		// click) and the browser dropped the first answer: the app is
		// set up, the sign-in used up, and the session and recovery
		// codes that answer held went unseen. Guard answers both with
		// ErrLoginExpired: the page says how the user can tell them
		// apart (the next sign-in asks for the app's code), and what to
		// do then.
		clearPending(w)
		a.renderStatus(w, r, http.StatusBadRequest, "login.html", view{Title: "Sign in", Error: enrolEndedText,
			Tenant: st.Tenant, Next: localPath(st.Next), Data: loginView{}})
		return
	case errors.Is(err, guard.ErrInvalidCode):
		a.renderStatus(w, r, http.StatusBadRequest, "enrol.html", view{Title: "Set up a second factor",
			Error: "That code was not accepted: start again to get a new QR code.", Data: enrolView{Action: "/login/enrol/begin"}})
		return
	case errors.Is(err, guard.ErrSessionLimit) && len(res.RecoveryCodes) == 0:
		// The app is set up (Guard confirmed it, which ended the user's
		// sessions), but a session made since fills those the
		// organisation allows ("refuse new sessions"): this sign-in ends,
		// refused as at the other steps.
		a.forget(st.Tenant)
		a.limitRefused(w, r, st)
		return
	case err != nil && len(res.RecoveryCodes) > 0:
		// The app was added, with its recovery codes, but the sign-in
		// cannot finish and there is no session: the codes are shown
		// nowhere else, so now (the user's only copy), the continue
		// button going back to the sign-in with the new app. Beyond the
		// session limit (as above) the page says so, with 409; any other
		// failure (the sign-in expired meanwhile) says so in a flash.
		clearPending(w)
		a.forget(st.Tenant) // a second factor was added either way
		v := view{Title: "Your recovery codes", Data: codesView{Codes: res.RecoveryCodes, Next: signInAgain(st)}}
		status := http.StatusOK
		if errors.Is(err, guard.ErrSessionLimit) {
			status, v.Error = http.StatusConflict, limitRefusedText(a.sessionLimit(r, st.Tenant))
		} else {
			a.setFlash(w, "error", "Your authenticator app was added, but the sign-in could not finish: sign in again with it.")
		}
		a.renderStatus(w, r, status, "codes.html", v)
		return
	case err != nil:
		a.failStep(w, r, err)
		return
	}
	a.forget(res.User.Tenant)
	a.newSession(w, r, res)
	// The codes first; the continue button then goes where any other
	// sign-in would (a password to change comes first).
	next := a.afterSignIn(w, r, res, localPath(st.Next))
	if len(res.RecoveryCodes) == 0 {
		// Not the user's first factor (an email or SMS one came first,
		// with the codes, shown then): nothing to show, so no empty list
		// of codes; the sign-in goes on as any other.
		if !flashSet(w) {
			a.setFlash(w, "ok", "Authenticator app added: your sign-ins now ask for its code.")
		}
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	a.page(w, r, "codes.html", view{Title: "Your recovery codes", Data: codesView{Codes: res.RecoveryCodes, Next: next}})
}

// enrolEndedText says that the sign-in whose authenticator app was being
// confirmed has ended, and what to do if the app was set up by the same
// form sent before (a double click): its recovery codes went unseen.
const enrolEndedText = "This sign-in has ended: please sign in again. If it now asks for a code from your authenticator app, " +
	"the app was set up (the form was probably sent twice): if you did not see your recovery codes, generate a new set in My account."

// enrolledTwice answers a confirmation of the enrolment at sign-in that
// comes once the sign-in is over: the form sent twice (a double click),
// the browser holding the session the first answer set, whose page (the
// recovery codes) it dropped. When the browser is signed in as the user
// whose factor the form names, and that factor is set up, it shows the
// account page saying so, with the way to a new set of recovery codes
// (confirmedTwice), and reports true; otherwise it answers nothing and
// reports false.
func (a *app) enrolledTwice(w http.ResponseWriter, r *http.Request) bool {
	p, ok := guard.PrincipalFrom(r.Context())
	if !ok || p.Kind != guard.KindUser || r.ParseForm() != nil {
		return false
	}
	id := r.PostForm.Get("factor")
	fs, err := a.g.Factors(r.Context(), p, p.Tenant, p.UserID)
	if id == "" || err != nil || !slices.ContainsFunc(fs, func(f mfa.Factor) bool { return f.ID == id && f.Confirmed() }) {
		return false
	}
	a.confirmedTwice(w, r, "")
	return true
}

// limitRefused ends the pending sign-in st, whose second step Guard
// refused beyond the session limit (ErrSessionLimit), on the sign-in page
// with the refusal the password step gives.
func (a *app) limitRefused(w http.ResponseWriter, r *http.Request, st pendingState) {
	clearPending(w)
	a.renderStatus(w, r, http.StatusConflict, "login.html", view{Title: "Sign in", Error: limitRefusedText(a.sessionLimit(r, st.Tenant)),
		Tenant: st.Tenant, Next: localPath(st.Next), Data: loginView{}})
}

// signInAgain is the sign-in page that starts the pending sign-in st
// again, for the same page next.
func signInAgain(st pendingState) string {
	if next := localPath(st.Next); next != "/" {
		return "/login?next=" + url.QueryEscape(next)
	}
	return "/login"
}

type codesView struct {
	Codes []string
	Next  string
}

// logout ends the session. A session opened by single sign-on ends at
// the IdP too, when it has a single logout endpoint: Guard's session ends
// first, then the browser goes to the IdP, which comes back to
// /saml/{tenant}/slo (an answer bound to this browser by sloCookie).
// That step is a page (a link, followed at once), not a redirect: the
// sign-out form may only post to this site (CSP form-action 'self'),
// which browsers also apply to its redirects.
func (a *app) logout(w http.ResponseWriter, r *http.Request) {
	binding := newBinding() // ties the IdP's answer to this browser (sloCookie)
	idp, err := a.g.LogoutSSO(r.Context(), principal(r), sloReturn("/login", binding))
	if err != nil && !errors.Is(err, guard.ErrUnauthenticated) {
		a.fail(w, r, err, "/")
		return
	}
	a.signedOut(w)
	if idp != "" {
		setSLOBinding(w, binding, int(bindingTTL/time.Second))
		a.page(w, r, "leaving.html", view{Title: "Signing out", SignedOut: true, Data: idp}) // html/template filters the URL
		return
	}
	a.setFlash(w, "ok", "Signed out.")
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// logoutAny is POST /logout: logout for a signed-in session, and, when
// the cookie's token no longer authenticates because another tab (or an
// API client holding the same token) rotated the session since, a sign-out
// with that token all the same (Guard's LogoutToken), which ends the
// session it was rotated to. Without a token that names anything, it is
// the sign-in redirect signedIn gives. (A session ended that way does not
// go on to the IdP's single logout: the principal it would name it by is
// that of the rotated session, which the token no longer yields.)
func (a *app) logoutAny() http.Handler {
	signed := a.signedIn(a.logout)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if p, ok := guard.PrincipalFrom(r.Context()); ok && p.Kind == guard.KindUser {
			signed.ServeHTTP(w, r)
			return
		}
		tok, ok := a.g.SessionToken(r)
		if !ok || isAPI(r) {
			signed.ServeHTTP(w, r)
			return
		}
		if !a.logoutToken(w, r, tok) {
			signed.ServeHTTP(w, r)
		}
	})
}

// logoutToken ends the session of tok, the browser's session cookie, with
// LogoutToken (which follows a rotation and applies no allow-list),
// clears the cookie and sends the browser to sign in; a store failure is
// answered as one. It reports false, having answered nothing, when tok
// ends no session (ErrUnauthenticated).
func (a *app) logoutToken(w http.ResponseWriter, r *http.Request, tok string) bool {
	switch err := a.g.LogoutToken(r.Context(), tok, a.g.ClientIP(r), r.UserAgent()); {
	case errors.Is(err, guard.ErrUnauthenticated):
		return false
	case err != nil:
		a.fail(w, r, err, "/")
		return true
	}
	a.signedOut(w)
	a.ok(w, r, "/login", "Signed out.")
	return true
}

// Forgotten passwords. The reset link carries tenant, user and token in
// its query; GET /reset moves them at once into a short-lived cookie and
// redirects to the bare /reset, so the token leaves the address bar and
// the history and is never sent in a Referer (the page also sends
// Referrer-Policy: no-referrer). A sign-in or sign-out in the browser
// clears that cookie (newSession, signedOut): a reset left half-way must
// not pass to the next person at a shared browser.

const resetCookie = "__Host-reset"

// forgotView is the forgotten-password page: the form, with the address
// typed when it is shown again with an error, or once sent the note that
// a link went out if the account exists.
type forgotView struct {
	Email string
	Sent  bool
}

func (a *app) forgotForm(w http.ResponseWriter, r *http.Request) {
	a.page(w, r, "forgot.html", view{Title: "Forgot your password?", Data: forgotView{}})
}

func (a *app) forgot(w http.ResponseWriter, r *http.Request) {
	if !a.form(w, r) {
		return
	}
	tenant, email := r.PostForm.Get("tenant"), r.PostForm.Get("email")
	err := a.g.ForgotPassword(r.Context(), guard.ForgotRequest{Tenant: tenant, Email: email, IP: a.g.ClientIP(r),
		UserAgent: r.UserAgent(), Captcha: r.PostForm.Get(a.captcha.Field)})
	if err != nil {
		msg, ok := problem(err)
		if !ok {
			a.fail(w, r, err, "/forgot")
			return
		}
		a.renderStatus(w, r, http.StatusBadRequest, "forgot.html", view{Title: "Forgot your password?", Error: msg, Tenant: tenant,
			Data: forgotView{Email: email}})
		return
	}
	a.page(w, r, "forgot.html", view{Title: "Check your email", Tenant: tenant, Data: forgotView{Sent: true}})
}

func (a *app) resetForm(w http.ResponseWriter, r *http.Request) {
	if linkToCookie(w, r, resetCookie, "/reset", "tenant", "user", "token", "invite") {
		return
	}
	v, ok := resetParams(r)
	if !ok {
		a.renderStatus(w, r, http.StatusBadRequest, "reset.html", view{Title: "Reset your password", Error: "This reset link is invalid or has expired: ask for a new one."})
		return
	}
	a.page(w, r, "reset.html", view{Title: resetTitle(v), Data: true})
}

// resetTitle is the heading of the reset page: an invitation (its link
// carries invite=1, inviteMail) sets a first password.
func resetTitle(v url.Values) string {
	if v.Get("invite") == "1" {
		return "Choose your password"
	}
	return "Choose a new password"
}

func resetParams(r *http.Request) (url.Values, bool) { return cookieParams(r, resetCookie) }

// linkToCookie moves the parameters keys of a mailed link (a request with
// a token) out of the URL, the history and any Referer: into the
// short-lived cookie name, then back to path without them. It reports
// whether it answered.
func linkToCookie(w http.ResponseWriter, r *http.Request, name, path string, keys ...string) bool {
	q := r.URL.Query()
	if !q.Has("token") {
		return false
	}
	v := url.Values{}
	for _, k := range keys {
		v.Set(k, q.Get(k))
	}
	http.SetCookie(w, &http.Cookie{Name: name, Value: base64.RawURLEncoding.EncodeToString([]byte(v.Encode())), Path: "/",
		MaxAge: 15 * 60, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
	http.Redirect(w, r, path, http.StatusSeeOther)
	return true
}

// clearCookie ends the cookie name of linkToCookie.
func clearCookie(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
}

// cookieParams reads the link parameters a page moved into the cookie
// name; ok is false without a token among them.
func cookieParams(r *http.Request, name string) (url.Values, bool) {
	c, err := r.Cookie(name)
	if err != nil {
		return nil, false
	}
	b, err := base64.RawURLEncoding.DecodeString(c.Value)
	if err != nil {
		return nil, false
	}
	v, err := url.ParseQuery(string(b))
	return v, err == nil && v.Get("token") != ""
}

func (a *app) reset(w http.ResponseWriter, r *http.Request) {
	v, ok := resetParams(r)
	if !ok {
		a.renderStatus(w, r, http.StatusBadRequest, "reset.html", view{Title: "Reset your password", Error: "This reset link is invalid or has expired: ask for a new one."})
		return
	}
	if !a.form(w, r) {
		return // answered: an unreadable form
	}
	if r.PostForm.Get("password") != r.PostForm.Get("confirm") {
		a.renderStatus(w, r, http.StatusBadRequest, "reset.html", view{Title: resetTitle(v), Error: "The two passwords differ.", Data: true})
		return
	}
	err := a.g.ResetPassword(r.Context(), guard.ResetRequest{Tenant: v.Get("tenant"), UserID: v.Get("user"), Token: v.Get("token"),
		NewPassword: r.PostForm.Get("password"), IP: a.g.ClientIP(r), UserAgent: r.UserAgent(), Captcha: r.PostForm.Get(a.captcha.Field)})
	switch {
	case errors.Is(err, guard.ErrInvalidResetToken):
		clearCookie(w, resetCookie)
		a.renderStatus(w, r, http.StatusBadRequest, "reset.html", view{Title: "Reset your password", Error: "This reset link is invalid or has expired: ask for a new one."})
		return
	case err != nil:
		msg, ok := problem(err)
		if !ok {
			a.fail(w, r, err, "/reset")
			return
		}
		a.renderStatus(w, r, http.StatusBadRequest, "reset.html", view{Title: resetTitle(v), Error: msg, Data: true})
		return
	}
	clearCookie(w, resetCookie)
	if v.Get("invite") == "1" {
		a.setFlash(w, "ok", "Your password is set. Sign in with it.")
	} else {
		a.setFlash(w, "ok", "Your password was changed and your other sessions were ended. Sign in with the new password.")
	}
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}
