package rbac

import (
	"strings"
)

// Section is an area of the product that roles fence off. The eight
// built-in sections are constants; a host application may add its own
// with Config.Sections.
type Section string

// The built-in sections.
const (
	Contacts  Section = "contacts"  // contact records: personal data
	Campaigns Section = "campaigns" // campaigns, templates, sending
	Reports   Section = "reports"   // campaign and account reports
	Settings  Section = "settings"  // account settings, security policy, IP allow-lists, approval rules
	Users     Section = "users"     // user accounts and their roles
	Audit     Section = "audit"     // the audit log
	APIKeys   Section = "api-keys"  // API keys and their roles
	Billing   Section = "billing"   // plan, invoices, payment
)

// Action is what a subject does in a section. The set is fixed.
type Action string

// The actions.
const (
	Read    Action = "read"    // view
	Write   Action = "write"   // create and edit
	Delete  Action = "delete"  // delete
	Approve Action = "approve" // approve or reject others' four-eyes requests in the section
	Send    Action = "send"    // send (campaigns), deliver (scheduled reports), export
	Manage  Action = "manage"  // administer the section (users:manage grants roles)
)

// builtinSections and actions in index order: the permission (s, a) has
// the index s*numActions + a, so the built-in permissions are bits 0..47.
var (
	builtinSections = [...]Section{Contacts, Campaigns, Reports, Settings, Users, Audit, APIKeys, Billing}
	actions         = [...]Action{Read, Write, Delete, Approve, Send, Manage}
)

const numActions = len(actions)

// BuiltInSections returns the eight built-in sections.
func BuiltInSections() []Section { return builtinSections[:] }

// Actions returns the six actions.
func Actions() []Action { return actions[:] }

// builtinSectionIndex returns the index of a built-in section, or -1.
func builtinSectionIndex(s Section) int {
	switch s {
	case Contacts:
		return 0
	case Campaigns:
		return 1
	case Reports:
		return 2
	case Settings:
		return 3
	case Users:
		return 4
	case Audit:
		return 5
	case APIKeys:
		return 6
	case Billing:
		return 7
	}
	return -1
}

// actionIndex returns the index of an action, or -1.
func actionIndex(a Action) int {
	switch a {
	case Read:
		return 0
	case Write:
		return 1
	case Delete:
		return 2
	case Approve:
		return 3
	case Send:
		return 4
	case Manage:
		return 5
	}
	return -1
}

// Permission is an action in a section, written "section:action".
type Permission struct {
	Section Section
	Action  Action
}

// P returns the permission to do a in s.
func P(s Section, a Action) Permission { return Permission{s, a} }

// String returns "section:action".
func (p Permission) String() string { return string(p.Section) + ":" + string(p.Action) }

// ParsePermission parses "section:action". It checks the syntax of the
// section name and that the action is one of the six; whether the section
// exists is checked by the Enforcer that is given the permission.
func ParsePermission(s string) (Permission, error) {
	sec, act, ok := strings.Cut(s, ":")
	if !ok {
		return Permission{}, &InputError{Field: "permission", Reason: `must be "section:action"`}
	}
	if r := checkSectionName(sec); r != "" {
		return Permission{}, &InputError{Field: "section", Reason: r}
	}
	if actionIndex(Action(act)) < 0 {
		return Permission{}, &InputError{Field: "action", Reason: "is not one of read, write, delete, approve, send, manage"}
	}
	return Permission{Section(sec), Action(act)}, nil
}

// Built-in roles. They exist in every tenant, cannot be changed, and are
// never stored: their permissions are defined in code (see BuiltInRoles).
const (
	Owner       = "owner"        // everything, including billing and host sections
	Admin       = "admin"        // everything in the built-in sections except billing
	Manager     = "manager"      // day-to-day lead: contacts, campaigns incl. approve, reports
	Member      = "member"       // works with contacts and campaigns, reads reports
	ReportsOnly = "reports-only" // reads reports and nothing else
)

// SubjectKind says who a Subject is.
type SubjectKind uint8

const (
	// KindUser is a person (a user account).
	KindUser SubjectKind = iota + 1
	// KindKey is an API key.
	KindKey
)

func (k SubjectKind) prefix() string {
	switch k {
	case KindUser:
		return "user:"
	case KindKey:
		return "key:"
	}
	return ""
}

// rank orders kinds as their prefixes sort: "key:" before "user:", an
// unknown kind (no prefix) first.
func (k SubjectKind) rank() uint8 {
	switch k {
	case KindKey:
		return 1
	case KindUser:
		return 2
	}
	return 0
}

// Subject is who holds roles: a user or an API key, by ID. Its string
// form, used in the casbin policy and by stores, is "user:<id>" or
// "key:<id>". Build one with User or Key.
type Subject struct {
	Kind SubjectKind
	ID   string
}

// User returns the subject of the user with the given ID.
func User(id string) Subject { return Subject{KindUser, id} }

// Key returns the subject of the API key with the given ID.
func Key(id string) Subject { return Subject{KindKey, id} }

// String returns "user:<id>" or "key:<id>" ("" for an invalid kind).
func (s Subject) String() string {
	p := s.Kind.prefix()
	if p == "" {
		return ""
	}
	return p + s.ID
}

// Check reports whether s is well formed, as an *InputError: a known
// kind and an ID of 1 to MaxSubjectIDLen ASCII letters, digits, '-' and
// '_'.
func (s Subject) Check() error {
	if s.Kind.prefix() == "" {
		return &InputError{Field: "subject", Reason: "kind must be user or key"}
	}
	if r := checkSubjectID(s.ID); r != "" {
		return &InputError{Field: "subject ID", Reason: r}
	}
	return nil
}

// ParseSubject parses "user:<id>" or "key:<id>".
func ParseSubject(s string) (Subject, error) {
	kind, id, _ := strings.Cut(s, ":")
	var sub Subject
	switch kind {
	case "user":
		sub = User(id)
	case "key":
		sub = Key(id)
	default:
		return Subject{}, &InputError{Field: "subject", Reason: `must be "user:<id>" or "key:<id>"`}
	}
	if err := sub.Check(); err != nil {
		return Subject{}, err
	}
	return sub, nil
}

// Bounds on names.
const (
	MaxTenantLen    = 63  // bytes
	MaxRoleLen      = 64  // bytes
	MaxSectionLen   = 64  // bytes
	MaxSubjectIDLen = 128 // bytes
)

// CheckTenant reports whether tenant is an acceptable tenant name, as an
// *InputError: 1 to 63 bytes of lower-case ASCII letters, digits, '-' and
// '_', starting with a letter or digit (the facade's rule for tenant IDs).
// Every other character is refused, and with it every casbin separator
// (',' and "::"), the ':' of Guard's own names, wildcards ('*', '?'),
// regular-expression and path characters, spaces, quotes and control
// characters.
func CheckTenant(tenant string) error {
	if r := checkName(tenant, MaxTenantLen, false); r != "" {
		return &InputError{Field: "tenant", Reason: r}
	}
	return nil
}

// CheckRole reports whether name is an acceptable name for a new custom
// role, as an *InputError: 1 to 64 bytes of lower-case ASCII letters,
// digits, '-' and '_', starting with a letter, and neither the name of a
// built-in role nor one that reads as it once the separators '-' and '_'
// are set aside ("reports_only", "reportsonly", "own-er"). The characters
// refused are those of CheckTenant, so case and Unicode look-alikes are
// refused already.
//
// A custom role stored before this rule (a name that reads as a built-in
// one) still loads, and can still be granted, revoked and deleted; it
// cannot be defined again.
func CheckRole(name string) error {
	if r := checkRoleName(name); r != "" {
		return &InputError{Field: "role", Reason: r}
	}
	if isBuiltinRole(name) {
		return &InputError{Field: "role", Reason: "is the name of a built-in role"}
	}
	if readsAsBuiltinRole(name) {
		return &InputError{Field: "role", Reason: "reads as the name of a built-in role"}
	}
	return nil
}

// readsAsBuiltinRole reports whether name, with its separators ('-' and
// '_') set aside, is a built-in role's name with its separators set aside.
func readsAsBuiltinRole(name string) bool {
	folded := dropSeparators(name)
	for _, d := range builtinRoles {
		if folded == dropSeparators(d.name) {
			return true
		}
	}
	return false
}

func dropSeparators(s string) string {
	return strings.Map(func(r rune) rune {
		if r == '-' || r == '_' {
			return -1
		}
		return r
	}, s)
}

func checkRoleName(name string) string {
	if r := checkName(name, MaxRoleLen, false); r != "" {
		return r
	}
	if c := name[0]; c < 'a' || c > 'z' {
		return "must start with a letter"
	}
	return ""
}

// checkSectionName: the rule for role names (host sections are named like
// roles).
func checkSectionName(name string) string { return checkRoleName(name) }

func checkSubjectID(id string) string { return checkName(id, MaxSubjectIDLen, true) }

// checkName returns why s is not a name of at most max bytes, or "". Names
// are ASCII letters (upper case only if upper), digits, '-' and '_', and
// start with a letter or digit.
func checkName(s string, max int, upper bool) string {
	if s == "" {
		return "is required"
	}
	if len(s) > max {
		return "is too long"
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c >= 'A' && c <= 'Z' && upper:
		case c == '-' || c == '_':
			if i == 0 {
				return "must start with a letter or digit"
			}
		case c >= 'A' && c <= 'Z':
			return "must be lower case"
		case c < 0x20 || c == 0x7f:
			return "contains a control character"
		case c >= 0x80:
			return "must be ASCII"
		case c == ' ':
			return "contains a space"
		case c == ',' || c == ':':
			return "contains a separator"
		case c == '*' || c == '?':
			return "contains a wildcard"
		default:
			return "contains a character other than letters, digits, '-' and '_'"
		}
	}
	return ""
}
