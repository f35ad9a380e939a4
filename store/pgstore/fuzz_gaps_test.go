package pgstore

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/sso"
)

// FuzzWatchNotified: a NOTIFY payload on the watch channel, which any
// role allowed to NOTIFY on the server can send. A payload drops from the
// cache at least what it names (a kind and a tenant in hex, or a kind and
// "*"), and everything when it cannot be read: a version is never kept
// past a notification that may concern it. A payload as the trigger
// writes it (lowercase hex, "*" past 3000 bytes) names its tenant.
func FuzzWatchNotified(f *testing.F) {
	for _, p := range []string{"", "i", "r", "i*", "r*", "x*", "i6163", "I6163", "iACME", "i6", "r616", "i**", "i 61", "i0x61"} {
		f.Add(p, "acme")
	}
	f.Add("r"+hex.EncodeToString([]byte("globex")), "globex")
	f.Add("i", "")
	f.Fuzz(func(t *testing.T, payload, tenant string) {
		w := newVersionWatch("guard")
		w.setListening(true, time.Now())
		keys := []watchKey{{kindIPLists, tenant}, {kindPolicies, tenant}, {kindIPLists, tenant + "x"}, {kindPolicies, ""}}
		fill := func() uint64 {
			for _, k := range keys {
				_, _, gen, _ := w.lookup(k.kind, k.tenant)
				w.keep(k.kind, k.tenant, 7, gen)
			}
			_, _, gen, _ := w.lookup(0, "")
			return gen
		}
		gen := fill()
		w.notified(payload)
		kind, rest := byte(0), ""
		if payload != "" {
			kind, rest = payload[0], payload[1:]
		}
		known := kind == kindIPLists || kind == kindPolicies
		named, err := hex.DecodeString(rest)
		for _, k := range keys {
			_, kept, _, _ := w.lookup(k.kind, k.tenant)
			var mayConcern bool
			switch {
			case !known:
				mayConcern = true
			case rest == "*":
				mayConcern = k.kind == kind
			case err != nil:
				mayConcern = true // unreadable: everything goes
			default:
				mayConcern = k.kind == kind && string(named) == k.tenant
			}
			if kept && mayConcern {
				t.Fatalf("after %q, %c %q is still cached", payload, k.kind, k.tenant)
			}
		}
		// A read that started before the notification is not kept.
		w.keep(kindPolicies, "late", 9, gen)
		if _, ok, _, _ := w.lookup(kindPolicies, "late"); ok {
			t.Fatalf("after %q, a read from before it was kept", payload)
		}
		// The trigger's payload for tenant drops it.
		for _, k := range []byte{kindIPLists, kindPolicies} {
			fill()
			p := string(k) + hex.EncodeToString([]byte(tenant))
			if len(tenant) > 3000 {
				p = string(k) + "*"
			}
			w.notified(p)
			if _, kept, _, _ := w.lookup(k, tenant); kept {
				t.Fatalf("the trigger's payload %q left %c %q cached", p, k, tenant)
			}
		}
	})
}

// FuzzDecodeJSONColumns: the policy, SSO settings and audit meta columns,
// read back from the database, where anyone with access to it can change
// them. A value that does not decode is an error that says which column,
// never a sentinel of the store interfaces (callers wrap it with
// "pgstore:"); a value decoded reads back the same once encoded again; and
// what the package writes (each string valid UTF-8 without NUL, as
// connSettings and the packages require) reads back as written.
func FuzzDecodeJSONColumns(f *testing.F) {
	for _, s := range []string{"{}", "null", "[]", `{"a":"b"}`, `{"session_limit":2,"mfa_required_since":"2026-01-02T03:04:05Z"}`,
		`{"GroupRoles":{"a":"admin"},"ClockSkew":5}`, `{"ClockSkew":1.5}`, `{"a":1}`, `{"idle_timeout":"1h"}`, `{"AllowedDomains":"x"}`, "", "{"} {
		f.Add(s, "admins", "admin")
	}
	f.Fuzz(func(t *testing.T, s, k, v string) {
		failed := func(what string, err error) bool {
			t.Helper()
			if err == nil {
				return false
			}
			if !strings.HasPrefix(err.Error(), "decoding the ") || errors.Is(err, sso.ErrNotFound) || errors.Is(err, guard.ErrTenantNotFound) {
				t.Fatalf("%s(%q) = %v", what, s, err)
			}
			return true
		}
		if p, err := decodePolicy([]byte(s)); !failed("decodePolicy", err) {
			if b, err := json.Marshal(p); err == nil {
				if again, err := decodePolicy(b); err != nil || !again.MFARequiredSince.Equal(p.MFARequiredSince) || again.SessionLimit != p.SessionLimit {
					t.Fatalf("decodePolicy(%q) = %+v, read again as %+v, %v", s, p, again, err)
				}
			}
		}
		if c, err := decodeSettings([]byte(s)); !failed("decodeSettings", err) {
			// Decoded JSON strings are valid UTF-8, but may hold NUL,
			// which connSettings refuses.
			if b, err := connSettings(c); err == nil {
				c.Tenant, c.MetadataURL, c.Metadata, c.MetadataFetchedAt = "", "", "", time.Time{}
				if again, err := decodeSettings(b); err != nil || !reflect.DeepEqual(again, c) {
					t.Fatalf("decodeSettings(%q) = %+v, read again as %+v, %v", s, c, again, err)
				}
			}
		}
		// A value that is not a JSON object of strings reads as its text
		// under the empty key (which fails the event's MAC).
		var obj map[string]string
		if m := decodeMeta(s); json.Unmarshal([]byte(s), &obj) != nil {
			if !maps.Equal(m, map[string]string{"": s}) {
				t.Fatalf("decodeMeta(%q) = %q, want the text under the empty key", s, m)
			}
		} else {
			b, _ := json.Marshal(m)
			if again := decodeMeta(string(b)); !maps.Equal(again, m) {
				t.Fatalf("decodeMeta(%q) = %q, read again as %q", s, m, again)
			}
		}
		if textProblem(k) != "" || textProblem(v) != "" {
			return
		}
		c := sso.Connection{Tenant: "acme", Metadata: "<x/>", GroupRoles: map[string]string{k: v}, DefaultRole: v,
			AllowedDomains: []string{k}, ClockSkew: time.Duration(len(s)), EmailAttribute: k}
		b, err := connSettings(c)
		if err != nil {
			t.Fatalf("connSettings(%+v): %v", c, err)
		}
		c.Tenant, c.Metadata = "", ""
		if got, err := decodeSettings(b); err != nil || !reflect.DeepEqual(got, c) {
			t.Fatalf("connection %+v stored as %s reads back as %+v, %v", c, b, got, err)
		}
		meta := map[string]string{k: v, "reason": k}
		b, _ = json.Marshal(meta)
		if got := decodeMeta(string(b)); !maps.Equal(got, meta) {
			t.Fatalf("meta %q stored as %s reads back as %q", meta, b, got)
		}
	})
}
