package rbac

import (
	"context"
	"time"
)

// PolicyStore keeps each tenant's policy: a set of rules and a version.
// The version counts the updates of the tenant's policy: it is 0 before
// the first, and each successful Update adds one. Tenants are independent:
// nothing done to one tenant is seen in another.
//
// A store holds rules as given; it does not interpret them. The Enforcer
// writes only rules it has validated and refuses to load a tenant whose
// rules it cannot use (see RuleError).
type PolicyStore interface {
	// Policy returns the tenant's rules, in any order, and the version they
	// are at, read in one consistent step. A tenant never updated has no
	// rules and version 0.
	Policy(ctx context.Context, tenant string) ([]Rule, uint64, error)
	// Version returns the tenant's version. It is read on every decision,
	// so it must be one cheap read.
	Version(ctx context.Context, tenant string) (uint64, error)
	// Update changes the tenant's policy if, and only if, its version is
	// expect, in one atomic step: it removes the rules of remove, then adds
	// the rules of add, sets the version to expect+1 and records the
	// change for Changes. The policy is a set: adding a rule it holds, or
	// removing one it does not, changes no rule. If the version is not
	// expect, Update returns ErrConflict and changes nothing. An update
	// with no rules still moves the version.
	Update(ctx context.Context, tenant string, expect uint64, remove, add []Rule) error
	// Changes returns the tenant's changes with a version above since, in
	// ascending version order, each with the remove and add rules given to
	// Update, in the order given. It returns no change when since is the
	// version or above. A store keeps at least the latest MinHistory
	// changes of each tenant; when a change asked for is no longer held,
	// Changes returns ErrHistoryGone.
	Changes(ctx context.Context, tenant string, since uint64) ([]Change, error)
}

// MinHistory is the number of latest changes per tenant that a PolicyStore
// keeps at least. An Enforcer more than MinHistory versions behind may
// have to reload the tenant's whole policy.
const MinHistory = 64

// RuleType says what a stored Rule means.
type RuleType string

// The rule types. Other fields of a Rule are empty unless listed.
const (
	// RulePermission: the custom role Role may do Action in Section.
	RulePermission RuleType = "permission"
	// RuleGrant: Subject (its string form, "user:<id>" or "key:<id>")
	// holds the role Role (built-in or custom).
	RuleGrant RuleType = "grant"
	// RuleApproval: Action in Section needs four-eyes approval.
	RuleApproval RuleType = "approval"
)

// Rule is one row of a tenant's policy. It is comparable; two rules are
// the same rule when every field is equal.
type Rule struct {
	Type    RuleType
	Role    string
	Subject string
	Section Section
	Action  Action
}

// Change is one Update of a tenant's policy, as returned by Changes.
type Change struct {
	Version uint64 // the version the update produced
	Remove  []Rule
	Add     []Rule
}

// ApprovalStore keeps four-eyes approvals, by tenant and ID. The steps
// that change an approval are atomic, so that an approval is decided once
// and consumed once, on one replica or many.
type ApprovalStore interface {
	// CreateApproval stores a. It returns ErrDuplicate, and stores nothing,
	// if a.Tenant has an approval with a.ID.
	CreateApproval(ctx context.Context, a Approval) error
	// Approval returns the tenant's approval with the given ID, or
	// ErrNotFound.
	Approval(ctx context.Context, tenant, id string) (Approval, error)
	// DecideApproval sets the Status of the tenant's approval id to status
	// (StatusApproved or StatusRejected), its Decider to by and its
	// DecidedAt to at, in one atomic step, and returns the approval as
	// stored afterwards. It changes nothing and returns, checked in this
	// order: ErrNotFound if there is no such approval; ErrSelfApproval if
	// by is its Requester; ErrNotPending if its Status is not
	// StatusPending; ErrExpired if at is not before its ExpiresAt.
	DecideApproval(ctx context.Context, tenant, id string, by Subject, status Status, at time.Time) (Approval, error)
	// ConsumeApproval sets the Status of the tenant's approval id to
	// StatusConsumed and its ConsumedAt to at, in one atomic step, and
	// returns the approval as stored afterwards. It changes nothing and
	// returns, checked in this order: ErrNotFound if there is no such
	// approval; ErrMismatch if c differs from its Requester, Permission,
	// Target or PayloadHash; ErrConsumed if it is already consumed;
	// ErrNotApproved if it is pending or rejected; ErrExpired if at is not
	// before its ExpiresAt.
	ConsumeApproval(ctx context.Context, tenant, id string, c Claim, at time.Time) (Approval, error)
	// ListApprovals returns the tenant's approvals that have q.Status (any
	// status if empty), in descending ID order, starting strictly below
	// q.Before if it is not empty: min(q.Limit, 1000) of them (100 if
	// q.Limit is 0, none if it is negative), or fewer when no more match.
	ListApprovals(ctx context.Context, tenant string, q ApprovalQuery) ([]Approval, error)
}

// Status is the stored state of an approval.
type Status string

// The statuses. An approval is created pending; DecideApproval makes it
// approved or rejected; ConsumeApproval makes an approved one consumed.
const (
	StatusPending  Status = "pending"
	StatusApproved Status = "approved"
	StatusRejected Status = "rejected"
	StatusConsumed Status = "consumed"
	// StatusExpired is never stored: Approval.StatusAt reports it for a
	// pending or approved approval past its ExpiresAt.
	StatusExpired Status = "expired"
)

// Approval is a four-eyes request: Requester asks to do Permission on
// Target with a payload whose SHA-256 is PayloadHash; another subject
// holding the approve permission of the section approves or rejects it;
// the requester then consumes the approval, once, for the same payload.
type Approval struct {
	ID          string
	Tenant      string
	Requester   Subject
	Permission  Permission
	Target      string   // what the action applies to (a campaign ID…)
	PayloadHash [32]byte // SHA-256 of the request payload
	CreatedAt   time.Time
	ExpiresAt   time.Time // deadline to approve and to consume
	Status      Status
	Decider     Subject   // who approved or rejected; zero while pending
	DecidedAt   time.Time // zero while pending
	ConsumedAt  time.Time // zero until consumed
}

// StatusAt returns the status of a at time t: its stored Status, or
// StatusExpired if it is pending or approved and t is not before
// ExpiresAt.
func (a Approval) StatusAt(t time.Time) Status {
	if (a.Status == StatusPending || a.Status == StatusApproved) && !t.Before(a.ExpiresAt) {
		return StatusExpired
	}
	return a.Status
}

// Claim is what a consumer presents to use an approval: it must match the
// approval exactly.
type Claim struct {
	Requester   Subject
	Permission  Permission
	Target      string
	PayloadHash [32]byte
}

// Matches reports whether c is the claim of approval a: the same
// requester, permission, target and payload hash.
func (c Claim) Matches(a Approval) bool {
	return c.Requester == a.Requester && c.Permission == a.Permission && c.Target == a.Target && c.PayloadHash == a.PayloadHash
}

// ApprovalQuery selects approvals for ListApprovals.
type ApprovalQuery struct {
	Status Status // only approvals with this stored status; "" for any
	Before string // cursor: only IDs below this one; "" to start at the top
	Limit  int    // 0 means 100; stores cap it at 1000 and list none below 0 (List refuses it)
}
