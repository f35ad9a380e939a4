package rbac

import "errors"

// Sentinel errors. Compare with errors.Is.
var (
	// ErrDenied: the acting subject lacks a permission the operation needs
	// (users:manage to grant roles to users, api-keys:manage to grant them
	// to API keys, settings:manage to change approval rules, the approve
	// permission of the section to decide an approval, the permission
	// itself to request or consume an approval).
	ErrDenied = errors.New("rbac: permission denied")
	// ErrEscalation: the role holds a permission the acting subject does
	// not hold, so the subject may not grant, revoke, define or delete it;
	// or the approval rule governs a permission the subject does not hold
	// (SetApprovalRequired).
	ErrEscalation = errors.New("rbac: role holds permissions the actor lacks")
	// ErrLastOwner: the change would leave the tenant without an owner.
	ErrLastOwner = errors.New("rbac: the tenant's last owner cannot lose the owner role")
	// ErrRoleNotFound: no custom role of that name in the tenant.
	ErrRoleNotFound = errors.New("rbac: no such role")
	// ErrBuiltInRole: built-in roles cannot be defined, changed or deleted.
	ErrBuiltInRole = errors.New("rbac: built-in roles cannot be changed")
	// ErrRoleChanged: the role no longer holds the permissions the
	// definition to undo gave it; a later change stands (UndoDefineRole).
	ErrRoleChanged = errors.New("rbac: role changed since the definition to undo")
	// ErrTooManyRoles: the tenant already has Config.MaxCustomRoles custom
	// roles.
	ErrTooManyRoles = errors.New("rbac: too many custom roles")
	// ErrConflict: a PolicyStore refused an Update because the tenant's
	// policy version had moved on. Enforcer retries; it returns ErrConflict
	// only when the tenant's policy keeps changing under it.
	ErrConflict = errors.New("rbac: policy changed concurrently")
	// ErrHistoryGone: a PolicyStore no longer holds every change asked for;
	// the Enforcer then reloads the tenant's whole policy.
	ErrHistoryGone = errors.New("rbac: policy history no longer held")
	// ErrReadOnly: the casbin Adapter does not write; change the policy
	// through the Enforcer.
	ErrReadOnly = errors.New("rbac: the casbin adapter is read-only; change policy through rbac.Enforcer")
)

// Approval errors, returned by Approvals and by ApprovalStore.
var (
	// ErrNotFound: no approval with that ID in the tenant.
	ErrNotFound = errors.New("rbac: approval not found")
	// ErrDuplicate: an approval with that ID already exists (a broken Rand).
	ErrDuplicate = errors.New("rbac: duplicate approval ID")
	// ErrSelfApproval: the requester tried to approve or reject their own
	// request.
	ErrSelfApproval = errors.New("rbac: an approval cannot be decided by its requester")
	// ErrNotPending: the approval was already approved, rejected or consumed.
	ErrNotPending = errors.New("rbac: approval already decided")
	// ErrExpired: the approval has passed its ExpiresAt.
	ErrExpired = errors.New("rbac: approval expired")
	// ErrNotApproved: the approval is pending or was rejected.
	ErrNotApproved = errors.New("rbac: approval not approved")
	// ErrConsumed: the approval was already used.
	ErrConsumed = errors.New("rbac: approval already consumed")
	// ErrMismatch: the approval was given for another requester, action,
	// target or payload.
	ErrMismatch = errors.New("rbac: approval does not match the request")
	// ErrApproverRevoked: the approval's decider no longer holds the
	// approve permission of its section (or, at Guard's facade, is no
	// longer an active user, was deactivated since giving it and
	// reactivated, has a password marked compromised, or has changed the
	// password since giving it), so the approval
	// no longer stands. Returned
	// by Approvals.Consume only, never by an ApprovalStore.
	ErrApproverRevoked = errors.New("rbac: the approver no longer may approve")
	// ErrWithdrawn: the approval's requester no longer stands behind it
	// (at Guard's facade: the user was deactivated after filing it, and
	// reactivated since). Returned by Approvals.Consume only, through
	// ApprovalConfig.RequesterStands, never by an ApprovalStore.
	ErrWithdrawn = errors.New("rbac: the approval was withdrawn: its requester was deactivated since it was filed")
)

// InputError reports an unacceptable argument: a tenant, role or subject
// name, a section, action or permission, an approval target. It names the
// field and the rule broken, and never echoes the value.
type InputError struct {
	Field, Reason string
}

func (e *InputError) Error() string { return "rbac: invalid " + e.Field + ": " + e.Reason }

// ConfigError reports an unacceptable Config or ApprovalConfig field.
type ConfigError struct {
	Field, Reason string
}

func (e *ConfigError) Error() string { return "rbac: invalid Config." + e.Field + ": " + e.Reason }

// RuleError reports a stored rule that the Enforcer cannot use: a backend
// holds a row that no Enforcer wrote (a wrong type, a bad name, a
// permission given to a built-in role). The tenant's policy fails to load
// and every decision for it returns an error (deny) until the row is fixed.
type RuleError struct {
	Tenant string
	Rule   Rule
	Reason string
}

func (e *RuleError) Error() string {
	return "rbac: unusable stored rule of tenant " + e.Tenant + " (type " + string(e.Rule.Type) + "): " + e.Reason
}
