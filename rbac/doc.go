// Package rbac decides who may do what in each tenant: roles over
// sections and actions, built on a casbin model with tenant domains, with
// custom roles per tenant, grants to users and API keys that can never
// exceed the granter's own permissions, four-eyes approvals, and a
// governance check on the number of administrators.
//
// # What is inside
//
//   - Enforcer (built with New) is what an application uses: Decide (or
//     DecideAt) on every request; Grant, Revoke (or SetGrant, which
//     reports whether the policy changed), RevokeAll, DefineRole,
//     DeleteRole and SetApprovalRequired to change a tenant's policy
//     (RemoveGrants, unchecked, only for a subject being removed or to
//     take back a grant just written; UndoDefineRole to take back a
//     definition just written, unless the role changed since);
//     Permissions, RolesOf, Roles, Assignments, ApprovalRequired and
//     AdminWarning to show it.
//   - Approvals (built with NewApprovals) runs four-eyes approvals:
//     Request, Approve, Reject, Consume.
//   - PolicyStore and ApprovalStore are the storage contracts; package
//     rbactest is the conformance suite every backend runs, and
//     store/memstore implements both in memory.
//   - Adapter is Guard's casbin persist adapter (persist.FilteredAdapter):
//     it loads one tenant's policy from a PolicyStore into a casbin model
//     of ModelText. Enforcer.Casbin returns a casbin Enforcer loaded
//     through it, for inspection.
//   - Section, Action, Permission, Subject and Perms are the vocabulary;
//     CheckTenant, CheckRole, CheckRoleName, CheckApprovalID,
//     ParseSubject and ParsePermission validate outside input.
//
// # Model
//
// A decision is (subject, tenant, section, action). Subjects are users
// ("user:<id>") and API keys ("key:<id>"). There are eight built-in
// sections (contacts, campaigns, reports, settings, users, audit,
// api-keys, billing) and a host application may add its own
// (Config.Sections); there are six actions (read, write, delete,
// approve, send, manage). Subjects hold roles in a tenant; a role holds
// permissions (section, action). A grant in one tenant means nothing in
// another, and the tenant of a decision must come from the authenticated
// principal, never from the request's path, query, headers or body.
//
// The built-in roles exist in every tenant and cannot be changed:
//
//	role          contacts  campaigns  reports  settings  users  audit  api-keys  billing
//	owner         all       all        all      all       all    all    all       all
//	admin         all       all        all      all       all    all    all       -
//	manager       r w d     r w d a s  r w s    r         r      -      -         -
//	member        r w       r w s      r        -         -      -      -         -
//	reports-only  -         -          r        -         -      -      -         -
//
// (r read, w write, d delete, a approve, s send; "all" adds manage.) The
// owner also holds every action of the host sections. Only roles that
// grant contacts see contact data; reports-only reads reports and nothing
// else. Custom roles are per tenant: a name (lower-case letters, digits,
// '-' and '_', not reading as a built-in role's: see CheckRole) and a
// non-empty set of permissions.
//
// The policy is a casbin model with domains (ModelText): p rows give a
// role an action in a section of a tenant, g rows give a subject a role in
// a tenant, p2 rows mark the permissions that need four-eyes approval.
// Each tenant's rows are stored by a PolicyStore with a version that moves
// with every change, and loaded one tenant at a time through Adapter. The
// built-in roles' rows come from code, never from the store.
//
// # Decisions and propagation
//
// For speed, the Enforcer compiles each tenant's casbin model into an
// immutable decision table: per subject its role IDs, per role a bitset
// over the permissions, held in persistent (structure-sharing) maps and
// published with an atomic pointer. A warm decision is two map lookups
// and a bit test per role, takes no lock and allocates nothing. Tests
// check the tables against casbin's own Enforce on random policies.
//
// Each table carries the policy version it was built at. Decide reads the
// tenant's version from the store (one cheap read) and, if it has moved,
// first brings the table forward: it reads the store's change log since
// its version and applies only the changed rows (microseconds, whatever
// the size of the policy), or reloads the whole policy when the log no
// longer reaches back. So a grant or revocation made through any Enforcer
// on the same store, on any replica, is in force on the very next
// decision of every Enforcer whose store reads the version at each
// decision; no cache of the Enforcer answers from an older policy. A
// store may keep versions in memory until it is told of a change
// (pgstore's Watch): an Enforcer on it follows a change made elsewhere
// once the store is told (milliseconds), never later than the store's
// bound (pgstore.WatchFresh).
// DecideAt takes the version from the caller instead, for a caller that
// reads it together with other per-request data.
// DecideWithin and PermissionsWithin bound a subject by another's
// permissions at the same version (Guard bounds an API key by its
// creator's: a key never does more than its creator may do now).
//
// Changes (Grant, Revoke, …) are checked against the current table and
// written with a compare-and-set on the version (PolicyStore.Update), so
// the checks still hold when the change lands; a change that loses the
// race is checked again and retried.
//
// # Granting
//
// The changing methods take by, the effective permissions of whoever acts
// (Permissions of the acting principal; AllPerms for the host
// application). Granting a role to a user needs users:manage, to an API
// key api-keys:manage (GrantPermission); defining or deleting roles needs
// users:manage; changing an approval rule needs settings:manage and the
// permission the rule governs. Whoever grants, revokes, defines or
// deletes a role must hold every permission of the role (before and after
// a redefinition), so nobody grants more than they hold, and an admin
// cannot demote an owner. The tenant's last user holding owner keeps it.
// Perms from Permissions remember their holder and tenant, and a change
// is checked against the holder's permissions at the version it lands on:
// a granter demoted a moment before is refused, and permissions read in
// one tenant grant nothing in another.
//
// # Approvals
//
// A tenant marks permissions (say campaigns:send) as needing approval;
// Decide then reports NeedsApproval. The requester records a request
// (Approvals.Request) for the action, a target and the SHA-256 of the
// payload; a user other than the requester holding the approve
// permission of the section approves or rejects it; the requester
// consumes the approval once, for the same action, target and payload,
// before it expires, while the requester still holds the permission and
// the approver still holds the approve permission (ErrApproverRevoked
// otherwise) and, if the host asks, still stands behind it
// (ApprovalConfig.DeciderActive: ErrApproverRevoked), as does the
// requester (ApprovalConfig.RequesterStands: ErrWithdrawn). Each step is
// one atomic store operation.
//
// # Concurrency
//
// Enforcer and Approvals are safe for concurrent use. Every invariant
// (one winner per policy version, an approval decided once and consumed
// once) is one atomic store method, so it holds across replicas.
//
// # Errors
//
// Compare errors with errors.Is and errors.As:
//
//   - *InputError: a tenant, role, subject, section, action, target or
//     approval ID that is not acceptable. It names the field, never the
//     value. Nothing was changed.
//   - ErrDenied: the acting subject lacks the permission the operation
//     needs. ErrEscalation: the role (or approval rule) concerns
//     permissions the actor lacks.
//     ErrLastOwner, ErrRoleNotFound, ErrBuiltInRole, ErrTooManyRoles: the
//     change is refused as named. ErrConflict: the tenant's policy kept
//     changing under the change (try again).
//   - ErrNotFound, ErrSelfApproval, ErrNotPending, ErrExpired,
//     ErrNotApproved, ErrConsumed, ErrMismatch, ErrApproverRevoked,
//     ErrWithdrawn: approval steps refused.
//   - *RuleError: the store holds a rule this package cannot use; the
//     tenant's decisions fail until it is fixed.
//   - *ConfigError: New or NewApprovals was given an unacceptable Config.
//
// Any other error wraps a store failure. A decision that returns an error
// must be treated as a denial (fail closed): Decide never returns an
// Allowed decision with an error.
package rbac
