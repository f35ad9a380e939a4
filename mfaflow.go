package guard

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/ipfilter"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/session"
)

// Methods of a second factor (SecondFactor.Method).
const (
	MethodTOTP     = "totp"     // a code from an authenticator app
	MethodCode     = "code"     // an email or SMS code sent with SendLoginCode
	MethodRecovery = "recovery" // a recovery code
)

// SecondFactor is the second step of a pending sign-in. It carries no
// CAPTCHA token: the second step asks for none (Config.Captcha).
type SecondFactor struct {
	// Pending is the pending sign-in's token (Pending.Token).
	Pending string
	// Method is MethodTOTP, MethodCode or MethodRecovery.
	Method string
	// FactorID picks the TOTP factor (optional: "" tries each) or, when
	// enrolling, names the factor being confirmed.
	FactorID string
	Code     string
	// IP and UserAgent of the client; the UserAgent must be the one the
	// sign-in started with.
	IP, UserAgent string
}

// pending is a live pending sign-in with its user, loaded for a step.
type pending struct {
	txn mfa.Transaction
	a   attempt
	pol Policy
}

// loadPending finds the pending sign-in behind token for this client and
// its user, who must still be active, and not reactivated since it began
// (a deactivation came and went: ErrLoginExpired, reason deactivated).
func (g *Guard) loadPending(ctx context.Context, token, ip, ua, purpose string) (pending, error) {
	if g.mfa == nil {
		return pending{}, ErrMFANotConfigured
	}
	txn, err := g.mfa.LookupTransaction(ctx, token, ua)
	if err != nil {
		if isMFAClean(err) {
			return pending{}, ErrLoginExpired
		}
		return pending{}, unavailable("load pending sign-in", err)
	}
	txnPurpose, stamp, stamped := strings.Cut(txn.Purpose, ":")
	stamp, reactivated, hasReactivated := strings.Cut(stamp, ":")
	if txnPurpose != purpose {
		return pending{}, ErrLoginExpired
	}
	pol, err := g.EffectivePolicy(ctx, txn.Tenant)
	if err != nil {
		return pending{}, err
	}
	u, err := g.stores.Users.User(ctx, txn.Tenant, txn.UserID)
	if err != nil {
		if errors.Is(err, auth.ErrNotFound) {
			return pending{}, ErrLoginExpired
		}
		return pending{}, unavailable("load user", err)
	}
	p := pending{txn: txn, pol: pol, a: attempt{req: LoginRequest{Tenant: txn.Tenant, IP: ip, UserAgent: ua}, email: u.Email, user: &u}}
	if err := checkClientIP(ip); err != nil {
		return pending{}, g.mfaFailed(ctx, p.a, ReasonBadInput, "", gate{}, err)
	}
	if u.Status != auth.StatusActive {
		return pending{}, g.mfaFailed(ctx, p.a, ReasonDeactivated, "", gate{}, ErrLoginExpired)
	}
	// A deactivation ends every pending sign-in of the user, whether or
	// not they are reactivated since: the transaction keeps the user's
	// last reactivation as the sign-in read it (pendPurpose), and any
	// other now is one since (this Guard writes it for every user, empty
	// for one never reactivated). Only one an older Guard began lacks it;
	// that is compared by time, as the password stamp's fallback is: a
	// reactivation after the sign-in began ends it.
	moved := reactivated != reactivationStamp(u)
	if !hasReactivated {
		moved = u.ReactivatedAt.After(txn.CreatedAt)
	}
	if moved {
		return pending{}, g.mfaFailed(ctx, p.a, ReasonDeactivated, "", gate{}, ErrLoginExpired)
	}
	// A pending sign-in started with a password ends when the password
	// is changed or reset after it started (Login saw a change made
	// before); one marked compromised meanwhile goes on and gets a
	// session that must change it (createSession reads the mark). The
	// transaction keeps the password's state as the sign-in read it
	// (pendPurpose): any other state now is a change, whatever the clocks
	// of the replicas that stamped the two. One kept without it (begun by
	// an older Guard) is compared by time.
	moved = stamp != passwordStamp(u)
	if !stamped {
		moved = u.PasswordChangedAt.After(txn.CreatedAt)
	}
	if txn.Flags&FlagSSO == 0 && moved {
		return pending{}, g.mfaFailed(ctx, p.a, ReasonPasswordChanged, "", gate{}, ErrLoginExpired)
	}
	// Under RequireSSO only the break-glass owner signs in with a
	// password, and the password step marked them (stillBreakGlass checks
	// again once the code is right). A password sign-in started before the
	// tenant required SSO ends here, rather than give a session the
	// policy would end at its first request.
	if pol.RequireSSO && txn.Flags&(FlagSSO|FlagBreakGlass) == 0 {
		return pending{}, g.mfaFailed(ctx, p.a, ReasonSSORequired, "", gate{}, ErrSSORequired)
	}
	if err := g.checkIPString(ctx, u.Tenant, ipfilter.Users, ip, p.a.actor(), ua); err != nil {
		return pending{}, err
	}
	if purpose == purposeEnrol {
		// An enrolment is what a sign-in without a second factor the
		// policy accepts must do first. Once the user has confirmed a
		// factor since it started (elsewhere: their own enrolment), it
		// is over: whoever holds it has proved only the password, and
		// must now sign in with that factor, not add one of their own.
		// Once the user has one the policy accepts, whenever confirmed,
		// it is over too: a confirmation that landed between the sign-in's
		// read of the factors and its start is not after it.
		fs, err := g.mfa.Factors(ctx, u.Tenant, u.ID)
		if err != nil {
			return pending{}, g.mfaFailed(ctx, p.a, ReasonUnavailable, "", gate{}, unavailable("load factors", err))
		}
		if strongFactor(fs) {
			return pending{}, g.mfaFailed(ctx, p.a, ReasonFactorAdded, "", gate{}, ErrLoginExpired)
		}
		for _, f := range fs {
			if f.Confirmed() && f.ConfirmedAt.After(txn.CreatedAt) {
				return pending{}, g.mfaFailed(ctx, p.a, ReasonFactorAdded, "", gate{}, ErrLoginExpired)
			}
		}
	}
	return p, nil
}

// mfaFailed records an mfa.failed event (and login.locked if the attempt
// started a lock) and returns err.
func (g *Guard) mfaFailed(ctx context.Context, a attempt, reason string, kind mfa.Kind, gt gate, err error) error {
	e := a.event(audit.MFAFailed, audit.Failure, reason)
	if kind != "" {
		e.Meta = map[string]string{"kind": string(kind)}
	}
	if rerr := g.recordFailure(ctx, a, gt, e); rerr != nil {
		return rerr
	}
	return err
}

// codeReason maps an mfa error about a code to an audit reason; ok is
// false for a store failure.
func codeReason(err error) (reason string, ok bool) {
	var ie *mfa.InputError
	switch {
	case errors.Is(err, mfa.ErrReplay):
		return ReasonCodeReuse, true
	case errors.Is(err, mfa.ErrExpired):
		return ReasonCodeExpired, true
	case errors.Is(err, mfa.ErrTooManyTries):
		return ReasonTooManyTries, true
	case errors.Is(err, mfa.ErrInvalidCode), errors.Is(err, mfa.ErrNotFound):
		return ReasonBadCode, true
	case errors.As(err, &ie):
		return ReasonBadInput, true
	}
	return "", false
}

// CompleteLogin checks the second factor of a pending sign-in and, when it
// is right, creates the session. Every refusal of the code is
// ErrInvalidCode (the cause is in the mfa.failed event; a client IP over
// 64 bytes is an *InputError, recorded as bad_input) and counts as a
// failed attempt in the same lockout as wrong passwords. No CAPTCHA is
// asked here, whatever the account's failures (Config.Captcha): the step
// comes after a right password, its guesses end at the account lock, and
// the password step of the next login asks for a CAPTCHA once they reach
// Config.CaptchaAfter. An unknown,
// expired or used pending sign-in, or one started by another client, is
// ErrLoginExpired. A password sign-in started before the tenant required
// SSO (Policy.RequireSSO) ends at its next step with ErrSSORequired
// (mfa.failed, reason sso_required), as this and every other step of a
// pending sign-in or enrolment do; the break-glass owner's, started under
// the policy, goes on. A TOTP code is accepted once; two concurrent
// requests with one right code get one session. A right code whose pending
// sign-in cannot be used up (another request completed it meanwhile, or it
// expired: ErrLoginExpired; a store failure: ErrUnavailable) is recorded
// as mfa.failed (reason login_expired or unavailable) and does not count
// as a failed attempt. So is a TOTP code sent twice for one pending
// sign-in (a form submitted twice) and found used by the other request,
// which completes it (ErrLoginExpired, login_expired): that is no reuse.
// That request marks the code used before it completes the sign-in, so
// one that finds the code used while its pending sign-in is still there
// waits for it to be completed, up to a second (looking again every
// 20 ms; a cancelled ctx ends the wait). A TOTP code found used otherwise
// (by another sign-in; by a request of this one that has not completed
// it within the wait; or when the look-up of the pending sign-in fails in
// the store) is ErrInvalidCode, recorded as reuse, and the user is told
// (SECURITY-CHECKLIST MF-5): a real reuse is answered a second late. A
// pending sign-in gone otherwise (expired) is not waited for. An emailed
// or texted code is used up when it is checked right: one submitted
// twice is answered the same way (ErrLoginExpired, not counted) when the
// other request completes the sign-in, and a code found gone otherwise
// is a wrong code (bad_code, counted, a second late; nobody is told).
//
// A recovery code is used up when it is checked, and never given back,
// whatever ends the sign-in after (another request completed it
// meanwhile, ErrLoginExpired, or a store failure, ErrUnavailable); the
// user is told. Its use is recorded as
// mfa.recovery_used: failed (reason login_expired or unavailable) when the
// pending sign-in cannot be consumed, else a success with mfa.succeeded,
// before the rest of the sign-in (whose failure then leaves it spent and
// on record). If that record cannot be written, the code stays spent, off
// the record, and ErrUnavailable is returned. A throttle-store failure is
// ErrUnavailable, recorded (mfa.failed, or login.failed once the code was
// right, reason unavailable) as Login records it.
//
// A recovery code stands in for the user's confirmed factors, and its
// sign-in counts as MFA only as far as they would: with an authenticator
// app or an SMS factor the session gets FlagMFA; with an email factor
// alone (whose confirmation made the codes) the sign-in is taken as an
// email code's — FlagEmailCode, no FlagMFA, and under the tenant's
// RequireMFA without MFAAllowEmail the user must enrol an authenticator
// app (LoginResult.Pending with Enrol; inside MFAGrace, a session flagged
// FlagMustEnrol). The code is spent all the same.
//
// That enrolment is for a user without a factor the policy accepts: one
// who has an authenticator app or an SMS factor signs in with it. Their
// email code, right as it is, is refused there (ErrInvalidCode, recorded
// as mfa.failed with reason email_code_not_accepted, and only so: neither
// a guess nor a success, the account's failures are kept; the code is
// spent and the sign-in stays pending, for that factor), or whoever held
// the password and the mailbox could add an app of their own beside the
// user's.
func (g *Guard) CompleteLogin(ctx context.Context, sf SecondFactor) (LoginResult, error) {
	p, err := g.loadPending(ctx, sf.Pending, sf.IP, sf.UserAgent, purposeLogin)
	if err != nil {
		return LoginResult{}, err
	}
	u := *p.a.user
	kind := methodKind(sf.Method)
	gt, reason, err := g.reserve(ctx, u.Tenant, u.ID, u.Email, sf.IP)
	if err != nil {
		return LoginResult{}, g.mfaFailed(ctx, p.a, ReasonUnavailable, kind, gate{}, err)
	}
	if reason != "" {
		return LoginResult{}, g.mfaFailed(ctx, p.a, reason, kind, gate{}, ErrInvalidCode)
	}
	var (
		recovery *mfa.RecoveryResult
		strong   bool   // a recovery code's user has a factor that counts as MFA on its own
		factorID string // the factor proved ("" for a recovery code)
	)
	switch sf.Method {
	case MethodTOTP:
		var f mfa.Factor
		f, err = g.mfa.VerifyTOTP(ctx, u.Tenant, u.ID, sf.FactorID, sf.Code)
		if err == nil {
			kind, factorID = f.Kind, f.ID
		}
	case MethodCode:
		var f mfa.Factor
		f, err = g.mfa.VerifyCode(ctx, u.Tenant, u.ID, p.txn.ID(), sf.Code)
		kind, factorID = f.Kind, f.ID
		var ce *mfa.CodeError
		if errors.As(err, &ce) {
			kind = ce.Kind // refused once found: the stored code knows its factor
		}
	case MethodRecovery:
		// What the code stands in for, read before it is spent: a store
		// failure here leaves it unused.
		fs, ferr := g.mfa.Factors(ctx, u.Tenant, u.ID)
		if ferr != nil {
			return LoginResult{}, g.mfaFailed(ctx, p.a, ReasonUnavailable, kind, gate{}, unavailable("load factors", ferr))
		}
		strong = strongFactor(fs)
		var r mfa.RecoveryResult
		r, err = g.mfa.UseRecoveryCode(ctx, u.Tenant, u.ID, sf.Code)
		recovery = &r
	default:
		return LoginResult{}, g.mfaFailed(ctx, p.a, ReasonBadInput, "", gt, &InputError{Field: "method", Reason: "unknown"})
	}
	if err != nil {
		reason, ok := codeReason(err)
		if !ok {
			return LoginResult{}, g.mfaFailed(ctx, p.a, ReasonUnavailable, kind, gate{}, unavailable("second factor", err))
		}
		// A TOTP step found used, or a sent code found gone (a right
		// code is used up when checked), may be a request of this very
		// sign-in that completed it since it was loaded (a form
		// submitted twice), or did within reuseSettleWait: this one lost
		// the race, as if its code had come second to ConsumeTransaction
		// below. No guess, nor anyone else's use of the code: the attempt
		// is given back and the user is not told.
		used := reason == ReasonCodeReuse || sf.Method == MethodCode && errors.Is(err, mfa.ErrNotFound)
		if used && lostRace(ctx, func() raceState { return g.signInRace(ctx, p, sf) }) {
			_ = g.settle(ctx, gt, false)
			return LoginResult{}, g.mfaFailed(ctx, p.a, ReasonLoginExpired, kind, gate{}, ErrLoginExpired)
		}
		if reason == ReasonCodeReuse {
			g.noticeReuse(ctx, u)
		}
		return LoginResult{}, g.mfaFailed(ctx, p.a, reason, kind, gt, ErrInvalidCode)
	}
	if kind == mfa.KindEmail && recovery == nil && p.pol.RequireMFA && !p.pol.MFAAllowEmail {
		// A right email code the policy does not take from this user: no
		// success, and no guess either (the attempt is given back, the
		// account's failures kept); the sign-in stays pending for the
		// factor it does take.
		fs, ferr := g.mfa.Factors(ctx, u.Tenant, u.ID)
		switch {
		case ferr != nil:
			return LoginResult{}, g.mfaFailed(ctx, p.a, ReasonUnavailable, kind, gate{}, unavailable("load factors", ferr))
		case emailCodeRefused(p.pol, fs):
			_ = g.settle(ctx, gt, false)
			return LoginResult{}, g.mfaFailed(ctx, p.a, ReasonEmailCodeNotAccepted, kind, gate{}, ErrInvalidCode)
		}
	}
	// Exactly one completion per pending sign-in, however many right codes race.
	if _, err := g.mfa.ConsumeTransaction(ctx, sf.Pending, sf.UserAgent); err != nil {
		reason, cerr := consumeFailure(err)
		// The code was right: not a guess, and the attempt is given back
		// (a failure to give it back leaves it counted, the safe side).
		_ = g.settle(ctx, gt, false)
		if recovery == nil {
			return LoginResult{}, g.mfaFailed(ctx, p.a, reason, kind, gate{}, cerr)
		}
		// The recovery code is used up though this sign-in ends here
		// (another request completed it first, say): on record all the
		// same, as a failed recovery_used, and the user is told.
		if err := g.record(ctx, g.recoveryUsed(ctx, p.a, *recovery, audit.Failure, reason)); err != nil {
			return LoginResult{}, err
		}
		return LoginResult{}, cerr
	}
	events := []audit.Event{p.a.event(audit.MFASucceeded, audit.Success, "")}
	events[0].Meta = map[string]string{"kind": string(kind)}
	if recovery != nil {
		events = append(events, g.recoveryUsed(ctx, p.a, *recovery, audit.Success, ""))
	}
	if err := g.record(ctx, events...); err != nil {
		return LoginResult{}, err
	}
	if err := g.settle(ctx, gt, true); err != nil {
		return LoginResult{}, g.loginFailed(ctx, p.a, ReasonUnavailable, err)
	}
	if p.txn.Flags&FlagBreakGlass != 0 {
		// The password step found the user to be the break-glass owner;
		// the policy or the roles may have changed since.
		if err := g.stillBreakGlass(ctx, p.a, p.pol); err != nil {
			return LoginResult{}, err
		}
	}
	si := signIn{password: p.txn.Flags&FlagSSO == 0, flags: p.txn.Flags, mfa: kind, factor: factorID}
	// A recovery code stands in for the user's confirmed factors: it
	// counts as MFA only as far as they would. Without an authenticator
	// app or SMS factor (an email address alone, say) it is taken as an
	// email code.
	si.emailCode = kind == mfa.KindEmail || recovery != nil && !strong
	if si.emailCode && p.pol.RequireMFA && !p.pol.MFAAllowEmail {
		// An email code does not meet the tenant's "require MFA" on its
		// own (Policy.MFAAllowEmail is off): having proved it, the user
		// enrols an authenticator app before getting a session, or,
		// inside the grace period, gets one to be sent to enrol.
		if !g.now().Before(p.pol.MFARequiredSince.Add(p.pol.MFAGrace)) {
			res, err := g.pend(ctx, p.a, gate{}, si, purposeEnrol, nil)
			res.RecoveryLeft = recovery
			return res, err
		}
		si.flags |= FlagMustEnrol
	}
	res, err := g.createSession(ctx, p.a, p.pol, si)
	res.RecoveryLeft = recovery
	return res, err
}

// signInRace tells where the pending sign-in p, live when it was loaded
// for sf, stands now that sf's TOTP code was found used: raceLost once it
// has been used up, before its expiry — completed by a request of the
// same sign-in (the token and client of sf) with a right second factor,
// the only thing that ends a live pending sign-in; raceOpen while it is
// still there (such a request may have used the code and not yet
// consumed it); raceOver once it has expired, and when the store fails.
func (g *Guard) signInRace(ctx context.Context, p pending, sf SecondFactor) raceState {
	_, err := g.mfa.LookupTransaction(ctx, sf.Pending, sf.UserAgent)
	switch {
	case err == nil:
		return raceOpen
	case errors.Is(err, mfa.ErrNotFound) && p.txn.LiveAt(g.now()):
		return raceLost
	}
	return raceOver
}

// reuseSettleWait bounds how long a second step whose TOTP code was found
// used waits for a request of its own sign-in or session (the same form
// submitted twice) to complete: that request marks the code used before
// it completes, and the two reach the check milliseconds apart. A real
// reuse is answered this much later; a harmless cost.
var reuseSettleWait = 1 * time.Second

// reuseSettlePoll is how often the wait looks again.
const reuseSettlePoll = 20 * time.Millisecond

// raceState is where a pending sign-in or a session whose TOTP code a
// request found used stands, for that request (lostRace).
type raceState int

const (
	// raceOpen: as it was; a request of its own that used the code may
	// still complete it.
	raceOpen raceState = iota
	// raceLost: completed by a request of its own since: the request
	// lost a race to it, no reuse.
	raceLost
	// raceOver: ended otherwise, or the store failed: nothing to wait
	// for, a reuse.
	raceOver
)

// lostRace reports whether a request that found its TOTP code used lost a
// race to a request of its own sign-in or session, as look tells: at
// once, or within reuseSettleWait while look says raceOpen, looking again
// every reuseSettlePoll. It reports false when look says raceOver, when
// the bound passes, and when ctx ends: the caller then takes the code for
// a reuse (a notice too many is the safe side; both answers refuse).
func lostRace(ctx context.Context, look func() raceState) bool {
	st := look()
	if st != raceOpen {
		return st == raceLost
	}
	bound := time.NewTimer(reuseSettleWait)
	defer bound.Stop()
	poll := time.NewTicker(reuseSettlePoll)
	defer poll.Stop()
	for {
		select {
		case <-ctx.Done():
			return false
		case <-bound.C:
			return false
		case <-poll.C:
		}
		if st := look(); st != raceOpen {
			return st == raceLost
		}
	}
}

// methodKind is the kind of factor a second step by method is for, as
// its mfa.failed events record it before the code is checked: "" for a
// code sent by email or SMS (the stored code tells which, once VerifyCode
// has found it: mfa.CodeError) and an unknown method.
func methodKind(method string) mfa.Kind {
	switch method {
	case MethodTOTP:
		return mfa.KindTOTP
	case MethodRecovery:
		return "recovery"
	}
	return ""
}

// consumeFailure is the reason to record, and the error to return, when
// the pending sign-in of a right second factor cannot be consumed:
// ReasonLoginExpired and ErrLoginExpired when it is gone (completed by a
// request that raced this one, or expired), ReasonUnavailable and
// ErrUnavailable when the store failed.
func consumeFailure(err error) (string, error) {
	if isMFAClean(err) {
		return ReasonLoginExpired, ErrLoginExpired
	}
	return ReasonUnavailable, unavailable("consume pending sign-in", err)
}

// strongFactor reports whether fs holds a confirmed factor that meets a
// "require MFA" policy on its own, email codes not allowed (mfa.Satisfies):
// what a recovery code of the user counts as.
// emailCodeRefused reports whether pol refuses an email code at sign-in
// from the user whose factors are fs: RequireMFA without MFAAllowEmail,
// and the user has a factor the policy accepts (see CompleteLogin).
func emailCodeRefused(pol Policy, fs []mfa.Factor) bool {
	return pol.RequireMFA && !pol.MFAAllowEmail && strongFactor(fs)
}

func strongFactor(fs []mfa.Factor) bool {
	kinds := make([]mfa.Kind, 0, len(fs))
	for _, f := range fs {
		if f.Confirmed() {
			kinds = append(kinds, f.Kind)
		}
	}
	return mfa.Satisfies(kinds, false)
}

// recoveryUsed is the mfa.recovery_used event of a's use of a recovery
// code, with r.Left codes left, and mails the user a notice of it: of a
// sign-in, or (outcome Failure) of a code spent on one that did not complete.
func (g *Guard) recoveryUsed(ctx context.Context, a attempt, r mfa.RecoveryResult, outcome audit.Outcome, reason string) audit.Event {
	u := *a.user
	subject, what := "A recovery code was used to sign in", "used to sign in to your account"
	if outcome != audit.Success {
		subject, what = "A recovery code was used up", "used up in a sign-in to your account that did not complete"
	}
	left := "none are left"
	switch {
	case r.Left == 1:
		left = "1 is left"
	case r.Left > 1:
		left = strconv.Itoa(r.Left) + " are left"
	}
	g.notify(ctx, u, subject, "One of your recovery codes was just "+what+"; "+left+". "+
		"If it was not you, change your password and generate new recovery codes now.")
	e := a.event(audit.RecoveryUsed, outcome, reason)
	e.Target = u.ID
	e.Meta = map[string]string{"left": strconv.Itoa(r.Left)}
	return e
}

// SendLoginCode sends an email or SMS code for a pending sign-in to one of
// the user's confirmed email or SMS factors. The answer is the same whether
// a code went out or a limit held it back (resend cool-down, send limits
// per client IP, account, destination and tenant: mfa.SendLimits); which
// one is in the audit log (mfa.code_suppressed, reason cool_down,
// rate_limited, or tenant_limit for the tenant's limit; at most 30 of a
// reason a minute for one user, so that a loop of sends cannot flood the
// log, the 30th with Meta recording_paused). A provider failure is returned (ErrUnavailable): the sign-in is not
// bypassed. Any other factor, a pending one (an enrolment not yet
// confirmed) included, is an *InputError, recorded as mfa.failed with
// reason bad_input, and nothing is sent. So is an email factor whose code
// CompleteLogin would refuse (the tenant's RequireMFA without
// MFAAllowEmail, and the user has an authenticator app or SMS factor:
// Pending.Factors leaves it out), recorded with reason
// email_code_not_accepted.
func (g *Guard) SendLoginCode(ctx context.Context, pendingToken, factorID, ip, ua string) error {
	p, err := g.loadPending(ctx, pendingToken, ip, ua, purposeLogin)
	if err != nil {
		return err
	}
	u := *p.a.user
	// mfa sends a pending factor its enrolment code: a sign-in, proved by
	// the password alone, must not mail an address the user never proved
	// (nor replace the code the enrolment waits for).
	fs, err := g.mfa.Factors(ctx, u.Tenant, u.ID)
	if err != nil {
		return g.mfaFailed(ctx, p.a, ReasonUnavailable, "", gate{}, mfaErr("load factors", err))
	}
	f, ok := factorByID(fs, factorID)
	switch {
	case !ok || !f.Confirmed():
		return g.recordSend(ctx, p.a, mfa.SendResult{}, mfa.ErrNotFound)
	case f.Kind == mfa.KindEmail && emailCodeRefused(p.pol, fs):
		// Its code would be refused (CompleteLogin): none is sent.
		e := p.a.event(audit.MFAFailed, audit.Failure, ReasonEmailCodeNotAccepted)
		e.Target = f.ID
		e.Meta = map[string]string{"kind": string(f.Kind)}
		if err := g.recordActorRefusal(ctx, e); err != nil {
			return err
		}
		return &InputError{Field: "factor", Reason: "is an email factor, and the tenant accepts no email code from a user with an authenticator app or SMS"}
	}
	res, err := g.mfa.SendCode(ctx, mfa.SendRequest{Tenant: u.Tenant, UserID: u.ID, FactorID: factorID, Txn: p.txn.ID(), IP: g.throttleIP(ip)})
	return g.recordSend(ctx, p.a, res, err)
}

// recordSend audits the outcome of a code send and returns what the
// caller may show: nothing for sent or suppressed alike. The refusals, a
// code held back and a factor ID that names no confirmed email or SMS
// factor, are recorded as refusals the caller may repeat at will
// (recordActorRefusal: at most 30 of a kind a minute), since nothing but
// the send limits stands between a holder of a pending sign-in and a loop
// of sends.
func (g *Guard) recordSend(ctx context.Context, a attempt, res mfa.SendResult, err error) error {
	var ie *mfa.InputError
	switch {
	case errors.As(err, &ie), errors.Is(err, mfa.ErrNotFound):
		if rerr := g.recordActorRefusal(ctx, a.event(audit.MFAFailed, audit.Failure, ReasonBadInput)); rerr != nil {
			return rerr
		}
		return &InputError{Field: "factor", Reason: "is not a confirmed email or SMS factor of the user"}
	case err != nil:
		return g.mfaFailed(ctx, a, ReasonUnavailable, res.Factor.Kind, gate{}, unavailable("send code", err))
	}
	if res.Suppressed != nil {
		e := a.event(audit.MFACodeSuppressed, audit.Failure, suppressReason(res.Suppressed))
		e.Target = res.Factor.ID
		e.Meta = map[string]string{"kind": string(res.Factor.Kind)}
		return g.recordActorRefusal(ctx, e)
	}
	e := a.event(audit.MFACodeSent, audit.Success, "")
	e.Target = res.Factor.ID
	e.Meta = map[string]string{"kind": string(res.Factor.Kind)}
	return g.record(ctx, e)
}

// ReasonTenantLimit is the Reason of an mfa.code_suppressed event whose
// code the tenant's send limit held back (mfa.SendLimits.PerTenant): the
// codes of the whole tenant, not of one client, account or destination,
// reached their bound for the window. A sign of SMS pumping spread over
// many accounts and numbers (or of a limit set too low): until the window
// ends no one in the tenant is sent a code.
const ReasonTenantLimit = "tenant_limit"

// suppressReason is the Reason of the mfa.code_suppressed event of a code
// held back by err, a SendResult.Suppressed.
func suppressReason(err error) string {
	var rl *mfa.RateLimitError
	switch {
	case errors.Is(err, mfa.ErrCoolDown):
		return "cool_down"
	case errors.As(err, &rl) && rl.Scope == "tenant":
		return ReasonTenantLimit
	case errors.Is(err, mfa.ErrRateLimited):
		return "rate_limited"
	case errors.Is(err, mfa.ErrDestinationNotAllowed):
		return "destination_not_allowed"
	}
	return "suppressed"
}

// BeginPendingTOTP starts enrolling an authenticator app during a pending
// sign-in of a user who must enrol (Pending.Enrol): show the QR code, then
// call CompletePendingEnrolment with a first code.
func (g *Guard) BeginPendingTOTP(ctx context.Context, pendingToken, ip, ua, label string) (mfa.TOTPEnrolment, error) {
	p, err := g.loadPending(ctx, pendingToken, ip, ua, purposeEnrol)
	if err != nil {
		return mfa.TOTPEnrolment{}, err
	}
	return g.beginTOTP(ctx, p.a, label)
}

func (g *Guard) beginTOTP(ctx context.Context, a attempt, label string) (mfa.TOTPEnrolment, error) {
	u := *a.user
	en, err := g.mfa.BeginTOTP(ctx, u.Tenant, u.ID, u.Email, label)
	if ie := (*mfa.InputError)(nil); errors.As(err, &ie) {
		return mfa.TOTPEnrolment{}, g.enrolRefused(ctx, a, mfa.KindTOTP, err)
	}
	if err != nil {
		return mfa.TOTPEnrolment{}, mfaErr("begin enrolment", err)
	}
	e := a.event(audit.MFAEnrolStarted, audit.Success, "")
	e.Target, e.Meta = en.Factor.ID, map[string]string{"kind": string(mfa.KindTOTP)}
	if err := g.record(ctx, e); err != nil {
		return mfa.TOTPEnrolment{}, err
	}
	return en, nil
}

// CompletePendingEnrolment confirms the factor begun with BeginPendingTOTP
// with its first code and creates the session, returning the user's first
// set of recovery codes (LoginResult.RecoveryCodes), which replaces any
// set made before (as ConfirmFactor's does; as there, none when the
// confirmation of another factor running at once made the set). A wrong
// code is ErrInvalidCode and counts in the lockout. An enrolment that
// cannot be recorded, or that a store failure stops before it is, is
// undone as for ConfirmFactor, and no session is created. A pending
// enrolment ends once the user has confirmed a second factor since it
// started (their own enrolment elsewhere): this and BeginPendingTOTP then
// give ErrLoginExpired (mfa.failed, reason factor_added), so that someone
// with the password alone cannot add an authenticator of their own; so
// does a second submission of the same code racing the first, which
// confirmed the factor. A factor confirmed and recorded whose pending
// enrolment cannot then be used up (gone: ErrLoginExpired; a store
// failure: ErrUnavailable) stays enrolled, and no session is created: the
// refusal is recorded as mfa.failed (reason login_expired or unavailable)
// and does not count as a failed attempt; the user signs in with the new
// factor.
//
// Once the factor stands (confirmed and recorded), the recovery codes it
// made are in LoginResult.RecoveryCodes whatever happens next, with the
// error of a later step (the pending enrolment not used up, the attempt
// not settled, the session not created): the factor stays, and so do
// its codes, which are shown nowhere else. Show them then too, before
// sending the user to sign in with the new factor.
func (g *Guard) CompletePendingEnrolment(ctx context.Context, sf SecondFactor) (LoginResult, error) {
	p, err := g.loadPending(ctx, sf.Pending, sf.IP, sf.UserAgent, purposeEnrol)
	if err != nil {
		return LoginResult{}, err
	}
	u := *p.a.user
	gt, reason, err := g.reserve(ctx, u.Tenant, u.ID, u.Email, sf.IP)
	if err != nil {
		return LoginResult{}, g.mfaFailed(ctx, p.a, ReasonUnavailable, mfa.KindTOTP, gate{}, err)
	}
	if reason != "" {
		return LoginResult{}, g.mfaFailed(ctx, p.a, reason, mfa.KindTOTP, gate{}, ErrInvalidCode)
	}
	codes, err := g.confirmFactor(ctx, p.a, gt, false, mfa.KindTOTP, sf.FactorID, sf.Code, session.Hash{})
	if errors.Is(err, ErrConflict) {
		// The factor was confirmed meanwhile (this form submitted twice
		// at once): the pending enrolment is over, as loadPending finds
		// it once a factor is confirmed.
		return LoginResult{}, g.mfaFailed(ctx, p.a, ReasonFactorAdded, mfa.KindTOTP, gate{}, ErrLoginExpired)
	}
	if err != nil {
		return LoginResult{}, err
	}
	// The factor is enrolled and on record, with its codes: from here on
	// they go back with whatever error ends the sign-in, else nobody
	// would ever see them.
	withCodes := LoginResult{RecoveryCodes: codes}
	if _, err := g.mfa.ConsumeTransaction(ctx, sf.Pending, sf.UserAgent); err != nil {
		// This sign-in ends here, on record too, and its attempt (a
		// right code) is given back.
		reason, cerr := consumeFailure(err)
		_ = g.settle(ctx, gt, false)
		return withCodes, g.mfaFailed(ctx, p.a, reason, mfa.KindTOTP, gate{}, cerr)
	}
	if err := g.settle(ctx, gt, true); err != nil {
		return withCodes, g.loginFailed(ctx, p.a, ReasonUnavailable, err)
	}
	res, err := g.createSession(ctx, p.a, p.pol, signIn{password: p.txn.Flags&FlagSSO == 0, flags: p.txn.Flags, mfa: mfa.KindTOTP, factor: sf.FactorID})
	res.RecoveryCodes = codes
	return res, err
}

// confirmFactor confirms a pending factor with its first code, records
// the enrolment, and returns a first set of recovery codes when it is the
// user's first factor (none was confirmed when it began), replacing any
// earlier set, or when the user has no codes left; none when another call
// stored a set since it read the user's (mfa.Manager.ReplaceRecoverySet).
// A wrong code is recorded and gives ErrInvalidCode.
// With settle, the attempt gt is settled once the code is accepted (its
// failure recorded as mfa.failed); without, it is the caller's to settle.
// A failure after the code was accepted, up to the record, undoes the
// enrolment (undoEnrolment).
//
// A new factor changes how the user signs in: every session of the user
// but keep ends (SECURITY-CHECKLIST SE-9).
func (g *Guard) confirmFactor(ctx context.Context, a attempt, gt gate, settle bool, kind mfa.Kind, factorID, code string, keep session.Hash) ([]string, error) {
	u := *a.user
	// The user's recovery codes, then factors, as they are before this
	// confirmation: which set it may replace (see below). In this order,
	// so that a set found was not made by a confirmation that the read
	// of the factors misses.
	set, err := g.mfa.RecoverySet(ctx, u.Tenant, u.ID)
	if err != nil {
		return nil, g.mfaFailed(ctx, a, ReasonUnavailable, kind, gate{}, unavailable("load recovery codes", err))
	}
	fs, err := g.stores.MFA.Factors.Factors(ctx, u.Tenant, u.ID)
	if err != nil {
		return nil, g.mfaFailed(ctx, a, ReasonUnavailable, kind, gate{}, unavailable("load factors", err))
	}
	// The pending factor as stored, to put back if the enrolment cannot
	// be recorded.
	var pending mfa.Factor
	first := true
	for _, x := range fs {
		switch {
		case x.ID == factorID:
			pending = x
		case x.Confirmed():
			first = false
		}
	}
	var f mfa.Factor
	if kind == mfa.KindTOTP {
		f, err = g.mfa.ConfirmTOTP(ctx, u.Tenant, u.ID, factorID, code)
	} else {
		f, err = g.mfa.ConfirmOOB(ctx, u.Tenant, u.ID, factorID, code)
	}
	if errors.Is(err, mfa.ErrConflict) {
		// Confirmed already: the form submitted twice, one after the
		// other or at once. No guess, nor an outage: the attempt's
		// reservation is given back (a failure to give it back leaves it
		// counted, the safe side) and nothing is recorded.
		_ = g.settle(ctx, gt, false)
		return nil, ErrConflict
	}
	if errors.Is(err, mfa.ErrLimit) {
		// The code was right, but the user has confirmed
		// mfa.Config.MaxFactors factors since this one was begun: no
		// guess either; the factor stays pending and, as when it is
		// begun over the limit, nothing is recorded.
		_ = g.settle(ctx, gt, false)
		return nil, mfa.ErrLimit
	}
	if err != nil {
		reason, ok := codeReason(err)
		if !ok {
			return nil, g.mfaFailed(ctx, a, ReasonUnavailable, kind, gate{}, unavailable("confirm factor", err))
		}
		return nil, g.mfaFailed(ctx, a, reason, kind, gt, ErrInvalidCode)
	}
	// The factor is active: until the enrolment is on record, a failure
	// puts it back pending (and removes the recovery codes it made, once
	// made).
	var codes []string
	undo := func(err error) ([]string, error) {
		g.undoEnrolment(context.WithoutCancel(ctx), pending, codes)
		return nil, err
	}
	if settle {
		if err := g.settle(ctx, gt, true); err != nil {
			return undo(g.mfaFailed(ctx, a, ReasonUnavailable, kind, gate{}, err))
		}
	}
	ended, err := g.sessions.RevokeUser(ctx, u.Tenant, u.ID, keep)
	if err != nil {
		return undo(unavailable("end sessions", err))
	}
	events := []audit.Event{a.event(audit.MFAEnrolled, audit.Success, "")}
	events[0].Target, events[0].Meta = f.ID, map[string]string{"kind": string(f.Kind), "sessions_ended": strconv.Itoa(g.endedLive(ctx, a.user.Tenant, ended))}
	// The user's first factor makes their first set of recovery codes,
	// replacing any made before it (while they had no factor: proved by
	// no more than the password, they must not stand in for it); a user
	// with factors but no codes left gets a set too. The set is stored
	// only in place of the one read before the confirmation (but for
	// codes used since): of confirmations running at once, which all read
	// the set before any stored theirs, one stores its set and returns
	// it, and the others make none (the user has that one), so that no
	// set returned has been stored over.
	if first || set.Left() == 0 {
		codes, err = g.mfa.ReplaceRecoverySet(ctx, set)
		switch {
		case errors.Is(err, mfa.ErrConflict):
			codes = nil
		case err != nil:
			return undo(mfaErr("recovery codes", err))
		default:
			e := a.event(audit.RecoveryReset, audit.Success, "")
			e.Target = u.ID
			if set.Left() > 0 {
				e.Meta = map[string]string{"replaced": strconv.Itoa(set.Left())}
			}
			events = append(events, e)
		}
	}
	if err := g.record(ctx, events...); err != nil {
		return undo(err)
	}
	g.notify(ctx, u, "A second factor was added to your account",
		article(factorNoun(f.Kind))+" was just added to your account as a second sign-in step. "+
			"If it was not you, contact your administrator now.")
	return codes, nil
}

// undoEnrolment puts back as it was a factor whose confirmation cannot be
// recorded: pending again (its confirmed copy deleted, the pending one
// stored anew) and without the recovery codes the confirmation made
// (codes, nil for none), and only those (dropRecoveryCodes): while they
// are the user's set it ends empty, as before the confirmation, but a
// set stored since by another confirmation running at once (one of
// another factor, which showed its codes) stays as it is. Best effort:
// the caller is already failing.
func (g *Guard) undoEnrolment(ctx context.Context, pending mfa.Factor, codes []string) {
	if _, err := g.stores.MFA.Factors.DeleteFactor(ctx, pending.Tenant, pending.UserID, pending.ID); err != nil {
		return
	}
	_ = g.stores.MFA.Factors.CreateFactor(ctx, pending, 0)
	g.dropRecoveryCodes(ctx, pending.Tenant, pending.UserID, codes)
}

// mfaErr keeps the mfa package's answers about input and state as they are
// and reports store failures as ErrUnavailable.
func mfaErr(op string, err error) error {
	var ie *mfa.InputError
	switch {
	case err == nil:
		return nil
	case errors.As(err, &ie), errors.Is(err, mfa.ErrNotFound), errors.Is(err, mfa.ErrLimit),
		errors.Is(err, mfa.ErrConflict), errors.Is(err, mfa.ErrUnavailable):
		return err
	}
	return unavailable(op, err)
}

// self loads the signed-in user behind p as an attempt.
func (g *Guard) self(ctx context.Context, p Principal) (attempt, error) {
	if p.Kind != KindUser {
		return attempt{}, ErrUnauthenticated
	}
	if g.mfa == nil {
		return attempt{}, ErrMFANotConfigured
	}
	u, err := g.selfUser(ctx, p)
	if err != nil {
		return attempt{}, err
	}
	return attempt{req: LoginRequest{Tenant: p.Tenant, IP: p.IP, UserAgent: p.UserAgent}, email: u.Email, user: &u}, nil
}

// BeginTOTP starts enrolling an authenticator app for the signed-in user,
// who must have authenticated recently (ErrStepUpRequired otherwise). A
// label the mfa package refuses gives its *mfa.InputError, recorded as a
// failed mfa.enrol_started, reason bad_input (as BeginOOB's refusals), and
// nothing is enrolled; so in BeginPendingTOTP.
func (g *Guard) BeginTOTP(ctx context.Context, p Principal, label string) (mfa.TOTPEnrolment, error) {
	if err := g.requireRecentAuth(ctx, p, "", actionMFA); err != nil {
		return mfa.TOTPEnrolment{}, err
	}
	a, err := g.self(ctx, p)
	if err != nil {
		return mfa.TOTPEnrolment{}, err
	}
	return g.beginTOTP(ctx, a, label)
}

// BeginOOB starts enrolling an email address or phone number (kind
// mfa.KindEmail or mfa.KindSMS) for the signed-in user, who must have
// authenticated recently: a code is sent there, and ConfirmFactor with it
// makes the factor active. Sent or held back by a limit (as SendLoginCode
// records it), the answer is the same. A phone number outside mfa.Config.SMSPrefixes is refused: nothing
// is enrolled, and an *InputError is returned (recorded as a failed
// mfa.enrol_started, reason destination_not_allowed). An email address is
// kept in canonical form (auth.CanonicalEmail: trimmed, case-folded), so
// that each capitalisation of one mailbox counts in its one send limit
// (mfa.SendLimits.PerDestination). An address CanonicalEmail refuses
// (white space, control or format characters among others) gives its
// *auth.InputError, and a number, label or address the mfa package
// refuses its *mfa.InputError; either refusal is recorded as a failed
// mfa.enrol_started, reason bad_input, and nothing is enrolled. A code
// that cannot be sent (the provider failed, or a store) gives
// ErrUnavailable, recorded as a failed mfa.enrol_started, reason
// unavailable; no pending factor is stored for it, and the user's
// factors stay as they were: a factor of the kind begun before it stays
// pending, and the code sent for that one still confirms it
// (ConfirmFactor). A begin stored but not recorded (the audit log
// failing) is ErrUnavailable too, and stands: the new factor pending, its
// code sent, the earlier one voided.
func (g *Guard) BeginOOB(ctx context.Context, p Principal, kind mfa.Kind, destination, label string) (mfa.Factor, error) {
	if err := g.requireRecentAuth(ctx, p, "", actionMFA); err != nil {
		return mfa.Factor{}, err
	}
	a, err := g.self(ctx, p)
	if err != nil {
		return mfa.Factor{}, err
	}
	if kind == mfa.KindEmail {
		email, err := auth.CanonicalEmail(destination)
		if err != nil {
			return mfa.Factor{}, g.enrolRefused(ctx, a, kind, err)
		}
		destination = email
	}
	f, res, err := g.mfa.BeginOOB(ctx, mfa.OOBRequest{Tenant: p.Tenant, UserID: p.UserID, Kind: kind, Destination: destination, Label: label, IP: g.throttleIP(p.IP)})
	if ie := (*mfa.InputError)(nil); errors.As(err, &ie) {
		return mfa.Factor{}, g.enrolRefused(ctx, a, kind, err)
	}
	if err != nil {
		if f.ID != "" {
			// Not stored: its code was not sent (a *mfa.SendError), or a
			// store failed. The failure is on record, as SendLoginCode
			// records a send that failed.
			e := a.event(audit.MFAEnrolStarted, audit.Failure, ReasonUnavailable)
			e.Target, e.Meta = f.ID, map[string]string{"kind": string(kind)}
			if rerr := g.record(ctx, e); rerr != nil {
				return mfa.Factor{}, rerr
			}
		}
		return mfa.Factor{}, mfaErr("begin enrolment", err)
	}
	if f.ID == "" {
		// A number outside mfa.Config.SMSPrefixes: no factor was made.
		// The user is signed in, and is told.
		e := a.event(audit.MFAEnrolStarted, audit.Failure, suppressReason(res.Suppressed))
		e.Meta = map[string]string{"kind": string(kind)}
		if err := g.record(ctx, e); err != nil {
			return mfa.Factor{}, err
		}
		return mfa.Factor{}, &InputError{Field: "destination", Reason: "is not a number sign-in codes may be sent to"}
	}
	e := a.event(audit.MFAEnrolStarted, audit.Success, "")
	e.Target, e.Meta = f.ID, map[string]string{"kind": string(kind)}
	if err := g.record(ctx, e); err != nil {
		return mfa.Factor{}, err
	}
	res.Factor = f
	return f, g.recordSend(ctx, a, res, nil)
}

// enrolRefused records an enrolment refused for its input (a failed
// mfa.enrol_started, reason bad_input, Meta kind when kind is one) and
// returns err, the refusal.
func (g *Guard) enrolRefused(ctx context.Context, a attempt, kind mfa.Kind, err error) error {
	e := a.event(audit.MFAEnrolStarted, audit.Failure, ReasonBadInput)
	if kind == mfa.KindTOTP || kind == mfa.KindEmail || kind == mfa.KindSMS {
		e.Meta = map[string]string{"kind": string(kind)}
	}
	if rerr := g.record(ctx, e); rerr != nil {
		return rerr
	}
	return err
}

// ConfirmFactor makes a factor begun with BeginTOTP or BeginOOB active with
// its first code, and returns a first set of recovery codes when it is the
// user's first factor (show them once). The first set replaces any codes
// the user was given before (by the RegenerateRecoveryCodes of an older
// Guard, which made codes for a user without a factor): those stop working, and the mfa.recovery_regenerated event
// says how many it voided (Meta replaced). A user with factors but no
// codes left gets a set too. Confirmations of one user's factors running
// at once (two tabs, two replicas) each read the user's codes before any
// stores a set: one of them makes the set and returns it, and the others
// return no codes, the user holding that set; so every set returned
// works when it is returned (until replaced by RegenerateRecoveryCodes,
// or removed with the last factor). A wrong code is ErrInvalidCode and
// counts in the lockout. A factor confirmed already (the form submitted
// twice) gives ErrConflict, neither recorded nor counted; so does one
// the user has no room for, having confirmed mfa.Config.MaxFactors
// factors since it was begun, with mfa.ErrLimit (it stays pending).
//
// An enrolment that cannot be recorded in the audit log does not stand,
// nor does one stopped by a store failure after the code was accepted
// (settling the lockout, ending the other sessions, making the recovery
// codes): the factor is put back pending, as it was stored, the recovery
// codes it made (for a first factor) are removed (the earlier codes they
// replaced stay void; only those it made: a set another call stored
// meanwhile stays), and ErrUnavailable is
// returned, with no recovery codes; the user's sessions ended by the
// confirmation stay ended. The undo is best effort: if it fails, the
// factor stays active, unrecorded, and ErrUnavailable is returned all the
// same.
func (g *Guard) ConfirmFactor(ctx context.Context, p Principal, factorID, code string) ([]string, error) {
	a, err := g.self(ctx, p)
	if err != nil {
		return nil, err
	}
	f, err := g.findFactor(ctx, p.Tenant, p.UserID, factorID)
	if err != nil {
		return nil, err
	}
	gt, reason, err := g.reserve(ctx, p.Tenant, p.UserID, a.email, p.IP)
	if err != nil {
		return nil, g.mfaFailed(ctx, a, ReasonUnavailable, f.Kind, gate{}, err)
	}
	if reason != "" {
		return nil, g.mfaFailed(ctx, a, reason, f.Kind, gate{}, ErrInvalidCode)
	}
	return g.confirmFactor(ctx, a, gt, true, f.Kind, factorID, code, p.Session)
}

func (g *Guard) findFactor(ctx context.Context, tenant, userID, id string) (mfa.Factor, error) {
	fs, err := g.mfa.Factors(ctx, tenant, userID)
	if err != nil {
		return mfa.Factor{}, mfaErr("load factors", err)
	}
	if f, ok := factorByID(fs, id); ok {
		return f, nil
	}
	return mfa.Factor{}, mfa.ErrNotFound
}

// factorByID returns the factor of fs with the given ID.
func factorByID(fs []mfa.Factor, id string) (mfa.Factor, bool) {
	for _, f := range fs {
		if f.ID == id {
			return f, true
		}
	}
	return mfa.Factor{}, false
}

// Factors lists a user's second factors (without secrets). A user may list
// their own; otherwise the principal must administer the tenant.
func (g *Guard) Factors(ctx context.Context, by Principal, tenant, userID string) ([]mfa.Factor, error) {
	if err := g.mayOrSelf(ctx, by, tenant, userID, rbac.Users, rbac.Read); err != nil {
		return nil, err
	}
	if g.mfa == nil {
		return nil, ErrMFANotConfigured
	}
	fs, err := g.mfa.Factors(ctx, tenant, userID)
	return fs, mfaErr("load factors", err)
}

// RemoveFactor removes one of a user's factors (their own, or as an admin
// of the tenant), which needs a recent authentication. Removing the last
// one also voids the user's recovery codes. The user's other sessions end
// (all of them when an admin removes it; a sign-in that proved the factor
// and creates its session after the removal is refused too, recorded as
// login.failed with reason factor_removed, as is a recovery code's whose
// standing it ended) and, when the factor was
// confirmed, the user is mailed a notice, as is the address of a removed
// email factor; a pending factor's removal (an enrolment never completed,
// to an address never proved) mails no one. While the tenant requires
// SSO, the break-glass owner keeps at least one confirmed factor: a
// removal that would leave none is refused (ErrBreakGlassUser, recorded
// as a failed mfa.removed), also when several removals run at once, or
// when SetPolicy names the owner while their last factor is being removed
// (the factor is put back).
//
// While the tenant requires MFA, a user may not remove their own last
// confirmed factor (a pending one, an enrolment not yet confirmed, they
// may), nor the last one that meets the policy (an
// authenticator app or SMS; an email factor only with
// Policy.MFAAllowEmail) while others that do not are left
// (ErrFactorRequired, recorded with reason mfa_required): their session
// would keep its second-factor standing with no factor behind it that the
// policy accepts. The policy is read again (from the store) once the
// factor is removed, and the factor put back, as below, if it forbids the
// removal now (switched on meanwhile, or two removals at once). An
// administrator may (the user's sessions all end, and the next sign-in
// enrols one), but only of a user they outrank: one whose every role's
// permissions they hold (ErrForbidden otherwise, recorded as a failed
// mfa.removed with reason escalation; see "Acting on a more privileged
// user" in the package doc). The rule is checked again once the factor
// is removed, before the sessions end: a role the administrator could not
// grant, given to the user meanwhile, refuses the call the same way (a
// failure to read the roles then gives ErrUnavailable), the factor put
// back as below and no notice sent.
//
// A removal that cannot be recorded in the audit log does not stand, nor
// does one stopped by a store failure after the factor was deleted
// (voiding the recovery codes, ending the sessions): the factor is stored
// again as it was deleted (secret and last step included: a TOTP code used
// meanwhile is not accepted again), no notice is sent, and ErrUnavailable
// is returned. Putting it back voids a pending enrolment of
// the same kind begun meanwhile; the sessions ended stay ended, and the
// recovery codes voided with a last factor stay void
// (RegenerateRecoveryCodes makes new ones). If the factor cannot be put
// back, ErrUnavailable is returned too and the removal stays, unrecorded.
func (g *Guard) RemoveFactor(ctx context.Context, by Principal, tenant, userID, factorID string) error {
	if err := g.mayOrSelf(ctx, by, tenant, userID, rbac.Users, rbac.Manage); err != nil {
		return err
	}
	if g.mfa == nil {
		return ErrMFANotConfigured
	}
	if err := g.requireRecentAuth(ctx, by, rbac.Users, rbac.Manage); err != nil {
		return err
	}
	var perms rbac.Perms
	if !isSelf(by, tenant, userID) {
		// An admin's removal lowers the user's protection: acting on a
		// more privileged user (doc.go).
		p, err := g.outranks(ctx, by, tenant, userID, audit.MFARemoved)
		if err != nil {
			return err
		}
		perms = p
	}
	floor, err := g.breakGlassFactors(ctx, tenant, userID)
	if err != nil {
		return err
	}
	// The user's factors as stored: the one to remove (to put back if the
	// removal cannot stand) and those the user keeps.
	fs, err := g.stores.MFA.Factors.Factors(ctx, tenant, userID)
	if err != nil {
		return unavailable("load factors", err)
	}
	var prev mfa.Factor
	var kept []mfa.Factor
	for _, x := range fs {
		if x.ID == factorID {
			prev = x
		} else {
			kept = append(kept, x)
		}
	}
	must := floor
	if isSelf(by, tenant, userID) && prev.Confirmed() {
		// A pending factor (an enrolment the user cancels) is no factor:
		// removed whatever the policy. One confirmed meanwhile is caught
		// by the check after the deletion.
		pol, err := g.EffectivePolicy(ctx, tenant)
		if err != nil {
			return err
		}
		if pol.RequireMFA {
			// The last factor is kept by the store's atomic count below;
			// the last one that meets the policy, of factors that do not
			// (email codes, unless allowed), here.
			if kinds := mfa.ConfirmedKinds(kept); len(kinds) > 0 && unmetWithout(kinds, prev.Kind, pol.MFAAllowEmail) {
				return g.refuseFactorRequired(ctx, by, tenant, userID)
			}
			must = max(must, 1)
		}
	}
	f, left, err := g.mfa.RemoveFactorKeeping(ctx, tenant, userID, factorID, must)
	switch {
	case errors.Is(err, mfa.ErrLastFactor) && floor > 0:
		return g.refuseBreakGlass(ctx, by, tenant, audit.MFARemoved, userID)
	case errors.Is(err, mfa.ErrLastFactor):
		return g.refuseFactorRequired(ctx, by, tenant, userID)
	}
	// Until the removal is on record, a failure once the factor is
	// deleted puts it back as it was deleted, not as first read: a sign-in
	// in between moved its last step, and the older one would accept the
	// code it used again. Only its sealed secret (which the deletion does
	// not return) comes from the first read.
	restore := func(ctx context.Context) error {
		if prev.ID == "" || f.ID != prev.ID {
			return nil
		}
		back := f
		back.KeyID, back.Secret = prev.KeyID, prev.Secret
		return g.stores.MFA.Factors.CreateFactor(ctx, back, 0)
	}
	putBack := func(err error) error {
		_ = restore(context.WithoutCancel(ctx))
		return err
	}
	if err != nil {
		if f.ID != "" {
			// Deleted, and a later step (the recovery codes) failed.
			return putBack(mfaErr("remove factor", err))
		}
		return mfaErr("remove factor", err)
	}
	if floor == 0 && left == 0 && f.Confirmed() {
		// The last factor went, the user not being the break-glass owner
		// when the policy was read. A SetPolicy naming them may have come
		// between, having checked their factors before this removal: read
		// again now the factor is gone (each side writes, then reads the
		// other's), and put it back if they are the break-glass owner now.
		bg, err := g.breakGlassFactors(ctx, tenant, userID)
		if err != nil {
			return putBack(err)
		}
		if bg > 0 {
			return putBack(g.refuseBreakGlass(ctx, by, tenant, audit.MFARemoved, userID))
		}
	}
	if isSelf(by, tenant, userID) && f.Confirmed() {
		// Likewise for the tenant's RequireMFA, which the policy read
		// above (perhaps a replica's cached copy) may not show yet: read
		// from the store now the factor is gone, and put it back if the
		// user kept nothing that meets it. Two own removals at once each
		// read after their own deletion, so they never both stand.
		if err := g.keepsRequiredFactor(ctx, by, tenant, userID, f.Kind); err != nil {
			return putBack(err)
		}
	}
	if !isSelf(by, tenant, userID) {
		// A role granted to the user since outranks is checked now, before
		// the sessions end: refused, the factor goes back (written first,
		// checked after, as for a deactivation).
		if err := g.outranksStill(ctx, by, perms, tenant, userID, audit.MFARemoved, restore); err != nil {
			return err
		}
	}
	// How the user signs in changed: their other sessions end (the
	// remover's own session stays when it is theirs).
	var keep session.Hash
	if isSelf(by, tenant, userID) {
		keep = by.Session
	}
	ended, err := g.sessions.RevokeUser(ctx, tenant, userID, keep)
	if err != nil {
		return putBack(unavailable("end sessions", err))
	}
	e := g.adminEvent(by, tenant, audit.MFARemoved, userID)
	e.Meta = map[string]string{"kind": string(f.Kind), "factor": f.ID, "left": strconv.Itoa(left), "sessions_ended": strconv.Itoa(g.endedLive(ctx, tenant, ended))}
	if err := g.record(ctx, e); err != nil {
		return putBack(err)
	}
	// A pending factor (an enrolment never completed) was no sign-in
	// step, and its address was never proved: BeginOOB stores one for any
	// address, so a notice would mail strangers without limit. Only a
	// confirmed factor's removal is told.
	if !f.Confirmed() {
		return nil
	}
	if u, err := g.stores.Users.User(ctx, tenant, userID); err == nil {
		text := article(factorNoun(f.Kind)) + " was just removed from your account's sign-in steps, and your other sessions were ended. " +
			"If it was not you or your administrator, contact your administrator now."
		g.notify(ctx, u, "A second factor was removed from your account", text)
		if f.Kind == mfa.KindEmail && f.Destination != "" && f.Destination != u.Email {
			// The address that no longer receives codes hears of it too
			// (SECURITY-CHECKLIST MF-16).
			g.notifyOnce(ctx, false, "", u, f.Destination, "This address no longer receives sign-in codes", text)
		}
	}
	return nil
}

// unmetWithout reports whether a user left with confirmed factors of kinds
// (ConfirmedKinds), once a confirmed factor of kind k is removed, goes
// against a "require MFA" policy: nothing left, or nothing left that meets
// it though k did (allowEmail as Policy.MFAAllowEmail).
func unmetWithout(kinds []mfa.Kind, k mfa.Kind, allowEmail bool) bool {
	return len(kinds) == 0 || !mfa.Satisfies(kinds, allowEmail) && mfa.Satisfies([]mfa.Kind{k}, allowEmail)
}

// keepsRequiredFactor returns nil unless the tenant, read from the store
// (not the cache), requires MFA and the user, who has just removed their
// own confirmed factor of kind k, is left with no factor, or none that
// meets the policy though k did: then the removal is refused
// (refuseFactorRequired), for the caller to put the factor back. A store
// failure is ErrUnavailable.
func (g *Guard) keepsRequiredFactor(ctx context.Context, by Principal, tenant, userID string, k mfa.Kind) error {
	t, err := g.Tenant(ctx, tenant)
	if err != nil {
		return err
	}
	pol := t.Policy.withDefaults(g.defaults)
	if !pol.RequireMFA {
		return nil
	}
	fs, err := g.mfa.Factors(ctx, tenant, userID)
	if err != nil {
		return unavailable("load factors", err)
	}
	if unmetWithout(mfa.ConfirmedKinds(fs), k, pol.MFAAllowEmail) {
		return g.refuseFactorRequired(ctx, by, tenant, userID)
	}
	return nil
}

// refuseFactorRequired records a user's removal of their own factor as
// failed (reason mfa_required) and returns ErrFactorRequired.
func (g *Guard) refuseFactorRequired(ctx context.Context, by Principal, tenant, userID string) error {
	e := g.adminEvent(by, tenant, audit.MFARemoved, userID)
	e.Outcome, e.Reason = audit.Failure, "mfa_required"
	if err := g.record(ctx, e); err != nil {
		return err
	}
	return ErrFactorRequired
}

// factorNoun names a kind of second factor in a notice.
func factorNoun(k mfa.Kind) string {
	switch k {
	case mfa.KindTOTP:
		return "authenticator app"
	case mfa.KindEmail:
		return "email address for sign-in codes"
	case mfa.KindSMS:
		return "phone number for sign-in codes"
	}
	return "second factor"
}

// article puts "A" or "An" before noun, for the start of a sentence.
func article(noun string) string {
	if noun != "" && strings.ContainsRune("aeiou", rune(noun[0])) {
		return "An " + noun
	}
	return "A " + noun
}

// RegenerateRecoveryCodes gives the signed-in user a new set of recovery
// codes (the old set stops working) and returns them once. It needs a
// recent authentication. Recovery codes stand in for a second factor: a
// user with no confirmed factor (none, or an enrolment not yet confirmed)
// gets none, since they would protect nothing, and the call is refused
// with an *InputError (field factor), recorded as a failed
// mfa.recovery_regenerated (reason bad_input), nothing changed; the first
// factor the user confirms makes their first set (ConfirmFactor). The
// old set cannot be put back (only its hashes were kept, and those are
// replaced), so the new set is recorded (mfa.recovery_regenerated) before
// it is made: if it cannot be recorded, ErrUnavailable is returned and
// the old set keeps working. A failure after the record returns the error
// with the reset on record but not done: the old set keeps working.
// Likewise when another call stored a set since this one read the user's
// (a RegenerateRecoveryCodes or a first factor's confirmation running at
// once, which returned it): that set stands, this call stores nothing and
// returns ErrConflict, recorded as a second, failed
// mfa.recovery_regenerated (reason conflict), so that every set returned
// works when it is returned; codes used meanwhile are no such change. The
// factors are read again once the new set is stored: when the user's last
// factor was removed meanwhile (which voids the codes), the new set is
// removed too, and the call is refused as above (a second, failed
// mfa.recovery_regenerated); when that read fails, the new set is removed
// and ErrUnavailable returned (the old set is void then: call again).
func (g *Guard) RegenerateRecoveryCodes(ctx context.Context, p Principal) ([]string, error) {
	if err := g.requireRecentAuth(ctx, p, "", actionMFA); err != nil {
		return nil, err
	}
	a, err := g.self(ctx, p)
	if err != nil {
		return nil, err
	}
	e := a.event(audit.RecoveryReset, audit.Success, "")
	e.Target = p.UserID
	refuse := func() ([]string, error) {
		e.Outcome, e.Reason = audit.Failure, ReasonBadInput
		if err := g.record(ctx, e); err != nil {
			return nil, err
		}
		return nil, &InputError{Field: "factor", Reason: "none is confirmed: recovery codes come with a second factor, add one first"}
	}
	switch ok, err := g.hasConfirmedFactor(ctx, p.Tenant, p.UserID); {
	case err != nil:
		return nil, err
	case !ok:
		return refuse()
	}
	// The set to replace, and only it (but for codes used since): of
	// calls at once, one stores its set, the others are ErrConflict.
	set, err := g.mfa.RecoverySet(ctx, p.Tenant, p.UserID)
	if err != nil {
		return nil, mfaErr("recovery codes", err)
	}
	if err := g.record(ctx, e); err != nil {
		return nil, err
	}
	codes, err := g.mfa.ReplaceRecoverySet(ctx, set)
	if errors.Is(err, mfa.ErrConflict) {
		// On record as done: say that it was not.
		e.Outcome, e.Reason = audit.Failure, "conflict"
		if err := g.record(ctx, e); err != nil {
			return nil, err
		}
		return nil, ErrConflict
	}
	if err != nil {
		return nil, mfaErr("recovery codes", err)
	}
	// The user's last factor removed since the read above voids the
	// codes (mfa.Manager.RemoveFactorKeeping) after this set was stored,
	// or before: read again now that it is, and take it back if no
	// factor is left (or the read fails: fail closed).
	switch ok, err := g.hasConfirmedFactor(ctx, p.Tenant, p.UserID); {
	case err != nil:
		g.dropRecoveryCodes(ctx, p.Tenant, p.UserID, codes)
		return nil, err
	case !ok:
		g.dropRecoveryCodes(ctx, p.Tenant, p.UserID, codes)
		return refuse()
	}
	g.notify(ctx, *a.user, "New recovery codes for your account",
		"A new set of recovery codes was just made for your account; the old ones no longer work. "+
			"If it was not you, contact your administrator now.")
	return codes, nil
}

// hasConfirmedFactor reports whether the user has a confirmed second
// factor; a store failure is ErrUnavailable.
func (g *Guard) hasConfirmedFactor(ctx context.Context, tenant, userID string) (bool, error) {
	fs, err := g.mfa.Factors(ctx, tenant, userID)
	if err != nil {
		return false, mfaErr("load factors", err)
	}
	return len(mfa.ConfirmedKinds(fs)) > 0, nil
}

// dropRecoveryCodes removes codes, a set of the user's recovery codes
// this call made, and only them: each is used up on its own (an atomic
// step of the store that touches that code alone). While they are the
// user's set it ends empty; a set stored since by another call holds
// none of them and stays as it is (clearing the set would wipe it).
// Best effort: the caller is already failing.
func (g *Guard) dropRecoveryCodes(ctx context.Context, tenant, userID string, codes []string) {
	ctx = context.WithoutCancel(ctx)
	for _, c := range codes {
		_, _ = g.mfa.UseRecoveryCode(ctx, tenant, userID, c)
	}
}

// noticeReuse tells u that a code of their authenticator app was used
// again (SECURITY-CHECKLIST MF-5): whoever tried it had their password.
// Not for a code sent twice for one sign-in (CompleteLogin) or one
// step-up (Reauthenticate).
func (g *Guard) noticeReuse(ctx context.Context, u auth.User) {
	g.notify(ctx, u, "A sign-in code of yours was used again",
		"Someone who had your password tried a code from your authenticator app that had already been used. "+
			"If it was not you, change your password now.")
}

// RecoveryCodesLeft reports how many recovery codes the signed-in user has
// left, and whether that is low.
func (g *Guard) RecoveryCodesLeft(ctx context.Context, p Principal) (mfa.RecoveryResult, error) {
	if _, err := g.self(ctx, p); err != nil {
		return mfa.RecoveryResult{}, err
	}
	r, err := g.mfa.RecoveryCodesLeft(ctx, p.Tenant, p.UserID)
	return r, mfaErr("recovery codes", err)
}

// Proof is what a signed-in user gives to Reauthenticate.
type Proof struct {
	// Password is the user's password.
	Password string
	// TOTP is a code from the user's authenticator app, needed when they
	// have one.
	TOTP string
	// Captcha is the client's CAPTCHA token, needed (when Config.Captcha
	// is set) under the rule of LoginRequest.Captcha: the step-up checks
	// the password a login checks, in the same throttle.
	Captcha string
}

// Reauthenticate is the step-up: the signed-in user proves their identity
// again — their password, and a TOTP code when they have an authenticator
// app — and the session behind token is renewed with a new token and a
// fresh authentication time, so sensitive actions are allowed for
// Config.StepUpWindow. A wrong proof is ErrInvalidCredentials and counts in
// the lockout; one whose context ends while its password waits for a
// hashing slot returns the context's error and counts nothing, as Login.
// Every other attempt is recorded (session.reauthenticated): an over-long
// password, not evaluated nor counted, as auth.ErrPasswordTooLong with
// reason bad_input, as Login records it; a failure of the throttle or MFA
// stores (loading the factors, checking the TOTP code) as ErrUnavailable
// with reason unavailable, as CompleteLogin records it; a right proof for
// a session gone by the time it is renewed (renewed first by another
// request of its own, ended, expired) as ErrUnauthenticated with reason
// login_expired (one this call found expired, and removed, is recorded
// first as session.expired, as Authenticate records it), and a session
// store failure in the renewal as ErrUnavailable with reason unavailable.
//
// A TOTP code is accepted once: one found used (by a sign-in, or by
// another step-up) is a reuse, ErrInvalidCredentials, counted, recorded
// with reason reuse, and the user is told (SECURITY-CHECKLIST MF-5). Not
// so a step-up submitted twice (the same token, password and code: a
// double click): the request that finds the code used, and its session
// renewed by the other since p was authenticated (p's token rotated),
// lost a race with a request of its own session. It ends as it would a
// moment later, when its token renewed nothing: ErrUnauthenticated,
// recorded with reason login_expired, the attempt given back and no
// notice. The other request marks the code used before it renews the
// session, so, as at sign-in (CompleteLogin), one that finds the code
// used while its session is still as it was and live waits for the
// renewal, up to a second (looking again every 20 ms; a cancelled ctx
// ends the wait). One that sees no renewal by then is taken for a reuse,
// so a real reuse is answered a second late; so is one whose look-up of
// the session fails in the store (a false alarm rather than a missed
// one), and, with no wait, one whose session was ended or expired rather
// than renewed. A session rotated with the same token by RotateSession
// meanwhile counts as renewed too: that token renews nothing either.
//
// The step-up asks for a CAPTCHA (Proof.Captcha) as Login does: once the
// account or the client IP has had enough recent failures, or a lock
// (see Config.Captcha), a proof without a solved CAPTCHA is refused with
// ErrCaptchaRequired, recorded with reason captcha, before it is looked
// at. One without a token, or with one the provider could not check (an
// outage: see LoginRequest.Captcha), is not counted; one whose token the
// verifier refused counts as a failure.
//
// While the tenant requires SSO (Policy.RequireSSO), a password is no
// proof, as it is no sign-in: Reauthenticate refuses every user but the
// break-glass owner with ErrSSORequired, recorded with reason sso_required,
// without looking at the proof (not evaluated, not counted in the
// lockout). Such a user steps up through the IdP instead, signing in again
// with SSOStart.ForceAuthn.
//
// The renewed session keeps the old one's flags but FlagStaleAuthn; a
// step-up with a TOTP code sets FlagMFA and clears FlagMustEnrol (the user
// has enrolled), one without a second factor while the tenant requires
// MFA sets FlagMustEnrol.
//
// The step-up renews the authentication, not the session's life: the
// session keeps its absolute end, and the tenant's Policy.SessionLifetime,
// measured from the last full authentication, still ends it when it would
// have ended it without the step-up (the end that lifetime set becomes
// the session's own). A lifetime lowered after the step-up is measured
// from the step-up.
//
// Nor does it outlast a change of the tenant's IdP: a single sign-on
// session signed in by an IdP replaced or removed since (p authenticated
// before the change) is ended, not renewed (ErrPolicyChanged, as the
// session check ends it; see SetSSOConnection).
func (g *Guard) Reauthenticate(ctx context.Context, p Principal, token string, proof Proof) (string, session.Session, error) {
	if p.Kind != KindUser {
		return "", session.Session{}, ErrUnauthenticated
	}
	if h, err := session.ParseToken(token); err != nil || h != p.Session {
		return "", session.Session{}, ErrUnauthenticated
	}
	u, err := g.selfUser(ctx, p)
	if err != nil {
		return "", session.Session{}, err
	}
	a := attempt{req: LoginRequest{Tenant: p.Tenant, IP: p.IP, UserAgent: p.UserAgent}, email: u.Email, user: &u}
	fail := func(reason string, gt gate, err error) error {
		e := a.event(audit.Reauthenticated, audit.Failure, reason)
		if rerr := g.recordFailure(ctx, a, gt, e); rerr != nil {
			return rerr
		}
		return err
	}
	pol, err := g.EffectivePolicy(ctx, p.Tenant)
	if err != nil {
		return "", session.Session{}, err
	}
	if pol.RequireSSO && u.ID != pol.BreakGlassUser {
		// The password is no credential of this tenant's any more: the
		// step-up is the IdP's (SSOStart.ForceAuthn). Refused before the
		// proof is looked at, so it is neither evaluated nor counted.
		return "", session.Session{}, fail(ReasonSSORequired, gate{}, ErrSSORequired)
	}
	if len(proof.Password) > MaxPasswordBytes {
		// Not evaluated, nor counted; recorded as Login records it.
		return "", session.Session{}, fail(ReasonBadInput, gate{}, auth.ErrPasswordTooLong)
	}
	gt, err := g.reserveOwn(ctx, a, audit.Reauthenticated, proof.Password)
	if err != nil {
		return "", session.Session{}, err
	}
	if at, reason, err := g.captchaGate(ctx, gt, proof.Captcha, p.IP); err != nil {
		return "", session.Session{}, fail(reason, at, err)
	}
	if err := g.verifyOwn(ctx, a, audit.Reauthenticated, gt, proof.Password); err != nil {
		return "", session.Session{}, err
	}
	flags := p.Flags &^ FlagStaleAuthn // authenticated just now
	if g.mfa != nil {
		fs, err := g.mfa.Factors(ctx, p.Tenant, p.UserID)
		if err != nil {
			return "", session.Session{}, fail(ReasonUnavailable, gate{}, unavailable("load factors", err))
		}
		if hasConfirmed(fs, mfa.KindTOTP) {
			if _, err := g.mfa.VerifyTOTP(ctx, p.Tenant, p.UserID, "", proof.TOTP); err != nil {
				reason, ok := codeReason(err)
				if !ok {
					return "", session.Session{}, fail(ReasonUnavailable, gate{}, unavailable("second factor", err))
				}
				if reason == ReasonCodeReuse {
					if lostRace(ctx, func() raceState { return g.stepUpRace(ctx, p) }) {
						// A request of this very session used the code
						// and renewed the session since p was
						// authenticated (a form submitted twice), or
						// did within reuseSettleWait: this one lost the
						// race, and its token renews nothing now
						// (ReauthenticateWithin below would say so). No
						// guess, nor anyone else's use of the code: the
						// attempt is given back and the user is not
						// told.
						_ = g.settle(ctx, gt, false)
						return "", session.Session{}, fail(ReasonLoginExpired, gate{}, ErrUnauthenticated)
					}
					g.noticeReuse(ctx, *a.user)
				}
				return "", session.Session{}, fail(reason, gt, ErrInvalidCredentials)
			}
			flags |= FlagMFA
		}
	}
	if flags&FlagMFA != 0 {
		// The user proved a second factor: no longer one to send to
		// enrol (a step-up inside the grace period after enrolling).
		flags &^= FlagMustEnrol
	}
	if flags&(FlagMFA|FlagSSO) == 0 {
		// A step-up restarts the session's clock: without a second factor
		// under RequireMFA it must still enrol by the end of the grace
		// period, as a sign-in inside it must (sessionAllowed).
		if pol.RequireMFA {
			flags |= FlagMustEnrol
		}
	}
	// Settled before the renewal, so that a throttle failure leaves the
	// session as it was, to try again. Renewed first, the session would
	// then have to be ended (its old token rotated away, the new one never
	// given out: the user signed out by a store failure), or the step-up
	// let through unsettled. The request of a double submit that finds the
	// code used meanwhile waits for the renewal (lostRace).
	if err := g.settle(ctx, gt, true); err != nil {
		return "", session.Session{}, fail(ReasonUnavailable, gate{}, err)
	}
	nt, s, err := g.sessions.ReauthenticateWithin(ctx, token, flags,
		session.Limits{IdleTimeout: pol.IdleTimeout, Lifetime: pol.SessionLifetime})
	switch {
	case errors.Is(err, session.ErrNotFound), errors.Is(err, session.ErrExpired), errors.Is(err, session.ErrInvalidToken):
		// The proof was right, but the session is gone: renewed by
		// another request of its own (a password-only step-up submitted
		// twice), ended or expired since p was authenticated (found
		// expired by this call, which removed it: the expiry is
		// recorded here, as Authenticate records it).
		if rerr := g.recordExpiry(ctx, err); rerr != nil {
			return "", session.Session{}, rerr
		}
		return "", session.Session{}, fail(ReasonLoginExpired, gate{}, ErrUnauthenticated)
	case err != nil:
		return "", session.Session{}, fail(ReasonUnavailable, gate{}, unavailable("renew session", err))
	}
	if err := g.stepUpVouched(ctx, p, s); err != nil {
		return "", session.Session{}, err
	}
	e := a.event(audit.Reauthenticated, audit.Success, "")
	e.Target = s.ID()
	if err := g.record(ctx, e); err != nil {
		g.dropSession(ctx, s)
		return "", session.Session{}, err
	}
	return nt, s, nil
}

// reserveOwn reserves an attempt at the password of a.user, a signed-in
// user (a step-up, a change of password), for the client IP a.req.IP and
// the account, as a login's (reserve). A refused one does the work of a
// password check (the dummy hash), is recorded as a failed action with
// the reason (ReasonIPThrottled, ReasonLocked) and returns
// ErrInvalidCredentials; a store failure is recorded with reason
// unavailable and returns ErrUnavailable. Neither counts. A record that
// fails returns its own error.
func (g *Guard) reserveOwn(ctx context.Context, a attempt, action audit.Action, password string) (gate, error) {
	gt, reason, err := g.reserve(ctx, a.req.Tenant, a.user.ID, a.user.Email, a.req.IP)
	switch {
	case err != nil:
		reason = ReasonUnavailable
	case reason != "":
		g.hasher.VerifyDummy(ctx, password)
		err = ErrInvalidCredentials
	default:
		return gt, nil
	}
	if rerr := g.recordFailure(ctx, a, gate{}, a.event(action, audit.Failure, reason)); rerr != nil {
		return gate{}, rerr
	}
	return gate{}, err
}

// verifyOwn checks password, that of a.user, a signed-in user, in the
// attempt reserveOwn reserved as gt, and returns nil when it is right
// (gt is then the caller's to settle). A wrong one counts: it is recorded
// as a failed action with reason bad_password (one that starts a lock is
// recorded and noticed as such: recordFailure) and returns
// ErrInvalidCredentials. One whose context ended while it waited for a
// hashing slot was never evaluated: it gives gt back (unevaluated) and
// returns the context's error. A record that fails returns its own error.
func (g *Guard) verifyOwn(ctx context.Context, a attempt, action audit.Action, gt gate, password string) error {
	ok, _, err := g.verifyPassword(ctx, password, a.user.PasswordHash)
	if err != nil && ctx.Err() != nil {
		return g.unevaluated(ctx, gt, func(ctx context.Context, reason string, gt gate) {
			_ = g.recordFailure(ctx, a, gt, a.event(action, audit.Failure, reason))
		})
	}
	if ok {
		return nil
	}
	if rerr := g.recordFailure(ctx, a, gt, a.event(action, audit.Failure, ReasonBadPassword)); rerr != nil {
		return rerr
	}
	return ErrInvalidCredentials
}

// stepUpRace tells where the session of p, live when p was authenticated,
// stands now that the TOTP code of p's step-up was found used: raceLost
// once it has been renewed, rotated by a request with the same token (a
// step-up, or RotateSession), so that the store holds its rotation
// tombstone (Lookup answers a *session.RotatedError of p's user) and p's
// token no longer signs in; raceOpen while it is as it was and live (a
// step-up of its own may have used the code and not yet renewed it);
// raceOver once it has ended otherwise, expired, or its tombstone has
// been dropped, and when the store fails.
func (g *Guard) stepUpRace(ctx context.Context, p Principal) raceState {
	s, err := g.stores.Sessions.Lookup(ctx, p.Session)
	var re *session.RotatedError
	switch {
	case err == nil && s.LiveAt(g.now()):
		return raceOpen
	case errors.As(err, &re) && re.Tenant == p.Tenant && re.UserID == p.UserID:
		return raceLost
	}
	return raceOver
}

// stepUpVouched returns nil unless s, the session of p just renewed by a
// step-up, is a single sign-on session that the tenant's IdP vouched for
// before a change of IdP: p was authenticated before the change, the
// step-up came after it. The step-up moved the session's CreatedAt past
// the change (Tenant.IdPChangedAt), out of the session check's reach, so
// the change is read again (from the store: the step-up wrote, then
// reads, as the change marks, then sweeps) and such a session is ended
// as the session check ends it (ErrPolicyChanged, session.revoked reason
// idp_changed). A tenant that cannot be read drops s (ErrUnavailable).
func (g *Guard) stepUpVouched(ctx context.Context, p Principal, s session.Session) error {
	if s.Flags&FlagSSO == 0 {
		return nil
	}
	t, err := g.Tenant(ctx, p.Tenant)
	if err != nil {
		g.dropSession(ctx, s)
		return err
	}
	if !t.IdPChangedAt.IsZero() && !p.AuthAt.After(t.IdPChangedAt) {
		return g.endForPolicy(ctx, s, ReasonIdPChanged)
	}
	return nil
}

func hasConfirmed(fs []mfa.Factor, k mfa.Kind) bool {
	for _, f := range fs {
		if f.Kind == k && f.Confirmed() {
			return true
		}
	}
	return false
}
