package guard

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/internal/emailfold"
	"github.com/guardhq/guard/mfa"
)

// RecoveryConfig configures forgotten-password emails (Config.Recovery).
type RecoveryConfig struct {
	// Email delivers the reset links and the security notices Guard sends
	// a user (a recovery code used, a one-time code reused, the account
	// locked: at most one lock notice an hour per account, counted in
	// Stores.MFA.Rates); notices go to active users only, never to a
	// deactivated account. Nil: ForgotPassword is unavailable and no
	// notice is sent.
	Email mfa.EmailSender
	// BaseURL is the public address of the site, such as
	// "https://app.example.com": reset links are built from it, never from
	// the request's Host header. Required with Email; an absolute http(s)
	// URL without query, fragment, user name or password. A trailing "/"
	// is dropped (New stores BaseURL without it).
	BaseURL string
	// Path is the page of the site that takes a reset link (default
	// "/reset"). The link carries tenant, user and token as query
	// parameters; the page should move them out of the URL at once (for
	// example into a short-lived cookie, then redirect) and serve it with
	// Referrer-Policy: no-referrer.
	Path string
	// TokenTTL is the life of a reset link (default 30 minutes, at most a
	// day).
	TokenTTL time.Duration
	// Compose writes the email (default: a short English text).
	Compose func(link string, ttl time.Duration) (subject, text string)
	// InviteTTL is the life of the link SendInvitation mails (default 3
	// days, at most 7): an invited person may read it days later. It is
	// single-use and hashed like a reset link, and a newer invitation or
	// reset link voids it.
	InviteTTL time.Duration
	// ComposeInvite writes the invitation email (default: a short English
	// text).
	ComposeInvite func(link string, ttl time.Duration) (subject, text string)
	// EmailChangePath is the page of the site that takes the link
	// RequestEmailChange mails to a new address (default "/email/confirm").
	// The link carries tenant, user, email and token as query parameters;
	// treat it as a reset link (move them out of the URL at once,
	// Referrer-Policy: no-referrer) and pass them to ConfirmEmailChange.
	EmailChangePath string
	// ComposeEmailChange writes that email (default: a short English text).
	ComposeEmailChange func(link string, ttl time.Duration) (subject, text string)
	// Limits bound the links mailed (reset and email-change links alike),
	// so that nobody can flood an inbox through the site.
	Limits LinkLimits

	codes mfa.CodeStore
	rates mfa.RateStore
	base  *url.URL
}

// LinkLimits bound the reset and email-change links sent in any hour: for
// one account, to one address and from one client IP. The limit of an
// address holds across tenants (one inbox) and counts the emails about to
// go to it (a link, or the note of a tenant that requires SSO), so that
// ForgotPassword requests that mail it nothing (for an address without
// an active account, or in a tenant that does not exist) cannot use up
// its owner's links; the client IP's counts every request. Over a limit
// no link is made or mailed, the last one sent stays valid, and the
// request is recorded as refused with reason rate_limited;
// ForgotPassword and RequestEmailChange answer as if the link had gone
// out, so their answers never tell anyone, in any tenant, whether an
// address has an account somewhere. A tenant's own log may: a request
// of its user refused as rate_limited by the address's limit, after
// fewer than PerDestination emails from this tenant, shows its
// administrators that the address has an active account in another
// tenant, mailed that hour. Such a probe of one address costs its owner
// PerDestination emails an hour, which they see. The alternative, the
// address's limit counting every request naming it, let anyone stop an
// address's recovery emails with a few requests an hour, unseen.
// Zero fields take the defaults.
//
// PerDestination also bounds the notices of ChangeEmail (and
// ConfirmEmailChange) to an unverified old address (User.EmailUnverified),
// per tenant and address, counted apart from the links above (so that no
// one's recovery requests can silence them): over it the change is made,
// but no notice is sent (the user.email_changed event carries Meta notice
// "rate_limited").
//
// PerAccount also bounds an administrator's invitations to one user, and
// PerDestination their invitations to one address, from every tenant
// (SendInvitation), both counted apart from the links above.
type LinkLimits struct {
	PerAccount     int // default 5
	PerDestination int // default 5
	PerIP          int // default 20; an IPv6 client counted per /64 (Config.IPv6Prefix)
}

func (c *RecoveryConfig) fill(codes mfa.CodeStore, rates mfa.RateStore) error {
	if c.Email == nil {
		return nil
	}
	if codes == nil {
		return &PolicyError{Field: "Stores.MFA.Codes", Reason: "is required for password recovery"}
	}
	if rates == nil {
		return &PolicyError{Field: "Stores.MFA.Rates", Reason: "is required for password recovery (the link send limits)"}
	}
	for _, l := range []struct {
		field string
		v     *int
		def   int
	}{{"PerAccount", &c.Limits.PerAccount, 5}, {"PerDestination", &c.Limits.PerDestination, 5}, {"PerIP", &c.Limits.PerIP, 20}} {
		switch {
		case *l.v < 0:
			return &PolicyError{Field: "Recovery.Limits." + l.field, Reason: "negative"}
		case *l.v == 0:
			*l.v = l.def
		}
	}
	// The links append Path to it: "https://app.example.com/" would
	// make them "//reset".
	c.BaseURL = strings.TrimRight(c.BaseURL, "/")
	u, err := url.Parse(c.BaseURL)
	if err != nil || !u.IsAbs() || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") || u.RawQuery != "" || u.Fragment != "" {
		return &PolicyError{Field: "Recovery.BaseURL", Reason: "must be an absolute http(s) URL without query"}
	}
	if u.User != nil {
		// Mailed in every link; never echoed here.
		return &PolicyError{Field: "Recovery.BaseURL", Reason: "must not carry a user name or password"}
	}
	if c.Path == "" {
		c.Path = "/reset"
	}
	if c.Path[0] != '/' {
		return &PolicyError{Field: "Recovery.Path", Reason: `must start with "/"`}
	}
	if c.EmailChangePath == "" {
		c.EmailChangePath = "/email/confirm"
	}
	if c.EmailChangePath[0] != '/' {
		return &PolicyError{Field: "Recovery.EmailChangePath", Reason: `must start with "/"`}
	}
	switch {
	case c.TokenTTL < 0 || c.TokenTTL > 24*time.Hour:
		return &PolicyError{Field: "Recovery.TokenTTL", Reason: "must be between 0 and 24 hours"}
	case c.TokenTTL == 0:
		c.TokenTTL = 30 * time.Minute
	}
	switch {
	case c.InviteTTL < 0 || c.InviteTTL > 7*24*time.Hour:
		return &PolicyError{Field: "Recovery.InviteTTL", Reason: "must be between 0 and 7 days"}
	case c.InviteTTL == 0:
		c.InviteTTL = 3 * 24 * time.Hour
	}
	if c.Compose == nil {
		c.Compose = defaultResetMail
	}
	if c.ComposeInvite == nil {
		c.ComposeInvite = defaultInviteMail
	}
	if c.ComposeEmailChange == nil {
		c.ComposeEmailChange = defaultEmailChangeMail
	}
	c.codes, c.rates, c.base = codes, rates, u
	return nil
}

// linkLimited counts a link about to be mailed for account (tenant and
// user ID) to the address to, asked from ip, and reports whether any of
// the hour's limits is now exceeded. The client is counted by throttleIP
// (an IPv6 client per prefix). An empty tenant, to or ip counts nothing
// for the account, the address or the client IP. The limits are counted
// in that order (client IP, account, address) and the first exceeded
// ends the count: a link held back by one takes no place under the
// next, so that the address's limit counts only the emails about to go
// to it (LinkLimits), and two requests of one account, counted at once,
// are not each refused by a limit of its own, fewer links mailed than
// PerAccount lets through. A store failure is returned: no link goes out
// then either.
func (g *Guard) linkLimited(ctx context.Context, tenant, userID, to, ip string) (bool, error) {
	return g.overLimits(ctx, "link send limit", true,
		sendLimit{linkRateKey("ip", g.throttleIP(ip)), g.recovery.Limits.PerIP},
		sendLimit{linkRateKey("account", tenant, userID), g.recovery.Limits.PerAccount},
		sendLimit{linkRateKey("destination", to), g.recovery.Limits.PerDestination})
}

// sendLimit is one hourly send limit: its counter (linkRateKey; "" for
// none) and the most sends it lets through.
type sendLimit struct {
	key string
	max int
}

// overLimits counts one send under each of limits in turn, in the hour
// to now, and reports whether one of them is now exceeded; with
// firstOver it stops at the first exceeded, the rest not counted. what
// names the limits in the ErrUnavailable of a store failure.
func (g *Guard) overLimits(ctx context.Context, what string, firstOver bool, limits ...sendLimit) (bool, error) {
	now := g.now()
	over := false
	for _, l := range limits {
		if l.key == "" {
			continue
		}
		n, err := g.recovery.rates.Hit(ctx, l.key, now, time.Hour)
		if err != nil {
			return false, unavailable(what, err)
		}
		over = over || n > l.max
		if over && firstOver {
			break
		}
	}
	return over, nil
}

// linkRateKey names a send-limit counter (see mfa.RateKey), or "" when
// the first field is empty (no client IP).
func linkRateKey(scope string, fields ...string) string {
	if fields[0] == "" {
		return ""
	}
	return mfa.RateKey("link-"+scope, fields...)
}

// ReasonEmailChanged is the Reason of a refused password.reset event: the
// link (a reset link or an invitation) was mailed to an address that is no
// longer the user's.
const ReasonEmailChanged = "email_changed"

// ReasonIdPManaged is the Reason of a refused user.email_changed event: an
// email-change link confirmed after the tenant connected an identity
// provider, which owns the addresses from then on.
const ReasonIdPManaged = "idp_managed"

// ReasonRateLimited is the Reason of a refused password.reset_requested,
// user.email_change_requested or user.invited event: a send limit held
// the link back; and of a refused approval.requested: the requester
// filed MaxApprovalRequestsPerHour this hour already (an API key with its
// creator and their other keys).
const ReasonRateLimited = "rate_limited"

func defaultResetMail(link string, ttl time.Duration) (string, string) {
	return "Reset your password", fmt.Sprintf("Someone asked to reset the password of your account. "+
		"If it was you, open this link within %d minutes:\n\n%s\n\n"+
		"If it was not you, ignore this email: your password stays as it is.\n", int(ttl.Minutes()), link)
}

func defaultInviteMail(link string, ttl time.Duration) (string, string) {
	return "You are invited", fmt.Sprintf("An administrator invited you. Set your password within %s with this link:\n\n%s\n",
		humanDuration(ttl), link)
}

// humanDuration writes d for an email: "3 days", "12 hours", "30 minutes".
func humanDuration(d time.Duration) string {
	n, unit := int(d/time.Minute), "minute"
	switch {
	case d >= 24*time.Hour && d%(24*time.Hour) == 0:
		n, unit = int(d/(24*time.Hour)), "day"
	case d >= time.Hour && d%time.Hour == 0:
		n, unit = int(d/time.Hour), "hour"
	}
	if n != 1 {
		unit += "s"
	}
	return fmt.Sprintf("%d %s", n, unit)
}

// ForgotRequest asks for a password reset link.
type ForgotRequest struct {
	Tenant, Email string
	// IP and UserAgent of the client, for the audit log; Captcha is the
	// client's CAPTCHA token (required when Config.Captcha is set).
	IP, UserAgent, Captcha string
}

// ForgotPassword sends a reset link to the user with that email, if there
// is one and it is active. The answer is the same, and takes the same time,
// whether the account exists or not: the lookup and the email happen in the
// background after ForgotPassword returns (Close waits for them), at most
// MaxBackgroundResets look-ups at once: beyond them a request waits for
// one to end, and is ErrUnavailable, nothing done, if ctx ends first or
// a Close begins (so is a request while Close runs: see Close) (an
// email, only ever sent to an account, holds no look-up's place: it has
// slots of its own, and is dropped when none is free; see
// MaxBackgroundResets). Only that, a
// malformed email (*auth.InputError), a client IP over 64 bytes or a
// malformed user agent (*InputError: as Login, over 1024 bytes, not
// UTF-8 or with control characters), a refused CAPTCHA
// (ErrCaptchaRequired) or a missing configuration is reported. A refused
// CAPTCHA is recorded in the background too, in a tenant that exists, as a
// refused password.reset_requested event (reason captcha), of the account
// with that address if there is one.
//
// Every request is recorded as password.reset_requested, but that the
// refusals anyone may repeat at will are recorded at most 30 times a
// minute for each reason (the ones beyond are answered alike,
// unrecorded; the 30th recorded carries Meta recording_paused "true"),
// so that a loop cannot flood the log: those of an address with no
// active account (reasons unknown_user, deactivated) and of a refused
// CAPTCHA with none, for the tenant; a refused CAPTCHA, or a request
// past Recovery.Limits (rate_limited), of an account, for that account.
// Each reason is counted apart, so that a loop of one cannot silence
// another.
//
// A link is single-use, lives Recovery.TokenTTL, is stored only as a hash,
// and a newer request voids the older link. It is bound to the address it
// was mailed to and to the user's password: once the user's email or
// password changes (a password change, another reset) it no longer works,
// even if it was asked for while the change was being made. Recovery.Limits bound the
// links mailed per account, address and client IP in an hour: beyond
// them no mail goes out (and the last link stays valid), so the form
// cannot be used to flood an inbox. The limit of a client IP counts every
// request, for an account or not; that of an address only the emails
// about to go to it (see LinkLimits). A deactivation, or an
// ExpirePassword, of the user under way while the link is made voids it
// as it voids a link made before: it may still be mailed, but does not
// work (see DeactivateUser).
//
// While the tenant requires SSO, no link is made for anyone but its
// break-glass user: the user is mailed that they sign in through single
// sign-on instead (within the same limits), and the request is recorded
// as a refused password.reset_requested, reason sso_required. A link
// mailed before SSO was required still works, but the password it sets
// signs in only once SSO is no longer required.
func (g *Guard) ForgotPassword(ctx context.Context, req ForgotRequest) error {
	if g.recovery.Email == nil {
		return &PolicyError{Field: "Recovery.Email", Reason: "is not configured"}
	}
	if err := linkInput(req.IP, req.UserAgent); err != nil {
		return err
	}
	if err := g.checkCaptcha(ctx, req.Captcha, req.IP); err != nil {
		// On record in the background, as the lookup of a request let
		// through is: the answer is the same whether the tenant exists.
		if CheckTenantID(req.Tenant) == nil {
			email, _ := auth.CanonicalEmail(req.Email) // "" if malformed
			if berr := g.forgotBackground(ctx, func(bctx context.Context) { g.forgotRefused(bctx, req, email, err) }); berr != nil {
				return berr
			}
		}
		return err
	}
	email, err := auth.CanonicalEmail(req.Email)
	if err != nil {
		return err
	}
	if CheckTenantID(req.Tenant) != nil {
		return nil // no such tenant: the same answer
	}
	return g.forgotBackground(ctx, func(bctx context.Context) { g.sendReset(bctx, req, email) })
}

// MaxBackgroundResets bounds the ForgotPassword requests whose work (the
// look-up and the record) runs in the background at once. A request
// beyond it waits, before anything is looked up, for one of them to end,
// or for its own context to end: then it is ErrUnavailable (wrapping the
// context's error) and nothing is done. Every request waits alike, for an
// address with an account or not, and the email (sent only to an
// account, so slower for one) is handed from the look-up's slot to one
// of as many slots of its own, apart, without waiting: the wait tells
// nothing about accounts, those asked for now or before. A flood of
// requests holds at most this many look-ups and delays the answers
// instead, and at most this many emails (a link, or the note of a tenant
// that requires SSO) are sent at once, each given a minute; one that
// finds every email slot taken is dropped and counted in DroppedResetMails.
// A link is made in its email's slot: a dropped one is never stored, so
// the link the account was mailed before still works, and the request is
// recorded as a refused password.reset_requested (reason send_failed,
// Meta dropped "true"). The link limits (RecoveryConfig.Limits: per account, address
// and client IP) bound the emails asked for in the first place.
const MaxBackgroundResets = 64

// forgotBackground runs f, the work of a ForgotPassword, after the call
// returns (Close waits for it), with a minute to do it, once one of the
// MaxBackgroundResets slots is free. It waits for the slot as long as
// ctx lasts: when ctx ends first, f is not run and the error is
// ErrUnavailable, wrapping ctx's error (errClosed when a Close begins
// first, or runs). A ctx already ended takes a free slot all the same (the work never depended on the caller staying).
// f's context ends when a Shutdown's context ends first (see Shutdown).
// The slot is freed when f returns; f hands an email to resetMail, which
// sends it in a slot of its own (see MaxBackgroundResets).
func (g *Guard) forgotBackground(ctx context.Context, f func(ctx context.Context)) error {
	if err := g.background(ctx, g.resets, f); err != nil {
		return unavailable("wait for a background slot", err)
	}
	return nil
}

// background runs f after the call returns (Close waits for it), with
// ctx's values and a minute to do it, once one of slots is free, and
// frees the slot when f returns. It waits for the slot as long as ctx
// lasts: when ctx ends first, f is not run and ctx's error is returned.
// A ctx already ended takes a free slot all the same. While a Close runs,
// or when one begins while it waits, f is not run and the error is
// errClosed. f's context ends when a Shutdown's context ends first.
func (g *Guard) background(ctx context.Context, slots chan struct{}, f func(ctx context.Context)) error {
	closing, abort, ok := g.enterBackground()
	if !ok {
		return errClosed
	}
	select {
	case slots <- struct{}{}:
	default:
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			g.bg.Done()
			return ctx.Err()
		case <-closing:
			g.bg.Done()
			return errClosed
		}
	}
	select {
	case <-closing:
		<-slots
		g.bg.Done()
		return errClosed
	default:
	}
	g.runBackground(ctx, abort, slots, f)
	return nil
}

// runBackground runs f, with ctx's values and a minute, its context ended
// with abort (workContext), in a goroutine that frees a slot of slots
// (taken) and calls g.bg.Done (added) when f returns.
func (g *Guard) runBackground(ctx, abort context.Context, slots chan struct{}, f func(ctx context.Context)) {
	go func() {
		defer g.bg.Done()
		defer func() { <-slots }()
		bctx, cancel := workContext(ctx, abort)
		defer cancel()
		f(bctx)
	}()
}

// forgotRefused records a ForgotPassword whose CAPTCHA was refused (err)
// before the account was looked up, as a refused password.reset_requested
// (reason captcha, Meta captcha: captchaMeta) of the account with that
// address (email, "" for none), or of the address when no user has it;
// nothing when the tenant does not exist. Anyone may repeat it:
// recordRefusal.
func (g *Guard) forgotRefused(ctx context.Context, req ForgotRequest, email string, err error) {
	if _, err := g.EffectivePolicy(ctx, req.Tenant); err != nil {
		return
	}
	ev := audit.Event{Tenant: req.Tenant, Actor: audit.Actor{Kind: audit.ActorAnonymous, Email: email},
		Action: audit.PasswordResetRequested, IP: req.IP, UserAgent: clip(req.UserAgent, 512),
		Outcome: audit.Failure, Reason: ReasonCaptcha}
	ev = captchaMeta(ev, err)
	if email != "" {
		if u, err := g.stores.Users.UserByEmail(ctx, req.Tenant, email); err == nil {
			ev.Actor, ev.Target = audit.Actor{Kind: audit.ActorUser, ID: u.ID, Email: u.Email}, u.ID
		}
	}
	_ = g.recordRefusal(ctx, ev)
}

// sendReset does the work of ForgotPassword; failures end in the audit log.
// It hands its email to resetMail, which sends it in a slot of its own.
func (g *Guard) sendReset(ctx context.Context, req ForgotRequest, email string) {
	// The client IP's limit counts every request, whether the tenant and
	// the account exist or not. The address's counts only the mail sent
	// to it (below), so that requests naming a tenant or an address
	// without an account cannot use up its owner's links.
	over, lerr := g.linkLimited(ctx, "", "", "", req.IP)
	ev := audit.Event{Tenant: req.Tenant, Actor: audit.Actor{Kind: audit.ActorAnonymous, Email: email},
		Action: audit.PasswordResetRequested, IP: req.IP, UserAgent: clip(req.UserAgent, 512), Outcome: audit.Success}
	pol, err := g.EffectivePolicy(ctx, req.Tenant)
	if err != nil {
		// No such tenant: no log to write to. A failure to read it is
		// on record, as the other failures below are, if the log can
		// take it (a ring-fenced tenant's log lives apart).
		if !errors.Is(err, ErrTenantNotFound) {
			ev.Outcome, ev.Reason = audit.Failure, ReasonUnavailable
			_ = g.record(ctx, ev)
		}
		return
	}
	u, err := g.stores.Users.UserByEmail(ctx, req.Tenant, email)
	switch {
	case errors.Is(err, auth.ErrNotFound):
		ev.Outcome, ev.Reason = audit.Failure, ReasonUnknownUser
	case err != nil:
		ev.Outcome, ev.Reason = audit.Failure, ReasonUnavailable
	case u.Status != auth.StatusActive:
		ev.Actor = audit.Actor{Kind: audit.ActorUser, ID: u.ID, Email: u.Email}
		ev.Outcome, ev.Reason = audit.Failure, ReasonDeactivated
	}
	switch ev.Reason {
	case ReasonUnavailable:
		_ = g.record(ctx, ev)
		return
	case ReasonUnknownUser, ReasonDeactivated:
		// Anyone may ask for any address in a loop: the tenant's count.
		_ = g.recordRefusal(ctx, ev)
		return
	}
	ev.Actor = audit.Actor{Kind: audit.ActorUser, ID: u.ID, Email: u.Email}
	ev.Target = u.ID
	// The account's and the address's limits count the requests the
	// client IP's let through, once an email (a link, or the note of a
	// tenant that requires SSO) is about to go to the address: the hits
	// of one request on its keys are apart (the lookup comes between),
	// and a request held back by the client IP's limit must not take the
	// account's or the address's place from a concurrent one it let
	// through.
	if lerr == nil && !over {
		over, lerr = g.linkLimited(ctx, u.Tenant, u.ID, email, "")
	}
	switch {
	case lerr != nil:
		ev.Outcome, ev.Reason = audit.Failure, ReasonUnavailable
		_ = g.record(ctx, ev)
		return
	case over:
		// Past a limit, in a loop if so wished: the account's count.
		ev.Outcome, ev.Reason = audit.Failure, ReasonRateLimited
		_ = g.recordRefusal(ctx, ev)
		return
	}
	if pol.RequireSSO && u.ID != pol.BreakGlassUser {
		// A password would not sign them in: they are told how to,
		// and no link is made. (Within the same limits: the form must
		// not flood an inbox with these either.)
		ev.Outcome, ev.Reason = audit.Failure, ReasonSSORequired
		if g.record(ctx, ev) == nil {
			g.resetMail(ctx, func(ctx context.Context) error {
				return g.recovery.Email.SendEmail(ctx, mfa.Message{To: u.Email, Subject: "Sign in with single sign-on",
					Text: "Someone asked to reset the password of your account. Your organisation signs in through " +
						"single sign-on, so there is no password to reset: sign in with your organisation's single " +
						"sign-on, and ask your administrator if you cannot. If you did not ask, you can ignore this message."})
			})
		}
		return
	}
	// Sent only to an account: out of the look-up's slot, so that its
	// time does not keep the next request waiting (MaxBackgroundResets).
	// The link is made in the email's slot: one whose email finds no slot
	// is never stored, so that it does not void the link mailed before.
	if !g.resetMail(ctx, func(ctx context.Context) error { return g.mailResetLink(ctx, u, ev) }) {
		ev.Outcome, ev.Reason = audit.Failure, "send_failed"
		ev.Meta = map[string]string{"dropped": "true"}
		// On record also when a Shutdown's context ended ctx (the email
		// dropped for that): the audit log refuses an ended context, so
		// the record has one of its own, bounded, as Shutdown waits for
		// it.
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), droppedRecordWait)
		_ = g.record(rctx, ev)
		cancel()
	}
}

// droppedRecordWait bounds the record of a reset email dropped once a
// Shutdown's context ended, which Shutdown waits for.
const droppedRecordWait = 5 * time.Second

// mailResetLink makes u's reset link, records ev (the request, let
// through) and mails the link; failures end in the audit log, and are
// returned (the link not mailed).
func (g *Guard) mailResetLink(ctx context.Context, u auth.User, ev audit.Event) error {
	token, h, err := newResetToken(g.rand)
	if err == nil {
		err = g.putResetCode(ctx, u, h, g.recovery.TokenTTL)
	}
	if err != nil {
		ev.Outcome, ev.Reason = audit.Failure, ReasonUnavailable
		_ = g.record(ctx, ev)
		return err
	}
	// The request is on record before the link leaves.
	if err := g.record(ctx, ev); err != nil {
		_ = g.recovery.codes.DeleteCode(ctx, u.Tenant, resetTxn(u.ID))
		return err
	}
	subject, text := g.recovery.Compose(g.resetLink(u.Tenant, u.ID, token), g.recovery.TokenTTL)
	if err := g.recovery.Email.SendEmail(ctx, mfa.Message{To: u.Email, Subject: subject, Text: text}); err != nil {
		ev.Outcome, ev.Reason = audit.Failure, "send_failed"
		_ = g.record(ctx, ev)
		return err
	}
	return nil
}

// resetMail runs send, which sends one of ForgotPassword's emails, in the
// background (Close waits for it, and it is given a minute, with ctx's
// values) in one of the MaxBackgroundResets email slots, apart from the
// look-ups' slots, and waits for none: with every one taken, send is not
// run, the email is dropped and counted in DroppedResetMails, and resetMail
// returns false. A Close under way waits for the email (it is part of
// the look-up's work, which Close waits for) and does not drop it; once a
// Shutdown's context ended, the email is dropped and counted as one that
// found no slot, and one whose send (its context ended by that) returns
// an error is counted dropped too.
func (g *Guard) resetMail(ctx context.Context, send func(ctx context.Context) error) bool {
	// Within ForgotPassword's background work (g.bg is not zero): no
	// enterBackground.
	abort := g.currentAbort()
	if abort.Err() != nil {
		g.droppedResets.Add(1)
		return false
	}
	select {
	case g.resetMails <- struct{}{}:
	default:
		g.droppedResets.Add(1)
		return false
	}
	g.bg.Add(1)
	g.runBackground(ctx, abort, g.resetMails, func(ctx context.Context) {
		if err := send(ctx); err != nil && abort.Err() != nil {
			g.droppedResets.Add(1) // cut short by Shutdown
		}
	})
	return true
}

// resetLink builds the link of a reset email from the configured base URL.
func (g *Guard) resetLink(tenant, userID, token string) string {
	u := *g.recovery.base
	u.Path = u.Path + g.recovery.Path
	u.RawQuery = url.Values{"tenant": {tenant}, "user": {userID}, "token": {token}}.Encode()
	return u.String()
}

func resetTxn(userID string) string { return "reset:" + userID }

// putResetCode stores the code of a reset or invitation link with token
// hash h, living ttl, that is about to be mailed to u.Email. The code is
// bound to that address and to u's password (see linkBinding): either may
// change between the read of u and this write, after the change voided
// the links, and the link must not work then. So may the user's status or
// the mark on their password (see recheckLink). A store failure is
// ErrUnavailable, and leaves no usable link.
func (g *Guard) putResetCode(ctx context.Context, u auth.User, h mfa.Hash, ttl time.Duration) error {
	now := g.now().UTC().Truncate(time.Microsecond)
	if err := g.recovery.codes.PutCode(ctx, mfa.Code{Tenant: u.Tenant, Txn: resetTxn(u.ID), UserID: u.ID,
		FactorID: linkBinding(u), Kind: mfa.KindEmail, Hash: h, CreatedAt: now, ExpiresAt: now.Add(ttl), TriesLeft: linkTries}); err != nil {
		return unavailable("store link", err)
	}
	return g.recheckLink(ctx, u, resetTxn(u.ID))
}

// recheckLink reads user u again once the code of a link for them (txn)
// is stored, u being the user as read when the link was made. A
// deactivation, a deletion and ExpirePassword void the user's links
// (voidLinks) once they have changed the user, and may have done so
// after u was read and before the code was stored, which would then
// outlive them (after a reactivation, or at once for ExpirePassword): the
// binding (linkBinding) does not see them, as they change neither the
// address nor the password. So the code is deleted when the user is now
// gone or no longer the account the link was made for (linkVoided; a
// change of address or password is left to the binding, which spends the
// link at its first use and records why): the link, mailed or not, does
// not work, as one made just before the change does not. A change after this read voids the code itself. A store
// failure deletes the code too and is returned (ErrUnavailable). What
// remains: a second ExpirePassword of a password already marked when u
// was read is not seen.
func (g *Guard) recheckLink(ctx context.Context, u auth.User, txn string) error {
	now, err := g.stores.Users.User(ctx, u.Tenant, u.ID)
	if err == nil {
		switch linkVoided(u, now) {
		case "", ReasonEmailChanged, ReasonPasswordChanged:
			// Kept: its binding spends it at its first use, which is
			// then on record with the reason (a link mailed to an
			// address no longer the user's).
			return nil
		}
	}
	if err != nil && !errors.Is(err, auth.ErrNotFound) {
		_ = g.recovery.codes.DeleteCode(context.WithoutCancel(ctx), u.Tenant, txn)
		return unavailable("load user", err)
	}
	if err := g.recovery.codes.DeleteCode(ctx, u.Tenant, txn); err != nil {
		return unavailable("void link", err)
	}
	return nil
}

// linkTries is the wrong tries a mailed link's code allows: as good as
// unlimited. Its token carries 256 random bits, which no number of
// guesses finds, and a limit would only let a stranger who knows a user's
// ID spend the user's reset link or invitation with made-up tokens (it
// fits the SQL stores' 32-bit counters).
const linkTries = 1 << 30

// linkBinding is what the code of a mailed link (a reset link, an
// invitation, an email-change link) keeps, in its FactorID (a mailed link
// has no factor), of the account as it was read when the link was made:
// its address (linkAddress) and its password (linkPassword). ResetPassword
// and ConfirmEmailChange compare them with the account's now (linkMoved).
// A change of address or password voids the links outstanding, but a link
// stored after that (asked for while the change was under way) would
// survive it: the binding spends it.
func linkBinding(u auth.User) string {
	return linkAddress(u.Email) + " " + linkPassword(u.PasswordHash)
}

// linkMoved returns why the link whose code is c no longer fits the
// account u (ReasonEmailChanged, ReasonPasswordChanged), or "" if it
// does.
func linkMoved(c mfa.Code, u auth.User) string {
	addr, pw, _ := strings.Cut(c.FactorID, " ")
	switch {
	case addr != linkAddress(u.Email):
		return ReasonEmailChanged
	case pw != linkPassword(u.PasswordHash):
		return ReasonPasswordChanged
	}
	return ""
}

// linkAddress is a hash of the address a link was mailed to, in canonical
// form (trimmed, lower case, NFC, as auth.CanonicalEmail makes it), so that the
// code store never holds the address itself.
func linkAddress(email string) string {
	h := sha256.Sum256([]byte("guard link address\x00" + canonicalAddress(email)))
	return "to:" + base64.RawURLEncoding.EncodeToString(h[:])
}

// canonicalAddress is email in canonical form (see auth.CanonicalEmail:
// trimmed, lower case, NFC), as the stores keep it, however a store
// answered it.
func canonicalAddress(email string) string {
	return emailfold.Fold(email)
}

// linkPassword is a hash of the user's password hash ("" for none) when a
// link was made: every password set (a change, a reset, an
// administrator's) makes a new hash, with a new salt, and so spends the
// links made before it. So does a rehash after a sign-in (a new hash of
// the same password), which is rare and only costs a new link.
func linkPassword(hash string) string {
	h := sha256.Sum256([]byte("guard link password\x00" + hash))
	return "pw:" + base64.RawURLEncoding.EncodeToString(h[:16])
}

// newResetToken returns 256 random bits in base64url and their hash.
func newResetToken(r io.Reader) (string, mfa.Hash, error) {
	var raw [32]byte
	if _, err := io.ReadFull(r, raw[:]); err != nil {
		return "", mfa.Hash{}, err
	}
	tok := base64.RawURLEncoding.EncodeToString(raw[:])
	return tok, resetHash(tok), nil
}

func resetHash(token string) mfa.Hash {
	return mfa.Hash(sha256.Sum256([]byte("guard reset token\x00" + token)))
}

// ResetRequest completes a password reset from a link.
type ResetRequest struct {
	// Tenant, UserID and Token are the link's parameters.
	Tenant, UserID, Token string
	NewPassword           string
	IP, UserAgent         string
	Captcha               string // required when Config.Captcha is set
}

// ResetPassword sets a new password from a reset link. A client IP over
// 64 bytes or a malformed user agent (as Login refuses it) is an
// *InputError before anything else, whoever the link names. A refused
// CAPTCHA is ErrCaptchaRequired, before the link is looked at, recorded
// as a refused password.reset event (reason captcha) when the user the
// link names exists. The link is checked first, and consumed once; any problem with it is
// ErrInvalidResetToken, recorded as a refused password.reset event when
// the user exists (reasons invalid_token, deactivated; email_changed,
// ReasonEmailChanged, for a link mailed to an address that is no longer
// the user's, and password_changed, ReasonPasswordChanged, for one made
// before the user's password was last set, even while that change was
// under way: the link is spent and nothing changes); these refusals of
// the link are recorded at most 30 times a minute for one user and
// reason, so that made-up links in a loop cannot flood the log (the ones
// beyond are refused all the same, unrecorded; the 30th recorded carries
// Meta recording_paused "true"), nor silence the refusal of a real link
// (email_changed, say: reasons are counted apart). Only once the link
// holds is the new password checked: one over MaxPasswordBytes is
// auth.ErrPasswordTooLong (recorded, bad_input), one the tenant's policy
// refuses an *auth.PolicyError, and either way the link is put back,
// usable again, unless the account changed meanwhile in a way that voids
// the links (a deactivation, ExpirePassword, a change of password or
// address: the link given back would outlive the voiding). Neither is asked before the link holds: the length
// refusal would tell whoever holds a user ID (every link carries one)
// that the user exists and is active, and the password history whether a
// guess is the user's password. On
// success every session of the user ends, so does a pending email
// change, the account's login lock is lifted (a temporary one: a
// permanent lock, AccountLimit.PermanentAfter, stays until an
// administrator's UnlockUser) and a notice is mailed;
// second factors stay as they are, so the next login still asks for one
// (a reset never disables MFA). The link went to the user's address, so
// an unverified address (User.EmailUnverified) is verified, in the same
// store step as the password is set (the password.reset event says
// email_verified). The replaced password cannot be put back as it was, so
// the reset is recorded (password.reset) before the new password is set,
// and the password is set only while the account is as the link was
// checked against (auth.UserUpdater.ResetPassword): a change of password
// or address, a deactivation or an ExpirePassword made while the reset
// ran (each voids the links) refuses it, ErrInvalidResetToken recorded
// after that password.reset as a refused one (reason password_changed,
// email_changed, deactivated or password_expired). The change stands, the
// address stays unverified, the link is spent (the change would have
// voided it, had the reset not taken it out of the store), and the
// sessions the reset ended stay ended. A store
// failure before the new password is set, the record's included, or a
// failure to hash the new password (the request's context ended while it
// waited for a hashing slot) returns ErrUnavailable and gives the link
// back, the password unchanged (the
// user's sessions may have ended, and a failure after the record leaves
// the reset on record but not made): try again with it. Once the new
// password is set the sessions end again: a sign-in with the old
// password whose session was created while the reset ran ends too (a
// later one sees the reset and is refused: see Login), recorded after
// the reset as session.revoked (Meta reason password_changed,
// sessions_ended) when any live one ended, the password.reset having
// counted only the sessions ended before it. A store failure from then
// on returns ErrUnavailable with the reset done and on record (the
// account's login lock, if any, stays, and no notice is sent).
func (g *Guard) ResetPassword(ctx context.Context, req ResetRequest) error {
	if err := linkInput(req.IP, req.UserAgent); err != nil {
		return err
	}
	if err := g.checkCaptcha(ctx, req.Captcha, req.IP); err != nil {
		return g.resetCaptchaRefused(ctx, req, err)
	}
	if g.recovery.codes == nil {
		return &PolicyError{Field: "Recovery.Email", Reason: "is not configured"}
	}
	pol, u, err := g.linkUser(ctx, req.Tenant, req.UserID, ErrInvalidResetToken)
	if err != nil {
		return err
	}
	actor := Principal{Kind: KindUser, Tenant: u.Tenant, UserID: u.ID, IP: req.IP, UserAgent: clip(req.UserAgent, 512)}
	refusal := func(reason string) audit.Event {
		e := g.adminEvent(actor, u.Tenant, audit.PasswordReset, u.ID)
		e.Outcome, e.Reason = audit.Failure, reason
		return e
	}
	refuse := func(reason string) error { return cmp.Or(g.record(ctx, refusal(reason)), ErrInvalidResetToken) }
	// A link that does not hold, which anyone may make up in a loop, is
	// recorded at most 30 times a minute for the user and reason
	// (recordRefusal).
	refuseLink := func(reason string) error {
		return cmp.Or(g.recordRefusal(ctx, refusal(reason)), ErrInvalidResetToken)
	}
	switch {
	case len(req.Token) != 43:
		return refuseLink("invalid_token")
	case u.Status != auth.StatusActive:
		return refuseLink(ReasonDeactivated)
	}
	c, err := g.recovery.codes.CheckCode(ctx, u.Tenant, resetTxn(u.ID), resetHash(req.Token), g.now())
	switch {
	case err != nil && !isMFAClean(err):
		return unavailable("check reset token", err)
	case err != nil:
		return refuseLink("invalid_token")
	}
	if reason := linkMoved(c, u); reason != "" {
		// Mailed to an address that is no longer the user's, or made
		// before the password last set (perhaps stored while a change
		// was under way): it is spent, and changes nothing.
		return refuseLink(reason)
	}
	// The link holds. A new password refused now (too long, or by the
	// policy) gives it back, usable again (unless a newer one was mailed
	// meanwhile, which this replaces: the one the user just used keeps
	// working). Not before: the answer to a made-up link must not depend
	// on whether the user exists and is active.
	giveBack := func(err error) error {
		if perr := g.giveBackLink(ctx, u, c); perr != nil {
			return perr
		}
		return err
	}
	if len(req.NewPassword) > MaxPasswordBytes {
		if err := refuse(ReasonBadInput); !errors.Is(err, ErrInvalidResetToken) {
			return giveBack(err)
		}
		return giveBack(auth.ErrPasswordTooLong)
	}
	if err := g.checkPassword(ctx, actor, pol, u, req.NewPassword); err != nil {
		return giveBack(err)
	}
	h, err := g.hasher.Hash(ctx, req.NewPassword)
	if err != nil {
		// The request's context ended while it waited for a hashing
		// slot (or randomness failed): nothing changed.
		return giveBack(unavailable("hash password", err))
	}
	// Until the password is set, a failure gives the link back: the user
	// tries again with it. The sessions end before the password is set,
	// so that a failure never leaves the new password beside the old
	// sessions, and again once it is set (below).
	restore := func(err error) error {
		_ = g.giveBackLink(ctx, u, c)
		return err
	}
	// An email change asked for before the reset (perhaps by whoever
	// made the reset necessary) ends with it.
	if err := g.voidLinks(ctx, u.Tenant, u.ID); err != nil {
		return restore(err)
	}
	ended, err := g.sessions.RevokeUser(ctx, u.Tenant, u.ID, [32]byte{})
	if err != nil {
		return restore(unavailable("end sessions", err))
	}
	// The replaced password cannot be put back as it was: the reset is
	// recorded before it is made.
	e := g.adminEvent(actor, u.Tenant, audit.PasswordReset, u.ID)
	e.Meta = map[string]string{"sessions_ended": strconv.Itoa(g.endedLive(ctx, u.Tenant, ended))}
	if u.EmailUnverified {
		// The link went to u.Email, which the write below verifies with
		// the password, in one step: after the record, and only while
		// the address is still u.Email.
		e.Meta["email_verified"] = "true"
	}
	if err := g.record(ctx, e); err != nil {
		return restore(err)
	}
	// Only while the account is as the link was checked against: a
	// change of password or address, a deactivation (reactivated since
	// or not) or an ExpirePassword made since (perhaps during the
	// password checks) voided the links, this one too had it not been out
	// of the store, and stands.
	now := g.now().UTC().Truncate(time.Microsecond)
	was := u
	was.Email = canonicalAddress(u.Email)
	switch err := g.stores.UserUpdates.ResetPassword(ctx, u.Tenant, u.ID, was, h, now, pol.PasswordHistory); {
	case errors.Is(err, auth.ErrConflict):
		return refuse(g.resetConflict(ctx, u))
	case err != nil:
		return restore(g.userErr("set password", err))
	}
	// A sign-in with the old password that created its session (and
	// re-read the user: see Login) between the first end of the sessions
	// and the write saw no change: its session ends now. One after the
	// write sees the change and drops its own. The password.reset above
	// counted the sessions ended before it; these are recorded apart.
	again, err := g.sessions.RevokeUser(ctx, u.Tenant, u.ID, [32]byte{})
	if err != nil {
		return unavailable("end sessions", err)
	}
	if n := g.endedLive(ctx, u.Tenant, again); n > 0 {
		e := g.adminEvent(actor, u.Tenant, audit.SessionRevoked, u.ID)
		e.Meta = map[string]string{"reason": ReasonPasswordChanged, "sessions_ended": strconv.Itoa(n)}
		if err := g.record(ctx, e); err != nil {
			return err
		}
	}
	// Last: a failure leaves the account's lock (if any) in place, the
	// reset done and on record. A temporary lock is lifted and the
	// failures forgotten; a permanent one is an administrator's to lift
	// (UnlockUser), as the lock notice told the user, and stays: read,
	// then skipped. A lock made permanent between the read and the Reset
	// is lifted, as it would have been had the reset come a moment sooner
	// and forgotten the failures that made it.
	key := accountKey(u.Tenant, u.ID, u.Email)
	st, err := g.stores.Throttle.Peek(ctx, key, g.now(), g.acctLim)
	if err == nil && !st.Permanent {
		err = g.stores.Throttle.Reset(ctx, key)
	}
	if err != nil {
		return unavailable("throttle", err)
	}
	text := "The password of your account was just reset with a link sent to this address, and every session was ended. "
	if st.Permanent {
		text += "The account stays locked until an administrator unlocks it. "
	}
	g.notify(ctx, u, "Your password was reset",
		text+"If it was not you, someone can read this mailbox: contact your administrator now.")
	return nil
}

// resetConflict returns the reason of a reset (or a ChangePassword, or a
// change of address) refused because the account u changed while it ran
// (see linkVoided), read again now
// (password_changed when the read fails or finds no change left: a
// change undone again).
func (g *Guard) resetConflict(ctx context.Context, u auth.User) string {
	if now, err := g.stores.Users.User(ctx, u.Tenant, u.ID); err == nil {
		if reason := linkVoided(u, now); reason != "" {
			return reason
		}
	}
	return ReasonPasswordChanged
}

// resetCaptchaRefused records a ResetPassword whose CAPTCHA was refused
// (err) as a refused password.reset of the user the link names (reason
// captcha, Meta captcha: captchaMeta), when there is one: the link is
// not looked at. Anyone may repeat it: it is recorded at most 30 times a
// minute for the user, counted apart from the link's refusals
// (recordRefusal). It returns err, the same answer
// whoever the link names, unless the refusal cannot be recorded
// (ErrUnavailable, as for a refused link).
func (g *Guard) resetCaptchaRefused(ctx context.Context, req ResetRequest, err error) error {
	_, u, lerr := g.linkUser(ctx, req.Tenant, req.UserID, ErrInvalidResetToken)
	switch {
	case errors.Is(lerr, ErrInvalidResetToken):
		return err // no such user
	case lerr != nil:
		return lerr
	}
	actor := Principal{Kind: KindUser, Tenant: u.Tenant, UserID: u.ID, IP: req.IP, UserAgent: req.UserAgent}
	e := g.adminEvent(actor, u.Tenant, audit.PasswordReset, u.ID)
	e.Outcome, e.Reason = audit.Failure, ReasonCaptcha
	if rerr := g.recordRefusal(ctx, captchaMeta(e, err)); rerr != nil {
		return rerr
	}
	return err
}

// giveBackLink puts back c, the code of u's reset link, which a reset
// that changed nothing spent, so that the user may try again with it:
// unless the account moved meanwhile (linkVoided). A deactivation, an
// ExpirePassword, a change of password or address voids the links, and
// one made while the link was out of the store found nothing to void: the
// link must not come back after it. Put back, then read: a change the read misses comes after the
// put back, and its voiding deletes the link. A link the read finds moved
// is spent again (only c: not a newer link that replaced it). A store
// failure is ErrUnavailable (the user read failing, the link is spent
// again).
func (g *Guard) giveBackLink(ctx context.Context, u auth.User, c mfa.Code) error {
	ctx = context.WithoutCancel(ctx)
	if err := g.recovery.codes.PutCode(ctx, c); err != nil {
		return unavailable("restore reset token", err)
	}
	now, err := g.stores.Users.User(ctx, u.Tenant, u.ID)
	if err == nil && linkVoided(u, now) == "" {
		return nil
	}
	if _, cerr := g.recovery.codes.CheckCode(ctx, c.Tenant, c.Txn, c.Hash, g.now()); cerr != nil && !isMFAClean(cerr) {
		return unavailable("spend reset token", cerr)
	}
	if err != nil && !errors.Is(err, auth.ErrNotFound) {
		return unavailable("load user", err)
	}
	return nil
}

// linkVoided returns why the account now is no longer the account was,
// an active account as read when a mailed link was made for it or used
// (a reset link, an invitation, an email-change link), or "" if it still
// is. Each of these changes voids the account's links (voidLinks), and a
// link stored, checked or given back while one was under way must not
// outlive it: its address changed (ReasonEmailChanged), its password
// (ReasonPasswordChanged: the link's binding tells these two as well, see
// linkMoved), it is no longer active (ReasonDeactivated), the mark of an
// expired password was set or cleared (ReasonPasswordExpired), or it was
// reactivated since (ReasonDeactivated: a deactivation came and went).
// recheckLink, giveBackLink and resetConflict share it.
func linkVoided(was, now auth.User) string {
	switch {
	case canonicalAddress(now.Email) != canonicalAddress(was.Email):
		return ReasonEmailChanged
	case now.PasswordHash != was.PasswordHash:
		return ReasonPasswordChanged
	case now.Status != auth.StatusActive || now.Status != was.Status:
		return ReasonDeactivated
	case now.PasswordExpired != was.PasswordExpired:
		return ReasonPasswordExpired
	case !now.ReactivatedAt.Equal(was.ReactivatedAt):
		return ReasonDeactivated // and reactivated since: a deactivation came and went
	}
	return ""
}

// linkInput checks the client IP and user agent of a mailed link's call
// (ForgotPassword, ResetPassword, ConfirmEmailChange) as Login does
// (loginInput), before anything is looked at: malformed, they are an
// *InputError whoever the link names. Taken as they are, the audit log
// would refuse the refusal of a made-up link for a user who exists (an
// answer telling that the user exists), and a ForgotPassword would be
// dropped, unrecorded.
func linkInput(ip, userAgent string) error {
	if err := checkText("user agent", userAgent, 1024); err != nil {
		return err
	}
	return checkClientIP(ip)
}

// linkUser finds the tenant's policy and the user a mailed link
// (reset or email change) names. A tenant or user ID that no link
// carries, an unknown tenant or user give invalid; a store failure
// ErrUnavailable. The link's token is the caller's to check, and to
// record as refused: the user is known then.
func (g *Guard) linkUser(ctx context.Context, tenant, userID string, invalid error) (Policy, auth.User, error) {
	if CheckTenantID(tenant) != nil || userID == "" || len(userID) > auth.MaxIDBytes {
		return Policy{}, auth.User{}, invalid
	}
	pol, err := g.EffectivePolicy(ctx, tenant)
	if errors.Is(err, ErrTenantNotFound) {
		return Policy{}, auth.User{}, invalid
	}
	if err != nil {
		return Policy{}, auth.User{}, err
	}
	u, err := g.stores.Users.User(ctx, tenant, userID)
	switch {
	case errors.Is(err, auth.ErrNotFound):
		return Policy{}, auth.User{}, invalid
	case err != nil:
		return Policy{}, auth.User{}, unavailable("load user", err)
	}
	return pol, u, nil
}

// isMFAClean reports whether err is one of mfa's answers about a code
// (as opposed to a store failure).
func isMFAClean(err error) bool {
	var ie *mfa.InputError
	return errors.Is(err, mfa.ErrNotFound) || errors.Is(err, mfa.ErrExpired) || errors.Is(err, mfa.ErrInvalidCode) ||
		errors.Is(err, mfa.ErrTooManyTries) || errors.Is(err, mfa.ErrReplay) || errors.As(err, &ie)
}

// checkCaptcha verifies a CAPTCHA token when a verifier is configured:
// anything but a clean pass is ErrCaptchaRequired (fail closed).
func (g *Guard) checkCaptcha(ctx context.Context, token, ip string) error {
	if g.captcha == nil {
		return nil
	}
	if err := g.captcha.Verify(ctx, token, ip); err != nil {
		return fmt.Errorf("%w: %w", ErrCaptchaRequired, err)
	}
	return nil
}
