package main

import (
	"bytes"
	"encoding/pem"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/rbac"
)

// FuzzLocalPath: the "next" of sign-in, SSO and re-authentication comes
// from the query string or a form and becomes a redirect. localPath
// gives next itself or "/"; what it gives, read by a browser against this
// site (WHATWG: tabs and newlines dropped, '\' read as '/'), stays on
// this site.
func FuzzLocalPath(f *testing.F) {
	for _, s := range []string{"", "/", "/users?x=1#top", "//evil.example", "/\\evil.example", "\\/evil.example",
		"https://evil.example/", "/%2f%2fevil.example", "/\t/evil.example", "/a\nb", "javascript:alert(1)",
		"/ /evil", "/.//evil", "/\u3002evil", "/@evil.example", "/x:y", "\x00/", "/\u00a0/evil", "/%5cevil"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://console.example/account/reauth")
	f.Fuzz(func(t *testing.T, next string) {
		got := localPath(next)
		if got != "/" && got != next {
			t.Fatalf("localPath(%q) = %q: neither next nor /", next, got)
		}
		if got == "/" {
			return
		}
		if !utf8.ValidString(got) && strings.ContainsAny(got, "\t\n\r") {
			t.Fatalf("localPath(%q) kept a character browsers drop", next)
		}
		// The browser's reading: drop tab, CR, LF; backslash is a slash.
		b := strings.NewReplacer("\t", "", "\n", "", "\r", "", "\\", "/").Replace(got)
		if strings.HasPrefix(b, "//") || !strings.HasPrefix(b, "/") {
			t.Fatalf("localPath(%q) = %q, read by a browser as %q: another host", next, got, b)
		}
		u, err := url.Parse(b)
		if err != nil {
			t.Fatalf("localPath(%q) = %q does not parse: %v", next, got, err)
		}
		if r := base.ResolveReference(u); r.Host != base.Host || r.Scheme != base.Scheme {
			t.Fatalf("localPath(%q) = %q resolves to %s", next, got, r)
		}
	})
}

// FuzzSplitPEM: the metadata signing certificates pasted on the SSO page.
// splitPEM reports false "if s holds anything else besides white space"
// than PEM blocks: when it accepts, every block of s is in its answer
// (each "-----BEGIN " of s starts one of them) and each answer decodes to
// one block with nothing after it.
func FuzzSplitPEM(f *testing.F) {
	blk := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("not really DER")}))
	for _, s := range []string{"", "  \n", blk, blk + blk, blk + "junk", "junk" + blk, "-----BEGIN X-----\nQUJD\n-----END X-----\n",
		strings.Replace(blk, "\n", "\r\n", -1)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		out, ok := splitPEM(s)
		if !ok {
			if out != nil {
				t.Fatalf("splitPEM(%q) refused with %d blocks", s, len(out))
			}
			return
		}
		if strings.TrimSpace(s) == "" && len(out) != 0 {
			t.Fatalf("splitPEM of white space = %q", out)
		}
		for _, p := range out {
			b, rest := pem.Decode([]byte(p))
			if b == nil || len(bytes.TrimSpace(rest)) != 0 {
				t.Fatalf("splitPEM(%q) gave %q, not one PEM block", s, p)
			}
		}
		if n := strings.Count(s, "-----BEGIN "); n != len(out) {
			t.Fatalf("splitPEM(%q) accepted with %d blocks for %d BEGIN lines: text was dropped", s, len(out), n)
		}
	})
}

// FuzzParseMapping: the "group = role" lines of the SSO page. A mapping
// is accepted only with known roles and never owner; every line of the
// text is in it (the role after the last '='), none is silently lost, and
// a group named on two lines is refused.
func FuzzParseMapping(f *testing.F) {
	for _, s := range []string{"", "admins = admin", "CN=Admins,OU=x = admin\nusers=member", "x = owner", "x =", "= admin",
		"a = admin\na = member", "a = nosuch", " \n\n", "a=b=c", "a = admin\r\nb = member"} {
		f.Add(s)
	}
	known := func(r string) bool { return r == "admin" || r == "member" || r == rbac.Owner || r == "reports_only" }
	f.Fuzz(func(t *testing.T, s string) {
		m, msg := parseMapping(s, known)
		if msg != "" {
			if m != nil {
				t.Fatalf("parseMapping(%q) refused (%s) with a mapping", s, msg)
			}
			return
		}
		lines := 0
		for line := range strings.Lines(s) {
			line = strings.TrimSpace(line)
			if line == "" {
				continue
			}
			lines++
			i := strings.LastIndex(line, "=")
			group := strings.TrimSpace(line[:i])
			if m[group] == "" || !known(m[group]) || m[group] == rbac.Owner {
				t.Fatalf("parseMapping(%q): group %q maps to %q", s, group, m[group])
			}
		}
		if lines == 0 && m != nil {
			t.Fatalf("parseMapping(%q) = %v from no lines", s, m)
		}
		if len(m) != lines {
			t.Fatalf("parseMapping(%q) = %v from %d lines: a group on two lines was accepted", s, m, lines)
		}
		for g, r := range m {
			if g == "" || r == "" || r == rbac.Owner || !known(r) {
				t.Fatalf("parseMapping(%q) = %v", s, m)
			}
		}
	})
}

// FuzzAuditQuery: the audit page's filters from its query string. A
// refusal is a message; an accepted filter has a known outcome or none,
// From and To as the days given (To the end of its day), and never
// From after To unless Guard is left to refuse it.
func FuzzAuditQuery(f *testing.F) {
	for _, s := range []string{"", "from=2026-01-01&to=2026-01-31", "actor=Ada@Example.com", "outcome=success",
		"outcome=bogus", "from=2026-13-01", "to=9999-12-31", "to=0000-01-01", "actor=%20u1%20", "action=login.failed&from=2026-02-30"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		v, err := url.ParseQuery(raw)
		if err != nil {
			return
		}
		q, fl, msg := auditQuery(v)
		if msg != "" {
			return
		}
		if q.Outcome != "" && q.Outcome != audit.Success && q.Outcome != audit.Failure {
			t.Fatalf("auditQuery(%q) accepted outcome %q", raw, q.Outcome)
		}
		if q.Action != v.Get("action") || fl.Actor != strings.TrimSpace(v.Get("actor")) {
			t.Fatalf("auditQuery(%q) = %+v", raw, q)
		}
		if strings.Contains(q.Actor, "@") && q.Actor != strings.ToLower(q.Actor) {
			t.Fatalf("auditQuery(%q): email actor %q not lower-cased", raw, q.Actor)
		}
		if d := v.Get("from"); d != "" && q.From.Format(time.DateOnly) != d {
			t.Fatalf("auditQuery(%q): From %v for %q", raw, q.From, d)
		}
		if d := v.Get("to"); d != "" && !q.To.IsZero() && q.To.Add(-24*time.Hour).Format(time.DateOnly) != d {
			t.Fatalf("auditQuery(%q): To %v for %q", raw, q.To, d)
		}
	})
}
