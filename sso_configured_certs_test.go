package guard_test

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/pem"
	"strings"
	"testing"

	"github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// Whoever holds the key of a certificate the connection trusts can sign
// assertions as the IdP, so sso.configured names the IdP signing
// certificates the connection trusts: those of its metadata
// (signing_certificates) and those added beside it (extra_certificates),
// by SHA-256 fingerprint, each with its count and digest (listMeta), so a
// change of either leaves a trace in the log.
func TestSSOConfiguredRecordsTrustedSigningCertificates(t *testing.T) {
	s := newSSOSite(t)
	ctx, sys := t.Context(), guard.System("test")
	_, extra := keyPair(t, "extra idp signer")
	c, err := s.g.SSOConnection(ctx, sys, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	c.ExtraCertificates = []string{string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: extra.Raw}))}
	if _, err := s.g.SetSSOConnection(ctx, sys, c); err != nil {
		t.Fatal(err)
	}
	p, err := s.g.QueryAudit(ctx, sys, tenantID, audit.Query{Action: string(audit.SSOConfigured), Desc: true, Limit: 1})
	if err != nil || len(p.Events) != 1 {
		t.Fatalf("QueryAudit = %+v, %v", p, err)
	}
	m := p.Events[0].Meta
	sum := sha256.Sum256(extra.Raw)
	if fp := hex.EncodeToString(sum[:]); m["extra_certificates"] != fp || m["extra_certificates_count"] != "1" {
		t.Errorf("sso.configured extra_certificates = %q (count %q), want the fingerprint %s and count 1",
			m["extra_certificates"], m["extra_certificates_count"], fp)
	}
	_, idp := keyPair(t, "idp")
	sum = sha256.Sum256(idp.Raw)
	if fp := hex.EncodeToString(sum[:]); !strings.Contains(m["signing_certificates"], fp) || m["signing_certificates_count"] == "" {
		t.Errorf("sso.configured signing_certificates = %q (count %q), want the metadata's signer %s",
			m["signing_certificates"], m["signing_certificates_count"], fp)
	}
}
