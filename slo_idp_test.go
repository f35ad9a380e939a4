package guard_test

import (
	"crypto/rsa"
	"crypto/x509"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/crewjam/saml"
	"github.com/crewjam/saml/samlidp"

	"github.com/guardhq/guard"
	"github.com/guardhq/guard/audit"
	"github.com/guardhq/guard/sso"
)

// replaceIdP connects the tenant to another IdP (crewjam's samlidp at
// another address, so another entity ID, with another key), as an
// administrator who changes identity provider does, and makes it the one
// s's helpers (ssoUser, idpPut) talk to. It returns the new IdP's entity
// ID, key and certificate.
func (s *ssoSite) replaceIdP(t *testing.T) (string, *rsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	md, key, cert := s.serveNewIdP(t)
	s.connect(t)
	s.idpPut(t, "/services/acme", s.get(t, http.DefaultClient, s.srv.URL+"/saml/acme/metadata"))
	return md, key, cert
}

// serveNewIdP starts another test IdP and makes it the one s's helpers
// talk to (s.idpURL), leaving the tenant's connection as it is; it
// returns the new IdP's metadata URL (its entity ID), key and
// certificate.
func (s *ssoSite) serveNewIdP(t *testing.T) (string, *rsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	key, cert := keyPair(t, "idp-new")
	srv := httptest.NewUnstartedServer(nil)
	u, _ := url.Parse("http://" + srv.Listener.Addr().String())
	idp, err := samlidp.New(samlidp.Options{URL: *u, Key: key, Certificate: cert, Store: &samlidp.MemoryStore{}, Logger: log.New(io.Discard, "", 0)})
	if err != nil {
		t.Fatal(err)
	}
	idp.IDP.AssertionMaker = &s.edit
	srv.Config.Handler = idp
	srv.Start()
	t.Cleanup(srv.Close)
	s.idpURL = u.String()
	return idp.IDP.MetadataURL.String(), key, cert
}

// opaqueNameID makes the test IdPs name every user by the persistent
// NameID id (the email still comes in the mail attribute).
func (s *ssoSite) opaqueNameID(t *testing.T, id string) {
	s.edit.set(func(a *saml.Assertion) { a.Subject.NameID.Value, a.Subject.NameID.Format = id, persistentFormat })
	t.Cleanup(func() { s.edit.set(nil) })
}

// logoutFrom returns a POST to the tenant's single logout URL carrying a
// LogoutRequest from the IdP entityID, signed with its key, naming nameID
// (persistent).
func (s *ssoSite) logoutFrom(t *testing.T, entityID string, key *rsa.PrivateKey, cert *x509.Certificate, id, nameID string) *http.Request {
	t.Helper()
	sp, err := s.g.SSOServiceProvider(tenantID)
	if err != nil {
		t.Fatal(err)
	}
	lr := &saml.LogoutRequest{ID: id, Version: "2.0", IssueInstant: time.Now().UTC(), Destination: sp.SLOURL,
		Issuer: &saml.Issuer{Value: entityID}, NameID: &saml.NameID{Value: nameID, Format: persistentFormat}}
	return signedLogoutPost(t, lr, key, cert)
}

// TestSingleLogoutAfterIdPReplaced: a NameID means something only to the
// IdP that issued it. After the tenant replaces its IdP (which ends
// Alice's session, signed in by the old one), the new IdP's
// LogoutRequest for the NameID the old IdP gave Alice ends the sessions
// of the new IdP's user who has it (Bob) only; Alice's old principal
// logs out nowhere, naming her old NameID and IdP session to no IdP
// (StartLogout's refusal to name a subject to another IdP, ErrOtherIdP,
// is tested in package sso); and Bob's logout names his to the new IdP.
func TestSingleLogoutAfterIdPReplaced(t *testing.T) {
	s := newSSOSite(t)
	ctx := t.Context()
	oldIdP := s.idpURL + "/metadata"
	s.opaqueNameID(t, "00u-shared")
	aliceB, alice := s.ssoUser(t, "alice", "alice@corp.example")
	subA, err := s.stores.SSO.Subjects.Subject(ctx, tenantID, alice.UserID, time.Now())
	if err != nil || subA.IdP != oldIdP || subA.NameID != "00u-shared" || subA.SessionIndex == "" {
		t.Fatalf("Alice's kept subject = %+v, %v; want NameID 00u-shared of %s", subA, err, oldIdP)
	}

	newIdP, key, cert := s.replaceIdP(t)
	if newIdP == oldIdP {
		t.Fatalf("the new IdP has the old one's entity ID %s", newIdP)
	}
	bobB, bob := s.ssoUser(t, "bob", "bob@corp.example")
	subB, err := s.stores.SSO.Subjects.Subject(ctx, tenantID, bob.UserID, time.Now())
	if err != nil || subB.IdP != newIdP || subB.NameID != "00u-shared" {
		t.Fatalf("Bob's kept subject = %+v, %v; want NameID 00u-shared of %s", subB, err, newIdP)
	}

	// The new IdP logs out its 00u-shared: Bob, not Alice.
	if _, err := s.g.HandleSLO(ctx, tenantID, s.logoutFrom(t, newIdP, key, cert, "id-lo-new", "00u-shared")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.principalOf(t, aliceB); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("Alice's session after the IdP that signed her in was replaced: %v", err)
	}
	if _, err := s.principalOf(t, bobB); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("Bob's session after his IdP logged him out: %v", err)
	}
	revoked, err := s.g.QueryAudit(ctx, guard.System("test"), tenantID, audit.Query{Action: string(audit.SessionRevoked)})
	if err != nil {
		t.Fatal(err)
	}
	var byIdP []string
	for _, e := range revoked.Events {
		if e.Reason == "idp_logout" {
			byIdP = append(byIdP, e.Target)
		}
	}
	if len(byIdP) != 1 || byIdP[0] != bob.UserID {
		t.Errorf("session.revoked (idp_logout) of %v, want one, of Bob", byIdP)
	}

	// Alice's session ended with the old IdP: her logout names nothing to
	// the new IdP, which never issued her subject.
	to, err := s.g.LogoutSSO(ctx, alice, "/bye")
	if !errors.Is(err, guard.ErrUnauthenticated) || to != "" {
		t.Errorf("LogoutSSO of the old IdP's user = %q, %v; want no session, nothing named", to, err)
	}
	if to != "" {
		if lr := logoutRequestOf(t, to); lr.NameID != nil && lr.NameID.Value == subA.NameID || strings.Contains(to, url.QueryEscape(subA.SessionIndex)) {
			t.Errorf("LogoutSSO named the old IdP's subject %+v to %s", subA, to)
		}
	}
	if _, err := s.principalOf(t, aliceB); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("Alice's session after LogoutSSO: %v", err)
	}

	// Bob, who signed in through the new IdP, is logged out there too,
	// by the subject it gave him.
	_, bob = s.ssoUser(t, "bob", "bob@corp.example")
	subB, err = s.stores.SSO.Subjects.Subject(ctx, tenantID, bob.UserID, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	to, err = s.g.LogoutSSO(ctx, bob, "/bye")
	if err != nil || !strings.HasPrefix(to, s.idpURL+"/") {
		t.Fatalf("LogoutSSO of the new IdP's user = %q, %v; want a redirect to %s", to, err, s.idpURL)
	}
	if lr := logoutRequestOf(t, to); lr.NameID == nil || lr.NameID.Value != subB.NameID || lr.SessionIndex == nil || lr.SessionIndex.Value != subB.SessionIndex {
		t.Errorf("LogoutRequest to the new IdP names %+v (session %+v), want %+v", lr.NameID, lr.SessionIndex, subB)
	}
}

// TestSingleLogoutSubjectWithoutIdP: a subject kept before Guard recorded
// the IdP (as an upgraded store returns it) belongs to no IdP: the
// tenant's IdP's LogoutRequest for its NameID ends nothing, and the
// user's logout from Guard is local only, naming it to no IdP.
func TestSingleLogoutSubjectWithoutIdP(t *testing.T) {
	s := newSSOSite(t)
	ctx := t.Context()
	b, p := s.ssoUser(t, "carol", "carol@corp.example")
	legacy := sso.Subject{Tenant: tenantID, UserID: p.UserID, NameID: "00u-carol", NameIDFormat: persistentFormat, SessionIndex: "_s1",
		Expires: time.Now().Add(time.Hour)}
	if err := s.stores.SSO.Subjects.PutSubject(ctx, legacy, time.Now()); err != nil {
		t.Fatal(err)
	}
	key, cert := keyPair(t, "idp")
	if _, err := s.g.HandleSLO(ctx, tenantID, s.logoutFrom(t, s.idpURL+"/metadata", key, cert, "id-lo-legacy", "00u-carol")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.principalOf(t, b); err != nil {
		t.Errorf("session after a LogoutRequest for a subject without an IdP: %v", err)
	}
	if to, err := s.g.LogoutSSO(ctx, p, "/bye"); err != nil || to != "" {
		t.Errorf("LogoutSSO with a subject without an IdP = %q, %v; want a local logout only", to, err)
	}
	if _, err := s.principalOf(t, b); !errors.Is(err, guard.ErrUnauthenticated) {
		t.Errorf("session after LogoutSSO: %v", err)
	}
}
