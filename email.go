package guard

import (
	"cmp"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/mfa"
)

// ReasonEmailTaken is the Reason of a refused user.email_changed event:
// another user of the tenant has the address.
const ReasonEmailTaken = "email_taken"

// ChangeEmail changes the signed-in user's email address, the one they
// sign in with, to newEmail in canonical form (see auth.CanonicalEmail).
//
// It needs a recent authentication: on an older session it returns
// ErrStepUpRequired (call Reauthenticate and retry); an API key is refused
// with ErrForbidden (recorded as access.denied, reason api_key), any other
// principal that is not a signed-in user with ErrUnauthenticated. A
// malformed address is an *auth.InputError, and an address another user of
// the tenant has is ErrEmailTaken (recorded as a refused user.email_changed
// event); neither changes anything. The user's current address again
// changes nothing and succeeds.
//
// On success the user signs in with the new address only, every other
// session of the user ends, a password-reset or invitation link mailed to
// the old address stops working (even one sent while the change is made),
// a user.email_changed event records the old and the new address, and,
// when Config.Recovery.Email is set, a notice goes to the old address.
// A notice to an unverified old address (User.EmailUnverified: perhaps a
// stranger's, set in a loop of changes to it and back) is limited to
// Recovery.Limits.PerDestination an hour per tenant and address, on a
// count of these notices' own: over it the change is made all the same,
// but no notice is sent, and the user.email_changed event carries Meta
// notice "rate_limited". A notice to a verified address is not counted
// and is never held back. A store failure of the count is
// ErrUnavailable, and nothing changes.
// The login throttle state (failures, a lock) is the account's, not the
// address's (its key is the tenant and user ID): it follows the account
// to the new address, so a change of address never buys a fresh count of
// guesses. If ending the sessions or recording the event fails, the
// old address is put back and the error returned.
//
// The address is set only while the account is as it was read when the
// change was checked (auth.UserUpdater.ChangeEmail). If the account
// changed while the change ran (a password change or reset, an
// ExpirePassword, a deactivation, another change of address), that
// change stands: the change of address is refused with ErrConflict,
// recorded as a refused user.email_changed with its reason
// (password_changed, password_expired, deactivated or email_changed),
// and nothing else changes (no session ends, no notice is sent). A reset
// by the owner, which ends every session, is never undone by a change of
// address begun before it from a stolen session. A failure to record the
// refusal returns ErrUnavailable.
//
// The new address is not verified: the user is trusted to own it, and it
// is stored unverified (User.EmailUnverified). Single sign-on never
// matches the account by an unverified address (CompleteSSO refuses,
// reason email_unverified): a user who claims a colleague's address
// before the tenant connects an IdP does not receive the colleague's
// sign-ins and roles. The address is verified when the user proves they
// receive mail there: a link for it from RequestEmailChange (allowed for
// the user's own unverified address even in a tenant with an IdP) and
// ConfirmEmailChange, or a reset link (ForgotPassword, or an
// administrator's SendInvitation) and ResetPassword. An administrator who
// finds the claim false deletes the account. RequestEmailChange and
// ConfirmEmailChange change an address verified from the start. In a
// tenant with a single sign-on connection the IdP owns addresses, and
// ChangeEmail is refused with a *PolicyError.
func (g *Guard) ChangeEmail(ctx context.Context, p Principal, newEmail string) error {
	u, email, err := g.prepareEmailChange(ctx, p, newEmail)
	if err != nil || email == u.Email {
		return err
	}
	return g.applyEmailChange(ctx, p, u, email, true)
}

// prepareEmailChange checks that the principal may change their address
// to newEmail now and returns the user and the address in canonical form
// (the user's own: nothing to do).
func (g *Guard) prepareEmailChange(ctx context.Context, p Principal, newEmail string) (auth.User, string, error) {
	if err := g.requireRecentAuth(ctx, p, "", actionEmail); err != nil {
		return auth.User{}, "", err
	}
	if p.Kind != KindUser {
		return auth.User{}, "", ErrUnauthenticated
	}
	idp, err := g.hasIdP(ctx, p.Tenant)
	if err != nil {
		return auth.User{}, "", err
	}
	email, err := auth.CanonicalEmail(newEmail)
	if err != nil {
		return auth.User{}, "", err
	}
	u, err := g.selfUser(ctx, p)
	if err != nil {
		return auth.User{}, "", err
	}
	// Single sign-on finds users by email: in a tenant with an IdP, the
	// address belongs to the IdP, or a user could claim a colleague's
	// address and receive their sign-ins (and roles). The user's own
	// unverified address is no new claim: a link sent there verifies it.
	if idp && (email != u.Email || !u.EmailUnverified) {
		return auth.User{}, "", &PolicyError{Field: "email", Reason: "is managed by the tenant's identity provider"}
	}
	return u, email, nil
}

// emailChangeEvent is the user.email_changed event of u's change to email.
func emailChangeEvent(p Principal, u auth.User, email string, outcome audit.Outcome, reason string) audit.Event {
	a := attempt{req: LoginRequest{Tenant: p.Tenant, IP: p.IP, UserAgent: p.UserAgent}, email: u.Email, user: &u}
	e := a.event(audit.UserEmailChanged, outcome, reason)
	e.Target = u.ID
	e.Meta = map[string]string{"old_email": u.Email, "new_email": email}
	return e
}

// applyEmailChange sets u's address to email, unverified or not, ends the
// user's sessions but p's, records it and notifies the old address; it
// puts the old address back if the change cannot be completed. A notice
// to an old address u never proved goes only within that address's link
// limit (unprovedNoticeLimited). The
// address is set only while the account is as u, read by the caller: a
// change of the password or the address, an ExpirePassword or a
// deactivation (reactivated since or not) made since stands, and the
// change is refused with
// ErrConflict, recorded as a refused user.email_changed with its reason.
func (g *Guard) applyEmailChange(ctx context.Context, p Principal, u auth.User, email string, unverified bool) error {
	was := u
	was.Email = canonicalAddress(u.Email)
	switch err := g.stores.UserUpdates.ChangeEmail(ctx, u.Tenant, u.ID, was, email, unverified); {
	case errors.Is(err, auth.ErrConflict):
		// Perhaps a reset by the owner, which ended the session of
		// whoever asked for this change: it stands.
		if rerr := g.record(ctx, emailChangeEvent(p, u, email, audit.Failure, g.resetConflict(ctx, u))); rerr != nil {
			return rerr
		}
		return ErrConflict
	case errors.Is(err, auth.ErrDuplicateEmail):
		if rerr := g.record(ctx, emailChangeEvent(p, u, email, audit.Failure, ReasonEmailTaken)); rerr != nil {
			return rerr
		}
		return ErrEmailTaken
	case err != nil:
		return g.userErr("set email", err)
	}
	e := emailChangeEvent(p, u, email, audit.Success, "")
	e.Meta["email_verified"] = boolString(!unverified)
	over, err := g.unprovedNoticeLimited(ctx, u)
	if err == nil && over {
		e.Meta["notice"] = ReasonRateLimited
	}
	if err == nil {
		err = g.afterEmailChange(ctx, p, u, e)
	}
	if err != nil {
		// Not done, or not on record: put the old address back.
		_ = g.stores.UserUpdates.SetEmail(context.WithoutCancel(ctx), u.Tenant, u.ID, u.Email, u.EmailUnverified)
		return err
	}
	if over {
		return nil
	}
	g.notify(ctx, u, "The email address of your account was changed",
		"The email address you sign in with was just changed from "+u.Email+" to "+email+". "+
			"This address will no longer receive messages about the account. "+
			"If it was not you, contact your administrator now.")
	return nil
}

// unprovedNoticeLimited counts the notice of a change of address about to
// go to u's address when it is unverified (User.EmailUnverified: set by
// ChangeEmail, perhaps a stranger's), on a count of its own per tenant
// and address, and reports whether LinkLimits.PerDestination is now
// exceeded. A user may set any address and set their own back, in a
// loop: each round would mail the address's owner. The count is the
// notices' own and the tenant's: no one else's requests (ForgotPassword,
// which anyone can make, other tenants' changes) can use it up, and in
// the tenant only a change away from the address, which only its holder
// can make (an address is one user's in a tenant), counts, so a stolen
// session's change is never kept from an owner who receives mail there
// (ChangeEmail stores every new address unverified, the user's own
// included). A notice to a verified address is not counted and always
// goes, nor is one that would not be sent (no Recovery.Email, u not
// active) counted. A store failure is ErrUnavailable.
func (g *Guard) unprovedNoticeLimited(ctx context.Context, u auth.User) (bool, error) {
	if !u.EmailUnverified || g.recovery.Email == nil || !hearsNotices(u) {
		return false, nil
	}
	return g.overLimits(ctx, "email change notice limit", false,
		sendLimit{linkRateKey("change-notice", u.Tenant, canonicalAddress(u.Email)), g.recovery.Limits.PerDestination})
}

// RequestEmailChange starts a verified change of the signed-in user's
// email address: it mails a link to newEmail, and the address changes only
// when the link comes back (ConfirmEmailChange), which proves the user
// receives mail there. It needs Config.Recovery (the link is built like a
// reset link, on Recovery.BaseURL + Recovery.EmailChangePath, and lives
// Recovery.TokenTTL).
//
// The checks are ChangeEmail's, made now: a recent authentication
// (ErrStepUpRequired), no single sign-on connection (*PolicyError), a
// well-formed address (*auth.InputError). The user's current address
// changes nothing and sends nothing, unless it is unverified
// (User.EmailUnverified): then the link goes there, even in a tenant with
// an IdP, and verifies it. The link is single-use, stored only as a hash
// bound to the new address (and to the user's address and password now:
// see ConfirmEmailChange), and a newer request voids the older link; the
// request is recorded (user.email_change_requested) before the link
// leaves. A deactivation, or an ExpirePassword, of the user under way
// while the link is made (perhaps ending the very session that asks)
// voids it as it voids a link made before: it may still be mailed, but
// does not work.
//
// Two refusals answer nil, as if the link had gone out, so that the
// answer tells nothing about other accounts. An address another user of
// the tenant has (ChangeEmail reports it, ErrEmailTaken) gets no link but
// a short notice, mailed as the link would be (so the answer takes about
// as long; none to a deactivated account), and the request is recorded as a refused user.email_changed
// event (reason email_taken): no member learns from it who has an
// account. And Recovery.Limits bound the links and notices sent, every
// request counted whether the address is free or not: beyond them nothing
// is made or sent, the last link stays valid, and the request is recorded
// as a refused user.email_change_requested (rate_limited); the limit of
// an address counts the emails sent to it from every tenant,
// ForgotPassword's included, which an error would tell. A store or mail
// failure is ErrUnavailable and leaves no usable link; a mail failure is
// recorded as a refused user.email_change_requested (reason send_failed)
// after the request's own record.
func (g *Guard) RequestEmailChange(ctx context.Context, p Principal, newEmail string) error {
	if g.recovery.Email == nil {
		return &PolicyError{Field: "Recovery.Email", Reason: "is not configured"}
	}
	u, email, err := g.prepareEmailChange(ctx, p, newEmail)
	if err != nil || (email == u.Email && !u.EmailUnverified) {
		return err
	}
	// Every request counts, whether the address is free or not.
	switch over, err := g.linkLimited(ctx, u.Tenant, u.ID, email, p.IP); {
	case err != nil:
		return err
	case over:
		// Answered as if sent: the address's limit counts emails
		// from every tenant, ForgotPassword's too.
		e := emailChangeEvent(p, u, email, audit.Failure, ReasonRateLimited)
		e.Action = audit.UserEmailChangeRequested
		return g.record(ctx, e)
	}
	switch o, err := g.stores.Users.UserByEmail(ctx, u.Tenant, email); {
	case err == nil && o.ID == u.ID:
		// The user's own unverified address: the link verifies it.
	case err == nil:
		// Answered as if sent, or any member would learn who has an
		// account: the address's owner is told instead (while active:
		// hearsNotices).
		if rerr := g.record(ctx, emailChangeEvent(p, u, email, audit.Failure, ReasonEmailTaken)); rerr != nil {
			return rerr
		}
		if !hearsNotices(o) {
			return nil
		}
		if err := g.recovery.Email.SendEmail(ctx, mfa.Message{To: email, Subject: emailTakenSubject, Text: emailTakenText}); err != nil {
			return unavailable("send email change notice", err)
		}
		return nil
	case !errors.Is(err, auth.ErrNotFound):
		return unavailable("load user", err)
	}
	token, _, err := newResetToken(g.rand)
	if err != nil {
		return err
	}
	now := g.now().UTC().Truncate(time.Microsecond)
	txn := emailChangeTxn(u.ID)
	// FactorID keeps the address the change is from and the password: a
	// change of either after the user was read (another session's
	// ChangeEmail or ChangePassword, whose voiding of the links this
	// store may come after) spends the link.
	if err := g.recovery.codes.PutCode(ctx, mfa.Code{Tenant: u.Tenant, Txn: txn, UserID: u.ID, Kind: mfa.KindEmail,
		FactorID: linkBinding(u), Hash: emailChangeHash(token, email), CreatedAt: now,
		ExpiresAt: now.Add(g.recovery.TokenTTL), TriesLeft: linkTries}); err != nil {
		return unavailable("store email change link", err)
	}
	// A deactivation or ExpirePassword under way (perhaps ending the very
	// session that asks) may have voided the links before this store.
	if err := g.recheckLink(ctx, u, txn); err != nil {
		return err
	}
	e := emailChangeEvent(p, u, email, audit.Success, "")
	e.Action = audit.UserEmailChangeRequested
	if err := g.record(ctx, e); err != nil {
		_ = g.recovery.codes.DeleteCode(context.WithoutCancel(ctx), u.Tenant, txn)
		return err
	}
	subject, text := g.recovery.ComposeEmailChange(g.emailChangeLink(u.Tenant, u.ID, email, token), g.recovery.TokenTTL)
	if err := g.recovery.Email.SendEmail(ctx, mfa.Message{To: email, Subject: subject, Text: text}); err != nil {
		// No link went out: the request's record is followed by a failed
		// one, as SendInvitation and ForgotPassword record theirs.
		bctx := context.WithoutCancel(ctx)
		_ = g.recovery.codes.DeleteCode(bctx, u.Tenant, txn)
		f := emailChangeEvent(p, u, email, audit.Failure, "send_failed")
		f.Action = audit.UserEmailChangeRequested
		_ = g.record(bctx, f)
		return unavailable("send email change link", err)
	}
	return nil
}

// EmailChangeConfirm is a link from RequestEmailChange coming back.
type EmailChangeConfirm struct {
	// Tenant, UserID, Email and Token are the link's parameters.
	Tenant, UserID, Email, Token string
	IP, UserAgent                string
}

// ConfirmEmailChange completes a change started by RequestEmailChange from
// its link: the user's address becomes the one the link was sent to. Any
// problem with the link (unknown, used, expired, voided by a newer
// request, its address or token altered, the user deactivated, the
// user's address changed since it was asked for: reason email_changed,
// or the password set since, even by a change under way when it was
// asked for: reason password_changed; the tenant has connected an
// identity provider since, which owns the addresses: reason idp_managed)
// is ErrInvalidEmailChange, recorded as a refused user.email_changed event
// when the user exists; a link that does not hold (all but idp_managed) is
// recorded at most 30 times a minute for one user and reason, so that
// made-up links in a loop cannot flood the log (the ones beyond are
// refused all the same, unrecorded; the 30th recorded carries Meta
// recording_paused "true"), nor silence the refusal of a real link
// (reasons are counted apart). The address may have been taken by another user
// since the request: ErrEmailTaken, and nothing changes. The address it
// changes to is verified (User.EmailUnverified false). A link for the
// user's own unverified address changes nothing but that: the address is
// verified, recorded as user.email_changed with email_verified, and no
// session ends.
//
// A client IP over 64 bytes or a malformed user agent (as Login refuses
// it) is an *InputError before anything else, whoever the link names.
//
// The link needs no session: it may be opened in another browser. On
// success every session of the user ends (they sign in again with the new
// address), a reset link mailed to the old address stops working, the
// change is recorded (user.email_changed) and a notice goes to the old
// address, as with ChangeEmail (within the same limit, if the user never
// proved the old address).
//
// As with ChangeEmail, the address is set only while the account is as
// the link was checked against: if the account changed while the change
// ran (a password change or reset, an ExpirePassword, a deactivation,
// another change of address), that change stands, and the change of
// address is refused with ErrConflict (the link is spent), recorded as a
// refused user.email_changed with its reason (password_changed,
// password_expired, deactivated or email_changed); nothing else changes.
func (g *Guard) ConfirmEmailChange(ctx context.Context, req EmailChangeConfirm) error {
	if g.recovery.codes == nil {
		return &PolicyError{Field: "Recovery.Email", Reason: "is not configured"}
	}
	if err := linkInput(req.IP, req.UserAgent); err != nil {
		return err
	}
	_, u, err := g.linkUser(ctx, req.Tenant, req.UserID, ErrInvalidEmailChange)
	if err != nil {
		return err
	}
	p := Principal{Kind: KindUser, Tenant: u.Tenant, UserID: u.ID, IP: req.IP, UserAgent: clip(req.UserAgent, 512)}
	email, eerr := auth.CanonicalEmail(req.Email)
	refuse := func(reason string) error {
		return cmp.Or(g.record(ctx, emailChangeEvent(p, u, email, audit.Failure, reason)), ErrInvalidEmailChange)
	}
	// A link that does not hold, which anyone may make up in a loop, is
	// recorded at most 30 times a minute for the user and reason
	// (recordRefusal).
	refuseLink := func(reason string) error {
		return cmp.Or(g.recordRefusal(ctx, emailChangeEvent(p, u, email, audit.Failure, reason)), ErrInvalidEmailChange)
	}
	switch {
	case eerr != nil || len(req.Token) != 43:
		return refuseLink("invalid_token") // no link carries them
	case u.Status != auth.StatusActive:
		return refuseLink(ReasonDeactivated)
	}
	c, err := g.recovery.codes.CheckCode(ctx, u.Tenant, emailChangeTxn(u.ID), emailChangeHash(req.Token, email), g.now())
	switch {
	case err != nil && !isMFAClean(err):
		return unavailable("check email change link", err)
	case err != nil:
		return refuseLink("invalid_token")
	}
	if reason := linkMoved(c, u); reason != "" {
		// Asked for from an address that is no longer the user's, or
		// before the password was last set: it is spent, and changes
		// nothing.
		return refuseLink(reason)
	}
	if email == u.Email {
		return g.verifyOwnEmail(ctx, p, u, refuse)
	}
	// The tenant may have connected an IdP since the link was asked for:
	// the IdP owns the addresses now (see prepareEmailChange).
	switch idp, err := g.hasIdP(ctx, u.Tenant); {
	case err != nil:
		return err
	case idp:
		return refuse(ReasonIdPManaged)
	}
	return g.applyEmailChange(ctx, p, u, email, false)
}

// verifyOwnEmail marks u's address, proved by a link mailed to it,
// verified and records it; refuse answers an address changed meanwhile.
func (g *Guard) verifyOwnEmail(ctx context.Context, p Principal, u auth.User, refuse func(string) error) error {
	if !u.EmailUnverified {
		return nil
	}
	switch err := g.stores.UserUpdates.VerifyEmail(ctx, u.Tenant, u.ID, u.Email); {
	case errors.Is(err, auth.ErrConflict):
		return refuse(ReasonEmailChanged)
	case err != nil:
		return g.userErr("verify email", err)
	}
	e := emailChangeEvent(p, u, u.Email, audit.Success, "")
	e.Meta["email_verified"] = "true"
	return g.record(ctx, e)
}

// emailChangeLink builds the link of an email-change email.
func (g *Guard) emailChangeLink(tenant, userID, email, token string) string {
	u := *g.recovery.base
	u.Path = u.Path + g.recovery.EmailChangePath
	u.RawQuery = url.Values{"tenant": {tenant}, "user": {userID}, "email": {email}, "token": {token}}.Encode()
	return u.String()
}

func emailChangeTxn(userID string) string { return "email:" + userID }

// The notice RequestEmailChange mails, instead of a link, to an address
// another user of the tenant has.
const (
	emailTakenSubject = "Someone asked to use your email address"
	emailTakenText    = "Someone signed in to another account asked to make this address the email address of that account. " +
		"It is already the address of your account, so nothing changed and no link was sent. " +
		"If it was you, sign in with this address instead. Otherwise you can ignore this email.\n"
)

// emailChangeHash binds a link's token to the address it was sent to.
func emailChangeHash(token, email string) mfa.Hash {
	return mfa.Hash(sha256.Sum256([]byte("guard email change\x00" + token + "\x00" + email)))
}

func defaultEmailChangeMail(link string, ttl time.Duration) (string, string) {
	return "Confirm your new email address", fmt.Sprintf("Someone asked to make this the email address of an account. "+
		"If it was you, open this link within %d minutes to confirm it:\n\n%s\n\n"+
		"If it was not you, ignore this email: nothing changes.\n", int(ttl.Minutes()), link)
}

// afterEmailChange ends the other sessions of u, whose email has just
// changed, voids the links mailed for the account (a reset link mailed to
// the old address, another email change), and records e.
func (g *Guard) afterEmailChange(ctx context.Context, p Principal, u auth.User, e audit.Event) error {
	ended, err := g.sessions.RevokeUser(ctx, u.Tenant, u.ID, p.Session)
	if err != nil {
		return unavailable("end sessions", err)
	}
	if err := g.voidLinks(ctx, u.Tenant, u.ID); err != nil {
		return err
	}
	e.Meta["sessions_ended"] = strconv.Itoa(g.endedLive(ctx, u.Tenant, ended))
	return g.record(ctx, e)
}

// voidLinks deletes the reset and email-change links outstanding for the
// user: a change of password or address by any means ends them, so a link
// sent before (perhaps asked for by someone who had the account for a
// while) cannot undo it.
func (g *Guard) voidLinks(ctx context.Context, tenant, userID string) error {
	if g.recovery.codes == nil {
		return nil
	}
	for _, txn := range []string{resetTxn(userID), emailChangeTxn(userID)} {
		if err := g.recovery.codes.DeleteCode(ctx, tenant, txn); err != nil {
			return unavailable("void links", err)
		}
	}
	return nil
}
