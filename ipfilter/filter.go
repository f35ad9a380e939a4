package ipfilter

import (
	"context"
	"fmt"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"
)

// Decision is the outcome of checking a client address against a scope's
// allow-list. The zero Decision is Denied.
type Decision uint8

const (
	// Denied: the list is enforced and does not contain the address (or
	// the address is invalid). Refuse the request.
	Denied Decision = iota
	// Allowed: the list contains the address.
	Allowed
	// Unrestricted: the list is empty, so every (valid) address is
	// allowed.
	Unrestricted
	// WouldDeny: the list does not contain the address, but it is in
	// report-only mode: let the request through and log that it would
	// have been denied.
	WouldDeny
)

// Allows reports whether the request may proceed: every Decision but
// Denied.
func (d Decision) Allows() bool { return d != Denied }

func (d Decision) String() string {
	switch d {
	case Denied:
		return "denied"
	case Allowed:
		return "allowed"
	case Unrestricted:
		return "unrestricted"
	case WouldDeny:
		return "would_deny"
	}
	return "Decision(" + itoa(int(d)) + ")"
}

// Rule is the compiled allow-list of one scope.
type Rule struct {
	Set        *Set // nil or empty: no restriction
	ReportOnly bool
}

// Check decides on client a: Unrestricted if the list is empty, Allowed
// if it contains a, otherwise Denied, or WouldDeny in report-only mode.
// The zero (invalid) Addr, which no resolver returns, is never allowed
// or unrestricted: it is Denied (WouldDeny in report-only mode), so a
// caller that failed to resolve the client fails closed. Check allocates
// nothing.
func (r Rule) Check(a netip.Addr) Decision {
	switch {
	case !a.IsValid():
	case r.Set.Empty():
		return Unrestricted
	case r.Set.Contains(a):
		return Allowed
	}
	if r.ReportOnly {
		return WouldDeny
	}
	return Denied
}

// Policy is the compiled allow-lists of one tenant at one version. It
// is immutable; a Filter shares one Policy between all requests of a
// tenant until the version moves.
type Policy struct {
	version        uint64
	users, apiKeys Rule
}

// emptyPolicy is the Policy of every tenant at version 0 (never
// written): nothing restricted. Filter returns it without caching
// anything, so that tenants without lists cost no memory.
var emptyPolicy = &Policy{}

// Version returns the version of the lists p was compiled from.
func (p *Policy) Version() uint64 { return p.version }

// Rule returns the rule of scope s (the zero Rule, which restricts
// nothing, for an invalid scope; Filter.Check refuses invalid scopes).
func (p *Policy) Rule(s Scope) Rule {
	switch s {
	case Users:
		return p.users
	case APIKeys:
		return p.apiKeys
	}
	return Rule{}
}

// Check is p.Rule(s).Check(a).
func (p *Policy) Check(s Scope, a netip.Addr) Decision { return p.Rule(s).Check(a) }

// Compile parses stored lists into a Policy. Entries are parsed as
// ParseList does, with AllowAll (the check was made when the list was
// written), unspecified addresses let through (a list written before
// ErrUnspecified existed keeps working; such an entry matches nothing) and
// no length limit; an entry that no longer parses makes the whole Lists
// unusable: the error wraps ErrCorrupt and the *ParseError.
func Compile(l Lists) (*Policy, error) {
	p := &Policy{version: l.Version}
	for _, s := range Scopes {
		r := l.Rules(s)
		set, _, err := parseList(r.Entries, ParseOptions{AllowAll: true, MaxEntries: -1}, true)
		if err != nil {
			return nil, fmt.Errorf("%w: scope %s: %w", ErrCorrupt, s, err)
		}
		rule := Rule{Set: set, ReportOnly: r.ReportOnly}
		if s == Users {
			p.users = rule
		} else {
			p.apiKeys = rule
		}
	}
	return p, nil
}

// DefaultMaxTenants is the default of Config.MaxTenants.
const DefaultMaxTenants = 10_000

// Config configures a Filter. Zero fields take the documented defaults.
type Config struct {
	// Store keeps the lists (required).
	Store Store
	// MaxStale is how long a Filter may use a tenant's cached lists
	// without asking the Store for the version (default 0: it asks on
	// every Check, so a change made on any replica is in force on the
	// next request). With a Store that answers over the network, a
	// positive MaxStale trades that guarantee for fewer round trips: a
	// change then takes up to MaxStale to reach other replicas (the
	// replica that made it sees it at once; see Filter.Replace).
	MaxStale time.Duration
	// Now returns the current time (default time.Now); only read when
	// MaxStale is positive.
	Now func() time.Time
	// MaxTenants bounds the number of tenants whose compiled lists are
	// cached (default DefaultMaxTenants). Beyond it, an arbitrary tenant
	// is dropped from the cache and compiled again on its next request.
	MaxTenants int
	// MaxEntries bounds the length of a list given to Replace (default
	// DefaultMaxEntries).
	MaxEntries int
}

// Filter checks client addresses against the allow-lists of a Store,
// keeping each tenant's lists compiled in memory. It is safe for
// concurrent use.
//
// A tenant's cache entry is one *Policy behind an atomic pointer: a
// change is swapped in whole, both scopes at once, so no request sees a
// half-updated list. On every Check the Filter reads the tenant's version
// from the Store (Config.MaxStale relaxes this) and, when it differs from
// the cached one, loads and compiles the lists again (one loader per
// tenant at a time; the others wait for it).
//
// Per-request cost on a cache hit: Store.Version (a map lookup under a
// read lock for memstore; one round trip for a networked store), a
// lock-free sync.Map lookup, an atomic load and Set.Contains — no
// allocation. A tenant that never had a list (version 0) costs the
// Store.Version read only, and nothing is cached for it. After a change,
// the first request per replica also reads and compiles the lists
// (ParseList: about a millisecond per 1,000 entries).
type Filter struct {
	store      Store
	maxStale   int64 // nanoseconds; 0: always read the version
	now        func() time.Time
	maxTenants int
	maxEntries int

	tenants sync.Map     // tenant → *entry; lock-free reads
	size    atomic.Int64 // entries in tenants
}

// entry is one tenant's cache slot.
type entry struct {
	p       atomic.Pointer[cached]
	checked atomic.Int64 // Now().UnixNano() of the last version read (MaxStale mode)
	load    sync.Mutex   // one loader at a time
	// minVersion is the lowest version a cache hit may serve without
	// reading the version (MaxStale mode). Replace raises it to the
	// version it wrote, so that a Check in flight, which read the version
	// before the change and stamps checked after it, cannot make this
	// replica serve the lists it replaced.
	minVersion atomic.Uint64
}

// cached is a compiled Policy, or the error compiling version failed with.
type cached struct {
	version uint64
	policy  *Policy
	err     error
}

// New validates cfg, fills its defaults and returns a Filter. A bad field
// is reported as a *ConfigError.
func New(cfg Config) (*Filter, error) {
	switch {
	case cfg.Store == nil:
		return nil, &ConfigError{Field: "Store", Reason: "is required"}
	case cfg.MaxStale < 0:
		return nil, &ConfigError{Field: "MaxStale", Reason: "must not be negative"}
	case cfg.MaxTenants < 0:
		return nil, &ConfigError{Field: "MaxTenants", Reason: "must not be negative"}
	case cfg.MaxEntries < 0:
		return nil, &ConfigError{Field: "MaxEntries", Reason: "must not be negative"}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxTenants == 0 {
		cfg.MaxTenants = DefaultMaxTenants
	}
	if cfg.MaxEntries == 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	return &Filter{
		store:      cfg.Store,
		maxStale:   int64(cfg.MaxStale),
		now:        cfg.Now,
		maxTenants: cfg.MaxTenants,
		maxEntries: cfg.MaxEntries,
	}, nil
}

// Check decides whether client may make a request to tenant in scope,
// with the tenant's current lists (see Filter for how current). The
// caller resolves client with a Resolver first, and denies the request
// without calling Check if that fails.
//
// On error the Decision is Denied: the error is an *InputError (empty
// tenant, invalid scope), a Store failure, or wraps ErrCorrupt (a stored
// list that does not compile). Every error means deny (fail closed).
// Check allocates nothing on a cache hit.
func (f *Filter) Check(ctx context.Context, tenant string, scope Scope, client netip.Addr) (Decision, error) {
	if !scope.Valid() {
		return Denied, &InputError{Field: "scope", Reason: "must be Users or APIKeys"}
	}
	p, err := f.Policy(ctx, tenant)
	if err != nil {
		return Denied, err
	}
	return p.Check(scope, client), nil
}

// Policy returns tenant's compiled lists, current as Check defines it.
// Use it to check both scopes, or to learn the version, with one Store
// read.
func (f *Filter) Policy(ctx context.Context, tenant string) (*Policy, error) {
	if tenant == "" {
		return nil, &InputError{Field: "tenant", Reason: "must not be empty"}
	}
	var e *entry
	var now int64
	if f.maxStale > 0 {
		now = f.now().UnixNano()
		if e = f.lookup(tenant); e != nil {
			if c := e.p.Load(); c != nil && c.version >= e.minVersion.Load() && now-e.checked.Load() < f.maxStale {
				return c.result()
			}
		}
	}
	v, err := f.store.Version(ctx, tenant)
	if err != nil {
		return nil, fmt.Errorf("ipfilter: reading the version of tenant lists: %w", err)
	}
	if v == 0 {
		return emptyPolicy, nil
	}
	if e == nil {
		e = f.entry(tenant)
	}
	p, err := f.policyAt(ctx, e, tenant, v)
	if err == nil && f.maxStale > 0 {
		e.checked.Store(now)
	}
	return p, err
}

// PolicyAt is Policy for a caller that already knows tenant's current
// version (it read it together with other data, in the same round trip):
// the Store is not asked for the version, only for the lists when the
// cache holds another version.
func (f *Filter) PolicyAt(ctx context.Context, tenant string, version uint64) (*Policy, error) {
	if tenant == "" {
		return nil, &InputError{Field: "tenant", Reason: "must not be empty"}
	}
	if version == 0 {
		return emptyPolicy, nil
	}
	return f.policyAt(ctx, f.entry(tenant), tenant, version)
}

func (c *cached) result() (*Policy, error) { return c.policy, c.err }

func (f *Filter) policyAt(ctx context.Context, e *entry, tenant string, v uint64) (*Policy, error) {
	if c := e.p.Load(); c != nil && c.version == v {
		return c.result()
	}
	e.load.Lock()
	defer e.load.Unlock()
	if c := e.p.Load(); c != nil && c.version == v {
		return c.result() // loaded while we waited
	}
	l, err := f.store.Lists(ctx, tenant)
	if err != nil {
		return nil, fmt.Errorf("ipfilter: reading tenant lists: %w", err)
	}
	// l.Version may be newer than v (a change in between): cache what was
	// read. The next request compares again.
	p, err := Compile(l)
	e.p.Store(&cached{version: l.Version, policy: p, err: err})
	return p, err
}

// lookup returns tenant's cache slot, or nil.
func (f *Filter) lookup(tenant string) *entry {
	if v, ok := f.tenants.Load(tenant); ok {
		return v.(*entry)
	}
	return nil
}

// entry returns tenant's cache slot, creating it (and evicting others
// beyond MaxTenants) if needed.
func (f *Filter) entry(tenant string) *entry {
	if e := f.lookup(tenant); e != nil {
		return e
	}
	v, loaded := f.tenants.LoadOrStore(tenant, new(entry))
	if !loaded && f.size.Add(1) > int64(f.maxTenants) {
		f.tenants.Range(func(k, _ any) bool {
			if k != tenant {
				if _, ok := f.tenants.LoadAndDelete(k); ok {
					f.size.Add(-1)
				}
			}
			return f.size.Load() > int64(f.maxTenants)
		})
	}
	return v.(*entry)
}

// Forget drops tenant's compiled lists from the cache (for example when
// the tenant is deleted). The next Check loads them again.
func (f *Filter) Forget(tenant string) {
	if _, ok := f.tenants.LoadAndDelete(tenant); ok {
		f.size.Add(-1)
	}
}

// Lists returns tenant's stored lists and version, for display and as
// the base of a Change.
func (f *Filter) Lists(ctx context.Context, tenant string) (Lists, error) {
	if tenant == "" {
		return Lists{}, &InputError{Field: "tenant", Reason: "must not be empty"}
	}
	return f.store.Lists(ctx, tenant)
}

// Change is a new allow-list for one scope of one tenant.
type Change struct {
	Tenant string
	Scope  Scope
	// Entries is the new list as the administrator wrote it (ParseList
	// rules). Empty lifts the restriction.
	Entries []string
	// ReportOnly: log would-be denials instead of blocking (for rollout).
	ReportOnly bool
	// AllowAll permits 0.0.0.0/0 and ::/0 (see ParseOptions).
	AllowAll bool
	// AdminIP is the resolved client IP of the administrator making the
	// change. Unless ReportOnly is set or the list is empty, the change is
	// refused with ErrSelfLockout when the new list does not contain it.
	// Required unless NoLockoutCheck.
	AdminIP netip.Addr
	// NoLockoutCheck skips the AdminIP check. Set it only when the
	// administrator is not subject to this scope: editing the APIKeys list
	// from a signed-in session, or the Users list with an API key.
	NoLockoutCheck bool
	// Version is the tenant's version the change was based on, as returned
	// by Lists. If the lists changed since, Replace returns ErrConflict.
	Version uint64
}

// Applied is the result of a successful Replace.
type Applied struct {
	Version  uint64    // the tenant's new version
	Entries  []string  // the canonical entries stored
	Warnings []Warning // entries that were normalised or dropped
}

// Replace validates c and stores the new list. Errors, with nothing
// changed: *InputError (empty Tenant, invalid Scope, missing AdminIP),
// *ParseError or ErrTooManyEntries (a bad list), ErrSelfLockout,
// ErrConflict (the version moved: reload and retry), or a Store failure.
//
// The change is in force on the next Check on any Filter sharing the
// Store (subject to MaxStale on other replicas; this Filter asks the
// Store on its next Check for the tenant).
func (f *Filter) Replace(ctx context.Context, c Change) (Applied, error) {
	switch {
	case c.Tenant == "":
		return Applied{}, &InputError{Field: "Tenant", Reason: "must not be empty"}
	case !c.Scope.Valid():
		return Applied{}, &InputError{Field: "Scope", Reason: "must be Users or APIKeys"}
	case !c.NoLockoutCheck && (!c.AdminIP.IsValid() || c.AdminIP.Unmap().IsUnspecified()):
		return Applied{}, &InputError{Field: "AdminIP", Reason: "is required unless NoLockoutCheck is set"}
	}
	set, warnings, err := ParseList(c.Entries, ParseOptions{AllowAll: c.AllowAll, MaxEntries: f.maxEntries})
	if err != nil {
		return Applied{}, err
	}
	if !c.NoLockoutCheck && !c.ReportOnly && WouldLockOut(set, c.AdminIP) {
		return Applied{}, ErrSelfLockout
	}
	entries := set.Entries()
	v, err := f.store.Replace(ctx, c.Tenant, c.Scope, Rules{Entries: entries, ReportOnly: c.ReportOnly}, c.Version)
	if err != nil {
		return Applied{}, err
	}
	f.seen(c.Tenant, v)
	return Applied{Version: v, Entries: entries, Warnings: warnings}, nil
}

// Restore puts back rules of tenant's scope as Lists returned them (the
// undo of a Replace that must not stand), on version. Unlike Replace it
// does not parse them again: a list stored by an older version of this
// package, under looser rules Compile still reads (an unspecified
// address, a longer list), is put back as it was. It returns the
// tenant's new version; ErrConflict if the lists changed since version.
func (f *Filter) Restore(ctx context.Context, tenant string, scope Scope, rules Rules, version uint64) (uint64, error) {
	if tenant == "" {
		return 0, &InputError{Field: "Tenant", Reason: "must not be empty"}
	}
	if !scope.Valid() {
		return 0, &InputError{Field: "Scope", Reason: "must be Users or APIKeys"}
	}
	v, err := f.store.Replace(ctx, tenant, scope, rules, version)
	if err != nil {
		return 0, err
	}
	f.seen(tenant, v)
	return v, nil
}

// seen makes this replica serve tenant's lists at version v or later
// from now on (no cache hit serves an older one).
func (f *Filter) seen(tenant string, v uint64) {
	if f.maxStale > 0 {
		e := f.entry(tenant)
		for {
			m := e.minVersion.Load()
			if m >= v || e.minVersion.CompareAndSwap(m, v) {
				break
			}
		}
	}
}
