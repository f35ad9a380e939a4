package sso

import (
	"errors"
	"net/netip"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"
)

// FuzzConnectionValidate: a tenant's IdP connection as an administrator
// types it (the SSO page's form, an admin API). Validate refuses with an
// *InputError naming a field, or accepts a connection every field of
// which is as documented: the tenant a safe path segment, the metadata
// URL absolute http(s) with a host (https is the Provider's check) and no user info or fragment, attribute
// and role names UTF-8 text without controls or surrounding space,
// domains ASCII host names of two labels or more, multi-factor contexts
// non-empty and distinct, the skew within 0..MaxClockSkew.
func FuzzConnectionValidate(f *testing.F) {
	f.Add("acme", "https://idp.example.com/md", "mail", "displayName", "groups", "Admins", "admin", "member", "example.com", "urn:mfa", "urn:mfa2", int64(0), false)
	f.Add(".", "http://idp.example.com/md", " mail", "a\u200bb", "", "", "", "", "-x.com", "", "", int64(-1), true)
	f.Add("..", "https://user@idp.example.com/", "", "", "", "g", "", " r", "EXAMPLE.COM", "x", "x", int64(MaxClockSkew+1), false)
	f.Add("a.b_c-D", "https:///nohost", "\xff", "", "", "g\n", "r", "", "a..b", "\x00", "", int64(MaxClockSkew), false)
	f.Add("acme", "https://idp.example.com/#frag", "", "", "", "g", "r", "", "localhost", "", "", int64(1), false)
	f.Add("acme", "https://:443/", "", "", "", "", "", "", "xn--bcher-kva.example", "", "", int64(0), false)
	k := loadKeys(f)
	md := idpMetadata(time.Time{}, k.idp.cert)
	f.Fuzz(func(t *testing.T, tenant, mdURL, email, name, groups, group, role, defRole, domain, ctx1, ctx2 string, skew int64, withMD bool) {
		c := Connection{Tenant: tenant, MetadataURL: mdURL, EmailAttribute: email, NameAttribute: name, GroupsAttribute: groups,
			DefaultRole: defRole, ClockSkew: time.Duration(skew)}
		if withMD || mdURL == "" {
			c.Metadata = md
		}
		if group != "" || role != "" {
			c.GroupRoles = map[string]string{group: role}
		}
		if domain != "" {
			c.AllowedDomains = []string{domain}
		}
		if ctx1 != "" || ctx2 != "" {
			c.MFAAuthnContexts = []string{ctx1, ctx2}
		}
		err := c.Validate(t0)
		if err != nil {
			var ie *InputError
			if !errors.As(err, &ie) || ie.Field == "" {
				t.Fatalf("Validate = %#v, not an *InputError naming a field", err)
			}
			if err2 := c.Validate(t0); err2 == nil || err2.Error() != err.Error() {
				t.Fatalf("Validate is not deterministic: %v then %v", err, err2)
			}
			return
		}
		if tenant == "" || len(tenant) > 63 || tenant == "." || tenant == ".." ||
			strings.Trim(tenant, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-") != "" {
			t.Fatalf("Validate accepted tenant %q", tenant)
		}
		if mdURL != "" {
			u, err := url.Parse(mdURL)
			if err != nil || u.Scheme != "https" && u.Scheme != "http" || u.Host == "" || u.User != nil || u.Fragment != "" || len(mdURL) > 2048 {
				t.Fatalf("Validate accepted metadata URL %q", mdURL)
			}
		}
		text := func(field, s string, max int, empty bool) {
			t.Helper()
			if s == "" && empty {
				return
			}
			if s == "" || len(s) > max || !utf8.ValidString(s) || strings.TrimSpace(s) != s ||
				strings.ContainsFunc(s, func(r rune) bool {
					return unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.In(r, unicode.Zl, unicode.Zp)
				}) {
				t.Fatalf("Validate accepted %s %q", field, s)
			}
		}
		text("EmailAttribute", email, 256, true)
		text("NameAttribute", name, 256, true)
		text("GroupsAttribute", groups, 256, true)
		text("DefaultRole", defRole, 64, true)
		for g, r := range c.GroupRoles {
			text("group", g, 256, false)
			text("role", r, 64, false)
		}
		if domain != "" {
			labels := strings.Split(domain, ".")
			if len(labels) < 2 || len(domain) > 253 {
				t.Fatalf("Validate accepted domain %q", domain)
			}
			for _, l := range labels {
				if l == "" || len(l) > 63 || l[0] == '-' || l[len(l)-1] == '-' ||
					strings.Trim(l, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-") != "" {
					t.Fatalf("Validate accepted domain %q", domain)
				}
			}
		}
		if c.MFAAuthnContexts != nil {
			text("MFAAuthnContexts", ctx1, 256, false)
			text("MFAAuthnContexts", ctx2, 256, false)
			if ctx1 == ctx2 {
				t.Fatalf("Validate accepted duplicate contexts %q", ctx1)
			}
		}
		if c.ClockSkew < 0 || c.ClockSkew > MaxClockSkew {
			t.Fatalf("Validate accepted skew %v", c.ClockSkew)
		}
		if cl := c.clone(); !cl.equal(&c) || cl.Validate(t0) != nil {
			t.Fatal("a clone of an accepted connection differs or is refused")
		}
	})
}

// FuzzPublicAddr: the addresses a metadata fetch may connect to (the
// dialer's check; the host of MetadataURL is outside input). An address
// that passes is a global unicast address outside every private, shared,
// loopback, link-local, documentation and reserved range, in both its
// IPv4 and its IPv4-mapped IPv6 forms.
func FuzzPublicAddr(f *testing.F) {
	for _, s := range []string{"8.8.8.8", "127.0.0.1", "::1", "::ffff:127.0.0.1", "10.1.2.3", "169.254.169.254", "fe80::1",
		"fd00::1", "100.64.0.1", "2001:db8::1", "64:ff9b::a00:1", "::", "0.1.2.3", "255.255.255.255", "2606:4700::1",
		"::127.0.0.1", "2002:7f00:1::1", "ff02::1", "198.18.0.1", "192.0.0.8"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		ip, err := netip.ParseAddr(s)
		if err != nil {
			return
		}
		ok := publicAddr(ip)
		if ip.Is4() && ok != publicAddr(netip.AddrFrom16(ip.As16())) {
			t.Fatalf("publicAddr(%s) differs from publicAddr of its mapped form", ip)
		}
		if !ok {
			return
		}
		u := ip.Unmap()
		if u.IsLoopback() || u.IsPrivate() || u.IsLinkLocalUnicast() || u.IsMulticast() || u.IsUnspecified() ||
			u.IsInterfaceLocalMulticast() || !u.IsGlobalUnicast() {
			t.Fatalf("publicAddr accepted %s", ip)
		}
		for _, p := range nonPublic {
			if p.Contains(u) {
				t.Fatalf("publicAddr accepted %s in %s", ip, p)
			}
		}
	})
}
