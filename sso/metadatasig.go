package sso

import (
	"crypto/x509"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

// MetadataSignature is what the signature of an IdP metadata document is
// checked against (ParseSignedMetadata).
type MetadataSignature struct {
	// Certificates are the keys the document may be signed with; at least
	// one. Only they are used: a KeyInfo in the document is ignored.
	Certificates []*x509.Certificate
	// AllowSHA1 accepts RSA-SHA1 and ECDSA-SHA1 signatures and SHA-1
	// digests, which are refused by default.
	AllowSHA1 bool
	// RequireValidCertificates uses a certificate only while now is within
	// its validity period. Off by default: a certificate is taken as a
	// container for a key.
	RequireValidCertificates bool
}

// The algorithms a metadata signature may use (SAML-48). SHA-1 is in
// sha1Algorithms, accepted only with MetadataSignature.AllowSHA1.
const (
	algExcC14N    = "http://www.w3.org/2001/10/xml-exc-c14n#"
	algEnveloped  = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
	algRSASHA1    = "http://www.w3.org/2000/09/xmldsig#rsa-sha1"
	algECDSASHA1  = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha1"
	algDigestSHA1 = "http://www.w3.org/2000/09/xmldsig#sha1"
	nsExcC14N     = "http://www.w3.org/2001/10/xml-exc-c14n#"
)

var metadataSignatureMethods = map[string]bool{
	dsig.RSASHA256SignatureMethod:   true,
	dsig.RSASHA384SignatureMethod:   true,
	dsig.RSASHA512SignatureMethod:   true,
	dsig.ECDSASHA256SignatureMethod: true,
	dsig.ECDSASHA384SignatureMethod: true,
	dsig.ECDSASHA512SignatureMethod: true,
	algRSASHA1:                      true, // with AllowSHA1
	algECDSASHA1:                    true, // with AllowSHA1
}

var metadataDigestMethods = map[string]bool{
	"http://www.w3.org/2001/04/xmlenc#sha256":       true,
	"http://www.w3.org/2001/04/xmldsig-more#sha384": true,
	"http://www.w3.org/2001/04/xmlenc#sha512":       true,
	algDigestSHA1: true, // with AllowSHA1
}

// ParseSignedMetadata is ParseMetadata for metadata that must be signed
// (SAML-48): data must carry an enveloped XML signature, made with one of
// sig.Certificates, over its root element (the EntityDescriptor or
// EntitiesDescriptor), and the IdP is read from the signed content only.
//
// The signature is a ds:Signature child of the root, the only one there,
// with one Reference whose URI is "" or "#" and the root's ID, the
// enveloped-signature and exclusive C14N transforms and nothing else,
// exclusive C14N for SignedInfo, and RSA or ECDSA with SHA-256, SHA-384 or
// SHA-512 (SHA-1 only with sig.AllowSHA1). No other signature in the
// document may reference the root. Besides ParseMetadata's errors, it
// returns an *InputError (Field "Metadata") if the document is unsigned,
// is signed otherwise, or its signature does not verify with any of
// sig.Certificates (the content was changed, or another key signed it),
// and an *InputError (Field "MetadataSigningCertificates") if
// sig.Certificates is empty.
func ParseSignedMetadata(data []byte, now time.Time, sig MetadataSignature) (*IdP, error) {
	signed, err := verifyMetadata(data, now, sig)
	if err != nil {
		return nil, err
	}
	return ParseMetadata(signed, now)
}

// verifyMetadata checks the signature of the metadata document data and
// returns its signed root element, serialized again without the
// signature: what the signature covers, and all that may be parsed.
func verifyMetadata(data []byte, now time.Time, sig MetadataSignature) ([]byte, error) {
	if len(sig.Certificates) == 0 {
		return nil, &InputError{Field: "MetadataSigningCertificates", Reason: "is empty: no key to check the metadata signature with"}
	}
	doc, err := readMetadata(data)
	if err != nil {
		return nil, err
	}
	// etree reads elements after the root as more top-level elements;
	// only the root is signed, so a signed document has nothing else.
	if len(doc.ChildElements()) != 1 {
		return nil, metaErr("has more than one top-level element")
	}
	root := doc.Root()
	if root.Tag != "EntityDescriptor" && root.Tag != "EntitiesDescriptor" {
		return nil, metaErr("is not an EntityDescriptor or EntitiesDescriptor")
	}
	sigEl, err := rootSignature(root)
	if err != nil {
		return nil, err
	}
	id, err := rootID(root)
	if err != nil {
		return nil, err
	}
	if err := checkSignatureShape(sigEl, id, sig.AllowSHA1); err != nil {
		return nil, err
	}
	if err := noOtherRootReference(root, sigEl, id); err != nil {
		return nil, err
	}

	// Keys come only from the configuration: KeyInfo is dropped (it is
	// outside SignedInfo and removed with the whole enveloped signature,
	// so the signed content does not change), and each certificate is
	// tried as the only one in the store.
	el := root.Copy()
	for _, s := range el.ChildElements() {
		if s.Tag == "Signature" && s.NamespaceURI() == nsDSig {
			for _, ki := range s.ChildElements() {
				if ki.Tag == "KeyInfo" {
					s.RemoveChild(ki)
				}
			}
		}
	}
	usable := 0
	for _, cert := range sig.Certificates {
		at := cert.NotBefore // a container for a key: any time it is valid at
		if sig.RequireValidCertificates {
			if now.Before(cert.NotBefore) || now.After(cert.NotAfter) {
				continue
			}
			at = now
		}
		usable++
		vc := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: []*x509.Certificate{cert}})
		vc.IdAttribute = "ID"
		vc.Clock = dsig.NewFakeClockAt(at)
		verified, err := vc.Validate(el)
		if err != nil || verified == nil {
			continue
		}
		out := etree.NewDocument()
		out.SetRoot(verified)
		b, err := out.WriteToBytes()
		if err != nil {
			return nil, metaErr("cannot be serialized after its signature was checked")
		}
		return b, nil
	}
	if usable == 0 {
		return nil, metaErr("cannot be checked: every metadata signing certificate is outside its validity period")
	}
	return nil, metaErr("has a signature that does not verify with the metadata signing certificates")
}

// rootSignature returns the one ds:Signature child of root.
func rootSignature(root *etree.Element) (*etree.Element, error) {
	var sig *etree.Element
	for _, c := range root.ChildElements() {
		if c.Tag != "Signature" {
			continue
		}
		if c.NamespaceURI() != nsDSig {
			return nil, metaErr("has a Signature element outside the XML-DSig namespace")
		}
		if sig != nil {
			return nil, metaErr("has more than one Signature on its root element")
		}
		sig = c
	}
	if sig == nil {
		return nil, metaErr("is not signed, and the connection requires signed metadata")
	}
	return sig, nil
}

// rootID returns the ID attribute of root, "" if it has none, and refuses
// an ambiguous one (ID with a namespace prefix beside or instead of it).
func rootID(root *etree.Element) (string, error) {
	id, n := "", 0
	for _, a := range root.Attr {
		if a.Key == "ID" {
			n++
			if a.Space != "" {
				return "", metaErr("has an ID attribute with a namespace prefix")
			}
			id = a.Value
		}
	}
	if n > 1 {
		return "", metaErr("has more than one ID attribute")
	}
	return id, nil
}

// checkSignatureShape checks the metadata signature sig before any
// cryptography: one SignedInfo, one SignatureValue and at most one
// KeyInfo; SignedInfo with exclusive C14N, an accepted signature method
// and one Reference to the root (URI "" or "#"+id); only the
// enveloped-signature and exclusive C14N transforms; an accepted digest.
func checkSignatureShape(sig *etree.Element, id string, allowSHA1 bool) error {
	var signedInfo *etree.Element
	counts := map[string]int{}
	for _, c := range sig.ChildElements() {
		if c.NamespaceURI() != nsDSig {
			return metaErr("has a Signature with an element outside the XML-DSig namespace")
		}
		counts[c.Tag]++
		switch c.Tag {
		case "SignedInfo":
			signedInfo = c
		case "SignatureValue", "KeyInfo":
		default:
			return metaErr("has a Signature with an unexpected " + c.Tag + " element")
		}
	}
	if counts["SignedInfo"] != 1 || counts["SignatureValue"] != 1 || counts["KeyInfo"] > 1 {
		return metaErr("has a malformed Signature")
	}
	var ref *etree.Element
	counts = map[string]int{}
	for _, c := range signedInfo.ChildElements() {
		if c.NamespaceURI() != nsDSig {
			return metaErr("has a SignedInfo with an element outside the XML-DSig namespace")
		}
		counts[c.Tag]++
		alg := c.SelectAttrValue("Algorithm", "")
		switch c.Tag {
		case "CanonicalizationMethod":
			if alg != algExcC14N || len(c.ChildElements()) > 0 {
				return metaErr("has a signature whose SignedInfo is not canonicalized with exclusive C14N")
			}
		case "SignatureMethod":
			if err := checkAlgorithm(alg, metadataSignatureMethods, allowSHA1, "signature method"); err != nil {
				return err
			}
		case "Reference":
			ref = c
		default:
			return metaErr("has a SignedInfo with an unexpected " + c.Tag + " element")
		}
	}
	if counts["CanonicalizationMethod"] != 1 || counts["SignatureMethod"] != 1 {
		return metaErr("has a malformed SignedInfo")
	}
	if counts["Reference"] != 1 {
		return metaErr("has a signature that must have exactly one Reference")
	}
	var uri *etree.Attr
	for i := range ref.Attr {
		if ref.Attr[i].Key == "URI" {
			if uri != nil {
				return metaErr("has a Reference with more than one URI")
			}
			uri = &ref.Attr[i]
		}
	}
	if uri == nil || uri.Space != "" || (uri.Value != "" && (id == "" || uri.Value != "#"+id)) {
		return metaErr("has a signature that does not reference its root element")
	}
	counts = map[string]int{}
	enveloped := false
	for _, c := range ref.ChildElements() {
		if c.NamespaceURI() != nsDSig {
			return metaErr("has a Reference with an element outside the XML-DSig namespace")
		}
		counts[c.Tag]++
		switch c.Tag {
		case "Transforms":
			for _, t := range c.ChildElements() {
				if t.Tag != "Transform" || t.NamespaceURI() != nsDSig {
					return metaErr("has a malformed Transforms element")
				}
				switch t.SelectAttrValue("Algorithm", "") {
				case algEnveloped:
					if len(t.ChildElements()) > 0 {
						return metaErr("has a malformed Transform")
					}
					enveloped = true
				case algExcC14N:
					for _, p := range t.ChildElements() {
						if p.Tag != "InclusiveNamespaces" || p.NamespaceURI() != nsExcC14N {
							return metaErr("has a malformed Transform")
						}
					}
				default:
					return metaErr("has a signature transform other than enveloped-signature and exclusive C14N")
				}
			}
		case "DigestMethod":
			if err := checkAlgorithm(c.SelectAttrValue("Algorithm", ""), metadataDigestMethods, allowSHA1, "digest method"); err != nil {
				return err
			}
		case "DigestValue":
		default:
			return metaErr("has a Reference with an unexpected " + c.Tag + " element")
		}
	}
	if counts["Transforms"] != 1 || counts["DigestMethod"] != 1 || counts["DigestValue"] != 1 || !enveloped {
		return metaErr("has a signature that is not an enveloped signature")
	}
	return nil
}

// checkAlgorithm refuses an algorithm not in known, and a SHA-1 one
// unless allowSHA1.
func checkAlgorithm(alg string, known map[string]bool, allowSHA1 bool, what string) error {
	switch {
	case !known[alg]:
		return metaErr("has a signature with an unsupported " + what)
	case sha1Algorithms[alg] && !allowSHA1:
		return metaErr("has a signature with a SHA-1 " + what + ", and the connection does not allow SHA-1")
	}
	return nil
}

// noOtherRootReference refuses a Signature other than sig, anywhere in
// root, whose Reference could be taken for one to the root: goxmldsig
// validates the first signature it finds that references the root.
func noOtherRootReference(root, sig *etree.Element, id string) error {
	var bad bool
	walk(root, func(el *etree.Element) bool {
		if el == sig || el.Tag != "Signature" || el.NamespaceURI() != nsDSig {
			return true
		}
		for _, ref := range el.FindElements(".//Reference") {
			uri := ref.SelectAttrValue("URI", "")
			if uri == "" || uri[1:] == id {
				bad = true
			}
		}
		return !bad
	})
	if bad {
		return metaErr("has another signature that references its root element")
	}
	return nil
}
