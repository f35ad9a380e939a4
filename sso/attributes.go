package sso

import (
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/crewjam/saml"
	"github.com/guardhq/guard/internal/emailfold"
)

// xmlSpace is XML's white space (the S production): space, tab, CR, LF.
const xmlSpace = " \t\r\n"

// The attribute names tried when a Connection leaves one empty, in order.
// Names are matched exactly against an attribute's Name, then against its
// FriendlyName.
var (
	emailAttributes = []string{
		"email", "mail", "emailAddress", "emailaddress", "Email",
		"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress",
		"urn:oid:0.9.2342.19200300.100.1.3",
	}
	nameAttributes = []string{
		"displayName", "http://schemas.microsoft.com/identity/claims/displayname",
		"urn:oid:2.16.840.1.113730.3.1.241", "cn", "urn:oid:2.5.4.3", "name", "fullName",
	}
	givenNameAttributes = []string{
		"givenName", "firstName", "urn:oid:2.5.4.42",
		"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname",
	}
	surnameAttributes = []string{
		"sn", "surname", "lastName", "urn:oid:2.5.4.4",
		"http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname",
	}
	groupAttributes = []string{
		"groups", "memberOf", "Role", "role",
		"http://schemas.microsoft.com/ws/2008/06/identity/claims/groups",
		"http://schemas.microsoft.com/ws/2008/06/identity/claims/role",
		"urn:oid:1.3.6.1.4.1.5923.1.1.1.1",
	}
)

// Limits of mapped values.
const (
	maxNameBytes  = 200
	maxGroups     = 1000
	maxGroupBytes = 256
)

// mapAttributes fills the email, name, groups and roles of res from the
// verified assertion, by the connection's mapping.
func (comp *compiled) mapAttributes(a *saml.Assertion, res *Result) *RejectError {
	c := &comp.conn
	var attrs []saml.Attribute
	for _, st := range a.AttributeStatements {
		attrs = append(attrs, st.Attributes...)
	}

	var raws []string
	if c.EmailAttribute != "" {
		raws, _ = values(attrs, []string{c.EmailAttribute})
	} else if vs, ok := values(attrs, emailAttributes); ok {
		raws = vs
	} else {
		switch a.Subject.NameID.Format {
		case "", string(saml.EmailAddressNameIDFormat), string(saml.UnspecifiedNameIDFormat):
			raws = []string{a.Subject.NameID.Value}
		}
	}
	// Every value counts: an attribute naming two people (two values, or
	// two elements of one name) is refused rather than read as whichever
	// came first.
	var email string
	for _, raw := range raws {
		if strings.TrimSpace(raw) == "" {
			continue
		}
		e, ok := canonicalEmail(raw)
		if !ok {
			return reject(ReasonEmailInvalid, "", nil)
		}
		if email != "" && e != email {
			return reject(ReasonEmailAmbiguous, "", nil)
		}
		email = e
	}
	if email == "" {
		return reject(ReasonEmailMissing, "", nil)
	}
	if len(c.AllowedDomains) > 0 {
		domain := email[strings.LastIndexByte(email, '@')+1:]
		// Lower case, then byte for byte: strings.EqualFold would take
		// "ſ" (U+017F) for "s", and so another (internationalised)
		// domain for an allowed one.
		if !slices.ContainsFunc(c.AllowedDomains, func(d string) bool { return strings.ToLower(d) == domain }) {
			return reject(ReasonEmailDomain, "", nil)
		}
	}
	res.Email = email

	names := nameAttributes
	if c.NameAttribute != "" {
		names = []string{c.NameAttribute}
	}
	name := first(attrs, names)
	if name == "" && c.NameAttribute == "" {
		given := first(attrs, givenNameAttributes)
		sur := first(attrs, surnameAttributes)
		name = strings.TrimSpace(strings.TrimSpace(given) + " " + strings.TrimSpace(sur))
	}
	if name = strings.TrimSpace(name); checkDisplayName(name) {
		res.Name = name
	}

	groupNames := groupAttributes
	if c.GroupsAttribute != "" {
		groupNames = []string{c.GroupsAttribute}
	}
	groups, _ := values(attrs, groupNames)
	for _, v := range groups {
		// XML's white space only: "Admins\u00a0" is another group than
		// "Admins" (GroupRoles matches exactly), not one to trim into it.
		v = strings.Trim(v, xmlSpace)
		if v == "" || len(v) > maxGroupBytes || checkText(v, maxGroupBytes) != "" || slices.Contains(res.Groups, v) {
			continue
		}
		if len(res.Groups) == maxGroups {
			break
		}
		res.Groups = append(res.Groups, v)
		if role, ok := c.GroupRoles[v]; ok && !slices.Contains(res.Roles, role) {
			res.Roles = append(res.Roles, role)
		}
	}
	if len(res.Roles) == 0 && c.DefaultRole != "" {
		res.Roles = []string{c.DefaultRole}
	}
	slices.Sort(res.Roles)
	return nil
}

// values returns the values of every attribute element carrying the first
// of names that any carries, by Name, then by FriendlyName, and whether
// one does. An IdP may split one attribute over several elements of the
// same name: all of them count.
func values(attrs []saml.Attribute, names []string) ([]string, bool) {
	for _, friendly := range []bool{false, true} {
		for _, n := range names {
			var out []string
			found := false
			for i := range attrs {
				name := attrs[i].Name
				if friendly {
					name = attrs[i].FriendlyName
				}
				if name != n {
					continue
				}
				found = true
				for _, v := range attrs[i].Values {
					out = append(out, v.Value)
				}
			}
			if found {
				return out, true
			}
		}
	}
	return nil, false
}

// first returns the first non-empty value that values selects.
func first(attrs []saml.Attribute, names []string) string {
	vs, _ := values(attrs, names)
	for _, v := range vs {
		if strings.TrimSpace(v) != "" {
			return v
		}
	}
	return ""
}

// canonicalEmail returns an email trimmed, case-folded and in NFC, if it is a
// plain addr-spec (no display name, brackets or comments) of at most 254
// bytes without white space, control or formatting characters. It follows
// the rules of auth.CanonicalEmail, so that the facade finds the user by
// the same key.
func canonicalEmail(s string) (string, bool) {
	e, reason := emailfold.Canonical(s)
	return e, reason == ""
}

// checkDisplayName reports whether name is an acceptable display name:
// non-empty valid UTF-8 of at most 200 bytes without control characters,
// line separators or bidirectional overrides.
func checkDisplayName(name string) bool {
	if name == "" || len(name) > maxNameBytes || !utf8.ValidString(name) {
		return false
	}
	for _, r := range name {
		if unicode.IsControl(r) || unicode.In(r, unicode.Zl, unicode.Zp) ||
			'\u202a' <= r && r <= '\u202e' || '\u2066' <= r && r <= '\u2069' {
			return false
		}
	}
	return true
}
