package rbac

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"time"
	"unicode/utf8"

	"github.com/guardhq/guard/internal/textrule"
)

// Defaults filled in by NewApprovals.
const (
	DefaultApprovalTTL    = 24 * time.Hour
	DefaultMaxApprovalTTL = 7 * 24 * time.Hour
	MaxTargetLen          = 256 // bytes
)

// ApprovalConfig configures Approvals. Zero fields take the documented
// defaults.
type ApprovalConfig struct {
	// Store keeps the approvals (required).
	Store ApprovalStore
	// Enforcer checks the permissions of requesters and approvers
	// (required).
	Enforcer *Enforcer
	// Now returns the current time (default time.Now).
	Now func() time.Time
	// Rand is the source of approval IDs (default crypto/rand.Reader).
	Rand io.Reader
	// TTL is how long a request may wait to be approved and then consumed
	// when Request is given no ttl (default 24 h).
	TTL time.Duration
	// MaxTTL bounds the ttl of Request (default 7 days).
	MaxTTL time.Duration
	// DeciderActive, if not nil, is asked by Consume whether the decider
	// of an approved approval it is about to consume (ap.Decider, who
	// decided at ap.DecidedAt) still stands behind it beyond its
	// permissions (a user account deactivated or deleted since it was
	// given, even if reactivated, whose password is marked compromised,
	// or whose password changed since: return ErrApproverRevoked); any other
	// error it returns is a store failure and Consume returns it.
	DeciderActive func(ctx context.Context, tenant string, ap Approval) error
	// RequesterStands, if not nil, is asked by Consume whether the
	// requester of an approved request it is about to consume still
	// stands behind it beyond its permissions (a user account deactivated
	// since the request was filed, and reactivated: return ErrWithdrawn);
	// any other error it returns is a store failure and Consume returns it.
	RequesterStands func(ctx context.Context, tenant string, ap Approval) error
}

// Approvals runs four-eyes approvals: a requester asks to do an action on
// a target with a given payload; another user holding the approve
// permission of the section approves or rejects; the requester consumes
// the approval, once, for the same action, target and payload, before it
// expires. Every step that changes an approval is one atomic store step.
// Approvals is safe for concurrent use.
type Approvals struct {
	store         ApprovalStore
	enf           *Enforcer
	now           func() time.Time
	rand          io.Reader
	ttl           time.Duration
	maxTTL        time.Duration
	deciderActive func(context.Context, string, Approval) error
	requesterOK   func(context.Context, string, Approval) error
}

// NewApprovals validates cfg, fills its defaults and returns Approvals. A
// bad field is reported as a *ConfigError.
func NewApprovals(cfg ApprovalConfig) (*Approvals, error) {
	switch {
	case cfg.Store == nil:
		return nil, &ConfigError{Field: "Store", Reason: "is required"}
	case cfg.Enforcer == nil:
		return nil, &ConfigError{Field: "Enforcer", Reason: "is required"}
	case cfg.TTL < 0:
		return nil, &ConfigError{Field: "TTL", Reason: "must not be negative"}
	case cfg.MaxTTL < 0:
		return nil, &ConfigError{Field: "MaxTTL", Reason: "must not be negative"}
	}
	cfg.TTL = cmp.Or(cfg.TTL, DefaultApprovalTTL)
	cfg.MaxTTL = cmp.Or(cfg.MaxTTL, max(DefaultMaxApprovalTTL, cfg.TTL))
	if cfg.TTL > cfg.MaxTTL {
		return nil, &ConfigError{Field: "TTL", Reason: "must not exceed MaxTTL"}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	return &Approvals{store: cfg.Store, enf: cfg.Enforcer, now: cfg.Now, rand: cfg.Rand, ttl: cfg.TTL, maxTTL: cfg.MaxTTL,
		deciderActive: cfg.DeciderActive, requesterOK: cfg.RequesterStands}, nil
}

// checkTarget: a target is 1 to MaxTargetLen bytes of UTF-8 that is
// printable as auth.Printable says (internal/textrule): approvers are
// shown it and the audit log records it, so it holds no control
// character, line or paragraph separator, nor bidirectional embedding,
// override or isolate that could show them another target than the one
// the approval is bound to.
func checkTarget(target string) error {
	switch {
	case target == "":
		return &InputError{Field: "target", Reason: "is required"}
	case len(target) > MaxTargetLen:
		return &InputError{Field: "target", Reason: "is too long"}
	case !utf8.ValidString(target):
		return &InputError{Field: "target", Reason: "is not valid UTF-8"}
	case !textrule.Printable(target):
		return &InputError{Field: "target", Reason: "contains a control character, line separator or bidirectional embedding, override or isolate"}
	}
	return nil
}

// CheckApprovalID reports whether id has the form of an approval ID (32
// lower-case hex digits, as Request makes them), as an *InputError; it
// says nothing of whether such an approval exists. Approve, Reject,
// Consume and Get check their id with it.
func CheckApprovalID(id string) error { return checkID(id) }

// checkID: an approval ID is 32 lower-case hex digits.
func checkID(id string) error {
	if len(id) != 32 {
		return &InputError{Field: "approval ID", Reason: "is not an approval ID"}
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return &InputError{Field: "approval ID", Reason: "is not an approval ID"}
		}
	}
	return nil
}

// newID returns 16 bytes in hex: the creation time in microseconds
// (big-endian, so that IDs sort by creation) and 8 random bytes.
func (a *Approvals) newID(now time.Time) (string, error) {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixMicro()))
	if _, err := io.ReadFull(a.rand, b[8:]); err != nil {
		return "", fmt.Errorf("rbac: reading random bytes: %w", err)
	}
	return hex.EncodeToString(b[:]), nil
}

// allowed checks that sub holds p in tenant (ErrDenied).
func (a *Approvals) allowed(ctx context.Context, tenant string, sub Subject, p Permission) error {
	d, err := a.enf.Decide(ctx, tenant, sub, p.Section, p.Action)
	if err != nil {
		return err
	}
	if !d.Allowed {
		return ErrDenied
	}
	return nil
}

// Request records requester's request to do p on target with a payload
// whose SHA-256 is payloadHash, and returns it (pending). target is 1 to
// MaxTargetLen bytes of UTF-8 with no control character, line or
// paragraph separator, or bidirectional embedding, override or isolate
// (*InputError otherwise: it is shown to approvers). The requester
// must hold p (ErrDenied). ttl is how long the request stays valid, to be
// approved and consumed (0 means ApprovalConfig.TTL; at most MaxTTL).
// Requests are accepted whether or not the tenant requires approval for p.
func (a *Approvals) Request(ctx context.Context, tenant string, requester Subject, p Permission, target string, payloadHash [32]byte, ttl time.Duration) (Approval, error) {
	if err := CheckTenant(tenant); err != nil {
		return Approval{}, err
	}
	if err := requester.Check(); err != nil {
		return Approval{}, err
	}
	if err := a.enf.CheckPermission(p); err != nil {
		return Approval{}, err
	}
	if err := checkTarget(target); err != nil {
		return Approval{}, err
	}
	switch {
	case ttl < 0 || ttl > a.maxTTL:
		return Approval{}, &InputError{Field: "ttl", Reason: "must be between 0 and MaxTTL"}
	case ttl == 0:
		ttl = a.ttl
	}
	if err := a.allowed(ctx, tenant, requester, p); err != nil {
		return Approval{}, err
	}
	now := a.now().UTC().Truncate(time.Microsecond)
	id, err := a.newID(now)
	if err != nil {
		return Approval{}, err
	}
	ap := Approval{
		ID: id, Tenant: tenant, Requester: requester, Permission: p, Target: target,
		PayloadHash: payloadHash, CreatedAt: now, ExpiresAt: now.Add(ttl), Status: StatusPending,
	}
	if err := a.store.CreateApproval(ctx, ap); err != nil {
		return Approval{}, approvalErr("creating", err)
	}
	return ap, nil
}

// Approve approves the tenant's pending approval id as approver, who
// must be a user other than the requester (ErrSelfApproval) holding the
// approve permission of the approval's section (ErrDenied; API keys never
// approve). ErrNotFound, ErrNotPending, ErrExpired as the store reports.
func (a *Approvals) Approve(ctx context.Context, tenant, id string, approver Subject) (Approval, error) {
	return a.decide(ctx, tenant, id, approver, StatusApproved)
}

// Reject rejects the tenant's pending approval id, under the rules of
// Approve.
func (a *Approvals) Reject(ctx context.Context, tenant, id string, approver Subject) (Approval, error) {
	return a.decide(ctx, tenant, id, approver, StatusRejected)
}

func (a *Approvals) decide(ctx context.Context, tenant, id string, by Subject, status Status) (Approval, error) {
	if err := CheckTenant(tenant); err != nil {
		return Approval{}, err
	}
	if err := checkID(id); err != nil {
		return Approval{}, err
	}
	if err := by.Check(); err != nil {
		return Approval{}, err
	}
	ap, err := a.store.Approval(ctx, tenant, id)
	if err != nil {
		return Approval{}, approvalErr("reading", err)
	}
	if ap.Requester == by {
		return Approval{}, ErrSelfApproval
	}
	if by.Kind != KindUser {
		return Approval{}, ErrDenied
	}
	if err := a.allowed(ctx, tenant, by, Permission{ap.Permission.Section, Approve}); err != nil {
		return Approval{}, err
	}
	ap, err = a.store.DecideApproval(ctx, tenant, id, by, status, a.now().UTC().Truncate(time.Microsecond))
	if err != nil {
		return Approval{}, approvalErr("deciding", err)
	}
	return ap, nil
}

// Consume uses the tenant's approved approval id, once: the claim
// (requester, permission, target, payload hash) must match the approval
// exactly (ErrMismatch), it must be approved (ErrNotApproved), unexpired
// (ErrExpired) and not yet consumed (ErrConsumed); the requester must
// still hold the permission (ErrDenied), and the approver must still hold
// the approve permission of its section (ErrApproverRevoked, and the
// approval is left as it is: an approval stands only while its approver
// may still give it), nor when ApprovalConfig.RequesterStands refuses it
// (ErrWithdrawn, left as it is too). On success the caller performs the
// action.
func (a *Approvals) Consume(ctx context.Context, tenant, id string, c Claim) (Approval, error) {
	if err := CheckTenant(tenant); err != nil {
		return Approval{}, err
	}
	if err := checkID(id); err != nil {
		return Approval{}, err
	}
	if err := c.Requester.Check(); err != nil {
		return Approval{}, err
	}
	if err := a.enf.CheckPermission(c.Permission); err != nil {
		return Approval{}, err
	}
	if err := a.allowed(ctx, tenant, c.Requester, c.Permission); err != nil {
		return Approval{}, err
	}
	if err := a.approverStands(ctx, tenant, id, c); err != nil {
		return Approval{}, err
	}
	ap, err := a.store.ConsumeApproval(ctx, tenant, id, c, a.now().UTC().Truncate(time.Microsecond))
	if err != nil {
		return Approval{}, approvalErr("consuming", err)
	}
	return ap, nil
}

// approverStands returns ErrApproverRevoked when approval id is approved
// for claim c and its decider no longer holds the approve permission of
// its section, or no longer stands behind it (ApprovalConfig.DeciderActive),
// and what ApprovalConfig.RequesterStands returns (ErrWithdrawn) when its
// requester no longer does.
// Any other state is left to the store's atomic consumption
// to report (ErrNotFound, ErrMismatch, ErrNotApproved…), so that nothing
// is told about an approval to whoever does not present its claim.
func (a *Approvals) approverStands(ctx context.Context, tenant, id string, c Claim) error {
	ap, err := a.store.Approval(ctx, tenant, id)
	switch {
	case errors.Is(err, ErrNotFound):
		return nil
	case err != nil:
		return approvalErr("reading", err)
	case ap.Status != StatusApproved || !c.Matches(ap):
		return nil
	}
	err = a.allowed(ctx, tenant, ap.Decider, Permission{ap.Permission.Section, Approve})
	switch {
	case errors.Is(err, ErrDenied):
		return ErrApproverRevoked
	case err != nil:
		var ie *InputError
		if errors.As(err, &ie) {
			return ErrApproverRevoked // a decider no subject can be: no approval
		}
		return err
	}
	if a.deciderActive != nil {
		if err := a.deciderActive(ctx, tenant, ap); err != nil {
			return err
		}
	}
	if a.requesterOK != nil {
		return a.requesterOK(ctx, tenant, ap)
	}
	return nil
}

// Get returns the tenant's approval id.
func (a *Approvals) Get(ctx context.Context, tenant, id string) (Approval, error) {
	if err := CheckTenant(tenant); err != nil {
		return Approval{}, err
	}
	if err := checkID(id); err != nil {
		return Approval{}, err
	}
	ap, err := a.store.Approval(ctx, tenant, id)
	if err != nil {
		return Approval{}, approvalErr("reading", err)
	}
	return ap, nil
}

// List returns the tenant's approvals selected by q, newest first.
func (a *Approvals) List(ctx context.Context, tenant string, q ApprovalQuery) ([]Approval, error) {
	if err := CheckTenant(tenant); err != nil {
		return nil, err
	}
	if q.Before != "" {
		if err := checkID(q.Before); err != nil {
			return nil, err
		}
	}
	switch q.Status {
	case "", StatusPending, StatusApproved, StatusRejected, StatusConsumed:
	default:
		return nil, &InputError{Field: "status", Reason: "is not a stored status"}
	}
	if q.Limit < 0 {
		return nil, &InputError{Field: "limit", Reason: "must not be negative"}
	}
	out, err := a.store.ListApprovals(ctx, tenant, q)
	if err != nil {
		return nil, approvalErr("listing", err)
	}
	return out, nil
}

// approvalErr passes the ApprovalStore sentinels through and wraps any
// other error as a store failure.
func approvalErr(what string, err error) error {
	for _, s := range []error{ErrNotFound, ErrDuplicate, ErrSelfApproval, ErrNotPending, ErrExpired, ErrNotApproved, ErrConsumed, ErrMismatch} {
		if errors.Is(err, s) {
			return err
		}
	}
	return fmt.Errorf("rbac: approval store: %s: %w", what, err)
}
