package rbac

import (
	"context"
	"errors"

	"github.com/casbin/casbin/v2/model"
	"github.com/casbin/casbin/v2/persist"
)

// ModelText is the casbin model of Guard's policy: RBAC with tenant
// domains. A request is (subject, tenant, section, action); p rows give a
// role an action in a section of a tenant, g rows give a subject a role in
// a tenant, p2 rows mark the actions of a tenant that need four-eyes
// approval (not part of the matcher: approval is a second step, not a
// permission). The built-in roles' p rows have the domain "*" (no tenant
// can be called "*") and name one section and action each: one row per
// permission they hold over the sections of the Enforcer whose Adapter
// loads them, never a wildcard, so a section or an action the Enforcer
// does not know matches no row. The matcher's "r.sub != p.sub" refuses a
// role name as the request's subject (casbin's role manager links every
// name to itself): a role is not a subject and holds nothing by itself.
// So casbin's Enforce allows exactly what Enforcer.Decide allows.
const ModelText = `
[request_definition]
r = sub, dom, obj, act

[policy_definition]
p = sub, dom, obj, act
p2 = dom, obj, act

[role_definition]
g = _, _, _

[policy_effect]
e = some(where (p.eft == allow))

[matchers]
m = r.sub != p.sub && g(r.sub, p.sub, r.dom) && (p.dom == r.dom || p.dom == "*") && p.obj == r.obj && p.act == r.act
`

// Filter selects the tenant whose policy LoadFilteredPolicy loads. When
// the filter is a *Filter, Version is set to the policy version loaded.
type Filter struct {
	Tenant  string
	Version uint64
}

// Adapter is Guard's casbin persist adapter: it loads one tenant's policy
// at a time (persist.FilteredAdapter with a Filter) from a PolicyStore,
// with the built-in roles' rows, into a casbin model of ModelText. Stored
// rules are validated as they are loaded: a rule the Enforcer cannot use
// fails the load with a *RuleError; a rule naming a host section this
// adapter does not know is skipped (it can grant nothing here).
//
// The adapter does not write: its Save, Add and Remove methods return
// ErrReadOnly. Every change goes through Enforcer, which checks it
// (names, privilege escalation, the last owner) and applies it with a
// compare-and-set on the tenant's version, which casbin's auto-save calls
// cannot express. Get one from Enforcer.Adapter.
type Adapter struct {
	store PolicyStore
	reg   *registry
}

var (
	_ persist.FilteredAdapter        = (*Adapter)(nil)
	_ persist.ContextFilteredAdapter = (*Adapter)(nil)
)

var errUnfiltered = errors.New("rbac: the adapter loads one tenant at a time: use LoadFilteredPolicy with an rbac.Filter")

// load loads tenant's policy into m and returns its version.
func (a *Adapter) load(ctx context.Context, m model.Model, tenant string) (uint64, error) {
	if err := CheckTenant(tenant); err != nil {
		return 0, err
	}
	rules, version, err := a.store.Policy(ctx, tenant)
	if err != nil {
		return 0, err
	}
	for _, row := range a.reg.builtinRows() {
		if err := addRow(m, "p", row); err != nil {
			return 0, err
		}
	}
	for _, r := range rules {
		_, known, err := a.reg.ruleBit(tenant, r)
		if err != nil {
			return 0, err
		}
		if !known {
			continue
		}
		ptype, row := ruleRow(tenant, r)
		if err := addRow(m, ptype, row); err != nil {
			return 0, err
		}
	}
	return version, nil
}

// addRow adds row to m. A store holds a set of rules; should one return a
// rule twice, the duplicate row changes no decision (casbin's nor the
// compiled table's), so rows are not checked for duplicates.
func addRow(m model.Model, ptype string, row []string) error {
	return m.AddPolicy(ptype[:1], ptype, row) // section "p" for p and p2, "g" for g
}

func tenantOf(filter any) (string, *Filter, error) {
	switch f := filter.(type) {
	case Filter:
		return f.Tenant, nil, nil
	case *Filter:
		if f != nil {
			return f.Tenant, f, nil
		}
	}
	return "", nil, errors.New("rbac: LoadFilteredPolicy needs an rbac.Filter")
}

// LoadFilteredPolicyCtx loads the policy of the tenant named by filter (a
// Filter or *Filter) into m, which should be empty.
func (a *Adapter) LoadFilteredPolicyCtx(ctx context.Context, m model.Model, filter any) error {
	tenant, f, err := tenantOf(filter)
	if err != nil {
		return err
	}
	v, err := a.load(ctx, m, tenant)
	if err != nil {
		return err
	}
	if f != nil {
		f.Version = v
	}
	return nil
}

// LoadFilteredPolicy is LoadFilteredPolicyCtx with context.Background.
func (a *Adapter) LoadFilteredPolicy(m model.Model, filter any) error {
	return a.LoadFilteredPolicyCtx(context.Background(), m, filter)
}

// IsFiltered reports true: the adapter only ever loads one tenant.
func (a *Adapter) IsFiltered() bool { return true }

// IsFilteredCtx reports true: the adapter only ever loads one tenant.
func (a *Adapter) IsFilteredCtx(context.Context) bool { return true }

// LoadPolicy returns an error: load one tenant with LoadFilteredPolicy.
func (a *Adapter) LoadPolicy(model.Model) error { return errUnfiltered }

// LoadPolicyCtx returns an error: load one tenant with LoadFilteredPolicyCtx.
func (a *Adapter) LoadPolicyCtx(context.Context, model.Model) error { return errUnfiltered }

// SavePolicy returns ErrReadOnly.
func (a *Adapter) SavePolicy(model.Model) error { return ErrReadOnly }

// SavePolicyCtx returns ErrReadOnly.
func (a *Adapter) SavePolicyCtx(context.Context, model.Model) error { return ErrReadOnly }

// AddPolicy returns ErrReadOnly.
func (a *Adapter) AddPolicy(string, string, []string) error { return ErrReadOnly }

// AddPolicyCtx returns ErrReadOnly.
func (a *Adapter) AddPolicyCtx(context.Context, string, string, []string) error { return ErrReadOnly }

// RemovePolicy returns ErrReadOnly.
func (a *Adapter) RemovePolicy(string, string, []string) error { return ErrReadOnly }

// RemovePolicyCtx returns ErrReadOnly.
func (a *Adapter) RemovePolicyCtx(context.Context, string, string, []string) error {
	return ErrReadOnly
}

// RemoveFilteredPolicy returns ErrReadOnly.
func (a *Adapter) RemoveFilteredPolicy(string, string, int, ...string) error { return ErrReadOnly }

// RemoveFilteredPolicyCtx returns ErrReadOnly.
func (a *Adapter) RemoveFilteredPolicyCtx(context.Context, string, string, int, ...string) error {
	return ErrReadOnly
}
