package sso

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
)

// Config configures a Provider. BaseURL, Key, Certificate and the three
// Stores are required; every other field has a documented default.
type Config struct {
	// BaseURL is the public URL of the site (scheme, host, optional path),
	// from which every SP URL is built; never the Host of a request. For
	// tenant T: entity ID and metadata {BaseURL}{PathPrefix}/T/metadata,
	// ACS {BaseURL}{PathPrefix}/T/acs, single logout {BaseURL}{PathPrefix}/T/slo.
	BaseURL string
	// PathPrefix is the path under BaseURL of the SAML endpoints. Default
	// "/saml".
	PathPrefix string

	// Key signs AuthnRequests and LogoutRequests (RSA-SHA256 or
	// ECDSA-SHA256) and, when it is an RSA key and EncryptionKey is nil,
	// decrypts encrypted assertions. Certificate is its certificate,
	// published in the SP metadata. RSA keys must have at least 2048 bits.
	Key         crypto.Signer
	Certificate *x509.Certificate
	// EncryptionKey and EncryptionCertificate, if set, are a separate key
	// pair for encrypted assertions.
	EncryptionKey         *rsa.PrivateKey
	EncryptionCertificate *x509.Certificate

	// Stores are where connections, tracked requests and accepted
	// assertion IDs are kept. All three are required.
	Stores Stores

	// Now is the clock; default time.Now.
	Now func() time.Time
	// Rand is the source of request IDs and RelayState handles; default
	// crypto/rand.Reader.
	Rand io.Reader

	// HTTPClient fetches IdP metadata. Default: a client with
	// MetadataTimeout that refuses to connect to loopback, private,
	// link-local and other non-public addresses, IPv6 addresses that embed
	// an IPv4 one included (NAT64, 6to4, Teredo, IPv4-compatible), unless
	// AllowInsecureMetadata; it ignores proxy settings and follows at most
	// 3 redirects, to https only. A client given here is used as it is.
	HTTPClient *http.Client
	// AllowInsecureMetadata allows http metadata URLs and, with the
	// default client, non-public addresses. For development and tests
	// only (the demo IdP on 127.0.0.1).
	AllowInsecureMetadata bool
	// MetadataTimeout bounds one metadata fetch. Default 10 seconds.
	MetadataTimeout time.Duration
	// MaxMetadataBytes bounds a fetched metadata document. Default and
	// maximum MaxMetadataBytes.
	MaxMetadataBytes int64

	// RequestTTL is how long a login or logout request is tracked: the
	// time a user has at the IdP, and the life of the host's binding
	// cookie (SECURITY-CHECKLIST WEB-3: at most 90–180 s). Default 3
	// minutes; between 1 minute and 1 hour. A user slower than that at
	// the IdP starts again (the IdP's own session then makes it quick).
	RequestTTL time.Duration
	// MaxBodyBytes bounds the body of a POST to the ACS. Default 512 KiB;
	// between 16 KiB and 16 MiB.
	MaxBodyBytes int64
	// DefaultReturnTo is where a login goes when no return path was given
	// (and after an IdP-initiated login whose RelayState is not a safe
	// path). Default "/".
	DefaultReturnTo string
	// MaxCachedTenants bounds the cache of parsed connections. Default
	// 10,000.
	MaxCachedTenants int
}

// Defaults of Config.
const (
	DefaultRequestTTL      = 3 * time.Minute
	DefaultMaxBodyBytes    = 512 << 10
	DefaultMetadataTimeout = 10 * time.Second
)

// Provider is a multi-tenant SAML 2.0 service provider. Each tenant has
// its own SP (entity ID and ACS URL under Config.BaseURL) and its own IdP
// connection, read from Config.Stores.Connections on every call and
// cached in parsed form while it is unchanged.
//
// A Provider is safe for concurrent use.
type Provider struct {
	cfg    Config
	base   string // BaseURL + PathPrefix, no trailing slash
	sigAlg string
	client *http.Client

	cache  sync.Map // tenant -> *compiled
	cached atomic.Int64
}

// New validates cfg, fills its defaults and returns a Provider. It returns
// a *ConfigError naming the first unacceptable field.
func New(cfg Config) (*Provider, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.User != nil ||
		u.RawQuery != "" || u.Fragment != "" || strings.ContainsAny(cfg.BaseURL, " \t\r\n\\") {
		return nil, &ConfigError{Field: "BaseURL", Reason: "must be an absolute http or https URL without query or fragment"}
	}
	if cfg.PathPrefix == "" {
		cfg.PathPrefix = "/saml"
	}
	if !strings.HasPrefix(cfg.PathPrefix, "/") || strings.HasSuffix(cfg.PathPrefix, "/") || !SafeRedirect(cfg.PathPrefix) {
		return nil, &ConfigError{Field: "PathPrefix", Reason: "must be a path starting, and not ending, with '/'"}
	}
	if cfg.Key == nil || cfg.Certificate == nil {
		return nil, &ConfigError{Field: "Key", Reason: "Key and Certificate are required"}
	}
	p := &Provider{cfg: cfg}
	switch k := cfg.Key.Public().(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < 2048 {
			return nil, &ConfigError{Field: "Key", Reason: "an RSA key must have at least 2048 bits"}
		}
		p.sigAlg = dsig.RSASHA256SignatureMethod
	case *ecdsa.PublicKey:
		p.sigAlg = dsig.ECDSASHA256SignatureMethod
	default:
		return nil, &ConfigError{Field: "Key", Reason: "must be an RSA or ECDSA key"}
	}
	if pub, ok := cfg.Key.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !pub.Equal(cfg.Certificate.PublicKey) {
		return nil, &ConfigError{Field: "Certificate", Reason: "does not match Key"}
	}
	if (cfg.EncryptionKey == nil) != (cfg.EncryptionCertificate == nil) {
		return nil, &ConfigError{Field: "EncryptionKey", Reason: "EncryptionKey and EncryptionCertificate go together"}
	}
	if cfg.EncryptionKey != nil && !cfg.EncryptionKey.PublicKey.Equal(cfg.EncryptionCertificate.PublicKey) {
		return nil, &ConfigError{Field: "EncryptionCertificate", Reason: "does not match EncryptionKey"}
	}
	switch {
	case cfg.Stores.Connections == nil:
		return nil, &ConfigError{Field: "Stores.Connections", Reason: "is required"}
	case cfg.Stores.Requests == nil:
		return nil, &ConfigError{Field: "Stores.Requests", Reason: "is required"}
	case cfg.Stores.Replay == nil:
		return nil, &ConfigError{Field: "Stores.Replay", Reason: "is required"}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Rand == nil {
		cfg.Rand = rand.Reader
	}
	if cfg.MetadataTimeout == 0 {
		cfg.MetadataTimeout = DefaultMetadataTimeout
	}
	if cfg.MetadataTimeout < 0 {
		return nil, &ConfigError{Field: "MetadataTimeout", Reason: "must not be negative"}
	}
	if cfg.MaxMetadataBytes == 0 {
		cfg.MaxMetadataBytes = MaxMetadataBytes
	}
	if cfg.MaxMetadataBytes < 1024 || cfg.MaxMetadataBytes > MaxMetadataBytes {
		return nil, &ConfigError{Field: "MaxMetadataBytes", Reason: "must be between 1 KiB and 2 MiB"}
	}
	if cfg.RequestTTL == 0 {
		cfg.RequestTTL = DefaultRequestTTL
	}
	if cfg.RequestTTL < time.Minute || cfg.RequestTTL > time.Hour {
		return nil, &ConfigError{Field: "RequestTTL", Reason: "must be between 1 minute and 1 hour"}
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.MaxBodyBytes < 16<<10 || cfg.MaxBodyBytes > 16<<20 {
		return nil, &ConfigError{Field: "MaxBodyBytes", Reason: "must be between 16 KiB and 16 MiB"}
	}
	if cfg.DefaultReturnTo == "" {
		cfg.DefaultReturnTo = "/"
	}
	if !SafeRedirect(cfg.DefaultReturnTo) {
		return nil, &ConfigError{Field: "DefaultReturnTo", Reason: "must be a relative path on this site"}
	}
	if cfg.MaxCachedTenants == 0 {
		cfg.MaxCachedTenants = 10_000
	}
	if cfg.MaxCachedTenants < 0 {
		return nil, &ConfigError{Field: "MaxCachedTenants", Reason: "must not be negative"}
	}
	p.cfg = cfg
	p.base = strings.TrimSuffix(cfg.BaseURL, "/") + cfg.PathPrefix
	p.client = cfg.HTTPClient
	if p.client == nil {
		p.client = metadataClient(cfg.MetadataTimeout, cfg.AllowInsecureMetadata)
	}
	return p, nil
}

// SP is a tenant's service provider, as an administrator enters it at the
// IdP.
type SP struct {
	EntityID    string // also the URL of the SP metadata
	MetadataURL string
	ACSURL      string // HTTP-POST binding
	SLOURL      string // HTTP-Redirect binding
}

// SP returns the URLs of tenant's service provider, or an *InputError if
// tenant is not acceptable (1 to 63 ASCII letters, digits, '.', '-', '_').
func (p *Provider) SP(tenant string) (SP, error) {
	if err := checkTenant(tenant); err != nil {
		return SP{}, err
	}
	b := p.base + "/" + tenant
	return SP{EntityID: b + "/metadata", MetadataURL: b + "/metadata", ACSURL: b + "/acs", SLOURL: b + "/slo"}, nil
}

// Metadata returns the SP metadata of tenant as an XML document: entity
// ID, ACS (HTTP-POST), single logout (HTTP-Redirect), the signing
// certificate and, for an RSA key, the encryption certificate. It does not
// need the tenant's connection: an administrator gives it to the IdP
// before the connection exists.
func (p *Provider) Metadata(tenant string) ([]byte, error) {
	sp, err := p.baseSP(tenant)
	if err != nil {
		return nil, err
	}
	sp.Clock = dsig.NewFakeClockAt(p.cfg.Now())
	out, err := xml.MarshalIndent(sp.Metadata(), "", "  ")
	if err != nil {
		return nil, fmt.Errorf("sso: marshal SP metadata: %w", err)
	}
	return append([]byte(xml.Header), out...), nil
}

// baseSP returns the crewjam ServiceProvider of tenant without an IdP.
func (p *Provider) baseSP(tenant string) (saml.ServiceProvider, error) {
	urls, err := p.SP(tenant)
	if err != nil {
		return saml.ServiceProvider{}, err
	}
	mdURL, _ := url.Parse(urls.MetadataURL)
	acsURL, _ := url.Parse(urls.ACSURL)
	sloURL, _ := url.Parse(urls.SLOURL)
	return saml.ServiceProvider{
		EntityID:                    urls.EntityID,
		Key:                         p.cfg.Key,
		Certificate:                 p.cfg.Certificate,
		EncryptionKey:               p.cfg.EncryptionKey,
		EncryptionCertificate:       p.cfg.EncryptionCertificate,
		MetadataURL:                 *mdURL,
		AcsURL:                      *acsURL,
		SloURL:                      *sloURL,
		AuthnNameIDFormat:           saml.UnspecifiedNameIDFormat,
		SendUnspecifiedNameIDFormat: true,
		// AuthnRequests are signed only for an IdP that wants them signed
		// (StartLogin); logout messages always are, as the single logout
		// profile requires. The SP metadata publishes the signing
		// certificate either way.
		LogoutSignatureMethod:            p.sigAlg,
		LogoutBindings:                   []string{saml.HTTPRedirectBinding},
		AssertionConsumerServiceBindings: []string{saml.HTTPPostBinding},
		MetadataOmitValidUntil:           true,
		HTTPClient:                       &http.Client{Transport: refuseTransport{}},
	}, nil
}

// refuseTransport makes sure crewjam never calls out (artifact resolution,
// SOAP logout): the Provider accepts the HTTP-POST binding only.
type refuseTransport struct{}

func (refuseTransport) RoundTrip(*http.Request) (*http.Response, error) {
	return nil, errors.New("sso: outgoing SAML requests are disabled")
}

// compiled is a tenant's connection in parsed form.
type compiled struct {
	conn   Connection
	idp    *IdP
	sp     saml.ServiceProvider // template; copied per call
	urls   SP
	acsURL url.URL
	skew   time.Duration
	parsed error // why the stored metadata cannot be used, or nil
}

// connection loads tenant's connection and returns it parsed, from the
// cache while it is unchanged. A tenant without a connection gives
// ErrNotFound; a store failure is wrapped. A connection whose metadata
// cannot be parsed is returned with parsed set.
func (p *Provider) connection(ctx context.Context, tenant string) (*compiled, error) {
	c, err := p.cfg.Stores.Connections.Connection(ctx, tenant)
	if err != nil {
		return nil, storeErr("get connection", err)
	}
	if v, ok := p.cache.Load(tenant); ok {
		if comp := v.(*compiled); comp.conn.equal(&c) {
			return comp, nil
		}
	}
	comp, err := p.compile(c.clone())
	if err != nil {
		return nil, err
	}
	if _, loaded := p.cache.Swap(tenant, comp); !loaded {
		if p.cached.Add(1) > int64(p.cfg.MaxCachedTenants) {
			p.cache.Range(func(k, _ any) bool {
				if k != tenant {
					p.cache.Delete(k)
				}
				return true
			})
			p.cached.Store(1)
		}
	}
	return comp, nil
}

func (p *Provider) compile(c Connection) (*compiled, error) {
	sp, err := p.baseSP(c.Tenant)
	if err != nil {
		return nil, err
	}
	comp := &compiled{conn: c, skew: c.skew(), acsURL: sp.AcsURL}
	comp.urls, _ = p.SP(c.Tenant)
	idp, err := c.parseStored()
	if err == nil && c.Metadata == "" {
		err = metaErr("has not been fetched yet")
	}
	if err != nil {
		comp.parsed = err
		return comp, nil
	}
	extra, err := c.extraCerts()
	if err != nil {
		comp.parsed = err
		return comp, nil
	}
	comp.idp = idp
	sp.IDPMetadata = idp.descriptor(extra)
	// Unsolicited responses are let through here and refused by
	// ParseResponse after the signature checks, unless the tenant allows
	// them; a non-empty InResponseTo is always matched with a request
	// ParseResponse consumes from the RequestStore.
	sp.AllowIDPInitiated = true
	sp.RejectSHA1Signatures = !c.AllowSHA1
	sp.RequireSignedResponseForCBC = true
	// A condition the SP does not understand makes the assertion
	// Indeterminate, which saml-core §2.5.1.1 says MUST be rejected.
	sp.RejectUnknownConditions = true
	sp.RejectExpiredIDPMetadata = true
	sp.IgnoreCertificateExpiry = !c.RequireValidCertificates
	sp.ValidateAudienceRestriction = strictAudience(comp.urls.EntityID)
	comp.sp = sp
	return comp, nil
}

// parseIdP is ParseMetadata without the expiry check: metadata is checked
// for expiry on use, not when it is cached.
func parseIdP(data []byte) (*IdP, error) {
	if len(data) == 0 {
		return &IdP{}, nil
	}
	return ParseMetadata(data, time.Time{})
}

// parseStored is parseIdP of c's stored metadata, through
// ParseSignedMetadata if c requires signed metadata: its signature was
// checked when it was accepted, and is checked again here (without the
// validity periods of the certificates, judged on acceptance), so that
// metadata that reached the store unsigned, for example from a refresh
// that raced with a change of the connection, is never used.
func (c *Connection) parseStored() (*IdP, error) {
	if len(c.Metadata) == 0 || len(c.MetadataSigningCertificates) == 0 {
		return parseIdP([]byte(c.Metadata))
	}
	certs, err := c.metadataSigningCerts()
	if err != nil {
		return nil, err
	}
	return ParseSignedMetadata([]byte(c.Metadata), time.Time{}, MetadataSignature{Certificates: certs, AllowSHA1: c.AllowSHA1})
}

// spAt returns a copy of comp's ServiceProvider whose clock reads now.
func (comp *compiled) spAt(now time.Time) *saml.ServiceProvider {
	sp := comp.sp
	sp.Clock = dsig.NewFakeClockAt(now)
	return &sp
}

// usable returns nil if comp's IdP metadata can be used at now, or the
// reason it cannot.
func (comp *compiled) usable(now time.Time) *RejectError {
	if comp.parsed != nil {
		return reject(ReasonMetadataUnavailable, comp.parsed.Error(), comp.parsed)
	}
	if !comp.idp.ValidUntil.IsZero() && !now.Before(comp.idp.ValidUntil) {
		return reject(ReasonMetadataExpired, "IdP metadata validUntil has passed", nil)
	}
	return nil
}

// randomID returns "id-" and 40 hex digits from Rand.
func (p *Provider) randomID() (string, error) {
	var b [20]byte
	if _, err := io.ReadFull(p.cfg.Rand, b[:]); err != nil {
		return "", fmt.Errorf("sso: reading Rand: %w", err)
	}
	return "id-" + hex.EncodeToString(b[:]), nil
}

// randomHandle returns 128 bits from Rand in base64url: a RelayState.
func (p *Provider) randomHandle() (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(p.cfg.Rand, b[:]); err != nil {
		return "", fmt.Errorf("sso: reading Rand: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b[:]), nil
}

// metadataClient is the default HTTP client for metadata fetches.
func metadataClient(timeout time.Duration, insecure bool) *http.Client {
	dialer := &net.Dialer{Timeout: timeout}
	if !insecure {
		dialer.Control = func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			ip, err := netip.ParseAddr(host)
			if err != nil || !publicAddr(ip) {
				return errors.New("sso: refusing to fetch metadata from a non-public address")
			}
			return nil
		}
	}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                  nil,
			DialContext:            dialer.DialContext,
			TLSHandshakeTimeout:    timeout,
			ResponseHeaderTimeout:  timeout,
			MaxResponseHeaderBytes: 64 << 10,
			ForceAttemptHTTP2:      true,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= 3 {
				return errors.New("sso: too many redirects")
			}
			if req.URL.Scheme != "https" && !insecure {
				return errors.New("sso: refusing a redirect away from https")
			}
			return nil
		},
	}
}

// publicAddr reports whether ip is a public unicast address: not
// loopback, private, link-local, shared (100.64/10), unspecified,
// multicast or another special-purpose range of nonPublic. IPv6 addresses
// that embed an IPv4 address are not public, whatever the IPv4 address:
// NAT64 (64:ff9b::/96 and the local-use 64:ff9b:1::/48 of RFC 8215), 6to4
// (2002::/16), Teredo (2001::/32), IPv4-compatible (::/96) and SIIT's
// IPv4-translated (::ffff:0:0:0/96). A gateway
// or relay on the host's network may carry them to a private IPv4
// address, and an IdP's metadata URL needs none of them.
func publicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	if !ip.IsGlobalUnicast() || ip.IsPrivate() {
		return false
	}
	for _, p := range nonPublic {
		if p.Contains(ip) {
			return false
		}
	}
	return true
}

var nonPublic = []netip.Prefix{
	netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("100.64.0.0/10"),
	netip.MustParsePrefix("192.0.0.0/24"),
	netip.MustParsePrefix("198.18.0.0/15"),
	netip.MustParsePrefix("240.0.0.0/4"),
	netip.MustParsePrefix("2001:db8::/32"),
	// IPv6 with an embedded IPv4 address.
	netip.MustParsePrefix("64:ff9b::/96"),    // NAT64, well-known (RFC 6052)
	netip.MustParsePrefix("64:ff9b:1::/48"),  // NAT64, local use (RFC 8215)
	netip.MustParsePrefix("2002::/16"),       // 6to4 (RFC 3056)
	netip.MustParsePrefix("2001::/32"),       // Teredo (RFC 4380)
	netip.MustParsePrefix("::/96"),           // IPv4-compatible (RFC 4291, deprecated)
	netip.MustParsePrefix("::ffff:0:0:0/96"), // IPv4-translated (SIIT, RFC 2765)
}
