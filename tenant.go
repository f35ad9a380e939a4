package guard

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/session"
)

// Tenant is a customer organisation (a sub-account): its users, sessions and
// audit log are fenced off from every other tenant's.
type Tenant struct {
	ID        string
	Name      string
	Policy    Policy
	Version   int64 // incremented by every policy change; 1 at creation
	CreatedAt time.Time
	// LastReview is when an access review of the tenant was recorded,
	// kept here (TenantStore.MarkReviewed) by PurgeAudit before it purges
	// the newest review's record, so that the review schedule survives
	// audit retention; zero if no purge has had to.
	LastReview time.Time
	// IdPChangedAt is when the tenant's IdP was last replaced (another
	// entity ID) or removed, kept here (TenantStore.MarkIdPChanged) by
	// SetSSOConnection and DeleteSSOConnection; zero if never. The
	// session check ends every single sign-on session (FlagSSO) created
	// at or before it: the old IdP vouched for those.
	IdPChangedAt time.Time
}

// Policy is a tenant's security policy. Zero fields take the defaults of
// the Guard's Config (Config.Defaults), but for the yes/no fields,
// BreakGlassUser and MFARequiredSince, which no default sets; the
// effective values are those returned by Guard.EffectivePolicy.
type Policy struct {
	// SessionLimit is the number of concurrent sessions a user may have
	// (the seeds' "one concurrent login session per user" is 1, the
	// default). 0 takes the default. Lowering it applies to open sessions
	// too: SetPolicy ends each user's oldest sessions beyond the new
	// limit (by creation time; the newest are kept), whatever
	// OnSessionLimit says, and Maintain ends any it missed. Raising it
	// ends nothing.
	SessionLimit int `json:"session_limit,omitempty"`
	// OnSessionLimit says what a login beyond the limit does: end the
	// user's oldest session (EndOldestSession, the default) or be refused
	// (RefuseNewSession). "" takes the default. Either way, a session this
	// policy has already ended (past a lowered IdleTimeout or
	// SessionLifetime, short of RequireMFA or RequireSSO, or signed in by
	// a replaced IdP), which a request would find ended, does not count:
	// a login at the limit ends it first, recorded as that request would
	// record it (session.expired, or session.revoked by the system).
	OnSessionLimit string `json:"on_session_limit,omitempty"`
	// IdleTimeout ends a session after this long without a request
	// (default 24 h). Lowering it applies to open sessions too (at their
	// next request, within PolicyCacheTTL); raising it applies to
	// sessions created after the change. It may not be longer than
	// SessionLifetime, either being a default (see Validate).
	IdleTimeout time.Duration `json:"idle_timeout,omitempty"`
	// SessionLifetime is the absolute life of a session (default 7 days).
	// Like IdleTimeout, lowering it applies to open sessions too. A
	// step-up (Reauthenticate) does not restart it; a lifetime lowered
	// after a step-up is measured from the step-up.
	SessionLifetime time.Duration `json:"session_lifetime,omitempty"`
	// PasswordMinLength in code points (at least 8; default 8).
	PasswordMinLength int `json:"password_min_length,omitempty"`
	// PasswordHistory refuses a new password equal to one of the last N.
	// The current password is refused whatever N, 0 included: a change
	// (ChangePassword, ResetPassword) must change it.
	PasswordHistory int `json:"password_history,omitempty"`
	// PasswordMaxAge flags a login whose password is older than this as
	// needing a change (LoginResult.PasswordExpired): its session may do
	// nothing but change it (see FlagPasswordExpired). 0: no maximum age,
	// which is what NIST SP 800-63B recommends.
	PasswordMaxAge time.Duration `json:"password_max_age,omitempty"`

	// RequireMFA makes a second factor mandatory: a user without one must
	// enrol one at their next login before they get a session (after
	// MFAGrace, if set). Needs Config.MFA. Once MFAGrace is over,
	// sessions without a second factor (FlagMFA; nor SSO) that were opened
	// before it was switched on, or inside the grace period, end at their
	// next request (ErrPolicyChanged), and so do email-code sessions
	// (FlagEmailCode) whenever they were opened, unless MFAAllowEmail is
	// on.
	RequireMFA bool `json:"require_mfa,omitempty"`
	// MFAAllowEmail lets email codes satisfy RequireMFA. Off by default:
	// email is of lower assurance (NIST SP 800-63B does not accept it as an
	// out-of-band authenticator). Off, a user who signs in with an email
	// code is then asked to enrol an authenticator app before getting a
	// session (inside MFAGrace: a session flagged FlagMustEnrol).
	MFAAllowEmail bool `json:"mfa_allow_email,omitempty"`
	// MFAGrace lets users without a factor keep signing in without one, and
	// be prompted to enrol (FlagMustEnrol), for this long after RequireMFA
	// was switched on. 0: they must enrol at their next login.
	MFAGrace time.Duration `json:"mfa_grace,omitempty"`
	// MFARequiredSince is when RequireMFA was switched on (at CreateTenant
	// or by SetPolicy; zero while it is off). CreateTenant and SetPolicy
	// set it; a value given by the caller is ignored.
	MFARequiredSince time.Time `json:"mfa_required_since,omitzero"`

	// RequireSSO refuses password sign-in to the tenant's users, except
	// the break-glass owner (BreakGlassUser), who must then pass a second
	// factor; every such sign-in is recorded (login.break_glass) and the
	// session flagged. Needs Config.SSO and an IdP connection. Open
	// sessions that are not SSO ones end at their next request
	// (ErrPolicyChanged), except the break-glass owner's.
	RequireSSO bool `json:"require_sso,omitempty"`
	// BreakGlassUser is the ID of the owner who may still sign in with a
	// password (and MFA) when RequireSSO is on, in case the IdP fails. It
	// must be an active owner with a password and a confirmed second
	// factor when the policy is set, and at sign-in still an owner with a
	// confirmed factor (else the sign-in is refused like any other,
	// ErrSSORequired: a password never enrols a factor here). While RequireSSO is on, the user
	// cannot lose the owner role, be deactivated or deleted, nor lose
	// their last confirmed second factor, even to removals made at once
	// (ErrBreakGlassUser). An owner made by single sign-on has no
	// password: they choose one from a reset link (ForgotPassword, which
	// needs Config.Recovery) before SSO is required, since while it is
	// only the break-glass owner is mailed one. The password is required
	// of a policy that switches RequireSSO on or names another owner: a
	// stored policy naming an owner without one (as an older Guard
	// accepted) does not stop changes to the other settings. Whether or
	// not RequireSSO is on, it must be
	// valid UTF-8 of at most auth.MaxIDBytes bytes without a NUL byte,
	// as user IDs are (see Validate).
	BreakGlassUser string `json:"break_glass_user,omitempty"`

	// ReviewEvery is how often an access review is due (default 14 days).
	ReviewEvery time.Duration `json:"review_every,omitempty"`
	// DormantAfter: a user who has not signed in for this long, nor been
	// reactivated, is dormant in access reviews (default 30 days).
	DormantAfter time.Duration `json:"dormant_after,omitempty"`
	// AutoDeactivateDormant lets DeactivateDormant (run by the host on a
	// schedule, or by Maintain) deactivate dormant users.
	AutoDeactivateDormant bool `json:"auto_deactivate_dormant,omitempty"`
	// AuditRetention is how long audit events are kept: Maintain purges
	// older ones, leaving a checkpoint so the chain still verifies. 0 (the
	// default) keeps them for ever; otherwise at least 30 days.
	AuditRetention time.Duration `json:"audit_retention,omitempty"`
}

// Values of Policy.OnSessionLimit.
const (
	EndOldestSession = "end_oldest"
	RefuseNewSession = "refuse_new"
)

// Policy bounds, checked by Validate.
const (
	MaxSessionLimit    = 100
	MaxPasswordHistory = 24
	minIdleTimeout     = time.Minute
	// maxSessionTime bounds the idle timeout, the session lifetime and
	// the password's maximum age: five years, far from where a time
	// added to it would overflow.
	maxSessionTime = 5 * 366 * 24 * time.Hour
)

// Validate reports whether p is acceptable, as a *PolicyError naming the
// first field that is not.
//
// An IdleTimeout longer than the SessionLifetime is refused (every session
// would end at the lifetime before the idle timeout could apply). A zero
// field takes a default Validate does not know, so Validate compares the
// two only when both are set; SetPolicy, CreateTenant and New compare them
// again with the defaults filled in, naming IdleTimeout, or SessionLifetime
// when the idle timeout is the default one.
func (p Policy) Validate() error {
	switch {
	case p.SessionLimit < 0 || p.SessionLimit > MaxSessionLimit:
		return &PolicyError{Field: "SessionLimit", Reason: fmt.Sprintf("must be between 0 and %d", MaxSessionLimit)}
	case p.OnSessionLimit != "" && p.OnSessionLimit != EndOldestSession && p.OnSessionLimit != RefuseNewSession:
		return &PolicyError{Field: "OnSessionLimit", Reason: `must be "", "end_oldest" or "refuse_new"`}
	case p.IdleTimeout > maxSessionTime:
		return &PolicyError{Field: "IdleTimeout", Reason: "must be at most five years"}
	case p.SessionLifetime > maxSessionTime:
		return &PolicyError{Field: "SessionLifetime", Reason: "must be at most five years"}
	case p.PasswordMaxAge > maxSessionTime:
		return &PolicyError{Field: "PasswordMaxAge", Reason: "must be at most five years"}
	case p.IdleTimeout != 0 && p.IdleTimeout < minIdleTimeout:
		return &PolicyError{Field: "IdleTimeout", Reason: "must be at least one minute"}
	case p.SessionLifetime != 0 && p.SessionLifetime < minIdleTimeout:
		return &PolicyError{Field: "SessionLifetime", Reason: "must be at least one minute"}
	case p.IdleTimeout != 0 && p.SessionLifetime != 0 && p.IdleTimeout > p.SessionLifetime:
		return &PolicyError{Field: "IdleTimeout", Reason: "must not be longer than the session lifetime"}
	case p.PasswordMinLength != 0 && p.PasswordMinLength < 8:
		return &PolicyError{Field: "PasswordMinLength", Reason: "must be at least 8 (NIST SP 800-63B)"}
	case p.PasswordMinLength > 64:
		return &PolicyError{Field: "PasswordMinLength", Reason: "must be at most 64"}
	case p.PasswordHistory < 0 || p.PasswordHistory > MaxPasswordHistory:
		return &PolicyError{Field: "PasswordHistory", Reason: fmt.Sprintf("must be between 0 and %d", MaxPasswordHistory)}
	case p.PasswordMaxAge < 0:
		return &PolicyError{Field: "PasswordMaxAge", Reason: "must not be negative"}
	case p.MFAGrace < 0:
		return &PolicyError{Field: "MFAGrace", Reason: "must not be negative"}
	case p.MFAGrace > 90*24*time.Hour:
		return &PolicyError{Field: "MFAGrace", Reason: "must be at most 90 days"}
	case p.ReviewEvery != 0 && (p.ReviewEvery < 24*time.Hour || p.ReviewEvery > 366*24*time.Hour):
		return &PolicyError{Field: "ReviewEvery", Reason: "must be between a day and a year"}
	case p.DormantAfter != 0 && (p.DormantAfter < 24*time.Hour || p.DormantAfter > 5*366*24*time.Hour):
		return &PolicyError{Field: "DormantAfter", Reason: "must be between a day and five years"}
	case p.AuditRetention != 0 && (p.AuditRetention < 30*24*time.Hour || p.AuditRetention > 100*366*24*time.Hour):
		return &PolicyError{Field: "AuditRetention", Reason: "must be 0 (for ever) or between 30 days and 100 years"}
	case len(p.BreakGlassUser) > auth.MaxIDBytes || !utf8.ValidString(p.BreakGlassUser) || strings.IndexByte(p.BreakGlassUser, 0) >= 0:
		// Checked whether or not RequireSSO is on: the policy is
		// stored, and recorded, either way. No user ID holds a NUL
		// byte, which not every backend can keep (PostgreSQL's jsonb
		// refuses it).
		return &PolicyError{Field: "BreakGlassUser", Reason: fmt.Sprintf("must be a user ID: valid UTF-8 of at most %d bytes, without a NUL byte", auth.MaxIDBytes)}
	}
	return nil
}

// validateWith is Validate, then the comparison of IdleTimeout with
// SessionLifetime with p's zero fields taken from the defaults d.
func (p Policy) validateWith(d Policy) error {
	if err := p.Validate(); err != nil {
		return err
	}
	if e := p.withDefaults(d); e.IdleTimeout > e.SessionLifetime {
		if p.IdleTimeout == 0 {
			return &PolicyError{Field: "SessionLifetime", Reason: "must not be shorter than the idle timeout"}
		}
		return &PolicyError{Field: "IdleTimeout", Reason: "must not be longer than the session lifetime"}
	}
	return nil
}

// PolicyError reports an unacceptable tenant policy or Config field.
type PolicyError struct {
	Field, Reason string
}

func (e *PolicyError) Error() string { return "guard: invalid " + e.Field + ": " + e.Reason }

// sessionLimit is the session.Limit that p means.
func (p Policy) sessionLimit() session.Limit {
	l := session.Limit{Max: p.SessionLimit, Policy: session.EvictOldest}
	if p.OnSessionLimit == RefuseNewSession {
		l.Policy = session.RefuseNew
	}
	return l
}

// tenantOnly returns the name of the first field of p set that a
// default cannot give (withDefaults does not fill it), "" if none: the
// yes/no fields, whose zero cannot mean both "the default" and "off",
// and those naming one tenant's user or time.
func (p Policy) tenantOnly() string {
	switch {
	case p.RequireMFA:
		return "RequireMFA"
	case p.MFAAllowEmail:
		return "MFAAllowEmail"
	case !p.MFARequiredSince.IsZero():
		return "MFARequiredSince"
	case p.RequireSSO:
		return "RequireSSO"
	case p.BreakGlassUser != "":
		return "BreakGlassUser"
	case p.AutoDeactivateDormant:
		return "AutoDeactivateDormant"
	}
	return ""
}

// withDefaults fills p's zero fields from d: all but those tenantOnly
// names.
func (p Policy) withDefaults(d Policy) Policy {
	if p.SessionLimit == 0 {
		p.SessionLimit = d.SessionLimit
	}
	if p.OnSessionLimit == "" {
		p.OnSessionLimit = d.OnSessionLimit
	}
	if p.IdleTimeout == 0 {
		p.IdleTimeout = d.IdleTimeout
	}
	if p.SessionLifetime == 0 {
		p.SessionLifetime = d.SessionLifetime
	}
	if p.PasswordMinLength == 0 {
		p.PasswordMinLength = d.PasswordMinLength
	}
	if p.PasswordHistory == 0 {
		p.PasswordHistory = d.PasswordHistory
	}
	if p.PasswordMaxAge == 0 {
		p.PasswordMaxAge = d.PasswordMaxAge
	}
	if p.MFAGrace == 0 {
		p.MFAGrace = d.MFAGrace
	}
	if p.ReviewEvery == 0 {
		p.ReviewEvery = d.ReviewEvery
	}
	if p.DormantAfter == 0 {
		p.DormantAfter = d.DormantAfter
	}
	if p.AuditRetention == 0 {
		p.AuditRetention = d.AuditRetention
	}
	return p
}

// TenantStore keeps tenants and their policies.
type TenantStore interface {
	// CreateTenant stores t (with t.Version 1, and t.LastReview and
	// t.IdPChangedAt as given); ErrTenantExists, and nothing stored, if a
	// tenant with t.ID exists.
	CreateTenant(ctx context.Context, t Tenant) error
	// Tenant returns the tenant with the given id, or ErrTenantNotFound.
	Tenant(ctx context.Context, id string) (Tenant, error)
	// SetPolicy replaces the tenant's policy only if its Version is still
	// version, and increments Version; it returns the new version. A stale
	// version gives ErrConflict and changes nothing; an unknown tenant
	// ErrTenantNotFound.
	SetPolicy(ctx context.Context, id string, p Policy, version int64) (int64, error)
	// DeleteTenant removes the tenant only if its Version is still
	// version (CreateTenant undoing a creation it could not record). A
	// stale version gives ErrConflict and removes nothing; an unknown
	// tenant ErrTenantNotFound.
	DeleteTenant(ctx context.Context, id string, version int64) error
	// ListTenants returns at most limit tenants ordered by id, after the id
	// given in after ("" starts at the beginning); a limit of zero or less
	// returns none.
	ListTenants(ctx context.Context, after string, limit int) ([]Tenant, error)
	// MarkReviewed sets the tenant's LastReview to at if at is after it
	// (set if newer: an older or equal at changes nothing and is no
	// error), in one step, and changes nothing else (not Version). An
	// unknown tenant gives ErrTenantNotFound.
	MarkReviewed(ctx context.Context, id string, at time.Time) error
	// MarkIdPChanged sets the tenant's IdPChangedAt to at if at is after
	// it (set if newer: an older or equal at changes nothing and is no
	// error), in one step, and changes nothing else (not Version). An
	// unknown tenant gives ErrTenantNotFound.
	MarkIdPChanged(ctx context.Context, id string, at time.Time) error
}
