package sso

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"net/url"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
)

// MaxMetadataBytes bounds an IdP metadata document, configured or fetched.
const MaxMetadataBytes = 2 << 20

const (
	nsMetadata = "urn:oasis:names:tc:SAML:2.0:metadata"
	protoSAML2 = "urn:oasis:names:tc:SAML:2.0:protocol"
)

// IdP is what Guard takes from an IdP's metadata: its entity ID, where to
// send users to sign in and out, and the certificates its signatures are
// checked with. Nothing else in the metadata is used.
type IdP struct {
	EntityID string
	// SSORedirectURL and SSOPostURL are the SingleSignOnService locations
	// for the HTTP-Redirect and HTTP-POST bindings; at least one is set.
	SSORedirectURL string
	SSOPostURL     string
	// SLORedirectURL is the SingleLogoutService location for the
	// HTTP-Redirect binding, or "".
	SLORedirectURL string
	// WantAuthnRequestsSigned is the IDPSSODescriptor attribute: the IdP
	// wants signed AuthnRequests (StartLogin then signs them).
	WantAuthnRequestsSigned bool
	// Certificates are the signing certificates (KeyDescriptor use
	// "signing" or no use), in document order, without duplicates.
	Certificates []*x509.Certificate
	// ValidUntil is the earliest validUntil of the document, the
	// EntityDescriptor and its IDPSSODescriptor; zero if none is given.
	ValidUntil time.Time
}

// ParseMetadata reads the metadata of an identity provider: an
// EntityDescriptor with an IDPSSODescriptor for SAML 2.0, or an
// EntitiesDescriptor holding exactly one such EntityDescriptor. It returns
// an *InputError (Field "Metadata") if the document is over
// MaxMetadataBytes, is not well-formed, has a DOCTYPE or other directive,
// names no entity ID, has no SingleSignOnService with the HTTP-Redirect or
// HTTP-POST binding at an absolute http or https URL, has an endpoint at a
// URL of any other scheme, has no usable signing certificate (RSA of at
// least 2048 bits, or ECDSA), or has a validUntil at or before now.
//
// The metadata's own signature, if any, is not checked: its trust comes
// from how it was obtained (uploaded by an administrator, or fetched over
// HTTPS from a URL the administrator gave). This is what the Provider does
// for a Connection without MetadataSigningCertificates, as it always has;
// for one with them it uses ParseSignedMetadata, which requires a valid
// signature by one of them and reads only the signed content.
func ParseMetadata(data []byte, now time.Time) (*IdP, error) {
	ed, validUntil, err := parseEntity(data)
	if err != nil {
		return nil, err
	}
	idp := &IdP{EntityID: strings.TrimSpace(ed.EntityID), ValidUntil: validUntil}
	if idp.EntityID == "" || len(idp.EntityID) > 1024 {
		return nil, metaErr("has no usable entityID")
	}
	var desc *saml.IDPSSODescriptor
	for i := range ed.IDPSSODescriptors {
		d := &ed.IDPSSODescriptors[i]
		if strings.Contains(" "+d.ProtocolSupportEnumeration+" ", " "+protoSAML2+" ") {
			desc = d
			break
		}
	}
	if desc == nil {
		return nil, metaErr("has no IDPSSODescriptor for SAML 2.0")
	}
	idp.WantAuthnRequestsSigned = desc.WantAuthnRequestsSigned != nil && *desc.WantAuthnRequestsSigned
	if desc.ValidUntil != nil && !desc.ValidUntil.IsZero() {
		idp.ValidUntil = earliest(idp.ValidUntil, *desc.ValidUntil)
	}
	if !idp.ValidUntil.IsZero() && !now.Before(idp.ValidUntil) {
		return nil, metaErr("has expired (validUntil has passed)")
	}
	// Only the endpoints of the bindings Guard uses are read (and must be
	// http or https URLs); crewjam/saml already refuses a location whose
	// scheme does not suit its binding.
	for _, e := range desc.SingleSignOnServices {
		b := strings.TrimSpace(e.Binding)
		if b != saml.HTTPRedirectBinding && b != saml.HTTPPostBinding {
			continue
		}
		loc, err := endpoint(e.Location)
		if err != nil {
			return nil, err
		}
		switch b {
		case saml.HTTPRedirectBinding:
			if idp.SSORedirectURL == "" {
				idp.SSORedirectURL = loc
			}
		case saml.HTTPPostBinding:
			if idp.SSOPostURL == "" {
				idp.SSOPostURL = loc
			}
		}
	}
	if idp.SSORedirectURL == "" && idp.SSOPostURL == "" {
		return nil, metaErr("has no SingleSignOnService with the HTTP-Redirect or HTTP-POST binding")
	}
	for _, e := range desc.SingleLogoutServices {
		if strings.TrimSpace(e.Binding) != saml.HTTPRedirectBinding {
			continue
		}
		loc, err := endpoint(e.Location)
		if err != nil {
			return nil, err
		}
		if idp.SLORedirectURL == "" {
			idp.SLORedirectURL = loc
		}
	}
	for _, kd := range desc.KeyDescriptors {
		if kd.Use != "" && kd.Use != "signing" {
			continue
		}
		for _, c := range kd.KeyInfo.X509Data.X509Certificates {
			cert, err := parseCertData(c.Data)
			if err != nil {
				return nil, err
			}
			idp.Certificates = appendCert(idp.Certificates, cert)
		}
	}
	if len(idp.Certificates) == 0 {
		return nil, metaErr("has no signing certificate")
	}
	return idp, nil
}

func metaErr(reason string) error { return &InputError{Field: "Metadata", Reason: reason} }

// readMetadata reads a metadata document: at most MaxMetadataBytes of
// well-formed XML without any directive, whose root is in the SAML
// metadata namespace.
func readMetadata(data []byte) (*etree.Document, error) {
	if len(data) > MaxMetadataBytes {
		return nil, metaErr("is too large")
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(data); err != nil {
		return nil, metaErr("is not well-formed XML")
	}
	for _, tok := range doc.Child {
		if _, ok := tok.(*etree.Directive); ok {
			return nil, metaErr("has a DOCTYPE or other directive")
		}
	}
	root := doc.Root()
	if root == nil {
		return nil, metaErr("has no root element")
	}
	var directive bool
	walk(root, func(el *etree.Element) bool {
		for _, t := range el.Child {
			if _, ok := t.(*etree.Directive); ok {
				directive = true
			}
		}
		return !directive
	})
	if directive {
		return nil, metaErr("has a DOCTYPE or other directive")
	}
	if root.NamespaceURI() != nsMetadata {
		return nil, metaErr("is not SAML metadata")
	}
	return doc, nil
}

// parseEntity decodes data into the one IdP EntityDescriptor it holds and
// the earliest validUntil of its enclosing EntitiesDescriptors.
func parseEntity(data []byte) (*saml.EntityDescriptor, time.Time, error) {
	doc, err := readMetadata(data)
	if err != nil {
		return nil, time.Time{}, err
	}
	root := doc.Root()
	switch root.Tag {
	case "EntityDescriptor":
		var ed saml.EntityDescriptor
		if err := xml.Unmarshal(data, &ed); err != nil {
			return nil, time.Time{}, metaErr("cannot be decoded")
		}
		return &ed, ed.ValidUntil, nil
	case "EntitiesDescriptor":
		var es saml.EntitiesDescriptor
		if err := xml.Unmarshal(data, &es); err != nil {
			return nil, time.Time{}, metaErr("cannot be decoded")
		}
		var found []*saml.EntityDescriptor
		var until time.Time
		var visit func(es *saml.EntitiesDescriptor, until time.Time, depth int)
		visit = func(es *saml.EntitiesDescriptor, parent time.Time, depth int) {
			if es.ValidUntil != nil && !es.ValidUntil.IsZero() {
				parent = earliest(parent, *es.ValidUntil)
			}
			for i := range es.EntityDescriptors {
				if len(es.EntityDescriptors[i].IDPSSODescriptors) > 0 {
					found = append(found, &es.EntityDescriptors[i])
					until = earliest(parent, es.EntityDescriptors[i].ValidUntil)
				}
			}
			if depth < 8 {
				for i := range es.EntitiesDescriptors {
					visit(&es.EntitiesDescriptors[i], parent, depth+1)
				}
			}
		}
		visit(&es, time.Time{}, 0)
		if len(found) != 1 {
			return nil, time.Time{}, metaErr("must describe exactly one identity provider")
		}
		return found[0], until, nil
	}
	return nil, time.Time{}, metaErr("is not an EntityDescriptor or EntitiesDescriptor")
}

// earliest returns the earlier of a and b, where the zero time means
// "no limit".
func earliest(a, b time.Time) time.Time {
	switch {
	case a.IsZero():
		return b
	case b.IsZero():
		return a
	case b.Before(a):
		return b
	}
	return a
}

// endpoint checks the Location of an IdP endpoint: an absolute http or
// https URL with a host, and nothing a browser would treat otherwise
// (CVE-2023-45683: a javascript: location).
func endpoint(loc string) (string, error) {
	loc = strings.Trim(loc, " \t\r\n")
	u, err := url.Parse(loc)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil || u.Fragment != "" {
		return "", metaErr("has an endpoint that is not an absolute http or https URL")
	}
	for i := 0; i < len(loc); i++ {
		if loc[i] < 0x21 || loc[i] == 0x7f {
			return "", metaErr("has an endpoint that is not an absolute http or https URL")
		}
	}
	return loc, nil
}

// parseCertData parses the base64 DER of an X509Certificate element.
func parseCertData(s string) (*x509.Certificate, error) {
	s = strings.Map(func(r rune) rune {
		if r == ' ' || r == '\t' || r == '\r' || r == '\n' {
			return -1
		}
		return r
	}, s)
	der, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, metaErr("has a certificate that is not base64")
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, metaErr("has a certificate that cannot be parsed")
	}
	if err := checkKey(cert); err != nil {
		return nil, metaErr(err.Error())
	}
	return cert, nil
}

// checkKey accepts RSA keys of at least 2048 bits and ECDSA keys.
func checkKey(cert *x509.Certificate) error {
	switch k := cert.PublicKey.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return errors.New("has an RSA certificate shorter than 2048 bits")
		}
	case *ecdsa.PublicKey:
	default:
		return errors.New("has a certificate whose key is neither RSA nor ECDSA")
	}
	return nil
}

func appendCert(certs []*x509.Certificate, c *x509.Certificate) []*x509.Certificate {
	for _, have := range certs {
		if bytes.Equal(have.Raw, c.Raw) {
			return certs
		}
	}
	return append(certs, c)
}

// walk calls f for el and its descendants, depth first, while f returns
// true.
func walk(el *etree.Element, f func(*etree.Element) bool) bool {
	if !f(el) {
		return false
	}
	for _, c := range el.ChildElements() {
		if !walk(c, f) {
			return false
		}
	}
	return true
}

// descriptor builds the EntityDescriptor given to crewjam/saml: the IdP's
// entity ID, endpoints and signing certificates, plus extra, and nothing
// else from the metadata.
func (idp *IdP) descriptor(extra []*x509.Certificate) *saml.EntityDescriptor {
	var kds []saml.KeyDescriptor
	for _, c := range append(append([]*x509.Certificate(nil), idp.Certificates...), extra...) {
		kds = append(kds, saml.KeyDescriptor{
			Use: "signing",
			KeyInfo: saml.KeyInfo{X509Data: saml.X509Data{X509Certificates: []saml.X509Certificate{
				{Data: base64.StdEncoding.EncodeToString(c.Raw)},
			}}},
		})
	}
	d := saml.IDPSSODescriptor{}
	d.ProtocolSupportEnumeration = protoSAML2
	d.KeyDescriptors = kds
	if idp.SSORedirectURL != "" {
		d.SingleSignOnServices = append(d.SingleSignOnServices, saml.Endpoint{Binding: saml.HTTPRedirectBinding, Location: idp.SSORedirectURL})
	}
	if idp.SSOPostURL != "" {
		d.SingleSignOnServices = append(d.SingleSignOnServices, saml.Endpoint{Binding: saml.HTTPPostBinding, Location: idp.SSOPostURL})
	}
	if idp.SLORedirectURL != "" {
		d.SingleLogoutServices = []saml.Endpoint{{Binding: saml.HTTPRedirectBinding, Location: idp.SLORedirectURL}}
	}
	return &saml.EntityDescriptor{
		EntityID:          idp.EntityID,
		ValidUntil:        idp.ValidUntil,
		IDPSSODescriptors: []saml.IDPSSODescriptor{d},
	}
}
