package guard

import (
	"context"
	"net/netip"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/session"
)

// PrincipalKind says who a Principal is.
type PrincipalKind uint8

const (
	// KindUser is a person signed in with a session.
	KindUser PrincipalKind = iota + 1
	// KindSystem is the host application itself (bootstrap, jobs); it may
	// act on any tenant. Build one with System.
	KindSystem
	// KindAPIKey is a program using one of a tenant's API keys.
	KindAPIKey
)

// Principal is who makes a request: a signed-in user, or the system.
type Principal struct {
	Kind    PrincipalKind
	Tenant  string
	UserID  string
	Session session.Hash // zero for the system
	Flags   uint32       // the session's flags (FlagPasswordExpired…)
	// AuthAt is when the user last fully authenticated in this session (at
	// sign-in, or at Reauthenticate): step-up checks use it. For single
	// sign-on it is the sign-in, counted only if the IdP's AuthnInstant was
	// recent then (see FlagStaleAuthn).
	AuthAt time.Time
	// KeyID is the API key's ID (KindAPIKey only).
	KeyID string
	// keyCreator is the CreatedBy of the API key (KindAPIKey only), and
	// keyStanding its creator's standing, as read when the key was
	// authenticated, if keyKnown; otherwise they are read from the store
	// when needed (see keyBound).
	keyCreator  string
	keyStanding creatorStanding
	keyKnown    bool
	// Addr is the client address of the request (resolved by
	// AuthenticateRequest, given to AuthenticateFrom and
	// AuthenticateAPIKey); IP is the same as text, for audit events, with
	// the request's UserAgent.
	Addr      netip.Addr
	IP        string
	UserAgent string
}

// Session flags.
const (
	// FlagPasswordExpired marks a session whose login used a password
	// that an administrator marked compromised (ExpirePassword), one older
	// than the tenant's PasswordMaxAge, or one on the blocklist of common
	// passwords. Such a session authenticates (so the host can show a
	// change-password page), may change its password, sign out and read
	// and look after its own account, but every permission check refuses
	// it: Require and RequireMFA answer 403 with "Guard-Reason:
	// password_expired", Authorize and the admin functions return
	// ErrPasswordChangeRequired, Can false with that error. The host sends
	// the user to change it: ChangePasswordAndRotate gives the session a
	// new token without the flag (ChangePassword ends it, and the user
	// signs in again); a reset ends it too.
	FlagPasswordExpired uint32 = 1 << iota
	// FlagMFA marks a session whose sign-in, or latest Reauthenticate,
	// included a second factor: an authenticator app, an SMS code or a
	// recovery code of a user with one of those; or a single sign-on
	// whose IdP asserted a multi-factor login the tenant trusts (an
	// AuthnContextClassRef listed in sso.Connection.MFAAuthnContexts).
	// An email code does not count (it is of lower assurance: NIST SP
	// 800-63B §5.1.3.1 does not accept email as an out-of-band
	// authenticator), nor does a recovery code of a user whose only
	// factors are email ones (it counts as far as the user's factors
	// would: see CompleteLogin). The flag says how the user
	// signed in, not when: a single sign-on may carry both FlagMFA and
	// FlagStaleAuthn.
	FlagMFA
	// FlagMustEnrol marks a session of a user who has no second factor
	// while the tenant requires one, inside the tenant's MFAGrace: the host
	// should send the user to enrol.
	FlagMustEnrol
	// FlagBreakGlass marks a session of the break-glass owner signing in
	// with a password while the tenant requires SSO.
	FlagBreakGlass
	// FlagSSO marks a session created by single sign-on.
	FlagSSO
	// FlagStaleAuthn marks a single sign-on session whose IdP
	// authenticated the user (the assertion's AuthnInstant) before the
	// sign-in, reusing a session of its own: the sign-in is not a recent
	// authentication, so step-up checks refuse it until the user signs in
	// again with SSOStart.ForceAuthn or Reauthenticate (SECURITY-CHECKLIST
	// SAML-50). While the tenant requires SSO, Reauthenticate refuses the
	// password of all but the break-glass owner (ErrSSORequired): ForceAuthn
	// is then the only way.
	FlagStaleAuthn
	// FlagEmailCode marks a session whose sign-in's second factor was an
	// email code (which sets no FlagMFA), or a recovery code of a user
	// whose only factors are email ones: it meets a tenant's RequireMFA
	// only while the tenant's MFAAllowEmail is on.
	FlagEmailCode
)

// MaxSystemLabelBytes is the most of a System label that audit events
// record.
const MaxSystemLabelBytes = 256

// System returns the principal of the host application, with a label that
// is recorded as the actor of audit events (e.g. "bootstrap", "cron"):
// made valid UTF-8 and clipped to MaxSystemLabelBytes there, as the
// other text a host passes is.
func System(label string) Principal {
	return Principal{Kind: KindSystem, UserID: label}
}

// SessionID is the public identifier of the principal's session ("" for the system).
func (p Principal) SessionID() string {
	if p.Session.IsZero() {
		return ""
	}
	return p.Session.String()
}

// PasswordExpired reports whether the principal's login used a password
// that must be changed (FlagPasswordExpired): until it is, every
// permission check refuses the principal (ErrPasswordChangeRequired).
func (p Principal) PasswordExpired() bool { return p.Flags&FlagPasswordExpired != 0 }

// MustEnrol reports whether the principal should be sent to enrol a second
// factor (FlagMustEnrol).
func (p Principal) MustEnrol() bool { return p.Flags&FlagMustEnrol != 0 }

// requireRecentAuth returns nil if p may take an action that needs a
// recent authentication (a step-up): the system always may; a user who
// authenticated within the step-up window may, else ErrStepUpRequired.
// An API key never may, whatever its roles: a step-up is a person's
// proof, which a key cannot give. It is refused with ErrForbidden,
// recorded as access.denied with reason api_key (s and a name the action,
// as for a permission check; ErrUnavailable if the refusal cannot be
// recorded). Any other principal is ErrUnauthenticated.
func (g *Guard) requireRecentAuth(ctx context.Context, p Principal, s rbac.Section, a rbac.Action) error {
	switch p.Kind {
	case KindSystem:
		return nil
	case KindUser:
		if p.Flags&FlagStaleAuthn != 0 {
			return ErrStepUpRequired
		}
		if age := g.now().Sub(p.AuthAt); age >= 0 && age <= g.stepUp {
			return nil
		}
		return ErrStepUpRequired
	case KindAPIKey:
		return g.denied(ctx, p, s, a, reasonAPIKey)
	}
	return ErrUnauthenticated
}

// requireRecentAuthOrKey is requireRecentAuth for the calls that change
// who holds which role, or what a role allows (GrantRole, RevokeRole,
// DefineRole, DeleteRole, CreateUser with roles): a user needs a recent
// authentication (ErrStepUpRequired) and the system passes, as there, but
// an API key passes too. Provisioning automation grants roles with keys, a
// key's changes are already bounded by what it may grant (its roles, and
// its creator's: see permsOf), and a key cannot give a step-up, so asking
// it for one would end that use rather than secure it.
func (g *Guard) requireRecentAuthOrKey(ctx context.Context, p Principal) error {
	if p.Kind == KindAPIKey {
		return nil
	}
	return g.requireRecentAuth(ctx, p, rbac.Users, rbac.Manage)
}

// roleStepUp is requireRecentAuthOrKey for by about to change roles with
// perms (see permsOf), a change that takes need (users:manage, or
// api-keys:manage for a key's grants: rbac.GrantPermission). A principal
// whose perms lack need is let through, so that the change is refused for
// the permission as before (ErrForbidden, recorded as a failed event of
// the change with reason no_permission), not sent to step up for a change
// it may not make at all.
func (g *Guard) roleStepUp(ctx context.Context, by Principal, perms rbac.Perms, need rbac.Permission) error {
	if !perms.Has(need.Section, need.Action) {
		return nil
	}
	return g.requireRecentAuthOrKey(ctx, by)
}

// Actions named by the refusals of the step-up-gated calls on the
// caller's own account, which need no permission (see requireRecentAuth):
// enrolling a second factor or making recovery codes, changing the email
// address.
const (
	actionMFA   rbac.Action = "mfa"
	actionEmail rbac.Action = "email"
)

func (p Principal) actor() audit.Actor {
	switch p.Kind {
	case KindSystem:
		return audit.Actor{Kind: audit.ActorSystem, ID: clip(p.UserID, MaxSystemLabelBytes)}
	case KindAPIKey:
		return audit.Actor{Kind: audit.ActorAPIKey, ID: p.KeyID}
	}
	return audit.Actor{Kind: audit.ActorUser, ID: p.UserID}
}

type principalKey struct{}

// HasMFA reports whether p is a user session whose sign-in, or latest
// Reauthenticate, included a second factor other than an email code, or
// whose single sign-on the IdP asserted as multi-factor with a context
// the tenant trusts (FlagMFA): authenticator assurance level 2. See
// RequireMFA.
func (p Principal) HasMFA() bool { return p.Kind == KindUser && p.Flags&FlagMFA != 0 }

// PrincipalFrom returns the principal that Middleware stored in ctx.
func PrincipalFrom(ctx context.Context) (Principal, bool) {
	p, ok := ctx.Value(principalKey{}).(*Principal)
	if !ok || p == nil {
		return Principal{}, false
	}
	return *p, true
}

// WithPrincipal returns a copy of ctx carrying p; Middleware uses it, and
// tests of host handlers may too.
func WithPrincipal(ctx context.Context, p Principal) context.Context {
	return context.WithValue(ctx, principalKey{}, &p)
}
