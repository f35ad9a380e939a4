package rbac

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	casbin "github.com/casbin/casbin/v2"
	"github.com/casbin/casbin/v2/model"
)

// Defaults filled in by New.
const (
	DefaultMaxAdmins      = 1
	DefaultMaxCustomRoles = 1000
)

// maxAttempts bounds the compare-and-set retries of one change.
const maxAttempts = 64

// Config configures an Enforcer. Zero fields take the documented defaults.
type Config struct {
	// Store keeps the tenants' policies (required).
	Store PolicyStore
	// Sections are the host application's own sections, beyond the eight
	// built in (named like custom roles: see CheckRole). The owner role
	// holds every action in them; no other built-in role holds any, so a
	// tenant gives them out through custom roles. Every replica sharing a
	// Store must be given the same Sections: a stored rule naming a section
	// a replica lacks grants nothing on that replica.
	Sections []Section
	// MaxAdmins is the recommended largest number of subjects that can
	// administer a tenant (owners and holders of users:manage): AdminWarning
	// warns above it (default 1, as the usual advice is to keep admin roles
	// to a minimum).
	MaxAdmins int
	// MaxCustomRoles bounds the custom roles of one tenant (default 1000).
	MaxCustomRoles int
}

// Enforcer decides whether a subject may do an action in a section of a
// tenant, and changes tenants' roles and grants.
//
// It keeps, per tenant, a decision table compiled from the tenant's casbin
// policy (loaded through Adapter) and tagged with the policy version.
// Every decision first makes sure the table is at the version it is asked
// for (Decide reads it from the store; DecideAt is given it): when the
// version has moved, the table is brought forward with the store's change
// log, or reloaded, before deciding. A revocation made through any
// Enforcer sharing the Store is therefore in force on the next decision of
// every Enforcer.
//
// An Enforcer is safe for concurrent use. Decisions take no lock and
// allocate nothing when the table is current.
type Enforcer struct {
	store     PolicyStore
	reg       *registry
	adapter   *Adapter
	model     model.Model
	builtins  []*role
	all       Perms
	seed      maphash.Seed
	maxAdmins int
	maxRoles  int

	tmu     sync.Mutex // serialises additions to tenants
	tenants atomic.Pointer[pmap[string, *tenantState]]
}

// tenantState holds the current table of one tenant.
type tenantState struct {
	mu  sync.Mutex // serialises loads and catch-ups
	cur atomic.Pointer[table]
}

// New validates cfg, fills its defaults and returns an Enforcer. A bad
// field is reported as a *ConfigError.
func New(cfg Config) (*Enforcer, error) {
	switch {
	case cfg.Store == nil:
		return nil, &ConfigError{Field: "Store", Reason: "is required"}
	case cfg.MaxAdmins < 0:
		return nil, &ConfigError{Field: "MaxAdmins", Reason: "must not be negative"}
	case cfg.MaxCustomRoles < 0:
		return nil, &ConfigError{Field: "MaxCustomRoles", Reason: "must not be negative"}
	}
	reg, err := newRegistry(cfg.Sections)
	if err != nil {
		return nil, err
	}
	m, err := model.NewModelFromString(ModelText)
	if err != nil {
		return nil, fmt.Errorf("rbac: casbin model: %w", err)
	}
	e := &Enforcer{
		store:     cfg.Store,
		reg:       reg,
		adapter:   &Adapter{store: cfg.Store, reg: reg},
		model:     m,
		seed:      maphash.MakeSeed(),
		maxAdmins: cmp.Or(cfg.MaxAdmins, DefaultMaxAdmins),
		maxRoles:  cmp.Or(cfg.MaxCustomRoles, DefaultMaxCustomRoles),
	}
	for _, d := range builtinRoles {
		e.builtins = append(e.builtins, &role{name: d.name, builtin: true, bits: reg.builtinBits(d)})
	}
	e.all = reg.all()
	e.tenants.Store(&pmap[string, *tenantState]{})
	return e, nil
}

// Adapter returns the Enforcer's casbin adapter, which loads one tenant's
// policy from the Store into a casbin model.
func (e *Enforcer) Adapter() *Adapter { return e.adapter }

// Casbin returns a casbin Enforcer of ModelText with the tenant's policy
// loaded through Adapter, for inspection (EnforceEx, the implicit-roles
// APIs). It decides as the Enforcer does at the version it loaded: it
// denies a section or an action the Enforcer does not know, and a role
// name given as the subject. It is built on every call and never used by
// the Enforcer itself; its auto-save calls fail with ErrReadOnly.
func (e *Enforcer) Casbin(ctx context.Context, tenant string) (*casbin.Enforcer, error) {
	ce, err := casbin.NewEnforcer(e.model.Copy(), e.adapter)
	if err != nil {
		return nil, err
	}
	ce.ClearPolicy()
	if _, err := e.adapter.load(ctx, ce.GetModel(), tenant); err != nil {
		return nil, err
	}
	if err := ce.BuildRoleLinks(); err != nil {
		return nil, err
	}
	return ce, nil
}

// AllPerms returns every permission: what the host application itself
// (the facade's system principal) holds.
func (e *Enforcer) AllPerms() Perms { return e.all }

// Sections returns the sections of the Enforcer: the built-in ones, then
// Config.Sections.
func (e *Enforcer) Sections() []Section { return slices.Clone(e.reg.sections) }

// CheckPermission reports whether p names a section of the Enforcer and
// one of the six actions, as an *InputError. The facade calls it when a
// route is declared, so that a typo fails at start-up, not per request.
func (e *Enforcer) CheckPermission(p Permission) error { return e.reg.check(p) }

// Decision is the answer to a permission check.
type Decision struct {
	// Allowed reports whether the subject holds the permission.
	Allowed bool
	// NeedsApproval reports whether the tenant requires four-eyes approval
	// for the permission: the action may then run only by consuming an
	// approved request (Approvals.Consume). It is reported whether or not
	// Allowed is.
	NeedsApproval bool
	// Version is the policy version the decision was made at.
	Version uint64
}

// Decide reports whether sub may do a in section s of tenant. The tenant
// must come from the authenticated principal, never from the request.
//
// Decide reads the tenant's policy version from the Store (one cheap read:
// an atomic load in memstore, one indexed row or key in the networked
// backends) and brings the tenant's table to it first, so that a change
// made through any Enforcer on the same Store is in force.
// The first decision for a tenant loads its policy; the first after a
// change applies the store's change log (a few microseconds per change).
//
// Any error means deny: an unknown section or action or a malformed
// subject (*InputError), a store failure, a stored rule that cannot be
// used (*RuleError). The Decision is then the zero Decision.
func (e *Enforcer) Decide(ctx context.Context, tenant string, sub Subject, s Section, a Action) (Decision, error) {
	return e.DecideWithin(ctx, tenant, sub, Subject{}, s, a)
}

// DecideWithin is Decide for a subject that acts within the permissions
// of another: sub is allowed only if sub holds the permission and within
// holds it too, both at the same policy version (an API key created by a
// user acts within its creator's permissions now, whatever roles the key
// itself was given). A zero within is Decide. It costs what Decide costs:
// one version read and two table lookups, no more store reads.
// NeedsApproval is reported as by Decide.
func (e *Enforcer) DecideWithin(ctx context.Context, tenant string, sub, within Subject, s Section, a Action) (Decision, error) {
	st, err := e.state(tenant)
	if err != nil {
		return Decision{}, err
	}
	v, err := e.store.Version(ctx, tenant)
	if err != nil {
		return Decision{}, storeErr("reading the policy version", err)
	}
	return e.decide(ctx, st, tenant, v, sub, within, s, a)
}

// DecideAt is Decide for a caller that already knows the tenant's policy
// version, for example from a Version read batched with its session
// lookup: the table is brought to at least version first. A version
// older than the truth lets an older policy decide, so pass the version
// read for this request.
func (e *Enforcer) DecideAt(ctx context.Context, tenant string, version uint64, sub Subject, s Section, a Action) (Decision, error) {
	st, err := e.state(tenant)
	if err != nil {
		return Decision{}, err
	}
	return e.decide(ctx, st, tenant, version, sub, Subject{}, s, a)
}

// Version returns the tenant's current policy version, read from the Store.
func (e *Enforcer) Version(ctx context.Context, tenant string) (uint64, error) {
	if err := CheckTenant(tenant); err != nil {
		return 0, err
	}
	v, err := e.store.Version(ctx, tenant)
	if err != nil {
		return 0, storeErr("reading the policy version", err)
	}
	return v, nil
}

func (e *Enforcer) decide(ctx context.Context, st *tenantState, tenant string, v uint64, sub, within Subject, s Section, a Action) (Decision, error) {
	bit := e.reg.index(s, a)
	if bit < 0 {
		return Decision{}, e.reg.check(Permission{s, a})
	}
	t := st.cur.Load()
	if t == nil || t.version < v {
		var err error
		if t, err = e.sync(ctx, st, tenant, v); err != nil {
			return Decision{}, err
		}
	}
	d := Decision{Allowed: t.allows(sub, bit), NeedsApproval: hasBit(t.approval, bit), Version: t.version}
	if d.Allowed && within != (Subject{}) {
		d.Allowed = t.allows(within, bit)
	}
	if !d.Allowed {
		if err := sub.Check(); err != nil {
			return Decision{}, err
		}
		if within != (Subject{}) {
			if err := within.Check(); err != nil {
				return Decision{}, err
			}
		}
	}
	return d, nil
}

// state returns the state of tenant, creating it (after validating the
// name) on first use.
func (e *Enforcer) state(tenant string) (*tenantState, error) {
	h := maphash.String(e.seed, tenant)
	if st, ok := e.tenants.Load().get(h, tenant); ok {
		return st, nil
	}
	if err := CheckTenant(tenant); err != nil {
		return nil, err
	}
	e.tmu.Lock()
	defer e.tmu.Unlock()
	m := *e.tenants.Load()
	if st, ok := m.get(h, tenant); ok {
		return st, nil
	}
	st := &tenantState{}
	m = m.set(nil, h, strings.Clone(tenant), st)
	e.tenants.Store(&m)
	return st, nil
}

// Forget drops the Enforcer's table of tenant: the next decision reloads
// it. Use it when a tenant is closed or deleted, or after a tenant's
// policy was restored to an older version (a store whose version goes
// back is otherwise trusted only once it passes the version last seen).
func (e *Enforcer) Forget(tenant string) {
	e.tmu.Lock()
	defer e.tmu.Unlock()
	m := e.tenants.Load().del(nil, maphash.String(e.seed, tenant), tenant)
	e.tenants.Store(&m)
}

// fresh returns tenant's table at the store's current version.
func (e *Enforcer) fresh(ctx context.Context, tenant string) (*tenantState, *table, error) {
	st, err := e.state(tenant)
	if err != nil {
		return nil, nil, err
	}
	v, err := e.store.Version(ctx, tenant)
	if err != nil {
		return nil, nil, storeErr("reading the policy version", err)
	}
	t := st.cur.Load()
	if t == nil || t.version < v {
		if t, err = e.sync(ctx, st, tenant, v); err != nil {
			return nil, nil, err
		}
	}
	return st, t, nil
}

var errBehind = errors.New("rbac: the store's change log is behind its version")

// sync brings tenant's table to at least version want: by applying the
// store's changes since the table's version, or, if there is no table
// yet or the log cannot bring it there, by loading the whole policy.
func (e *Enforcer) sync(ctx context.Context, st *tenantState, tenant string, want uint64) (*table, error) {
	st.mu.Lock()
	defer st.mu.Unlock()
	t := st.cur.Load()
	if t != nil && t.version >= want {
		return t, nil
	}
	if t != nil {
		nt, err := e.catchUp(ctx, t)
		switch {
		case err == nil && nt.version >= want:
			st.cur.Store(nt)
			return nt, nil
		case err != nil && !errors.Is(err, ErrHistoryGone) && !errors.Is(err, errBehind):
			return nil, err
		}
	}
	nt, err := e.load(ctx, tenant)
	if err != nil {
		return nil, err
	}
	if nt.version < want {
		return nil, fmt.Errorf("rbac: the store returned the policy at version %d after reporting version %d", nt.version, want)
	}
	st.cur.Store(nt)
	return nt, nil
}

// catchUp returns t with the store's changes since t.version applied.
func (e *Enforcer) catchUp(ctx context.Context, t *table) (*table, error) {
	changes, err := e.store.Changes(ctx, t.tenant, t.version)
	if err != nil {
		if errors.Is(err, ErrHistoryGone) {
			return nil, err
		}
		return nil, storeErr("reading the policy changes", err)
	}
	if len(changes) == 0 {
		return nil, errBehind
	}
	b := t.builder()
	for i, ch := range changes {
		if ch.Version != t.version+1+uint64(i) {
			return nil, errBehind
		}
		if err := e.applyRules(b, ch.Remove, false); err != nil {
			return nil, err
		}
		if err := e.applyRules(b, ch.Add, true); err != nil {
			return nil, err
		}
	}
	return b.done(changes[len(changes)-1].Version), nil
}

func (e *Enforcer) applyRules(b *builder, rules []Rule, add bool) error {
	for _, r := range rules {
		bit, known, err := e.reg.ruleBit(b.t.tenant, r)
		if err != nil {
			return err
		}
		if known {
			b.apply(r, bit, add)
		}
	}
	return nil
}

// load reads tenant's whole policy through the casbin adapter into a
// casbin model, and compiles the model's rows into a table.
func (e *Enforcer) load(ctx context.Context, tenant string) (*table, error) {
	m := e.model.Copy()
	v, err := e.adapter.load(ctx, m, tenant)
	if err != nil {
		var re *RuleError
		if errors.As(err, &re) {
			return nil, err
		}
		return nil, storeErr("loading the policy", err)
	}
	b := newTable(tenant, e.reg, e.builtins, e.seed).builder()
	for _, pt := range [...]struct{ sec, ptype string }{{"p", "p"}, {"g", "g"}, {"p", "p2"}} {
		for _, row := range m[pt.sec][pt.ptype].Policy {
			if pt.ptype == "p" && len(row) == 4 && row[1] == builtinDomain {
				continue // a built-in role's row: compiled from builtinRoles
			}
			r, ok := rowRule(tenant, pt.ptype, row)
			if !ok {
				return nil, fmt.Errorf("rbac: the casbin model holds a row the adapter cannot have written (%s)", pt.ptype)
			}
			// The adapter validated the rule and dropped unknown sections.
			b.apply(r, e.reg.bitOf(r), true)
		}
	}
	return b.done(v), nil
}

// publish installs t with remove and add applied as version t.version+1,
// if the tenant's table is still t's version (a change this Enforcer just
// wrote). Otherwise the next decision catches up from the store.
func (e *Enforcer) publish(st *tenantState, t *table, remove, add []Rule) {
	st.mu.Lock()
	defer st.mu.Unlock()
	if cur := st.cur.Load(); cur == nil || cur.version != t.version {
		return
	}
	b := t.builder()
	if e.applyRules(b, remove, false) != nil || e.applyRules(b, add, true) != nil {
		return // cannot happen: the rules were built by this package
	}
	st.cur.Store(b.done(t.version + 1))
}

// change runs one checked change of tenant's policy: plan looks at the
// current table and returns the rules to remove and add, or an error; the
// change is written with a compare-and-set on the table's version, so
// that plan's checks hold when it lands, and planned again if another
// writer got there first.
func (e *Enforcer) change(ctx context.Context, tenant string, plan func(t *table) (remove, add []Rule, err error)) error {
	for range maxAttempts {
		st, t, err := e.fresh(ctx, tenant)
		if err != nil {
			return err
		}
		remove, add, err := plan(t)
		if err != nil {
			return err
		}
		if len(remove) == 0 && len(add) == 0 {
			return nil
		}
		err = e.store.Update(ctx, tenant, t.version, remove, add)
		if errors.Is(err, ErrConflict) {
			continue
		}
		if err != nil {
			return storeErr("updating the policy", err)
		}
		e.publish(st, t, remove, add)
		return nil
	}
	return ErrConflict
}

func storeErr(what string, err error) error {
	return fmt.Errorf("rbac: policy store: %s: %w", what, err)
}
