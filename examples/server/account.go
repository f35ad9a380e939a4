package main

import (
	"errors"
	"net/http"
	"net/url"
	"strings"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/session"
)

type accountView struct {
	Factors      []mfa.Factor
	HasTOTP      bool
	Recovery     mfa.RecoveryResult
	Sessions     []session.Session
	Current      string
	Roles        []string
	MFAAvailable bool
	// AdminMFA: an Administration page sent the user here to set up an
	// authenticator app (needMFA); Next is that page, where they go back
	// once they confirmed it is them with the app (StepUp).
	AdminMFA bool
	Next     string
	// Typed is what the user typed in the form refused on the page shown
	// again: never a password or a code.
	Typed accountForms
	// ConfirmedTwice: the page answers the confirmation of a factor
	// confirmed already, most often the form sent twice (a double click),
	// whose first answer the browser dropped, and with it the recovery
	// codes of a first factor, shown nowhere else (confirmedTwice). The
	// page says so beside the button for a new set.
	ConfirmedTwice bool
}

// accountForms are the addresses typed in the account page's forms.
type accountForms struct {
	NewEmail string // the email change
	OOBEmail string // the address for email codes
	OOBPhone string // the number for SMS codes
}

// StepUp is the step-up that comes back to Next.
func (v accountView) StepUp() string { return stepUpURL(v.Next) }

// stepUpURL is the step-up page for the Administration pages, coming back
// to next.
func stepUpURL(next string) string { return "/reauth?mfa=1&next=" + url.QueryEscape(localPath(next)) }

// accountURL is the account page asking to set up an authenticator app
// for the Administration page next, or the plain account page.
func accountURL(next string) string {
	if next == "" {
		return "/account"
	}
	return "/account?mfa=1&next=" + url.QueryEscape(localPath(next))
}

func (a *app) account(w http.ResponseWriter, r *http.Request) {
	v := accountView{}
	if q := r.URL.Query(); q.Get("mfa") == "1" {
		v.AdminMFA, v.Next = true, localPath(q.Get("next"))
	}
	a.renderAccount(w, r, http.StatusOK, "", v)
}

// refuseOnAccount shows the account page again for a form refused with
// err, holding what was typed; an error problem does not word goes to
// fail.
func (a *app) refuseOnAccount(w http.ResponseWriter, r *http.Request, err error, typed accountForms) {
	msg, ok := problem(err)
	if !ok {
		a.fail(w, r, err, "/account")
		return
	}
	a.renderAccount(w, r, http.StatusBadRequest, msg, accountView{Typed: typed})
}

// renderAccount shows the signed-in user's account page, v holding what
// the request sets (AdminMFA and Next, Typed), with msg as its error.
func (a *app) renderAccount(w http.ResponseWriter, r *http.Request, status int, msg string, v accountView) {
	p := principal(r)
	ctx := r.Context()
	v.Current, v.MFAAvailable = p.SessionID(), true
	fs, err := a.g.Factors(ctx, p, p.Tenant, p.UserID)
	switch {
	case errors.Is(err, guard.ErrMFANotConfigured):
		v.MFAAvailable = false
	case err != nil:
		a.fail(w, r, err, "/account")
		return
	}
	for _, f := range fs {
		if f.Confirmed() {
			v.Factors = append(v.Factors, f)
			if f.Kind == mfa.KindTOTP {
				v.HasTOTP = true
			}
		}
	}
	if v.MFAAvailable {
		if v.Recovery, err = a.g.RecoveryCodesLeft(ctx, p); err != nil {
			a.fail(w, r, err, "/account")
			return
		}
	}
	if v.Sessions, err = a.g.UserSessions(ctx, p, p.Tenant, p.UserID); err != nil {
		a.fail(w, r, err, "/account")
		return
	}
	if v.Roles, err = a.g.RolesOf(ctx, p, p.Tenant, "user:"+p.UserID); err != nil && !errors.Is(err, guard.ErrRolesNotConfigured) {
		a.fail(w, r, err, "/account")
		return
	}
	a.renderStatus(w, r, status, "account.html", view{Title: "My account", Nav: "account", Error: msg, Data: v})
}

func (a *app) changePassword(w http.ResponseWriter, r *http.Request) {
	if !a.form(w, r) {
		return
	}
	p := principal(r)
	if r.PostForm.Get("new") != r.PostForm.Get("confirm") {
		a.setFlash(w, "error", "The two new passwords differ.")
		http.Redirect(w, r, "/account", http.StatusSeeOther)
		return
	}
	// The session gets a new token, and loses FlagPasswordExpired if
	// it had it.
	tok, _ := a.g.SessionToken(r)
	nt, s, err := a.g.ChangePasswordAndRotate(r.Context(), p, tok, guard.PasswordChange{Current: r.PostForm.Get("current"), New: r.PostForm.Get("new"),
		Captcha: r.PostForm.Get(a.captcha.Field)})
	if errors.Is(err, guard.ErrInvalidCredentials) {
		a.setFlash(w, "error", "Your current password is not right.")
		http.Redirect(w, r, "/account", http.StatusSeeOther)
		return
	}
	if err != nil {
		a.failOr(w, r, err, "/account")
		return
	}
	a.g.SetSessionCookie(w, nt, s)
	a.ok(w, r, "/account", "Password changed. Your other sessions were ended.")
}

// requestEmailChange mails a confirmation link to the new address; the
// address changes when the link comes back (confirmEmail).
func (a *app) requestEmailChange(w http.ResponseWriter, r *http.Request) {
	if !a.form(w, r) {
		return
	}
	email := r.PostForm.Get("email")
	if err := a.g.RequestEmailChange(r.Context(), principal(r), email); err != nil {
		a.refuseOnAccount(w, r, err, accountForms{NewEmail: email})
		return
	}
	// Guard answers the same when it sent no link (the address is another
	// user's, who gets a notice instead, or too many went to it this
	// hour): the page cannot promise one went out.
	a.ok(w, r, "/account", "We sent a link to %s: open it to confirm the new address. Until then, sign in with the current one. "+
		"If none arrives, the address may already be in use, or too many links may have gone to it in the last hour.", strings.TrimSpace(email))
}

const emailCookie = "__Host-email-change"

// emailConfirmForm takes the link of an email-change email: its
// parameters go into a short-lived cookie at once (out of the URL, the
// history and any Referer), then the page asks to confirm.
func (a *app) emailConfirmForm(w http.ResponseWriter, r *http.Request) {
	if linkToCookie(w, r, emailCookie, "/email/confirm", "tenant", "user", "email", "token") {
		return
	}
	v, ok := cookieParams(r, emailCookie)
	if !ok {
		a.renderStatus(w, r, http.StatusBadRequest, "emailconfirm.html", view{Title: "Confirm your new email address", Error: "This link is invalid or has expired."})
		return
	}
	a.page(w, r, "emailconfirm.html", view{Title: "Confirm your new email address", Data: v.Get("email")})
}

func (a *app) confirmEmail(w http.ResponseWriter, r *http.Request) {
	v, ok := cookieParams(r, emailCookie)
	if !ok {
		a.renderStatus(w, r, http.StatusBadRequest, "emailconfirm.html", view{Title: "Confirm your new email address", Error: "This link is invalid or has expired."})
		return
	}
	if !a.form(w, r) {
		return // answered: an unreadable form
	}
	err := a.g.ConfirmEmailChange(r.Context(), guard.EmailChangeConfirm{Tenant: v.Get("tenant"), UserID: v.Get("user"), Email: v.Get("email"),
		Token: v.Get("token"), IP: a.g.ClientIP(r), UserAgent: r.UserAgent()})
	clearCookie(w, emailCookie)
	switch {
	case errors.Is(err, guard.ErrInvalidEmailChange):
		a.renderStatus(w, r, http.StatusBadRequest, "emailconfirm.html", view{Title: "Confirm your new email address", Error: "This link is invalid or has expired: ask for a new one from your account page."})
		return
	case err != nil:
		if msg, ok := problem(err); ok {
			a.renderStatus(w, r, http.StatusConflict, "emailconfirm.html", view{Title: "Confirm your new email address", Error: msg})
			return
		}
		a.fail(w, r, err, "/email/confirm")
		return
	}
	// Every session of the user ended with the change: this browser's
	// too when it is theirs. A browser signed in as someone else, where
	// the link was opened, keeps its session.
	if p, ok := guard.PrincipalFrom(r.Context()); ok && p.Tenant == v.Get("tenant") && p.UserID == v.Get("user") {
		a.g.ClearSessionCookie(w)
	}
	a.setFlash(w, "ok", "Your email address is now "+v.Get("email")+". Sign in with it.")
	http.Redirect(w, r, "/login", http.StatusSeeOther)
}

// beginTOTP shows the QR code of a new authenticator app. A form sent
// from the account page that an Administration page sent the user to
// carries that page (next): the confirmation goes on to the step-up that
// comes back to it.
func (a *app) beginTOTP(w http.ResponseWriter, r *http.Request) {
	if !a.form(w, r) {
		return
	}
	next := r.PostForm.Get("next")
	if next != "" {
		next = localPath(next)
	}
	en, err := a.g.BeginTOTP(r.Context(), principal(r), "Authenticator app")
	if err != nil {
		a.failOr(w, r, err, accountURL(next))
		return
	}
	v := totpView(en, "/account/mfa/confirm")
	v.Next = next
	a.page(w, r, "enrol.html", view{Title: "Set up an authenticator app", Nav: "account", Data: v})
}

func (a *app) beginOOB(w http.ResponseWriter, r *http.Request) {
	if !a.form(w, r) {
		return
	}
	kind := mfa.Kind(r.PostForm.Get("kind"))
	if kind != mfa.KindEmail && kind != mfa.KindSMS {
		a.errorPage(w, r, http.StatusBadRequest, "Bad request", "Unknown kind of factor.")
		return
	}
	dest := strings.TrimSpace(r.PostForm.Get("destination"))
	name, typed := "email", accountForms{OOBEmail: r.PostForm.Get("destination")}
	if kind == mfa.KindSMS {
		dest = phoneNumber(dest)
		name, typed = "SMS", accountForms{OOBPhone: r.PostForm.Get("destination")}
	}
	// The default label ("Phone ending 0123", "Email a…@example.com"):
	// it is shown at the second step of a sign-in, to whoever has the
	// password, so it does not hold the whole destination; and it fits
	// the label's limit however long the address is.
	f, err := a.g.BeginOOB(r.Context(), principal(r), kind, dest, "")
	if err != nil {
		a.refuseOnAccount(w, r, err, typed)
		return
	}
	a.page(w, r, "enrol.html", view{Title: "Confirm your " + name + " factor", Nav: "account",
		Data: enrolView{Confirm: "/account/mfa/confirm", FactorID: f.ID, Kind: kind, Dest: dest}})
}

func (a *app) confirmFactor(w http.ResponseWriter, r *http.Request) {
	if !a.form(w, r) {
		return
	}
	codes, err := a.g.ConfirmFactor(r.Context(), principal(r), r.PostForm.Get("factor"), r.PostForm.Get("code"))
	a.forget(principal(r).Tenant)
	next, then := r.PostForm.Get("next"), "/account"
	if next != "" {
		// An Administration page is waiting: the new app is not yet a
		// second factor this session passed; the step-up makes it one.
		then = stepUpURL(next)
	}
	if errors.Is(err, guard.ErrInvalidCode) {
		a.setFlash(w, "error", "That code was not accepted: set the factor up again.")
		http.Redirect(w, r, accountURL(next), http.StatusSeeOther)
		return
	}
	if errors.Is(err, guard.ErrConflict) {
		// Confirmed already (Guard checks no code then, records
		// nothing): not someone else's change, but this form sent twice.
		a.confirmedTwice(w, r, next)
		return
	}
	if err != nil {
		a.failOr(w, r, err, accountURL(next))
		return
	}
	if len(codes) > 0 {
		a.page(w, r, "codes.html", view{Title: "Your recovery codes", Nav: "account", Data: codesView{Codes: codes, Next: then}})
		return
	}
	a.ok(w, r, then, "Second factor added.")
}

// confirmedTwice answers the confirmation of a factor of the signed-in
// user confirmed already: a double click sends the form twice, and the
// browser shows the second answer, so the first one's recovery codes (a
// first factor's, shown once) went unseen. The account page, with 409,
// says that the factor is set up and offers a new set of codes beside it
// (ConfirmedTwice; RegenerateRecoveryCodes, which voids the unseen set,
// through the step-up when the sign-in is no longer recent). next is the
// Administration page the factor was set up for ("" none): the page keeps
// the way on to it.
func (a *app) confirmedTwice(w http.ResponseWriter, r *http.Request, next string) {
	v := accountView{ConfirmedTwice: true}
	if next != "" {
		v.AdminMFA, v.Next = true, localPath(next)
	}
	a.renderAccount(w, r, http.StatusConflict, "", v)
}

func (a *app) removeOwnFactor(w http.ResponseWriter, r *http.Request) {
	if !a.form(w, r) {
		return
	}
	p := principal(r)
	err := a.g.RemoveFactor(r.Context(), p, p.Tenant, p.UserID, r.PostForm.Get("factor"))
	a.forget(p.Tenant)
	if err != nil {
		a.failOr(w, r, err, "/account")
		return
	}
	a.ok(w, r, "/account", "Second factor removed.")
}

// regenerateRecovery gives the signed-in user a new set of recovery codes
// and shows it. A double click sends the form twice, and the browser
// shows the second answer: when that one's RegenerateRecoveryCodes lost
// to the first's (ErrConflict, recorded as such), the set that stands
// was shown only in the answer the browser dropped. So on ErrConflict it
// asks once more, and the new set, shown here, replaces the unseen one;
// once, not in a loop: a second conflict, or any other failure, is
// shown as usual (failOr), and the set that stands is then one the user
// did not see (the account page's button gives a new one). A form that
// names the Administration page the user was on the way to (next: the
// sent-twice answer of a confirmation for one, confirmedTwice) gets a
// Continue to its step-up, as the first answer's codes had.
func (a *app) regenerateRecovery(w http.ResponseWriter, r *http.Request) {
	if !a.form(w, r) {
		return
	}
	next, then := r.PostForm.Get("next"), "/account"
	if next != "" {
		then = stepUpURL(next)
	}
	codes, err := a.g.RegenerateRecoveryCodes(r.Context(), principal(r))
	if errors.Is(err, guard.ErrConflict) {
		codes, err = a.g.RegenerateRecoveryCodes(r.Context(), principal(r))
	}
	if err != nil {
		a.failOr(w, r, err, accountURL(next))
		return
	}
	a.page(w, r, "codes.html", view{Title: "Your new recovery codes", Nav: "account", Data: codesView{Codes: codes, Next: then}})
}

func (a *app) revokeOwnSession(w http.ResponseWriter, r *http.Request) {
	if !a.form(w, r) {
		return
	}
	p := principal(r)
	id := r.PostForm.Get("session")
	err := a.g.RevokeSession(r.Context(), p, p.Tenant, p.UserID, id)
	switch {
	case errors.Is(err, session.ErrNotFound) && id != p.SessionID():
		// Ended already (signed out there, expired), or not one of
		// yours: nothing was ended, and the page says so.
		a.ok(w, r, "/account", "That session had already ended.")
		return
	case err != nil && !errors.Is(err, session.ErrNotFound):
		a.failOr(w, r, err, "/account")
		return
	}
	if id == p.SessionID() {
		a.signedOut(w)
		a.ok(w, r, "/login", "Signed out.")
		return
	}
	a.ok(w, r, "/account", "Session ended.")
}

func (a *app) revokeOtherSessions(w http.ResponseWriter, r *http.Request) {
	p := principal(r)
	n, err := a.g.RevokeUserSessions(r.Context(), p, p.Tenant, p.UserID)
	if err != nil {
		a.failOr(w, r, err, "/account")
		return
	}
	a.ok(w, r, "/account", "Signed out of %d other session(s).", n)
}

// The step-up: sensitive actions need an authentication within the last
// 15 minutes (Config.StepUpWindow); older sessions are sent here, and come
// back to the page they came from with a new session token.

type reauthView struct {
	NeedTOTP bool
	// AdminMFA: an Administration page sent the user here because the
	// session has not passed a second factor (needMFA): the step-up with
	// the authenticator app makes it one, and so does a new SSO sign-in
	// with two steps at the IdP when the tenant's connection trusts them
	// (SSOMFA); a plain SSO sign-in would not, so it is not offered.
	AdminMFA bool
	// SSOMFA: the session was opened by single sign-on, and the tenant's
	// IdP connection lists its multi-factor contexts.
	SSOMFA bool
	// SSO: the session was opened by single sign-on; a new sign-in at
	// the IdP is a recent authentication too (the only one for a user
	// whose password is no proof).
	SSO bool
	// NoPassword: the user's password is no proof here (passwordUsable):
	// they have none, or the tenant requires single sign-on and they are
	// not its break-glass owner. The page offers no password form.
	NoPassword bool
	// ShowCaptcha: the step-up was refused for want of a CAPTCHA (after
	// several failures, as on the sign-in form), or refused again after
	// the user was asked: the form shows it.
	ShowCaptcha bool
	// Kept is the form the step-up interrupted, which the step-up form
	// carries (stepupform.go); its zero value, none.
	Kept resumeView
}

// passwordUsable reports whether the password of u proves who they are
// in a step-up under the tenant's policy pol: they have one, and the
// tenant does not require single sign-on or u is its break-glass owner
// (Reauthenticate refuses everyone else's with ErrSSORequired).
func passwordUsable(u guard.User, pol guard.Policy) bool {
	return u.HasPassword && (!pol.RequireSSO || u.ID == pol.BreakGlassUser)
}

func (a *app) reauthForm(w http.ResponseWriter, r *http.Request) {
	if v, ok := a.reauthPage(w, r, localPath(r.URL.Query().Get("next")), r.URL.Query().Get("mfa") == "1", false, resumeView{}); ok {
		a.page(w, r, "reauth.html", v)
	}
}

// reauthPage builds the step-up page of the signed-in user, the one place
// that decides what it offers (their password, with a code from their
// authenticator app, or a new sign-in at the IdP): the form and the page
// a refused proof shows again are the same. adminMFA: an Administration
// page asked for a second factor (stepUpURL); captcha: the form shows the
// CAPTCHA; kept: the form the step-up interrupted, which the form carries
// (stepupform.go). ok is false when it answered instead: a failure, or a
// user without an authenticator app sent to set one up for adminMFA.
func (a *app) reauthPage(w http.ResponseWriter, r *http.Request, next string, adminMFA, captcha bool, kept resumeView) (view, bool) {
	p := principal(r)
	fs, err := a.g.Factors(r.Context(), p, p.Tenant, p.UserID)
	if err != nil && !errors.Is(err, guard.ErrMFANotConfigured) {
		a.fail(w, r, err, "/")
		return view{}, false
	}
	u, err := a.g.User(r.Context(), p, p.Tenant, p.UserID)
	if err != nil {
		a.fail(w, r, err, "/")
		return view{}, false
	}
	pol, err := a.g.EffectivePolicy(r.Context(), p.Tenant)
	if err != nil {
		a.fail(w, r, err, "/")
		return view{}, false
	}
	v := reauthView{NeedTOTP: hasTOTP(fs), SSO: p.Flags&guard.FlagSSO != 0, NoPassword: !passwordUsable(u, pol),
		AdminMFA: adminMFA, ShowCaptcha: captcha, Kept: kept}
	if v.SSO && v.AdminMFA {
		if v.SSOMFA, err = a.ssoMFA(r.Context(), p.Tenant); err != nil {
			a.fail(w, r, err, "/")
			return view{}, false
		}
	}
	if v.AdminMFA && v.NoPassword && !v.SSOMFA {
		v.AdminMFA = false // needMFA says why this cannot help; the plain step-up stays
	}
	if v.AdminMFA && !v.NeedTOTP && !v.SSOMFA {
		// No authenticator app (any more): set one up first.
		http.Redirect(w, r, accountURL(next)+"#mfa", http.StatusSeeOther)
		return view{}, false
	}
	return view{Title: "Confirm your identity", Next: next, Me: &u, Data: v}, true
}

func (a *app) reauth(w http.ResponseWriter, r *http.Request) {
	if !a.form(w, r) {
		return
	}
	p := principal(r)
	next := localPath(r.PostForm.Get("next"))
	kept := a.keptFrom(r.PostForm)
	tok, _ := a.g.SessionToken(r)
	adminMFA := r.PostForm.Get("mfa") == "1"
	nt, s, err := a.g.Reauthenticate(r.Context(), p, tok, guard.Proof{Password: r.PostForm.Get("password"),
		TOTP: r.PostForm.Get("totp"), Captcha: r.PostForm.Get(a.captcha.Field)})
	// A wrong proof, a missing CAPTCHA, bad input (an over-long password)
	// as on the sign-in form, or a password that is no proof any more (a
	// form shown before the organisation required single sign-on), is
	// said on the step-up page; anything else is the server's.
	// The form shows the CAPTCHA when Guard asks for it, and keeps it
	// once the user was asked, as the sign-in form does.
	// A refused proof is 400, as bad input is (see renderStatus).
	status, captcha := http.StatusBadRequest, r.PostForm.Get(a.captcha.Field) != ""
	msg, onForm := problem(err) // nil: "", false
	switch {
	case errors.Is(err, guard.ErrInvalidCredentials):
		msg, onForm = "That was not right. Please try again.", true
	case errors.Is(err, guard.ErrCaptchaRequired):
		msg, onForm, captcha = "Several attempts failed: please confirm you are human, then try again.", true, true
	case errors.Is(err, guard.ErrSSORequired):
		status, msg, onForm = http.StatusForbidden, "Your organisation requires single sign-on: confirm it is you by signing in again with SSO.", true
	}
	if onForm {
		if v, ok := a.reauthPage(w, r, next, adminMFA, captcha, kept); ok {
			v.Error = msg
			a.renderStatus(w, r, status, "reauth.html", v)
		}
		return
	}
	if errors.Is(err, guard.ErrUnauthenticated) {
		// The token no longer signs in. Most often the same form was
		// submitted twice: both requests passed the session check, the
		// other one renewed the session first, and its answer set the
		// cookie to the new token. This answer must not clear that
		// cookie (a.fail would): it sends the browser on to next, whose
		// session check lets the new token through, and sends a session
		// that really ended to sign in.
		http.Redirect(w, r, next, http.StatusSeeOther)
		return
	}
	if err != nil {
		a.fail(w, r, err, next)
		return
	}
	a.g.SetSessionCookie(w, nt, s)
	msg = "Identity confirmed: you can go on for the next 15 minutes."
	if s.Flags&guard.FlagMFA != 0 && adminMFA {
		msg = "Identity confirmed with your authenticator app: Administration is open for this session."
	}
	if kept.Path != "" {
		// The form the step-up interrupted: Continue sends it.
		a.page(w, r, "resume.html", view{Title: "Identity confirmed", Next: next, Flash: &flash{Kind: "ok", Message: msg}, Data: kept})
		return
	}
	a.ok(w, r, next, "%s", msg)
}

// phoneNumber drops what people type to group the digits of a phone
// number (spaces, dashes, dots, parentheses), so that "+44 7700 900123",
// as the form's placeholder shows it, is the E.164 number the library
// takes. Anything else is left for the library to refuse.
func phoneNumber(s string) string {
	return strings.Map(func(r rune) rune {
		switch r {
		case ' ', '\t', '-', '.', '(', ')', '\u00a0':
			return -1
		}
		return r
	}, s)
}
