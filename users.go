package guard

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/session"
)

// User is a user as the facade shows it: no password hashes.
type User struct {
	ID     string
	Tenant string
	Email  string
	// EmailUnverified reports that the user set Email with ChangeEmail
	// and has not proved they receive mail there (a link mailed to it:
	// ConfirmEmailChange, ResetPassword). Single sign-on never matches the
	// user by it (see CompleteSSO). Addresses given by an administrator or
	// an IdP are verified.
	EmailUnverified   bool
	Name              string
	Status            auth.Status
	HasPassword       bool
	PasswordChangedAt time.Time
	// PasswordExpired reports that an administrator marked the password
	// compromised (ExpirePassword): it must be changed at the next sign-in.
	PasswordExpired bool
	CreatedAt       time.Time
	LastLoginAt     time.Time
	// LastSSOAt is the user's last sign-in through single sign-on (zero
	// if never).
	LastSSOAt time.Time
	// ReactivatedAt is when the user was last reactivated (ReactivateUser;
	// zero if never): it counts as activity for the dormancy rule (see
	// UserAccess.LastActive).
	ReactivatedAt time.Time
}

func userView(u auth.User) User {
	return User{ID: u.ID, Tenant: u.Tenant, Email: u.Email, EmailUnverified: u.EmailUnverified, Name: u.Name, Status: u.Status,
		HasPassword: u.PasswordHash != "", PasswordChangedAt: u.PasswordChangedAt, PasswordExpired: u.PasswordExpired,
		CreatedAt: u.CreatedAt, LastLoginAt: u.LastLoginAt, LastSSOAt: u.LastSSOAt, ReactivatedAt: u.ReactivatedAt}
}

// NewUser describes a user to create.
type NewUser struct {
	Tenant string
	Email  string
	Name   string
	// Password is checked against the tenant's password policy; empty
	// creates a user without a password (who signs in another way, or is
	// given one later).
	Password string
	// Roles are granted to the new user (with RBAC): the creator must
	// hold every permission of each, and a user creating needs a recent
	// authentication (see GrantRole). The first user of a tenant is
	// created by the system with the owner role.
	Roles []string
}

// CreateUser creates an active user in a tenant. The password, if any, must
// pass the tenant's policy: a refusal is an *auth.PolicyError naming the
// rule (and a password.rejected audit event). If a role of NewUser.Roles
// cannot be granted, the creation is rolled back: the user is deleted and
// every role granted so far taken back, the owner role included.
//
// A user creating a user with roles needs a recent authentication, as
// GrantRole does: an older session gets ErrStepUpRequired, checked after
// the users:manage permission (a refusal of which is ErrForbidden,
// recorded as access.denied) and before anything is created or recorded.
// An API key needs no step-up; nor does a creation without roles.
func (g *Guard) CreateUser(ctx context.Context, by Principal, nu NewUser) (User, error) {
	if err := g.may(ctx, by, nu.Tenant, rbac.Users, rbac.Manage); err != nil {
		return User{}, err
	}
	if len(nu.Roles) > 0 {
		// Roles granted in the same call need what GrantRole needs.
		if err := g.requireRecentAuthOrKey(ctx, by); err != nil {
			return User{}, err
		}
	}
	pol, err := g.EffectivePolicy(ctx, nu.Tenant)
	if err != nil {
		return User{}, err
	}
	email, err := auth.CanonicalEmail(nu.Email)
	if err != nil {
		return User{}, err
	}
	if err := auth.CheckName(nu.Name); err != nil {
		return User{}, err
	}
	if err := g.mayGrantAll(ctx, by, nu.Tenant, audit.UserCreated, clip(email, 320), nu.Roles); err != nil {
		return User{}, err
	}
	now := g.now().UTC().Truncate(time.Microsecond)
	u := auth.User{Tenant: nu.Tenant, Email: email, Name: nu.Name, Status: auth.StatusActive, CreatedAt: now}
	if u.ID, err = newID(g.rand); err != nil {
		return User{}, err
	}
	if nu.Password != "" {
		if err := g.checkPassword(ctx, by, pol, u, nu.Password); err != nil {
			return User{}, err
		}
		if u.PasswordHash, err = g.hasher.Hash(ctx, nu.Password); err != nil {
			return User{}, err
		}
		u.PasswordChangedAt = now
	}
	if err := g.stores.Users.CreateUser(ctx, u); err != nil {
		if errors.Is(err, auth.ErrDuplicateEmail) {
			return User{}, ErrEmailTaken
		}
		return User{}, unavailable("create user", err)
	}
	if err := g.record(ctx, g.adminEvent(by, nu.Tenant, audit.UserCreated, u.ID)); err != nil {
		// The user exists but its creation is not on record: undo it.
		_ = g.stores.Users.DeleteUser(context.WithoutCancel(ctx), u.Tenant, u.ID)
		return User{}, err
	}
	for _, role := range nu.Roles {
		if err := g.GrantRole(ctx, by, nu.Tenant, "user:"+u.ID, role); err != nil {
			// The creator's roles changed since mayGrantAll, or the store
			// failed: the user is not created.
			_ = g.deleteUser(context.WithoutCancel(ctx), System("rollback"), u.Tenant, u.ID, false)
			return User{}, err
		}
	}
	return userView(u), nil
}

// mayGrantAll refuses, before a user or an API key is created, roles the
// creator may not give (an unknown role, or one with a permission the
// creator lacks: see GrantRole), so that a refused creation leaves nothing
// behind, not even for a moment; an escalation is recorded as a failed
// action (user.created naming the address, apikey.created naming the
// key's name) with the role. Roles asked of a Guard without a role store
// are ErrRolesNotConfigured, unrecorded, as GrantRole's would be.
func (g *Guard) mayGrantAll(ctx context.Context, by Principal, tenant string, action audit.Action, target string, roles []string) error {
	if len(roles) == 0 {
		return nil
	}
	if g.rbac == nil {
		return ErrRolesNotConfigured
	}
	perms, err := g.permsOf(ctx, by, tenant)
	if err != nil {
		return err
	}
	defined, err := g.rbac.Roles(ctx, tenant)
	if err != nil {
		return rbacErr("load roles", err)
	}
	for _, role := range roles {
		i := slices.IndexFunc(defined, func(r rbac.RoleInfo) bool { return r.Name == role })
		if i < 0 {
			return rbac.ErrRoleNotFound
		}
		if !holdsAll(perms, defined[i]) {
			return g.escalation(ctx, by, tenant, action, target, role)
		}
	}
	return nil
}

// checkPassword applies the tenant's password policy to a new password of
// u (including history when the policy keeps one) and records a refusal.
// The current password is refused whatever the history setting
// (auth.RuleReused): a change to the same password would clear a mark of
// ExpirePassword, or restart PasswordMaxAge, and leave the password as it
// was.
func (g *Guard) checkPassword(ctx context.Context, by Principal, pol Policy, u auth.User, password string) error {
	if len(password) > MaxPasswordBytes {
		return auth.ErrPasswordTooLong
	}
	t, err := g.policies.get(ctx, u.Tenant)
	if err != nil {
		return err
	}
	p := auth.Policy{MinLength: pol.PasswordMinLength, MaxLength: g.maxLen}
	err = p.Check(password, auth.Context{Email: u.Email, Name: u.Name, Service: []string{g.product, t.Name, t.ID}})
	if err == nil && u.PasswordHash != "" {
		hist := append([]string{u.PasswordHash}, u.PasswordHistory...)
		hist = hist[:min(len(hist), max(pol.PasswordHistory, 1))]
		reused, herr := g.hasher.MatchesAny(ctx, password, hist)
		if herr != nil {
			return herr
		}
		if reused {
			err = &auth.PolicyError{Rule: auth.RuleReused}
		}
	}
	if err == nil && g.breach != nil {
		// Last: the only check that leaves the process (5 hex digits of
		// the password's SHA-1). Unable to check, the change is refused.
		breached, berr := g.breach.Breached(ctx, password)
		if berr != nil {
			return unavailable("breach check", berr)
		}
		if breached {
			err = &auth.PolicyError{Rule: auth.RuleBreached}
		}
	}
	var pe *auth.PolicyError
	if errors.As(err, &pe) {
		e := g.adminEvent(by, u.Tenant, audit.PasswordRejected, u.ID)
		e.Outcome, e.Reason = audit.Failure, string(pe.Rule)
		if rerr := g.record(ctx, e); rerr != nil {
			return rerr
		}
	}
	return err
}

// User returns one user of a tenant.
func (g *Guard) User(ctx context.Context, by Principal, tenant, id string) (User, error) {
	if by.Kind == KindUser && by.Tenant == tenant && by.UserID == id {
		u, err := g.stores.Users.User(ctx, tenant, id)
		if err != nil {
			return User{}, g.userErr("load user", err)
		}
		return userView(u), nil
	}
	u, err := g.loadUser(ctx, by, tenant, id, rbac.Read)
	if err != nil {
		return User{}, err
	}
	return userView(u), nil
}

// ListUsers returns at most limit (1 to 1000) users of a tenant ordered by
// id, after the id given in after. An after no user ID can be (invalid
// UTF-8, a NUL byte, longer than auth.MaxIDBytes) is an *InputError.
func (g *Guard) ListUsers(ctx context.Context, by Principal, tenant, after string, limit int) ([]User, error) {
	if err := g.may(ctx, by, tenant, rbac.Users, rbac.Read); err != nil {
		return nil, err
	}
	if err := checkCursor("after", after); err != nil {
		return nil, err
	}
	limit = min(max(limit, 1), 1000)
	us, err := g.stores.Users.ListUsers(ctx, tenant, after, limit)
	if err != nil {
		return nil, unavailable("list users", err)
	}
	out := make([]User, len(us))
	for i, u := range us {
		out[i] = userView(u)
	}
	return out, nil
}

// DeactivateUser deactivates a user, ends every one of their sessions,
// voids their mailed links (reset, invitation, email change: a
// reactivation does not bring them back, even of a link being made as the
// deactivation runs), ends their pending sign-ins (one begun before is
// refused at its next step, ErrLoginExpired with mfa.failed reason
// deactivated, even once the user is reactivated) and revokes every API
// key they created, at once: the next request with any of them fails. Each key is recorded as apikey.revoked (Meta reason
// creator_deactivated, created_by); the four-eyes requests the user filed
// that are still pending are withdrawn (rejected by the system, each
// recorded as approval.rejected, Meta reason requester_deactivated,
// permission, requester), so no approver is asked to approve the action
// of someone removed and a reactivation brings none back; then the
// deactivation is recorded as user.deactivated (Meta sessions_ended,
// api_keys_revoked). A user cannot
// deactivate themselves (ErrForbidden, recorded as access.denied with
// reason own_account), nor anyone a user holding a role they could not
// grant (ErrForbidden, recorded as a failed user.deactivated with reason
// escalation, nothing changed: see "Acting on a more privileged user");
// the break-glass owner of a tenant that requires SSO cannot be
// deactivated (ErrBreakGlassUser, recorded as a failed user.deactivated
// with reason break_glass_user; also when SetPolicy names them while the
// deactivation is written: the policy is read again once the status is,
// and the status set back, nothing else done; if that fails,
// ErrUnavailable with the user deactivated), nor can the tenant's last active owner
// (rbac.ErrLastOwner, recorded as a failed user.deactivated with reason
// last_owner; nothing else changes): make another user an owner first.
// The last rule holds under concurrency: of two owners deactivated at
// once, each by the other, at least one stays active (one call is
// refused, or both when they overlap closely). A call whose
// deactivation another caller undid meanwhile (both deactivating the last
// owner, or a ReactivateUser landing just after the status was written)
// is refused with ErrConflict (recorded as a failed user.deactivated with
// reason conflict; the sessions ended, links voided, keys revoked and
// requests withdrawn meanwhile stay so), never reported done: the
// caller and the audit log never say deactivated of a user who is
// active. The rule on more privileged users is checked again
// once the status is written: a role the caller could not grant, given to
// the user meanwhile (an owner promoting them at that moment), undoes the
// deactivation, which is refused and recorded as above (reason escalation,
// Meta role), nothing else done; if the undo fails, ErrUnavailable is
// returned and the user stays deactivated, with nothing else done. The
// status is written only if the user is active, and the undo sets active
// again only a status this call changed. A user another caller
// deactivated between this call's read and its write is left as that
// call leaves them: this call finishes the job (sessions, links, keys,
// requests) and returns nil, recording no user.deactivated of its own.
//
// A store failure gives ErrUnavailable, and what was done stays done: the
// user stays deactivated (so cannot sign in), with the sessions ended,
// the keys revoked and the requests withdrawn so far. Calling
// DeactivateUser again finishes the job; so does Maintain, at its next
// run, for sessions and keys alike.
// A failure while the owners are counted, or while the roles are read
// again, undoes the deactivation instead.
// A deactivation moves toward the safer state, so it stands even when it
// cannot be recorded: a failure to record leaves the user deactivated, the
// sessions ended and the keys revoked, and returns ErrUnavailable.
func (g *Guard) DeactivateUser(ctx context.Context, by Principal, tenant, id string) error {
	if by.Kind == KindUser && by.UserID == id {
		return g.refused(ctx, by, rbac.Users, rbac.Manage, reasonOwnAccount)
	}
	u, perms, err := g.loadTarget(ctx, by, tenant, id, audit.UserDeactivated)
	if err != nil {
		return err
	}
	if err := g.keepBreakGlass(ctx, by, tenant, id, audit.UserDeactivated, id); err != nil {
		return err
	}
	_, _, _, err = g.deactivate(ctx, by, perms, tenant, id, u.Status, "", time.Time{})
	return err
}

// ReactivateUser makes a deactivated user active again. The API keys
// revoked when the user was deactivated stay revoked: a revoked key never
// comes back, and the user creates new ones. Nor do the user's four-eyes
// requests or approvals from before the reactivation stand again
// (ConsumeApproval refuses them: rbac.ErrWithdrawn for a request the user
// filed, rbac.ErrApproverRevoked for one the user approved). It needs
// users:manage, and
// a caller who could not grant every role the user holds is refused
// (ErrForbidden, recorded as a failed user.reactivated with reason
// escalation: an admin does not bring back an owner the owners
// deactivated; see "Acting on a more privileged user"), nothing changed.
// The rule is checked again once the status is written: a role the caller
// could not grant, given to the user meanwhile, sets the user's previous
// status back and refuses the call the same way; so does a failure to read
// the roles then (ErrUnavailable). If setting it back fails, the user
// stays active, unrecorded, and ErrUnavailable is returned.
// An unknown user gives ErrUserNotFound, a store failure ErrUnavailable.
// A reactivation that cannot be recorded in the audit log does not stand:
// the user's previous status is set back and ErrUnavailable returned (if
// that fails too, the user stays active, unrecorded, and ErrUnavailable is
// returned).
//
// A reactivation that does not stand leaves no way in: a sign-in that
// landed while the status said active (between the write and the undo)
// has its session ended when the deactivated status is set back, as
// DeleteUser ends the session of a sign-in that raced it. If ending them
// fails, ErrUnavailable is returned with the user deactivated, and such a
// session lasts until Maintain (at its next run) or DeactivateUser ends
// the sessions of the deactivated user.
//
// A reactivation counts as activity for the dormancy rule
// (Policy.AutoDeactivateDormant): its time is kept (User.ReactivatedAt),
// and a reactivated user is dormant only DormantAfter after it, however
// long ago they last signed in, so that DeactivateDormant (Maintain) does
// not deactivate again a user an administrator has just brought back. The
// time is written before the status, so no run finds the user active and
// dormant in between; a reactivation that does not stand puts the
// previous time back with the previous status.
//
// Reactivating a user who is active changes nothing (neither the status
// nor the reactivation time: their pending sign-ins, requests and
// approvals stand); it is checked and recorded as above and returns nil.
// The user is read again right before that record, and one deactivated
// since the first read is reactivated as any other. A deactivation that
// lands between that second read and the record leaves the user
// deactivated though ReactivateUser returns nil, as one landing between
// a reactivation's status write and its record does.
func (g *Guard) ReactivateUser(ctx context.Context, by Principal, tenant, id string) error {
	u, perms, err := g.loadTarget(ctx, by, tenant, id, audit.UserReactivated)
	if err != nil {
		return err
	}
	if u.Status == auth.StatusActive {
		// Nothing to bring back: nothing is written, so no reactivation
		// time moves (it would end the user's pending sign-ins and
		// withdraw their requests and approvals as if a deactivation had
		// come and gone). The call is checked and recorded as before.
		if err := g.outranksStill(ctx, by, perms, tenant, id, audit.UserReactivated, nil); err != nil {
			return err
		}
		// The user store has no compare-and-set for the status: the user
		// is read again right before the record, and one deactivated since
		// loadTarget's read is reactivated as any other.
		cur, err := g.stores.Users.User(ctx, tenant, id)
		if err != nil {
			return g.userErr("reactivate user", err)
		}
		if cur.Status == auth.StatusActive {
			return g.record(ctx, g.adminEvent(by, tenant, audit.UserReactivated, id))
		}
		u = cur
	}
	now := g.now().UTC().Truncate(time.Microsecond)
	if err := g.stores.UserUpdates.SetReactivatedAt(ctx, tenant, id, now); err != nil {
		return g.userErr("reactivate user", err)
	}
	// undo sets the user back as loadTarget found them; a deactivated
	// user's sessions opened meanwhile end with it.
	undo := func(ctx context.Context) error {
		if err := g.stores.UserUpdates.SetStatus(ctx, tenant, id, u.Status); err != nil {
			return err
		}
		if u.Status != auth.StatusActive {
			if _, err := g.sessions.RevokeUser(ctx, tenant, id, session.Hash{}); err != nil {
				return err
			}
		}
		return g.stores.UserUpdates.SetReactivatedAt(ctx, tenant, id, u.ReactivatedAt)
	}
	if err := g.stores.UserUpdates.SetStatus(ctx, tenant, id, auth.StatusActive); err != nil {
		_ = g.stores.UserUpdates.SetReactivatedAt(context.WithoutCancel(ctx), tenant, id, u.ReactivatedAt)
		return g.userErr("reactivate user", err)
	}
	// A role granted to the user since loadTarget is checked now.
	if err := g.outranksStill(ctx, by, perms, tenant, id, audit.UserReactivated, undo); err != nil {
		return err
	}
	if err := g.record(ctx, g.adminEvent(by, tenant, audit.UserReactivated, id)); err != nil {
		if uerr := undoChange(ctx, undo); uerr != nil {
			return uerr
		}
		return err
	}
	return nil
}

// DeleteUser ends a user's sessions, revokes every API key they created
// (each recorded as apikey.revoked, Meta reason creator_deleted),
// withdraws the four-eyes requests they filed that are still pending (as
// DeactivateUser does, Meta reason requester_deleted), removes
// the user and clears their throttle state; user.deleted has Meta email
// and api_keys_revoked. A user cannot delete themselves (ErrForbidden,
// recorded as access.denied with reason own_account), nor anyone a user
// holding a role they could not grant (ErrForbidden, recorded as a
// failed user.deleted with reason escalation, nothing changed: an admin
// cannot delete an owner; see "Acting on a more privileged user"); the
// roles are taken with the deleter's permissions, so a role of that kind
// granted to the user meanwhile stops the deletion there (ErrForbidden,
// recorded the same way), the user deactivated, sessions ended and keys
// revoked, for someone who may to finish; the role recorded is read again
// then (when it cannot be, or is gone again, the refusal is recorded
// without it). The break-glass owner of a
// tenant that requires SSO cannot be deleted (ErrBreakGlassUser), also
// when SetPolicy names them meanwhile: the policy is read again once the
// user is deactivated, before anything that cannot be undone, as for
// DeactivateUser. A store
// failure gives ErrUnavailable and leaves the user deactivated, with what
// was done so far (sessions ended, keys revoked, requests withdrawn, roles
// taken, in that order): calling DeleteUser again finishes the job. Once the user's
// record is removed, the deletion is recorded before the rest is cleared
// (the sessions of a sign-in that raced with it, a role granted while
// the roles were taken, the second factors, the login throttle state of
// the address): a failure there returns ErrUnavailable with the user
// deleted and on record, and that rest left behind. The tenant's last active owner cannot be deleted
// (rbac.ErrLastOwner, recorded as a failed user.deleted with reason
// last_owner): make another user an owner first. As for DeactivateUser,
// this holds when the owners are deactivated or deleted concurrently.
// A deletion revokes, so it stands even when it cannot be recorded: a
// failure to record leaves the user deleted, their sessions ended, keys
// revoked and roles taken (the rest not cleared), and returns
// ErrUnavailable.
func (g *Guard) DeleteUser(ctx context.Context, by Principal, tenant, id string) error {
	return g.deleteUser(ctx, by, tenant, id, true)
}

// deleteUser is DeleteUser; keepOwner false lets the last active owner be
// deleted (the rollback of the creation of a user who was given the owner
// role) and takes every role of the user, the tenant's last owner grant
// included (rbac.RemoveGrants), so that no grant outlives the rollback.
func (g *Guard) deleteUser(ctx context.Context, by Principal, tenant, id string, keepOwner bool) error {
	if by.Kind == KindUser && by.UserID == id {
		return g.refused(ctx, by, rbac.Users, rbac.Manage, reasonOwnAccount)
	}
	u, perms, err := g.loadTarget(ctx, by, tenant, id, audit.UserDeleted)
	if err != nil {
		return err
	}
	if err := g.keepBreakGlass(ctx, by, tenant, id, audit.UserDeleted, id); err != nil {
		return err
	}
	// Deactivate first so a login racing the deletion cannot keep a
	// session, and, unless the last active owner may go, check that one is
	// left before anything that cannot be undone.
	if keepOwner {
		if _, err := g.setDeactivated(ctx, by, perms, tenant, id, audit.UserDeleted, nil); err != nil {
			return err
		}
	} else if err := g.stores.UserUpdates.SetStatus(ctx, tenant, id, auth.StatusDeactivated); err != nil {
		return g.userErr("delete user", err)
	}
	if _, err := g.sessions.RevokeUser(ctx, tenant, id, [32]byte{}); err != nil {
		return unavailable("end sessions", err)
	}
	if err := g.voidLinks(ctx, tenant, id); err != nil {
		return err
	}
	keys, err := g.revokeKeysOf(ctx, by, tenant, id, "creator_deleted")
	if err != nil {
		return err
	}
	if _, err := g.rejectRequestsOf(ctx, by, tenant, id, reasonRequesterDeleted); err != nil {
		return err
	}
	// The roles go while the user can still be found: a failure leaves
	// the user deactivated, without them, for a call again to finish. They
	// go with the deleter's permissions: a role the deleter could not
	// grant, given to the user since loadTarget, stops the deletion. The
	// rollback of a creation (keepOwner false) takes every role, the
	// tenant's last owner grant included: the user was never meant to
	// be there.
	if g.rbac != nil {
		if !keepOwner {
			if err := g.rbac.RemoveGrants(ctx, tenant, rbac.User(id)); err != nil {
				return rbacErr("revoke roles", err)
			}
		} else if err := g.rbac.RevokeAll(ctx, perms, tenant, rbac.User(id)); err != nil && !errors.Is(err, rbac.ErrLastOwner) {
			return g.deleteRefused(ctx, by, tenant, id, perms, err)
		}
	}
	if err := g.stores.Users.DeleteUser(ctx, tenant, id); err != nil {
		return g.userErr("delete user", err)
	}
	// No call again can find the user now: on record before the rest.
	e := g.adminEvent(by, tenant, audit.UserDeleted, id)
	e.Meta = map[string]string{"email": u.Email, "api_keys_revoked": strconv.Itoa(keys)}
	if err := g.record(ctx, e); err != nil {
		return err
	}
	// Once more now the record is gone: a reactivation between the two
	// steps could have let a sign-in through, whose session would outlive
	// its user (a sign-in now finds no user, and one under way drops its
	// session when RecordLogin finds none).
	if _, err := g.sessions.RevokeUser(ctx, tenant, id, [32]byte{}); err != nil {
		return unavailable("end sessions", err)
	}
	// And the roles: a grant that found the user there (GrantRole looks
	// once the grant is written) came before this, one after finds the
	// user gone and takes itself back. The user is gone: whatever the
	// role, it goes (the last owner's role aside, kept as above, unless
	// this is the rollback of a creation).
	if g.rbac != nil {
		var err error
		if keepOwner {
			err = g.rbac.RevokeAll(ctx, g.rbac.AllPerms(), tenant, rbac.User(id))
		} else {
			err = g.rbac.RemoveGrants(ctx, tenant, rbac.User(id))
		}
		if err != nil && !errors.Is(err, rbac.ErrLastOwner) {
			return rbacErr("revoke roles", err)
		}
	}
	if g.mfa != nil {
		if err := g.mfa.DeleteUser(ctx, tenant, id); err != nil {
			return unavailable("delete factors", err)
		}
	}
	if err := g.stores.Throttle.Reset(ctx, accountKey(tenant, u.ID, u.Email)); err != nil {
		return unavailable("throttle", err)
	}
	return nil
}

// deleteRefused records and returns err, the refusal of RevokeAll with
// perms to take user id's roles in a deletion. An escalation (a role
// perms does not cover, granted since loadTarget) is recorded as the
// refusal up front is (escalation: reason escalation, Meta role naming
// the role, read again now; without it when it is gone again or the roles
// cannot be read); other errors as policyRefused records them.
func (g *Guard) deleteRefused(ctx context.Context, by Principal, tenant, id string, perms rbac.Perms, err error) error {
	if errors.Is(err, rbac.ErrEscalation) {
		if role, rerr := g.roleBeyond(ctx, perms, tenant, rbac.User(id)); rerr == nil && role != "" {
			return g.escalation(ctx, by, tenant, audit.UserDeleted, id, role)
		}
		// The role is gone again, or the roles cannot be read: refused
		// all the same, without a role to name.
	}
	return g.policyRefused(ctx, by, tenant, audit.UserDeleted, id, rbacErr("revoke roles", err))
}

// UnlockUser lifts a user's login lock (temporary or permanent) and clears
// their failure count. It needs users:manage, and a caller who could not
// grant every role the user holds is refused (ErrForbidden, recorded as a
// failed user.unlocked with reason escalation: the lock guards the user's
// password against guessing; see "Acting on a more privileged user"),
// the lock kept. The failures cleared cannot be put back, so the unlock
// is recorded (user.unlocked) before it is done: if it cannot be
// recorded, ErrUnavailable is returned and the lock stays. A store failure
// after the record returns ErrUnavailable with the unlock on record but
// not done (the lock stays): call UnlockUser again. A user cannot unlock
// their own account, with a session or with an API key they created
// (ErrForbidden, recorded as access.denied with reason own_account, the
// lock kept): the lock bounds the guesses of their password, and whoever
// holds their session or key could otherwise guess it (through Login,
// ChangePassword or a step-up), unlock, and guess on.
func (g *Guard) UnlockUser(ctx context.Context, by Principal, tenant, id string) error {
	if isSelf(by, tenant, id) {
		return g.refused(ctx, by, rbac.Users, rbac.Manage, reasonOwnAccount)
	}
	if by.Kind == KindAPIKey && by.Tenant == tenant {
		// A key its target created is the target's own hand.
		creator, _, found, err := g.keyCreatorOf(ctx, by)
		if err != nil {
			return err
		}
		if found && creator == id {
			return g.refused(ctx, by, rbac.Users, rbac.Manage, reasonOwnAccount)
		}
	}
	u, _, err := g.loadTarget(ctx, by, tenant, id, audit.UserUnlocked)
	if err != nil {
		return err
	}
	if err := g.record(ctx, g.adminEvent(by, tenant, audit.UserUnlocked, id)); err != nil {
		return err
	}
	if err := g.stores.Throttle.Reset(ctx, accountKey(tenant, u.ID, u.Email)); err != nil {
		return unavailable("throttle", err)
	}
	return nil
}

// ExpirePassword marks a user's password as compromised: the user's next
// password sign-in succeeds but reports LoginResult.PasswordExpired, and
// its session carries FlagPasswordExpired, which every permission check
// refuses (ErrPasswordChangeRequired; Require answers 403 with
// "Guard-Reason: password_expired") until the user changes the password
// (ChangePasswordAndRotate, ChangePassword) or resets it (ResetPassword):
// the host sends them to do so. Every session of the user ends at once, so the change
// is asked for now, not at the user's next voluntary sign-in; outstanding
// reset and email-change links are void; and the user, if active, is
// mailed a notice (a new reset link can be asked for). The API keys the
// user created are suspended with the password, not revoked: each still
// authenticates, and every permission check refuses it as it refuses the
// user's sessions (ErrPasswordChangeRequired, recorded as access.denied
// with reason password_expired, the key as actor; Require answers 403),
// until the user chooses a new password, when they work again (see
// keyBound: a key never does more than its creator may do now). Revoke
// them (RevokeAPIKey) if they may have been made with the stolen password.
// The four-eyes approvals the user gave are refused too (ConsumeApproval:
// rbac.ErrApproverRevoked), and for good: a new password, whoever chooses
// it, withdraws the approvals given before it. Passwords have no maximum age by
// default (NIST SP 800-63B): this is how an administrator asks for a
// change when a password is known or suspected to be compromised.
//
// It needs users:manage in the user's tenant, and holding every
// permission of every role the user holds (ErrForbidden otherwise,
// recorded as a failed password.expired with reason escalation, nothing
// changed: see "Acting on a more privileged user"). The rule is checked
// again once the password is marked, before the sessions end: a role the
// caller could not grant, given to the user meanwhile, refuses the call
// the same way (a failure to read the roles then gives ErrUnavailable),
// the sessions and links left and no notice sent, and the mark is taken
// back unless the password was marked already when the call read the
// user. If taking it back fails, ErrUnavailable is returned and the mark
// stays, unrecorded (the user chooses a new password at their next
// sign-in). A user cannot expire
// their own password (ErrForbidden, recorded as access.denied with reason
// own_account: ChangePassword is for that); a user without a password
// gives an *InputError, an unknown user ErrUserNotFound, and nothing
// changes. A store failure gives ErrUnavailable. It is recorded as
// password.expired (Meta sessions_ended); if the event cannot be recorded
// the error is returned and the mark and the ended sessions stay.
func (g *Guard) ExpirePassword(ctx context.Context, by Principal, tenant, id string) error {
	if isSelf(by, tenant, id) {
		return g.refused(ctx, by, rbac.Users, rbac.Manage, reasonOwnAccount)
	}
	u, perms, err := g.loadTarget(ctx, by, tenant, id, audit.PasswordExpired)
	if err != nil {
		return err
	}
	if u.PasswordHash == "" {
		return &InputError{Field: "user", Reason: "has no password to expire"}
	}
	set, err := g.stores.UserUpdates.ExpirePassword(ctx, tenant, id)
	if err != nil {
		return g.userErr("expire password", err)
	}
	// A role granted to the user since loadTarget is checked now, before
	// the sessions end; refused, the mark this call set is taken back (a
	// mark already there, set before this call or by another at the same
	// time, is not this call's: the store says which).
	var undo func(context.Context) error
	if set {
		undo = func(ctx context.Context) error { return g.stores.UserUpdates.ClearPasswordExpired(ctx, tenant, id) }
	}
	if err := g.outranksStill(ctx, by, perms, tenant, id, audit.PasswordExpired, undo); err != nil {
		return err
	}
	ended, err := g.sessions.RevokeUser(ctx, tenant, id, session.Hash{})
	if err != nil {
		return unavailable("end sessions", err)
	}
	// A link asked for before the mark may be in the wrong hands too.
	if err := g.voidLinks(ctx, tenant, id); err != nil {
		return err
	}
	e := g.adminEvent(by, tenant, audit.PasswordExpired, id)
	e.Meta = map[string]string{"sessions_ended": strconv.Itoa(g.endedLive(ctx, tenant, ended))}
	if err := g.record(ctx, e); err != nil {
		return err
	}
	g.notify(ctx, u, "Please change your password",
		"An administrator asked you to choose a new password for your account, and your sessions were ended. "+
			"Sign in with your current password to choose a new one, or reset it with \"Forgot your password?\".")
	return nil
}

// LockState reports a user's login throttle state (failures, lock).
func (g *Guard) LockState(ctx context.Context, by Principal, tenant, id string) (auth.State, error) {
	u, err := g.loadUser(ctx, by, tenant, id, rbac.Read)
	if err != nil {
		return auth.State{}, err
	}
	st, err := g.stores.Throttle.Peek(ctx, accountKey(tenant, u.ID, u.Email), g.now(), g.acctLim)
	if err != nil {
		return auth.State{}, unavailable("throttle", err)
	}
	return st, nil
}

// loadTarget is loadUser for an action (recorded as action when refused)
// that needs users:manage and may only be taken on a user by someone who
// outranks them: see "Acting on a more privileged user" in the package
// documentation. It returns the user and by's permissions (none without
// RBAC).
func (g *Guard) loadTarget(ctx context.Context, by Principal, tenant, id string, action audit.Action) (auth.User, rbac.Perms, error) {
	u, err := g.loadUser(ctx, by, tenant, id, rbac.Manage)
	if err != nil {
		return auth.User{}, rbac.Perms{}, err
	}
	perms, err := g.outranks(ctx, by, tenant, id, action)
	if err != nil {
		return auth.User{}, rbac.Perms{}, err
	}
	return u, perms, nil
}

// outranks returns by's permissions if by holds every permission of every
// role user id of tenant holds (the system does; without RBAC every user
// does, and the permissions are none). Otherwise it records action on id
// as failed with reason escalation, naming the first role by could not
// grant (Meta role), as GrantRole records its refusals, and returns
// ErrForbidden (ErrUnavailable if the refusal cannot be recorded). A
// store failure is ErrUnavailable: nothing is allowed unchecked.
func (g *Guard) outranks(ctx context.Context, by Principal, tenant, id string, action audit.Action) (rbac.Perms, error) {
	if g.rbac == nil {
		return rbac.Perms{}, nil
	}
	perms, err := g.permsOf(ctx, by, tenant)
	if err != nil || by.Kind == KindSystem {
		return perms, err
	}
	role, err := g.roleBeyond(ctx, perms, tenant, rbac.User(id))
	switch {
	case err != nil:
		return rbac.Perms{}, err
	case role != "":
		return rbac.Perms{}, g.escalation(ctx, by, tenant, action, id, role)
	}
	return perms, nil
}

// roleBeyond returns the first role sub (a user or an API key) of tenant
// holds now whose permissions perms does not all hold, or "" (see beyond).
func (g *Guard) roleBeyond(ctx context.Context, perms rbac.Perms, tenant string, sub rbac.Subject) (string, error) {
	held, err := g.rbac.RolesOf(ctx, tenant, sub)
	var ie *rbac.InputError
	switch {
	case errors.As(err, &ie):
		return "", nil // an ID no role can be granted to
	case err != nil:
		return "", rbacErr("roles", err)
	case len(held) == 0:
		return "", nil
	}
	defined, err := g.rbac.Roles(ctx, tenant)
	if err != nil {
		return "", rbacErr("roles", err)
	}
	role, _ := beyond(perms, held, defined)
	return role, nil
}

// outranksStill checks the rule of outranks again after a change to user
// id (action) was written, with perms, by's permissions outranks
// returned: a role granted to the user between that check and the write
// would otherwise let the change stand. It reads the user's roles alone.
// If perms no longer cover them, the change is undone, recorded as
// outranks records a refusal (reason escalation, Meta role) and
// ErrForbidden returned. When the roles cannot be read the change is
// undone too and the error returned: the rule could not be checked. An
// undo that fails is returned as ErrUnavailable, the change then stands.
// A nil undo undoes nothing. Written first, checked after: a grant after
// this check came after the change too.
func (g *Guard) outranksStill(ctx context.Context, by Principal, perms rbac.Perms, tenant, id string, action audit.Action,
	undo func(context.Context) error) error {
	if g.rbac == nil || by.Kind == KindSystem {
		return nil
	}
	role, err := g.roleBeyond(ctx, perms, tenant, rbac.User(id))
	if err == nil && role == "" {
		return nil
	}
	if uerr := undoChange(ctx, undo); uerr != nil {
		return uerr
	}
	if err != nil {
		return err
	}
	return g.escalation(ctx, by, tenant, action, id, role)
}

// undoChange runs undo, the undo of a change written before a check
// that refused it (nil undoes nothing), under a context that does not end
// with ctx's: an undo that fails is ErrUnavailable, the change standing.
func undoChange(ctx context.Context, undo func(context.Context) error) error {
	if undo == nil {
		return nil
	}
	if err := undo(context.WithoutCancel(ctx)); err != nil {
		return unavailable("undo", err)
	}
	return nil
}

// beyond returns the first of roles that perms does not hold every
// permission of, and whether there is one. A role missing from defined
// (deleted meanwhile) counts as one: the check fails closed.
func beyond(perms rbac.Perms, roles []string, defined []rbac.RoleInfo) (string, bool) {
	for _, role := range roles {
		i := slices.IndexFunc(defined, func(r rbac.RoleInfo) bool { return r.Name == role })
		if i < 0 || !holdsAll(perms, defined[i]) {
			return role, true
		}
	}
	return "", false
}

// escalation records action on target as failed with reason escalation,
// naming the role the actor could not grant (Meta role), as GrantRole and
// RevokeRole record theirs, and returns ErrForbidden (matching
// rbac.ErrEscalation), or ErrUnavailable if the refusal cannot be
// recorded.
func (g *Guard) escalation(ctx context.Context, by Principal, tenant string, action audit.Action, target, role string) error {
	e := g.adminEvent(by, tenant, action, target)
	e.Outcome, e.Reason, e.Meta = audit.Failure, "escalation", map[string]string{"role": role}
	if err := g.record(ctx, e); err != nil {
		return err
	}
	return rbacErr("change role", rbac.ErrEscalation)
}

func (g *Guard) loadUser(ctx context.Context, by Principal, tenant, id string, a rbac.Action) (auth.User, error) {
	if err := g.may(ctx, by, tenant, rbac.Users, a); err != nil {
		return auth.User{}, err
	}
	if len(id) > auth.MaxIDBytes {
		return auth.User{}, ErrUserNotFound
	}
	u, err := g.stores.Users.User(ctx, tenant, id)
	if err != nil {
		return auth.User{}, g.userErr("load user", err)
	}
	return u, nil
}

// selfUser loads the user of p, a user's session, for a call they make
// on their own account (changing their password or address, their
// second factors, a step-up). A user no longer active is
// ErrUnauthenticated: the deactivation ended p's session, and a call made
// with a principal authenticated just before it must not change the
// account after it. A user gone is ErrUserNotFound, a store failure
// ErrUnavailable.
func (g *Guard) selfUser(ctx context.Context, p Principal) (auth.User, error) {
	u, err := g.stores.Users.User(ctx, p.Tenant, p.UserID)
	switch {
	case err != nil:
		return auth.User{}, g.userErr("load user", err)
	case u.Status != auth.StatusActive:
		return auth.User{}, ErrUnauthenticated
	}
	return u, nil
}

func (g *Guard) userErr(op string, err error) error {
	if errors.Is(err, auth.ErrNotFound) {
		return ErrUserNotFound
	}
	return unavailable(op, err)
}

func (g *Guard) adminEvent(by Principal, tenant string, action audit.Action, target string) audit.Event {
	// Clipped: a principal the host builds, or a request's long User-Agent,
	// must not make every record of its actions fail.
	return audit.Event{Tenant: tenant, Actor: by.actor(), Action: action, Target: target,
		IP: clip(by.IP, maxIPBytes), UserAgent: clip(by.UserAgent, 512), Outcome: audit.Success}
}

// newID returns 16 random bytes in hex.
func newID(r io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("guard: reading randomness: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// checkCursor validates a page cursor, a user ID from a page's query
// string: valid UTF-8 without a NUL byte, of at most auth.MaxIDBytes
// bytes. A store may refuse any other as bad input; the caller must not
// report it as a store failure.
func checkCursor(field, s string) error {
	switch {
	case len(s) > auth.MaxIDBytes:
		return &InputError{Field: field, Reason: "too long"}
	case !utf8.ValidString(s):
		return &InputError{Field: field, Reason: "not valid UTF-8"}
	case strings.IndexByte(s, 0) >= 0:
		return &InputError{Field: field, Reason: "contains a NUL byte"}
	}
	return nil
}

// checkText validates a free-text field: valid UTF-8, no control
// characters, at most max bytes.
func checkText(field, s string, max int) error {
	if len(s) > max {
		return &InputError{Field: field, Reason: "too long"}
	}
	if !utf8.ValidString(s) {
		return &InputError{Field: field, Reason: "not valid UTF-8"}
	}
	if !auth.Printable(s) {
		return &InputError{Field: field, Reason: "contains control characters"}
	}
	return nil
}
