package guard_test

import (
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/beevik/etree"
	dsig "github.com/russellhaering/goxmldsig"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/sso"
)

// SAML-48: a connection that requires signed IdP metadata passes through
// SetSSOConnection whole, refuses unsigned metadata, and its sso.configured
// event says that signatures are required and names the certificates by
// fingerprint, never by PEM. Sign-in works with the signed metadata.
func TestSSOSignedMetadataThroughTheFacade(t *testing.T) {
	s := newSSOSite(t)
	ctx := t.Context()
	sys := guard.System("test")
	fedKey, fedCert := keyPair(t, "federation metadata signer")
	fedPEM := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: fedCert.Raw}))

	md := s.get(t, http.DefaultClient, s.idpURL+"/metadata")
	c, err := s.g.SSOConnection(ctx, sys, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	c.MetadataURL, c.Metadata, c.MetadataSigningCertificates = "", md, []string{fedPEM}
	var in *sso.InputError
	if _, err := s.g.SetSSOConnection(ctx, sys, c); !errors.As(err, &in) || in.Field != "Metadata" || !strings.Contains(in.Reason, "not signed") {
		t.Fatalf("unsigned metadata with signing certificates: %v", err)
	}

	doc := etree.NewDocument()
	if err := doc.ReadFromString(md); err != nil {
		t.Fatal(err)
	}
	sc := dsig.NewDefaultSigningContext(dsig.TLSCertKeyStore(tls.Certificate{Certificate: [][]byte{fedCert.Raw}, PrivateKey: fedKey, Leaf: fedCert}))
	sc.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	signed, err := sc.SignEnveloped(doc.Root())
	if err != nil {
		t.Fatal(err)
	}
	out := etree.NewDocument()
	out.SetRoot(signed)
	c.Metadata, _ = out.WriteToString()
	got, err := s.g.SetSSOConnection(ctx, sys, c)
	if err != nil {
		t.Fatalf("signed metadata: %v", err)
	}
	if stored, _ := s.g.SSOConnection(ctx, sys, tenantID); len(got.MetadataSigningCertificates) != 1 || len(stored.MetadataSigningCertificates) != 1 || stored.MetadataSigningCertificates[0] != fedPEM {
		t.Errorf("MetadataSigningCertificates not stored: %q", stored.MetadataSigningCertificates)
	}

	page, err := s.g.QueryAudit(ctx, sys, tenantID, audit.Query{Action: string(audit.SSOConfigured)})
	if err != nil || len(page.Events) == 0 {
		t.Fatalf("sso.configured events: %v, %v", page.Events, err)
	}
	var e *audit.Event
	for i := range page.Events {
		if page.Events[i].Meta["metadata_signed"] == "true" {
			e = &page.Events[i]
		}
	}
	if e == nil {
		t.Fatalf("no sso.configured event with metadata_signed=true: %+v", page.Events)
	}
	sum := sha256.Sum256(fedCert.Raw)
	if e.Meta["metadata_signers"] != hex.EncodeToString(sum[:]) {
		t.Errorf("metadata_signers = %q, want the certificate's SHA-256", e.Meta["metadata_signers"])
	}
	for k, v := range e.Meta {
		if strings.Contains(v, "CERTIFICATE") || strings.Contains(v, "MII") {
			t.Errorf("audit meta %s holds a certificate", k)
		}
	}
	for _, ev := range page.Events {
		if ev.ID != e.ID && ev.Meta["metadata_signed"] != "false" {
			t.Errorf("the first connection, without signing certificates, recorded metadata_signed=%q", ev.Meta["metadata_signed"])
		}
	}

	s.idpPut(t, "/users/alice", `{"name":"alice","password":"correct horse","email":"alice@corp.example","groups":["Staff"]}`)
	_, _, _, resp := s.signIn(t, "alice", "correct horse")
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"sso":true`) {
		t.Errorf("sign-in with signed metadata: %s %s", resp.Status, b)
	}
}
