package rbac

import (
	"math/bits"
	"slices"
)

// registry numbers the permissions of one Enforcer: the built-in sections
// first, then Config.Sections, each with the six actions.
type registry struct {
	sections []Section
	extra    map[Section]int // host sections → section index
	nbits    int
	words    int
}

func newRegistry(extra []Section) (*registry, error) {
	r := &registry{sections: slices.Clone(builtinSections[:]), extra: make(map[Section]int, len(extra))}
	for _, s := range extra {
		if reason := checkSectionName(string(s)); reason != "" {
			return nil, &ConfigError{Field: "Sections", Reason: "a section name " + reason}
		}
		if builtinSectionIndex(s) >= 0 {
			return nil, &ConfigError{Field: "Sections", Reason: "names a built-in section"}
		}
		if _, dup := r.extra[s]; dup {
			return nil, &ConfigError{Field: "Sections", Reason: "names a section twice"}
		}
		r.extra[s] = len(r.sections)
		r.sections = append(r.sections, s)
	}
	r.nbits = len(r.sections) * numActions
	r.words = (r.nbits + 63) / 64
	return r, nil
}

// sectionIndex returns the index of s, or -1 if s is not a section of r.
func (r *registry) sectionIndex(s Section) int {
	if i := builtinSectionIndex(s); i >= 0 {
		return i
	}
	if len(r.extra) == 0 {
		return -1
	}
	if i, ok := r.extra[s]; ok {
		return i
	}
	return -1
}

// index returns the bit of (s, a), or -1 if either is unknown.
func (r *registry) index(s Section, a Action) int {
	ai := actionIndex(a)
	if ai < 0 {
		return -1
	}
	si := r.sectionIndex(s)
	if si < 0 {
		return -1
	}
	return si*numActions + ai
}

func (r *registry) permission(bit int) Permission {
	return Permission{r.sections[bit/numActions], actions[bit%numActions]}
}

// check validates p against r as an *InputError.
func (r *registry) check(p Permission) error {
	if actionIndex(p.Action) < 0 {
		return &InputError{Field: "action", Reason: "is not one of read, write, delete, approve, send, manage"}
	}
	if r.sectionIndex(p.Section) < 0 {
		return &InputError{Field: "section", Reason: "is not a section of this Enforcer"}
	}
	return nil
}

// Perms is an immutable set of permissions, as held by a subject
// (Enforcer.Permissions) or granted by a role. A Perms is tied to the
// Enforcer that returned it: compare only Perms of one Enforcer. The zero
// Perms holds nothing.
//
// Perms returned by Enforcer.Permissions remember whose they are: when
// they are the by of a change, the change is checked against that
// subject's permissions at the policy version it lands on, not against
// the copy, so that a granter demoted in the meantime is refused, and
// permissions read in one tenant are worth nothing in another. Perms
// from PermissionsWithin are re-read the same way, both subjects' at the
// version the change lands on.
type Perms struct {
	reg    *registry
	bits   []uint64 // may be shorter than reg.words: missing words are zero
	holder Subject  // whose permissions these are (zero: a fixed set)
	within Subject  // whose permissions bound holder's (zero: none)
	tenant string   // where holder holds them
}

// Has reports whether p holds the permission to do a in s.
func (p Perms) Has(s Section, a Action) bool {
	if p.reg == nil {
		return false
	}
	return hasBit(p.bits, p.reg.index(s, a))
}

// Contains reports whether p holds every permission of q.
func (p Perms) Contains(q Perms) bool {
	for i, w := range q.bits {
		var have uint64
		if i < len(p.bits) {
			have = p.bits[i]
		}
		if w&^have != 0 {
			return false
		}
	}
	return true
}

// Len returns the number of permissions in p.
func (p Perms) Len() int {
	n := 0
	for _, w := range p.bits {
		n += bits.OnesCount64(w)
	}
	return n
}

// List returns the permissions of p, by section (built-in sections first,
// in the order of BuiltInSections, then Config.Sections) and action (in
// the order of Actions).
func (p Perms) List() []Permission {
	out := make([]Permission, 0, p.Len())
	for i, w := range p.bits {
		for w != 0 {
			b := bits.TrailingZeros64(w)
			w &^= 1 << b
			out = append(out, p.reg.permission(i*64+b))
		}
	}
	return out
}

// Missing returns the permissions of q that p lacks.
func (p Perms) Missing(q Perms) []Permission {
	var out []Permission
	for i, w := range q.bits {
		if i < len(p.bits) {
			w &^= p.bits[i]
		}
		for w != 0 {
			b := bits.TrailingZeros64(w)
			w &^= 1 << b
			out = append(out, q.reg.permission(i*64+b))
		}
	}
	return out
}

// String lists p as "section:action" separated by spaces.
func (p Perms) String() string {
	var b []byte
	for i, perm := range p.List() {
		if i > 0 {
			b = append(b, ' ')
		}
		b = append(b, perm.String()...)
	}
	return string(b)
}

func hasBit(b []uint64, i int) bool {
	if i < 0 || i/64 >= len(b) {
		return false
	}
	return b[i/64]&(1<<(i%64)) != 0
}

func trimWords(b []uint64) []uint64 {
	for len(b) > 0 && b[len(b)-1] == 0 {
		b = b[:len(b)-1]
	}
	if len(b) == 0 {
		return nil
	}
	return b
}

func orWords(dst, src []uint64) []uint64 {
	if len(src) > len(dst) {
		dst = append(dst, make([]uint64, len(src)-len(dst))...)
	}
	for i, w := range src {
		dst[i] |= w
	}
	return dst
}

// builtinRole defines a built-in role: every permission (all), or every
// action in the listed sections, and the listed single permissions.
type builtinRole struct {
	name     string
	all      bool
	sections []Section
	perms    []Permission
}

// builtinRoles is the matrix of the built-in roles, in role-ID order.
var builtinRoles = [...]builtinRole{
	{name: Owner, all: true},
	{name: Admin, sections: []Section{Contacts, Campaigns, Reports, Settings, Users, Audit, APIKeys}},
	{name: Manager, perms: []Permission{
		{Contacts, Read}, {Contacts, Write}, {Contacts, Delete},
		{Campaigns, Read}, {Campaigns, Write}, {Campaigns, Delete}, {Campaigns, Approve}, {Campaigns, Send},
		{Reports, Read}, {Reports, Write}, {Reports, Send},
		{Settings, Read}, {Users, Read},
	}},
	{name: Member, perms: []Permission{
		{Contacts, Read}, {Contacts, Write},
		{Campaigns, Read}, {Campaigns, Write}, {Campaigns, Send},
		{Reports, Read},
	}},
	{name: ReportsOnly, perms: []Permission{{Reports, Read}}},
}

// IDs of built-in roles: their index in builtinRoles.
const (
	ownerID    = 0
	adminID    = 1
	numBuiltin = int32(len(builtinRoles))
)

// builtinRoleID returns the ID of a built-in role, or -1.
func builtinRoleID(name string) int32 {
	switch name {
	case Owner:
		return 0
	case Admin:
		return 1
	case Manager:
		return 2
	case Member:
		return 3
	case ReportsOnly:
		return 4
	}
	return -1
}

func isBuiltinRole(name string) bool { return builtinRoleID(name) >= 0 }

// builtinBits returns the permission bits of built-in role d under r.
func (r *registry) builtinBits(d builtinRole) []uint64 {
	b := make([]uint64, r.words)
	set := func(i int) { b[i/64] |= 1 << (i % 64) }
	switch {
	case d.all:
		for i := range r.nbits {
			set(i)
		}
	default:
		for _, s := range d.sections {
			for _, a := range actions {
				set(r.index(s, a))
			}
		}
		for _, p := range d.perms {
			set(r.index(p.Section, p.Action))
		}
	}
	return trimWords(b)
}

// all returns every permission of r.
func (r *registry) all() Perms { return Perms{reg: r, bits: r.builtinBits(builtinRoles[ownerID])} }

// RoleInfo describes a role: its name, whether it is built in, and its
// permissions.
type RoleInfo struct {
	Name        string
	BuiltIn     bool
	Permissions []Permission
}

// BuiltInRoles returns the built-in roles and their permissions over the
// built-in sections (owner also holds every action of every host section).
func BuiltInRoles() []RoleInfo {
	r, _ := newRegistry(nil)
	out := make([]RoleInfo, len(builtinRoles))
	for i, d := range builtinRoles {
		out[i] = RoleInfo{Name: d.name, BuiltIn: true, Permissions: Perms{reg: r, bits: r.builtinBits(d)}.List()}
	}
	return out
}
