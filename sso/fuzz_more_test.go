package sso

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"github.com/guardhq/guard/auth"
)

func wantReject(t *testing.T, in string, rej *RejectError) {
	t.Helper()
	if rej.Reason == "" || !errors.Is(rej, ErrRejected) {
		t.Fatalf("%q: rejection %#v has no reason", in, rej)
	}
	if len(rej.Detail) > 200 || !utf8.ValidString(rej.Detail) || strings.ContainsFunc(rej.Detail, unicode.IsControl) {
		t.Fatalf("%q: rejection detail %q is not clean", in, rej.Detail)
	}
}

// FuzzPeekLogout: an IdP's LogoutResponse/LogoutRequest (base64, deflated
// for HTTP-Redirect) is decoded before any signature check. It must never
// panic; a refusal is a *RejectError with a reason and a clean detail; what
// is accepted passed the lexical rules and has a non-empty InResponseTo; the
// relay state is returned unchanged.
func FuzzPeekLogout(f *testing.F) {
	deflate := func(s string) string {
		var b bytes.Buffer
		w, _ := flate.NewWriter(&b, flate.BestSpeed)
		w.Write([]byte(s))
		w.Close()
		return base64.StdEncoding.EncodeToString(b.Bytes())
	}
	for _, s := range []string{
		`<samlp:LogoutResponse xmlns:samlp="urn:oasis:names:tc:SAML:2.0:protocol" ID="r1" InResponseTo="id-1" Version="2.0"/>`,
		`<LogoutResponse/>`, `<!DOCTYPE x><x InResponseTo="a"/>`, `<x InResponseTo="a"><!-- c --></x>`, ``, `<`,
		`<?xml version="1.0"?><x InResponseTo="&#x0;"/>`, strings.Repeat("<a>", 300) + strings.Repeat("</a>", 300),
	} {
		f.Add(base64.StdEncoding.EncodeToString([]byte(s)), false, "relay")
		f.Add(deflate(s), true, "")
	}
	f.Add("%%%", false, "")
	f.Add("AAAA", true, "")
	f.Fuzz(func(t *testing.T, msg string, deflated bool, relay string) {
		irt, rs, rej := peekLogout(msg, deflated, relay)
		if rej != nil {
			wantReject(t, msg, rej)
			if irt != "" || rs != "" {
				t.Fatal("values returned with a rejection")
			}
			return
		}
		if irt == "" || rs != relay {
			t.Fatalf("peekLogout accepted with InResponseTo %q, relay %q", irt, rs)
		}
		raw, rej := decodeMessage("SAMLResponse", msg, deflated)
		if rej != nil || lexical(raw) != nil || len(raw) > maxInflated {
			t.Fatal("accepted a message decodeMessage or lexical refuses")
		}
	})
}

// FuzzCanonicalEmailAttr: the email attribute of an assertion is
// canonicalised by the same rules as auth.CanonicalEmail, so the facade
// finds the user by the same key: both accept the same strings and give
// the same result.
func FuzzCanonicalEmailAttr(f *testing.F) {
	for _, s := range []string{"Ada@Example.com", " ada@example.com ", "ada", "Ada <ada@example.com>", "a@b",
		"ada@example.com\u200b", "\"a b\"@example.com", "ada@[127.0.0.1]", "ÄDA@example.com", "\xff@x.com",
		"ada@example.com\u2028", "(c)ada@example.com", "a@b.c\u0085"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got, ok := canonicalEmail(s)
		want, err := auth.CanonicalEmail(s)
		if ok != (err == nil) || got != want {
			t.Fatalf("%q: sso gives %q,%v; auth gives %q,%v", s, got, ok, want, err)
		}
	})
}

// FuzzCheckNameID: an accepted NameID is non-empty, at most 512 bytes of
// valid UTF-8, trimmed, with no control, format or separator characters.
func FuzzCheckNameID(f *testing.F) {
	for _, s := range []string{"", "ada@example.com", " x", "x\n", "a\u200bb", "a\u2028b", "\xff", strings.Repeat("a", 513),
		"urn:oid:1.2", "a\u00a0"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if r := checkNameID(s); r != "" {
			if !strings.HasPrefix(r, "NameID ") {
				t.Fatalf("checkNameID(%q) = %q", s, r)
			}
			return
		}
		if s == "" || len(s) > 512 || !utf8.ValidString(s) || strings.TrimSpace(s) != s {
			t.Fatalf("checkNameID accepted %q", s)
		}
		for _, r := range s {
			if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.In(r, unicode.Zl, unicode.Zp) {
				t.Fatalf("checkNameID accepted %q holding %U", s, r)
			}
		}
	})
}
