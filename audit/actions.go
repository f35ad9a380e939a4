package audit

// Action names what happened. The facade records only the actions listed
// here; later capabilities add to the list.
type Action string

// Authentication.
const (
	LoginSucceeded Action = "login.succeeded" // password verified, session about to be created
	LoginFailed    Action = "login.failed"    // Reason: unknown_user, bad_password, deactivated, locked, ip_throttled, bad_input, unavailable
	LoginLocked    Action = "login.locked"    // this failure locked the account (Meta: until, lockouts)
	Logout         Action = "logout"
)

// Sessions.
const (
	SessionCreated Action = "session.created"
	SessionRotated Action = "session.rotated"
	SessionEvicted Action = "session.evicted" // ended by the concurrent-session limit
	SessionRevoked Action = "session.revoked" // ended by a user or an admin
	SessionExpired Action = "session.expired"
)

// User administration and credentials.
const (
	UserCreated      Action = "user.created"
	UserDeactivated  Action = "user.deactivated"
	UserReactivated  Action = "user.reactivated"
	UserDeleted      Action = "user.deleted"
	UserUnlocked     Action = "user.unlocked"
	PasswordChanged  Action = "password.changed"
	PasswordRejected Action = "password.rejected" // a new password refused by policy (Reason: the rule)
	PasswordRehashed Action = "password.rehashed"
	TenantCreated    Action = "tenant.created"
	TenantPolicySet  Action = "tenant.policy_changed"
	AuditPurged      Action = "audit.purged"
	AccessDenied     Action = "access.denied"
)

// Actions lists every action above, for documentation and validation.
var Actions = []Action{
	LoginSucceeded, LoginFailed, LoginLocked, Logout,
	SessionCreated, SessionRotated, SessionEvicted, SessionRevoked, SessionExpired,
	UserCreated, UserDeactivated, UserReactivated, UserDeleted, UserUnlocked,
	PasswordChanged, PasswordRejected, PasswordRehashed,
	TenantCreated, TenantPolicySet, AuditPurged, AccessDenied,
}
