package guard

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// MaxTenantIDBytes bounds tenant identifiers.
const MaxTenantIDBytes = 63

// CheckTenantID validates a tenant identifier: 1 to 63 bytes of lower-case
// ASCII letters, digits, '-' and '_', starting with a letter or digit.
func CheckTenantID(id string) error {
	if id == "" || len(id) > MaxTenantIDBytes {
		return &InputError{Field: "tenant", Reason: "must be 1 to 63 characters"}
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		ok := c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || i > 0 && (c == '-' || c == '_')
		if !ok {
			return &InputError{Field: "tenant", Reason: "must be lower-case letters, digits, '-' or '_'"}
		}
	}
	return nil
}

// CreateTenant creates a tenant with the given id, name and policy. Only
// the system may create tenants (ErrForbidden otherwise, recorded as
// access.denied with reason system_only in the caller's tenant). The
// policy's MFARequiredSince is set as SetPolicy sets it: the time of
// creation if RequireMFA is on (MFAGrace runs from then), else zero; the
// caller's value is ignored.
//
// The policy is checked as SetPolicy checks it (*PolicyError): requiring
// MFA needs Config.MFA, and requiring SSO needs Config.SSO and an IdP
// connection, which a new tenant does not have yet: create the tenant,
// set its IdP (SetSSOConnection), then require SSO (SetPolicy).
//
// A tenant whose creation cannot be recorded in the audit log is not
// created: it is removed again, and ErrUnavailable returned.
func (g *Guard) CreateTenant(ctx context.Context, by Principal, id, name string, p Policy) (Tenant, error) {
	if by.Kind != KindSystem {
		return Tenant{}, g.refused(ctx, by, rbac.Settings, rbac.Manage, reasonSystemOnly)
	}
	if err := CheckTenantID(id); err != nil {
		return Tenant{}, err
	}
	if err := checkText("name", name, 200); err != nil {
		return Tenant{}, err
	}
	if err := g.checkPolicy(ctx, id, p, true); err != nil {
		return Tenant{}, err
	}
	t := Tenant{ID: id, Name: name, Version: 1, CreatedAt: g.now().UTC().Truncate(time.Microsecond)}
	// As SetPolicy sets it: the caller's value is ignored.
	p.MFARequiredSince = time.Time{}
	if p.RequireMFA {
		p.MFARequiredSince = t.CreatedAt
	}
	t.Policy = p
	if err := g.stores.Tenants.CreateTenant(ctx, t); err != nil {
		if errors.Is(err, ErrTenantExists) {
			return Tenant{}, ErrTenantExists
		}
		return Tenant{}, unavailable("create tenant", err)
	}
	// The policy set, as tenant.policy_changed lists a change: the
	// starting point of the tenant's first one.
	e := g.adminEvent(by, id, audit.TenantCreated, id)
	if ch := policyChanges(Policy{}, p); len(ch) > 0 {
		e.Meta = make(map[string]string, len(ch))
		for _, c := range ch {
			e.Meta[c[0]] = c[1]
		}
	}
	if err := g.record(ctx, e); err != nil {
		// The tenant exists but its creation is not on record: undo it,
		// unless its policy was changed meanwhile (that change is on
		// record, and stands).
		_ = g.stores.Tenants.DeleteTenant(context.WithoutCancel(ctx), id, t.Version)
		g.policies.forget(id)
		return Tenant{}, err
	}
	return t, nil
}

// Tenant returns the tenant with the given id.
func (g *Guard) Tenant(ctx context.Context, id string) (Tenant, error) {
	if err := CheckTenantID(id); err != nil {
		return Tenant{}, ErrTenantNotFound
	}
	t, err := g.stores.Tenants.Tenant(ctx, id)
	switch {
	case errors.Is(err, ErrTenantNotFound):
		return Tenant{}, ErrTenantNotFound
	case err != nil:
		return Tenant{}, unavailable("load tenant", err)
	}
	return t, nil
}

// EffectivePolicy returns the tenant's policy with the Guard's defaults
// filled in: the values in force.
func (g *Guard) EffectivePolicy(ctx context.Context, tenant string) (Policy, error) {
	t, err := g.policies.get(ctx, tenant)
	if err != nil {
		return Policy{}, err
	}
	return t.Policy.withDefaults(g.defaults), nil
}

// SetPolicy replaces a tenant's policy if the tenant is still at version
// (as read from Tenant), so that two admins editing at once cannot silently
// overwrite each other (ErrConflict). It returns the new version. A user
// changing the policy needs a recent authentication (ErrStepUpRequired);
// requiring MFA needs Config.MFA.
//
// When the change lowers the effective session limit (Policy.SessionLimit
// and its default), SetPolicy then ends, for every user of the tenant,
// the sessions beyond the new limit, keeping each user's newest by
// creation time, each recorded as session.revoked by the system with
// reason session_limit. Should that fail part way (a store failure), the
// policy change stands, stored and recorded: SetPolicy returns the new
// version together with the error (ErrUnavailable; or the context's
// error, if it ended), the sessions ended so far stay ended (and
// recorded, but for those whose record failed: a revocation stands
// unrecorded), and Maintain ends the rest at its next run.
//
// A policy that switches RequireSSO on, or names another break-glass
// owner, is checked again once written: if the tenant's IdP was removed
// meanwhile (DeleteSSOConnection, which reads the policy again once the
// IdP is removed, refuses a removal that sees this change), or the owner
// lost their last factor, their owner role or their account meanwhile (a
// removal that read the policy before this change), the previous policy
// is put back and the *PolicyError returned.
//
// A policy change that cannot be recorded in the audit log does not stand:
// the previous policy is put back (a new version, so that every replica's
// cache sees it), and ErrUnavailable returned. If the previous policy
// cannot be put back (a store failure, or another change made meanwhile:
// that one is not overwritten), ErrUnavailable is returned too and the
// change stays, unrecorded.
func (g *Guard) SetPolicy(ctx context.Context, by Principal, tenant string, p Policy, version int64) (int64, error) {
	if err := g.may(ctx, by, tenant, rbac.Settings, rbac.Manage); err != nil {
		return 0, err
	}
	if err := g.requireRecentAuth(ctx, by, rbac.Settings, rbac.Manage); err != nil {
		return 0, err
	}
	if err := g.checkPolicy(ctx, tenant, p, false); err != nil {
		return 0, err
	}
	cur, err := g.Tenant(ctx, tenant)
	if err != nil {
		return 0, err
	}
	if cur.Version != version {
		// The store would refuse it; checked here so that cur is the
		// policy replaced, the one to put back if the change cannot be
		// recorded.
		return 0, ErrConflict
	}
	switch {
	case !p.RequireMFA:
		p.MFARequiredSince = time.Time{}
	case cur.Policy.RequireMFA && !cur.Policy.MFARequiredSince.IsZero():
		p.MFARequiredSince = cur.Policy.MFARequiredSince
	default:
		p.MFARequiredSince = g.now().UTC().Truncate(time.Microsecond)
	}
	lowered := p.withDefaults(g.defaults).SessionLimit < cur.Policy.withDefaults(g.defaults).SessionLimit
	v, err := g.stores.Tenants.SetPolicy(ctx, tenant, p, version)
	switch {
	case errors.Is(err, ErrConflict):
		return 0, ErrConflict
	case errors.Is(err, ErrTenantNotFound):
		return 0, ErrTenantNotFound
	case err != nil:
		return 0, unavailable("set policy", err)
	}
	g.policies.forget(tenant)
	if p.RequireSSO && (!cur.Policy.RequireSSO || cur.Policy.BreakGlassUser != p.BreakGlassUser) {
		// The IdP and the break-glass owner were checked before the
		// write; a removal of the IdP (DeleteSSOConnection), or of the
		// owner's last factor, owner role or account, may have come
		// between, having read the policy before it required SSO or named
		// them. Checked again now the policy is written (each side
		// writes, then reads the other's), and put back if the IdP is
		// gone or the owner no longer qualifies.
		if err := g.checkSSOPolicy(ctx, tenant, p, false); err != nil {
			if _, uerr := g.stores.Tenants.SetPolicy(context.WithoutCancel(ctx), tenant, cur.Policy, v); uerr != nil {
				return 0, unavailable("undo policy", uerr)
			}
			g.policies.forget(tenant)
			return 0, err
		}
	}
	meta := map[string]string{"version": strconv.FormatInt(v, 10)}
	for _, c := range policyChanges(cur.Policy, p) {
		meta[c[0]] = c[1]
	}
	e := g.adminEvent(by, tenant, audit.TenantPolicySet, tenant)
	e.Meta = meta
	if err := g.record(ctx, e); err != nil {
		// Not on record: put the replaced policy back, unless someone
		// changed it again meanwhile.
		if _, uerr := g.stores.Tenants.SetPolicy(context.WithoutCancel(ctx), tenant, cur.Policy, v); uerr == nil {
			g.policies.forget(tenant)
		}
		return 0, err
	}
	if lowered {
		if _, err := g.trimSessions(ctx, tenant, p.withDefaults(g.defaults), cur.IdPChangedAt); err != nil {
			return v, err
		}
	}
	return v, nil
}

// checkPolicy refuses, with a *PolicyError, a policy that tenant may not
// have on this Guard, for CreateTenant and SetPolicy alike: one Validate
// refuses (with the defaults filled in, validateWith), RequireMFA without
// Config.MFA, and RequireSSO without Config.SSO, an IdP connection or a
// usable break-glass owner (checkSSOPolicy). A tenant being created
// (creating) has no IdP connection, nor, ring-fenced, stores to look in.
// A store failure is ErrUnavailable.
func (g *Guard) checkPolicy(ctx context.Context, tenant string, p Policy, creating bool) error {
	if err := p.validateWith(g.defaults); err != nil {
		return err
	}
	if p.RequireMFA && g.mfa == nil {
		return &PolicyError{Field: "RequireMFA", Reason: "needs MFA to be configured (Config.MFA)"}
	}
	if creating && p.RequireSSO && g.sso != nil {
		return errNoIdP()
	}
	return g.checkSSOPolicy(ctx, tenant, p, !creating)
}

// policyChanges lists the fields that differ between two policies, as
// audit metadata: name (the field's JSON name) and new value. Every field
// is listed but MFARequiredSince, which follows RequireMFA
// (TestPolicyChangesListsEveryField).
func policyChanges(old, cur Policy) [][2]string {
	var out [][2]string
	add := func(name string, changed bool, v any) {
		if changed {
			out = append(out, [2]string{name, fmt.Sprint(v)})
		}
	}
	add("session_limit", old.SessionLimit != cur.SessionLimit, cur.SessionLimit)
	add("on_session_limit", old.OnSessionLimit != cur.OnSessionLimit, cur.OnSessionLimit)
	add("idle_timeout", old.IdleTimeout != cur.IdleTimeout, cur.IdleTimeout)
	add("session_lifetime", old.SessionLifetime != cur.SessionLifetime, cur.SessionLifetime)
	add("password_min_length", old.PasswordMinLength != cur.PasswordMinLength, cur.PasswordMinLength)
	add("password_history", old.PasswordHistory != cur.PasswordHistory, cur.PasswordHistory)
	add("password_max_age", old.PasswordMaxAge != cur.PasswordMaxAge, cur.PasswordMaxAge)
	add("require_mfa", old.RequireMFA != cur.RequireMFA, cur.RequireMFA)
	add("mfa_allow_email", old.MFAAllowEmail != cur.MFAAllowEmail, cur.MFAAllowEmail)
	add("mfa_grace", old.MFAGrace != cur.MFAGrace, cur.MFAGrace)
	add("require_sso", old.RequireSSO != cur.RequireSSO, cur.RequireSSO)
	add("break_glass_user", old.BreakGlassUser != cur.BreakGlassUser, cur.BreakGlassUser)
	add("review_every", old.ReviewEvery != cur.ReviewEvery, cur.ReviewEvery)
	add("dormant_after", old.DormantAfter != cur.DormantAfter, cur.DormantAfter)
	add("auto_deactivate_dormant", old.AutoDeactivateDormant != cur.AutoDeactivateDormant, cur.AutoDeactivateDormant)
	add("audit_retention", old.AuditRetention != cur.AuditRetention, cur.AuditRetention)
	return out
}

// policyCache keeps tenants for a short TTL so a login does not pay a store
// round trip for the policy, while a change reaches every replica quickly.
type policyCache struct {
	store TenantStore
	ttl   time.Duration
	now   func() time.Time

	defaults Policy // applied to each cached tenant's policy once, when fetched

	mu sync.Mutex
	m  map[string]*cachedTenant // entries are never changed once stored
}

// cachedTenant is a tenant as fetched, with its effective policy (the
// tenant's own under the Guard's defaults): the per-request session check
// reads both through the pointer, copying neither.
type cachedTenant struct {
	t       Tenant
	eff     Policy
	fetched time.Time
}

const policyCacheMax = 10000

func newPolicyCache(s TenantStore, ttl time.Duration, now func() time.Time, defaults Policy) *policyCache {
	return &policyCache{store: s, ttl: ttl, now: now, defaults: defaults, m: make(map[string]*cachedTenant)}
}

func (c *policyCache) get(ctx context.Context, id string) (Tenant, error) {
	e, err := c.entry(ctx, id)
	if err != nil {
		return Tenant{}, err
	}
	return e.t, nil
}

// entry returns tenant id as cached (fetched if missing or older than the
// TTL); the caller must not change it.
func (c *policyCache) entry(ctx context.Context, id string) (*cachedTenant, error) {
	if err := CheckTenantID(id); err != nil {
		return nil, ErrTenantNotFound
	}
	now := c.now()
	if c.ttl > 0 {
		c.mu.Lock()
		e := c.m[id]
		c.mu.Unlock()
		if e != nil && now.Sub(e.fetched) < c.ttl && !now.Before(e.fetched) {
			return e, nil
		}
	}
	t, err := c.store.Tenant(ctx, id)
	switch {
	case errors.Is(err, ErrTenantNotFound):
		return nil, ErrTenantNotFound
	case err != nil:
		return nil, unavailable("load tenant", err)
	}
	e := &cachedTenant{t: t, eff: t.Policy.withDefaults(c.defaults), fetched: now}
	if c.ttl > 0 {
		c.mu.Lock()
		if len(c.m) >= policyCacheMax {
			clear(c.m)
		}
		c.m[id] = e
		c.mu.Unlock()
	}
	return e, nil
}

func (c *policyCache) forget(id string) {
	c.mu.Lock()
	delete(c.m, id)
	c.mu.Unlock()
}
