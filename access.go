package guard

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/rbac"
)

// subject is the RBAC subject of a principal (the zero Subject for the
// system).
func (p Principal) subject() rbac.Subject {
	switch p.Kind {
	case KindUser:
		return rbac.User(p.UserID)
	case KindAPIKey:
		return rbac.Key(p.KeyID)
	}
	return rbac.Subject{}
}

// keyBound returns the subject whose permissions bound those of by: for
// an API key created by a user, that user (rbac.User of the key's
// CreatedBy), since a key never does more than its creator may do now,
// however the creator lost a permission (RevokeRole, a narrower or
// deleted custom role, an access review's downgrade, SSO role sync); the
// zero Subject for a user, for a key the host created (its CreatedBy is
// the System label, not a user ID: it keeps its own roles) and for the
// system. The key is bound to its creator's present standing too (see
// keyCreatorOf): known is false, and the key may do nothing, while the
// creator's password is marked compromised (ExpirePassword: the key is
// suspended, not revoked, until they choose a new one; passwordGate
// refuses it first where it refuses such a session), and when the
// creator is deactivated or deleted (whose keys are revoked then: one
// that still authenticates was made or kept by a failure or a race).
// known is false too for a key the tenant does not have, or has revoked
// or let expire (a Principal not made by AuthenticateAPIKey): it may do
// nothing. A store failure is
// returned (ErrUnavailable): nothing is allowed on it.
func (g *Guard) keyBound(ctx context.Context, by Principal) (within rbac.Subject, known bool, err error) {
	if by.Kind != KindAPIKey {
		return rbac.Subject{}, true, nil
	}
	creator, st, found, err := g.keyCreatorOf(ctx, by)
	if err != nil || !found || st != creatorActive {
		return rbac.Subject{}, false, err
	}
	if !isUserID(creator) {
		return rbac.Subject{}, true, nil
	}
	return rbac.User(creator), true, nil
}

// creatorStanding is what the present state of an API key's creator lets
// the key do (see keyBound).
type creatorStanding uint8

const (
	// creatorActive: an active user whose password is not marked
	// compromised, or the host (a key the host created).
	creatorActive creatorStanding = iota
	// creatorPasswordExpired: the creator's password is marked
	// compromised (auth.User.PasswordExpired, set by ExpirePassword,
	// cleared by a new password).
	creatorPasswordExpired
	// creatorGone: the creator is deactivated or deleted.
	creatorGone
)

// keyCreatorOf returns the CreatedBy of API key by and its creator's
// standing now: from the Principal when AuthenticateAPIKey put them there
// (read as the key was authenticated, as a session's flags are read at
// its request), else from one read of the tenant's keys and one of the
// creator. found is false for a key the tenant does not have, and for one
// revoked or past its expiry (which AuthenticateAPIKey refuses: a
// Principal the host made for it, such as a queued job's, keeps none of
// the key's roles, which stay granted until the key is purged). A key the
// host created (its CreatedBy is no user ID) has no user to read. A store
// failure is ErrUnavailable.
func (g *Guard) keyCreatorOf(ctx context.Context, by Principal) (creator string, st creatorStanding, found bool, err error) {
	if by.keyKnown {
		return by.keyCreator, by.keyStanding, true, nil
	}
	k, found, err := g.apiKeyByID(ctx, by.Tenant, by.KeyID)
	if err != nil || !found || !k.UsableAt(g.now()) {
		return "", creatorActive, false, err
	}
	st, err = g.standingOf(ctx, k.Tenant, k.CreatedBy)
	return k.CreatedBy, st, err == nil, err
}

// standingOf reads the standing of creator, the CreatedBy of an API key of
// tenant: creatorActive for a key the host created (no user ID). A store
// failure is ErrUnavailable.
func (g *Guard) standingOf(ctx context.Context, tenant, creator string) (creatorStanding, error) {
	if !isUserID(creator) {
		return creatorActive, nil
	}
	u, err := g.stores.Users.User(ctx, tenant, creator)
	switch {
	case errors.Is(err, auth.ErrNotFound):
		return creatorGone, nil
	case err != nil:
		return creatorGone, unavailable("load key creator", err)
	case u.Status != auth.StatusActive:
		return creatorGone, nil
	case u.PasswordExpired:
		return creatorPasswordExpired, nil
	}
	return creatorActive, nil
}

// isUserID reports whether s has the form of the IDs Guard gives users
// (newID: 32 lower-case hex digits), which no System label of a key's
// creator is expected to have. A label that has it names no user, so the
// key it created is bounded by a subject holding nothing: it fails
// closed.
func isUserID(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// keyHolds returns nil unless by is an API key whose creator's
// permissions do not hold p (rbac.ErrDenied): the rbac package's approval
// calls check the key's own roles, and a key never does more than its
// creator may do now (keyBound). A store failure is returned.
func (g *Guard) keyHolds(ctx context.Context, by Principal, p rbac.Permission) error {
	if by.Kind != KindAPIKey {
		return nil
	}
	d, err := g.decide(ctx, by, by.Tenant, p.Section, p.Action)
	if err == nil && !d.Allowed {
		err = rbac.ErrDenied
	}
	return err
}

// decide is the RBAC decision for by, a user or an API key of tenant: an
// API key created by a user is allowed only what its roles and its
// creator's both allow (keyBound), at one policy version, in memory. The
// zero Decision, without error, for a key the tenant does not have.
func (g *Guard) decide(ctx context.Context, by Principal, tenant string, s rbac.Section, a rbac.Action) (rbac.Decision, error) {
	within, known, err := g.keyBound(ctx, by)
	if err != nil || !known {
		return rbac.Decision{}, err
	}
	return g.rbac.DecideWithin(ctx, tenant, by.subject(), within, s, a)
}

// may returns nil if by may take action on section in tenant, else
// ErrForbidden (recorded as access.denied) or, when the decision cannot be
// made, ErrUnavailable: it never allows on an error. The tenant of the
// decision is the principal's own; a principal of another tenant is always
// refused, and so is a session whose password must be changed
// (ErrPasswordChangeRequired, see passwordGate). The system may do
// anything. An API key created by a user may do only what its creator
// may do too (see decide). Without RBAC (no Stores.Policies), every user
// of a tenant may administer it and API keys may not.
func (g *Guard) may(ctx context.Context, by Principal, tenant string, s rbac.Section, a rbac.Action) error {
	switch by.Kind {
	case KindSystem:
		return nil
	case KindUser, KindAPIKey:
	default:
		return g.refused(ctx, by, s, a, reasonInvalidPrincipal)
	}
	if by.Tenant != tenant {
		return g.denied(ctx, by, s, a, "other_tenant")
	}
	if err := g.passwordGate(ctx, by, s, a); err != nil {
		return err
	}
	if g.rbac == nil {
		if by.Kind == KindAPIKey {
			return g.denied(ctx, by, s, a, "no_permission")
		}
		return nil
	}
	d, err := g.decide(ctx, by, by.Tenant, s, a)
	if err != nil {
		var ie *rbac.InputError
		if errors.As(err, &ie) {
			return g.denied(ctx, by, s, a, "bad_input")
		}
		if derr := g.denied(ctx, by, s, a, "error"); !errors.Is(derr, ErrForbidden) {
			return derr
		}
		return unavailable("access decision", err)
	}
	if !d.Allowed {
		return g.denied(ctx, by, s, a, "no_permission")
	}
	return nil
}

// mayOrSelf is may, except that a user acting on their own account
// (userID) needs no permission.
func (g *Guard) mayOrSelf(ctx context.Context, by Principal, tenant, userID string, s rbac.Section, a rbac.Action) error {
	if isSelf(by, tenant, userID) {
		return nil
	}
	return g.may(ctx, by, tenant, s, a)
}

// isSelf reports whether by is the tenant's user userID, signed in.
func isSelf(by Principal, tenant, userID string) bool {
	return by.Kind == KindUser && by.Tenant == tenant && by.UserID == userID
}

// passwordGate refuses a user session that signed in with a password that
// must be changed (FlagPasswordExpired: marked compromised, past the
// tenant's PasswordMaxAge, or a common one). Such a session still
// authenticates (Middleware, RequireSession, Authenticate), and may change
// its password, sign out and read and look after its own account, which
// need no permission; every permission check refuses it, recorded as
// access.denied with reason password_expired, with
// ErrPasswordChangeRequired (ErrUnavailable if the refusal cannot be
// recorded). So is an API key whose creator's password is marked
// compromised (ExpirePassword), until the creator chooses a new one: the
// key still authenticates, and does nothing (see keyBound). s and a name
// what was asked for (s may be ""). A store failure reading the key's
// creator is ErrUnavailable.
func (g *Guard) passwordGate(ctx context.Context, by Principal, s rbac.Section, a rbac.Action) error {
	if expired, err := g.mustChangePassword(ctx, by); err != nil || !expired {
		return err
	}
	if err := g.denied(ctx, by, s, a, ReasonPasswordExpired); !errors.Is(err, ErrForbidden) {
		return err
	}
	return ErrPasswordChangeRequired
}

// mustChangePassword reports whether by may do nothing until a password is
// changed: a session that signed in with one that must be
// (FlagPasswordExpired), or an API key whose creator's password is marked
// compromised (see keyBound). A store failure is ErrUnavailable.
func (g *Guard) mustChangePassword(ctx context.Context, by Principal) (bool, error) {
	switch by.Kind {
	case KindUser:
		return by.Flags&FlagPasswordExpired != 0, nil
	case KindAPIKey:
		_, st, _, err := g.keyCreatorOf(ctx, by)
		return st == creatorPasswordExpired, err
	}
	return false, nil
}

// refused is denied for the refusals that are not a permission check: an
// action only the system may take (reason system_only), one a user may not
// take on their own account (own_account), a caller that is no principal
// Guard knows (invalid_principal). A caller without a tenant (the system,
// the zero Principal) has no audit log to be recorded in: it gets
// ErrForbidden alone.
func (g *Guard) refused(ctx context.Context, by Principal, s rbac.Section, a rbac.Action, reason string) error {
	if by.Tenant == "" {
		return ErrForbidden
	}
	return g.denied(ctx, by, s, a, reason)
}

// Reasons of access.denied events for refusals that are not a permission
// check (see refused), and of an API key refused an action that needs a
// recent authentication (see requireRecentAuth).
const (
	reasonSystemOnly       = "system_only"
	reasonOwnAccount       = "own_account"
	reasonInvalidPrincipal = "invalid_principal"
	reasonAPIKey           = "api_key"
)

// denied records an access.denied event in the principal's own tenant and
// returns ErrForbidden.
func (g *Guard) denied(ctx context.Context, by Principal, s rbac.Section, a rbac.Action, reason string) error {
	target := string(s) + ":" + string(a)
	if s == "" {
		target = string(a)
	}
	e := g.adminEvent(by, by.Tenant, audit.AccessDenied, target)
	if by.Kind != KindUser && by.Kind != KindAPIKey && by.Kind != KindSystem {
		// Not a principal Guard made: whoever it claims to be is not
		// recorded as a user.
		e.Actor = audit.Actor{Kind: audit.ActorAnonymous}
	}
	e.Outcome, e.Reason = audit.Failure, reason
	e.Meta = map[string]string{"section": string(s), "action": string(a), "subject": by.subject().String()}
	if err := g.record(ctx, e); err != nil {
		return err
	}
	return ErrForbidden
}

// Authorize is the per-request decision: whether the principal may take
// action on section, in the principal's own tenant. It returns the
// decision or ErrForbidden (recorded as access.denied) or ErrUnavailable.
// An action the tenant put under four-eyes approval fails closed: for a
// principal whose roles allow it, Authorize returns a Decision with
// NeedsApproval (and not Allowed) and ErrApprovalRequired (an
// ErrForbidden, not recorded: the caller decides whether this is a
// refusal), so that a caller who checks only the error never acts
// unapproved. A caller who takes approvals goes on only after a
// ConsumeApproval for the action succeeds (the HTTP Require refuses such
// an action; RequireApprovable lets it through for a handler that does
// this). Enforcer errors deny. A session that
// signed in with a password that must be changed (FlagPasswordExpired) is
// refused whatever its roles, with ErrPasswordChangeRequired (also
// ErrForbidden). An API key created by a user is allowed only what its
// roles and its creator's current roles both allow.
func (g *Guard) Authorize(ctx context.Context, p Principal, s rbac.Section, a rbac.Action) (rbac.Decision, error) {
	if p.Kind == KindSystem {
		return rbac.Decision{Allowed: true}, nil
	}
	if err := g.passwordGate(ctx, p, s, a); err != nil {
		return rbac.Decision{}, err
	}
	if g.rbac == nil {
		if err := g.may(ctx, p, p.Tenant, s, a); err != nil {
			return rbac.Decision{}, err
		}
		return rbac.Decision{Allowed: true}, nil
	}
	if p.Kind != KindUser && p.Kind != KindAPIKey {
		return rbac.Decision{}, g.refused(ctx, p, s, a, reasonInvalidPrincipal)
	}
	d, err := g.decide(ctx, p, p.Tenant, s, a)
	if err != nil {
		var ie *rbac.InputError
		reason := "error"
		if errors.As(err, &ie) {
			reason = "bad_input"
		}
		if derr := g.denied(ctx, p, s, a, reason); !errors.Is(derr, ErrForbidden) || reason == "bad_input" {
			return rbac.Decision{}, derr
		}
		return rbac.Decision{}, unavailable("access decision", err)
	}
	if !d.Allowed {
		return rbac.Decision{}, g.denied(ctx, p, s, a, "no_permission")
	}
	if d.NeedsApproval {
		return rbac.Decision{NeedsApproval: true, Version: d.Version}, ErrApprovalRequired
	}
	return d, nil
}

// Require returns middleware that lets a request through only if the
// principal Middleware put in its context may take action on section:
// 401 without a principal (with WWW-Authenticate: Challenge), 403 when
// refused (and an access.denied event), 503 when the decision cannot be
// made. A session that signed in with a password that must be changed
// gets 403 with "Guard-Reason: password_expired" (ReasonPasswordExpired;
// the cause given to Config.OnRefuse is ErrPasswordChangeRequired),
// whatever its roles, until the user changes it: send them to do so. So
// does an API key whose creator's password is marked compromised
// (ExpirePassword), until the creator changes it. It panics at start-up,
// not per request, on an unknown section or action.
//
// An action the tenant put under four-eyes approval is refused too (403,
// "Guard-Reason: approval_required", ErrApprovalRequired, an access.denied
// event with that reason): a handler that does not know about approvals
// never acts without one. Mount the routes that take approvals with
// RequireApprovable instead.
func (g *Guard) Require(s rbac.Section, a rbac.Action) func(http.Handler) http.Handler {
	return g.require(s, a, false)
}

// RequireApprovable is Require for a route whose handler takes part in
// four-eyes approval: an action under approval is let through, with
// NeedsApproval(ctx) true, and the handler must then call ConsumeApproval
// (with an approval someone else gave) before acting, or ask for one
// (RequestApproval).
func (g *Guard) RequireApprovable(s rbac.Section, a rbac.Action) func(http.Handler) http.Handler {
	return g.require(s, a, true)
}

func (g *Guard) require(s rbac.Section, a rbac.Action, approvable bool) func(http.Handler) http.Handler {
	if g.rbac != nil {
		if err := g.rbac.CheckPermission(rbac.P(s, a)); err != nil {
			panic("guard: Require: " + err.Error())
		}
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			p, ok := PrincipalFrom(r.Context())
			if !ok {
				g.refuse(w, r, http.StatusUnauthorized, "", ErrUnauthenticated)
				return
			}
			_, err := g.Authorize(r.Context(), p, s, a)
			switch {
			case errors.Is(err, ErrPasswordChangeRequired):
				g.refusePasswordExpired(w, r)
				return
			case errors.Is(err, ErrApprovalRequired) && approvable:
				r = r.WithContext(context.WithValue(r.Context(), approvalKey{}, true))
			case errors.Is(err, ErrApprovalRequired):
				if err := g.denied(r.Context(), p, s, a, ReasonApprovalRequired); !errors.Is(err, ErrForbidden) {
					g.refuse(w, r, http.StatusServiceUnavailable, unavailableText, err)
					return
				}
				w.Header().Set(ReasonHeader, ReasonApprovalRequired)
				g.refuse(w, r, http.StatusForbidden, "Forbidden: this action needs another person's approval", ErrApprovalRequired)
				return
			case errors.Is(err, ErrForbidden):
				g.refuse(w, r, http.StatusForbidden, "", err)
				return
			case err != nil:
				g.refuse(w, r, http.StatusServiceUnavailable, unavailableText, err)
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

type approvalKey struct{}

// RequireMFA returns middleware for routes that need a second factor
// (authenticator assurance level 2): it lets a request through only for a
// user session whose sign-in, or latest Reauthenticate, included one
// (FlagMFA; a sign-in with an email code alone does not count). A single
// sign-on counts when the IdP asserted a multi-factor login with an
// AuthnContextClassRef in the tenant's sso.Connection.MFAAuthnContexts.
// Mount it inside Middleware, alone or with Require. Without a principal
// it answers 401 (with WWW-Authenticate: Challenge); any other principal (a password-only session, one
// signed in with an email code, an SSO session whose IdP did not assert a
// trusted multi-factor login, an API key) gets 403 with the header
// "Guard-Step-Up: mfa", and an access.denied event with reason
// mfa_required: send a user to Reauthenticate with their authenticator
// app (the second factor it checks) and retry; one without an
// authenticator app must enrol one first; an SSO user may sign in again
// with SSOStart{RequireMFA: true, ForceAuthn: true} when the tenant's
// connection lists MFAAuthnContexts. A session that signed in with a
// password that must be changed gets 403 with "Guard-Reason:
// password_expired" first, as for Require. A store failure
// recording the refusal answers 503.
func (g *Guard) RequireMFA(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := PrincipalFrom(r.Context())
		if !ok {
			g.refuse(w, r, http.StatusUnauthorized, "", ErrUnauthenticated)
			return
		}
		if err := g.passwordGate(r.Context(), p, "", "mfa"); err != nil {
			if errors.Is(err, ErrPasswordChangeRequired) {
				g.refusePasswordExpired(w, r)
				return
			}
			g.refuse(w, r, http.StatusServiceUnavailable, unavailableText, err)
			return
		}
		if p.HasMFA() {
			next.ServeHTTP(w, r)
			return
		}
		e := g.adminEvent(p, p.Tenant, audit.AccessDenied, "mfa")
		e.Outcome, e.Reason = audit.Failure, "mfa_required"
		e.Meta = map[string]string{"subject": p.subject().String(), "path": clip(r.URL.Path, 200)}
		if err := g.record(r.Context(), e); err != nil {
			g.refuse(w, r, http.StatusServiceUnavailable, unavailableText, err)
			return
		}
		w.Header().Set("Guard-Step-Up", "mfa")
		g.refuse(w, r, http.StatusForbidden, "Forbidden: a second factor is required", ErrStepUpRequired)
	})
}

// refusePasswordExpired answers 403 with "Guard-Reason: password_expired"
// to a request of a session whose password must be changed.
func (g *Guard) refusePasswordExpired(w http.ResponseWriter, r *http.Request) {
	w.Header().Set(ReasonHeader, ReasonPasswordExpired)
	g.refuse(w, r, http.StatusForbidden, "Forbidden: your password must be changed first", ErrPasswordChangeRequired)
}

// NeedsApproval reports whether RequireApprovable found that the
// request's action is under four-eyes approval: the handler must call
// ConsumeApproval first.
func NeedsApproval(ctx context.Context) bool {
	v, _ := ctx.Value(approvalKey{}).(bool)
	return v
}

// permsOf returns the permissions by acts with when changing the policy
// (roles, grants, approval rules): none for a session whose password must
// be changed (ErrPasswordChangeRequired). For an API key created by a user
// they are those its creator holds too (as decide judges), and the rbac
// package re-reads both when the change lands; a key the tenant does not
// have holds none.
func (g *Guard) permsOf(ctx context.Context, by Principal, tenant string) (rbac.Perms, error) {
	if by.Kind == KindSystem {
		return g.rbac.AllPerms(), nil
	}
	switch {
	case by.Kind != KindUser && by.Kind != KindAPIKey:
		return rbac.Perms{}, g.refused(ctx, by, rbac.Users, rbac.Manage, reasonInvalidPrincipal)
	case by.Tenant != tenant:
		return rbac.Perms{}, g.denied(ctx, by, rbac.Users, rbac.Manage, "other_tenant")
	}
	if err := g.passwordGate(ctx, by, rbac.Users, rbac.Manage); err != nil {
		return rbac.Perms{}, err
	}
	within, known, err := g.keyBound(ctx, by)
	if err != nil || !known {
		return rbac.Perms{}, err
	}
	perms, err := g.rbac.PermissionsWithin(ctx, tenant, by.subject(), within)
	if err != nil {
		return rbac.Perms{}, rbacErr("permissions", err)
	}
	return perms, nil
}

// rbacErr keeps the rbac package's answers and reports store failures as
// ErrUnavailable. ErrDenied and ErrEscalation match ErrForbidden too.
func rbacErr(op string, err error) error {
	var ie *rbac.InputError
	switch {
	case err == nil:
		return nil
	case errors.Is(err, rbac.ErrDenied), errors.Is(err, rbac.ErrEscalation):
		return errors.Join(ErrForbidden, err)
	case errors.As(err, &ie), errors.Is(err, rbac.ErrLastOwner), errors.Is(err, rbac.ErrBuiltInRole),
		errors.Is(err, rbac.ErrTooManyRoles), errors.Is(err, rbac.ErrRoleNotFound):
		return err
	case errors.Is(err, rbac.ErrConflict):
		return ErrConflict
	}
	for _, e := range []error{rbac.ErrNotFound, rbac.ErrDuplicate, rbac.ErrSelfApproval, rbac.ErrNotPending,
		rbac.ErrExpired, rbac.ErrNotApproved, rbac.ErrConsumed, rbac.ErrMismatch, rbac.ErrApproverRevoked, rbac.ErrWithdrawn} {
		if errors.Is(err, e) {
			return err
		}
	}
	return unavailable(op, err)
}

func (g *Guard) needRBAC() error {
	if g.rbac == nil {
		return ErrRolesNotConfigured
	}
	return nil
}

// subjectOf names a user ("user:<id>") or an API key ("key:<id>").
func subjectOf(s string) (rbac.Subject, error) {
	sub, err := rbac.ParseSubject(s)
	if err != nil {
		return rbac.Subject{}, err
	}
	return sub, nil
}

// GrantRole gives a user ("user:<id>") or an API key ("key:<id>") a role
// in the tenant. The granter must hold every permission of the role
// (ErrForbidden otherwise: nobody grants more than they hold); the change
// is in force on the subject's next request on every replica (within
// milliseconds on one that keeps versions in memory: see "Concurrency" in
// the package doc). If it cannot
// be recorded in the audit log, it is undone and ErrUnavailable returned
// (so is a RevokeRole).
//
// A user whose roles changed signs in again (SECURITY-CHECKLIST SE-3):
// once the change is on record, every session of the user ends, recorded
// as session.revoked (Meta reason role_changed, sessions_ended), so that
// no session identifier outlives the privileges it was issued with. That
// includes the session of a user changing their own roles, who signs in
// again. If the sessions cannot be ended, ErrUnavailable is returned and
// the role change stands (it is on record; end the sessions with
// RevokeUserSessions). Granting a role already held, or revoking one not
// held, changes nothing: it is not recorded (no role.granted or
// role.revoked event) and ends no session.
//
// The role name and the caller's right to change grants at all
// (users:manage, api-keys:manage for a key's roles) are checked before
// anything about the grantee is read: a malformed name is an
// *rbac.InputError, not recorded, and a caller without that right gets
// ErrForbidden (reason no_permission, as below), whoever the grantee, so
// that it learns nothing of the tenant's users and keys.
//
// A role is granted only to a user of the tenant: a user who does not
// exist, or no longer does, gives ErrUserNotFound, recorded as a failed
// role.granted with reason unknown_user (Meta role), and no grant stays.
// The user is looked up before the grant is written and again once it
// is, so that a deletion racing the grant cannot leave it behind: either
// the deletion comes after the second look-up and takes the roles (see
// DeleteUser), or that look-up finds the user gone and the grant is taken
// back. A store failure of a look-up gives ErrUnavailable, the grant taken
// back; so does a failure to take it back, the grant then left. Taking
// back a grant this call wrote puts the policy back as it was: the owner
// role granted in a tenant that had no owner is taken back all the same
// (rbac.RemoveGrants, not the last-owner rule of RevokeRole), as it is
// when the grant cannot be recorded.
//
// Likewise a role is granted only to an API key of the tenant that is
// neither revoked nor expired: a key the tenant does not have gives
// ErrNotFound, recorded as a failed role.granted with reason unknown_key,
// a revoked key ErrNotFound with reason key_revoked, one past its
// ExpiresAt ErrNotFound with reason key_expired, and no grant stays. The
// key is looked up before the grant is written and again once it is; a
// revocation racing the grant either comes after that look-up and takes
// the key's roles (see RevokeAPIKey), or the look-up finds the key
// revoked and the grant is taken back.
//
// A user needs a recent authentication to change roles (a stolen session
// must not hand out roles that outlive it): a session whose last full
// authentication is older than Config.StepUpWindow, or a single sign-on
// with FlagStaleAuthn, gets ErrStepUpRequired (call Reauthenticate and
// retry), checked before anything is written or recorded, so nothing
// changes and no session ends. It is checked after the right to change
// grants at all: a user without users:manage (api-keys:manage for a key's
// roles) is refused with ErrForbidden, recorded as above (reason
// no_permission), whatever the age of the session. An API key needs no
// step-up, which only a person can give: provisioning automation grants
// roles with keys, within what the key may grant (see CreateAPIKey). The
// system needs none either. The same holds for RevokeRole, DefineRole,
// DeleteRole and CreateUser with roles; ApplyReview needs one only to
// promote (see there).
func (g *Guard) GrantRole(ctx context.Context, by Principal, tenant, subject, role string) error {
	return g.changeGrant(ctx, by, tenant, subject, role, true)
}

// RevokeRole takes a role away; in force on the subject's next request,
// and the user's sessions end as for GrantRole. The last owner cannot
// lose the owner role, nor can the last active owner (the other holders
// are deactivated): rbac.ErrLastOwner, recorded as a failed role.revoked
// with reason last_owner. Nor can the break-glass
// owner while the tenant requires SSO (ErrBreakGlassUser: name another
// break-glass owner, or stop requiring SSO, first; checked after the
// caller's right to change grants, as for GrantRole, so a caller without
// it gets ErrForbidden; and again once the role is taken, so that a
// SetPolicy naming the owner meanwhile has the role given back and the
// call refused, or ErrUnavailable, the role taken, if it cannot be given
// back). A removal of the owner
// role from an active owner that is given back meanwhile (another
// caller's undo) is refused with ErrConflict (reason conflict). A user
// needs a recent authentication (ErrStepUpRequired, before anything is
// written), an API key none, as for GrantRole.
func (g *Guard) RevokeRole(ctx context.Context, by Principal, tenant, subject, role string) error {
	return g.changeGrant(ctx, by, tenant, subject, role, false)
}

// changeGrant changes one grant and ends the sessions of a user whose
// roles changed.
func (g *Guard) changeGrant(ctx context.Context, by Principal, tenant, subject, role string, grant bool) error {
	sub, changed, err := g.changeRole(ctx, by, tenant, subject, role, grant, true)
	if err != nil || !changed || sub.Kind != rbac.KindUser {
		return err
	}
	_, err = g.endSessions(ctx, by, tenant, sub.ID, "role_changed")
	return err
}

// changeRole changes one grant and records it (undoing it if it cannot be
// recorded); it reports whether the subject's roles changed. A grant of a
// role already held, or a revocation of one not held, changes nothing and
// is not recorded. A malformed role name is refused first, unrecorded;
// then no right to change grants at all, before the grantee is read. A
// refusal is recorded as a failed event of the change with reason
// escalation (a role the changer could not grant), no_permission (no
// right to change grants at all, rbac.ErrDenied), or last_owner (the
// owner role of the tenant's last owner, rbac.ErrLastOwner). With stepUp, a user who may change the
// grant needs a recent authentication (roleStepUp), checked before
// anything is written or recorded; ApplyReview changes roles without it.
func (g *Guard) changeRole(ctx context.Context, by Principal, tenant, subject, role string, grant, stepUp bool) (rbac.Subject, bool, error) {
	if err := g.needRBAC(); err != nil {
		return rbac.Subject{}, false, err
	}
	sub, err := subjectOf(subject)
	if err != nil {
		return rbac.Subject{}, false, err
	}
	if err := rbac.CheckRoleName(role); err != nil {
		return rbac.Subject{}, false, err
	}
	if _, err := g.EffectivePolicy(ctx, tenant); err != nil {
		return rbac.Subject{}, false, err
	}
	perms, err := g.permsOf(ctx, by, tenant)
	if err != nil {
		return rbac.Subject{}, false, err
	}
	action := audit.RoleGranted
	if !grant {
		action = audit.RoleRevoked
	}
	// No right to change grants at all is refused before anything about
	// the grantee is read (whether a user exists, whether a key is
	// revoked, who the break-glass owner is): nothing of it is told to a
	// caller who may change none of it. SetGrant checks it again as the
	// change lands.
	if need := rbac.GrantPermission(sub.Kind); !perms.Has(need.Section, need.Action) {
		return rbac.Subject{}, false, g.roleRefused(ctx, by, tenant, action, sub, role, rbacErr("change role", rbac.ErrDenied))
	}
	if stepUp {
		if err := g.roleStepUp(ctx, by, perms, rbac.GrantPermission(sub.Kind)); err != nil {
			return rbac.Subject{}, false, err
		}
	}
	// Taking the owner role from an active owner may leave the tenant
	// without one: counted again once it is done (see keepOwner).
	activeOwner := false
	if !grant && role == rbac.Owner && sub.Kind == rbac.KindUser {
		if err := g.keepBreakGlass(ctx, by, tenant, sub.ID, audit.RoleRevoked, sub.String()); err != nil {
			return rbac.Subject{}, false, err
		}
		if activeOwner, err = g.activeOwner(ctx, tenant, sub.ID); err != nil {
			return rbac.Subject{}, false, err
		}
	}
	// A grant to a user or key that is not there (or a key revoked or
	// expired) is refused before it is written; one whose grantee goes
	// meanwhile is taken back after (granteeExists).
	if grant {
		if err := g.granteeExists(ctx, by, tenant, sub, role, false); err != nil {
			return rbac.Subject{}, false, err
		}
	}
	// Whether the grant changed (the subject did not hold the role, for a
	// grant; held it, for a revocation), as the change was decided: only
	// a change is recorded, and undone if it cannot be.
	changed, err := g.rbac.SetGrant(ctx, perms, tenant, sub, role, grant)
	if err != nil {
		return rbac.Subject{}, false, g.roleRefused(ctx, by, tenant, action, sub, role, rbacErr("change role", err))
	}
	if grant {
		if err := g.granteeExists(ctx, by, tenant, sub, role, changed); err != nil {
			return rbac.Subject{}, false, err
		}
	}
	if !changed {
		// A role already held, or not held: nothing done, nothing to
		// record.
		return sub, false, nil
	}
	// regrant undoes a revocation.
	regrant := func(ctx context.Context) error {
		return g.rbac.Grant(ctx, g.rbac.AllPerms(), tenant, sub, role)
	}
	if !grant && role == rbac.Owner && sub.Kind == rbac.KindUser {
		// A SetPolicy naming the user the break-glass owner may have
		// come since keepBreakGlass: read again now the role is gone.
		if err := g.keptBreakGlass(ctx, by, tenant, sub.ID, action, sub.String(), regrant); err != nil {
			return rbac.Subject{}, false, err
		}
	}
	if activeOwner {
		if err := g.keepOwner(ctx, by, tenant, action, sub.String(), map[string]string{"role": role}, regrant, func(ctx context.Context) (bool, error) {
			rs, err := g.rbac.RolesOf(ctx, tenant, sub)
			if err != nil {
				return false, rbacErr("load roles", err)
			}
			return !slices.Contains(rs, role), nil
		}); err != nil {
			return rbac.Subject{}, false, err
		}
	}
	e := g.adminEvent(by, tenant, action, sub.String())
	e.Meta = map[string]string{"role": role}
	if err := g.record(ctx, e); err != nil {
		// Not on record: no role is held, or lost, unaudited. The undo
		// is the host's own (AllPerms); a change made meanwhile by
		// someone else to the same grant may be undone with it.
		uctx := context.WithoutCancel(ctx)
		if grant {
			// The take-back of this call's grant: the last-owner rule
			// does not hold it (there was no owner before it either).
			_ = g.rbac.RemoveGrants(uctx, tenant, sub, role)
		} else {
			_ = g.rbac.Grant(uctx, g.rbac.AllPerms(), tenant, sub, role)
		}
		return rbac.Subject{}, false, err
	}
	return sub, true, nil
}

// roleRefused records a change of sub's role (action) that the rbac
// package refused as a failed event of the change, with Meta role and the
// reason refusalReason gives (escalation, no_permission, last_owner, as
// keepOwner records that one); it returns err, or ErrUnavailable if the
// refusal cannot be recorded. Any other err is returned as it is.
func (g *Guard) roleRefused(ctx context.Context, by Principal, tenant string, action audit.Action, sub rbac.Subject, role string, err error) error {
	reason := refusalReason(err)
	if reason == "" {
		return err
	}
	e := g.adminEvent(by, tenant, action, sub.String())
	e.Outcome, e.Reason, e.Meta = audit.Failure, reason, map[string]string{"role": role}
	if rerr := g.record(ctx, e); rerr != nil {
		return rerr
	}
	return err
}

// refusalReason is the Reason a role or policy change refused by the
// rbac package (through rbacErr) is recorded with: no_permission for no
// right to change it at all (rbac.ErrDenied), escalation for one beyond
// the changer's permissions (rbac.ErrEscalation), last_owner
// (rbac.ErrLastOwner), limit for a custom role past the tenant's bound
// (rbac.ErrTooManyRoles); "" for any other err, which is no refusal to
// record.
func refusalReason(err error) string {
	switch {
	case errors.Is(err, rbac.ErrLastOwner):
		return "last_owner"
	case errors.Is(err, rbac.ErrTooManyRoles):
		return "limit"
	case !errors.Is(err, ErrForbidden):
		return ""
	case errors.Is(err, rbac.ErrDenied):
		return "no_permission"
	}
	return "escalation"
}

// Reasons of a failed role.granted to an API key that cannot hold roles.
const (
	// ReasonUnknownKey: the tenant has no API key with the ID.
	ReasonUnknownKey = "unknown_key"
	// ReasonKeyRevoked: the tenant's API key with the ID is revoked.
	ReasonKeyRevoked = "key_revoked"
	// ReasonKeyExpired: the tenant's API key with the ID is past its
	// ExpiresAt.
	ReasonKeyExpired = "key_expired"
)

// granteeExists checks that sub, to be given role (written: the grant is
// written, by this call), is a user of the tenant, or an API key of the
// tenant neither revoked nor expired. If not, a grant written is taken
// back, the refusal recorded as a failed role.granted with reason
// unknown_user, unknown_key, key_revoked or key_expired (Meta role) and
// ErrUserNotFound (a user) or ErrNotFound (a key) returned. A store
// failure takes a grant written back too and is returned
// (ErrUnavailable), as is a failure to take it back.
func (g *Guard) granteeExists(ctx context.Context, by Principal, tenant string, sub rbac.Subject, role string, written bool) error {
	reason, err := g.granteeGone(ctx, tenant, sub)
	if err == nil && reason == "" {
		return nil
	}
	if written {
		// The take-back of this call's grant, to a grantee gone or
		// unknown: the last-owner rule does not hold it (an owner grant
		// to a tenant that had no owner leaves it with none again).
		if uerr := g.rbac.RemoveGrants(context.WithoutCancel(ctx), tenant, sub, role); uerr != nil {
			return unavailable("undo", uerr)
		}
	}
	if err != nil {
		return err
	}
	e := g.adminEvent(by, tenant, audit.RoleGranted, sub.String())
	e.Outcome, e.Reason, e.Meta = audit.Failure, reason, map[string]string{"role": role}
	if rerr := g.record(ctx, e); rerr != nil {
		return rerr
	}
	if sub.Kind == rbac.KindKey {
		return ErrNotFound
	}
	return ErrUserNotFound
}

// granteeGone returns why sub cannot hold roles in tenant, read from the
// stores now: ReasonUnknownUser for a user the tenant does not have,
// ReasonUnknownKey for an API key it does not have (any key, without an
// API key store), ReasonKeyRevoked for a revoked key, ReasonKeyExpired
// for one past its ExpiresAt; "" if sub can. A store failure is
// ErrUnavailable.
func (g *Guard) granteeGone(ctx context.Context, tenant string, sub rbac.Subject) (string, error) {
	if sub.Kind == rbac.KindKey {
		k, found, err := g.apiKeyByID(ctx, tenant, sub.ID)
		switch {
		case err != nil:
			return "", err
		case !found:
			return ReasonUnknownKey, nil
		case !k.RevokedAt.IsZero():
			return ReasonKeyRevoked, nil
		case !k.UsableAt(g.now()):
			return ReasonKeyExpired, nil
		}
		return "", nil
	}
	_, err := g.stores.Users.User(ctx, tenant, sub.ID)
	switch {
	case err == nil:
		return "", nil
	case errors.Is(err, auth.ErrNotFound):
		return ReasonUnknownUser, nil
	}
	return "", unavailable("load user", err)
}

// policyRefused records a change of roles or approval rules that the
// rbac package refused as a failed event of the change, with the reason
// refusalReason gives (escalation, no_permission, as GrantRole records
// its refusals; limit for a custom role past the tenant's bound, as
// CreateAPIKey records one past its own); it returns err, or
// ErrUnavailable if the refusal cannot be recorded. Any other err is
// returned as it is.
func (g *Guard) policyRefused(ctx context.Context, by Principal, tenant string, action audit.Action, target string, err error) error {
	reason := refusalReason(err)
	if reason == "" {
		return err
	}
	e := g.adminEvent(by, tenant, action, target)
	e.Outcome, e.Reason = audit.Failure, reason
	if rerr := g.record(ctx, e); rerr != nil {
		return rerr
	}
	return err
}

// DefineRole creates or replaces a custom role of the tenant with the
// given permissions ("section:action"). The definer must hold them all.
// A definition that cannot be recorded in the audit log does not stand:
// the permissions it replaced (the role as it was when the change
// landed, so a definition landing meanwhile is kept) are put back, and
// ErrUnavailable returned. A new role is deleted again, with any grant of
// it made meanwhile: each such holder's loss is then recorded as
// DeleteRole records it (role.deleted, and a role.revoked of the holder
// with reason role_deleted) and its user's sessions end, recorded as
// session.revoked (reason role_changed); the audit log having just
// failed, those records most likely fail too, and the sessions end all
// the same. The undo is made only while the role still holds the
// permissions this definition gave it (in the same atomic step): another
// definition landing after it, or its deletion, stands. If putting the
// role back fails too, the definition stays, unrecorded, and
// ErrUnavailable is returned.
//
// A redefinition changes the privileges of every holder, so, as for
// GrantRole (SECURITY-CHECKLIST SE-3), once it is on record every session
// of every user holding the role ends, recorded as session.revoked (Meta
// reason role_changed, sessions_ended); API keys holding it have no
// sessions. The holders are those when the change landed, taken in the
// same atomic step, so a grant of the role landing while DefineRole runs
// either comes after the change or is among them. If the sessions cannot
// all be ended, ErrUnavailable is returned and the definition stands (it
// is on record; end the sessions with RevokeUserSessions). A definition
// that changes no permission, or creates the role, ends no session.
//
// A user holding users:manage needs a recent authentication
// (ErrStepUpRequired, before anything is written or recorded); one
// without it is refused for the permission (ErrForbidden, recorded as a
// failed role.defined with reason no_permission), as is one without
// api-keys:manage changing the permissions of a role an API key holds
// (only one who may grant to keys changes what a key may do); an API key
// needs no step-up. See GrantRole.
//
// A new custom role past the tenant's bound (rbac.Config.MaxCustomRoles)
// is refused with rbac.ErrTooManyRoles, recorded as a failed role.defined
// with reason limit.
func (g *Guard) DefineRole(ctx context.Context, by Principal, tenant, name string, perms []string) error {
	if err := g.needRBAC(); err != nil {
		return err
	}
	ps := make([]rbac.Permission, 0, len(perms))
	for _, s := range perms {
		p, err := rbac.ParsePermission(strings.TrimSpace(s))
		if err != nil {
			return err
		}
		ps = append(ps, p)
	}
	if _, err := g.EffectivePolicy(ctx, tenant); err != nil {
		return err
	}
	by2, err := g.permsOf(ctx, by, tenant)
	if err != nil {
		return err
	}
	// A name rbac refuses to define whatever the session (a built-in
	// role's, a malformed one, one that reads as a built-in role's) is
	// refused for it below, without a step-up first.
	if rbac.CheckRole(name) == nil {
		if err := g.roleStepUp(ctx, by, by2, rbac.Permission{Section: rbac.Users, Action: rbac.Manage}); err != nil {
			return err
		}
	}
	// The role as it was (to put back if the change cannot be recorded)
	// and its holders (whose sessions end if its permissions change), as
	// the policy was when the change landed.
	found, err := g.rbac.DefineRole(ctx, by2, tenant, name, ps)
	if err != nil {
		return g.policyRefused(ctx, by, tenant, audit.RoleDefined, clip(name, 200), rbacErr("define role", err))
	}
	prev := found.Prev
	e := g.adminEvent(by, tenant, audit.RoleDefined, name)
	// The parsed permissions, not the caller's strings: the record names
	// what the role holds, all of it (count and digest beside the list).
	names := make([]string, len(ps))
	for i, p := range ps {
		names[i] = p.String()
	}
	e.Meta = map[string]string{}
	listMeta(e.Meta, "permissions", names, " ")
	if err := g.record(ctx, e); err != nil {
		// Undone only while the role is as this definition left it. A
		// grant of a new role made meanwhile goes with it: recorded (if
		// the audit log takes it) and signed out as by DeleteRole.
		uctx := context.WithoutCancel(ctx)
		removed, uerr := g.rbac.UndoDefineRole(uctx, g.rbac.AllPerms(), tenant, name, ps, prev)
		if uerr == nil && len(removed) > 0 {
			_ = g.roleDeleted(uctx, by, tenant, name, removed)
		}
		return err
	}
	if prev == nil || samePermissions(prev, ps) {
		return nil
	}
	return g.endHoldersSessions(ctx, by, tenant, found.Holders)
}

// samePermissions reports whether a and b hold the same permissions.
func samePermissions(a, b []rbac.Permission) bool {
	return !slices.ContainsFunc(a, func(p rbac.Permission) bool { return !slices.Contains(b, p) }) &&
		!slices.ContainsFunc(b, func(p rbac.Permission) bool { return !slices.Contains(a, p) })
}

// endHoldersSessions ends the sessions of users whose role changed under
// them (DefineRole, DeleteRole), as changeGrant does for one user (reason
// role_changed); API keys hold no session to end. It goes on past a
// failure, so that as few sessions as possible outlive the change, and
// returns the first error.
func (g *Guard) endHoldersSessions(ctx context.Context, by Principal, tenant string, holders []rbac.Subject) error {
	var first error
	for _, s := range holders {
		if s.Kind != rbac.KindUser {
			continue
		}
		if _, err := g.endSessions(ctx, by, tenant, s.ID, "role_changed"); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// DeleteRole deletes a custom role of the tenant (and every grant of it).
// It is recorded as role.deleted and, for each holder (user or API key)
// whose grant the deletion removed, a role.revoked of the holder with
// Meta role and reason role_deleted. The holders are taken in the same
// atomic step as the deletion, so a grant of the role landing while
// DeleteRole runs is either refused (the role is gone) or removed like
// any other: its loss recorded, its user's sessions ended. (GrantRole
// records the grant once it is made, so that role.granted may come after
// the role.revoked in the audit log.) Its holders lose permissions,
// so the deletion stands even when it cannot be recorded in the audit
// log: a failure to record leaves the role and its grants deleted and
// returns ErrUnavailable.
//
// As for RevokeRole (SECURITY-CHECKLIST SE-3), every session of every
// user whose grant the deletion removed then ends, recorded as
// session.revoked (Meta reason role_changed, sessions_ended), even when
// the deletion could not be recorded; API keys have no sessions. If the
// sessions cannot all be ended, ErrUnavailable is returned and the
// deletion stands (end them with RevokeUserSessions).
//
// A role the tenant's IdP connection gives (sso.Connection.GroupRoles or
// DefaultRole) is not deleted: *InputError (Field "role"), nothing
// recorded; change the mapping with SetSSOConnection first. (A deletion
// racing a SetSSOConnection that maps the role may still leave it mapped:
// single sign-on then refuses the sign-ins it would give it, reason
// provisioning or role_sync, changing nothing.)
//
// A user holding users:manage needs a recent authentication
// (ErrStepUpRequired, before anything is deleted or recorded); one
// without it is refused for the permission (ErrForbidden, recorded as a
// failed role.deleted with reason no_permission), as is one without
// api-keys:manage when an API key holds the role (only one who may grant
// to keys changes what a key may do); an API key needs no step-up. See
// GrantRole.
func (g *Guard) DeleteRole(ctx context.Context, by Principal, tenant, name string) error {
	if err := g.needRBAC(); err != nil {
		return err
	}
	by2, err := g.permsOf(ctx, by, tenant)
	if err != nil {
		return err
	}
	builtIn := slices.ContainsFunc(rbac.BuiltInRoles(), func(r rbac.RoleInfo) bool { return r.Name == name })
	// A built-in role, which rbac refuses to delete whatever the
	// session, is refused below without a step-up first.
	if !builtIn {
		if err := g.roleStepUp(ctx, by, by2, rbac.Permission{Section: rbac.Users, Action: rbac.Manage}); err != nil {
			return err
		}
	}
	if by2.Has(rbac.Users, rbac.Manage) && !builtIn {
		mapped, err := g.ssoMapsRole(ctx, tenant, name)
		if err != nil {
			return err
		}
		if mapped {
			return &InputError{Field: "role", Reason: "is given by the single sign-on connection's role mapping (group roles or default role): change the mapping first"}
		}
	}
	// The holders are those the deletion itself removed, as the policy
	// was when it landed: a grant made meanwhile is among them.
	holders, err := g.rbac.DeleteRole(ctx, by2, tenant, name)
	if err != nil {
		return g.policyRefused(ctx, by, tenant, audit.RoleDeleted, clip(name, 200), rbacErr("delete role", err))
	}
	return g.roleDeleted(ctx, by, tenant, name, holders)
}

// roleDeleted records the deletion of role name by by and, one by one,
// the loss of the role by each of holders, the subjects whose grant the
// deletion removed (role.deleted, then a role.revoked of each holder with
// Meta role and reason role_deleted, so that a holder's own history shows
// it as RevokeRole would), then ends the holders' sessions
// (endHoldersSessions). The deletion stands, recorded or not: so does
// the end of the sessions, which follows a failure to record. It returns
// the error of the record, or else that of ending the sessions.
func (g *Guard) roleDeleted(ctx context.Context, by Principal, tenant, name string, holders []rbac.Subject) error {
	evs := make([]audit.Event, 0, 1+len(holders))
	evs = append(evs, g.adminEvent(by, tenant, audit.RoleDeleted, name))
	for _, s := range holders {
		e := g.adminEvent(by, tenant, audit.RoleRevoked, s.String())
		e.Meta = map[string]string{"role": name, "reason": "role_deleted"}
		evs = append(evs, e)
	}
	err := g.record(ctx, evs...)
	if serr := g.endHoldersSessions(ctx, by, tenant, holders); err == nil {
		err = serr
	}
	return err
}

// Roles lists the tenant's roles (built-in and custom) with their
// permissions.
func (g *Guard) Roles(ctx context.Context, by Principal, tenant string) ([]rbac.RoleInfo, error) {
	if err := g.needRBAC(); err != nil {
		return nil, err
	}
	if err := g.may(ctx, by, tenant, rbac.Users, rbac.Read); err != nil {
		return nil, err
	}
	rs, err := g.rbac.Roles(ctx, tenant)
	return rs, rbacErr("roles", err)
}

// GrantableRoles lists the tenant's roles that by may give a user, with
// GrantRole or in NewUser.Roles, in the order of Roles: those whose every
// permission by holds, so that a menu offers no role only to have it
// refused. by must be of the tenant and hold users:manage (ErrForbidden
// otherwise, as from GrantRole); the system may give every role. It
// changes nothing, and like Can records no denial for being asked by a
// user of the tenant without users:manage; a principal of another tenant
// is recorded (access.denied, reason other_tenant), as everywhere. A
// store failure is ErrUnavailable, never a list. The answer is as of the
// call; GrantRole judges again. (GrantableKeyRoles answers for API keys.)
func (g *Guard) GrantableRoles(ctx context.Context, by Principal, tenant string) ([]rbac.RoleInfo, error) {
	return g.grantableRoles(ctx, by, tenant, rbac.KindUser)
}

// GrantableKeyRoles lists the tenant's roles that by may give an API key,
// in NewAPIKey.Roles or with GrantRole, in the order of Roles: those whose
// every permission by holds. It is GrantableRoles for API keys: by must
// hold api-keys:manage instead of users:manage (ErrForbidden otherwise, as
// from CreateAPIKey), and it changes, records and fails as GrantableRoles
// does. Without an API key store (ErrAPIKeysNotConfigured) no key can be
// given a role. The answer is as of the call; CreateAPIKey and GrantRole
// judge again, and CreateAPIKey takes a user who signed in recently (or
// the system).
func (g *Guard) GrantableKeyRoles(ctx context.Context, by Principal, tenant string) ([]rbac.RoleInfo, error) {
	if g.stores.APIKeys == nil {
		return nil, ErrAPIKeysNotConfigured
	}
	return g.grantableRoles(ctx, by, tenant, rbac.KindKey)
}

// grantableRoles lists the tenant's roles that by may give a subject of
// kind k: by must hold the permission to give roles to such subjects
// (rbac.GrantPermission, what rbac.Grant requires), and each role listed
// only permissions that by holds (holdsAll). It records and fails as
// GrantableRoles says.
func (g *Guard) grantableRoles(ctx context.Context, by Principal, tenant string, k rbac.SubjectKind) ([]rbac.RoleInfo, error) {
	if err := g.needRBAC(); err != nil {
		return nil, err
	}
	if _, err := g.EffectivePolicy(ctx, tenant); err != nil {
		return nil, err
	}
	perms, err := g.permsOf(ctx, by, tenant)
	if err != nil {
		return nil, err
	}
	if p := rbac.GrantPermission(k); !perms.Has(p.Section, p.Action) {
		return nil, rbacErr("grantable roles", rbac.ErrDenied)
	}
	rs, err := g.rbac.Roles(ctx, tenant)
	if err != nil {
		return nil, rbacErr("roles", err)
	}
	out := rs[:0]
	for _, r := range rs {
		if holdsAll(perms, r) {
			out = append(out, r)
		}
	}
	return out, nil
}

// holdsAll reports whether perms holds every permission of role r: what
// giving r takes, besides the right to give roles at all (rbac.Grant).
func holdsAll(perms rbac.Perms, r rbac.RoleInfo) bool {
	for _, p := range r.Permissions {
		if !perms.Has(p.Section, p.Action) {
			return false
		}
	}
	return true
}

// RolesOf lists the roles of a user ("user:<id>") or API key ("key:<id>").
// A user's roles are users data: reading another user's needs users:read
// (a user reads their own without it). A key's roles are API-key data, as
// granting them needs api-keys:manage: reading them needs api-keys:read,
// the permission that lists the keys (ListAPIKeys). A refusal is
// ErrForbidden, recorded as access.denied.
func (g *Guard) RolesOf(ctx context.Context, by Principal, tenant, subject string) ([]string, error) {
	if err := g.needRBAC(); err != nil {
		return nil, err
	}
	sub, err := subjectOf(subject)
	if err != nil {
		return nil, err
	}
	section := rbac.Users
	if sub.Kind == rbac.KindKey {
		section = rbac.APIKeys
	}
	if !(by.Kind == KindUser && sub == by.subject() && by.Tenant == tenant) {
		if err := g.may(ctx, by, tenant, section, rbac.Read); err != nil {
			return nil, err
		}
	}
	rs, err := g.rbac.RolesOf(ctx, tenant, sub)
	return rs, rbacErr("roles", err)
}

// AdminWarning returns a warning to show when the tenant has more active
// owners and admins than recommended (Config.MaxAdmins, default 1), or
// nil. Deactivated users and API keys revoked or expired that still hold
// those roles are not counted: they are listed in the warning's Excluded.
func (g *Guard) AdminWarning(ctx context.Context, by Principal, tenant string) (*rbac.AdminWarning, error) {
	if err := g.needRBAC(); err != nil {
		return nil, err
	}
	if err := g.may(ctx, by, tenant, rbac.Users, rbac.Read); err != nil {
		return nil, err
	}
	w, err := g.rbac.AdminWarning(ctx, tenant)
	if err != nil || w == nil {
		return nil, rbacErr("admin warning", err)
	}
	// The keys, in one read when the warning counts any.
	var usable map[string]bool
	if g.stores.APIKeys != nil && warnsOfKeys(w) {
		ks, err := g.stores.APIKeys.ListAPIKeys(ctx, tenant)
		if err != nil {
			return nil, unavailable("list api keys", err)
		}
		usable = usableKeys(ks, g.now())
	}
	// Few subjects (more than MaxAdmins, but admins are few): one read
	// each.
	inactive := map[rbac.Subject]bool{}
	for _, s := range slices.Concat(w.Owners, w.Admins) {
		if s.Kind == rbac.KindKey {
			inactive[s] = usable != nil && !usable[s.ID]
			continue
		}
		if s.Kind != rbac.KindUser {
			continue
		}
		u, err := g.stores.Users.User(ctx, tenant, s.ID)
		switch {
		case errors.Is(err, auth.ErrNotFound):
			inactive[s] = true
		case err != nil:
			return nil, unavailable("load user", err)
		default:
			inactive[s] = u.Status != auth.StatusActive
		}
	}
	return w.Excluding(func(s rbac.Subject) bool { return inactive[s] }), nil
}

// SetApprovalRequired puts an action (such as campaigns:send) under
// four-eyes approval in the tenant, or takes it out. by needs
// settings:manage (ErrForbidden, recorded as a failed
// approval_rule.changed with reason no_permission) and the permission
// itself (reason escalation): an admin who may not manage billing can
// neither fence billing:manage off from the owners nor open it up to one
// of them alone. Like the tenant's other security settings (SetPolicy,
// SetIPAllowList), a rule changes only on a person's recent
// authentication: a user holding settings:manage on an older session gets
// ErrStepUpRequired, and an API key, whatever its roles, ErrForbidden
// (recorded as access.denied, reason api_key); else a stolen session or
// key could take an action out of approval and then take it alone.
// Setting a rule to what it is changes nothing and is not recorded (no
// approval_rule.changed event), as for GrantRole. A change that cannot
// be recorded in the audit log does not stand: the rule is set back as it
// was and ErrUnavailable returned (if that fails too, the change stays,
// unrecorded, and ErrUnavailable is returned).
func (g *Guard) SetApprovalRequired(ctx context.Context, by Principal, tenant, permission string, required bool) error {
	if err := g.needRBAC(); err != nil {
		return err
	}
	p, err := rbac.ParsePermission(permission)
	if err != nil {
		return err
	}
	perms, err := g.permsOf(ctx, by, tenant)
	if err != nil {
		return err
	}
	// One who may not change rules at all is refused for the permission
	// below (no_permission), not sent to step up first.
	if perms.Has(rbac.Settings, rbac.Manage) {
		if err := g.requireRecentAuth(ctx, by, rbac.Settings, rbac.Manage); err != nil {
			return err
		}
	}
	// Whether the rule changed, as the change was decided: only a change
	// is recorded, and set back (to !required) if it cannot be.
	changed, err := g.rbac.SetApprovalRule(ctx, perms, tenant, p, required)
	if err != nil {
		return g.policyRefused(ctx, by, tenant, audit.ApprovalRuleChanged, permission, rbacErr("approval rule", err))
	}
	if !changed {
		return nil
	}
	e := g.adminEvent(by, tenant, audit.ApprovalRuleChanged, permission)
	e.Meta = map[string]string{"required": boolString(required)}
	if err := g.record(ctx, e); err != nil {
		_ = g.rbac.SetApprovalRequired(context.WithoutCancel(ctx), g.rbac.AllPerms(), tenant, p, !required)
		return err
	}
	return nil
}

func boolString(b bool) string {
	if b {
		return "true"
	}
	return "false"
}

// PayloadHash is the hash of a request payload that an approval is bound
// to: SHA-256 of the payload bytes.
func PayloadHash(payload []byte) [32]byte { return sha256.Sum256(payload) }

// RequestApproval asks another user to approve an action under four-eyes
// approval: the requester (by) must hold the permission (an API key: its
// creator too, as everywhere a key is decided on); target names
// what the action applies to, as printable text (see auth.Printable: it is
// shown to the approvers and recorded; an *rbac.InputError otherwise,
// nothing stored), and payload is what will be done (its hash binds the
// approval). ttl 0 takes the default (24 hours).
//
// A request that cannot be recorded in the audit log does not stand: it
// is rejected at once (with no Decider), so that no one can approve it,
// and ErrUnavailable is returned. If it cannot be rejected either,
// ErrUnavailable is returned all the same and the request stays pending,
// unrecorded.
//
// Deactivating or deleting a user withdraws the requests they filed (see
// DeactivateUser): a request filed by a user deactivated or deleted
// while it was made is rejected the same way, unrecorded, and
// ErrUnauthenticated returned (ErrUnavailable if the user cannot be
// read).
//
// A requester files at most MaxApprovalRequestsPerHour requests in each
// hour of the clock (UTC), so that a loop cannot flood the approvers and
// the store: every request past the password check counts, a refused
// one too. An API key created by a user files within that user's budget:
// the user and all the keys they created file at most
// MaxApprovalRequestsPerHour between them, so that creating keys does
// not multiply what one person can put before the approvers (a key of
// theirs in a loop uses up its creator's budget too). A key the host
// created (System) has a budget of its own: no person can create more
// of them. The count is kept in the throttle store (Stores.Throttle), in
// one atomic step a request, so it holds across replicas and for
// requests filed at once. One more is refused with ErrTooManyAttempts,
// nothing stored, and recorded as a failed approval.requested with
// reason rate_limited (ReasonRateLimited), its actor the requester who
// filed it (the key, for a key), unless 30 such refusals of that
// requester were recorded in the last minute: one requester's loop does
// not silence another's refusals. A count that cannot be kept is
// ErrUnavailable, nothing stored.
func (g *Guard) RequestApproval(ctx context.Context, by Principal, permission, target string, payload []byte, ttl time.Duration) (rbac.Approval, error) {
	if err := g.needRBAC(); err != nil {
		return rbac.Approval{}, err
	}
	p, err := rbac.ParsePermission(permission)
	if err != nil {
		return rbac.Approval{}, err
	}
	if by.Kind != KindUser && by.Kind != KindAPIKey {
		// Only a user or a key asks: the system has nobody to be approved.
		return rbac.Approval{}, g.refused(ctx, by, p.Section, p.Action, reasonInvalidPrincipal)
	}
	if err := g.passwordGate(ctx, by, p.Section, p.Action); err != nil {
		return rbac.Approval{}, err
	}
	if err := g.requestsLimited(ctx, by, p); err != nil {
		return rbac.Approval{}, err
	}
	if err := g.keyHolds(ctx, by, p); err != nil {
		return rbac.Approval{}, g.approvalFailed(ctx, by, audit.ApprovalRequested, "", err)
	}
	ap, err := g.approvals.Request(ctx, by.Tenant, by.subject(), p, target, PayloadHash(payload), ttl)
	if err != nil {
		return rbac.Approval{}, g.approvalFailed(ctx, by, audit.ApprovalRequested, "", err)
	}
	if err := g.requesterStillActive(ctx, by, ap); err != nil {
		return rbac.Approval{}, err
	}
	e := g.adminEvent(by, by.Tenant, audit.ApprovalRequested, ap.ID)
	// The whole target (rbac accepts up to rbac.MaxTargetLen bytes, within
	// audit.MaxFieldSize): targets differing late are not recorded alike.
	e.Meta = map[string]string{"permission": permission, "target": clip(target, rbac.MaxTargetLen)}
	if err := g.record(ctx, e); err != nil {
		// Not on record: no one may approve it. Rejected by the system
		// (no Decider), as a store keeps no way to delete one.
		_, _ = g.stores.Approvals.DecideApproval(context.WithoutCancel(ctx), ap.Tenant, ap.ID, rbac.Subject{},
			rbac.StatusRejected, g.now().UTC().Truncate(time.Microsecond))
		return rbac.Approval{}, err
	}
	return ap, nil
}

// ApproveRequest approves a pending request of another user; the approver
// must be a user (an API key never approves: ErrForbidden), must hold the
// section's approve permission and can never be the requester
// (rbac.ErrSelfApproval). A request filed by an API key counts as filed by
// the user who created the key too: that user cannot approve it either
// (rbac.ErrSelfApproval), or one person would be both pairs of eyes.
//
// A refusal is recorded as a failed approval.approved (approval.rejected
// for RejectRequest) with its reason (self_approval, not_found, expired,
// …): the first 30 a minute for each approver and reason, the 30th with
// Meta recording_paused "true", so that a loop cannot flood the tenant's
// log; the refusal is returned every time. A throttle store that cannot
// count it is ErrUnavailable. An id that is no approval ID in form
// (rbac.CheckApprovalID) is bad input: an *rbac.InputError, not recorded.
//
// An approval that cannot be recorded in the audit log must not carry out
// the action with its approver off the record, and it cannot be made
// pending again: it is used up at once (consumed, with no action carried
// out; ConsumeApproval then refuses it with rbac.ErrConsumed) and
// ErrUnavailable returned. The requester asks again. If it cannot be used
// up either, ErrUnavailable is returned all the same and the approval
// stands, unrecorded.
func (g *Guard) ApproveRequest(ctx context.Context, by Principal, id string) (rbac.Approval, error) {
	return g.decideApproval(ctx, by, id, true)
}

// RejectRequest rejects a pending request (same rules as ApproveRequest).
// A rejection moves toward the safer state, so it stands even when it
// cannot be recorded: a failure to record leaves the request rejected and
// returns ErrUnavailable.
func (g *Guard) RejectRequest(ctx context.Context, by Principal, id string) (rbac.Approval, error) {
	return g.decideApproval(ctx, by, id, false)
}

func (g *Guard) decideApproval(ctx context.Context, by Principal, id string, approve bool) (rbac.Approval, error) {
	if err := g.needRBAC(); err != nil {
		return rbac.Approval{}, err
	}
	action := audit.ApprovalApproved
	if !approve {
		action = audit.ApprovalRejected
	}
	if by.Kind != KindUser && by.Kind != KindAPIKey {
		return rbac.Approval{}, g.refused(ctx, by, "", rbac.Approve, reasonInvalidPrincipal)
	}
	// A malformed ID is bad input, refused before anything is recorded:
	// it would be the event's target.
	if err := rbac.CheckApprovalID(id); err != nil {
		return rbac.Approval{}, err
	}
	if by.Kind == KindAPIKey {
		// Approval is a person's act; the refusal is on record.
		return rbac.Approval{}, g.approvalFailed(ctx, by, action, id, rbac.ErrDenied)
	}
	if err := g.passwordGate(ctx, by, "", rbac.Approve); err != nil {
		return rbac.Approval{}, err
	}
	if err := g.notOwnKeysRequest(ctx, by, id); err != nil {
		return rbac.Approval{}, g.approvalFailed(ctx, by, action, id, err)
	}
	var (
		ap  rbac.Approval
		err error
	)
	if approve {
		ap, err = g.approvals.Approve(ctx, by.Tenant, id, by.subject())
	} else {
		ap, err = g.approvals.Reject(ctx, by.Tenant, id, by.subject())
	}
	if err != nil {
		return rbac.Approval{}, g.approvalFailed(ctx, by, action, id, err)
	}
	e := g.adminEvent(by, by.Tenant, action, id)
	e.Meta = map[string]string{"permission": ap.Permission.String(), "requester": ap.Requester.String()}
	if err := g.record(ctx, e); err != nil {
		if approve {
			_, _ = g.stores.Approvals.ConsumeApproval(context.WithoutCancel(ctx), ap.Tenant, ap.ID,
				rbac.Claim{Requester: ap.Requester, Permission: ap.Permission, Target: ap.Target, PayloadHash: ap.PayloadHash},
				g.now().UTC().Truncate(time.Microsecond))
		}
		return rbac.Approval{}, err
	}
	return ap, nil
}

// MaxApprovalRequestsPerHour bounds the approval requests one requester
// may file in an hour of the clock: a user together with the API keys
// they created, or a key the host created on its own (see
// RequestApproval).
const MaxApprovalRequestsPerHour = 30

// approvalRequestLimit counts the approval requests of a budget
// (approvalBudget) under a key that names the hour (see
// requestsLimited): the MaxApprovalRequestsPerHour-th locks the key past
// the hour's end, and the key is forgotten an hour after its last
// request.
var approvalRequestLimit = auth.Limit{Max: MaxApprovalRequestsPerHour, ResetAfter: time.Hour, LockFor: time.Hour, MaxLockFor: time.Hour}

// requestsLimited counts a request for p about to be filed by by in by's
// budget (approvalBudget: for a key its creator's, shared with the
// creator and their other keys), in one atomic step of the throttle
// store, and refuses it when MaxApprovalRequestsPerHour were counted in
// that budget this hour already: ErrTooManyAttempts, recorded as a
// failed approval.requested (actor by) with reason rate_limited as often
// as recordActorRefusal allows for by. A store failure is
// ErrUnavailable.
func (g *Guard) requestsLimited(ctx context.Context, by Principal, p rbac.Permission) error {
	budget, err := g.approvalBudget(ctx, by)
	if err != nil {
		return err
	}
	now := g.now()
	k := sha256.Sum256([]byte(by.Tenant + "\x00" + budget.String()))
	key := "approval-requests:" + hex.EncodeToString(k[:16]) + ":" + strconv.FormatInt(now.Unix()/3600, 10)
	r, err := g.stores.Throttle.Reserve(ctx, key, now, approvalRequestLimit)
	if err != nil {
		return unavailable("throttle", err)
	}
	if r.Allowed {
		return nil
	}
	e := g.adminEvent(by, by.Tenant, audit.ApprovalRequested, "")
	e.Outcome, e.Reason = audit.Failure, ReasonRateLimited
	e.Meta = map[string]string{"permission": p.String()}
	if err := g.recordActorRefusal(ctx, e); err != nil {
		return err
	}
	return ErrTooManyAttempts
}

// approvalBudget returns the requester in whose hourly budget of approval
// requests a request filed by by counts (see requestsLimited): a user's
// own; for an API key created by a user, that user (its CreatedBy, read
// by keyCreatorOf), whatever the user's standing now (a key that may not
// act is refused after, by keyHolds); for a key the host created (its
// CreatedBy no user ID) the key itself, and for a key the tenant does not
// have (a Principal not made by AuthenticateAPIKey, refused after) too.
// A store failure is ErrUnavailable.
func (g *Guard) approvalBudget(ctx context.Context, by Principal) (rbac.Subject, error) {
	if by.Kind != KindAPIKey {
		return by.subject(), nil
	}
	creator, _, found, err := g.keyCreatorOf(ctx, by)
	switch {
	case err != nil:
		return rbac.Subject{}, err
	case found && isUserID(creator):
		return rbac.User(creator), nil
	}
	return by.subject(), nil
}

// requesterStillActive checks, once request ap is stored, that the user
// who filed it (by) is still active, and rejects it (with no Decider,
// unrecorded) when they are not, as creatorStillActive revokes an API
// key: a deactivation or deletion that ran while the request was under
// way may have withdrawn the user's requests (rejectRequestsOf) before ap
// was stored. It writes the status first and withdraws after, so either
// its withdrawal finds ap or this check finds the new status. A requester
// deactivated or gone gives ErrUnauthenticated; a store failure rejects ap
// too and gives ErrUnavailable. A key's request is left to its key:
// revoked with its creator, it consumes nothing.
func (g *Guard) requesterStillActive(ctx context.Context, by Principal, ap rbac.Approval) error {
	if by.Kind != KindUser {
		return nil
	}
	err := g.stillActive(ctx, by.Tenant, by.UserID)
	if err != nil {
		_, _ = g.stores.Approvals.DecideApproval(context.WithoutCancel(ctx), ap.Tenant, ap.ID, rbac.Subject{},
			rbac.StatusRejected, g.now().UTC().Truncate(time.Microsecond))
	}
	return err
}

// notOwnKeysRequest returns rbac.ErrSelfApproval when approval id was
// requested by an API key that the user by created. The check is made
// before the store's atomic decision, and it is as good as part of it:
// an approval's requester and a key's creator never change, so nothing
// can make the answer different by the time the decision is stored. A key
// unknown to the tenant (purged: revoked or expired long ago, it can
// consume no approval) has no creator to refuse.
func (g *Guard) notOwnKeysRequest(ctx context.Context, by Principal, id string) error {
	if g.stores.APIKeys == nil {
		return nil // no key can have filed a request
	}
	ap, err := g.approvals.Get(ctx, by.Tenant, id)
	if err != nil || ap.Requester.Kind != rbac.KindKey {
		return err
	}
	k, found, err := g.apiKeyByID(ctx, by.Tenant, ap.Requester.ID)
	if err != nil {
		return err
	}
	if found && k.CreatedBy != "" && k.CreatedBy == by.UserID {
		return rbac.ErrSelfApproval
	}
	return nil
}

// apiKeyByID returns the tenant's API key with that ID, from one read of
// the tenant's keys (the store has no look-up by ID); found is false when
// the tenant has no such key, or there is no API key store. A store
// failure is ErrUnavailable.
func (g *Guard) apiKeyByID(ctx context.Context, tenant, id string) (k auth.APIKey, found bool, err error) {
	if g.stores.APIKeys == nil {
		return auth.APIKey{}, false, nil
	}
	ks, err := g.stores.APIKeys.ListAPIKeys(ctx, tenant)
	if err != nil {
		return auth.APIKey{}, false, unavailable("list api keys", err)
	}
	i := slices.IndexFunc(ks, func(k auth.APIKey) bool { return k.ID == id })
	if i < 0 {
		return auth.APIKey{}, false, nil
	}
	return ks[i], true, nil
}

// deciderActive is rbac.ApprovalConfig.DeciderActive for users: an
// approval given by a user since deactivated or deleted no longer stands
// (rbac.ErrApproverRevoked), nor, as for its requester (requesterStands),
// does one given before the approver's last reactivation
// (User.ReactivatedAt): a reactivation brings back no approval the
// deactivation took away. Nor does one whose approver's password is
// marked compromised (User.PasswordExpired, set by ExpirePassword): it
// may have been given by whoever holds the password. Nor does one given
// at or before the approver's last change of password
// (User.PasswordChangedAt: by the user or a reset link; the password a
// user is created with, set at CreatedAt, is no change): a new password
// withdraws the approvals given with the old one, so that whoever holds a
// stolen password cannot bring their approvals back by changing it once
// it is marked. A first password, too (a user created without one, for
// SSO, who chooses one from a reset link), withdraws the approvals given
// before it, through SSO: that is kept, as it fails closed and a request
// lasts a day by default (rbac.ApprovalConfig.TTL; they approve it again).
// A rehash at sign-in leaves PasswordChangedAt as it is. A store failure
// is returned as it is (Consume returns it; ConsumeApproval makes it
// ErrUnavailable).
func deciderActive(users auth.UserStore) func(context.Context, string, rbac.Approval) error {
	return func(ctx context.Context, tenant string, ap rbac.Approval) error {
		if ap.Decider.Kind != rbac.KindUser {
			return nil
		}
		u, err := users.User(ctx, tenant, ap.Decider.ID)
		switch {
		case errors.Is(err, auth.ErrNotFound) || err == nil && u.Status != auth.StatusActive:
			return rbac.ErrApproverRevoked
		case err != nil:
			return fmt.Errorf("load approver: %w", err)
		case u.PasswordExpired:
			return rbac.ErrApproverRevoked
		case !u.ReactivatedAt.IsZero() && !ap.DecidedAt.After(u.ReactivatedAt):
			return rbac.ErrApproverRevoked
		case u.PasswordChangedAt.After(u.CreatedAt) && !ap.DecidedAt.After(u.PasswordChangedAt):
			return rbac.ErrApproverRevoked
		}
		return nil
	}
}

// requesterStands is rbac.ApprovalConfig.RequesterStands for users: a
// deactivation rejects its user's pending requests (rejectRequestsOf),
// not those already approved, which the user could consume once
// reactivated. So an approved request filed before the requester's last
// reactivation (User.ReactivatedAt) no longer stands (rbac.ErrWithdrawn),
// nor does one of a requester no longer active or gone. An API key's
// requests end with the key (a deactivation revokes its creator's keys).
// A store failure is returned as it is (ConsumeApproval makes it
// ErrUnavailable).
func requesterStands(users auth.UserStore) func(context.Context, string, rbac.Approval) error {
	return func(ctx context.Context, tenant string, ap rbac.Approval) error {
		if ap.Requester.Kind != rbac.KindUser {
			return nil
		}
		u, err := users.User(ctx, tenant, ap.Requester.ID)
		switch {
		case errors.Is(err, auth.ErrNotFound) || err == nil && u.Status != auth.StatusActive:
			return rbac.ErrWithdrawn
		case err != nil:
			return fmt.Errorf("load requester: %w", err)
		case !u.ReactivatedAt.IsZero() && !ap.CreatedAt.After(u.ReactivatedAt):
			return rbac.ErrWithdrawn
		}
		return nil
	}
}

// ConsumeApproval uses an approved request, once, to carry out the action
// it approved: by must be the requester, and permission, target and
// payload must be exactly those approved. by must be a user or an API key
// (ErrForbidden otherwise, recorded as access.denied with reason
// invalid_principal, as for RequestApproval). The requester must still
// hold the permission (an API key within its creator's permissions, as
// for Authorize: ErrForbidden), and the approver must still be an active
// user holding the section's approve permission: an approval given by a
// user since deactivated (even if reactivated since: a reactivation
// brings no approval back), deleted or stripped of that permission no
// longer stands (rbac.ErrApproverRevoked; the approval is left
// unconsumed), nor one given by a user whose password is marked
// compromised (ExpirePassword), nor one given before the user's password
// was last changed or reset (a new password withdraws the approvals given
// with the old one: changing a marked password brings none back; a first
// password, chosen by a user created without one, withdraws those given
// before it, through SSO, too). Nor
// does a request filed before its requester was last
// reactivated: a deactivation withdraws the user's requests, approved
// ones too (rbac.ErrWithdrawn, left unconsumed). Each refusal is recorded
// as a failed approval.consumed (reasons no_permission, approver_revoked,
// withdrawn, as for the other refusals), the first 30 a minute for each
// requester and reason, as ApproveRequest records its refusals. An id
// that is no approval ID in form (rbac.CheckApprovalID) is bad input: an
// *rbac.InputError, not recorded. A consumption that cannot be recorded
// in the audit log stands (the approval is used up, and no rolled-back
// approval could be used twice): it returns ErrUnavailable, and the host
// must not carry out the action. A store failure before the consumption
// is ErrUnavailable and leaves the approval unconsumed.
func (g *Guard) ConsumeApproval(ctx context.Context, by Principal, id, permission, target string, payload []byte) (rbac.Approval, error) {
	if err := g.needRBAC(); err != nil {
		return rbac.Approval{}, err
	}
	p, err := rbac.ParsePermission(permission)
	if err != nil {
		return rbac.Approval{}, err
	}
	if by.Kind != KindUser && by.Kind != KindAPIKey {
		// Only a user or a key consumes, as only they request.
		return rbac.Approval{}, g.refused(ctx, by, p.Section, p.Action, reasonInvalidPrincipal)
	}
	// A malformed ID is bad input, refused before anything is recorded:
	// it would be the event's target.
	if err := rbac.CheckApprovalID(id); err != nil {
		return rbac.Approval{}, err
	}
	if err := g.passwordGate(ctx, by, p.Section, p.Action); err != nil {
		return rbac.Approval{}, err
	}
	c := rbac.Claim{Requester: by.subject(), Permission: p, Target: target, PayloadHash: PayloadHash(payload)}
	if err := g.keyHolds(ctx, by, p); err != nil {
		return rbac.Approval{}, g.approvalFailed(ctx, by, audit.ApprovalConsumed, id, err)
	}
	ap, err := g.approvals.Consume(ctx, by.Tenant, id, c)
	if err != nil {
		return rbac.Approval{}, g.approvalFailed(ctx, by, audit.ApprovalConsumed, id, err)
	}
	e := g.adminEvent(by, by.Tenant, audit.ApprovalConsumed, id)
	e.Meta = map[string]string{"permission": permission, "target": clip(target, rbac.MaxTargetLen)}
	return ap, g.record(ctx, e)
}

// Approvals lists the approval requests of by's tenant that by may see,
// selected by q (see rbac.ApprovalQuery), newest first: those by asked
// for, and, for a user, those of every section whose approve permission
// the user holds now (the requests ApproveRequest lets them decide, and
// the history of those). Nothing else is listed (SECURITY-CHECKLIST RB-1:
// the default is deny): a caller with neither gets an empty list, which
// is not a refusal and records nothing. An API key lists only its own
// requests (keys never approve). The store is read page by page until
// q.Limit visible requests (100 if 0, at most 1000) are found or it has
// no more, so paging with Before works as on the store. The caller must be
// a user or a key (ErrForbidden, recorded, otherwise); a session whose
// password must be changed gets ErrPasswordChangeRequired. A store failure
// is ErrUnavailable, never a partial list.
func (g *Guard) Approvals(ctx context.Context, by Principal, q rbac.ApprovalQuery) ([]rbac.Approval, error) {
	if err := g.needRBAC(); err != nil {
		return nil, err
	}
	if by.Kind != KindUser && by.Kind != KindAPIKey {
		return nil, g.refused(ctx, by, "", rbac.Read, reasonInvalidPrincipal)
	}
	if err := g.passwordGate(ctx, by, "", rbac.Read); err != nil {
		return nil, err
	}
	var perms rbac.Perms // what by may approve: nothing for a key
	if by.Kind == KindUser {
		var err error
		if perms, err = g.rbac.Permissions(ctx, by.Tenant, by.subject()); err != nil {
			return nil, rbacErr("permissions", err)
		}
	}
	visible := func(ap rbac.Approval) bool {
		return ap.Requester == by.subject() || perms.Has(ap.Permission.Section, rbac.Approve)
	}
	limit := min(cmp.Or(q.Limit, 100), 1000)
	page := q
	page.Limit = limit
	var out []rbac.Approval
	for {
		as, err := g.approvals.List(ctx, by.Tenant, page)
		if err != nil {
			return nil, rbacErr("approvals", err)
		}
		for _, ap := range as {
			if visible(ap) {
				out = append(out, ap)
				if len(out) == limit {
					return out, nil
				}
			}
		}
		if len(as) < page.Limit {
			return out, nil
		}
		page.Before = as[len(as)-1].ID
	}
}

// Reasons (Meta reason) of an approval.rejected event by which a
// deactivation or a deletion withdrew the requests its user filed.
const (
	reasonRequesterDeactivated = "requester_deactivated"
	reasonRequesterDeleted     = "requester_deleted"
)

// rejectRequestsOf withdraws the four-eyes requests user id filed that
// are still pending: each is rejected by the system (no Decider, as
// RequestApproval rejects one it cannot record) and recorded as
// approval.rejected by by, Meta reason (requesterDeactivated or
// requesterDeleted), permission and requester. A deactivation and a
// deletion call it once the user's status is written: no approver is then
// asked to approve the action of someone removed, and a reactivation
// brings no request back. A request decided or expired meanwhile is left
// as it is. It returns the number rejected; a store failure is
// ErrUnavailable (those rejected so far are recorded first).
func (g *Guard) rejectRequestsOf(ctx context.Context, by Principal, tenant, id, reason string) (int, error) {
	if g.approvals == nil {
		return 0, nil
	}
	sub := rbac.User(id)
	var mine []rbac.Approval
	q := rbac.ApprovalQuery{Status: rbac.StatusPending, Limit: 1000}
	for {
		as, err := g.approvals.List(ctx, tenant, q)
		if err != nil {
			return 0, rbacErr("approvals", err)
		}
		for _, ap := range as {
			if ap.Requester == sub {
				mine = append(mine, ap)
			}
		}
		if len(as) < q.Limit {
			break
		}
		q.Before = as[len(as)-1].ID
	}
	now := g.now().UTC().Truncate(time.Microsecond)
	var evs []audit.Event
	var ferr error
	for _, ap := range mine {
		_, err := g.stores.Approvals.DecideApproval(ctx, tenant, ap.ID, rbac.Subject{}, rbac.StatusRejected, now)
		if errors.Is(err, rbac.ErrNotPending) || errors.Is(err, rbac.ErrExpired) || errors.Is(err, rbac.ErrNotFound) {
			continue // decided, or expired, meanwhile
		}
		if err != nil {
			ferr = rbacErr("reject request", err)
			break
		}
		e := g.adminEvent(by, tenant, audit.ApprovalRejected, ap.ID)
		e.Meta = map[string]string{"reason": reason, "permission": ap.Permission.String(), "requester": sub.String()}
		evs = append(evs, e)
	}
	if len(evs) > 0 {
		if err := g.record(ctx, evs...); err != nil {
			return len(evs), err
		}
	}
	return len(evs), ferr
}

// approvalFailed records a refused approval step and returns the error.
// Every such refusal can be repeated at will by a signed-in actor (the
// same call on the same ID, or on made-up ones), none changes anything:
// the first 30 a minute of each actor, action and reason are recorded
// (recordActorRefusal), so a loop of one reason neither floods the log
// nor silences another reason, or another actor. A refusal that matters
// (self_approval, mismatch, approver_revoked) is its own kind: its first
// is on record however many of another kind came before it, and its
// repeats in the minute are the same signal. The error is returned
// whether or not it was recorded. A store failure is ErrUnavailable,
// not recorded; an error the caller did not cause and that names no
// refusal (reason error, see approvalReason: a store reporting a
// duplicate approval ID, say) is recorded and returned as ErrUnavailable
// too, so that it fails closed and is never taken for the caller's bad
// input.
func (g *Guard) approvalFailed(ctx context.Context, by Principal, action audit.Action, id string, err error) error {
	err = rbacErr("approval", err)
	if errors.Is(err, ErrUnavailable) {
		return err
	}
	e := g.adminEvent(by, by.Tenant, action, id)
	e.Outcome, e.Reason = audit.Failure, approvalReason(err)
	if e.Reason == reasonError {
		err = unavailable("approval", err)
	}
	if rerr := g.recordActorRefusal(ctx, e); rerr != nil {
		return rerr
	}
	return err
}

// reasonError is the reason of a refused approval step whose error is
// none of the refusals approvalReason knows: a fault of Guard's or of a
// store, not of the caller.
const reasonError = "error"

// approvalReason is the reason recorded for a refused approval step: the
// refusal's own (self_approval, not_pending, …, no_permission for
// ErrForbidden, conflict for ErrConflict), bad_input for a malformed
// request (*rbac.InputError, *InputError), else reasonError.
func approvalReason(err error) string {
	for _, c := range []struct {
		err    error
		reason string
	}{{rbac.ErrSelfApproval, "self_approval"}, {rbac.ErrNotPending, "not_pending"}, {rbac.ErrExpired, "expired"},
		{rbac.ErrNotApproved, "not_approved"}, {rbac.ErrConsumed, "consumed"}, {rbac.ErrMismatch, "mismatch"},
		{rbac.ErrNotFound, "not_found"}, {rbac.ErrApproverRevoked, "approver_revoked"}, {rbac.ErrWithdrawn, "withdrawn"},
		{ErrForbidden, "no_permission"}, {ErrConflict, "conflict"}} {
		if errors.Is(err, c.err) {
			return c.reason
		}
	}
	var rie *rbac.InputError
	var ie *InputError
	if errors.As(err, &rie) || errors.As(err, &ie) {
		return "bad_input"
	}
	return reasonError
}
