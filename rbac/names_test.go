package rbac_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/store/memstore"
)

// badNames are refused as tenant, role and subject ID alike.
// SECURITY-CHECKLIST RB-6: Guard has no regex policies (the casbin model
// in adapter.go compares every field with ==, no regexMatch, keyMatch or
// globMatch), and no name or permission may hold a pattern character
// (the Regex, KeyMatch and glob cases here; TestParsePermission's), so
// no policy is a pattern.
var badNames = []struct{ name, in string }{
	{"Empty", ""},
	{"CasbinSeparator", "a,b"},
	{"CasbinDomainSeparator", "a::b"},
	{"Colon", "a:b"},
	{"Star", "a*"},
	{"OnlyStar", "*"},
	{"Question", "a?"},
	{"RegexDot", "a.b"},
	{"RegexDotStar", "a.*"},
	{"RegexAnchors", "^a$"},
	{"RegexClass", "[a]"},
	{"RegexGroup", "(a|b)"},
	{"RegexPlus", "a+"},
	{"RegexBraces", "a{2}"},
	{"Backslash", `a\b`},
	{"KeyMatchPath", "a/b"},
	{"KeyMatchParam", "a/:id"},
	{"CSVQuote", `a"b`},
	{"CSVComment", "#a"},
	{"HashInside", "a#b"},
	{"Percent", "a%b"},
	{"Equals", "a=b"},
	{"Ampersand", "a&&b"},
	{"Pipe", "a||b"},
	{"Bang", "!a"},
	{"LeadingSpace", " a"},
	{"TrailingSpace", "a "},
	{"InnerSpace", "a b"},
	{"Tab", "a\tb"},
	{"Newline", "a\nb"},
	{"CarriageReturn", "a\r"},
	{"NUL", "a\x00"},
	{"DEL", "a\x7f"},
	{"C1Control", "a\u0085"},
	{"ZeroWidthSpace", "a\u200bb"},
	{"RightToLeftOverride", "a\u202eb"},
	{"NonASCIILetter", "caf\u00e9"},
	{"CyrillicLookalike", "\u043ewner"},
	{"FullwidthLetter", "\uff41"},
	{"InvalidUTF8", "a\xffb"},
	{"LeadingDash", "-a"},
	{"LeadingUnderscore", "_a"},
	{"TooLong", strings.Repeat("a", 129)},
}

func TestCheckTenant(t *testing.T) {
	for _, c := range badNames {
		t.Run(c.name, func(t *testing.T) {
			var ie *rbac.InputError
			if err := rbac.CheckTenant(c.in); !errors.As(err, &ie) || ie.Field != "tenant" {
				t.Errorf("CheckTenant(%q) = %v, want an *InputError for tenant", c.in, err)
			} else if len(c.in) >= 4 && strings.Contains(err.Error(), c.in) {
				t.Errorf("the error echoes the input: %v", err)
			}
		})
	}
	for _, bad := range []string{"Acme", "ACME", strings.Repeat("a", rbac.MaxTenantLen+1)} {
		if rbac.CheckTenant(bad) == nil {
			t.Errorf("CheckTenant(%q) accepted", bad)
		}
	}
	for _, good := range []string{"acme", "a", "0", "acme-eu_2", "9lives", strings.Repeat("z", rbac.MaxTenantLen)} {
		if err := rbac.CheckTenant(good); err != nil {
			t.Errorf("CheckTenant(%q) = %v", good, err)
		}
	}
}

func TestCheckRole(t *testing.T) {
	for _, c := range badNames {
		t.Run(c.name, func(t *testing.T) {
			var ie *rbac.InputError
			if err := rbac.CheckRole(c.in); !errors.As(err, &ie) || ie.Field != "role" {
				t.Errorf("CheckRole(%q) = %v, want an *InputError for role", c.in, err)
			}
		})
	}
	for _, bad := range []string{"Campaigners", "1st", "owner", "admin", "manager", "member", "reports-only",
		"reports_only", "reportsonly", "reports__only", "own-er", "ad_min", strings.Repeat("a", rbac.MaxRoleLen+1)} {
		if rbac.CheckRole(bad) == nil {
			t.Errorf("CheckRole(%q) accepted", bad)
		}
	}
	for _, good := range []string{"campaign-approver", "crm", "x", "owners", "admin2", "read_only", strings.Repeat("r", rbac.MaxRoleLen)} {
		if err := rbac.CheckRole(good); err != nil {
			t.Errorf("CheckRole(%q) = %v", good, err)
		}
	}
}

func TestParseSubject(t *testing.T) {
	for _, c := range badNames {
		t.Run(c.name, func(t *testing.T) {
			for _, kind := range []string{"user:", "key:"} {
				var ie *rbac.InputError
				if _, err := rbac.ParseSubject(kind + c.in); !errors.As(err, &ie) {
					t.Errorf("ParseSubject(%q) = %v, want an *InputError", kind+c.in, err)
				}
				if err := (rbac.Subject{Kind: rbac.KindUser, ID: c.in}).Check(); err == nil {
					t.Errorf("Subject.Check accepted ID %q", c.in)
				}
			}
		})
	}
	for _, bad := range []string{"", "user", "user:", "users:a", "role:admin", "User:a", "key", ":a", "user::a", "user:a:b", "a"} {
		if _, err := rbac.ParseSubject(bad); err == nil {
			t.Errorf("ParseSubject(%q) accepted", bad)
		}
	}
	if (rbac.Subject{ID: "a"}).Check() == nil || (rbac.Subject{Kind: 9, ID: "a"}).Check() == nil {
		t.Error("Check accepted a subject of no known kind")
	}
	for _, good := range []rbac.Subject{rbac.User("a"), rbac.Key("K-1_x"), rbac.User(strings.Repeat("F", rbac.MaxSubjectIDLen)), rbac.User("0123456789abcdef0123456789abcdef")} {
		got, err := rbac.ParseSubject(good.String())
		if err != nil || got != good {
			t.Errorf("ParseSubject(%q) = %v, %v", good.String(), got, err)
		}
	}
	if s := (rbac.Subject{Kind: 7, ID: "x"}).String(); s != "" {
		t.Errorf("String of an unknown kind = %q", s)
	}
}

func TestParsePermission(t *testing.T) {
	for _, bad := range []string{"", "contacts", "contacts:", ":read", "contacts:READ", "contacts:*", "*:read", "*:*",
		"contacts:read:x", "Contacts:read", "contacts :read", "contacts: read", "con,tacts:read", "contacts:list", "a.b:read"} {
		var ie *rbac.InputError
		if _, err := rbac.ParsePermission(bad); !errors.As(err, &ie) {
			t.Errorf("ParsePermission(%q) = %v, want an *InputError", bad, err)
		}
	}
	for _, s := range []string{"contacts:read", "api-keys:manage", "automations:send"} {
		p, err := rbac.ParsePermission(s)
		if err != nil || p.String() != s {
			t.Errorf("ParsePermission(%q) = %v, %v", s, p, err)
		}
	}
}

// TestBadNamesChangeNothing: bad input to the changing methods is a typed
// error and leaves the policy alone.
func TestBadNamesChangeNothing(t *testing.T) {
	e := newEnforcer(t, nil)
	all := e.AllPerms()
	grant(t, e, "acme", ada, rbac.Owner)
	for _, c := range badNames {
		t.Run(c.name, func(t *testing.T) {
			v0, _ := e.Version(ctx, "acme")
			for _, err := range []error{
				e.Grant(ctx, all, c.in, ada, rbac.Owner),
				e.Grant(ctx, all, "acme", rbac.User(c.in), rbac.Owner),
				e.Grant(ctx, all, "acme", ada, c.in),
				e.Revoke(ctx, all, "acme", rbac.User(c.in), rbac.Owner),
				e.Revoke(ctx, all, "acme", ada, c.in),
				e.RevokeAll(ctx, all, "acme", rbac.Key(c.in)),
				errOf(e.DefineRole(ctx, all, "acme", c.in, []rbac.Permission{rbac.P(rbac.Reports, rbac.Read)})),
				errOf(e.DefineRole(ctx, all, c.in, "crm", []rbac.Permission{rbac.P(rbac.Reports, rbac.Read)})),
				errOf(e.DefineRole(ctx, all, "acme", "crm", []rbac.Permission{{rbac.Section(c.in), rbac.Read}})),
				errOf(e.DeleteRole(ctx, all, "acme", c.in)),
				e.SetApprovalRequired(ctx, all, "acme", rbac.Permission{rbac.Section(c.in), rbac.Send}, true),
			} {
				var ie *rbac.InputError
				if !errors.As(err, &ie) {
					t.Errorf("got %v, want an *InputError", err)
				}
			}
			d, err := e.Decide(ctx, c.in, ada, rbac.Reports, rbac.Read)
			if err == nil || d.Allowed {
				t.Errorf("Decide in tenant %q = %+v, %v", c.in, d, err)
			}
			d, err = e.Decide(ctx, "acme", rbac.User(c.in), rbac.Reports, rbac.Read)
			if err == nil || d.Allowed {
				t.Errorf("Decide for user %q = %+v, %v", c.in, d, err)
			}
			if v, _ := e.Version(ctx, "acme"); v != v0 {
				t.Errorf("bad input moved the version from %d to %d", v0, v)
			}
		})
	}
}

func FuzzNames(f *testing.F) {
	for _, c := range badNames {
		f.Add(c.in)
	}
	for _, s := range []string{"acme", "campaign-approver", "user:abc", "key:K_1", "contacts:read", "role:admin", "a::b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		clean := func(x string) bool {
			if x == "" {
				return false
			}
			for i := 0; i < len(x); i++ {
				c := x[i]
				if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
					return false
				}
			}
			return x[0] != '-' && x[0] != '_'
		}
		if rbac.CheckTenant(s) == nil && (!clean(s) || strings.ToLower(s) != s || len(s) > rbac.MaxTenantLen) {
			t.Fatalf("CheckTenant accepted %q", s)
		}
		if rbac.CheckRole(s) == nil && (!clean(s) || strings.ToLower(s) != s || len(s) > rbac.MaxRoleLen || s[0] < 'a' || s[0] > 'z') {
			t.Fatalf("CheckRole accepted %q", s)
		}
		if sub, err := rbac.ParseSubject(s); err == nil {
			if sub.String() != s || !clean(sub.ID) || len(sub.ID) > rbac.MaxSubjectIDLen || sub.Check() != nil {
				t.Fatalf("ParseSubject(%q) = %+v", s, sub)
			}
		} else if err.Error() == "" || strings.Contains(err.Error(), s) && len(s) > 8 {
			t.Fatalf("ParseSubject error %q echoes its input", err)
		}
		if p, err := rbac.ParsePermission(s); err == nil {
			if p.String() != s || rbac.CheckRole(string(p.Section)) != nil && !isBuiltIn(p.Section) {
				t.Fatalf("ParsePermission(%q) = %+v", s, p)
			}
		}
	})
}

func isBuiltIn(s rbac.Section) bool {
	for _, b := range rbac.BuiltInSections() {
		if b == s {
			return true
		}
	}
	return false
}

// A custom role stored before CheckRole refused names that read as a
// built-in role's still loads and can be granted, revoked and deleted;
// it cannot be defined again.
func TestStoredRoleReadingAsBuiltIn(t *testing.T) {
	st := memstore.NewPolicies()
	rules := []rbac.Rule{
		{Type: rbac.RulePermission, Role: "reports_only", Section: rbac.Reports, Action: rbac.Read},
		{Type: rbac.RuleGrant, Role: "reports_only", Subject: ada.String()},
	}
	if err := st.Update(ctx, "acme", 0, nil, rules); err != nil {
		t.Fatal(err)
	}
	e := newEnforcer(t, st)
	wantAllowed(t, e, "acme", ada, rbac.Reports, rbac.Read, true)
	grant(t, e, "acme", bob, "reports_only")
	revoke(t, e, "acme", bob, "reports_only")
	var ie *rbac.InputError
	if _, err := e.DefineRole(ctx, e.AllPerms(), "acme", "reports_only", []rbac.Permission{rbac.P(rbac.Reports, rbac.Read)}); !errors.As(err, &ie) {
		t.Errorf("redefining the stored reports_only = %v, want an *InputError", err)
	}
	if _, err := e.DeleteRole(ctx, e.AllPerms(), "acme", "reports_only"); err != nil {
		t.Fatalf("DeleteRole(reports_only) = %v", err)
	}
	wantAllowed(t, e, "acme", ada, rbac.Reports, rbac.Read, false)
}
