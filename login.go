package guard

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/session"
	"github.com/guardhq/guard/sso"
)

// MaxPasswordBytes is the longest password accepted anywhere, checked
// before any hashing so an over-long input costs nothing.
const MaxPasswordBytes = 1024

// LoginRequest is one password login attempt.
type LoginRequest struct {
	Tenant   string
	Email    string
	Password string
	// IP and UserAgent of the client, for throttling and audit. An empty IP
	// skips per-IP throttling (for logins that do not come over a network);
	// for an HTTP request pass ClientIP(r), which is never empty.
	// A pending login (second factor) is bound to the UserAgent.
	IP        string
	UserAgent string
	// Captcha is the client's CAPTCHA token. It is needed (when
	// Config.Captcha is set) once the account has Config.CaptchaAfter, or
	// the client IP Config.CaptchaAfterIP, recent failures, and once either
	// has been locked, until its failures are forgotten (while it is
	// locked too: a CAPTCHA is asked before the lock is answered): without
	// one the attempt fails with ErrCaptchaRequired and is not counted;
	// with a token the provider refuses it fails so and counts as a
	// failure (no failure is counted while locked). One whose token the
	// provider could not check (auth.CaptchaUnavailable,
	// auth.CaptchaMisconfigured, auth.CaptchaMalformed: an outage) fails
	// with ErrCaptchaRequired too, and is not counted.
	Captcha string
}

// LoginResult is the outcome of a successful sign-in step: either a
// session (Token, Session) or, when a second step is due, Pending.
type LoginResult struct {
	// Token is the session token to hand to the client (SetSessionCookie);
	// empty when Pending is set.
	Token   string
	Session session.Session
	User    User
	// Pending is set when the first factor was right but the sign-in needs
	// a second step: a second factor (CompleteLogin), or enrolling one when
	// the tenant requires MFA (BeginPendingTOTP, CompletePendingEnrolment).
	// No session exists yet.
	Pending *Pending
	// Evicted is the number of the user's older sessions ended by the
	// concurrent-session limit.
	Evicted int
	// PasswordExpired reports that the password must be changed: an
	// administrator marked it compromised (ExpirePassword), it is older
	// than the tenant's PasswordMaxAge, or it is on the blocklist of common
	// passwords (one set before the list held it, or imported); the
	// session carries FlagPasswordExpired, and may do nothing but change
	// it (ChangePasswordAndRotate), sign out and see its own account.
	PasswordExpired bool
	// RecoveryCodes are the user's new recovery codes, set once, when the
	// sign-in enrolled their first factor: show them once. They are set
	// with an error too, when a step after the enrolment failed (the
	// factor stands, see CompletePendingEnrolment): show them then as well.
	RecoveryCodes []string
	// RecoveryLeft is set when the sign-in used a recovery code: the codes
	// left, and whether that is few enough to generate a new set.
	RecoveryLeft *mfa.RecoveryResult
}

// Pending is a sign-in waiting for its second step. Its token opens
// nothing: it only finds the pending sign-in again, from the same client
// (user agent), within its lifetime.
type Pending struct {
	Token     string
	ExpiresAt time.Time
	// Enrol reports that the user has no second factor and the tenant
	// requires one: the user must enrol one before getting a session.
	Enrol bool
	// Factors are the user's confirmed factors to choose from (without
	// secrets); recovery codes can always be used instead. The sign-in has
	// proved only the password, so an email or SMS factor's Destination is
	// masked by mfa.MaskDestination ("…0123" for a phone number,
	// "a…@example.com" for an address): the whole number would tell
	// whoever has the password which line to take over. Label is the one
	// the user gave, shown as it is (the default label is masked the same
	// way): a host that labels factors should not put the destination in
	// them. LastStep, KeyID and Secret are left empty. An email factor
	// whose code would be refused (the tenant's RequireMFA without
	// MFAAllowEmail, and the user has an authenticator app or SMS factor)
	// is left out.
	Factors []mfa.Factor
}

// Failure reasons recorded in login.failed and mfa.failed audit events.
const (
	ReasonUnknownUser = "unknown_user"
	ReasonBadPassword = "bad_password"
	ReasonDeactivated = "deactivated"
	// ReasonPasswordChanged: the password was changed, reset or marked
	// compromised while the sign-in that proved the old one was under way
	// (or pending its second factor). Also the reason of a refused
	// password.reset or user.email_changed event: the link was made
	// before the user's password was last set.
	ReasonPasswordChanged = "password_changed"
	// ReasonFactorAdded: a second factor was confirmed while a sign-in
	// without one was under way.
	ReasonFactorAdded = "factor_added"
	// ReasonFactorRemoved: the second factor a sign-in proved was removed
	// before its session was created (for a recovery code: the user's
	// last confirmed factor, or the last that made it count as MFA).
	ReasonFactorRemoved = "factor_removed"
	// ReasonEmailCodeNotAccepted (mfa.failed): a right email code of a
	// user who has a factor the tenant's RequireMFA accepts (an
	// authenticator app, SMS), where it accepts no email code: they sign
	// in with that factor.
	ReasonEmailCodeNotAccepted = "email_code_not_accepted"
	// ReasonLoginExpired (mfa.failed, mfa.recovery_used): the second step
	// was right, but its pending sign-in was gone when it came to be
	// used up (another request completed it first, or it expired), or
	// its TOTP code had just been used by the request that completed it.
	// Also (session.reauthenticated) the reason of a step-up whose TOTP
	// code had just been used by a step-up of the same session that
	// renewed it first (a form submitted twice; see Reauthenticate), and
	// of one whose proof was right but whose session was gone when it
	// came to be renewed (renewed first by another request of its own,
	// ended or expired).
	ReasonLoginExpired = "login_expired"
	// ReasonCanceled (login.failed, session.reauthenticated,
	// password.changed): the request ended (the client went away) while
	// its password waited for a hashing slot: never evaluated, nothing
	// counted.
	ReasonCanceled     = "canceled"
	ReasonLocked       = "locked"
	ReasonIPThrottled  = "ip_throttled"
	ReasonBadInput     = "bad_input"
	ReasonUnavailable  = "unavailable"
	ReasonSessionLimit = "session_limit"
	ReasonNoPassword   = "no_password"
	ReasonCaptcha      = "captcha"
	ReasonIPDenied     = "ip_denied"
	ReasonBadCode      = "bad_code"
	ReasonCodeReuse    = "reuse"
	ReasonCodeExpired  = "expired"
	ReasonTooManyTries = "too_many_tries"
	// ReasonSSORequired: a password sign-in while the tenant requires SSO.
	ReasonSSORequired = "sso_required"
	// ReasonBreakGlassNotOwner: the tenant's break-glass user no longer
	// holds the owner role.
	ReasonBreakGlassNotOwner = "break_glass_not_owner"
	// ReasonBreakGlassNoFactor: the break-glass owner has no confirmed
	// second factor (a password alone never signs in, nor enrols one).
	ReasonBreakGlassNoFactor = "break_glass_no_factor"
	// ReasonEmailUnverified (sso.failed): the IdP asserted the address of
	// an account that holds it unverified (User.EmailUnverified: the user
	// set it with ChangeEmail and never proved it). The account may not be
	// the IdP's user, so single sign-on refuses it (see CompleteSSO).
	ReasonEmailUnverified = "email_unverified"
	// ReasonSubjectMismatch (sso.failed): the IdP asserted the address of
	// an account whose kept subject from that same IdP has another
	// persistent NameID: another person at the IdP, who may have set
	// their email there to the account's (see CompleteSSO).
	ReasonSubjectMismatch = "subject_mismatch"
	// ReasonIdPChanged (login.failed): the tenant's IdP was replaced or
	// removed while a single sign-on through it was under way; the
	// session it had just created is ended (see SetSSOConnection). Also
	// (session.revoked, by the system) the session check's end of a
	// single sign-on session created at or before the change
	// (Tenant.IdPChangedAt) that the change itself did not end.
	ReasonIdPChanged = "idp_changed"
)

// attempt carries what the failure and success paths of a login record.
type attempt struct {
	req   LoginRequest
	email string
	user  *auth.User
}

func (a attempt) actor() audit.Actor {
	if a.user != nil {
		return audit.Actor{Kind: audit.ActorUser, ID: a.user.ID, Email: a.user.Email}
	}
	return audit.Actor{Kind: audit.ActorAnonymous, Email: a.email}
}

func (a attempt) event(action audit.Action, outcome audit.Outcome, reason string) audit.Event {
	// Clipped, so that the record of a request refused for an over-long
	// IP or user agent is never refused itself.
	return audit.Event{Tenant: a.req.Tenant, Actor: a.actor(), Action: action, IP: clip(a.req.IP, maxIPBytes),
		UserAgent: clip(a.req.UserAgent, 1024), Outcome: outcome, Reason: reason}
}

// gate is one credential attempt reserved in the throttle store, per
// account and per client IP, before the credential is evaluated: so N
// concurrent guesses never get more than the limit, whatever the
// credential (password, second factor, step-up).
type gate struct {
	acctKey, ipKey string
	acct, ip       auth.Reservation
}

// reserve reserves an attempt for the client IP and then the account
// (accountKey: userID, or email when no account has it: userID ""), in
// one call of the throttle store; the account is not counted when the IP
// is refused. An invented name never gets a permanent lock, which keeps
// the store bounded under a spray. A non-empty reason means the attempt
// is refused (ReasonIPThrottled, ReasonLocked); err is a store failure.
func (g *Guard) reserve(ctx context.Context, tenant, userID, email, ip string) (gate, string, error) {
	gt := gate{acctKey: accountKey(tenant, userID, email)}
	lim := g.acctLim
	if userID == "" {
		lim.PermanentAfter = 0
	}
	// The IP before the account, here and in settle: a SQL store locks
	// the keys in this order, so two logins never deadlock.
	var buf [2]auth.ThrottleKey
	keys := buf[:0]
	if ip != "" {
		gt.ipKey = "ip:" + g.throttleIP(ip)
		keys = append(keys, auth.ThrottleKey{Key: gt.ipKey, Limit: g.ipLim})
	}
	keys = append(keys, auth.ThrottleKey{Key: gt.acctKey, Limit: lim})
	res, err := g.throttle.ReserveAll(ctx, g.now(), keys)
	if err != nil {
		return gate{}, "", unavailable("throttle", err)
	}
	// One Reservation per key up to the first refused one: anything else
	// is a broken store, and the attempt is denied.
	if len(res) == 0 || len(res) > len(keys) || (len(res) < len(keys) && res[len(res)-1].Allowed) {
		return gate{}, "", unavailable("throttle", fmt.Errorf("%d reservations for %d keys", len(res), len(keys)))
	}
	if gt.ipKey != "" {
		if gt.ip, res = res[0], res[1:]; !gt.ip.Allowed {
			return gate{}, ReasonIPThrottled, nil
		}
	}
	if gt.acct = res[0]; !gt.acct.Allowed {
		return gate{}, ReasonLocked, nil
	}
	return gt, "", nil
}

// needsCaptcha reports whether the attempt behind gt comes after enough
// recent failures of its account or client IP to need a CAPTCHA: more
// than CaptchaAfter (CaptchaAfterIP) counted since the last lock, or a
// lock of the key before this attempt, not yet forgotten. A lock sets the
// count back to zero, but not the need: else each lock would buy another
// CaptchaAfter guesses without one.
func (g *Guard) needsCaptcha(gt gate) bool {
	return g.captcha != nil && (gt.acct.Failures > g.captchaAfter || lockedBefore(gt.acct) ||
		gt.ip.Failures > g.captchaAfterIP || lockedBefore(gt.ip))
}

// lockedBefore reports whether the key of r was locked before the
// attempt r reserved (and is not yet forgotten): r.Lockouts counts the
// lock r started, if any.
func lockedBefore(r auth.Reservation) bool {
	if r.Locks {
		return r.Lockouts > 1
	}
	return r.Lockouts > 0
}

// captchaMeta returns e with the reason of a refused CAPTCHA in err (an
// *auth.CaptchaError, such as the verifier's: rejected, misconfigured,
// unavailable…) as Meta captcha, so that the log tells a broken provider
// from bots; e as it is for any other err. A reason that is not a short
// word of letters, digits, '_' or '-' (a host's own verifier may say
// anything) is recorded as "other".
func captchaMeta(e audit.Event, err error) audit.Event {
	var ce *auth.CaptchaError
	if !errors.As(err, &ce) {
		return e
	}
	r := ce.Reason
	if r == "" || len(r) > 32 || strings.IndexFunc(r, func(c rune) bool {
		return !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-')
	}) >= 0 {
		r = "other"
	}
	m := make(map[string]string, len(e.Meta)+1)
	maps.Copy(m, e.Meta)
	m["captcha"] = r
	e.Meta = m
	return e
}

// captchaGate asks for a CAPTCHA when the attempt reserved as gt needs
// one (needsCaptcha), and returns nil when it may go on. Otherwise it
// returns the reason and error to refuse it with, and the gate to record
// the refusal at: gt for a token the verifier refused (a failure, which
// may start a lock), the zero gate for a missing token or one the
// provider could not check (captchaUnchecked). Without a token the
// attempt is no guess: its credential was not evaluated, and the client
// is only now asked for a CAPTCHA. So it gives its reservations back, and
// with them any lock they started, so that a burst of sign-ins from one
// address (each counts until it ends) cannot turn into failures, then a
// lock. So does an attempt whose token the provider could not check: its
// credential was not evaluated either, and an outage of the provider must
// not lock the accounts of those who solved the CAPTCHA. A give-back that
// fails leaves the attempt counted (returned as gt, with
// ReasonUnavailable), its lock on record.
func (g *Guard) captchaGate(ctx context.Context, gt gate, token, ip string) (gate, string, error) {
	if !g.needsCaptcha(gt) {
		return gate{}, "", nil
	}
	err := g.checkCaptcha(ctx, token, ip)
	switch {
	case err == nil:
		return gate{}, "", nil
	case token != "" && !captchaUnchecked(err):
		return gt, ReasonCaptcha, err
	}
	if serr := g.settle(ctx, gt, false); serr != nil {
		return gt, ReasonUnavailable, serr
	}
	return gate{}, ReasonCaptcha, err
}

// captchaUnchecked reports whether err is a CAPTCHA refusal in which the
// provider judged nothing of the token: it could not be reached or failed
// (auth.CaptchaUnavailable), refused our own keys
// (auth.CaptchaMisconfigured), or answered what is not a reply
// (auth.CaptchaMalformed).
func captchaUnchecked(err error) bool {
	var ce *auth.CaptchaError
	if !errors.As(err, &ce) {
		return false
	}
	switch ce.Reason {
	case auth.CaptchaUnavailable, auth.CaptchaMisconfigured, auth.CaptchaMalformed:
		return true
	}
	return false
}

// settle ends a successful attempt, in one call of the throttle store:
// the client IP gets its reservation back, and the account's failures are
// forgotten when done (the sign-in is complete) or only this attempt given
// back when not (a second factor is still due, and its wrong codes must
// add to the failures before it). A reservation given back lifts the lock
// it started, if any (ThrottleStore.Release): an attempt that fails
// nothing never locks its account or address, however many are in flight.
func (g *Guard) settle(ctx context.Context, gt gate, done bool) error {
	var buf [2]auth.Settlement
	keys := buf[:0]
	if gt.ipKey != "" {
		keys = append(keys, auth.Settlement{Key: gt.ipKey, Reservation: gt.ip})
	}
	if gt.acctKey != "" {
		keys = append(keys, auth.Settlement{Key: gt.acctKey, Reset: done, Reservation: gt.acct})
	}
	if len(keys) == 0 {
		return nil
	}
	if err := g.throttle.Settle(ctx, keys); err != nil {
		return unavailable("throttle", err)
	}
	return nil
}

// unevaluated ends an attempt whose context ended while its password (or
// the dummy hash standing in for it) waited for a hashing slot: the
// password was never evaluated, so, as an attempt without the CAPTCHA
// token it is asked for (captchaGate), it is no guess and gives its
// reservations gt back, and with them any lock they started, under a
// context that does not end with ctx's. record then records it, under
// that context too, with reason canceled and the zero gate; a give-back
// that fails leaves the attempt counted, and record records it as such:
// reason unavailable with gt (a lock it started included). It returns
// ctx's error.
func (g *Guard) unevaluated(ctx context.Context, gt gate, record func(ctx context.Context, reason string, gt gate)) error {
	bg := context.WithoutCancel(ctx)
	if err := g.settle(bg, gt, false); err != nil {
		record(bg, ReasonUnavailable, gt)
	} else {
		record(bg, ReasonCanceled, gate{})
	}
	return ctx.Err()
}

// recordFailure records e, the failure event of attempt a, together with
// a login.locked event when a's reservation gt started a lock; once that
// is on record, the user (if the account exists and is active: a
// deactivated one hears no notice) is mailed a notice
// (SECURITY-CHECKLIST LG-16), at most one an hour per account: anyone who
// knows the address can lock the account again and again, and must not
// flood its inbox (every lock stays on record). The notice, and the count
// that limits it, are done in the background, so that the answer takes
// no longer for an account than for an invented name; for the same
// reason the notice waits for no background slot (with all
// MaxBackgroundNotices taken it takes one kept for lock notices, or is
// dropped, and counted). gt is the zero
// gate for a failure that reserved nothing.
//
// A reservation that started a lock of the client IP is recorded too, as
// login.locked with Meta scope "ip" (an account's lock has scope
// "account"), in the tenant of the attempt that locked it: the lock holds
// in every tenant, and this one saw the guessing. No one is mailed.
func (g *Guard) recordFailure(ctx context.Context, a attempt, gt gate, e audit.Event) error {
	if !gt.acct.Locks && !gt.ip.Locks {
		return g.record(ctx, e)
	}
	var buf [3]audit.Event
	evs := append(buf[:0], e)
	if gt.ip.Locks {
		lock := a.event(audit.LoginLocked, audit.Failure, e.Reason)
		lock.Meta = lockMeta(gt.ip)
		lock.Meta["scope"] = "ip"
		evs = append(evs, lock)
	}
	if gt.acct.Locks {
		lock := a.event(audit.LoginLocked, audit.Failure, e.Reason)
		lock.Meta = lockMeta(gt.acct)
		lock.Meta["scope"] = "account"
		evs = append(evs, lock)
	}
	if err := g.record(ctx, evs...); err != nil {
		return err
	}
	if gt.acct.Locks && a.user != nil {
		text, kind := "Your account was locked after several failed sign-in attempts", "lock-notice"
		if gt.acct.Permanent {
			// Bounded on its own: a permanent lock comes once until an
			// administrator unlocks the account, and its notice is the one
			// that says so, whatever temporary lock was noticed before.
			text, kind = text+", until an administrator unlocks it", "lock-notice-permanent"
		}
		g.notifyOnce(ctx, true, linkRateKey(kind, a.user.Tenant, a.user.ID), *a.user, a.user.Email, "Your account was locked",
			text+". If it was not you, someone may be guessing your password: "+
				"change it once you can sign in again, and tell your administrator.")
	}
	return nil
}

// Login verifies a password and creates a session, or starts a pending
// sign-in when a second factor is due (LoginResult.Pending).
//
// Every failure caused by the credentials (unknown user, wrong password,
// deactivated, locked, throttled) returns ErrInvalidCredentials after the
// same amount of hashing work, once a CAPTCHA due is solved (one is asked
// under the same rule whether or not the key is locked: see
// LoginRequest.Captcha), so neither the message nor the timing tells
// whether an account exists; the cause is recorded in the login.failed
// audit event. (One exception, with AccountLimit.PermanentAfter and a
// CAPTCHA both set: only an account that exists is locked for good, and
// its lock keeps asking for a CAPTCHA after an invented name's failures
// are forgotten, so a login without a token then tells the two apart.)
// In a tenant that requires single sign-on (Policy.RequireSSO)
// each of these returns ErrSSORequired instead, as a right password of
// anyone but the break-glass owner does (the break-glass owner's wrong
// password included), so that the answer confirms no password nor who
// the break-glass owner is; wrong guesses still count in the throttle.
// Malformed input (the IP and user agent included) returns an
// *InputError or auth.ErrPasswordTooLong without hashing, in any tenant,
// so that it tells nothing of which tenants exist; in a tenant that
// exists it is recorded as login.failed with reason bad_input (an unknown
// tenant has no log to record it in). A well-formed login into a tenant
// that does not exist is answered as one of an unknown account: counted
// in the throttle, asked for a CAPTCHA under the same rule, then
// ErrInvalidCredentials after the dummy hash, and not recorded. A store
// failure returns ErrUnavailable: the login is denied, never allowed.
//
// Each attempt is reserved in the throttle store before the password is
// evaluated, per account and per client IP, so concurrent guesses can never
// get more evaluations than the limit. A completed sign-in resets the
// account's failures. A login whose context ends while its password (or,
// for an invented name, the dummy hash) waits for a hashing slot returns
// the context's error; its password was never evaluated, so it gives its
// reservations back and counts nothing, and is recorded as login.failed
// with reason canceled.
//
// An outdated password hash (an imported bcrypt one, or argon2id with
// older parameters) is replaced by one of the current parameters once
// the password has let the sign-in through: once its session is created,
// or its pending sign-in (a second factor due) started
// (password.rehashed); never by a sign-in refused after the password was
// checked (the mailed reset and email-change links are bound to the
// hash).
func (g *Guard) Login(ctx context.Context, req LoginRequest) (_ LoginResult, err error) {
	// The input is checked before the tenant is looked up, so that a
	// malformed request gets the same answer in any tenant, real or not.
	email, inputErr := loginInput(req)
	pol, err := g.EffectivePolicy(ctx, req.Tenant)
	switch {
	case errors.Is(err, ErrTenantNotFound) && inputErr != nil:
		return LoginResult{}, inputErr // no tenant to record it in
	case errors.Is(err, ErrTenantNotFound):
		return LoginResult{}, g.loginNoTenant(ctx, req, email)
	case err != nil:
		return LoginResult{}, err
	}
	if pol.RequireSSO {
		// A password opens no session here but the break-glass owner's:
		// every refusal the credentials cause (a wrong password, an
		// unknown name, a lock) answers as a right password of anyone
		// else does, so that the answer confirms no guess, nor who the
		// break-glass owner is. The cause is in login.failed.
		defer func() {
			if errors.Is(err, ErrInvalidCredentials) {
				err = ErrSSORequired
			}
		}()
	}
	a := attempt{req: req, email: email}
	if inputErr != nil {
		return LoginResult{}, g.loginFailed(ctx, a, ReasonBadInput, inputErr)
	}

	u, err := g.stores.Users.UserByEmail(ctx, req.Tenant, email)
	switch {
	case errors.Is(err, auth.ErrNotFound):
	case err != nil:
		return LoginResult{}, g.loginFailed(ctx, a, ReasonUnavailable, unavailable("load user", err))
	default:
		a.user = &u
	}
	if err := g.checkIPString(ctx, req.Tenant, ipfilter.Users, req.IP, a.actor(), req.UserAgent); err != nil {
		reason := ReasonUnavailable
		if errors.Is(err, ErrIPNotAllowed) {
			reason = ReasonIPDenied
		}
		return LoginResult{}, g.loginFailed(ctx, a, reason, err)
	}
	known := ""
	if a.user != nil {
		known = a.user.ID
	}
	gt, reason, err := g.reserve(ctx, req.Tenant, known, email, req.IP)
	if err != nil {
		return LoginResult{}, g.loginFailed(ctx, a, ReasonUnavailable, err)
	}
	if reason != "" {
		// A CAPTCHA first, under the rule captchaGate applies once the
		// lock is over (a key locked has been locked: needsCaptcha), so
		// that a login is asked for one whether or not its key is locked:
		// a permanent lock, which only an account that exists gets (see
		// reserve), must answer a login without a token as the end of an
		// invented name's temporary lock does. Only the client IP's
		// reservation was counted, and it stands.
		if err := g.checkCaptcha(ctx, req.Captcha, req.IP); err != nil {
			return LoginResult{}, g.loginFailed(ctx, a, ReasonCaptcha, err)
		}
		if err := g.hasher.VerifyDummy(ctx, req.Password); err != nil && ctx.Err() != nil {
			return LoginResult{}, g.unevaluated(ctx, gate{}, func(ctx context.Context, reason string, gt gate) {
				_ = g.loginFailedAt(ctx, a, gt, reason, nil)
			})
		}
		return LoginResult{}, g.loginFailed(ctx, a, reason, ErrInvalidCredentials)
	}
	if at, reason, err := g.captchaGate(ctx, gt, req.Captcha, req.IP); err != nil {
		return LoginResult{}, g.loginFailedAt(ctx, a, at, reason, err)
	}

	ok, rehash := false, false
	reason = ReasonBadPassword
	switch {
	case a.user == nil:
		err = g.hasher.VerifyDummy(ctx, req.Password)
		reason = ReasonUnknownUser
	case a.user.PasswordHash == "":
		err = g.hasher.VerifyDummy(ctx, req.Password)
		reason = ReasonNoPassword
	default:
		ok, rehash, err = g.verifyPassword(ctx, req.Password, a.user.PasswordHash)
	}
	if err != nil && ctx.Err() != nil {
		// Never evaluated, the dummy hash's wait alike: an invented name
		// and an account end the same way.
		return LoginResult{}, g.unevaluated(ctx, gt, func(ctx context.Context, reason string, gt gate) {
			_ = g.loginFailedAt(ctx, a, gt, reason, nil)
		})
	}
	// Any other error is a failure like a wrong password.
	if err != nil {
		ok = false
	}
	if ok && a.user.Status != auth.StatusActive {
		ok, reason = false, ReasonDeactivated
	}
	if !ok {
		return LoginResult{}, g.loginFailedAt(ctx, a, gt, reason, ErrInvalidCredentials)
	}
	if pol.RequireSSO && (a.user.ID != pol.BreakGlassUser || g.mfa == nil) {
		return LoginResult{}, g.loginFailedAt(ctx, a, gt, ReasonSSORequired, ErrSSORequired)
	}
	si := signIn{password: true}
	if auth.IsCommon(req.Password) {
		// A password from before the blocklist held it (an import, an
		// older list): right, but it must be changed now (ASVS 6.2.12).
		si.flags |= FlagPasswordExpired
		si.meta = map[string]string{"password_common": "true"}
	}
	if rehash {
		si.rehash = req.Password // once the sign-in is let through: see signIn
	}
	if pol.RequireSSO {
		return g.breakGlass(ctx, a, gt, si)
	}
	return g.proceed(ctx, a, pol, gt, si)
}

// loginNoTenant answers a well-formed login into a tenant that does not
// exist as Login answers an unknown account of a tenant that does: the
// attempt is reserved per client IP and account key (an invented name
// never gets a permanent lock), asks for a CAPTCHA under the same rule
// (captchaGate), and fails with ErrInvalidCredentials after the dummy
// hash. So neither the answer, nor the CAPTCHA, nor the throttle tells
// which tenants exist, but for one that requires SSO: every password
// login there answers ErrSSORequired, as its SSO routes show it exists
// (StartSSO). Nothing is recorded: there is no tenant log.
func (g *Guard) loginNoTenant(ctx context.Context, req LoginRequest, email string) error {
	gt, reason, err := g.reserve(ctx, req.Tenant, "", email, req.IP)
	if err != nil {
		return err
	}
	if reason == "" {
		if _, _, err := g.captchaGate(ctx, gt, req.Captcha, req.IP); err != nil {
			return err
		}
	} else if err := g.checkCaptcha(ctx, req.Captcha, req.IP); err != nil {
		return err // locked: a CAPTCHA first, as Login asks
	}
	if err := g.hasher.VerifyDummy(ctx, req.Password); err != nil && ctx.Err() != nil {
		// As Login ends one never evaluated: nothing counted (no log).
		return g.unevaluated(ctx, gt, func(context.Context, string, gate) {})
	}
	return ErrInvalidCredentials
}

// loginInput checks a login request's password length, email, user agent
// and client IP, and returns the email in canonical form ("" if it is
// malformed).
func loginInput(req LoginRequest) (string, error) {
	if len(req.Password) > MaxPasswordBytes {
		return "", auth.ErrPasswordTooLong
	}
	email, err := auth.CanonicalEmail(req.Email)
	if err != nil {
		return "", err
	}
	if err := checkText("user agent", req.UserAgent, 1024); err != nil {
		return email, err
	}
	return email, checkClientIP(req.IP)
}

// signIn says how the user proved who they are so far.
type signIn struct {
	endBy    time.Time // the session must end by then (an IdP's SessionNotOnOrAfter); zero: no limit
	password bool      // the first factor was a password
	flags    uint32    // session flags the first factor brings (FlagSSO, FlagBreakGlass)
	mfa      mfa.Kind  // the second factor, once passed ("" before)
	// factor is the ID of the confirmed factor the second factor proved
	// ("" for a recovery code, and before).
	factor string
	// emailCode: the second factor counts as an email code (an email
	// code, or a recovery code of a user with no stronger factor): the
	// session gets FlagEmailCode, not FlagMFA.
	emailCode bool
	// subject is who the user is at the IdP (an SSO sign-in), kept for
	// single logout before the session is created; nil otherwise.
	subject *sso.Subject
	// meta is added to the login.succeeded event.
	meta map[string]string
	// noFactor: the user had no confirmed second factor when the sign-in
	// looked (so none was asked for).
	noFactor bool
	// rehash is the password of a password sign-in whose stored hash is
	// outdated ("" otherwise). It is rehashed only once the sign-in is let
	// through: createSession or pend recorded it. A sign-in refused after
	// the password was right (the session limit, a deactivation seen
	// late) changes nothing, for the mailed reset and email-change links
	// are bound to the hash. A rehash leaves PasswordChangedAt as it is,
	// so a pending sign-in's password stamp still holds.
	rehash string
}

// Purposes of pending sign-ins.
const (
	purposeLogin = "login" // a second factor is due
	purposeEnrol = "enrol" // the user must enrol a second factor
)

// proceed is the one policy pipeline every sign-in goes through once its
// first factor passed (and again after its second): it decides whether a
// second factor or an enrolment is due, and otherwise creates the session.
func (g *Guard) proceed(ctx context.Context, a attempt, pol Policy, gt gate, si signIn) (LoginResult, error) {
	u := *a.user
	// A second factor is Guard's to ask for after a password; after SSO it
	// is the IdP's.
	if g.mfa != nil && si.mfa == "" && si.flags&FlagSSO == 0 {
		factors, err := g.mfa.Factors(ctx, u.Tenant, u.ID)
		if err != nil {
			return LoginResult{}, g.loginFailed(ctx, a, ReasonUnavailable, unavailable("load factors", err))
		}
		confirmed := factors[:0]
		for _, f := range factors {
			if f.Confirmed() {
				confirmed = append(confirmed, f)
			}
		}
		si.noFactor = len(confirmed) == 0
		if emailCodeRefused(pol, confirmed) {
			// Its code would be refused (CompleteLogin): not offered.
			offered := confirmed[:0]
			for _, f := range confirmed {
				if f.Kind != mfa.KindEmail {
					offered = append(offered, f)
				}
			}
			confirmed = offered
		}
		purpose := ""
		switch {
		case len(confirmed) > 0:
			purpose = purposeLogin
		case pol.RequireMFA && g.now().Before(pol.MFARequiredSince.Add(pol.MFAGrace)):
			si.flags |= FlagMustEnrol
		case pol.RequireMFA:
			purpose = purposeEnrol
		}
		if purpose != "" {
			return g.pend(ctx, a, gt, si, purpose, confirmed)
		}
	}
	if err := g.settle(ctx, gt, true); err != nil {
		// Still counted, and a lock it started stands: on record.
		return LoginResult{}, g.loginFailedAt(ctx, a, gt, ReasonUnavailable, err)
	}
	return g.createSession(ctx, a, pol, si)
}

// pend starts a pending sign-in: no session, a token that opens nothing.
func (g *Guard) pend(ctx context.Context, a attempt, gt gate, si signIn, purpose string, factors []mfa.Factor) (LoginResult, error) {
	u := *a.user
	// The password was right: its reservations are given back (and a
	// lock the account's started, as the Max-th attempt, is lifted: it
	// has failed one time fewer); the second factor reserves its own.
	if err := g.settle(ctx, gt, false); err != nil {
		return LoginResult{}, g.loginFailedAt(ctx, a, gt, ReasonUnavailable, err)
	}
	token, txn, err := g.mfa.StartTransaction(ctx, mfa.TransactionOptions{
		Tenant: u.Tenant, UserID: u.ID, Binding: a.req.UserAgent, Purpose: pendPurpose(purpose, si, u), Flags: si.flags,
	})
	if err != nil {
		return LoginResult{}, g.loginFailed(ctx, a, ReasonUnavailable, unavailable("start pending sign-in", err))
	}
	if si.password {
		// A password changed, reset or marked compromised since it was
		// read is seen here, or it is stamped after the pending sign-in
		// started and loadPending refuses it.
		cur, err := g.stores.Users.User(ctx, u.Tenant, u.ID)
		switch {
		case err != nil && !errors.Is(err, auth.ErrNotFound):
			return LoginResult{}, g.loginFailed(ctx, a, ReasonUnavailable, unavailable("load user", err))
		case err != nil || cur.Status != auth.StatusActive:
			return LoginResult{}, g.loginFailed(ctx, a, ReasonDeactivated, ErrInvalidCredentials)
		case passwordMoved(u, cur):
			return LoginResult{}, g.loginFailed(ctx, a, ReasonPasswordChanged, ErrInvalidCredentials)
		}
	}
	e := a.event(audit.LoginPending, audit.Success, "")
	e.Meta = map[string]string{"purpose": purpose}
	if err := g.record(ctx, e); err != nil {
		return LoginResult{}, err
	}
	if si.rehash != "" {
		g.rehash(ctx, u, si.rehash)
	}
	return LoginResult{User: userView(u), Pending: &Pending{Token: token, ExpiresAt: txn.ExpiresAt,
		Enrol: purpose == purposeEnrol, Factors: maskedFactors(factors)}}, nil
}

// maskedFactors returns copies of fs with their destinations masked and
// their bookkeeping left out (see Pending.Factors).
func maskedFactors(fs []mfa.Factor) []mfa.Factor {
	if len(fs) == 0 {
		return fs
	}
	out := make([]mfa.Factor, len(fs))
	for i, f := range fs {
		f.Destination = mfa.MaskDestination(f.Kind, f.Destination)
		// Bookkeeping, not for someone who has shown only the password:
		// LastStep dates the user's last sign-in with the app.
		f.LastStep, f.KeyID, f.Secret = 0, "", nil
		out[i] = f
	}
	return out
}

// pendPurpose is the Purpose stored with a pending sign-in for purpose,
// followed by the state of the user that the sign-in read, which
// loadPending requires unchanged: after a password, the state of the
// password (passwordStamp); and the user's last reactivation
// (reactivationStamp), so that a deactivation that came and went since
// the sign-in began ends it, as it ends mailed links, whatever the clocks
// of the replicas that stamped the two. It is
// purpose":"password":"reactivation, always in three parts (for password
// sign-ins, SSO sign-ins and enrolments alike), the password stamp empty
// without a password and the reactivation stamp empty for a user never
// reactivated. Only a transaction an older Guard wrote (purpose, or
// purpose:password) lacks the third part; for it loadPending compares the
// user's ReactivatedAt with the time the sign-in began. During a rolling
// upgrade an older replica refuses the pending sign-ins the new one began
// with a password (it reads "password:reactivation" as a password stamp:
// password_changed), and a replica older still, which compares the whole
// Purpose, refuses all of them: the user signs in again. No store keeps
// more for it: mfa stores Purpose as it is.
func pendPurpose(purpose string, si signIn, u auth.User) string {
	pw := ""
	if si.password {
		pw = passwordStamp(u)
	}
	return purpose + ":" + pw + ":" + reactivationStamp(u)
}

// reactivationStamp names u's last reactivation: its ReactivatedAt, to
// the microsecond (as stores keep it), "" for a user never reactivated
// (no colon in either, so a Purpose splits one way only).
func reactivationStamp(u auth.User) string {
	if u.ReactivatedAt.IsZero() {
		return ""
	}
	return strconv.FormatInt(u.ReactivatedAt.UnixMicro(), 10)
}

// passwordStamp names the state of u's password: its PasswordChangedAt,
// to the microsecond (as stores keep it), which every change and reset
// sets, and a rehash of the same password leaves alone.
func passwordStamp(u auth.User) string {
	return strconv.FormatInt(u.PasswordChangedAt.UnixMicro(), 10)
}

// passwordMoved reports whether the user's password was changed, reset
// or marked compromised between the reads was and cur (a rehash of the
// same password changes neither field).
func passwordMoved(was, cur auth.User) bool {
	return !cur.PasswordChangedAt.Equal(was.PasswordChangedAt) || cur.PasswordExpired != was.PasswordExpired
}

// createSession creates the session of a complete sign-in, under the
// tenant's session limit, and records it.
//
// At the limit, the user's sessions that the tenant's policy has already
// ended (past its idle timeout or lifetime, or short of an MFA or SSO
// requirement: policyKeeps), which a store counts by their own limits,
// are ended first, as the session check would end them at their next
// request, and recorded as it records them (session.expired or
// session.revoked, see policyEnd): such a session neither refuses this
// sign-in (RefuseNew) nor keeps its place while a live one is evicted
// (EvictOldest). At a limit of one under EvictOldest (the default) the
// other session goes either way: it is evicted in the same store step,
// and recorded as the policy's end if the policy had ended it. The user's sessions that this sign-in ends (those, and
// those the limit evicts, session.evicted) stay ended whatever follows,
// so they are recorded with its outcome: in the login.succeeded append,
// or in the login.failed one of a sign-in that fails after the session
// was created (a deactivation, a password change, a factor enrolment or
// a change of IdP seen, a store failure).
func (g *Guard) createSession(ctx context.Context, a attempt, pol Policy, si signIn) (LoginResult, error) {
	u := *a.user
	now := g.now()
	flags := si.flags
	expired := si.password && (u.PasswordExpired || pol.PasswordMaxAge > 0 && now.Sub(u.PasswordChangedAt) > pol.PasswordMaxAge)
	if expired {
		flags |= FlagPasswordExpired
	}
	expired = expired || flags&FlagPasswordExpired != 0
	switch {
	case si.mfa == mfa.KindEmail || si.emailCode:
		// An email code is a lower-assurance factor (NIST SP 800-63B
		// §5.1.3.1): never a second factor for RequireMFA on its own.
		// Nor is a recovery code that stands in for one.
		flags |= FlagEmailCode
	case si.mfa != "":
		flags |= FlagMFA
	}
	lifetime := pol.SessionLifetime
	if !si.endBy.IsZero() {
		// A second short: the session manager reads its clock after
		// this one, and a store may round times up.
		if left := si.endBy.Sub(now) - time.Second; left < lifetime {
			if left < time.Minute {
				return LoginResult{}, g.loginFailed(ctx, a, "session_not_on_or_after", ErrSSOFailed)
			}
			lifetime = left
		}
	}
	if si.subject != nil && g.stores.SSO.Subjects != nil {
		// Before the session, so that a logout from the IdP never misses
		// it; kept as long as any session of the tenant can last.
		sub := *si.subject
		sub.Expires = now.Add(pol.SessionLifetime + time.Minute)
		if err := g.stores.SSO.Subjects.PutSubject(ctx, sub, now); err != nil {
			return LoginResult{}, g.loginFailed(ctx, a, ReasonUnavailable, unavailable("keep sso subject", err))
		}
	}
	// ended are the events of the user's other sessions this sign-in
	// ended: on record with its outcome, whichever it is.
	var ended []audit.Event
	fail := func(reason string, err error) error {
		if len(ended) == 0 {
			return g.loginFailed(ctx, a, reason, err)
		}
		if rerr := g.record(ctx, append([]audit.Event{a.event(audit.LoginFailed, audit.Failure, reason)}, ended...)...); rerr != nil {
			return rerr
		}
		return err
	}
	create := func(lim session.Limit) (string, session.Session, []session.Session, error) {
		return g.sessions.Create(ctx, session.Options{
			Tenant: u.Tenant, UserID: u.ID, IP: a.req.IP, UserAgent: a.req.UserAgent,
			IdleTimeout: pol.IdleTimeout, Lifetime: lifetime, Limit: &lim, Flags: flags,
		})
	}
	lim := pol.sessionLimit()
	first := lim
	if lim.Max > 1 || lim.Max == 1 && lim.Policy == session.RefuseNew {
		// At the limit, nothing is evicted before the sessions the
		// policy ended are out of the way. With one session per user
		// and the oldest ending (the default), whatever is there goes
		// either way: no refused first try, no extra round trips, and
		// an evicted session the policy had ended is recorded as such
		// below.
		first.Policy = session.RefuseNew
	}
	token, s, evicted, err := create(first)
	if errors.Is(err, session.ErrLimit) {
		var perr error
		if ended, perr = g.endPolicyEnded(ctx, u.Tenant, u.ID); perr != nil {
			return LoginResult{}, fail(ReasonUnavailable, perr)
		}
		token, s, evicted, err = create(lim)
	}
	if errors.Is(err, session.ErrLimit) {
		return LoginResult{}, fail(ReasonSessionLimit, ErrSessionLimit)
	}
	if err != nil {
		return LoginResult{}, fail(ReasonUnavailable, unavailable("create session", err))
	}
	var keeps func(*session.Session) (bool, audit.Event)
	if len(evicted) > 0 {
		if t, err := g.policies.entry(ctx, u.Tenant); err == nil {
			keeps = func(ev *session.Session) (bool, audit.Event) {
				if policyKeeps(ev, &t.eff, t.t.IdPChangedAt, now) {
					return true, audit.Event{}
				}
				return false, policyEnd(ev, &t.eff, t.t.IdPChangedAt, now)
			}
		}
	}
	nEvicted := 0
	for i := range evicted {
		if keeps != nil {
			if ok, e := keeps(&evicted[i]); !ok {
				ended = append(ended, e) // the policy had ended it
				continue
			}
		}
		e := a.event(audit.SessionEvicted, audit.Success, "session_limit")
		e.Target = evicted[i].ID()
		ended = append(ended, e)
		nEvicted++
	}
	// Re-read the status in the same step that records the login (and,
	// for SSO, that the user signed in through the IdP: what puts them on
	// SSO, see UserAccess.SSO): a deactivation that raced this login
	// either ended the new session already or is seen here.
	record := g.stores.UserUpdates.RecordLogin
	if si.flags&FlagSSO != 0 {
		record = g.stores.UserUpdates.RecordSSOLogin
	}
	cur, err := record(ctx, u.Tenant, u.ID, now.UTC().Truncate(time.Microsecond))
	if err != nil || cur.Status != auth.StatusActive {
		g.dropSession(ctx, s)
		if err != nil && !errors.Is(err, auth.ErrNotFound) {
			return LoginResult{}, fail(ReasonUnavailable, unavailable("record login", err))
		}
		return LoginResult{}, fail(ReasonDeactivated, ErrInvalidCredentials)
	}
	// Likewise a deactivation and a reactivation that both landed while
	// this sign-in went on (after loadPending compared the pending
	// sign-in's reactivation stamp, or after Login read the user): the
	// deactivation ended the user's sessions before this one existed, or
	// the reactivation is seen here.
	if !cur.ReactivatedAt.Equal(u.ReactivatedAt) {
		g.dropSession(ctx, s)
		return LoginResult{}, fail(ReasonDeactivated, ErrInvalidCredentials)
	}
	// Likewise the tenant's IdP replaced or removed while this single
	// sign-on went on (an assertion the old IdP signed): the change ended
	// the SSO sessions created before it, or it is seen here.
	if si.subject != nil {
		if reason, err := g.idpStill(ctx, u.Tenant, si.subject.IdP); reason != "" {
			g.dropSession(ctx, s)
			return LoginResult{}, fail(reason, err)
		}
	}
	// Likewise a password changed, reset or marked compromised while this
	// sign-in proved the old one: the change ended the user's sessions
	// before this one existed, or it is seen here.
	if si.password && passwordMoved(u, cur) {
		g.dropSession(ctx, s)
		return LoginResult{}, fail(ReasonPasswordChanged, ErrInvalidCredentials)
	}
	// And a second factor confirmed while this sign-in went on without
	// one: the enrolment ended the user's other sessions before this one
	// existed, or the factor is seen here (one more read, only for users
	// who had none).
	if si.noFactor {
		fs, err := g.mfa.Factors(ctx, u.Tenant, u.ID)
		if err != nil {
			g.dropSession(ctx, s)
			return LoginResult{}, fail(ReasonUnavailable, unavailable("load factors", err))
		}
		if slices.ContainsFunc(fs, mfa.Factor.Confirmed) {
			g.dropSession(ctx, s)
			return LoginResult{}, fail(ReasonFactorAdded, ErrInvalidCredentials)
		}
	}
	// And the factor this sign-in proved removed meanwhile (a phone
	// reported stolen): the removal ended the user's sessions before this
	// one existed, or it is seen here (one more read, only after a second
	// factor). A recovery code stands in for the user's confirmed
	// factors: removing the last voids the codes, and removing the last
	// that counts as MFA changes what the code counts as.
	if si.mfa != "" {
		fs, err := g.mfa.Factors(ctx, u.Tenant, u.ID)
		if err != nil {
			g.dropSession(ctx, s)
			return LoginResult{}, fail(ReasonUnavailable, unavailable("load factors", err))
		}
		if !stillProved(si, fs) {
			g.dropSession(ctx, s)
			return LoginResult{}, fail(ReasonFactorRemoved, ErrInvalidCredentials)
		}
	}
	events := make([]audit.Event, 0, 1+len(ended))
	ok := a.event(audit.LoginSucceeded, audit.Success, "")
	ok.Target = s.ID()
	meta := map[string]string{}
	for k, v := range si.meta {
		meta[k] = v
	}
	if expired {
		meta["password_expired"] = "true"
	}
	if si.mfa != "" {
		meta["mfa"] = string(si.mfa)
	}
	if flags&FlagMustEnrol != 0 {
		meta["must_enrol"] = "true"
	}
	if len(meta) > 0 {
		ok.Meta = meta
	}
	events = append(events, ok)
	events = append(events, ended...)
	if err := g.record(ctx, events...); err != nil {
		// No session without its audit event.
		g.dropSession(ctx, s)
		return LoginResult{}, err
	}
	if si.rehash != "" {
		g.rehash(ctx, u, si.rehash)
	}
	return LoginResult{Token: token, Session: s, User: userView(cur), Evicted: nEvicted, PasswordExpired: expired}, nil
}

// stillProved reports whether the second factor of si still stands among
// the user's factors fs: the factor it proved is there and confirmed; for
// a recovery code (si.factor ""), a confirmed factor is left, and one that
// counts as MFA on its own if the sign-in counted as MFA.
func stillProved(si signIn, fs []mfa.Factor) bool {
	if si.factor != "" {
		return slices.ContainsFunc(fs, func(f mfa.Factor) bool { return f.ID == si.factor && f.Confirmed() })
	}
	if !si.emailCode {
		return strongFactor(fs)
	}
	return slices.ContainsFunc(fs, mfa.Factor.Confirmed)
}

// verifyPassword checks password against a user's stored hash as
// auth.Hasher.Verify does, with the same hashing work whatever the hash:
// one Verify cannot use (an algorithm it does not support, as an import
// may bring, or a corrupt string: an *auth.PHCError) costs the dummy hash
// and does not match, so that such an account answers neither faster
// than others nor for free. An empty hash (no password) does the same.
func (g *Guard) verifyPassword(ctx context.Context, password, hash string) (ok, rehash bool, err error) {
	if hash != "" {
		ok, rehash, err = g.hasher.Verify(ctx, password, hash)
		var pe *auth.PHCError
		if !errors.As(err, &pe) {
			return ok, rehash, err
		}
	}
	g.hasher.VerifyDummy(ctx, password)
	return false, false, nil
}

// rehash replaces an outdated password hash (bcrypt, or argon2id with old
// parameters) after a successful login. It is best effort: a failure leaves
// the old, still valid hash in place and is retried at the next login.
func (g *Guard) rehash(ctx context.Context, u auth.User, password string) {
	h, err := g.hasher.Hash(ctx, password)
	if err != nil {
		return
	}
	if err := g.stores.UserUpdates.RehashPassword(ctx, u.Tenant, u.ID, u.PasswordHash, h); err != nil {
		return
	}
	_ = g.record(ctx, audit.Event{Tenant: u.Tenant, Actor: audit.Actor{Kind: audit.ActorSystem, ID: "rehash"},
		Action: audit.PasswordRehashed, Target: u.ID, Outcome: audit.Success})
}

// loginFailed records a login.failed event (and any extra events) and
// returns err, or ErrUnavailable if the event cannot be recorded: a login
// attempt is never left unlogged silently.
func (g *Guard) loginFailed(ctx context.Context, a attempt, reason string, err error) error {
	return g.loginFailedAt(ctx, a, gate{}, reason, err)
}

// loginFailedAt is loginFailed for an attempt reserved as gt: a lock it
// started is recorded and noticed too (see recordFailure).
func (g *Guard) loginFailedAt(ctx context.Context, a attempt, gt gate, reason string, err error) error {
	if rerr := g.recordFailure(ctx, a, gt, captchaMeta(a.event(audit.LoginFailed, audit.Failure, reason), err)); rerr != nil {
		return rerr
	}
	return err
}

func lockMeta(r auth.Reservation) map[string]string {
	m := map[string]string{"lockouts": strconv.Itoa(r.Lockouts)}
	if r.Permanent {
		m["permanent"] = "true"
	} else {
		m["until"] = r.LockedUntil.UTC().Format(time.RFC3339)
	}
	return m
}

// accountKey is the throttle key of an account: for one that exists
// (userID), a hash of tenant and user ID, so that its failures and lock
// follow the account whatever its address becomes (ChangeEmail must not
// give a guesser a fresh count); for a name no account has (userID ""), a
// hash of tenant and canonical email. Either way the throttle store,
// which may be shared by ring-fenced tenants, holds no email address; the
// two never meet (tenant IDs hold neither byte that separates them).
func accountKey(tenant, userID, email string) string {
	h := sha256.New()
	h.Write([]byte(tenant))
	if userID != "" {
		h.Write([]byte{1})
		h.Write([]byte(userID))
	} else {
		h.Write([]byte{0})
		h.Write([]byte(email))
	}
	return "acct:" + base64.RawURLEncoding.EncodeToString(h.Sum(nil))
}

// dropSession ends a session that must not survive (best effort: the
// caller is already failing the request).
func (g *Guard) dropSession(ctx context.Context, s session.Session) {
	_, _ = g.sessions.RevokeID(context.WithoutCancel(ctx), s.Tenant, s.UserID, s.ID())
}

// record writes audit events before the action they record is reported as
// done. A failure is returned as ErrUnavailable.
func (g *Guard) record(ctx context.Context, events ...audit.Event) error {
	if _, err := g.audit.RecordAll(ctx, events...); err != nil {
		return unavailable("audit", err)
	}
	return nil
}

// breakGlass signs in the break-glass user while the tenant requires SSO,
// after their password was right: only while they still hold the owner
// role (one role lookup on this rare path; RBAC off: no role to check),
// and only through a second factor they already have. A password alone
// never opens a session, nor lets whoever holds it enrol a factor of
// their own. Any other case is refused like a non-break-glass user
// (ErrSSORequired), with its own reason in the login.failed event; a
// store failure is ErrUnavailable. A sign-in let through to its second
// factor is recorded (login.break_glass) and its session flagged; its
// password is rehashed, if outdated, once its pending sign-in started
// (see signIn.rehash).
// stillBreakGlass is the break-glass check again, when the second factor
// of a break-glass sign-in completes: while the tenant still requires SSO
// (pol, read for this step), the user must still be its break-glass owner
// and hold the owner role; otherwise the sign-in is refused like any
// password sign-in under SSO (ErrSSORequired, recorded).
func (g *Guard) stillBreakGlass(ctx context.Context, a attempt, pol Policy) error {
	if !pol.RequireSSO {
		return nil // password sign-in is allowed again
	}
	u := *a.user
	if u.ID != pol.BreakGlassUser {
		return g.loginFailed(ctx, a, ReasonBreakGlassNotOwner, ErrSSORequired)
	}
	if g.rbac == nil {
		return nil
	}
	roles, err := g.rbac.RolesOf(ctx, u.Tenant, rbac.User(u.ID))
	if err != nil {
		return g.loginFailed(ctx, a, ReasonUnavailable, unavailable("load roles", err))
	}
	if !slices.Contains(roles, rbac.Owner) {
		return g.loginFailed(ctx, a, ReasonBreakGlassNotOwner, ErrSSORequired)
	}
	return nil
}

func (g *Guard) breakGlass(ctx context.Context, a attempt, gt gate, si signIn) (LoginResult, error) {
	u := *a.user
	if g.rbac != nil {
		roles, err := g.rbac.RolesOf(ctx, u.Tenant, rbac.User(u.ID))
		if err != nil {
			return LoginResult{}, g.loginFailed(ctx, a, ReasonUnavailable, unavailable("load roles", err))
		}
		if !slices.Contains(roles, rbac.Owner) {
			return LoginResult{}, g.loginFailedAt(ctx, a, gt, ReasonBreakGlassNotOwner, ErrSSORequired)
		}
	}
	factors, err := g.mfa.Factors(ctx, u.Tenant, u.ID)
	if err != nil {
		return LoginResult{}, g.loginFailed(ctx, a, ReasonUnavailable, unavailable("load factors", err))
	}
	confirmed := factors[:0]
	for _, f := range factors {
		if f.Confirmed() {
			confirmed = append(confirmed, f)
		}
	}
	if len(confirmed) == 0 {
		return LoginResult{}, g.loginFailedAt(ctx, a, gt, ReasonBreakGlassNoFactor, ErrSSORequired)
	}
	si.flags |= FlagBreakGlass
	if si.meta == nil {
		si.meta = map[string]string{}
	}
	si.meta["break_glass"] = "true"
	if err := g.record(ctx, a.event(audit.LoginBreakGlass, audit.Success, "")); err != nil {
		return LoginResult{}, err
	}
	return g.pend(ctx, a, gt, si, purposeLogin, confirmed)
}
