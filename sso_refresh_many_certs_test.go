package guard_test

import (
	"encoding/base64"
	"fmt"
	"testing"

	"github.com/beevik/etree"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// A refresh of IdP metadata listing more certificates than an audit field
// holds is recorded (sso.metadata_refreshed) and stands: the fingerprint
// list is clipped to whole fingerprints, with the count and a SHA-256 of
// the whole list beside it.
func TestRefreshSSOMetadataRecordsManyCertificates(t *testing.T) {
	s := newSSOSite(t)
	ctx := t.Context()
	sys := guard.System("test")
	md, _, serve := servedMetadata(t, s)
	doc := etree.NewDocument()
	if err := doc.ReadFromString(md); err != nil {
		t.Fatal(err)
	}
	kd := doc.FindElement("//IDPSSODescriptor/KeyDescriptor")
	if kd == nil {
		t.Fatal("no KeyDescriptor in the IdP's metadata")
	}
	for i := range 16 {
		_, next := keyPair(t, fmt.Sprint("idp extra ", i))
		extra := kd.Copy()
		extra.FindElement(".//X509Certificate").SetText(base64.StdEncoding.EncodeToString(next.Raw))
		kd.Parent().InsertChildAt(kd.Index()+1, extra)
	}
	many, _ := doc.WriteToString()
	serve(many)
	changed, err := s.g.RefreshSSOMetadata(ctx, tenantID)
	if err != nil || !changed {
		t.Fatalf("RefreshSSOMetadata of metadata with 17 certificates = %v, %v; want true, nil", changed, err)
	}
	page, err := s.g.QueryAudit(ctx, sys, tenantID, audit.Query{Action: string(audit.SSOMetadataRefreshed)})
	if err != nil || len(page.Events) != 1 {
		t.Fatalf("sso.metadata_refreshed events: %d (%v), want 1", len(page.Events), err)
	}
	m := page.Events[0].Meta
	list := m["signing_certificates"]
	if len(list) > 1000 || (len(list)+1)%65 != 0 || m["signing_certificates_count"] != "17" || len(m["signing_certificates_sha256"]) != 64 ||
		m["previous_signing_certificates_count"] != "1" {
		t.Errorf("sso.metadata_refreshed of 17 certificates: list of %d bytes, %+v", len(list), m)
	}
}
