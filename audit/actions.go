package audit

// Action names what happened. The facade records only the actions listed
// here; later capabilities add to the list.
type Action string

// Authentication.
const (
	LoginSucceeded  Action = "login.succeeded" // password verified, session about to be created
	LoginFailed     Action = "login.failed"    // Reason: unknown_user, bad_password, deactivated, locked, ip_throttled, bad_input, unavailable
	LoginLocked     Action = "login.locked"    // this failure locked the account or the client IP (Meta: scope account or ip, until or permanent, lockouts)
	LoginPending    Action = "login.pending"   // first factor passed; a second factor (or enrolment) is due (Meta: purpose)
	Logout          Action = "logout"
	Reauthenticated Action = "session.reauthenticated" // step-up: the user proved their identity again; Reason (failed): bad_password, reuse, bad_code, expired, too_many_tries, locked, ip_throttled, captcha, sso_required, login_expired (a right proof for a session renewed, ended or expired meanwhile), bad_input, unavailable
)

// Second factors.
const (
	MFASucceeded      Action = "mfa.succeeded"       // Meta: kind
	MFAFailed         Action = "mfa.failed"          // Reason: bad_code, reuse, expired, too_many_tries, locked, ip_throttled, bad_input, login_expired, factor_added, password_changed, deactivated, sso_required, unavailable; Meta: kind, when known (for an email or SMS code, once the code is looked up)
	MFAEnrolStarted   Action = "mfa.enrol_started"   // Meta: kind; Reason (failed): destination_not_allowed, bad_input, unavailable
	MFAEnrolled       Action = "mfa.enrolled"        // a factor became active (Meta: kind)
	MFARemoved        Action = "mfa.removed"         // Meta: kind, left
	MFACodeSent       Action = "mfa.code_sent"       // Meta: kind
	MFACodeSuppressed Action = "mfa.code_suppressed" // Reason: cool_down, rate_limited, tenant_limit (the tenant's send limit), destination_not_allowed; recorded the first 30 times a minute for each user and reason, the 30th with Meta recording_paused "true" (as mfa.failed bad_input of a code send)
	RecoveryUsed      Action = "mfa.recovery_used"   // Meta: left; failed when the sign-in it was for did not complete
	// RecoveryReset: a new set of recovery codes (Meta replaced: the
	// number of codes made before a first factor that its set voided).
	// Reason (failed): bad_input (no confirmed factor), conflict (another
	// call's set came first; recorded after the success it takes back).
	RecoveryReset Action = "mfa.recovery_regenerated"
)

// Network and API keys.
const (
	IPDenied      Action = "ip.denied"            // IP is the resolved client address; Target the scope; Reason report_only when not blocked
	IPListChanged Action = "ip.allowlist_changed" // Target: the scope; Meta: version, entries, report_only, list (space-separated, clipped to 1000 bytes at a whole entry), list_count, list_sha256 (of every entry, one a line)
	APIKeyCreated Action = "apikey.created"       // Meta: name, prefix; Reason (failed, Target the name): escalation (Meta role), limit (Meta max: the tenant has that many live keys)
	APIKeyRevoked Action = "apikey.revoked"       // with its creator: Meta reason (creator_deactivated, creator_deleted), created_by
	APIKeyDenied  Action = "apikey.denied"        // Reason: revoked, expired; Meta: throttled (the client IP was locked), untrusted_<source> (the unusable client IP header, for an unidentified client)
	APIKeyPurged  Action = "apikey.purged"        // revoked and expired keys deleted past their retention (Target the tenant); Meta: count, before
)

// Roles and four-eyes approvals.
const (
	RoleGranted         Action = "role.granted"          // Target: the subject; Meta: role; Reason escalation, no_permission, unknown_user, unknown_key or key_revoked when refused
	RoleRevoked         Action = "role.revoked"          // Target: the subject; Meta: role, and reason role_deleted when the role itself was deleted (one per holder, beside the role.deleted)
	RoleDefined         Action = "role.defined"          // Target: the role; Meta: permissions (the parsed ones, space-separated, clipped to 1000 bytes at a whole permission), permissions_count, permissions_sha256 (of every permission, one a line)
	RoleDeleted         Action = "role.deleted"          // Target: the role
	ApprovalRuleChanged Action = "approval_rule.changed" // Target: the permission; Meta: required; Reason no_permission or escalation (the changer lacks the permission) when refused
	// ApprovalRequested: Meta permission, target. Reason (failed):
	// rate_limited (Meta permission) when the requester filed too many;
	// no_permission (the requester, or an API key's creator, lacks the
	// permission), bad_input (a malformed request), error (a fault of
	// Guard's, returned as ErrUnavailable).
	ApprovalRequested Action = "approval.requested"
	// ApprovalApproved: Meta permission, requester. Reason (failed):
	// self_approval (the approver filed it, or created the API key that
	// did), not_found, not_pending, expired, no_permission (an API key,
	// or an approver without the section's approve permission),
	// bad_input, conflict, error.
	ApprovalApproved Action = "approval.approved"
	// ApprovalRejected: Meta permission, requester; Meta reason
	// requester_deactivated or requester_deleted when withdrawn with its
	// requester. Reason (failed): as approval.approved.
	ApprovalRejected Action = "approval.rejected"
	// ApprovalConsumed: Meta permission, target. Reason (failed):
	// not_found, mismatch (another requester, permission, target or
	// payload), consumed, not_approved, expired, approver_revoked (the
	// approver deactivated or deleted, or reactivated since the approval,
	// or with a password marked compromised or changed since the
	// approval, or no longer holding the approve permission), withdrawn (the requester deactivated, deleted or
	// reactivated since), no_permission, bad_input, conflict, error.
	//
	// The refusals of these four approval steps are recorded the first
	// 30 times a minute for each actor, action and reason, the 30th with
	// Meta recording_paused "true".
	ApprovalConsumed Action = "approval.consumed"
)

// Single sign-on.
const (
	SSOSucceeded  Action = "sso.succeeded"  // Meta: idp, name_id
	SSOFailed     Action = "sso.failed"     // Reason: the precise rejection (audience_mismatch, replayed…)
	SSOConfigured Action = "sso.configured" // the tenant's IdP connection changed
	// SSOMetadataRefreshed: the IdP's metadata, fetched again from its
	// URL, changed (Meta: signing_certificates, certificates_changed).
	SSOMetadataRefreshed Action = "sso.metadata_refreshed"
	LoginBreakGlass      Action = "login.break_glass" // the break-glass owner signed in with a password while SSO is required
)

// Access reviews.
const (
	ReviewCompleted Action = "access_review.completed" // Meta: users, dormant, decisions
)

// Password recovery.
const (
	PasswordResetRequested Action = "password.reset_requested" // Reason: unknown_user, deactivated, rate_limited, unavailable, captcha, send_failed when no email went out (Meta dropped: no slot to send it in)
	PasswordReset          Action = "password.reset"           // Reason: invalid_token, email_changed, password_changed, deactivated, password_expired, bad_input, captcha when refused
)

// Sessions.
const (
	SessionCreated Action = "session.created" // not recorded by Guard: login.succeeded names the new session (Target)
	SessionRotated Action = "session.rotated"
	SessionEvicted Action = "session.evicted" // ended by the concurrent-session limit
	SessionRevoked Action = "session.revoked" // ended by a user, an admin or the tenant's policy; Meta reason (role_changed, access_review, password_changed, deactivated) and sessions_ended; Reason session_limit for a lowered limit, Meta user
	SessionExpired Action = "session.expired" // found past its idle timeout or lifetime (Reason idle_timeout, lifetime), once
)

// User administration and credentials.
const (
	UserCreated      Action = "user.created"
	UserDeactivated  Action = "user.deactivated" // Meta: sessions_ended, api_keys_revoked, reason (access_review, dormant) unless by an admin directly
	UserReactivated  Action = "user.reactivated"
	UserDeleted      Action = "user.deleted" // Meta: email, api_keys_revoked
	UserUnlocked     Action = "user.unlocked"
	UserInvited      Action = "user.invited"       // a set-password link was sent; Reason escalation when refused, send_failed when the mail failed (after the success recorded before it)
	UserEmailChanged Action = "user.email_changed" // Meta: old_email, new_email, sessions_ended; Reason email_taken, invalid_token or deactivated when refused
	// UserEmailChangeRequested: a link to confirm a new address was sent
	// (Meta: old_email, new_email); Reason rate_limited when refused,
	// send_failed when the mail failed (after the success recorded before
	// it).
	UserEmailChangeRequested Action = "user.email_change_requested"
	PasswordChanged          Action = "password.changed"
	PasswordRejected         Action = "password.rejected" // a new password refused by policy (Reason: the rule)
	PasswordRehashed         Action = "password.rehashed"
	PasswordExpired          Action = "password.expired" // an admin marked the password compromised, to change at the next sign-in (Meta: sessions_ended)
	TenantCreated            Action = "tenant.created"   // Meta: the policy's fields set (not zero), as tenant.policy_changed lists a change
	TenantPolicySet          Action = "tenant.policy_changed"
	AuditPurged              Action = "audit.purged"   // Meta: events, before and, when events were deleted, through (the checkpoint's Seq); Reason recorded_late (Meta purged_at) for a purge whose own record failed
	AuditExported            Action = "audit.exported" // Meta: format and the query's filters, cursor (after) and order
	// Reason: no_permission, other_tenant, owner_only, password_expired,
	// approval_required, bad_input, error, system_only, own_account,
	// invalid_principal.
	AccessDenied Action = "access.denied"
)

// Actions lists every action above, for documentation and validation.
var Actions = []Action{
	LoginSucceeded, LoginFailed, LoginLocked, LoginPending, Logout, Reauthenticated,
	MFASucceeded, MFAFailed, MFAEnrolStarted, MFAEnrolled, MFARemoved, MFACodeSent, MFACodeSuppressed,
	RecoveryUsed, RecoveryReset, PasswordResetRequested, PasswordReset,
	IPDenied, IPListChanged, APIKeyCreated, APIKeyRevoked, APIKeyDenied, APIKeyPurged,
	RoleGranted, RoleRevoked, RoleDefined, RoleDeleted, ApprovalRuleChanged,
	ApprovalRequested, ApprovalApproved, ApprovalRejected, ApprovalConsumed, ReviewCompleted,
	SSOSucceeded, SSOFailed, SSOConfigured, SSOMetadataRefreshed, LoginBreakGlass,
	SessionCreated, SessionRotated, SessionEvicted, SessionRevoked, SessionExpired,
	UserCreated, UserDeactivated, UserReactivated, UserDeleted, UserUnlocked, UserInvited, UserEmailChanged,
	UserEmailChangeRequested, PasswordChanged, PasswordRejected, PasswordRehashed, PasswordExpired,
	TenantCreated, TenantPolicySet, AuditPurged, AuditExported, AccessDenied,
}
