package sso

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/beevik/etree"
)

// The tests of this file show that GO-2026-6909, which govulncheck
// reports against github.com/crewjam/saml for every version ("introduced
// 0", no fixed version), does not reach the ACS. The advisory describes
// crewjam/saml through v0.5.1:
//
//  1. validateAssertion dereferences assertion.Issuer without a nil check:
//     a signed assertion without <saml:Issuer> panics after signature
//     verification;
//  2. Subject.NameID has the bare tag xml:"NameID", which encoding/xml
//     matches in any namespace: a signed assertion whose Subject holds a
//     NameID in a foreign namespace and no saml:NameID names whom the
//     foreign element says.
//
// In v0.6.3, which Guard uses, Assertion.Issuer is a value and the tags of
// Issuer and Subject.NameID carry the SAML assertion namespace. A tenant's
// administrator configures the tenant's IdP and its key, so "a signed
// assertion" is within an attacker's reach: the cases are signed by the
// configured IdP key and would pass every signature check.
// SECURITY-CHECKLIST SAML-37 (the assertion's Issuer is the IdP's entity
// ID) and the NameID rules (doc.go, "NameID and email").

// foreignNS is a namespace that is not SAML's.
const foreignNS = "urn:example:foreign"

// advisoryCase is an edit of the assertion and what the ACS must do with
// the signed result.
type advisoryCase struct {
	name string
	edit func(a *etree.Element)
	want Reason // "" accepted, as alice, issued by the configured IdP
}

// runAdvisory posts, for each case, the edited assertion signed by the
// configured IdP three ways (the assertion signed, only the Response
// signed, the signed assertion encrypted) to the ACS, and checks that it
// is refused with the case's reason, or accepted naming alice and the
// IdP, never panicking and never naming mallory.
func runAdvisory(t *testing.T, cases []advisoryCase) {
	k := loadKeys(t)
	for _, v := range []struct {
		name string
		s    spec
	}{
		{"signed assertion", spec{signAssertion: true}},
		{"signed response", spec{signResponse: true}},
		{"encrypted signed assertion", spec{signAssertion: true, encrypt: true}},
	} {
		for _, tc := range cases {
			t.Run(v.name+"/"+tc.name, func(t *testing.T) {
				s := v.s
				s.editAssertion = tc.edit
				e := newEnv(t, nil)
				e.track(requestID, relayState)
				doc := s.build(k)
				if tc.want == "" && !s.encrypt && !bytes.Contains(doc, []byte("mallory")) {
					t.Fatal("the edit is not in the document")
				}
				res, err := acsNoPanic(t, e, doc)
				if res != nil && strings.Contains(res.NameID+" "+res.Email+" "+res.Name+" "+res.IdPEntityID, "mallory") {
					t.Fatalf("accepted naming mallory: NameID %q, Email %q, Name %q, IdP %q", res.NameID, res.Email, res.Name, res.IdPEntityID)
				}
				if tc.want != "" {
					wantReason(t, err, tc.want)
					return
				}
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if res.NameID != "alice@corp.example" || res.Email != "alice@corp.example" || res.IdPEntityID != idpEntityID {
					t.Errorf("accepted as NameID %q, Email %q, IdP %q; want alice@corp.example from %q", res.NameID, res.Email, res.IdPEntityID, idpEntityID)
				}
			})
		}
	}
}

// acsNoPanic posts doc to the ACS and fails the test if that panics.
func acsNoPanic(t *testing.T, e *env, doc []byte) (*Result, error) {
	t.Helper()
	defer func() {
		if v := recover(); v != nil {
			t.Fatalf("ACS panicked: %v", v)
		}
	}()
	body := formPost("SAMLResponse", base64.StdEncoding.EncodeToString(doc), "RelayState", relayState)
	return e.p.ACS(t.Context(), tenant, acsRequest(body), "")
}

// foreign returns an element named local in the namespace ns ("": no
// namespace) holding text.
func foreign(ns, local, text string) *etree.Element {
	if ns == "" {
		el := etree.NewElement(local)
		el.SetText(text)
		return el
	}
	el := etree.NewElement("x:" + local)
	el.CreateAttr("xmlns:x", ns)
	el.SetText(text)
	return el
}

// replaceChild puts by in place of old, a child of parent.
func replaceChild(parent, old, by *etree.Element) {
	i := old.Index()
	parent.RemoveChild(old)
	parent.InsertChildAt(i, by)
}

// TestAdvisoryGO2026_6909Issuer: an assertion, signed by the configured
// IdP, whose saml:Issuer is removed, empty, or replaced by an Issuer in
// another namespace or in none (even one naming the IdP) is refused as
// issuer_mismatch, without a panic (GO-2026-6909 item 1; SAML-37: the
// assertion's Issuer must be the IdP's entity ID, and saml-core §2.3.3
// makes it required). An Issuer in another namespace beside the real one
// is ignored: the IdP in the Result is the configured one.
//
// The reason is issuer_mismatch, not missing_element: an absent Issuer is
// not the IdP's entity ID, and the audit event then names the element at
// fault. crewjam's validateAssertion refuses first (its Issuer is a
// value: absent reads as ""), and Guard's check compares it again.
func TestAdvisoryGO2026_6909Issuer(t *testing.T) {
	runAdvisory(t, []advisoryCase{
		{"issuer removed", func(a *etree.Element) { a.RemoveChild(child(a, "Issuer")) }, ReasonIssuer},
		{"issuer empty", func(a *etree.Element) { child(a, "Issuer").SetText("") }, ReasonIssuer},
		{"issuer empty element", func(a *etree.Element) {
			is := child(a, "Issuer")
			is.Child, is.Attr = nil, nil
		}, ReasonIssuer},
		{"foreign issuer in its place", func(a *etree.Element) {
			replaceChild(a, child(a, "Issuer"), foreign(foreignNS, "Issuer", idpEntityID))
		}, ReasonIssuer},
		{"no-namespace issuer in its place", func(a *etree.Element) {
			replaceChild(a, child(a, "Issuer"), foreign("", "Issuer", idpEntityID))
		}, ReasonIssuer},
		{"foreign issuer naming mallory's IdP before it", func(a *etree.Element) {
			a.InsertChildAt(child(a, "Issuer").Index(), foreign(foreignNS, "Issuer", "https://mallory.example/idp"))
		}, ""},
		{"foreign issuer naming mallory's IdP after it", func(a *etree.Element) {
			a.InsertChildAt(child(a, "Issuer").Index()+1, foreign(foreignNS, "Issuer", "https://mallory.example/idp"))
		}, ""},
	})
}

// TestAdvisoryGO2026_6909NameID: an assertion, signed by the configured
// IdP, whose saml:Subject has no saml:NameID but a NameID in another
// namespace, or in none, naming mallory is refused as missing_element,
// never accepted as mallory (GO-2026-6909 item 2; doc.go, "NameID and
// email": the NameID is the one the IdP sent). With the real saml:NameID
// (alice) beside it, before or after, the Result names alice.
func TestAdvisoryGO2026_6909NameID(t *testing.T) {
	subject := func(a *etree.Element) *etree.Element { return child(a, "Subject") }
	nameID := func(a *etree.Element) *etree.Element { return child(subject(a), "NameID") }
	runAdvisory(t, []advisoryCase{
		{"foreign NameID in its place", func(a *etree.Element) {
			replaceChild(subject(a), nameID(a), foreign(foreignNS, "NameID", "mallory@corp.example"))
		}, ReasonMissingElement},
		{"no-namespace NameID in its place", func(a *etree.Element) {
			replaceChild(subject(a), nameID(a), foreign("", "NameID", "mallory@corp.example"))
		}, ReasonMissingElement},
		{"foreign NameID before it", func(a *etree.Element) {
			subject(a).InsertChildAt(nameID(a).Index(), foreign(foreignNS, "NameID", "mallory@corp.example"))
		}, ""},
		{"foreign NameID after it", func(a *etree.Element) {
			subject(a).InsertChildAt(nameID(a).Index()+1, foreign(foreignNS, "NameID", "mallory@corp.example"))
		}, ""},
		{"no-namespace NameID before it", func(a *etree.Element) {
			subject(a).InsertChildAt(nameID(a).Index(), foreign("", "NameID", "mallory@corp.example"))
		}, ""},
	})
}
