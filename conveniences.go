package guard

import (
	"cmp"
	"context"
	"errors"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/rbac"
)

// Can reports whether p may take action on section in its own tenant,
// without recording a denial: for deciding what to show (a navigation
// link, a button). Enforce with Require or Authorize, which record denials.
// An error means the decision could not be made; treat it as "no". A
// session whose password must be changed (FlagPasswordExpired) gets false
// and ErrPasswordChangeRequired: it may do nothing its roles allow until
// the user changes it; so does an API key whose creator's password is
// marked compromised (ExpirePassword), until the creator changes it.
func (g *Guard) Can(ctx context.Context, p Principal, s rbac.Section, a rbac.Action) (bool, error) {
	switch {
	case p.Kind == KindSystem:
		return true, nil
	case p.Kind != KindUser && p.Kind != KindAPIKey:
		return false, nil
	}
	if expired, err := g.mustChangePassword(ctx, p); err != nil || expired {
		return false, cmp.Or(err, ErrPasswordChangeRequired)
	}
	if g.rbac == nil {
		return p.Kind == KindUser, nil
	}
	d, err := g.decide(ctx, p, p.Tenant, s, a)
	if err != nil {
		var ie *rbac.InputError
		if errors.As(err, &ie) {
			return false, nil
		}
		return false, unavailable("access decision", err)
	}
	return d.Allowed, nil
}

// ApprovalRules lists the actions of the tenant that need four-eyes
// approval. Any user or API key of the tenant may read them, as any may
// list its approval requests (Approvals): a user needs to know which of
// their actions wait for a second person, and Authorize tells them
// action by action anyway; so no permission is needed (settings:read,
// which the refusals name, included). The system reads any tenant's. A
// principal of another tenant is refused (ErrForbidden, recorded as
// access.denied with reason other_tenant), as is one Guard did not make
// (invalid_principal) and a session whose password must be changed
// (ErrPasswordChangeRequired, reason password_expired). A store failure
// is ErrUnavailable.
func (g *Guard) ApprovalRules(ctx context.Context, by Principal, tenant string) ([]rbac.Permission, error) {
	if err := g.needRBAC(); err != nil {
		return nil, err
	}
	switch {
	case by.Kind == KindSystem:
	case by.Kind != KindUser && by.Kind != KindAPIKey:
		return nil, g.refused(ctx, by, rbac.Settings, rbac.Read, reasonInvalidPrincipal)
	case by.Tenant != tenant:
		return nil, g.denied(ctx, by, rbac.Settings, rbac.Read, "other_tenant")
	default:
		if err := g.passwordGate(ctx, by, rbac.Settings, rbac.Read); err != nil {
			return nil, err
		}
	}
	ps, err := g.rbac.ApprovalRequired(ctx, tenant)
	return ps, rbacErr("approval rules", err)
}

// UserByEmail finds a user of the tenant by email (users:read).
func (g *Guard) UserByEmail(ctx context.Context, by Principal, tenant, email string) (User, error) {
	if err := g.may(ctx, by, tenant, rbac.Users, rbac.Read); err != nil {
		return User{}, err
	}
	e, err := auth.CanonicalEmail(email)
	if err != nil {
		return User{}, err
	}
	u, err := g.stores.Users.UserByEmail(ctx, tenant, e)
	if err != nil {
		return User{}, g.userErr("load user", err)
	}
	return userView(u), nil
}

// SendInvitation emails an active user a link to set their password: a
// single-use, hashed link like a password reset's, but living
// Recovery.InviteTTL (default 3 days), sent by an administrator
// (users:manage) instead of asked for by the user, so no CAPTCHA. A newer
// invitation or reset link voids the older one. Like a reset link it is
// bound to the address it was mailed to: it stops working if the user's
// email changes (ResetPassword takes it). A deactivation, or an
// ExpirePassword, of the user under way while it is made voids it as it
// voids one made before: it may still be mailed, but does not work.
//
// A caller who could not grant every role the user holds is refused
// (ErrForbidden, recorded as a failed user.invited with reason
// escalation, nothing sent: the link sets the password without the
// current one; see "Acting on a more privileged user"). A deactivated
// user gives an *InputError, an unknown one ErrUserNotFound, a store
// failure ErrUnavailable (an invitation stored but not recorded is
// deleted again). The invitation is recorded (user.invited) before it is
// mailed; a mail failure is ErrUnavailable, deletes the link and is
// recorded as a failed user.invited with reason send_failed.
//
// Invitations to one user are limited to Recovery.Limits.PerAccount in
// any hour (default 5), and invitations to one address (in canonical
// form) to Recovery.Limits.PerDestination (default 5), from every tenant,
// whatever user holds it; failed sends are included, so that an
// administrator's session or key in a loop, even one that deletes the
// user and creates them again, cannot flood an inbox: one more is refused
// with ErrTooManyAttempts, recorded as a failed user.invited with reason
// rate_limited, nothing sent and the last link still valid. The counts
// are the invitations' own: the requests of ForgotPassword, which anyone
// can make for the address, cannot hold an invitation back. The
// address's count, like the links' (see LinkLimits), holds across
// tenants (one inbox): an administrator refused after fewer than
// PerDestination invitations to the address from their tenant learns
// that it was invited in another tenant that hour, and an administrator
// who invites an address PerDestination times holds back its invitations
// from other tenants for the hour; either costs its owner the
// invitations, which they see. The owner's own ForgotPassword still
// works then.
func (g *Guard) SendInvitation(ctx context.Context, by Principal, tenant, userID string) error {
	if g.recovery.Email == nil {
		return &PolicyError{Field: "Recovery.Email", Reason: "is not configured"}
	}
	u, _, err := g.loadTarget(ctx, by, tenant, userID, audit.UserInvited)
	if err != nil {
		return err
	}
	if u.Status != auth.StatusActive {
		return &InputError{Field: "user", Reason: "is deactivated"}
	}
	if err := g.inviteLimited(ctx, by, u); err != nil {
		return err
	}
	token, h, err := newResetToken(g.rand)
	if err != nil {
		return err
	}
	if err := g.putResetCode(ctx, u, h, g.recovery.InviteTTL); err != nil {
		return err
	}
	if err := g.record(ctx, g.adminEvent(by, tenant, audit.UserInvited, u.ID)); err != nil {
		_ = g.recovery.codes.DeleteCode(context.WithoutCancel(ctx), u.Tenant, resetTxn(u.ID))
		return err
	}
	subject, text := g.recovery.ComposeInvite(g.resetLink(u.Tenant, u.ID, token), g.recovery.InviteTTL)
	if err := g.recovery.Email.SendEmail(ctx, mfa.Message{To: u.Email, Subject: subject, Text: text}); err != nil {
		// No invitation went out: none stays usable, and the record says
		// so after the user.invited it follows.
		_ = g.recovery.codes.DeleteCode(context.WithoutCancel(ctx), u.Tenant, resetTxn(u.ID))
		e := g.adminEvent(by, tenant, audit.UserInvited, u.ID)
		e.Outcome, e.Reason = audit.Failure, "send_failed"
		_ = g.record(context.WithoutCancel(ctx), e)
		return unavailable("send invitation", err)
	}
	return nil
}

// inviteLimited counts an invitation about to be made for u by by, and
// refuses it (recorded, ErrTooManyAttempts) when it is over the hour's
// limit for the user or for u's address (see SendInvitation). The
// address is counted only for an invitation the user's limit lets
// through, so that a loop refused by it in one tenant does not take the
// address's places from another. A store failure is ErrUnavailable.
func (g *Guard) inviteLimited(ctx context.Context, by Principal, u auth.User) error {
	over, err := g.overLimits(ctx, "invitation send limit", true,
		sendLimit{linkRateKey("invite", u.Tenant, u.ID), g.recovery.Limits.PerAccount},
		// Across tenants, as the links' own limit of an address: a user
		// deleted and created again, here or in another tenant, is a
		// new user but the same inbox.
		sendLimit{linkRateKey("invite-to", canonicalAddress(u.Email)), g.recovery.Limits.PerDestination})
	if err != nil {
		return err
	}
	if !over {
		return nil
	}
	e := g.adminEvent(by, u.Tenant, audit.UserInvited, u.ID)
	e.Outcome, e.Reason = audit.Failure, ReasonRateLimited
	if err := g.record(ctx, e); err != nil {
		return err
	}
	return ErrTooManyAttempts
}
