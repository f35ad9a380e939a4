package sqlitestore

import (
	"database/sql/driver"
	"encoding/json"
	"errors"
	"maps"
	"math"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/rbac"
	"github.com/guardhq/guard/session"
	"github.com/guardhq/guard/sso"
)

// The decoders below read columns back from the database file, which
// anyone with access to it can change (another program, a manual edit, a
// restored backup). A value this package did not write is an error (an
// engine failure, prefixed "sqlitestore:", never a sentinel of the store
// interfaces, so the facade denies the request): never a panic, never a
// half-decoded value. What the package writes reads back as it was.

// wantStoreError fails t unless err is an engine failure: prefixed
// "sqlitestore:" and none of the sentinels a caller would take for an
// answer.
func wantStoreError(t *testing.T, what string, in any, err error) {
	t.Helper()
	if !strings.HasPrefix(err.Error(), "sqlitestore: ") {
		t.Fatalf("%s(%q): error %q is not prefixed sqlitestore:", what, in, err)
	}
	for _, s := range []error{session.ErrNotFound, auth.ErrNotFound, sso.ErrNotFound, guard.ErrTenantNotFound, audit.ErrConflict} {
		if errors.Is(err, s) {
			t.Fatalf("%s(%q) = %v, which is %v", what, in, err, s)
		}
	}
}

// validUTF8 reports whether every string of ss is valid UTF-8 (which JSON
// keeps as it is; the packages refuse anything else before the store).
func validUTF8(ss ...string) bool {
	return !slices.ContainsFunc(ss, func(s string) bool { return !utf8.ValidString(s) })
}

// FuzzDecodeHistory: the password history column (JSON). A value that is
// not a JSON list of strings is an error; a list reads back as written.
func FuzzDecodeHistory(f *testing.F) {
	for _, s := range []string{"", "[]", `["$argon2id$v=19$m=65536,t=3,p=4$c2FsdA$aGFzaA"]`, "null", `[1]`, `["a",null]`, `{"a":1}`,
		`["\ud800"]`, "[", `[] []`} {
		f.Add(s, "$2a$10$abc", "")
	}
	f.Fuzz(func(t *testing.T, s, a, b string) {
		h, err := decodeHistory(s)
		if err != nil {
			wantStoreError(t, "decodeHistory", s, err)
		} else if enc, err := encodeHistory(h); err != nil {
			t.Fatalf("decodeHistory(%q) = %q, which does not encode: %v", s, h, err)
		} else if again, err := decodeHistory(enc); err != nil || !slices.Equal(again, h) {
			t.Fatalf("decodeHistory(%q) = %q, read again as %q, %v", s, h, again, err)
		}
		if !validUTF8(a, b) {
			return
		}
		for _, list := range [][]string{nil, {a}, {a, b, a}} {
			enc, err := encodeHistory(list)
			if err != nil {
				t.Fatalf("encodeHistory(%q): %v", list, err)
			}
			if got, err := decodeHistory(enc); err != nil || !slices.Equal(got, list) {
				t.Fatalf("history %q stored as %q reads back as %q, %v", list, enc, got, err)
			}
		}
	})
}

// FuzzDecodeRules: the rules of a policy change (five strings a rule, in
// encodeStrings' form). A BLOB that encodeStrings did not write, or whose
// strings are not a whole number of rules, is errStrings; rules read back
// as written, byte for byte.
func FuzzDecodeRules(f *testing.F) {
	f.Add([]byte{}, "p", "admin", "", "users", "write")
	f.Add(encodeStrings([]string{"p", "r", "", "s", "a"}), "g", "", "u1", "", "")
	f.Add(encodeStrings([]string{"p", "r", "", "s"}), "\xff", "\x00", "", "", "")
	f.Add([]byte{0x80, 0x80}, "", "", "", "", "")
	f.Fuzz(func(t *testing.T, b []byte, typ, role, subject, section, action string) {
		rules, err := decodeRules(b)
		if err != nil {
			if !errors.Is(err, errStrings) {
				t.Fatalf("decodeRules(%x) = %v, not errStrings", b, err)
			}
			wantStoreError(t, "decodeRules", b, err)
		} else if again := encodeStrings(flatRules(rules)); !slices.Equal(again, b) {
			t.Fatalf("decodeRules(%x) = %q, which encodes to %x", b, rules, again)
		}
		r := rbac.Rule{Type: rbac.RuleType(typ), Role: role, Subject: subject, Section: rbac.Section(section), Action: rbac.Action(action)}
		for _, list := range [][]rbac.Rule{nil, {r}, {r, {}, r}} {
			got, err := decodeRules(encodeStrings(flatRules(list)))
			if err != nil || !slices.Equal(got, list) {
				t.Fatalf("rules %q read back as %q, %v", list, got, err)
			}
		}
	})
}

// FuzzLookupDecode: the columns of a session as the driver hands them to
// Lookup (each of a type chosen by the fuzzer: what a tampered row may
// hold). A session decodes only from text and integer columns where the
// schema has them, with flags a uint32 as Sessions writes them; then it
// holds exactly what the columns held.
func FuzzLookupDecode(f *testing.F) {
	f.Add("acme", "u1", int64(1700000000000000), int64(1700000000000001), int64(1800000000000000), int64(86400000000000),
		"192.0.2.1", "UA", int64(3), uint16(0))
	f.Add("acme", "u1", int64(1), int64(2), int64(3), int64(4), "", "", int64(3), uint16(0xc001))
	f.Add("", "", int64(0), int64(-1), int64(math.MaxInt64), int64(math.MinInt64), "", "", int64(math.MaxUint32), uint16(0))
	f.Add("a", "b", int64(1), int64(2), int64(3), int64(4), "c", "d", int64(math.MaxUint32+1), uint16(0))
	f.Add("a", "b", int64(1), int64(2), int64(3), int64(4), "c", "d", int64(-1), uint16(0))
	f.Add("a", "b", int64(1), int64(2), int64(3), int64(4), "c", "d", int64(5), uint16(0x1ff))
	f.Fuzz(func(t *testing.T, tenant, user string, created, seen, expires, idle int64, ip, ua string, flags int64, kinds uint16) {
		want := [9]driver.Value{tenant, user, created, seen, expires, idle, ip, ua, flags}
		var lc lookupConn
		typed := true
		for i, v := range want {
			switch kinds >> (i % 8 * 2) & 3 {
			case 3:
				lc.dest[i] = nil // a NULL (the schema's NOT NULL was dropped)
				typed = false
			case 1:
				// The other type: text where an integer is due, and back.
				if s, ok := v.(string); ok {
					lc.dest[i] = []byte(s)
				} else {
					lc.dest[i] = float64(v.(int64))
				}
				typed = false
			default:
				lc.dest[i] = v
			}
		}
		var s session.Session
		err := lc.decode(&s)
		if ok := typed && flags >= 0 && flags <= math.MaxUint32; ok != (err == nil) {
			t.Fatalf("decode(%v) = %+v, %v", lc.dest, s, err)
		}
		if err != nil {
			wantStoreError(t, "decode", lc.dest, err)
			return
		}
		if s.Tenant != tenant || s.UserID != user || s.IP != ip || s.UserAgent != ua || s.CreatedAt.UnixMicro() != created ||
			s.LastSeen.UnixMicro() != seen || s.ExpiresAt.UnixMicro() != expires || int64(s.IdleTimeout) != idle || int64(s.Flags) != flags {
			t.Fatalf("decode(%v) = %+v", lc.dest, s)
		}
	})
}

// FuzzDecodePolicy: a tenant's policy column (JSON). A value that is not
// a JSON policy is an error; a policy decoded reads back the same once
// stored again, and a policy that validates reads back as stored.
func FuzzDecodePolicy(f *testing.F) {
	for _, s := range []string{"{}", `{"session_limit":2,"require_mfa":true,"mfa_required_since":"2026-01-02T03:04:05.123456Z"}`,
		"null", "[]", `{"session_limit":"1"}`, `{"idle_timeout":1e30}`, `{"mfa_required_since":"x"}`, `{"break_glass_user":"\ud800"}`,
		`{"REQUIRE_SSO":true}`, `{} {}`, ""} {
		f.Add(s, 3, int64(time.Hour), "u1", true)
	}
	f.Fuzz(func(t *testing.T, s string, limit int, idle int64, breakGlass string, mfa bool) {
		p, err := decodePolicy(s)
		if err != nil {
			wantStoreError(t, "decodePolicy", s, err)
		} else if enc, err := encodePolicy(p); err != nil {
			// A time JSON cannot write (a year past 9999) is refused
			// when it is stored.
			if !strings.HasPrefix(err.Error(), "sqlitestore: ") {
				t.Fatalf("encodePolicy(%+v): %v", p, err)
			}
		} else if again, err := decodePolicy(enc); err != nil || !samePolicy(again, p) {
			t.Fatalf("decodePolicy(%q) = %+v, read again as %+v, %v", s, p, again, err)
		}
		want := guard.Policy{SessionLimit: limit, IdleTimeout: time.Duration(idle), BreakGlassUser: breakGlass, RequireMFA: mfa}
		if mfa {
			want.MFARequiredSince = time.UnixMicro(idle).UTC()
		}
		if want.Validate() != nil {
			return
		}
		enc, err := encodePolicy(want)
		if err != nil {
			t.Fatalf("encodePolicy(%+v): %v", want, err)
		}
		if got, err := decodePolicy(enc); err != nil || !samePolicy(got, want) {
			t.Fatalf("policy %+v stored as %s reads back as %+v, %v", want, enc, got, err)
		}
	})
}

// samePolicy reports whether p and q are the same policy (times compared
// as instants).
func samePolicy(p, q guard.Policy) bool {
	if !p.MFARequiredSince.Equal(q.MFARequiredSince) {
		return false
	}
	p.MFARequiredSince, q.MFARequiredSince = time.Time{}, time.Time{}
	return p == q
}

// FuzzDecodeSettings: an SSO connection's settings column (JSON). A value
// that is not a JSON connection is an error; what PutConnection writes
// (every string valid UTF-8, else an *sso.InputError) reads back as it
// was, without the four fields kept in columns of their own.
func FuzzDecodeSettings(f *testing.F) {
	for _, s := range []string{"{}", `{"GroupRoles":{"a":"admin"},"ClockSkew":5,"JIT":true}`, `{"Tenant":"other","Metadata":"x"}`, "null",
		`{"GroupRoles":[]}`, `{"ClockSkew":1.5}`, `{"AllowedDomains":[null]}`, "[", ""} {
		f.Add(s, "group", "admin", "example.com", int64(time.Minute), true)
	}
	f.Fuzz(func(t *testing.T, s, group, role, domain string, skew int64, jit bool) {
		c, err := decodeSettings(s)
		if err != nil {
			wantStoreError(t, "decodeSettings", s, err)
		} else if enc, err := encodeSettings(c); err != nil {
			t.Fatalf("decodeSettings(%q) = %+v, which does not encode: %v", s, c, err)
		} else {
			// Connection sets the four column fields afterwards.
			c.Tenant, c.MetadataURL, c.Metadata, c.MetadataFetchedAt = "", "", "", time.Time{}
			if again, err := decodeSettings(enc); err != nil || !reflect.DeepEqual(again, c) {
				t.Fatalf("decodeSettings(%q) = %+v, read again as %+v, %v", s, c, again, err)
			}
		}
		want := sso.Connection{Tenant: "acme", MetadataURL: "https://idp.example/md", Metadata: "<x/>", MetadataFetchedAt: time.Now(),
			GroupRoles: map[string]string{group: role}, DefaultRole: role, AllowedDomains: []string{domain, ""},
			ClockSkew: time.Duration(skew), JIT: jit, EmailAttribute: group}
		enc, err := encodeSettings(want)
		if !validUTF8(group, role, domain) {
			var ie *sso.InputError
			if !errors.As(err, &ie) {
				t.Fatalf("encodeSettings with a string that is not UTF-8 = %v, want an *sso.InputError", err)
			}
			return
		}
		if err != nil {
			t.Fatalf("encodeSettings(%+v): %v", want, err)
		}
		got, err := decodeSettings(enc)
		want.Tenant, want.MetadataURL, want.Metadata, want.MetadataFetchedAt = "", "", "", time.Time{}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Fatalf("connection %+v stored as %s reads back as %+v, %v", want, enc, got, err)
		}
	})
}

// FuzzDecodeMeta: an audit event's Meta column (JSON, NULL for none). A
// value that is not a JSON object of strings reads as its text under the
// empty key (which fails the event's MAC); Meta as audit accepts it (valid
// UTF-8) reads back as it was.
func FuzzDecodeMeta(f *testing.F) {
	for _, s := range []string{`{"a":"b"}`, "{}", "null", `{"a":1}`, `{"a":null}`, `["a"]`, `{"a":"b","a":"c"}`, "", "{"} {
		f.Add(s, "reason", "bad_password")
	}
	f.Fuzz(func(t *testing.T, s, k, v string) {
		m := decodeMeta(s)
		var obj map[string]string
		if json.Unmarshal([]byte(s), &obj) != nil {
			if !maps.Equal(m, map[string]string{"": s}) {
				t.Fatalf("decodeMeta(%q) = %q, want the text under the empty key", s, m)
			}
		} else if enc, err := encodeMeta(m); err != nil {
			t.Fatalf("decodeMeta(%q) = %q, which does not encode: %v", s, m, err)
		} else if enc != nil {
			if again := decodeMeta(enc.(string)); !maps.Equal(again, m) {
				t.Fatalf("decodeMeta(%q) = %q, read again as %q", s, m, again)
			}
		}
		if !validUTF8(k, v) {
			return
		}
		want := map[string]string{k: v, "": k}
		enc, err := encodeMeta(want)
		if err != nil {
			t.Fatalf("encodeMeta(%q): %v", want, err)
		}
		if got := decodeMeta(enc.(string)); !maps.Equal(got, want) {
			t.Fatalf("meta %q stored as %s reads back as %q", want, enc, got)
		}
		if b, _ := json.Marshal(want); string(b) != enc.(string) {
			t.Fatalf("encodeMeta(%q) = %s, not its JSON", want, enc)
		}
	})
}
