package guard

import (
	"context"
	"errors"
	"strconv"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/sso"
)

// ReasonEmailTaken is the Reason of a refused user.email_changed event:
// another user of the tenant has the address.
const ReasonEmailTaken = "email_taken"

// ChangeEmail changes the signed-in user's email address, the one they
// sign in with, to newEmail in canonical form (see auth.CanonicalEmail).
//
// It needs a recent authentication: on an older session it returns
// ErrStepUpRequired (call Reauthenticate and retry). A malformed address
// is an *auth.InputError, and an address another user of the tenant has is
// ErrEmailTaken (recorded as a refused user.email_changed event); neither
// changes anything. The user's current address again changes nothing and
// succeeds.
//
// On success the user signs in with the new address only, every other
// session of the user ends, a password-reset link already mailed to the old
// address stops working, a user.email_changed event records the old and
// the new address, and, when Config.Recovery.Email is set, a notice goes to
// the old address. The login throttle state of the old address (keys are
// per email) stays where it is. If ending the sessions or recording the
// event fails, the old address is put back and the error returned.
//
// The new address is not verified: the user is trusted to own it. In a
// tenant with a single sign-on connection the IdP owns addresses, and
// ChangeEmail is refused with a *PolicyError.
func (g *Guard) ChangeEmail(ctx context.Context, p Principal, newEmail string) error {
	if p.Kind != KindUser {
		return ErrUnauthenticated
	}
	if err := g.requireRecentAuth(p); err != nil {
		return err
	}
	// Single sign-on finds users by email: in a tenant with an IdP, the
	// address belongs to the IdP, or a user could claim a colleague's
	// address and receive their sign-ins (and roles).
	if g.sso != nil {
		_, err := g.sso.Connection(ctx, p.Tenant)
		switch {
		case err == nil:
			return &PolicyError{Field: "email", Reason: "is managed by the tenant's identity provider"}
		case !errors.Is(err, sso.ErrNotFound):
			return ssoErr("sso connection", err)
		}
	}
	email, err := auth.CanonicalEmail(newEmail)
	if err != nil {
		return err
	}
	u, err := g.stores.Users.User(ctx, p.Tenant, p.UserID)
	if err != nil {
		return g.userErr("load user", err)
	}
	if email == u.Email {
		return nil
	}
	a := attempt{req: LoginRequest{Tenant: p.Tenant, IP: p.IP, UserAgent: p.UserAgent}, email: u.Email, user: &u}
	event := func(outcome audit.Outcome, reason string) audit.Event {
		e := a.event(audit.UserEmailChanged, outcome, reason)
		e.Target = u.ID
		e.Meta = map[string]string{"old_email": u.Email, "new_email": email}
		return e
	}
	switch err := g.stores.UserUpdates.SetEmail(ctx, p.Tenant, p.UserID, email); {
	case errors.Is(err, auth.ErrDuplicateEmail):
		if rerr := g.record(ctx, event(audit.Failure, ReasonEmailTaken)); rerr != nil {
			return rerr
		}
		return ErrEmailTaken
	case err != nil:
		return g.userErr("set email", err)
	}
	if err := g.afterEmailChange(ctx, p, u, event(audit.Success, "")); err != nil {
		// Not done, or not on record: put the old address back.
		_ = g.stores.UserUpdates.SetEmail(context.WithoutCancel(ctx), p.Tenant, p.UserID, u.Email)
		return err
	}
	g.notify(u, "The email address of your account was changed",
		"The email address you sign in with was just changed from "+u.Email+" to "+email+". "+
			"This address will no longer receive messages about the account. "+
			"If it was not you, contact your administrator now.")
	return nil
}

// afterEmailChange ends the other sessions of u, whose email has just
// changed, voids a reset link mailed to the old address, and records e.
func (g *Guard) afterEmailChange(ctx context.Context, p Principal, u auth.User, e audit.Event) error {
	ended, err := g.sessions.RevokeUser(ctx, u.Tenant, u.ID, p.Session)
	if err != nil {
		return unavailable("end sessions", err)
	}
	if g.recovery.codes != nil {
		if err := g.recovery.codes.DeleteCode(ctx, u.Tenant, resetTxn(u.ID)); err != nil {
			return unavailable("void reset link", err)
		}
	}
	e.Meta["sessions_ended"] = strconv.Itoa(len(ended))
	return g.record(ctx, e)
}
