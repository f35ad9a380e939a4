package rbac

import (
	"hash/maphash"
	"slices"
	"strings"
)

// table is the compiled, immutable decision table of one tenant at one
// policy version. A decision is a lookup of the subject's role IDs and a
// bit test per role; nothing is locked and nothing allocated. Changes make
// a new table that shares everything but the changed parts (see pmap).
type table struct {
	tenant   string
	version  uint64
	reg      *registry
	seed     maphash.Seed
	roles    []*role                // by role ID; IDs below numBuiltin are the built-in roles
	roleIDs  pmap[string, int32]    // custom role name → ID
	subjects pmap[Subject, []int32] // subject → its role IDs, ascending
	approval []uint64               // permissions that need four-eyes approval
}

// role is one role of a table. A table never changes a role it shares
// with an older table: it copies it first.
type role struct {
	name    string
	builtin bool
	bits    []uint64
}

func (t *table) subjectHash(s Subject) uint64 {
	return maphash.String(t.seed, s.ID) ^ uint64(s.Kind)*0x9e3779b97f4a7c15
}

func (t *table) roleHash(name string) uint64 { return maphash.String(t.seed, name) }

// allows reports whether sub holds permission bit.
func (t *table) allows(sub Subject, bit int) bool {
	ids, _ := t.subjects.get(t.subjectHash(sub), sub)
	for _, id := range ids {
		if hasBit(t.roles[id].bits, bit) {
			return true
		}
	}
	return false
}

// perms returns the union of the permissions of sub's roles.
func (t *table) perms(sub Subject) Perms {
	ids, _ := t.subjects.get(t.subjectHash(sub), sub)
	var b []uint64
	for _, id := range ids {
		b = orWords(b, t.roles[id].bits)
	}
	return Perms{reg: t.reg, bits: trimWords(b), holder: sub, tenant: t.tenant}
}

// permsWithin returns the permissions of sub that within holds too (all
// of sub's for a zero within), remembering both.
func (t *table) permsWithin(sub, within Subject) Perms {
	p := t.perms(sub)
	if within == (Subject{}) {
		return p
	}
	w := t.perms(within)
	b := slices.Clone(p.bits)
	for i := range b {
		if i < len(w.bits) {
			b[i] &= w.bits[i]
		} else {
			b[i] = 0
		}
	}
	p.bits, p.within = trimWords(b), within
	return p
}

// actor returns the permissions by stands for at t: by itself if it is a
// fixed set, else its holder's permissions in t, within those of by's
// within subject if any (none if by was read in another tenant).
func (t *table) actor(by Perms) Perms {
	switch {
	case by.tenant == "":
		return by
	case by.tenant != t.tenant:
		return Perms{reg: t.reg}
	}
	return t.permsWithin(by.holder, by.within)
}

// roleID returns the ID of the role called name, or -1.
func (t *table) roleID(name string) int32 {
	if id := builtinRoleID(name); id >= 0 {
		return id
	}
	id, ok := t.roleIDs.get(t.roleHash(name), name)
	if !ok {
		return -1
	}
	return id
}

// holders returns the subjects holding role name.
func (t *table) holders(name string) []Subject {
	id := t.roleID(name)
	if id < 0 {
		return nil
	}
	var out []Subject
	t.subjects.each(func(s Subject, ids []int32) bool {
		if slices.Contains(ids, id) {
			out = append(out, s)
		}
		return true
	})
	return out
}

// newTable returns the empty table of tenant.
func newTable(tenant string, reg *registry, builtins []*role, seed maphash.Seed) *table {
	return &table{tenant: tenant, reg: reg, seed: seed, roles: builtins}
}

// builder applies rules to a copy of a table.
type builder struct {
	t         table
	ed        *edit
	ownRoles  bool           // t.roles is this builder's own slice
	ownRole   map[int32]bool // roles this builder has copied
	ownApprov bool
}

func (t *table) builder() *builder {
	return &builder{t: *t, ed: new(edit), ownRole: make(map[int32]bool)}
}

// done returns the new table at version v. The builder must not be used
// afterwards.
func (b *builder) done(v uint64) *table {
	t := b.t
	t.version = v
	return &t
}

// ruleBit checks r (a stored rule of tenant) and returns the permission
// bit it names, -1 for a grant. known is false for a permission or
// approval rule naming a section this Enforcer does not have (a host
// section configured on another replica): such a rule grants nothing
// here, since no decision can ask for it.
func (reg *registry) ruleBit(tenant string, r Rule) (bit int, known bool, err error) {
	bad := func(reason string) (int, bool, error) {
		return 0, false, &RuleError{Tenant: tenant, Rule: r, Reason: reason}
	}
	switch r.Type {
	case RuleGrant:
		if r.Section != "" || r.Action != "" {
			return bad("a grant has no section or action")
		}
		if checkRoleName(r.Role) != "" {
			return bad("bad role name")
		}
		if _, err := ParseSubject(r.Subject); err != nil {
			return bad("bad subject")
		}
		return -1, true, nil
	case RulePermission:
		if r.Subject != "" {
			return bad("a permission rule has no subject")
		}
		if checkRoleName(r.Role) != "" {
			return bad("bad role name")
		}
		if isBuiltinRole(r.Role) {
			return bad("a permission given to a built-in role")
		}
	case RuleApproval:
		if r.Subject != "" || r.Role != "" {
			return bad("an approval rule has no subject or role")
		}
	default:
		return bad("unknown rule type")
	}
	if checkSectionName(string(r.Section)) != "" {
		return bad("bad section name")
	}
	if actionIndex(r.Action) < 0 {
		return bad("unknown action")
	}
	bit = reg.index(r.Section, r.Action)
	return bit, bit >= 0, nil
}

// subjectOf splits the string form of a subject that ParseSubject has
// accepted before.
func subjectOf(s string) Subject {
	if id, ok := strings.CutPrefix(s, "user:"); ok {
		return User(id)
	}
	return Key(strings.TrimPrefix(s, "key:"))
}

// bitOf returns the permission bit of a rule ruleBit has accepted as
// known, -1 for a grant.
func (reg *registry) bitOf(r Rule) int {
	if r.Type == RuleGrant {
		return -1
	}
	return reg.index(r.Section, r.Action)
}

// apply adds (or removes) rule r, which ruleBit accepted with bit.
func (b *builder) apply(r Rule, bit int, add bool) {
	switch r.Type {
	case RuleGrant:
		sub := subjectOf(r.Subject)
		id := b.roleID(r.Role, add)
		if id < 0 {
			return // removing a grant of a role never seen: nothing to do
		}
		h := b.t.subjectHash(sub)
		ids, _ := b.t.subjects.get(h, sub)
		i, held := slices.BinarySearch(ids, id)
		switch {
		case add && !held:
			b.t.subjects = b.t.subjects.set(b.ed, h, sub, slices.Insert(slices.Clip(ids), i, id))
		case !add && held && len(ids) == 1:
			b.t.subjects = b.t.subjects.del(b.ed, h, sub)
		case !add && held:
			b.t.subjects = b.t.subjects.set(b.ed, h, sub, slices.Delete(slices.Clone(ids), i, i+1))
		}
	case RulePermission:
		id := b.roleID(r.Role, add)
		if id < 0 {
			return
		}
		ro := b.role(id)
		ro.bits = setBitOwned(ro.bits, bit, add)
	case RuleApproval:
		if !b.ownApprov {
			b.t.approval = slices.Clone(b.t.approval)
			b.ownApprov = true
		}
		b.t.approval = setBitOwned(b.t.approval, bit, add)
	}
}

// roleID returns the ID of role name, creating it if create is set, or -1.
func (b *builder) roleID(name string, create bool) int32 {
	if id := b.t.roleID(name); id >= 0 || !create {
		return id
	}
	if !b.ownRoles {
		b.t.roles = slices.Clone(b.t.roles)
		b.ownRoles = true
	}
	id := int32(len(b.t.roles))
	b.t.roles = append(b.t.roles, &role{name: name})
	b.ownRole[id] = true
	b.t.roleIDs = b.t.roleIDs.set(b.ed, b.t.roleHash(name), name, id)
	return id
}

// role returns role id, copied if this builder does not own it yet.
func (b *builder) role(id int32) *role {
	if !b.ownRoles {
		b.t.roles = slices.Clone(b.t.roles)
		b.ownRoles = true
	}
	if !b.ownRole[id] {
		old := b.t.roles[id]
		b.t.roles[id] = &role{name: old.name, builtin: old.builtin, bits: slices.Clone(old.bits)}
		b.ownRole[id] = true
	}
	return b.t.roles[id]
}

// setBitOwned sets or clears bit i of w, which the caller owns, and
// returns it trimmed of trailing zero words.
func setBitOwned(w []uint64, i int, set bool) []uint64 {
	if set {
		if n := i/64 + 1; n > len(w) {
			w = append(w, make([]uint64, n-len(w))...)
		}
		w[i/64] |= 1 << (i % 64)
		return w
	}
	if i/64 < len(w) {
		w[i/64] &^= 1 << (i % 64)
	}
	return trimWords(w)
}

// Casbin rows. Roles appear as "role:<name>" so that they never collide
// with subjects ("user:<id>", "key:<id>"); the built-in roles' rows have
// the domain "*", which no tenant can be called.
const (
	rolePrefix    = "role:"
	builtinDomain = "*"
)

// row returns the casbin policy type and row of rule r of tenant.
func ruleRow(tenant string, r Rule) (ptype string, row []string) {
	switch r.Type {
	case RulePermission:
		return "p", []string{rolePrefix + r.Role, tenant, string(r.Section), string(r.Action)}
	case RuleGrant:
		return "g", []string{r.Subject, rolePrefix + r.Role, tenant}
	default:
		return "p2", []string{tenant, string(r.Section), string(r.Action)}
	}
}

// rowRule is the inverse of ruleRow for rows of tenant; ok is false for a
// row that ruleRow cannot have produced for tenant.
func rowRule(tenant, ptype string, row []string) (r Rule, ok bool) {
	switch {
	case ptype == "p" && len(row) == 4 && row[1] == tenant && strings.HasPrefix(row[0], rolePrefix):
		return Rule{Type: RulePermission, Role: row[0][len(rolePrefix):], Section: Section(row[2]), Action: Action(row[3])}, true
	case ptype == "g" && len(row) == 3 && row[2] == tenant && strings.HasPrefix(row[1], rolePrefix):
		return Rule{Type: RuleGrant, Subject: row[0], Role: row[1][len(rolePrefix):]}, true
	case ptype == "p2" && len(row) == 3 && row[0] == tenant:
		return Rule{Type: RuleApproval, Section: Section(row[1]), Action: Action(row[2])}, true
	}
	return Rule{}, false
}

// builtinRows returns the casbin rows of the built-in roles under reg:
// one row per permission each holds (owner every action of every section
// of reg, host sections included), never a wildcard, so that casbin knows
// exactly the sections and actions the Enforcer knows.
func (reg *registry) builtinRows() [][]string {
	var rows [][]string
	for _, d := range builtinRoles {
		sub := rolePrefix + d.name
		for _, p := range (Perms{reg: reg, bits: reg.builtinBits(d)}).List() {
			rows = append(rows, []string{sub, builtinDomain, string(p.Section), string(p.Action)})
		}
	}
	return rows
}
