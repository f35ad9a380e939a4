package guard

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/rbac"
)

// The last active owner (with RBAC): a tenant that has an active user
// holding the owner role keeps one. Deactivating or deleting a user, and
// taking the owner role from a user, each refuse to take the last one away
// (rbac.ErrLastOwner), whether done one at a time (DeactivateUser,
// DeleteUser, RevokeRole) or by an access review (ApplyReview).
//
// A user's status lives in the user store and the roles in the policy
// store, so no one store step can check the rule and make the change
// together. Each of these changes is therefore written first and checked
// after: once the owner is deactivated (or has lost the role), the active
// owners are counted again from the stores, and if none is left the change
// is undone and refused. Of two changes racing to take away the last two
// owners, both cannot go ahead: each is written before it counts, so the
// later count sees the other's write and finds its owner gone, unless the
// other was undone meanwhile. One is refused, or both when both count
// before either undoes; an active owner is left either way. The count comes
// before the sessions end and the keys are revoked, which cannot be undone.
// Neither reports done a change that another's undo took back (see
// keepOwner and setDeactivated). Three callers can still interleave so
// that one reports its deactivation done while a second's undo, counted
// before a third's write, reactivates the user; an active owner is left.

// ownerStatus reports whether user id of tenant holds the owner role and,
// if so, whether they are an active user: taking them away may leave the
// tenant without an active owner. Both are false without RBAC.
func (g *Guard) ownerStatus(ctx context.Context, tenant, id string) (owner, active bool, err error) {
	if g.rbac == nil {
		return false, false, nil
	}
	rs, err := g.rbac.RolesOf(ctx, tenant, rbac.User(id))
	var ie *rbac.InputError
	switch {
	case errors.As(err, &ie):
		return false, false, nil // an ID no role can be granted to
	case err != nil:
		return false, false, rbacErr("roles", err)
	case !slices.Contains(rs, rbac.Owner):
		return false, false, nil
	}
	u, err := g.stores.Users.User(ctx, tenant, id)
	switch {
	case errors.Is(err, auth.ErrNotFound):
		return false, false, nil
	case err != nil:
		return false, false, unavailable("load user", err)
	}
	return true, u.Status == auth.StatusActive, nil
}

// activeOwner reports whether user id of tenant is an active user holding
// the owner role (see ownerStatus).
func (g *Guard) activeOwner(ctx context.Context, tenant, id string) (bool, error) {
	owner, active, err := g.ownerStatus(ctx, tenant, id)
	return owner && active, err
}

// hasActiveOwner reports whether tenant has an active user holding the
// owner role, as the stores hold them now.
func (g *Guard) hasActiveOwner(ctx context.Context, tenant string) (bool, error) {
	as, err := g.rbac.Assignments(ctx, tenant)
	if err != nil {
		return false, rbacErr("roles", err)
	}
	for _, a := range as {
		if a.Subject.Kind != rbac.KindUser || !slices.Contains(a.Roles, rbac.Owner) {
			continue
		}
		u, err := g.stores.Users.User(ctx, tenant, a.Subject.ID)
		switch {
		case errors.Is(err, auth.ErrNotFound):
			continue
		case err != nil:
			return false, unavailable("load user", err)
		}
		if u.Status == auth.StatusActive {
			return true, nil
		}
	}
	return false, nil
}

// keepOwner is called after a change that took an active owner away (see
// above): unless an active owner is left, it undoes the change, records
// action on target as failed (reason last_owner, with meta) and returns
// rbac.ErrLastOwner. When the owners cannot be counted the change is
// undone too, and the error returned: the rule could not be checked. An
// undo that fails is returned as ErrUnavailable, the change then stands.
// A nil undo undoes nothing: the change changed nothing.
//
// An owner left may be the very one this change took away, put back by
// another caller's undo meanwhile: two callers deactivating the same last
// owner both write, one counts none and reactivates, and the other then
// counts the owner it deactivated. So once the count passes, stands reads
// whether the change still holds; if it does not, the change is recorded
// as failed (reason conflict) and ErrConflict returned rather than
// reported done.
func (g *Guard) keepOwner(ctx context.Context, by Principal, tenant string, action audit.Action, target string,
	meta map[string]string, undo func(context.Context) error, stands func(context.Context) (bool, error)) error {
	ok, err := g.hasActiveOwner(ctx, tenant)
	if err == nil && ok {
		held, err := stands(ctx)
		switch {
		case err != nil:
			return err
		case held:
			return nil
		}
		return g.ownerRefused(ctx, by, tenant, action, target, "conflict", meta, ErrConflict)
	}
	if uerr := undoChange(ctx, undo); uerr != nil {
		return uerr
	}
	if err != nil {
		return err
	}
	return g.ownerRefused(ctx, by, tenant, action, target, "last_owner", meta, rbac.ErrLastOwner)
}

// ownerRefused records action on target as failed for reason, with meta,
// and returns refusal once that is on record.
func (g *Guard) ownerRefused(ctx context.Context, by Principal, tenant string, action audit.Action, target, reason string,
	meta map[string]string, refusal error) error {
	e := g.adminEvent(by, tenant, action, target)
	e.Outcome, e.Reason, e.Meta = audit.Failure, reason, meta
	if err := g.record(ctx, e); err != nil {
		return err
	}
	return refusal
}

// setDeactivated sets user id's status to deactivated if it is active,
// in one store step (auth.UserUpdater.Deactivate), the first step of a
// deactivation or a deletion (action, recorded as failed with meta when
// refused), and keeps the tenant's last active owner (keepOwner): only
// then may the sessions end and the keys be revoked. changed reports
// whether this call changed the status: false for a user found not
// active at the write (deactivated before, or by another caller
// meanwhile). An undo sets active again only a status this call changed:
// it never reactivates a user someone else deactivated.
//
// Once written, the tenant's policy is read again (keptBreakGlass): a
// user named the break-glass owner since the caller's keepBreakGlass has
// the change undone and refused (ErrBreakGlassUser, recorded as a failed
// action with reason break_glass_user), as does a failure to read the
// policy (the error returned).
//
// A deactivation checks again, once written, that by, with perms (as
// outranks returned them), outranks the user (outranksStill): a role by
// could not grant, given to the user since, undoes it and refuses it
// (ErrForbidden, reason escalation), as does a failure to read the roles
// (the error returned). A deletion checks when it takes the roles instead
// (see deleteUser).
//
// An owner found deactivated may be so only for a moment: another caller
// deactivating the same last owner has written and not yet counted, and
// will reactivate them. A deactivation must not report that as done, so it
// counts the owners too; with none active it is refused (ErrLastOwner) and
// undoes nothing, the user having been deactivated before. A deletion goes
// ahead: a deactivated owner of a tenant without an active one can always
// be deleted.
func (g *Guard) setDeactivated(ctx context.Context, by Principal, perms rbac.Perms, tenant, id string,
	action audit.Action, meta map[string]string) (changed bool, err error) {
	owner, active, err := g.ownerStatus(ctx, tenant, id)
	if err != nil {
		return false, err
	}
	if changed, err = g.stores.UserUpdates.Deactivate(ctx, tenant, id); err != nil {
		return false, g.userErr("deactivate user", err)
	}
	var undo func(context.Context) error // nil: this call changed nothing
	if changed {
		undo = func(ctx context.Context) error {
			return g.stores.UserUpdates.SetStatus(ctx, tenant, id, auth.StatusActive)
		}
	}
	// A SetPolicy naming the user the break-glass owner may have come
	// since the caller's keepBreakGlass: read again now the status is
	// written, before anything that cannot be undone.
	if err := g.keptBreakGlass(ctx, by, tenant, id, action, id, undo); err != nil {
		return changed, err
	}
	if action == audit.UserDeactivated {
		if err := g.outranksStill(ctx, by, perms, tenant, id, action, undo); err != nil {
			return changed, err
		}
	}
	if !owner || (!active && action == audit.UserDeleted) {
		return changed, nil
	}
	return changed, g.keepOwner(ctx, by, tenant, action, id, meta, undo, func(ctx context.Context) (bool, error) {
		u, err := g.stores.Users.User(ctx, tenant, id)
		switch {
		case errors.Is(err, auth.ErrNotFound):
			return true, nil // deleted meanwhile: not active either
		case err != nil:
			return false, unavailable("load user", err)
		}
		return u.Status != auth.StatusActive, nil
	})
}

// errPassedOver is setIdleDeactivated's answer for a user it leaves alone.
var errPassedOver = errors.New("guard: user passed over")

// setIdleDeactivated is setDeactivated for a dormant user (meta as
// there): it deactivates user id only if still active and not signed in
// after idleSince, in one store step (auth.UserUpdater.DeactivateIdle),
// so that a user who signs in, or is deactivated by another replica or an
// admin, meanwhile is passed over (errPassedOver) and deactivated once at
// most. An owner is never deactivated this way: one found before the
// write is passed over, and one found after it (the owner role granted
// meanwhile) has the deactivation undone, recorded as a failed
// user.deactivated with reason owner, and is passed over too; a failure
// to read the roles then undoes it as well and is returned. As
// setDeactivated, it checks again that by outranks the user (with perms),
// and that the user was not named the break-glass owner meanwhile
// (ErrBreakGlassUser, the deactivation undone; see keptBreakGlass).
func (g *Guard) setIdleDeactivated(ctx context.Context, by Principal, perms rbac.Perms, tenant, id string,
	idleSince time.Time, meta map[string]string) error {
	if owner, _, err := g.ownerStatus(ctx, tenant, id); err != nil || owner {
		return cmp.Or(err, errPassedOver)
	}
	err := g.stores.UserUpdates.DeactivateIdle(ctx, tenant, id, idleSince)
	switch {
	case errors.Is(err, auth.ErrConflict):
		return errPassedOver
	case err != nil:
		return g.userErr("deactivate user", err)
	}
	reactivate := func(ctx context.Context) error {
		return g.stores.UserUpdates.SetStatus(ctx, tenant, id, auth.StatusActive)
	}
	if err := g.keptBreakGlass(ctx, by, tenant, id, audit.UserDeactivated, id, reactivate); err != nil {
		return err
	}
	if err := g.outranksStill(ctx, by, perms, tenant, id, audit.UserDeactivated, reactivate); err != nil {
		return err
	}
	// Written first, checked after: a grant after this read came after
	// the deactivation too.
	owner, _, err := g.ownerStatus(ctx, tenant, id)
	if err == nil && !owner {
		return nil
	}
	if uerr := reactivate(context.WithoutCancel(ctx)); uerr != nil {
		return unavailable("undo", uerr)
	}
	if err != nil {
		return err
	}
	return g.ownerRefused(ctx, by, tenant, audit.UserDeactivated, id, "owner", meta, errPassedOver)
}
