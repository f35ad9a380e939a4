package sso

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/beevik/etree"
	"github.com/crewjam/saml/xmlenc"
)

// Limits of a response document, checked before crewjam/saml sees it:
// the elements and attributes are counted before the document is parsed
// (lexical), the parser stops at the depth, and the walk checks all three
// on the tree. A real response is about ten levels deep and has a few
// dozen elements (one more per group value).
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

// cbcAlgorithms are the XML Encryption block ciphers in CBC mode, which do
// not authenticate the ciphertext: refused unless Connection.AllowCBC.
var cbcAlgorithms = map[string]bool{
	xmlenc.AES128CBC.Algorithm(): true,
	xmlenc.AES192CBC.Algorithm(): true,
	xmlenc.AES256CBC.Algorithm(): true,
	xmlenc.TripleDES.Algorithm(): true,
}

// prescan applies the structural checks to the raw document, before any
// signature is verified. Each failure is a rejection with its own reason;
// the order is fixed so that a document with one fault always gets the
// same reason.
//
// An EncryptedAssertion is decrypted here, and its plaintext given the
// same checks (see decrypted), unless it is encrypted with CBC: that is
// refused unless the connection allows it (AllowCBC), and then decrypted
// and checked only after crewjam has verified the Response's signature
// (scan.pending), so that an attacker's CBC ciphertext is never decrypted
// (padding oracles).
func prescan(data []byte, comp *compiled) (*scan, *RejectError) {
	doc, rej := parseChecked(data)
	if rej != nil {
		return nil, rej
	}
	root := doc.Root()
	sc := &scan{walk: walker{ids: make(map[string]struct{}, 8)}}
	found, rej := sc.walk.elements(1, root)
	if rej != nil {
		return nil, rej
	}

	if root.Tag != "Response" || root.NamespaceURI() != nsProtocol {
		return nil, reject(ReasonNotResponse, "the root element is not a samlp:Response", nil)
	}
	if code := statusCode(root); code != statusOK {
		return nil, reject(ReasonIdPStatus, code, nil)
	}
	if len(found.assertions) != 1 || found.assertions[0].NamespaceURI() != nsAssertion {
		return nil, reject(ReasonAssertionCount, fmt.Sprintf("%d assertions", len(found.assertions)), nil)
	}
	assertion := found.assertions[0]
	if assertion.Parent() != root {
		return nil, reject(ReasonAssertionWrapped, "the assertion is not a child of the Response", nil)
	}
	if sc.walk.duplicate {
		return nil, reject(ReasonDuplicateID, "", nil)
	}
	encrypted := assertion.Tag == "EncryptedAssertion"
	signable := []*etree.Element{root}
	if !encrypted {
		signable = append(signable, assertion)
	}
	signed, rej := checkSignatures(found.signatures, comp.conn.AllowSHA1, signable...)
	if rej != nil {
		return nil, rej
	}
	sc.rootSigned = signed[0]
	if !encrypted && !signed[0] && !signed[1] {
		return nil, reject(ReasonUnsigned, "neither the Response nor the Assertion is signed", nil)
	}
	var cbc bool
	if encrypted {
		for _, m := range assertion.FindElements(".//EncryptionMethod") {
			switch alg := m.SelectAttrValue("Algorithm", ""); {
			case alg == "http://www.w3.org/2001/04/xmlenc#rsa-1_5":
				return nil, reject(ReasonWeakEncryption, "RSA PKCS#1 v1.5 key transport", nil)
			case cbcAlgorithms[alg] && !comp.conn.AllowCBC:
				return nil, reject(ReasonWeakEncryption, "CBC content encryption", nil)
			case cbcAlgorithms[alg]:
				cbc = true
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
	sc.responseIRT = root.SelectAttrValue("InResponseTo", "")
	switch {
	case !encrypted:
		rej = sc.assertion(assertion)
	case cbc:
		sc.pending = assertion
	default:
		rej = sc.decrypted(assertion, comp)
	}
	if rej != nil {
		return nil, rej
	}
	return sc, nil
}

// decrypted decrypts ea, the EncryptedAssertion, with the SP's key as
// crewjam will (decryptAssertion), and applies prescan's checks to the
// plaintext (SECURITY-CHECKLIST SAML-25/26, "Encrypted assertions"): the
// lexical scan, then the walk, continued from the Response (the same
// limits, counting the Response's elements, and IDs unique across
// Response and plaintext); exactly one element, a saml:Assertion, and no
// other assertion inside it; a Signature only directly under it, without
// SHA-1 or other transforms; a signature on the Response or on the
// decrypted assertion; an assertion ID. Its SubjectConfirmationData
// InResponseTo values are collected.
//
// A plaintext that is not well-formed is ReasonMalformed, not
// ReasonDecryption as in crewjam, which hides it to deny CBC padding
// oracles: here the ciphertext is authenticated (AES-GCM, or CBC under a
// Response signature already verified), so the reason tells an attacker
// nothing he did not write.
//
// The cost: the assertion is decrypted twice, here and in crewjam, which
// does not hand its plaintext out: one more RSA-OAEP private-key
// operation (2048 bits: one to three milliseconds) and AES-GCM pass per
// encrypted response: an ACS call on one took a fifth to a half longer on
// the test machine (BenchmarkPrescan, and BenchmarkACS's guard-encrypted
// case).
func (sc *scan) decrypted(ea *etree.Element, comp *compiled) *RejectError {
	plain, err := decryptAssertion(ea, &comp.sp)
	if err != nil {
		return reject(ReasonDecryption, "the EncryptedAssertion cannot be decrypted", err)
	}
	return sc.plaintext(plain, comp.conn.AllowSHA1)
}

// plaintext applies decrypted's checks to plain, the plaintext of the
// encrypted assertion.
func (sc *scan) plaintext(plain []byte, allowSHA1 bool) *RejectError {
	doc, rej := parseChecked(plain)
	if rej != nil {
		return rej
	}
	tops := doc.ChildElements()
	found, rej := sc.walk.elements(2, tops...)
	if rej != nil {
		return rej
	}
	a := tops[0]
	if len(tops) != 1 || a.Tag != "Assertion" || a.NamespaceURI() != nsAssertion || len(found.assertions) != 1 {
		return reject(ReasonAssertionCount, fmt.Sprintf("the plaintext holds %d elements and %d assertions", len(tops), len(found.assertions)), nil)
	}
	if sc.walk.duplicate {
		return reject(ReasonDuplicateID, "", nil)
	}
	signed, rej := checkSignatures(found.signatures, allowSHA1, a)
	if rej != nil {
		return rej
	}
	if !sc.rootSigned && !signed[0] {
		return reject(ReasonUnsigned, "neither the Response nor the decrypted Assertion is signed", nil)
	}
	return sc.assertion(a)
}

// assertion checks that a, the assertion of the response (as sent or
// decrypted), has an ID, and collects its SubjectConfirmationData
// InResponseTo values.
func (sc *scan) assertion(a *etree.Element) *RejectError {
	if a.SelectAttrValue("ID", "") == "" {
		return reject(ReasonAssertionIDMissing, "", nil)
	}
	for _, d := range a.FindElements(".//SubjectConfirmationData") {
		if v := d.SelectAttrValue("InResponseTo", ""); v != "" {
			sc.scdIRTs = append(sc.scdIRTs, v)
		}
	}
	return nil
}

// parseChecked applies lexical to data and parses it, no deeper than
// maxDepth.
func parseChecked(data []byte) (*etree.Document, *RejectError) {
	if rej := lexical(data); rej != nil {
		return nil, rej
	}
	doc := etree.NewDocument()
	doc.ReadSettings.MaxDepth = maxDepth
	switch err := doc.ReadFromBytes(data); {
	case errors.Is(err, etree.ErrMaxDepth):
		return nil, reject(ReasonTooComplex, fmt.Sprintf("over %d levels", maxDepth), err)
	case err != nil:
		return nil, reject(ReasonMalformed, "not well-formed XML", err)
	}
	if doc.Root() == nil {
		return nil, reject(ReasonMalformed, "no root element", nil)
	}
	return doc, nil
}

// walker is the state of the walk over a response and the plaintext of
// its encrypted assertion: the elements counted and the IDs seen.
type walker struct {
	n         int
	ids       map[string]struct{}
	duplicate bool
}

// found is what one walk collected, in document order of discovery.
type found struct {
	assertions []*etree.Element // Assertion and EncryptedAssertion elements
	signatures []*etree.Element
}

// elements walks the trees under tops, which stand at depth, and checks
// the limits and that every name is a qualified name; it records the IDs
// (setting duplicate on a repeat) and collects assertions and signatures.
func (w *walker) elements(depth int, tops ...*etree.Element) (found, *RejectError) {
	type frame struct {
		el    *etree.Element
		depth int
	}
	var f found
	stack := make([]frame, 0, len(tops)+16)
	for i := len(tops) - 1; i >= 0; i-- {
		stack = append(stack, frame{tops[i], depth})
	}
	for len(stack) > 0 {
		fr := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		w.n++
		if w.n > maxElements || fr.depth > maxDepth || len(fr.el.Attr) > maxAttrsPerElem {
			return f, reject(ReasonTooComplex, fmt.Sprintf("over %d elements, %d levels or %d attributes", maxElements, maxDepth, maxAttrsPerElem), nil)
		}
		// A colon left in a name after the prefix split is an empty
		// prefix or local part (":y", "p:"): not a qualified name, and
		// read differently by different parsers.
		if strings.Contains(fr.el.Tag, ":") {
			return f, reject(ReasonMalformed, "an element name that is not a qualified name", nil)
		}
		ids := 0
		for _, a := range fr.el.Attr {
			if strings.Contains(a.Key, ":") {
				return f, reject(ReasonMalformed, "an attribute name that is not a qualified name", nil)
			}
			// An ID in any namespace: etree's SelectAttr (which goxmldsig
			// resolves references with) matches "ID" whatever its prefix,
			// and encoding/xml (crewjam's structs) takes the last
			// attribute of that local name.
			if a.Key == "ID" || a.Key == "Id" || a.Key == "id" {
				ids++
				if _, dup := w.ids[a.Value]; dup {
					w.duplicate = true
				}
				w.ids[a.Value] = struct{}{}
			}
		}
		if ids > 1 {
			// ID and x:ID (or Id) on one element: which one is "the" ID
			// depends on the parser.
			return f, reject(ReasonMalformed, "more than one ID attribute on an element", nil)
		}
		switch fr.el.Tag {
		case "Assertion", "EncryptedAssertion":
			f.assertions = append(f.assertions, fr.el)
		case "Signature":
			f.signatures = append(f.signatures, fr.el)
		}
		for _, c := range fr.el.Child {
			if el, ok := c.(*etree.Element); ok {
				stack = append(stack, frame{el, fr.depth + 1})
			}
		}
	}
	return f, nil
}

// checkSignatures checks the Signature elements sigs: each in the XML-DSig
// namespace and directly under one of signable, at most one under each;
// no SHA-1 signature or digest method unless allowSHA1; no transform but
// those listed. It reports, for each of signable, whether it is signed.
func checkSignatures(sigs []*etree.Element, allowSHA1 bool, signable ...*etree.Element) ([]bool, *RejectError) {
	signed := make([]bool, len(signable))
	for _, s := range sigs {
		if s.NamespaceURI() != nsDSig {
			return nil, reject(ReasonSignature, "a Signature element outside the XML-DSig namespace", nil)
		}
		i := slices.Index(signable, s.Parent())
		if i < 0 || signed[i] {
			return nil, reject(ReasonSignature, "a Signature element in an unexpected place", nil)
		}
		signed[i] = true
	}
	if !allowSHA1 {
		for _, s := range sigs {
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
	for _, s := range sigs {
		for _, t := range s.FindElements(".//Transform") {
			if alg := t.SelectAttrValue("Algorithm", ""); !transforms[alg] {
				return nil, reject(ReasonTransform, alg, nil)
			}
		}
	}
	return signed, nil
}

// lexical refuses, before parsing, what no response needs: invalid UTF-8,
// a byte-order mark, any <!...> construct except CDATA sections (DOCTYPE,
// ENTITY: reason doctype; comments: reason xml_comment) and any
// processing instruction except the XML declaration at the very start.
// Comments are refused because exclusive C14N leaves them out of the
// signed content: an attacker may add them at will, and a reader that
// stops at one reads a truncated value (the NameID comment-injection
// attack).
//
// It also counts the start tags and the attributes of each (its "="
// outside quoted values), and refuses more than maxElements, or more
// than maxAttrsPerElem on one element (reason too_complex), before the
// parser builds a tree: a body of the largest size allowed
// (Config.MaxBodyBytes, 16 MiB) made of empty elements or attributes
// would otherwise cost the tree's memory, several hundred megabytes,
// before the walk refused it (SECURITY-CHECKLIST SAML-28). The walk
// checks the limits again on the tree.
func lexical(data []byte) *RejectError {
	if !utf8.Valid(data) || bytes.HasPrefix(data, []byte("\xef\xbb\xbf")) {
		return reject(ReasonMalformed, "not UTF-8", nil)
	}
	elements := 0
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
		case '/':
		default:
			if elements++; elements > maxElements {
				return reject(ReasonTooComplex, fmt.Sprintf("over %d elements", maxElements), nil)
			}
			n, attrs := startTag(rest[i+1:])
			if n < 0 {
				return reject(ReasonMalformed, "unterminated start tag", nil)
			}
			if attrs > maxAttrsPerElem {
				return reject(ReasonTooComplex, fmt.Sprintf("over %d attributes on an element", maxAttrsPerElem), nil)
			}
			rest = rest[i+1+n:]
			continue
		}
		rest = rest[i+1:]
	}
}

// startTag returns the length of the start tag at the beginning of b
// (after its "<"), up to and including its ">", and the number of "="
// outside quoted values in it: one per attribute in a well-formed tag. A
// "<", even quoted, is not part of a tag: the length then stops before it,
// so that lexical looks at what follows it. The length is -1 if the tag
// does not end.
func startTag(b []byte) (n, attrs int) {
	var quote byte
	for i, c := range b {
		switch {
		case c == '<':
			return i, attrs
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '"' || c == '\'':
			quote = c
		case c == '=':
			attrs++
		case c == '>':
			return i + 1, attrs
		}
	}
	return -1, attrs
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
