package redisstore

import (
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/guardhq/guard/mfa"
	"github.com/guardhq/guard/session"
)

// The decoders below read what a script returned from Redis: data this
// package wrote, or data someone else put under its prefix (another
// application, a manual change, an attacker with access to Redis). The
// package documents that data it did not write is reported as an error
// wrapping ErrCorrupt: never a panic, never a half-decoded value.

// okMicros reports whether s is what itoa writes for a time, as decoded.
func okMicros(s string, got time.Time) bool {
	n, err := strconv.ParseInt(s, 10, 64)
	return err == nil && got.Equal(fromMicros(n))
}

// FuzzDecodeSession: a session as get(m) in the scripts returns it, nine
// HMGET fields then the index member m (the hex hash), from a user index
// that may hold any member. A decoded session holds exactly the fields,
// its hash is the member decoded; anything else is ErrCorrupt.
func FuzzDecodeSession(f *testing.F) {
	hash := strings.Repeat("ab", 32)
	f.Add("acme", "u1", "1700000000000000", "1700000000000000", "1800000000000000", "86400000000000", "192.0.2.1", "UA", "0", hash, false)
	f.Add("acme", "u1", "1", "2", "3", "4", "", "", "4294967295", hash, true)
	f.Add("acme", "u1", "1", "2", "3", "4", "", "", "4294967296", hash, false)
	f.Add("acme", "u1", "x", "2", "3", "4", "", "", "0", hash[:62], false)
	f.Add("", "", "", "", "", "", "", "", "", "", false)
	f.Fuzz(func(t *testing.T, tenant, user, c, l, e, i, ip, ua, fl, member string, given bool) {
		v := []any{tenant, user, c, l, e, i, ip, ua, fl, member}
		var h *session.Hash
		if given {
			h = new(session.Hash)
			h[0] = 7
		}
		s, err := decodeSession(v, h)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("decodeSession: %v does not wrap ErrCorrupt", err)
			}
			return
		}
		if s.Tenant != tenant || s.UserID != user || s.IP != ip || s.UserAgent != ua ||
			!okMicros(c, s.CreatedAt) || !okMicros(l, s.LastSeen) || !okMicros(e, s.ExpiresAt) {
			t.Fatalf("decodeSession(%q) = %+v", v, s)
		}
		if n, err := strconv.ParseUint(fl, 10, 32); err != nil || uint32(n) != s.Flags {
			t.Fatalf("flags %q decoded as %d", fl, s.Flags)
		}
		if given {
			if s.Hash != *h {
				t.Fatalf("hash %x, want the one given", s.Hash)
			}
		} else if !strings.EqualFold(hex.EncodeToString(s.Hash[:]), member) {
			t.Fatalf("member %q decoded as hash %x", member, s.Hash)
		}
	})
}

// FuzzDecodeRows: a one-time code, an MFA transaction, a tracked SAML
// request, an SSO subject and a throttle record as HMGET returns them (a
// string per field, nil for a field that is absent). Each decodes only
// when every field is well formed; a hex hash fills its array exactly;
// the error is ErrCorrupt.
func FuzzDecodeRows(f *testing.F) {
	hash := strings.Repeat("0f", 32)
	f.Add("u1", "f1", "totp", hash, "1700000000000000", "1800000000000000", "5", uint8(0))
	f.Add("acme", "u1", hash, "login", "0", "1", "2", uint8(0x40))
	f.Add("login", "relay", "/next", "bind", "", "1800000000000000", "", uint8(0))
	f.Add("3", "1700000000000000", "", "0", "1", "", "", uint8(0x10))
	f.Add("u1", "f1", "sms", hash+"0", "1", "2", "x", uint8(0xff))
	f.Fuzz(func(t *testing.T, a, b, c, d, e, g, h string, nils uint8) {
		fields := [7]string{a, b, c, d, e, g, h}
		v := make([]any, 7)
		for i, s := range fields {
			if nils&(1<<i) != 0 {
				v[i] = nil
			} else {
				v[i] = s
			}
		}
		check := func(name string, n int, err error, hexField int, dst []byte) {
			t.Helper()
			if err != nil {
				if !errors.Is(err, ErrCorrupt) {
					t.Fatalf("%s: %v does not wrap ErrCorrupt", name, err)
				}
				return
			}
			for i := range n {
				if v[i] == nil && !(name == "subject" && i == 4) {
					t.Fatalf("%s decoded with field %d absent", name, i)
				}
			}
			if hexField >= 0 && !strings.EqualFold(hex.EncodeToString(dst), fields[hexField]) {
				t.Fatalf("%s: hash %q decoded as %x", name, fields[hexField], dst)
			}
		}
		code, err := decodeCode(v, "acme", "txn")
		check("code", 7, err, 3, code.Hash[:])
		if err == nil && (code.UserID != a || code.FactorID != b || string(code.Kind) != c || !okMicros(e, code.CreatedAt) || !okMicros(g, code.ExpiresAt)) {
			t.Fatalf("decodeCode(%q) = %+v", v, code)
		}
		txn, err := decodeTxn(v, mfa.Hash{})
		check("transaction", 7, err, 2, txn.Binding[:])
		if err == nil && (txn.Tenant != a || txn.UserID != b || txn.Purpose != d || !okMicros(g, txn.CreatedAt) || !okMicros(h, txn.ExpiresAt)) {
			t.Fatalf("decodeTxn(%q) = %+v", v, txn)
		}
		req, err := decodeRequest(v[:6], "acme", "id")
		check("request", 6, err, -1, nil)
		if err == nil && (req.Kind != a || req.RelayState != b || req.ReturnTo != c || req.Binding != d || !okMicros(g, req.Expires)) {
			t.Fatalf("decodeRequest(%q) = %+v", v[:6], req)
		}
		sub, _, err := decodeSubject("acme", "u1", v[:5])
		check("subject", 5, err, -1, nil)
		if err == nil && (sub.NameID != a || sub.NameIDFormat != b || sub.SessionIndex != c || !okMicros(d, sub.Expires)) {
			t.Fatalf("decodeSubject(%q) = %+v", v[:5], sub)
		}
		rec, err := decodeRecord(v[:5])
		check("record", 5, err, -1, nil)
		if err == nil && (rec.Failures != mustAtoi(a) || rec.Lockouts != mustAtoi(d) || !okTime(b, rec.Last) || !okTime(c, rec.LockedUntil) || rec.Permanent != (e == "1")) {
			t.Fatalf("decodeRecord(%q) = %+v", v[:5], rec)
		}
	})
}

// okTime reports whether got is what parseTime reads from s ("" is zero).
func okTime(s string, got time.Time) bool {
	if s == "" {
		return got.IsZero()
	}
	return okMicros(s, got)
}

func mustAtoi(s string) int {
	n, _ := strconv.Atoi(s)
	return n
}
