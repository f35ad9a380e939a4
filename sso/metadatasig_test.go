package sso

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"errors"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"
)

// signer is a metadata signing key and its self-signed certificate.
type signer struct {
	key  crypto.Signer
	cert *x509.Certificate
}

// The metadata signing keys of the tests (SAML-48): a federation's RSA
// and ECDSA keys, generated once per test binary.
var (
	fedOnce       sync.Once
	fedRSA, fedEC signer
)

func federationKeys(t testing.TB) (signer, signer) {
	t.Helper()
	fedOnce.Do(func() {
		rk, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			panic(err)
		}
		fedRSA = signer{rk, newCert(rk, "federation metadata signer", time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC))}
		ek, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			panic(err)
		}
		fedEC = signer{ek, newCert(ek, "ECDSA metadata signer", time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC))}
	})
	return fedRSA, fedEC
}

func newCert(key crypto.Signer, cn string, from, until time.Time) *x509.Certificate {
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: cn}, NotBefore: from, NotAfter: until}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		panic(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return c
}

func asSigner(kp keyPair) signer { return signer{kp.key, kp.cert} }

// signRoot signs el in place of itself (enveloped, exclusive C14N) with s
// and method, and puts the Signature first among its children, where
// the metadata schema wants it. An el without ID gets Reference URI "".
func signRoot(el *etree.Element, s signer, method string) *etree.Element {
	ctx, err := dsig.NewSigningContext(s.key, [][]byte{s.cert.Raw})
	if err != nil {
		panic(err)
	}
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	if err := ctx.SetSignatureMethod(method); err != nil {
		panic(err)
	}
	signed, err := ctx.SignEnveloped(el)
	if err != nil {
		panic(err)
	}
	sig := signed.Child[len(signed.Child)-1].(*etree.Element)
	signed.Child = signed.Child[:len(signed.Child)-1]
	signed.InsertChildAt(0, sig)
	return signed
}

// signedMD returns the metadata document md with the root ID id ("" for
// none) signed by s with RSA-SHA256 (ECDSA-SHA256 for an ECDSA key).
func signedMD(md, id string, s signer) string {
	method := dsig.RSASHA256SignatureMethod
	if _, ok := s.key.(*ecdsa.PrivateKey); ok {
		method = dsig.ECDSASHA256SignatureMethod
	}
	return signedMDWith(md, id, s, method)
}

func signedMDWith(md, id string, s signer, method string) string {
	root := parse([]byte(md))
	if id != "" {
		root.CreateAttr("ID", id)
	}
	return string(serialize(signRoot(root, s, method)))
}

// entitiesMD wraps EntityDescriptor documents in an EntitiesDescriptor
// (a federation aggregate).
func entitiesMD(id string, entities ...string) string {
	var b strings.Builder
	b.WriteString(`<EntitiesDescriptor xmlns="urn:oasis:names:tc:SAML:2.0:metadata"`)
	if id != "" {
		b.WriteString(` ID="` + id + `"`)
	}
	b.WriteString(` Name="urn:example:federation">`)
	for _, e := range entities {
		e = strings.TrimPrefix(e, `<?xml version="1.0" encoding="UTF-8"?>`)
		b.WriteString(e)
	}
	b.WriteString(`</EntitiesDescriptor>`)
	return b.String()
}

// wantMetadataError checks that err is an *InputError for field whose
// reason contains want.
func wantMetadataError(t *testing.T, name string, err error, field, want string) {
	t.Helper()
	var in *InputError
	if !errors.As(err, &in) || in.Field != field || !strings.Contains(in.Reason, want) {
		t.Errorf("%s: err = %v, want an *InputError for %s saying %q", name, err, field, want)
	}
}

// SAML-48: metadata that must be signed is accepted only with a valid
// enveloped signature over its root by a configured key, and is read from
// the signed content only.
func TestParseSignedMetadata(t *testing.T) {
	k := loadKeys(t)
	fed, fedEC := federationKeys(t)
	md := idpMetadata(time.Time{}, k.idp.cert)
	want, err := ParseMetadata([]byte(md), t0)
	if err != nil {
		t.Fatal(err)
	}
	trust := MetadataSignature{Certificates: []*x509.Certificate{fed.cert}}
	good := signedMD(md, "_md1", fed)

	sameIdP := func(name string, got *IdP) {
		t.Helper()
		if got.EntityID != want.EntityID || got.SSORedirectURL != want.SSORedirectURL || got.SSOPostURL != want.SSOPostURL ||
			got.SLORedirectURL != want.SLORedirectURL || len(got.Certificates) != 1 || !got.Certificates[0].Equal(k.idp.cert) {
			t.Errorf("%s: IdP = %+v, want %+v", name, got, want)
		}
	}

	t.Run("Accepted", func(t *testing.T) {
		for _, tc := range []struct {
			name  string
			doc   string
			trust MetadataSignature
		}{
			{"signed EntityDescriptor", good, trust},
			{"Reference URI empty (root without ID)", signedMD(md, "", fed), trust},
			{"ECDSA key", signedMD(md, "_md1", fedEC), MetadataSignature{Certificates: []*x509.Certificate{fedEC.cert}}},
			{"second of two certificates", good, MetadataSignature{Certificates: []*x509.Certificate{k.attacker.cert, fed.cert}}},
			{"RSA-SHA512", signedMDWith(md, "_md1", fed, dsig.RSASHA512SignatureMethod), trust},
			{"signed federation aggregate", signedMD(entitiesMD("_agg", md), "", fed), trust},
			{"SHA-1 with AllowSHA1", signedMDWith(md, "_md1", fed, "http://www.w3.org/2000/09/xmldsig#rsa-sha1"),
				MetadataSignature{Certificates: []*x509.Certificate{fed.cert}, AllowSHA1: true}},
			{"KeyInfo naming another certificate is ignored", strings.Replace(good,
				base64.StdEncoding.EncodeToString(fed.cert.Raw), base64.StdEncoding.EncodeToString(k.attacker.cert.Raw), 1), trust},
			{"no KeyInfo, two certificates", string(serialize(withoutKeyInfo(parse([]byte(good))))),
				MetadataSignature{Certificates: []*x509.Certificate{k.attacker.cert, fed.cert}}},
		} {
			idp, err := ParseSignedMetadata([]byte(tc.doc), t0, tc.trust)
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
				continue
			}
			sameIdP(tc.name, idp)
		}
	})

	t.Run("Refused", func(t *testing.T) {
		evilMD := strings.Replace(md, idpSSOURL, "https://evil.example/sso", -1)
		// A signed EntityDescriptor inside an unsigned EntitiesDescriptor.
		wrappedInUnsigned := entitiesMD("_agg", good)
		// An unsigned root with the signed original tucked away in its
		// Extensions, for a checker that looks for any valid signature.
		evil := parse([]byte(evilMD))
		evil.CreateAttr("ID", "_md1")
		ext := evil.CreateElement("Extensions")
		evil.RemoveChild(ext)
		evil.InsertChildAt(0, ext)
		ext.AddChild(parse([]byte(good)))
		signedCopyInside := string(serialize(evil))
		// The genuine signature moved onto an evil root with the same ID.
		evil2 := parse([]byte(evilMD))
		evil2.CreateAttr("ID", "_md1")
		evil2.InsertChildAt(0, child(parse([]byte(good)), "Signature").Copy())
		movedSignature := string(serialize(evil2))
		// Two signatures on the root: the genuine one and a second one.
		two := parse([]byte(good))
		two.AddChild(child(parse([]byte(good)), "Signature").Copy())
		twoSignatures := string(serialize(two))
		// A signed aggregate with an evil IdP added after signing.
		agg := signedMD(entitiesMD("_agg", md), "", fed)
		aggPlus := strings.Replace(agg, "</EntitiesDescriptor>", strings.Replace(strings.TrimPrefix(evilMD, `<?xml version="1.0" encoding="UTF-8"?>`),
			idpEntityID, "https://evil.example/", 1)+"</EntitiesDescriptor>", 1)

		for _, tc := range []struct {
			name, doc string
			trust     MetadataSignature
			want      string
		}{
			{"unsigned", md, trust, "is not signed"},
			{"signed by another key", signedMD(md, "_md1", asSigner(k.attacker)), trust, "does not verify"},
			{"signed by another key with the trusted certificate in KeyInfo", strings.Replace(signedMD(md, "_md1", asSigner(k.attacker)),
				base64.StdEncoding.EncodeToString(k.attacker.cert.Raw), base64.StdEncoding.EncodeToString(fed.cert.Raw), 1), trust, "does not verify"},
			{"SSO URL changed after signing", strings.Replace(good, idpSSOURL, "https://evil.example/sso", 1), trust, "does not verify"},
			{"IdP certificate swapped after signing", strings.Replace(good, base64.StdEncoding.EncodeToString(k.idp.cert.Raw),
				base64.StdEncoding.EncodeToString(k.attacker.cert.Raw), 1), trust, "does not verify"},
			{"entity ID changed after signing", strings.Replace(good, idpEntityID, "https://evil.example/", 1), trust, "does not verify"},
			{"root ID changed after signing", strings.Replace(good, `ID="_md1"`, `ID="_md2"`, 1), trust, "does not reference its root"},
			{"signed EntityDescriptor wrapped in an unsigned EntitiesDescriptor", wrappedInUnsigned, trust, "is not signed"},
			{"unsigned root with the signed copy inside", signedCopyInside, trust, "is not signed"},
			{"genuine signature moved onto an evil root", movedSignature, trust, "does not verify"},
			{"two signatures on the root", twoSignatures, trust, "more than one Signature"},
			{"an unsigned element after the signed root", good + evilMD, trust, "more than one top-level element"},
			{"an unsigned element before the signed root", evilMD + good, trust, "more than one top-level element"},
			{"entity added to a signed aggregate", aggPlus, trust, "does not verify"},
			{"SHA-1 by default", signedMDWith(md, "_md1", fed, "http://www.w3.org/2000/09/xmldsig#rsa-sha1"), trust, "SHA-1"},
			{"XPath transform", strings.Replace(good, `<ds:Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>`,
				`<ds:Transform Algorithm="http://www.w3.org/TR/1999/REC-xpath-19991116"/>`, 1), trust, "transform other than"},
			{"reference to another element", strings.Replace(good, `URI="#_md1"`, `URI="#_other"`, 1), trust, "does not reference its root"},
			{"no certificate configured", good, MetadataSignature{}, "is empty"},
			{"expired certificate with RequireValidCertificates", good,
				MetadataSignature{Certificates: []*x509.Certificate{fed.cert}, RequireValidCertificates: true}, ""},
		} {
			field := "Metadata"
			if tc.name == "no certificate configured" {
				field = "MetadataSigningCertificates"
			}
			now := t0
			if strings.HasPrefix(tc.name, "expired") {
				now = time.Date(2201, 1, 1, 0, 0, 0, 0, time.UTC)
				tc.want = "outside its validity period"
			}
			idp, err := ParseSignedMetadata([]byte(tc.doc), now, tc.trust)
			if err == nil {
				t.Errorf("%s: accepted: %+v", tc.name, idp)
				continue
			}
			wantMetadataError(t, tc.name, err, field, tc.want)
		}
	})

	// Expired certificates are a key container by default, as for
	// assertions.
	if _, err := ParseSignedMetadata([]byte(good), time.Date(2201, 1, 1, 0, 0, 0, 0, time.UTC), trust); err != nil {
		t.Errorf("a certificate past its NotAfter without RequireValidCertificates: %v", err)
	}
}

// withoutKeyInfo removes the KeyInfo of el's Signature.
func withoutKeyInfo(el *etree.Element) *etree.Element {
	s := child(el, "Signature")
	s.RemoveChild(child(s, "KeyInfo"))
	return el
}

// SAML-48: without MetadataSigningCertificates nothing changes: unsigned
// metadata is accepted, as is signed metadata whatever its signature.
func TestUnsignedMetadataWithoutSigningCertificates(t *testing.T) {
	k := loadKeys(t)
	md := idpMetadata(time.Time{}, k.idp.cert)
	for _, doc := range []string{md, signedMD(md, "_md1", asSigner(k.attacker))} {
		c := Connection{Tenant: tenant, Metadata: doc}
		if err := c.Validate(t0); err != nil {
			t.Errorf("Validate without signing certificates: %v", err)
		}
	}
}

// SAML-48: the certificates are checked like ExtraCertificates, and the
// Metadata against them.
func TestConnectionMetadataSigningCertificates(t *testing.T) {
	k := loadKeys(t)
	fed, _ := federationKeys(t)
	small, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	md := idpMetadata(time.Time{}, k.idp.cert)
	ok := Connection{Tenant: tenant, Metadata: signedMD(md, "_md1", fed), MetadataSigningCertificates: []string{certPEM(fed.cert)}}
	if err := ok.Validate(t0); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, field, want string
		edit              func(*Connection)
	}{
		{"not PEM", "MetadataSigningCertificates", "not one PEM certificate", func(c *Connection) { c.MetadataSigningCertificates = []string{"not PEM"} }},
		{"two in one entry", "MetadataSigningCertificates", "not one PEM certificate",
			func(c *Connection) { c.MetadataSigningCertificates = []string{certPEM(fed.cert) + certPEM(fed.cert)} }},
		{"too many", "MetadataSigningCertificates", "more than 10", func(c *Connection) {
			c.MetadataSigningCertificates = make([]string, 11)
		}},
		{"short RSA key", "MetadataSigningCertificates", "2048", func(c *Connection) {
			c.MetadataSigningCertificates = []string{certPEM(newCert(small, "small", time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(2200, 1, 1, 0, 0, 0, 0, time.UTC)))}
		}},
		{"unsigned metadata", "Metadata", "is not signed", func(c *Connection) { c.Metadata = md }},
		{"metadata signed by another key", "Metadata", "does not verify", func(c *Connection) {
			c.MetadataSigningCertificates = []string{certPEM(k.idp2.cert)}
		}},
	} {
		c := ok.clone()
		tc.edit(&c)
		wantMetadataError(t, tc.name, c.Validate(t0), tc.field, tc.want)
	}
	c := ok.clone()
	c.Metadata, c.MetadataURL = "", "https://idp.example/metadata"
	if err := c.Validate(t0); err != nil {
		t.Errorf("URL without fetched metadata: %v", err)
	}
}

// SAML-48, RL-5: with MetadataSigningCertificates, the metadata fetched
// when the connection is put and at every refresh must be signed; an
// unsigned or badly signed refresh keeps the last good copy and is
// reported, also to the Refresher's OnRefresh.
func TestSignedMetadataRefresh(t *testing.T) {
	k := loadKeys(t)
	fed, _ := federationKeys(t)
	md := idpMetadata(time.Time{}, k.idp.cert)
	srv := newMetadataServer(t, md)
	p, st, clk := newFetchEnv(t, nil)
	ctx := t.Context()
	conn := Connection{Tenant: tenant, MetadataURL: srv.URL + "/metadata", MetadataSigningCertificates: []string{certPEM(fed.cert)}}

	// Put time: an unsigned document is refused, nothing is stored.
	_, err := p.PutConnection(ctx, conn)
	wantMetadataError(t, "put with unsigned metadata at the URL", err, "Metadata", "is not signed")
	if _, err := st.Connection(ctx, tenant); !errors.Is(err, ErrNotFound) {
		t.Fatalf("a refused connection was stored: %v", err)
	}
	// Uploaded Metadata is checked the same way.
	_, err = p.PutConnection(ctx, Connection{Tenant: tenant, Metadata: md, MetadataSigningCertificates: conn.MetadataSigningCertificates})
	wantMetadataError(t, "put with unsigned uploaded metadata", err, "Metadata", "is not signed")

	good := signedMD(md, "_md1", fed)
	srv.set(http.StatusOK, good)
	if _, err := p.PutConnection(ctx, conn); err != nil {
		t.Fatalf("put with signed metadata at the URL: %v", err)
	}
	// A refresh to a newly signed copy (the IdP's key rollover) lands.
	clk.Set(t0.Add(2 * time.Hour))
	rolled := signedMD(idpMetadata(time.Time{}, k.idp2.cert), "_md2", fed)
	srv.set(http.StatusOK, rolled)
	if changed, err := p.RefreshMetadata(ctx, tenant); err != nil || !changed {
		t.Fatalf("refresh with signed metadata = %v, %v", changed, err)
	}
	last, _ := st.Connection(ctx, tenant)
	if last.Metadata != rolled {
		t.Fatal("the signed refresh was not stored")
	}

	// Each bad refresh keeps the last good copy and says why.
	for _, tc := range []struct{ name, body, want string }{
		{"unsigned", idpMetadata(time.Time{}, k.attacker.cert), "is not signed"},
		{"tampered", strings.Replace(rolled, base64.StdEncoding.EncodeToString(k.idp2.cert.Raw), base64.StdEncoding.EncodeToString(k.attacker.cert.Raw), 1), "does not verify"},
		{"signed by another key", signedMD(idpMetadata(time.Time{}, k.attacker.cert), "_md3", asSigner(k.attacker)), "does not verify"},
		{"signature wrapped", entitiesMD("", idpMetadata(time.Time{}, k.attacker.cert), rolled), "is not signed"},
	} {
		clk.Set(clk.Now().Add(time.Hour))
		srv.set(http.StatusOK, tc.body)
		changed, err := p.RefreshMetadata(ctx, tenant)
		if changed {
			t.Errorf("%s: refresh reported a change", tc.name)
		}
		wantMetadataError(t, tc.name, err, "Metadata", tc.want)
		if now, _ := st.Connection(ctx, tenant); now.Metadata != last.Metadata || !now.MetadataFetchedAt.Equal(last.MetadataFetchedAt) {
			t.Errorf("%s: the last good metadata was replaced", tc.name)
		}
	}

	// The Refresher reports the refusal to OnRefresh.
	var got []error
	r := &Refresher{Provider: p, Tenants: func(context.Context) ([]string, error) { return []string{tenant}, nil },
		OnRefresh: func(_ string, changed bool, err error) {
			if changed {
				t.Error("OnRefresh: changed")
			}
			got = append(got, err)
		}}
	srv.set(http.StatusOK, idpMetadata(time.Time{}, k.attacker.cert))
	clk.Set(clk.Now().Add(2 * time.Hour))
	if err := r.RefreshDue(ctx); err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("OnRefresh called %d times", len(got))
	}
	wantMetadataError(t, "Refresher", got[0], "Metadata", "is not signed")
	if now, _ := st.Connection(ctx, tenant); now.Metadata != last.Metadata {
		t.Error("Refresher: the last good metadata was replaced")
	}

	// Logins keep using the signed copy's key.
	e := &env{t: t, k: k, p: p, st: st, clock: clk}
	clk.Set(t0.Add(2 * time.Second))
	e.track(requestID, relayState)
	if _, err := e.post(spec{signAssertion: true, signer: &k.idp2}.build(k), relayState); err != nil {
		t.Errorf("login with signed metadata: %v", err)
	}
	e.track("id-2", relayState)
	_, err = e.post(spec{signAssertion: true, signer: &k.attacker, inResponseTo: "id-2", assertionID: "id-a2"}.build(k), relayState)
	wantReason(t, err, ReasonUntrustedCert)
}

// SAML-48: metadata that reached the store without a valid signature
// (written around PutConnection, or by a refresh that raced with the
// administrator adding MetadataSigningCertificates) is never used.
func TestStoredUnsignedMetadataUnusable(t *testing.T) {
	fed, _ := federationKeys(t)
	e := newEnv(t, func(c *Connection) { c.MetadataSigningCertificates = []string{certPEM(fed.cert)} })
	e.track(requestID, relayState)
	_, err := e.post(valid().build(e.k), relayState)
	wantReason(t, err, ReasonMetadataUnavailable)
	var in *InputError
	if !errors.As(err, &in) || in.Field != "Metadata" {
		t.Errorf("the rejection does not carry the metadata error: %v", err)
	}

	// Signed, the same connection works.
	e.conn.Metadata = signedMD(e.conn.Metadata, "_md1", fed)
	if err := e.st.PutConnection(t.Context(), e.conn); err != nil {
		t.Fatal(err)
	}
	if _, err := e.post(valid().build(e.k), relayState); err != nil {
		t.Errorf("login with signed stored metadata: %v", err)
	}
}
