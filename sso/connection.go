package sso

import (
	"crypto/x509"
	"encoding/pem"
	"maps"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Defaults and limits of a Connection.
const (
	// DefaultClockSkew is the clock skew allowed when ClockSkew is zero.
	DefaultClockSkew = 2 * time.Minute
	// MaxClockSkew is the largest ClockSkew: crewjam/saml's own skew
	// (saml.MaxClockSkew, 3 minutes), which it applies before Guard's
	// checks, so a larger one could not take effect.
	MaxClockSkew = 3 * time.Minute

	maxTenantBytes   = 63
	maxAttrNameBytes = 256
	maxRoleBytes     = 64
	maxGroupRoles    = 1000
	maxDomains       = 100
	maxExtraCerts    = 10
	maxMFAContexts   = 20
	maxClassRefBytes = 256
)

// Connection is a tenant's connection to its identity provider: where its
// metadata comes from, how its attributes map to a Guard user, and the
// tenant's choices among the checks. It is what a ConnectionStore keeps;
// Validate says what is acceptable.
type Connection struct {
	Tenant string

	// MetadataURL, if set, is where the IdP publishes its metadata. It
	// must be https (http only with Config.AllowInsecureMetadata). The
	// Provider fetches it when the connection is put without Metadata and
	// refreshes it periodically (Provider.RefreshMetadata, Refresher),
	// keeping the last good copy when a fetch fails.
	MetadataURL string
	// Metadata is the IdP's metadata XML: as uploaded by an administrator,
	// or the last good copy fetched from MetadataURL.
	Metadata string
	// MetadataFetchedAt is when Metadata was fetched from MetadataURL;
	// zero for uploaded metadata.
	MetadataFetchedAt time.Time
	// ExtraCertificates are PEM-encoded IdP signing certificates trusted
	// besides those in the metadata, for a key rollover the metadata does
	// not announce yet. At most 10.
	ExtraCertificates []string
	// MetadataSigningCertificates, if not empty, are PEM-encoded
	// certificates of the keys the IdP's metadata must be signed with (a
	// federation's or the IdP's metadata signing key; SAML-48). Every
	// metadata document accepted for the connection, put as Metadata,
	// fetched when the connection is put, or refreshed from MetadataURL,
	// must then carry a valid enveloped signature by one of them (see
	// ParseSignedMetadata; AllowSHA1 and RequireValidCertificates apply to
	// it too), and only the signed content is used. A refresh that is
	// unsigned or badly signed is refused, keeping the last good copy.
	// Empty: the metadata's own signature is not checked (ParseMetadata).
	// At most 10.
	MetadataSigningCertificates []string

	// ClockSkew is the clock difference allowed between the IdP and Guard
	// when checking NotBefore, NotOnOrAfter and IssueInstant: 0 means
	// DefaultClockSkew; at most MaxClockSkew.
	ClockSkew time.Duration

	// EmailAttribute names the attribute holding the user's email (its
	// Name, or else its FriendlyName). If empty, the usual names are tried
	// (mail, email, emailaddress and their URIs), then the NameID if its
	// Format is emailAddress or unspecified. Every value of every element
	// of the chosen name counts: empty values are skipped, an invalid one
	// is refused (ReasonEmailInvalid) and so are two different addresses
	// (ReasonEmailAmbiguous).
	EmailAttribute string
	// NameAttribute names the attribute holding the display name. If
	// empty, the usual names are tried (displayName, cn, name and their
	// URIs), then given name and surname.
	NameAttribute string
	// GroupsAttribute names the attribute listing the user's groups. If
	// empty, the usual names are tried (groups, memberOf, Role and the
	// Microsoft group and role claims). The values of every element of
	// the chosen name count, so an IdP may split the list.
	GroupsAttribute string
	// GroupRoles maps an IdP group (exact, case-sensitive value) to the
	// name of a Guard role.
	GroupRoles map[string]string
	// DefaultRole is the role of a user none of whose groups is in
	// GroupRoles; "" for none.
	DefaultRole string
	// SyncRoles asks the facade to set a linked user's roles to the mapped
	// ones at every login, not only when the user is created.
	SyncRoles bool

	// JIT asks the facade to create a user who signs in through the IdP
	// and does not exist in the tenant yet (just-in-time provisioning).
	JIT bool
	// AllowedDomains, if not empty, are the only email domains the IdP may
	// assert (compared case-insensitively, exactly: list subdomains too).
	// An email of another domain is rejected (ReasonEmailDomain).
	AllowedDomains []string

	// MFAAuthnContexts are the AuthnContextClassRef values with which the
	// tenant's IdP reports a multi-factor login, for example
	// http://schemas.microsoft.com/claims/multipleauthn (Entra ID),
	// urn:oasis:names:tc:SAML:2.0:ac:classes:MultiFactor or
	// https://refeds.org/profile/mfa. An assertion whose class reference
	// is one of them (exactly, case-sensitively; the XML white space
	// around it aside), in every AuthnStatement if it has several, gives a
	// Result with MFA set, and the facade counts the sign-in as one with a
	// second factor. LoginOptions.RequireMFA
	// asks the IdP for one of them. Empty (the default): the IdP's
	// multi-factor login is never trusted. A change applies to the
	// sign-ins after it; a session already open keeps what its sign-in
	// was given. At most 20, each 1 to 256 bytes without control
	// characters or surrounding white space, no duplicates.
	MFAAuthnContexts []string

	// IdPInitiated accepts unsolicited responses (IdP-initiated login).
	// Off by default: there is no request to bind the response to, which
	// allows login CSRF. A response that carries an InResponseTo is still
	// matched with its request.
	IdPInitiated bool
	// AllowSHA1 accepts RSA-SHA1 signatures and SHA-1 digests, which are
	// refused by default.
	AllowSHA1 bool
	// AllowCBC accepts an EncryptedAssertion whose content is encrypted
	// with AES-CBC, which is refused by default (ReasonWeakEncryption), as
	// is Triple DES: CBC does not authenticate the ciphertext
	// (padding-oracle attacks on XML Encryption). For an IdP that cannot
	// use AES-GCM. The Response must then be signed: a CBC-encrypted
	// assertion in an unsigned Response is not decrypted
	// (ReasonDecryption), nor is Triple DES, which crewjam/saml does not
	// implement.
	AllowCBC bool
	// RequireValidCertificates refuses signatures by a configured
	// certificate outside its validity period. Off by default: the SAML
	// metadata interoperability profile treats a certificate in metadata
	// as a container for a key, and many IdPs sign with expired
	// self-signed certificates.
	RequireValidCertificates bool
}

// Validate checks c at now: the tenant, the metadata source (Metadata
// must parse with ParseMetadata, or with ParseSignedMetadata when
// MetadataSigningCertificates is set, or be empty with a MetadataURL
// set), the metadata signing and extra certificates, the skew, the
// attribute names, role names, domains and multi-factor contexts. It returns an *InputError
// naming the first unacceptable field.
func (c *Connection) Validate(now time.Time) error {
	if err := checkTenant(c.Tenant); err != nil {
		return err
	}
	if c.MetadataURL != "" {
		if _, err := metadataURL(c.MetadataURL, true); err != nil {
			return err
		}
	}
	if _, err := c.metadataSigningCerts(); err != nil {
		return err
	}
	if c.Metadata == "" {
		if c.MetadataURL == "" {
			return &InputError{Field: "Metadata", Reason: "is required (or MetadataURL)"}
		}
	} else if _, err := c.parseMetadata([]byte(c.Metadata), now); err != nil {
		return err
	}
	if _, err := c.extraCerts(); err != nil {
		return err
	}
	if c.ClockSkew < 0 || c.ClockSkew > MaxClockSkew {
		return &InputError{Field: "ClockSkew", Reason: "must be between 0 and 3 minutes"}
	}
	for _, f := range [...]struct{ name, v string }{
		{"EmailAttribute", c.EmailAttribute}, {"NameAttribute", c.NameAttribute}, {"GroupsAttribute", c.GroupsAttribute},
	} {
		if r := checkText(f.v, maxAttrNameBytes); r != "" {
			return &InputError{Field: f.name, Reason: r}
		}
	}
	if len(c.GroupRoles) > maxGroupRoles {
		return &InputError{Field: "GroupRoles", Reason: "has more than 1000 entries"}
	}
	for g, role := range c.GroupRoles {
		if g == "" || checkText(g, maxAttrNameBytes) != "" {
			return &InputError{Field: "GroupRoles", Reason: "has an empty or invalid group"}
		}
		if role == "" || checkText(role, maxRoleBytes) != "" {
			return &InputError{Field: "GroupRoles", Reason: "has an empty or invalid role name"}
		}
	}
	if r := checkText(c.DefaultRole, maxRoleBytes); r != "" {
		return &InputError{Field: "DefaultRole", Reason: r}
	}
	if len(c.AllowedDomains) > maxDomains {
		return &InputError{Field: "AllowedDomains", Reason: "has more than 100 entries"}
	}
	for _, d := range c.AllowedDomains {
		if !validDomain(d) {
			return &InputError{Field: "AllowedDomains", Reason: "has an entry that is not a domain name"}
		}
	}
	if len(c.MFAAuthnContexts) > maxMFAContexts {
		return &InputError{Field: "MFAAuthnContexts", Reason: "has more than 20 entries"}
	}
	for i, ref := range c.MFAAuthnContexts {
		if ref == "" {
			return &InputError{Field: "MFAAuthnContexts", Reason: "has an empty entry"}
		}
		if r := checkText(ref, maxClassRefBytes); r != "" {
			return &InputError{Field: "MFAAuthnContexts", Reason: "has an entry that " + r}
		}
		if slices.Contains(c.MFAAuthnContexts[:i], ref) {
			return &InputError{Field: "MFAAuthnContexts", Reason: "has a duplicate entry"}
		}
	}
	return nil
}

// mfaContext reports whether the AuthnContextClassRef ref (as it stands
// in the assertion) is one of MFAAuthnContexts: exactly, once the XML
// white space around it is trimmed (an xs:anyURI collapses it).
func (c *Connection) mfaContext(ref string) bool {
	ref = strings.Trim(ref, " \t\r\n")
	return ref != "" && slices.Contains(c.MFAAuthnContexts, ref)
}

// extraCerts parses ExtraCertificates.
func (c *Connection) extraCerts() ([]*x509.Certificate, error) {
	return parsePEMCerts("ExtraCertificates", c.ExtraCertificates)
}

// metadataSigningCerts parses MetadataSigningCertificates.
func (c *Connection) metadataSigningCerts() ([]*x509.Certificate, error) {
	return parsePEMCerts("MetadataSigningCertificates", c.MetadataSigningCertificates)
}

// parsePEMCerts parses the PEM certificates of a Connection field: at
// most 10, each one PEM CERTIFICATE block of an RSA key of at least 2048
// bits or an ECDSA key.
func parsePEMCerts(field string, pems []string) ([]*x509.Certificate, error) {
	if len(pems) > maxExtraCerts {
		return nil, &InputError{Field: field, Reason: "has more than 10 entries"}
	}
	var certs []*x509.Certificate
	for _, p := range pems {
		block, rest := pem.Decode([]byte(p))
		if block == nil || block.Type != "CERTIFICATE" || strings.TrimSpace(string(rest)) != "" {
			return nil, &InputError{Field: field, Reason: "has an entry that is not one PEM certificate"}
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, &InputError{Field: field, Reason: "has a certificate that cannot be parsed"}
		}
		if err := checkKey(cert); err != nil {
			return nil, &InputError{Field: field, Reason: err.Error()}
		}
		certs = appendCert(certs, cert)
	}
	return certs, nil
}

// parseMetadata parses a metadata document for c at now: with
// ParseSignedMetadata if c requires signed metadata, else ParseMetadata.
func (c *Connection) parseMetadata(data []byte, now time.Time) (*IdP, error) {
	if len(c.MetadataSigningCertificates) == 0 {
		return ParseMetadata(data, now)
	}
	certs, err := c.metadataSigningCerts()
	if err != nil {
		return nil, err
	}
	return ParseSignedMetadata(data, now, MetadataSignature{
		Certificates: certs, AllowSHA1: c.AllowSHA1, RequireValidCertificates: c.RequireValidCertificates,
	})
}

// skew returns the effective clock skew.
func (c *Connection) skew() time.Duration {
	if c.ClockSkew == 0 {
		return DefaultClockSkew
	}
	return c.ClockSkew
}

// equal reports whether c and o are the same connection, field by field.
func (c *Connection) equal(o *Connection) bool {
	return c.Tenant == o.Tenant && c.MetadataURL == o.MetadataURL && c.Metadata == o.Metadata &&
		c.MetadataFetchedAt.Equal(o.MetadataFetchedAt) && slices.Equal(c.ExtraCertificates, o.ExtraCertificates) &&
		slices.Equal(c.MetadataSigningCertificates, o.MetadataSigningCertificates) &&
		c.ClockSkew == o.ClockSkew && c.EmailAttribute == o.EmailAttribute && c.NameAttribute == o.NameAttribute &&
		c.GroupsAttribute == o.GroupsAttribute && maps.Equal(c.GroupRoles, o.GroupRoles) && c.DefaultRole == o.DefaultRole &&
		c.SyncRoles == o.SyncRoles && c.JIT == o.JIT && slices.Equal(c.AllowedDomains, o.AllowedDomains) &&
		slices.Equal(c.MFAAuthnContexts, o.MFAAuthnContexts) &&
		c.IdPInitiated == o.IdPInitiated && c.AllowSHA1 == o.AllowSHA1 && c.AllowCBC == o.AllowCBC &&
		c.RequireValidCertificates == o.RequireValidCertificates
}

// clone returns a deep copy of c.
func (c Connection) clone() Connection {
	c.ExtraCertificates = slices.Clone(c.ExtraCertificates)
	c.MetadataSigningCertificates = slices.Clone(c.MetadataSigningCertificates)
	c.GroupRoles = maps.Clone(c.GroupRoles)
	c.AllowedDomains = slices.Clone(c.AllowedDomains)
	c.MFAAuthnContexts = slices.Clone(c.MFAAuthnContexts)
	return c
}

// checkTenant accepts 1 to 63 bytes of ASCII letters, digits, '.', '-'
// and '_': a tenant is a path segment of the SP's URLs.
func checkTenant(t string) error {
	if t == "" || len(t) > maxTenantBytes {
		return &InputError{Field: "tenant", Reason: "must be 1 to 63 characters"}
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return &InputError{Field: "tenant", Reason: "must be ASCII letters, digits, '.', '-' or '_'"}
		}
	}
	if t == "." || t == ".." {
		return &InputError{Field: "tenant", Reason: "must not be a dot segment"}
	}
	return nil
}

// checkText returns why s is unacceptable as a name of at most n bytes,
// or "".
func checkText(s string, n int) string {
	switch {
	case len(s) > n:
		return "is too long"
	case !utf8.ValidString(s):
		return "is not valid UTF-8"
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.In(r, unicode.Zl, unicode.Zp) {
			return "contains control characters"
		}
	}
	if strings.TrimSpace(s) != s {
		return "has surrounding white space"
	}
	return ""
}

// validDomain reports whether d is a lower- or upper-case ASCII domain
// name with at least two labels.
func validDomain(d string) bool {
	if len(d) < 3 || len(d) > 253 || !strings.Contains(d, ".") {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-') {
				return false
			}
		}
	}
	return true
}

// metadataURL parses a MetadataURL: absolute, http or https, with a host,
// no user info or fragment. https is required unless insecure.
func metadataURL(s string, insecure bool) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" || u.User != nil || u.Fragment != "" || len(s) > 2048 {
		return nil, &InputError{Field: "MetadataURL", Reason: "must be an absolute https URL"}
	}
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && insecure:
	default:
		return nil, &InputError{Field: "MetadataURL", Reason: "must be an absolute https URL"}
	}
	return u, nil
}
