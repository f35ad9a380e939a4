package main

import (
	"bytes"
	"encoding/pem"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/rbac"
)

// FuzzLocalPath: the "next" of sign-in, SSO and re-authentication comes
// from the query string or a form and becomes a redirect. localPath
// gives next itself or "/"; what it gives, read by a browser against this
// site (WHATWG: tabs and newlines dropped, '\' read as '/'), stays on
// this site, and is not the SSO start.
func FuzzLocalPath(f *testing.F) {
	for _, s := range []string{"", "/", "/users?x=1#top", "//evil.example", "/\\evil.example", "\\/evil.example",
		"https://evil.example/", "/%2f%2fevil.example", "/\t/evil.example", "/a\nb", "javascript:alert(1)",
		"/ /evil", "/.//evil", "/\u3002evil", "/@evil.example", "/x:y", "\x00/", "/\u00a0/evil", "/%5cevil",
		"/saml/demo/login", "/%73aml/demo/login", "/./saml/x/login", "/a/../saml/x/login", "/a/%2e%2e/saml/x/login", "/saml"} {
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
		r := base.ResolveReference(u)
		if r.Host != base.Host || r.Scheme != base.Scheme {
			t.Fatalf("localPath(%q) = %q resolves to %s", next, got, r)
		}
		// Never the SSO start, which a redirect of the console's own
		// would start at once (ownNavigation).
		if p := path.Clean(r.Path); p == "/saml" || strings.HasPrefix(p, "/saml/") {
			t.Fatalf("localPath(%q) = %q leads to the SSO start %s", next, got, p)
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

// cookieFrom returns the value of the cookie name that w sets, and whether
// it sets one.
func cookieFrom(w *httptest.ResponseRecorder, name string) (*http.Cookie, bool) {
	for _, c := range w.Result().Cookies() {
		if c.Name == name {
			return c, true
		}
	}
	return nil, false
}

// withCookie is a request to path that sends the cookie name=value.
func withCookie(path, name, value string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, path, nil)
	r.Header.Set("Cookie", name+"="+value)
	return r
}

// FuzzTakeFlash: the flash cookie comes back from the browser, where
// anyone can have changed it. takeFlash always clears it (when net/http
// can read it at all) and gives a
// message of kind "ok" or "error", or none; a flash set by setFlash comes
// back as it was set, its message cut to at most 500 bytes and still
// valid UTF-8 (a prefix of the message set).
func FuzzTakeFlash(f *testing.F) {
	for _, s := range []string{"", "e30", "eyJLaW5kIjoib2siLCJNZXNzYWdlIjoiaGkifQ", "eyJLaW5kIjoieCJ9", "!!", "bnVsbA"} {
		f.Add(s, "ok", "Saved.")
	}
	f.Add("", "error", strings.Repeat("a", 499)+"é")
	f.Add("", "ok", strings.Repeat("€", 200))
	f.Fuzz(func(t *testing.T, raw, kind, msg string) {
		a := &app{}
		w := httptest.NewRecorder()
		r := withCookie("/", flashCookie, raw)
		_, err := r.Cookie(flashCookie) // a value net/http cannot read is no cookie
		got := a.takeFlash(w, r)
		if c, ok := cookieFrom(w, flashCookie); err == nil && (!ok || c.MaxAge >= 0 || c.Value != "") {
			t.Fatalf("takeFlash(%q) did not clear the cookie: %v", raw, c)
		}
		if got != nil && got.Kind != "ok" && got.Kind != "error" {
			t.Fatalf("takeFlash(%q) = kind %q", raw, got.Kind)
		}
		if kind != "ok" && kind != "error" || !utf8.ValidString(msg) {
			return
		}
		w = httptest.NewRecorder()
		a.setFlash(w, kind, msg)
		c, ok := cookieFrom(w, flashCookie)
		if !ok {
			t.Fatalf("setFlash(%q) set no cookie", msg)
		}
		got = a.takeFlash(httptest.NewRecorder(), withCookie("/", flashCookie, c.Value))
		if got == nil || got.Kind != kind {
			t.Fatalf("setFlash(%q, %q) came back as %+v", kind, msg, got)
		}
		if len(got.Message) > 500 || !strings.HasPrefix(msg, got.Message) || len(msg) <= 500 && got.Message != msg ||
			len(got.Message) < 500-utf8.UTFMax+1 && len(msg) > 500 {
			t.Fatalf("setFlash(%q) came back as message %q", msg, got.Message)
		}
	})
}

// FuzzPendingCookie: the pending sign-in cookie comes back from the
// browser. pending gives a state with a token and a tenant or nothing; a
// state set by setPending (tenant, IDs, kinds and labels as Guard and mfa
// check them: valid UTF-8) comes back as it was set.
func FuzzPendingCookie(f *testing.F) {
	f.Add("", "tok", "demo", true, "f1", "totp", "Phone", "/users")
	f.Add("eyJ0IjoiIn0", "t", "", false, "", "", "", "")
	f.Add("eyJ0IjoieCIsImYiOm51bGx9", "x", "acme", false, "f2", "sms", "…0123", "//evil.example")
	f.Add("eyJ0IjoieCIsInRuIjoiZGVtbyJ9", "", "demo", false, "", "", "", "")
	f.Add("bnVsbA", "", "", false, "", "", "", "")
	f.Fuzz(func(t *testing.T, raw, token, tenant string, enrol bool, id, kind, label, next string) {
		a := &app{}
		if st, ok := a.pending(withCookie("/login/mfa", pendingCookie, raw)); ok && (st.Token == "" || st.Tenant == "") || !ok && (st.Token != "" || st.Tenant != "") {
			t.Fatalf("pending(%q) = %+v, %v", raw, st, ok)
		}
		for _, s := range []string{token, tenant, id, kind, label, next} {
			if !utf8.ValidString(s) {
				return
			}
		}
		p := &guard.Pending{Token: token, Enrol: enrol, ExpiresAt: time.Now().Add(time.Minute)}
		if id != "" {
			p.Factors = []mfa.Factor{{ID: id, Kind: mfa.Kind(kind), Label: label}}
		}
		w := httptest.NewRecorder()
		a.setPending(w, p, tenant, next)
		c, ok := cookieFrom(w, pendingCookie)
		if !ok || !c.Secure || !c.HttpOnly {
			t.Fatalf("setPending set %v", c)
		}
		st, ok := a.pending(withCookie("/login/mfa", pendingCookie, c.Value))
		if ok != (token != "" && tenant != "") {
			t.Fatalf("pending after setPending(%q, %q) = %v", token, tenant, ok)
		}
		if !ok {
			return
		}
		if st.Token != token || st.Tenant != tenant || st.Enrol != enrol || st.Next != next || len(st.Factors) != len(p.Factors) {
			t.Fatalf("setPending(%+v, %q, %q) came back as %+v", p, tenant, next, st)
		}
		if len(st.Factors) == 1 && (st.Factors[0].ID != id || string(st.Factors[0].Kind) != kind || st.Factors[0].Label != label) {
			t.Fatalf("factor came back as %+v", st.Factors[0])
		}
	})
}

// FuzzLinkCookie: a mailed link's parameters move from its query into a
// cookie and back to a bare path. The redirect never carries them, the
// cookie gives back exactly the parameters of the link, and cookieParams
// answers ok only with a token.
func FuzzLinkCookie(f *testing.F) {
	f.Add("acme", "u1", "tok", "1", "", "")
	f.Add("", "", "", "", "=&", "%zz")
	f.Add("a&b=c", "u 1", "t+o/k=", "0", "QUJD", "token=")
	f.Fuzz(func(t *testing.T, tenant, user, token, invite, raw, extra string) {
		if v, ok := cookieParams(withCookie("/reset", resetCookie, raw), resetCookie); ok && v.Get("token") == "" {
			t.Fatalf("cookieParams(%q) = %v, ok without a token", raw, v)
		}
		q := url.Values{"tenant": {tenant}, "user": {user}, "token": {token}, "invite": {invite}, "x": {extra}}
		r := httptest.NewRequest(http.MethodGet, "/reset?"+q.Encode(), nil)
		w := httptest.NewRecorder()
		if !linkToCookie(w, r, resetCookie, "/reset", "tenant", "user", "token", "invite") {
			t.Fatalf("linkToCookie(%q) did not answer", q.Encode())
		}
		if loc := w.Header().Get("Location"); loc != "/reset" {
			t.Fatalf("linkToCookie(%q) redirects to %q", q.Encode(), loc)
		}
		c, ok := cookieFrom(w, resetCookie)
		if !ok || !c.Secure || !c.HttpOnly || c.MaxAge <= 0 {
			t.Fatalf("linkToCookie set %v", c)
		}
		v, ok := cookieParams(withCookie("/reset", resetCookie, c.Value), resetCookie)
		if ok != (token != "") {
			t.Fatalf("cookieParams after a link with token %q: ok %v", token, ok)
		}
		want := url.Values{"tenant": {tenant}, "user": {user}, "token": {token}, "invite": {invite}}
		if v.Encode() != want.Encode() {
			t.Fatalf("link %q came back as %q", want.Encode(), v.Encode())
		}
	})
}

// FuzzSplitEntries: the IP allow-list textarea. Every entry is non-empty
// and holds no separator, each has the line (from 1) it is on, and none
// of the text other than separators is lost.
func FuzzSplitEntries(f *testing.F) {
	for _, s := range []string{"", "10.0.0.0/8", "10.0.0.1, 10.0.0.2\r\n\r\n2001:db8::/32\t192.0.2.1", " ,\n, ", "a\rb\nc", "\u00a010.0.0.1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		entries, lines := splitEntries(s)
		if len(entries) != len(lines) {
			t.Fatalf("splitEntries(%q): %d entries, %d lines", s, len(entries), len(lines))
		}
		text := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
		last := 1
		for i, e := range entries {
			if e == "" || strings.ContainsAny(e, ", \t\r\n") {
				t.Fatalf("splitEntries(%q): entry %q", s, e)
			}
			if lines[i] < last || lines[i] > len(text) || !strings.Contains(text[lines[i]-1], e) {
				t.Fatalf("splitEntries(%q): entry %q on line %d", s, e, lines[i])
			}
			last = lines[i]
		}
		sep := func(r rune) bool { return strings.ContainsRune(", \t\r\n", r) }
		if want := strings.FieldsFunc(s, sep); strings.Join(want, "\x00") != strings.Join(entries, "\x00") {
			t.Fatalf("splitEntries(%q) = %q, want %q", s, entries, want)
		}
	})
}

// FuzzPolicyFromForm: the security settings form. A refusal is a message
// and no policy; an accepted form holds every number given, exactly (a
// number of minutes, hours or days that no duration can hold is refused,
// never saved as another one), and leaves a field left blank as it was.
func FuzzPolicyFromForm(f *testing.F) {
	f.Add("1", "60", "24", "12", "5", "90", "7", "14", "30", "365", "refuse_new", "on")
	f.Add("", "", "", "", "", "", "", "", "", "", "", "")
	f.Add("-1", "x", "1.5", " 8 ", "+3", "0", "", "", "", "", "end_oldest", "off")
	f.Add("9223372036854775807", "153722867280912931", "2562047788015216", "", "", "106751991167301", "", "", "", "", "", "")
	f.Fuzz(func(t *testing.T, limit, idle, life, minLen, hist, maxAge, grace, review, dormant, retention, onLimit, mfaOn string) {
		cur := guard.Policy{SessionLimit: 3, IdleTimeout: time.Hour, SessionLifetime: 48 * time.Hour, PasswordMinLength: 10,
			PasswordHistory: 2, PasswordMaxAge: time.Hour, MFAGrace: time.Minute, ReviewEvery: 2 * time.Hour,
			DormantAfter: 3 * time.Hour, AuditRetention: 4 * time.Hour, OnSessionLimit: guard.EndOldestSession}
		form := url.Values{"session_limit": {limit}, "idle_minutes": {idle}, "lifetime_hours": {life},
			"password_min_length": {minLen}, "password_history": {hist}, "password_max_age_days": {maxAge},
			"mfa_grace_days": {grace}, "review_every_days": {review}, "dormant_after_days": {dormant},
			"audit_retention_days": {retention}, "on_session_limit": {onLimit}, "require_mfa": {mfaOn}}
		p, msg := policyFromForm(form, cur)
		if msg != "" {
			if p != (guard.Policy{}) {
				t.Fatalf("policyFromForm refused (%s) with %+v", msg, p)
			}
			return
		}
		for _, c := range []struct {
			in        string
			unit      time.Duration
			got, keep int64
		}{
			{limit, 1, int64(p.SessionLimit), int64(cur.SessionLimit)},
			{idle, time.Minute, int64(p.IdleTimeout), int64(cur.IdleTimeout)},
			{life, time.Hour, int64(p.SessionLifetime), int64(cur.SessionLifetime)},
			{minLen, 1, int64(p.PasswordMinLength), int64(cur.PasswordMinLength)},
			{hist, 1, int64(p.PasswordHistory), int64(cur.PasswordHistory)},
			{maxAge, 24 * time.Hour, int64(p.PasswordMaxAge), int64(cur.PasswordMaxAge)},
			{grace, 24 * time.Hour, int64(p.MFAGrace), int64(cur.MFAGrace)},
			{review, 24 * time.Hour, int64(p.ReviewEvery), int64(cur.ReviewEvery)},
			{dormant, 24 * time.Hour, int64(p.DormantAfter), int64(cur.DormantAfter)},
			{retention, 24 * time.Hour, int64(p.AuditRetention), int64(cur.AuditRetention)},
		} {
			s := strings.TrimSpace(c.in)
			if s == "" {
				if c.got != c.keep {
					t.Fatalf("blank %q changed a field to %d", c.in, c.got)
				}
				continue
			}
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil || n < 0 || c.got%int64(c.unit) != 0 || c.got/int64(c.unit) != n {
				t.Fatalf("%q accepted as %d (unit %d)", c.in, c.got, c.unit)
			}
		}
		if onLimit != "" && p.OnSessionLimit != onLimit || onLimit == "" && p.OnSessionLimit != cur.OnSessionLimit ||
			p.RequireMFA != (mfaOn == "on") {
			t.Fatalf("policyFromForm = %+v", p)
		}
	})
}

// FuzzParseIdPSource: -idp-metadata as a URL (a file name is read at
// start, not fuzzed here). An accepted URL has a host; insecure, which
// lets Guard fetch metadata over plain http and from local addresses,
// holds only for a loopback host; an error does not echo a password in
// the URL's user information.
func FuzzParseIdPSource(f *testing.F) {
	for _, s := range []string{"https://idp.example/md", "http://localhost:8081/metadata", "http://127.0.0.1/", "http://[::1]:80/",
		"http://localhost.evil.example/", "http://127.0.0.1@evil.example/", "https://", "http://:80/", "https://LOCALHOST./",
		"http://0x7f.0.0.1/", "http://[::ffff:127.0.0.1]/", "https://u:secret@/", "http://%zz/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if !strings.HasPrefix(s, "http://") && !strings.HasPrefix(s, "https://") {
			s = "https://" + s
		}
		src, err := parseIdPSource(s)
		if err != nil {
			if src.url != nil || src.raw != "" {
				t.Fatalf("parseIdPSource(%q) failed (%v) with %+v", s, err, src)
			}
			return
		}
		if src.raw != s || src.url == nil || src.url.Host == "" || src.data != nil {
			t.Fatalf("parseIdPSource(%q) = %+v", s, src)
		}
		if src.insecure() {
			h := src.url.Hostname()
			ip := net.ParseIP(h)
			if !strings.EqualFold(h, "localhost") && (ip == nil || !ip.IsLoopback()) {
				t.Fatalf("parseIdPSource(%q): insecure for host %q", s, h)
			}
			// The address the fetch goes to is the one judged.
			if u, err := url.Parse(s); err != nil || u.Hostname() != h {
				t.Fatalf("parseIdPSource(%q): fetched host differs from %q", s, h)
			}
		}
	})
}
