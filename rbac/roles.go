package rbac

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
)

// GrantPermission is the permission needed to grant roles to, or revoke
// them from, subjects of kind k (Grant, Revoke, RevokeAll): api-keys:manage
// for an API key, users:manage for a user.
func GrantPermission(k SubjectKind) Permission {
	if k == KindKey {
		return Permission{APIKeys, Manage}
	}
	return Permission{Users, Manage}
}

// mayChangeHolders reports whether by may change what holders may do, by
// redefining or deleting a role they hold: it must hold the permission
// that grants to each kind of holder (GrantPermission), so that one who
// may not grant to API keys cannot widen (or take away) a key's rights
// through a role it holds either.
func mayChangeHolders(by Perms, holders []Subject) bool {
	return !slices.ContainsFunc(holders, func(s Subject) bool {
		p := GrantPermission(s.Kind)
		return !by.Has(p.Section, p.Action)
	})
}

// CheckRoleName reports whether name has the form of a role name, built-in
// or custom, as an *InputError: the names Grant, Revoke, SetGrant and
// RemoveGrants take (CheckRole is the stricter rule for a new custom
// role). It says nothing of whether the role exists.
func CheckRoleName(name string) error { return checkRoleArg(name) }

func checkRoleArg(name string) error {
	if r := checkRoleName(name); r != "" {
		return &InputError{Field: "role", Reason: r}
	}
	return nil
}

// Grant gives sub the role (built-in or custom) in tenant. by is the
// effective permissions of whoever grants (Permissions of the acting
// principal, re-read when the change lands; AllPerms for the host
// application itself): it must hold
// users:manage to grant to a user, api-keys:manage to grant to an API key
// (ErrDenied), and every permission of the role (ErrEscalation), so that
// nobody grants more than they hold. Granting a role the subject holds is
// not an error and changes nothing. A custom role must exist
// (ErrRoleNotFound). SetGrant does the same and reports whether the
// policy changed.
func (e *Enforcer) Grant(ctx context.Context, by Perms, tenant string, sub Subject, role string) error {
	_, err := e.SetGrant(ctx, by, tenant, sub, role, true)
	return err
}

// Revoke takes the role from sub in tenant. by must hold what Grant
// requires of it for the same role: whoever cannot grant a role cannot
// take it away either (an admin cannot demote an owner). Revoking the
// owner role from the tenant's last user holding it returns ErrLastOwner.
// Revoking a role the subject does not hold is not an error and changes
// nothing. SetGrant does the same and reports whether the policy changed.
func (e *Enforcer) Revoke(ctx context.Context, by Perms, tenant string, sub Subject, role string) error {
	_, err := e.SetGrant(ctx, by, tenant, sub, role, false)
	return err
}

// SetGrant is Grant (held true) or Revoke (held false), with their checks
// and errors, and reports whether it changed the policy: changed is false
// when sub already held the role (Grant) or did not hold it (Revoke), as
// the tenant's policy was when the change was decided, and whenever err
// is not nil. A caller that records changes can thus record exactly
// those that were made.
func (e *Enforcer) SetGrant(ctx context.Context, by Perms, tenant string, sub Subject, role string, held bool) (changed bool, err error) {
	if err := sub.Check(); err != nil {
		return false, err
	}
	if err := checkRoleArg(role); err != nil {
		return false, err
	}
	plan := e.planRevoke
	if held {
		plan = e.planGrant
	}
	err = e.change(ctx, tenant, func(t *table) (_, _ []Rule, err error) {
		r, err := plan(t, t.actor(by), sub, role)
		// The plan of the attempt that lands (or finds nothing to do)
		// is the last one run.
		changed = r != (Rule{})
		if err != nil || !changed {
			return nil, nil, err
		}
		if held {
			return nil, []Rule{r}, nil
		}
		return []Rule{r}, nil, nil
	})
	return changed && err == nil, err
}

// planGrant returns the rule that gives sub the role at t, by being the
// granter's permissions at t; the zero Rule if sub holds it.
func (e *Enforcer) planGrant(t *table, by Perms, sub Subject, role string) (Rule, error) {
	if err := e.mayChangeGrants(by, sub.Kind); err != nil {
		return Rule{}, err
	}
	id := t.roleID(role)
	if id < 0 || (id >= numBuiltin && len(t.roles[id].bits) == 0) {
		return Rule{}, ErrRoleNotFound
	}
	if !by.Contains(Perms{reg: e.reg, bits: t.roles[id].bits}) {
		return Rule{}, ErrEscalation
	}
	if ids, _ := t.subjects.get(t.subjectHash(sub), sub); slices.Contains(ids, id) {
		return Rule{}, nil
	}
	return grantRule(sub, role), nil
}

// planRevoke returns the grant of role to sub to remove at t, by being
// the revoker's permissions at t; the zero Rule if sub does not hold it.
func (e *Enforcer) planRevoke(t *table, by Perms, sub Subject, role string) (Rule, error) {
	if err := e.mayChangeGrants(by, sub.Kind); err != nil {
		return Rule{}, err
	}
	id := t.roleID(role)
	if id < 0 {
		return Rule{}, nil
	}
	ids, _ := t.subjects.get(t.subjectHash(sub), sub)
	if !slices.Contains(ids, id) {
		return Rule{}, nil
	}
	if !by.Contains(Perms{reg: e.reg, bits: t.roles[id].bits}) {
		return Rule{}, ErrEscalation
	}
	if id == ownerID && t.lastOwner(sub) {
		return Rule{}, ErrLastOwner
	}
	return grantRule(sub, role), nil
}

// RevokeAll takes every role from sub in tenant: call it when a user or
// an API key is deleted. by must hold what Revoke requires for each of
// the roles; the tenant's last owner keeps the owner role
// (ErrLastOwner), and nothing is revoked then.
func (e *Enforcer) RevokeAll(ctx context.Context, by Perms, tenant string, sub Subject) error {
	if err := sub.Check(); err != nil {
		return err
	}
	return e.change(ctx, tenant, func(t *table) (_, _ []Rule, err error) {
		by := t.actor(by)
		if err := e.mayChangeGrants(by, sub.Kind); err != nil {
			return nil, nil, err
		}
		ids, _ := t.subjects.get(t.subjectHash(sub), sub)
		var remove []Rule
		for _, id := range ids {
			if !by.Contains(Perms{reg: e.reg, bits: t.roles[id].bits}) {
				return nil, nil, ErrEscalation
			}
			if id == ownerID && t.lastOwner(sub) {
				return nil, nil, ErrLastOwner
			}
			remove = append(remove, grantRule(sub, t.roles[id].name))
		}
		return remove, nil, nil
	})
}

// RemoveGrants takes the named roles from sub in tenant, or every role
// sub holds if none is named, in one change, with no permission check
// and without the last-owner rule. It is not a way to revoke: use it only
// where sub is being removed and can no longer act (a user deleted, or
// whose creation is rolled back; an API key the tenant does not have),
// or to take back a grant the caller itself has just written, which puts
// the policy back as it was before the grant (an owner grant to a tenant
// that had no owner leaves it with none again). Roles sub does not hold
// are skipped. A malformed subject or role name is an *InputError.
func (e *Enforcer) RemoveGrants(ctx context.Context, tenant string, sub Subject, roles ...string) error {
	if err := sub.Check(); err != nil {
		return err
	}
	for _, r := range roles {
		if err := checkRoleArg(r); err != nil {
			return err
		}
	}
	return e.change(ctx, tenant, func(t *table) (_, _ []Rule, err error) {
		ids, _ := t.subjects.get(t.subjectHash(sub), sub)
		var remove []Rule
		for _, id := range ids {
			if name := t.roles[id].name; len(roles) == 0 || slices.Contains(roles, name) {
				remove = append(remove, grantRule(sub, name))
			}
		}
		return remove, nil, nil
	})
}

func (e *Enforcer) mayChangeGrants(by Perms, k SubjectKind) error {
	if p := GrantPermission(k); !by.Has(p.Section, p.Action) {
		return ErrDenied
	}
	return nil
}

// lastOwner reports whether sub is a user holding the owner role and no
// other user holds it.
func (t *table) lastOwner(sub Subject) bool {
	if sub.Kind != KindUser {
		return false
	}
	others := false
	t.subjects.each(func(s Subject, ids []int32) bool {
		if s != sub && s.Kind == KindUser && slices.Contains(ids, ownerID) {
			others = true
			return false
		}
		return true
	})
	return !others
}

func grantRule(sub Subject, role string) Rule {
	return Rule{Type: RuleGrant, Subject: sub.String(), Role: role}
}

// Redefinition is what DefineRole found, read in the same atomic step
// as its change: the role as it was when the change landed, and who
// held it then.
type Redefinition struct {
	// Prev is the role's permissions before the change, listed as
	// RoleInfo lists them; nil if the role was new.
	Prev []Permission
	// Holders are the subjects (users and API keys) holding the role
	// when the change landed, in no set order: a grant made meanwhile by
	// another caller is among them.
	Holders []Subject
}

// DefineRole creates the custom role name in tenant with exactly perms,
// or replaces the permissions of an existing one (its holders keep it,
// with the new permissions), and returns the role as it was and its
// holders, taken in the same atomic step as the change (see
// Redefinition; if the write met a moved version and was planned again,
// those of the attempt that landed). A definition that changes nothing
// writes nothing and returns the role and holders it found. by must hold
// users:manage (ErrDenied), api-keys:manage too when it changes a role an
// API key holds (ErrDenied: what a key may do is changed only by one who
// may grant to keys, GrantPermission), and every permission of the role
// before and after the change (ErrEscalation). perms must not be empty; every
// permission must name a section of the Enforcer. Built-in roles cannot
// be defined (ErrBuiltInRole); name must pass CheckRole (*InputError),
// which also refuses a name that reads as a built-in role's
// ("reports_only"), even for a role of that name stored before the rule:
// delete it instead. With an error, the Redefinition is zero.
func (e *Enforcer) DefineRole(ctx context.Context, by Perms, tenant, name string, perms []Permission) (Redefinition, error) {
	if isBuiltinRole(name) {
		return Redefinition{}, ErrBuiltInRole
	}
	if err := CheckRole(name); err != nil {
		return Redefinition{}, err
	}
	if len(perms) == 0 {
		return Redefinition{}, &InputError{Field: "permissions", Reason: "a role needs at least one permission"}
	}
	want, err := e.permBits(perms)
	if err != nil {
		return Redefinition{}, err
	}
	var found Redefinition
	err = e.change(ctx, tenant, func(t *table) (_, _ []Rule, err error) {
		// What the attempt that lands (or finds nothing to do) found is
		// the last one read.
		found = Redefinition{}
		by := t.actor(by)
		if !by.Has(Users, Manage) {
			return nil, nil, ErrDenied
		}
		id := t.roleID(name)
		var have []uint64
		if id >= 0 {
			have = t.roles[id].bits
		}
		if !by.Contains(Perms{reg: e.reg, bits: want}) || !by.Contains(Perms{reg: e.reg, bits: have}) {
			return nil, nil, ErrEscalation
		}
		if len(have) == 0 && t.customRoles() >= e.maxRoles {
			return nil, nil, ErrTooManyRoles
		}
		if prev := (Perms{reg: e.reg, bits: have}).List(); len(prev) > 0 {
			found.Prev = prev
		}
		found.Holders = t.holders(name)
		remove, add := e.redefinition(name, have, want)
		if len(remove)+len(add) > 0 && !mayChangeHolders(by, found.Holders) {
			return nil, nil, ErrDenied
		}
		return remove, add, nil
	})
	if err != nil {
		return Redefinition{}, err
	}
	return found, nil
}

// permBits returns the permission bits of perms, each of which must name
// a section of the Enforcer.
func (e *Enforcer) permBits(perms []Permission) ([]uint64, error) {
	var bits []uint64
	for _, p := range perms {
		if err := e.reg.check(p); err != nil {
			return nil, err
		}
		bits = setBitOwned(bits, e.reg.index(p.Section, p.Action), true)
	}
	return bits, nil
}

// redefinition returns the rules that take role name from the permission
// bits have to want.
func (e *Enforcer) redefinition(name string, have, want []uint64) (remove, add []Rule) {
	for _, p := range (Perms{reg: e.reg, bits: have}).Missing(Perms{reg: e.reg, bits: want}) {
		add = append(add, Rule{Type: RulePermission, Role: name, Section: p.Section, Action: p.Action})
	}
	for _, p := range (Perms{reg: e.reg, bits: want}).Missing(Perms{reg: e.reg, bits: have}) {
		remove = append(remove, Rule{Type: RulePermission, Role: name, Section: p.Section, Action: p.Action})
	}
	return remove, add
}

// deletion returns the rules that delete role name of t, whose
// permission bits are bits, and the subjects holding it: its grants go
// with it.
func (e *Enforcer) deletion(t *table, name string, bits []uint64) ([]Rule, []Subject) {
	remove, _ := e.redefinition(name, bits, nil)
	holders := t.holders(name)
	for _, s := range holders {
		remove = append(remove, grantRule(s, name))
	}
	return remove, holders
}

// UndoDefineRole undoes a DefineRole of the custom role name in tenant
// that set perms and found prev (its Redefinition.Prev), as long as the
// role still holds exactly perms: it puts prev back or, if prev is nil
// (the definition created the role), deletes the role and every grant of
// it, returning the subjects whose grant it removed, taken in the same
// atomic step (as DeleteRole). If the role holds other permissions now,
// or is gone, a change that landed after the one to undo stands: nothing
// is written and ErrRoleChanged is returned. (A change since that left
// the role exactly perms, such as a second identical definition, cannot
// be told apart and is undone too.) by must hold users:manage (ErrDenied),
// api-keys:manage too when an API key holds the role (ErrDenied, as for
// DefineRole), and every permission of perms and prev (ErrEscalation). Errors as
// DefineRole's for the arguments; with an error, no subject is returned.
func (e *Enforcer) UndoDefineRole(ctx context.Context, by Perms, tenant, name string, perms, prev []Permission) ([]Subject, error) {
	if isBuiltinRole(name) {
		return nil, ErrBuiltInRole
	}
	if err := checkRoleArg(name); err != nil {
		return nil, err
	}
	if len(perms) == 0 {
		return nil, &InputError{Field: "permissions", Reason: "a role needs at least one permission"}
	}
	set, err := e.permBits(perms)
	if err != nil {
		return nil, err
	}
	back, err := e.permBits(prev)
	if err != nil {
		return nil, err
	}
	var holders []Subject
	err = e.change(ctx, tenant, func(t *table) (_, _ []Rule, err error) {
		holders = nil
		by := t.actor(by)
		if !by.Has(Users, Manage) {
			return nil, nil, ErrDenied
		}
		if !by.Contains(Perms{reg: e.reg, bits: set}) || !by.Contains(Perms{reg: e.reg, bits: back}) {
			return nil, nil, ErrEscalation
		}
		var have []uint64
		if id := t.roleID(name); id >= 0 {
			have = t.roles[id].bits
		}
		now, was := Perms{reg: e.reg, bits: have}, Perms{reg: e.reg, bits: set}
		if !now.Contains(was) || !was.Contains(now) {
			return nil, nil, ErrRoleChanged
		}
		if !mayChangeHolders(by, t.holders(name)) {
			return nil, nil, ErrDenied
		}
		if len(prev) > 0 {
			remove, add := e.redefinition(name, have, back)
			return remove, add, nil
		}
		var remove []Rule
		remove, holders = e.deletion(t, name, have)
		return remove, nil, nil
	})
	if err != nil {
		return nil, err
	}
	return holders, nil
}

// DeleteRole deletes the custom role name of tenant and every grant of
// it, in one change, and returns the subjects (users and API keys) whose
// grant it removed: the holders as the policy was when the deletion
// landed, so a grant made meanwhile by another caller is among them. by
// must hold users:manage (ErrDenied), api-keys:manage too when an API key
// holds the role (ErrDenied, as for DefineRole), and every permission of
// the role (ErrEscalation). ErrRoleNotFound if the tenant has no such role;
// ErrBuiltInRole for a built-in role. A stored role whose name CheckRole
// now refuses (one that reads as a built-in role's) can be deleted. With
// an error, no subject is returned.
func (e *Enforcer) DeleteRole(ctx context.Context, by Perms, tenant, name string) ([]Subject, error) {
	if isBuiltinRole(name) {
		return nil, ErrBuiltInRole
	}
	if err := checkRoleArg(name); err != nil {
		return nil, err
	}
	var holders []Subject
	err := e.change(ctx, tenant, func(t *table) (_, _ []Rule, err error) {
		// The holders of the attempt that lands are the last ones read.
		holders = nil
		by := t.actor(by)
		if !by.Has(Users, Manage) {
			return nil, nil, ErrDenied
		}
		id := t.roleID(name)
		if id < 0 || len(t.roles[id].bits) == 0 {
			return nil, nil, ErrRoleNotFound
		}
		if !by.Contains(Perms{reg: e.reg, bits: t.roles[id].bits}) {
			return nil, nil, ErrEscalation
		}
		var remove []Rule
		remove, holders = e.deletion(t, name, t.roles[id].bits)
		if !mayChangeHolders(by, holders) {
			holders = nil
			return nil, nil, ErrDenied
		}
		return remove, nil, nil
	})
	if err != nil {
		return nil, err
	}
	return holders, nil
}

// customRoles counts the custom roles with at least one permission.
func (t *table) customRoles() int {
	n := 0
	for _, r := range t.roles[numBuiltin:] {
		if len(r.bits) > 0 {
			n++
		}
	}
	return n
}

// SetApprovalRequired marks permission p of tenant as needing four-eyes
// approval (required) or not. by must hold settings:manage (ErrDenied)
// and p itself (ErrEscalation): nobody fences off an action they may not
// take, stalling those who may, or opens it up to one person where it
// needed two. Setting what is already set changes nothing.
// SetApprovalRule does the same and reports whether the policy changed.
func (e *Enforcer) SetApprovalRequired(ctx context.Context, by Perms, tenant string, p Permission, required bool) error {
	_, err := e.SetApprovalRule(ctx, by, tenant, p, required)
	return err
}

// SetApprovalRule is SetApprovalRequired, with its checks and errors, and
// reports whether it changed the policy: changed is false when p already
// was (or was not) required, as the tenant's policy was when the change
// was decided, and whenever err is not nil. A caller that records
// changes can thus record exactly those that were made.
func (e *Enforcer) SetApprovalRule(ctx context.Context, by Perms, tenant string, p Permission, required bool) (changed bool, err error) {
	if err := e.reg.check(p); err != nil {
		return false, err
	}
	bit := e.reg.index(p.Section, p.Action)
	err = e.change(ctx, tenant, func(t *table) (_, _ []Rule, err error) {
		// The plan of the attempt that lands (or finds nothing to do)
		// is the last one run.
		changed = false
		by := t.actor(by)
		if !by.Has(Settings, Manage) {
			return nil, nil, ErrDenied
		}
		if !by.Has(p.Section, p.Action) {
			return nil, nil, ErrEscalation
		}
		if hasBit(t.approval, bit) == required {
			return nil, nil, nil
		}
		changed = true
		r := []Rule{{Type: RuleApproval, Section: p.Section, Action: p.Action}}
		if required {
			return nil, r, nil
		}
		return r, nil, nil
	})
	return changed && err == nil, err
}

// Permissions returns the effective permissions of sub in tenant: the
// union of its roles' permissions, at the store's current version. This
// is the by argument of the changing methods.
func (e *Enforcer) Permissions(ctx context.Context, tenant string, sub Subject) (Perms, error) {
	if err := sub.Check(); err != nil {
		return Perms{}, err
	}
	_, t, err := e.fresh(ctx, tenant)
	if err != nil {
		return Perms{}, err
	}
	return t.perms(sub), nil
}

// PermissionsWithin returns the permissions of sub in tenant that within
// holds too, at the store's current version: the effective permissions
// of a subject acting within another's (an API key within its creator's;
// see DecideWithin). As the by of a changing method they are re-read, for
// both subjects, at the version the change lands on. A zero within is
// Permissions.
func (e *Enforcer) PermissionsWithin(ctx context.Context, tenant string, sub, within Subject) (Perms, error) {
	if err := sub.Check(); err != nil {
		return Perms{}, err
	}
	if within != (Subject{}) {
		if err := within.Check(); err != nil {
			return Perms{}, err
		}
	}
	_, t, err := e.fresh(ctx, tenant)
	if err != nil {
		return Perms{}, err
	}
	return t.permsWithin(sub, within), nil
}

// RolesOf returns the names of the roles sub holds in tenant, sorted.
func (e *Enforcer) RolesOf(ctx context.Context, tenant string, sub Subject) ([]string, error) {
	if err := sub.Check(); err != nil {
		return nil, err
	}
	_, t, err := e.fresh(ctx, tenant)
	if err != nil {
		return nil, err
	}
	ids, _ := t.subjects.get(t.subjectHash(sub), sub)
	return t.roleNames(ids), nil
}

func (t *table) roleNames(ids []int32) []string {
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = t.roles[id].name
	}
	slices.Sort(names)
	return names
}

// Roles returns the roles of tenant: the built-in ones in the order of
// BuiltInRoles, then the custom ones by name.
func (e *Enforcer) Roles(ctx context.Context, tenant string) ([]RoleInfo, error) {
	_, t, err := e.fresh(ctx, tenant)
	if err != nil {
		return nil, err
	}
	var out []RoleInfo
	for _, r := range t.roles {
		if r.builtin || len(r.bits) > 0 {
			out = append(out, RoleInfo{Name: r.name, BuiltIn: r.builtin, Permissions: Perms{reg: e.reg, bits: r.bits}.List()})
		}
	}
	slices.SortStableFunc(out[numBuiltin:], func(a, b RoleInfo) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// Assignment is a subject and the roles it holds.
type Assignment struct {
	Subject Subject
	Roles   []string // sorted
}

// Assignments returns every subject of tenant holding a role, ordered by
// the subject's string form: the basis of an access review.
func (e *Enforcer) Assignments(ctx context.Context, tenant string) ([]Assignment, error) {
	_, t, err := e.fresh(ctx, tenant)
	if err != nil {
		return nil, err
	}
	n := t.subjects.Len()
	subs := make([]Subject, 0, n)
	held := make([][]int32, 0, n)
	grants := 0
	t.subjects.each(func(s Subject, ids []int32) bool {
		subs = append(subs, s)
		held = append(held, ids)
		grants += len(ids)
		return true
	})
	// The subjects are sorted through small keys without pointers (no
	// write barrier when swapped): the kind's rank and the ID's first 8
	// bytes, compared as a number; only equal keys compare whole IDs.
	keys := make([]sortKey, len(subs))
	for i, s := range subs {
		keys[i] = sortKey{rank: s.Kind.rank(), head: head8(s.ID), i: int32(i)}
	}
	slices.SortFunc(keys, func(a, b sortKey) int {
		if a.rank != b.rank {
			return cmp.Compare(a.rank, b.rank)
		}
		if a.head != b.head {
			return cmp.Compare(a.head, b.head)
		}
		return strings.Compare(subs[a.i].ID, subs[b.i].ID)
	})
	// Every role name of the result in one array, each assignment's a
	// capped window of it.
	names := make([]string, 0, grants)
	out := make([]Assignment, len(keys))
	for k, key := range keys {
		i := key.i
		start := len(names)
		for _, id := range held[i] {
			names = append(names, t.roles[id].name)
		}
		roles := names[start:len(names):len(names)]
		slices.Sort(roles)
		out[k] = Assignment{Subject: subs[i], Roles: roles}
	}
	return out, nil
}

// sortKey orders a subject of Assignments: rank, then head, then the
// whole ID of subject i.
type sortKey struct {
	head uint64
	i    int32
	rank uint8
}

// head8 returns the first 8 bytes of s as a big-endian number, zeros
// after its end: a < b when head8(a) < head8(b).
func head8(s string) uint64 {
	var h uint64
	for i := range 8 {
		h <<= 8
		if i < len(s) {
			h |= uint64(s[i])
		}
	}
	return h
}

// ApprovalRequired returns the permissions of tenant that need four-eyes
// approval.
func (e *Enforcer) ApprovalRequired(ctx context.Context, tenant string) ([]Permission, error) {
	_, t, err := e.fresh(ctx, tenant)
	if err != nil {
		return nil, err
	}
	return Perms{reg: e.reg, bits: t.approval}.List(), nil
}

// AdminWarning is the governance warning the console shows when a tenant
// has more subjects able to administer it than recommended.
type AdminWarning struct {
	Tenant      string
	Owners      []Subject // hold the owner role
	Admins      []Subject // hold users:manage (the admin role or a custom role) but not owner
	Recommended int       // Config.MaxAdmins
	Message     string    // for the console, e.g. "3 owners and admins; the recommendation is at most 1"
	// Excluded are holders left out of the count by Excluding (for
	// example deactivated users, who still hold their roles), sorted.
	Excluded []Subject
}

// Count returns the number of owners and admins.
func (w *AdminWarning) Count() int { return len(w.Owners) + len(w.Admins) }

// AdminWarning counts the subjects of tenant that can administer it:
// holders of the owner role, and holders of users:manage (the permission
// to grant roles) through the admin role or a custom role. It returns a
// warning when they are more than Config.MaxAdmins, and nil otherwise.
// Users and API keys both count; the lists are sorted by string form.
func (e *Enforcer) AdminWarning(ctx context.Context, tenant string) (*AdminWarning, error) {
	_, t, err := e.fresh(ctx, tenant)
	if err != nil {
		return nil, err
	}
	manage := e.reg.index(Users, Manage)
	w := &AdminWarning{Tenant: tenant, Recommended: e.maxAdmins}
	t.subjects.each(func(s Subject, ids []int32) bool {
		switch {
		case slices.Contains(ids, ownerID):
			w.Owners = append(w.Owners, s)
		case t.allows(s, manage):
			w.Admins = append(w.Admins, s)
		}
		return true
	})
	if w.Count() <= e.maxAdmins {
		return nil, nil
	}
	slices.SortFunc(w.Owners, bySubject)
	slices.SortFunc(w.Admins, bySubject)
	w.Message = w.message()
	return w, nil
}

func bySubject(a, b Subject) int { return strings.Compare(a.String(), b.String()) }

func (w *AdminWarning) message() string {
	return fmt.Sprintf("%d owners and admins; the recommendation is at most %d", w.Count(), w.Recommended)
}

// Excluding returns the warning without the owners and admins for which
// skip is true, which it lists in Excluded instead, or nil when those
// left are no more than Recommended. w is not changed; Excluding of nil
// is nil.
func (w *AdminWarning) Excluding(skip func(Subject) bool) *AdminWarning {
	if w == nil {
		return nil
	}
	out := &AdminWarning{Tenant: w.Tenant, Recommended: w.Recommended, Excluded: slices.Clone(w.Excluded)}
	keep := func(from []Subject) []Subject {
		var kept []Subject
		for _, s := range from {
			if skip(s) {
				out.Excluded = append(out.Excluded, s)
			} else {
				kept = append(kept, s)
			}
		}
		return kept
	}
	out.Owners, out.Admins = keep(w.Owners), keep(w.Admins)
	if out.Count() <= out.Recommended {
		return nil
	}
	slices.SortFunc(out.Excluded, bySubject)
	out.Message = out.message()
	return out
}
