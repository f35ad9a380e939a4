package sso

import (
	"bytes"
	"fmt"
	"strings"
	"unicode/utf8"

	"github.com/beevik/etree"
)

// Limits of a response document, checked before crewjam/saml sees it. A
// real response is about ten levels deep and has a few dozen elements
// (one more per group value).
const (
	maxDepth        = 48
	maxElements     = 20_000
	maxAttrsPerElem = 64
)

const (
	nsProtocol  = "urn:oasis:names:tc:SAML:2.0:protocol"
	nsAssertion = "urn:oasis:names:tc:SAML:2.0:assertion"
	nsDSig      = "http://www.w3.org/2000/09/xmldsig#"
	statusOK    = "urn:oasis:names:tc:SAML:2.0:status:Success"
)

// sha1Algorithms are the SHA-1 based signature and digest methods.
var sha1Algorithms = map[string]bool{
	"http://www.w3.org/2000/09/xmldsig#rsa-sha1":        true,
	"http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1": true,
	"http://www.w3.org/2000/09/xmldsig#dsa-sha1":        true,
	"http://www.w3.org/2000/09/xmldsig#hmac-sha1":       true,
	"http://www.w3.org/2000/09/xmldsig#sha1":            true,
}

// transforms are the only Transform algorithms accepted: no XSLT, no
// XPath.
var transforms = map[string]bool{
	"http://www.w3.org/2000/09/xmldsig#enveloped-signature":        true,
	"http://www.w3.org/2001/10/xml-exc-c14n#":                      true,
	"http://www.w3.org/2001/10/xml-exc-c14n#WithComments":          true,
	"http://www.w3.org/TR/2001/REC-xml-c14n-20010315":              true,
	"http://www.w3.org/TR/2001/REC-xml-c14n-20010315#WithComments": true,
	"http://www.w3.org/2006/12/xml-c14n11":                         true,
	"http://www.w3.org/2006/12/xml-c14n11#WithComments":            true,
}

// prescan applies the structural checks to the raw document, before any
// signature is verified. Each failure is a rejection with its own reason;
// the order is fixed so that a document with one fault always gets the
// same reason.
func prescan(data []byte, comp *compiled) (*scan, *RejectError) {
	if rej := lexical(data); rej != nil {
		return nil, rej
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(data); err != nil {
		return nil, reject(ReasonMalformed, "not well-formed XML", err)
	}
	root := doc.Root()
	if root == nil {
		return nil, reject(ReasonMalformed, "no root element", nil)
	}

	// One walk: limits, IDs, assertions and signatures.
	type frame struct {
		el    *etree.Element
		depth int
	}
	var (
		stack      = []frame{{root, 1}}
		n          int
		ids        = make(map[string]struct{}, 8)
		duplicate  bool
		assertions []*etree.Element
		signatures []*etree.Element
	)
	for len(stack) > 0 {
		f := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		n++
		if n > maxElements || f.depth > maxDepth || len(f.el.Attr) > maxAttrsPerElem {
			return nil, reject(ReasonTooComplex, fmt.Sprintf("over %d elements, %d levels or %d attributes", maxElements, maxDepth, maxAttrsPerElem), nil)
		}
		// A colon left in a name after the prefix split is an empty
		// prefix or local part (":y", "p:"): not a qualified name, and
		// read differently by different parsers.
		if strings.Contains(f.el.Tag, ":") {
			return nil, reject(ReasonMalformed, "an element name that is not a qualified name", nil)
		}
		for _, a := range f.el.Attr {
			if strings.Contains(a.Key, ":") {
				return nil, reject(ReasonMalformed, "an attribute name that is not a qualified name", nil)
			}
			if (a.Space == "" && (a.Key == "ID" || a.Key == "Id" || a.Key == "id")) || (a.Space == "xml" && a.Key == "id") {
				if _, dup := ids[a.Value]; dup {
					duplicate = true
				}
				ids[a.Value] = struct{}{}
			}
		}
		switch f.el.Tag {
		case "Assertion", "EncryptedAssertion":
			assertions = append(assertions, f.el)
		case "Signature":
			signatures = append(signatures, f.el)
		}
		for _, c := range f.el.Child {
			if el, ok := c.(*etree.Element); ok {
				stack = append(stack, frame{el, f.depth + 1})
			}
		}
	}

	if root.Tag != "Response" || root.NamespaceURI() != nsProtocol {
		return nil, reject(ReasonNotResponse, "the root element is not a samlp:Response", nil)
	}
	if code := statusCode(root); code != statusOK {
		return nil, reject(ReasonIdPStatus, code, nil)
	}
	if len(assertions) != 1 || assertions[0].NamespaceURI() != nsAssertion {
		return nil, reject(ReasonAssertionCount, fmt.Sprintf("%d assertions", len(assertions)), nil)
	}
	assertion := assertions[0]
	if assertion.Parent() != root {
		return nil, reject(ReasonAssertionWrapped, "the assertion is not a child of the Response", nil)
	}
	if duplicate {
		return nil, reject(ReasonDuplicateID, "", nil)
	}
	encrypted := assertion.Tag == "EncryptedAssertion"
	var rootSigned, assertionSigned bool
	for _, s := range signatures {
		parent := s.Parent()
		switch {
		case s.NamespaceURI() != nsDSig:
			return nil, reject(ReasonSignature, "a Signature element outside the XML-DSig namespace", nil)
		case parent == root && !rootSigned:
			rootSigned = true
		case parent == assertion && !encrypted && !assertionSigned:
			assertionSigned = true
		default:
			return nil, reject(ReasonSignature, "a Signature element in an unexpected place", nil)
		}
	}
	if !rootSigned && !assertionSigned && !encrypted {
		return nil, reject(ReasonUnsigned, "neither the Response nor the Assertion is signed", nil)
	}
	if !comp.conn.AllowSHA1 {
		for _, s := range signatures {
			for _, m := range s.FindElements(".//SignatureMethod") {
				if sha1Algorithms[m.SelectAttrValue("Algorithm", "")] {
					return nil, reject(ReasonSHA1, "SHA-1 SignatureMethod", nil)
				}
			}
			for _, m := range s.FindElements(".//DigestMethod") {
				if sha1Algorithms[m.SelectAttrValue("Algorithm", "")] {
					return nil, reject(ReasonSHA1, "SHA-1 DigestMethod", nil)
				}
			}
		}
	}
	for _, s := range signatures {
		for _, t := range s.FindElements(".//Transform") {
			if alg := t.SelectAttrValue("Algorithm", ""); !transforms[alg] {
				return nil, reject(ReasonTransform, alg, nil)
			}
		}
	}
	if encrypted {
		for _, m := range assertion.FindElements(".//EncryptionMethod") {
			if m.SelectAttrValue("Algorithm", "") == "http://www.w3.org/2001/04/xmlenc#rsa-1_5" {
				return nil, reject(ReasonWeakEncryption, "RSA PKCS#1 v1.5 key transport", nil)
			}
		}
	}

	dest := root.SelectAttr("Destination")
	switch {
	case dest == nil || dest.Value == "":
		return nil, reject(ReasonDestinationMissing, "", nil)
	case dest.Value != comp.urls.ACSURL:
		return nil, reject(ReasonDestination, "Destination is not the ACS URL", nil)
	}
	for _, c := range root.ChildElements() {
		if c.Tag == "Issuer" && c.NamespaceURI() == nsAssertion && text(c) != comp.idp.EntityID {
			return nil, reject(ReasonIssuer, "Response Issuer is not the IdP entity ID", nil)
		}
	}
	sc := &scan{responseIRT: root.SelectAttrValue("InResponseTo", "")}
	if !encrypted {
		if assertion.SelectAttrValue("ID", "") == "" {
			return nil, reject(ReasonAssertionIDMissing, "", nil)
		}
		for _, d := range assertion.FindElements(".//SubjectConfirmationData") {
			if v := d.SelectAttrValue("InResponseTo", ""); v != "" {
				sc.scdIRTs = append(sc.scdIRTs, v)
			}
		}
	}
	return sc, nil
}

// lexical refuses, before parsing, what no response needs: invalid UTF-8,
// a byte-order mark, any <!...> construct except CDATA sections (DOCTYPE,
// ENTITY: reason doctype; comments: reason xml_comment) and any
// processing instruction except the XML declaration at the very start.
// Comments are refused because exclusive C14N leaves them out of the
// signed content: an attacker may add them at will, and a reader that
// stops at one reads a truncated value (the NameID comment-injection
// attack).
func lexical(data []byte) *RejectError {
	if !utf8.Valid(data) || bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) {
		return reject(ReasonMalformed, "not UTF-8", nil)
	}
	rest := data
	for {
		i := bytes.IndexByte(rest, '<')
		if i < 0 || i+1 >= len(rest) {
			return nil
		}
		switch rest[i+1] {
		case '!':
			tail := rest[i+2:]
			switch {
			case bytes.HasPrefix(tail, []byte("--")):
				return reject(ReasonComment, "an XML comment", nil)
			case bytes.HasPrefix(tail, []byte("[CDATA[")):
				end := bytes.Index(tail, []byte("]]>"))
				if end < 0 {
					return reject(ReasonMalformed, "unterminated CDATA section", nil)
				}
				rest = tail[end+3:]
				continue
			default:
				return reject(ReasonDoctype, "a DOCTYPE or other directive", nil)
			}
		case '?':
			start := len(data) - len(rest) + i
			if start != 0 || !bytes.HasPrefix(rest[i:], []byte("<?xml ")) {
				return reject(ReasonComment, "a processing instruction", nil)
			}
		}
		rest = rest[i+1:]
	}
}

// statusCode returns the top-level StatusCode Value of a Response, with
// the second-level one after a slash, or "missing".
func statusCode(root *etree.Element) string {
	for _, s := range root.ChildElements() {
		if s.Tag != "Status" || s.NamespaceURI() != nsProtocol {
			continue
		}
		for _, c := range s.ChildElements() {
			if c.Tag != "StatusCode" {
				continue
			}
			v := c.SelectAttrValue("Value", "")
			if v == statusOK {
				return v
			}
			for _, sub := range c.ChildElements() {
				if sub.Tag == "StatusCode" {
					v += "/" + strings.TrimPrefix(sub.SelectAttrValue("Value", ""), "urn:oasis:names:tc:SAML:2.0:status:")
				}
			}
			return strings.TrimPrefix(v, "urn:oasis:names:tc:SAML:2.0:status:")
		}
	}
	return "missing Status"
}

// text returns the concatenated character data of el's direct children.
func text(el *etree.Element) string {
	var b strings.Builder
	for _, c := range el.Child {
		if cd, ok := c.(*etree.CharData); ok {
			b.WriteString(cd.Data)
		}
	}
	return b.String()
}
