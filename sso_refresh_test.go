package guard_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/beevik/etree"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
)

// A refresh that changes the IdP's metadata is recorded, by the system,
// with the fingerprints of the signing certificates before and after: a
// key rollover (or a swapped key) decides whose assertions are accepted,
// so the tenant's log must show it. A refresh that changes nothing
// records nothing.
func TestRefreshSSOMetadataIsAudited(t *testing.T) {
	s := newSSOSite(t)
	ctx := t.Context()
	sys := guard.System("test")
	md, url, serve := servedMetadata(t, s)
	events := func() []audit.Event {
		t.Helper()
		page, err := s.g.QueryAudit(ctx, sys, tenantID, audit.Query{Action: string(audit.SSOMetadataRefreshed)})
		if err != nil {
			t.Fatal(err)
		}
		return page.Events
	}
	if _, err := s.g.RefreshSSOMetadata(ctx, tenantID); err != nil {
		t.Fatalf("a refresh of the same metadata: %v", err)
	}
	if evs := events(); len(evs) != 0 {
		t.Fatalf("an unchanged refresh recorded %+v", evs)
	}

	// The IdP announces a second signing certificate (a rollover).
	doc := etree.NewDocument()
	if err := doc.ReadFromString(md); err != nil {
		t.Fatal(err)
	}
	kd := doc.FindElement("//IDPSSODescriptor/KeyDescriptor")
	if kd == nil {
		t.Fatal("no KeyDescriptor in the IdP's metadata")
	}
	old := kd.FindElement(".//X509Certificate").Text()
	_, next := keyPair(t, "idp next")
	rolled := kd.Copy()
	rolled.FindElement(".//X509Certificate").SetText(base64.StdEncoding.EncodeToString(next.Raw))
	kd.Parent().InsertChildAt(kd.Index()+1, rolled)
	doc.Root().CreateAttr("cacheDuration", "PT1H") // serialisation differs too
	rolledMD, _ := doc.WriteToString()
	serve(rolledMD)
	if changed, err := s.g.RefreshSSOMetadata(ctx, tenantID); err != nil || !changed {
		t.Fatalf("a refresh with a new certificate: %v, %v; want changed", changed, err)
	}
	fp := func(b64 string) string {
		der, err := base64.StdEncoding.DecodeString(b64)
		if err != nil {
			t.Fatal(err)
		}
		sum := sha256.Sum256(der)
		return hex.EncodeToString(sum[:])
	}
	evs := events()
	if len(evs) != 1 {
		t.Fatalf("%d sso.metadata_refreshed events, want 1", len(evs))
	}
	e := evs[0]
	if e.Actor.Kind != audit.ActorSystem || e.Meta["certificates_changed"] != "true" ||
		e.Meta["signing_certificates"] != fp(old)+","+fp(base64.StdEncoding.EncodeToString(next.Raw)) ||
		e.Meta["previous_signing_certificates"] != fp(old) || e.Meta["metadata_url"] != url {
		t.Errorf("sso.metadata_refreshed %+v", e)
	}

	// A change that keeps the certificates says so.
	doc.Root().CreateAttr("cacheDuration", "PT2H")
	again, _ := doc.WriteToString()
	serve(again)
	if changed, err := s.g.RefreshSSOMetadata(ctx, tenantID); err != nil || !changed {
		t.Fatalf("a refresh with another cache duration: %v, %v; want changed", changed, err)
	}
	if evs := events(); len(evs) != 2 || evs[1].Meta["certificates_changed"] != "false" || evs[1].Meta["previous_signing_certificates"] != "" {
		t.Errorf("events %+v, want a second one with certificates_changed=false", evs)
	}
}

// Maintain refreshes an IdP's metadata fetched from a URL once it is
// older than MetadataMaxAge, and not before.
func TestMaintainRefreshesMetadata(t *testing.T) {
	s := newSSOSite(t)
	ctx := t.Context()
	sys := guard.System("cron")
	c, err := s.g.SSOConnection(ctx, sys, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	c.MetadataURL, c.Metadata = s.idpURL+"/metadata", ""
	if _, err := s.g.SetSSOConnection(ctx, sys, c); err != nil {
		t.Fatal(err)
	}
	if rep, err := s.g.Maintain(ctx, sys, guard.MaintainOptions{}); err != nil || len(rep.MetadataRefreshed) != 0 {
		t.Errorf("metadata fetched just now: %+v, %v; want no refresh", rep, err)
	}
	before, _ := s.g.SSOConnection(ctx, sys, tenantID)
	rep, err := s.g.Maintain(ctx, sys, guard.MaintainOptions{MetadataMaxAge: time.Nanosecond})
	if err != nil || len(rep.MetadataRefreshed) != 1 || rep.MetadataRefreshed[0] != tenantID {
		t.Fatalf("metadata due: %+v, %v; want the tenant refreshed", rep, err)
	}
	if after, _ := s.g.SSOConnection(ctx, sys, tenantID); !after.MetadataFetchedAt.After(before.MetadataFetchedAt) {
		t.Errorf("fetched at %v, then %v: not fetched again", before.MetadataFetchedAt, after.MetadataFetchedAt)
	}
}

// servedMetadata points tenantID's SSO connection at a metadata URL (url)
// of a server of the test's own, which serves the IdP's metadata (md)
// until serve gives it another document.
func servedMetadata(t *testing.T, s *ssoSite) (md, url string, serve func(doc string)) {
	t.Helper()
	ctx, sys := t.Context(), guard.System("test")
	md = s.get(t, http.DefaultClient, s.idpURL+"/metadata")
	var mu sync.Mutex
	served := md
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		w.Header().Set("Content-Type", "application/samlmetadata+xml")
		w.Write([]byte(served))
	}))
	t.Cleanup(srv.Close)
	c, err := s.g.SSOConnection(ctx, sys, tenantID)
	if err != nil {
		t.Fatal(err)
	}
	c.MetadataURL, c.Metadata = srv.URL+"/metadata", ""
	if _, err := s.g.SetSSOConnection(ctx, sys, c); err != nil {
		t.Fatal(err)
	}
	return md, c.MetadataURL, func(doc string) { mu.Lock(); served = doc; mu.Unlock() }
}
