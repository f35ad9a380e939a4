package guard

import (
	"context"
	"errors"
	"slices"

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

// activeOwner reports whether user id of tenant is an active user holding
// the owner role: taking them away may leave the tenant without one. It
// is false without RBAC.
func (g *Guard) activeOwner(ctx context.Context, tenant, id string) (bool, error) {
	if g.rbac == nil {
		return false, nil
	}
	rs, err := g.rbac.RolesOf(ctx, tenant, rbac.User(id))
	var ie *rbac.InputError
	switch {
	case errors.As(err, &ie):
		return false, nil // an ID no role can be granted to
	case err != nil:
		return false, rbacErr("roles", err)
	case !slices.Contains(rs, rbac.Owner):
		return false, nil
	}
	u, err := g.stores.Users.User(ctx, tenant, id)
	switch {
	case errors.Is(err, auth.ErrNotFound):
		return false, nil
	case err != nil:
		return false, unavailable("load user", err)
	}
	return u.Status == auth.StatusActive, nil
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
func (g *Guard) keepOwner(ctx context.Context, by Principal, tenant string, action audit.Action, target string,
	meta map[string]string, undo func(context.Context) error) error {
	ok, err := g.hasActiveOwner(ctx, tenant)
	if err == nil && ok {
		return nil
	}
	if uerr := undo(context.WithoutCancel(ctx)); uerr != nil {
		return unavailable("undo", uerr)
	}
	if err != nil {
		return err
	}
	e := g.adminEvent(by, tenant, action, target)
	e.Outcome, e.Reason, e.Meta = audit.Failure, "last_owner", meta
	if err := g.record(ctx, e); err != nil {
		return err
	}
	return rbac.ErrLastOwner
}

// setDeactivated sets user id's status to deactivated, the first step of
// a deactivation or a deletion (action, recorded as failed with meta when
// refused), and keeps the tenant's last active owner (keepOwner): only
// then may the sessions end and the keys be revoked.
func (g *Guard) setDeactivated(ctx context.Context, by Principal, tenant, id string, action audit.Action, meta map[string]string) error {
	owner, err := g.activeOwner(ctx, tenant, id)
	if err != nil {
		return err
	}
	if err := g.stores.UserUpdates.SetStatus(ctx, tenant, id, auth.StatusDeactivated); err != nil {
		return g.userErr("deactivate user", err)
	}
	if !owner {
		return nil
	}
	return g.keepOwner(ctx, by, tenant, action, id, meta, func(ctx context.Context) error {
		return g.stores.UserUpdates.SetStatus(ctx, tenant, id, auth.StatusActive)
	})
}
