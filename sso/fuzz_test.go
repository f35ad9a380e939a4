package sso

import (
	"crypto/x509"
	"encoding/base64"
	"errors"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/beevik/etree"
)

func TestSafeRedirect(t *testing.T) {
	for _, tc := range []struct {
		target string
		want   bool
	}{
		{"/", true},
		{"/reports", true},
		{"/reports/7?tab=a&b=%2F#top", true},
		{"/a/b/../c", false},       // dot segments: see the next three
		{"/.//evil.test", false},   // a browser resolves it to the path //evil.test
		{"/%2e//evil.test", false}, // and "%2e" as "."
		{"/a/..//evil.test", false},
		{"/a.b/c..d/.e", true},
		{"/%2F%2Fevil.test", false}, // harmless in a browser, but some routers decode it
		{"/ü/straße", true},
		{"", false},
		{"reports", false},
		{"//evil.test", false},
		{"//evil.test/path", false},
		{"///evil.test", false},
		{"/\\evil.test", false},
		{"\\\\evil.test", false},
		{"/a\\b", false},
		{"https://evil.test/", false},
		{"http:/evil.test", false},
		{"javascript:alert(1)", false},
		{"/\t/evil.test", false},
		{"/\n/evil.test", false},
		{"/%0d%0aSet-Cookie:x=y", true}, // encoded: never a header
		{"/\r\nSet-Cookie: x=y", false},
		{"/ spaced", false},
		{"/\x00", false},
		{"/\x7f", false},
		{"/\u0085", false},
		{"/\u2028", false},
		{"/" + strings.Repeat("a", MaxReturnToBytes), false},
		{"/\xff", false},
		{"/@evil.test", true},
		{"/ok&next=https://evil.test", true},
	} {
		if got := SafeRedirect(tc.target); got != tc.want {
			t.Errorf("SafeRedirect(%q) = %v, want %v", tc.target, got, tc.want)
		}
	}
}

// FuzzSafeRedirect: whatever is accepted resolves, against this site, to
// this site.
func FuzzSafeRedirect(f *testing.F) {
	for _, s := range []string{"/", "/a?b#c", "//x", "/\\x", "https://x", "/\t/x", "/%2f/x", "/ü", "\\/x", "/./x", "/.//x", "/%2e//x"} {
		f.Add(s)
	}
	base, _ := url.Parse("https://app.example.test/base/")
	f.Fuzz(func(t *testing.T, s string) {
		if !SafeRedirect(s) {
			return
		}
		if !utf8.ValidString(s) || !strings.HasPrefix(s, "/") || strings.HasPrefix(s, "//") || strings.ContainsAny(s, "\\\t\r\n ") {
			t.Fatalf("SafeRedirect accepted %q", s)
		}
		u, err := base.Parse(s)
		if err != nil || u.Host != base.Host || u.Scheme != base.Scheme || u.User != nil || strings.HasPrefix(u.Path, "//") {
			t.Fatalf("SafeRedirect(%q) resolves to %v (%v)", s, u, err)
		}
	})
}

// FuzzParseResponse feeds the ACS decode path (base64, lexical checks,
// prescan, crewjam/saml) arbitrary documents, seeded with the golden
// ones. It must never panic, and every failure must be a rejection; with
// no request tracked and IdP-initiated login off, nothing is accepted.
// SECURITY-CHECKLIST RL-6 (the SAMLResponse decode path; the 10 minutes
// are the README's nightly GUARD_FUZZTIME=10m .ci/run).
func FuzzParseResponse(f *testing.F) {
	for _, tc := range goldenCases {
		if b, err := os.ReadFile(goldenPath(tc.name)); err == nil {
			f.Add(b)
		}
	}
	f.Add([]byte("<samlp:Response xmlns:samlp=\"urn:oasis:names:tc:SAML:2.0:protocol\"/>"))
	e := newEnv(f, nil)
	f.Fuzz(func(t *testing.T, doc []byte) {
		res, err := e.p.ParseResponse(t.Context(), tenant, base64.StdEncoding.EncodeToString(doc), "", "")
		if err == nil {
			t.Fatalf("accepted a response without a tracked request: %+v", res)
		}
		if !errors.Is(err, ErrRejected) {
			t.Fatalf("not a rejection: %v", err)
		}
	})
}

// FuzzLexical checks the byte-level scan against a slow reference: a
// document with "<!" outside a CDATA section, or "<?" after the start, is
// refused.
func FuzzLexical(f *testing.F) {
	for _, s := range []string{"<a/>", "<?xml version=\"1.0\"?><a/>", "<a><![CDATA[<!-- x ]]></a>", "<a><!-- c --></a>", "<!DOCTYPE a><a/>", "<a><?pi?></a>"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		rej := lexical(b)
		if rej != nil {
			return
		}
		// Outside CDATA there is no "<!" and no "<?" but a leading
		// declaration.
		s := string(b)
		for {
			i := strings.Index(s, "<![CDATA[")
			if i < 0 {
				break
			}
			j := strings.Index(s[i:], "]]>")
			if j < 0 {
				t.Fatalf("unterminated CDATA accepted: %q", b)
			}
			s = s[:i] + s[i+j+3:]
		}
		if strings.Contains(s, "<!") {
			t.Fatalf("accepted a directive or comment: %q", b)
		}
		if i := strings.Index(s, "<?"); i >= 0 && !(i == 0 && strings.HasPrefix(string(b), "<?xml ")) || strings.Count(s, "<?") > 1 {
			t.Fatalf("accepted a processing instruction: %q", b)
		}
	})
}

// FuzzDecryptedPlaintext feeds the checks of a decrypted assertion
// (scan.plaintext) arbitrary plaintexts, as if they came from an unsigned
// Response with ID id-response-0001. It must never panic; a plaintext the
// lexical scan refuses is refused for its reason; and what passes is one
// saml:Assertion with an ID and a signature of its own, with no other
// assertion inside, that etree reads as crewjam will.
func FuzzDecryptedPlaintext(f *testing.F) {
	k := loadKeys(f)
	plain := serialize(valid().assertion(k))
	for _, p := range [][]byte{
		plain,
		replaceOnce(plain, "<saml:NameID", "<!-- x --><saml:NameID"),
		replaceOnce(plain, "<saml:Subject>", "<saml:Subject><:y/>"),
		append(append([]byte(nil), plain...), plain...),
		[]byte(`<?xml version="1.0"?><saml:Assertion xmlns:saml="urn:oasis:names:tc:SAML:2.0:assertion" ID="x"/>`),
		[]byte("<!DOCTYPE a><a/>"),
		{},
	} {
		f.Add(p)
	}
	f.Fuzz(func(t *testing.T, plain []byte) {
		sc := &scan{walk: walker{n: 8, ids: map[string]struct{}{"id-response-0001": {}}}}
		rej := sc.plaintext(plain, false)
		if lex := lexical(plain); lex != nil {
			if rej == nil || rej.Reason != lex.Reason {
				t.Fatalf("lexical refuses %q for %s; plaintext: %v", plain, lex.Reason, rej)
			}
			return
		}
		if rej != nil {
			return
		}
		doc := etree.NewDocument()
		if err := doc.ReadFromBytes(plain); err != nil {
			t.Fatalf("accepted %q, which etree cannot read: %v", plain, err)
		}
		a := doc.Root()
		if len(doc.ChildElements()) != 1 || a.Tag != "Assertion" || a.NamespaceURI() != nsAssertion ||
			a.SelectAttrValue("ID", "") == "" || a.SelectAttrValue("ID", "") == "id-response-0001" ||
			a.SelectElement("Signature") == nil || len(a.FindElements(".//Assertion")) != 0 {
			t.Fatalf("accepted %q", plain)
		}
	})
}

// FuzzVerifyMetadataSignature: the signed-metadata path (SAML-48) never
// panics, and whatever it accepts really verified: the signed content it
// returns is exactly one that the key holder signed (one of the seeds'),
// however the rest of the input was changed, and that content parses as
// the IdP the key holder described. The keys are the fixed ones in
// testdata/keys, so every worker and every saved input agree.
func FuzzVerifyMetadataSignature(f *testing.F) {
	k := loadKeys(f)
	signer, other := asSigner(k.idp2), asSigner(k.attacker)
	trust := MetadataSignature{Certificates: []*x509.Certificate{signer.cert}}
	md := idpMetadata(time.Time{}, k.idp.cert)
	genuine := []string{
		signedMD(md, "_md1", signer),
		signedMD(md, "", signer),
		signedMD(entitiesMD("_agg", md), "_agg", signer),
	}
	signedContent := map[string]bool{}
	for _, doc := range genuine {
		out, err := verifyMetadata([]byte(doc), t0, trust)
		if err != nil {
			f.Fatalf("seed does not verify: %v", err)
		}
		signedContent[string(out)] = true
		f.Add([]byte(doc))
	}
	f.Add([]byte(md))
	f.Add([]byte(signedMD(md, "_md1", other)))
	f.Add([]byte(strings.Replace(genuine[0], idpSSOURL, "https://evil.example/sso", 1)))
	f.Add([]byte(entitiesMD("", genuine[0])))
	f.Add([]byte(signedMDWith(md, "_md1", signer, "http://www.w3.org/2000/09/xmldsig#rsa-sha1")))
	f.Fuzz(func(t *testing.T, b []byte) {
		out, err := verifyMetadata(b, t0, trust)
		idp, perr := ParseSignedMetadata(b, t0, trust)
		if err != nil && perr == nil {
			t.Fatalf("ParseSignedMetadata accepted what verifyMetadata refused: %v", err)
		}
		if err != nil {
			var in *InputError
			if !errors.As(err, &in) || in.Field != "Metadata" {
				t.Fatalf("refused with %v, want an *InputError for Metadata", err)
			}
			return
		}
		if !signedContent[string(out)] {
			t.Fatalf("accepted content the key holder never signed:\n%s", out)
		}
		if perr == nil && (idp.EntityID != idpEntityID || idp.SSORedirectURL != idpSSOURL || len(idp.Certificates) != 1 || !idp.Certificates[0].Equal(k.idp.cert)) {
			t.Fatalf("accepted another IdP: %+v", idp)
		}
	})
}
