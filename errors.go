package guard

import (
	"errors"
	"fmt"
)

// Errors returned by the facade. Compare with errors.Is.
//
// Security failures have one public face: every failed login, whatever the
// cause (unknown user, wrong password, deactivated, locked, throttled), is
// ErrInvalidCredentials (ErrSSORequired in a tenant that requires single
// sign-on, a right password included); the real cause is in the audit
// event's Reason.
var (
	ErrInvalidCredentials = errors.New("guard: invalid email or password")
	ErrUnauthenticated    = errors.New("guard: not signed in")
	ErrForbidden          = errors.New("guard: not allowed")
	ErrUnavailable        = errors.New("guard: service unavailable")
	ErrSessionLimit       = errors.New("guard: session limit reached")
	ErrTenantNotFound     = errors.New("guard: tenant not found")
	ErrTenantExists       = errors.New("guard: tenant already exists")
	ErrUserNotFound       = errors.New("guard: user not found")
	ErrEmailTaken         = errors.New("guard: email already in use")
	ErrConflict           = errors.New("guard: changed concurrently, reload and retry")
	// ErrSignedInElsewhere: the session was ended because its user signed
	// in on another client (the session limit, newest wins). It is also
	// ErrUnauthenticated. The token says so until the session would have
	// ended, or until all the user's sessions are ended (a password
	// change, a deactivation): it is then simply unknown.
	ErrSignedInElsewhere = fmt.Errorf("%w: the account signed in elsewhere", ErrUnauthenticated)
	// ErrPolicyChanged: the session was ended because the tenant's
	// security policy, changed since the sign-in, no longer allows it (MFA
	// or SSO now required, or the IdP that signed the session in replaced
	// or removed); signing in again meets the policy. It is also
	// ErrUnauthenticated.
	ErrPolicyChanged = fmt.Errorf("%w: the organisation's security policy changed", ErrUnauthenticated)
	// ErrPasswordChangeRequired: the session signed in with a password
	// that must be changed (FlagPasswordExpired: marked compromised by
	// ExpirePassword, older than the tenant's PasswordMaxAge, or on the
	// list of common passwords), and every permission check refuses it
	// until the user changes it (ChangePasswordAndRotate or
	// ChangePassword) or resets it. An API key whose creator's password
	// is marked compromised gets it too, until the creator changes it. It
	// is also ErrForbidden.
	ErrPasswordChangeRequired = fmt.Errorf("%w: your password must be changed first", ErrForbidden)
	// ErrApprovalRequired: the action is under four-eyes approval.
	// Authorize returns it for a principal whose roles allow the action
	// (go on only after ConsumeApproval succeeds); Require refuses such a
	// route with it (mount a route that takes approvals with
	// RequireApprovable and call ConsumeApproval). It is also
	// ErrForbidden.
	ErrApprovalRequired = fmt.Errorf("%w: this action needs another person's approval", ErrForbidden)
	// ErrStepUpRequired: the action needs a recent authentication; call
	// Reauthenticate and retry.
	ErrStepUpRequired = errors.New("guard: please confirm your identity again")
	// ErrMFANotConfigured: a second-factor call on a Guard without Config.MFA.
	ErrMFANotConfigured = errors.New("guard: MFA is not configured")
	// ErrInvalidCode: a second factor was refused, whatever the cause (wrong,
	// reused, expired, locked); the cause is in the mfa.failed event.
	ErrInvalidCode = errors.New("guard: invalid code")
	// ErrLoginExpired: the pending login is unknown, expired, already used or
	// belongs to another client; sign in again.
	ErrLoginExpired = errors.New("guard: sign-in expired, please start again")
	// ErrCaptchaRequired: the request needs a valid CAPTCHA token.
	ErrCaptchaRequired = errors.New("guard: please complete the CAPTCHA")
	// ErrInvalidResetToken: a password reset link is unknown, used, expired
	// or voided by a newer one.
	ErrInvalidResetToken = errors.New("guard: this reset link is invalid or has expired")
	// ErrInvalidEmailChange: an email-change link is unknown, used,
	// expired, voided by a newer one or altered.
	ErrInvalidEmailChange = errors.New("guard: this email confirmation link is invalid or has expired")
	// ErrIPNotAllowed: the client's IP address is not on the tenant's
	// allow-list (or could not be identified).
	ErrIPNotAllowed = errors.New("guard: access from this address is not allowed")
	// ErrTooManyAttempts: too many invalid API keys or SSO starts from this
	// address, too many invitations sent to the user, or too many approval
	// requests filed (MaxApprovalRequestsPerHour); wait. (Email-change and
	// reset links held back by their limits are answered as if sent.)
	ErrTooManyAttempts = errors.New("guard: too many attempts, try again later")
	// ErrNotFound: the object named does not exist (in this tenant).
	ErrNotFound = errors.New("guard: not found")
	// ErrIPListsNotConfigured, ErrAPIKeysNotConfigured: the backend gives
	// no store for IP allow-lists or API keys (Stores.IPLists,
	// Stores.APIKeys).
	ErrIPListsNotConfigured = errors.New("guard: IP allow-lists are not configured")
	ErrAPIKeysNotConfigured = errors.New("guard: API keys are not configured")
	// ErrRolesNotConfigured: the backend gives no role store
	// (Stores.Policies, Stores.Approvals).
	ErrRolesNotConfigured = errors.New("guard: roles are not configured")
	// ErrSSONotConfigured: an SSO call on a Guard without Config.SSO, or
	// for a ring-fenced tenant whose stores have no IdP connection store
	// (TenantOpener).
	ErrSSONotConfigured = errors.New("guard: single sign-on is not configured")
	// ErrSSOFailed: a single sign-on was refused, whatever the cause; the
	// cause is in the sso.failed event.
	ErrSSOFailed = errors.New("guard: single sign-on failed")
	// ErrSSORequired: the tenant requires single sign-on; password sign-in
	// is only for the break-glass owner. Login answers it for every
	// password sign-in such a tenant refuses for its credentials, whether
	// the password was right or wrong, the account known or not, the
	// break-glass owner's or not: it confirms no password.
	ErrSSORequired = errors.New("guard: your organisation requires single sign-on")
	// ErrBreakGlassUser: the change would take the owner role, the
	// account or the last second factor from the tenant's break-glass
	// owner (Policy.BreakGlassUser) while the tenant requires SSO, leaving
	// nobody who can sign in if the IdP fails. Name another break-glass owner, or stop requiring SSO,
	// first.
	ErrBreakGlassUser = errors.New("guard: this user is the break-glass owner while single sign-on is required: " +
		"name another break-glass owner, or stop requiring single sign-on, first")
	// ErrFactorRequired: a user may not remove their own last second
	// factor while the tenant requires MFA, nor the last one that meets
	// the policy (add another first; an administrator may still remove
	// it, which ends the user's sessions). It is also ErrForbidden.
	ErrFactorRequired = fmt.Errorf("%w: your organisation requires a second factor: add another before removing the last", ErrForbidden)
)

// unavailable wraps a store failure: callers see ErrUnavailable (and can
// still reach the cause with errors.Is/As); requests are denied.
func unavailable(op string, err error) error {
	return fmt.Errorf("%w: %s: %w", ErrUnavailable, op, err)
}

// InputError reports a malformed request field. It names the field and the
// rule, never the value.
type InputError struct {
	Field, Reason string
}

func (e *InputError) Error() string { return "guard: invalid " + e.Field + ": " + e.Reason }
