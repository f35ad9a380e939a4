package sso

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
)

// An assertion the IdP issued unsolicited (its signed bearer
// SubjectConfirmationData carries no InResponseTo) must not become a
// solicited one because the unsigned Response around it names a tracked
// request: the Response's InResponseTo is not covered by any signature
// here, so anyone holding such an assertion (one the ACS refused as
// unsolicited, which left its ID out of the ReplayCache) can wrap it in a
// Response naming his own login request and sign in as its subject, with
// IdP-initiated login off (SECURITY-CHECKLIST SAML-41; SAML profiles
// §4.1.4.2: the bearer SubjectConfirmationData of a response to an
// AuthnRequest MUST carry its InResponseTo).
func TestAuditSAML_UnsignedResponseInResponseToMakesUnsolicitedSolicited(t *testing.T) {
	k := loadKeys(t)
	e := newEnv(t, nil) // IdP-initiated login off (the default)

	signed := spec{signAssertion: true, noInResponseTo: true}.assertion(k)
	// First delivery, as the IdP sent it: refused as unsolicited.
	_, err := e.post(serialize(spec{noInResponseTo: true}.response(k, signed.Copy())), "")
	wantReason(t, err, ReasonUnsolicited)

	// The same signed assertion, in an unsigned Response whose
	// InResponseTo names the attacker's own tracked request.
	e.track(requestID, relayState)
	res, err := e.post(serialize(spec{}.response(k, signed)), relayState)
	if err == nil {
		t.Fatalf("an unsolicited assertion was accepted as the answer to request %q (signed in as %q); want a rejection (unsolicited or request mismatch)", res.RequestID, res.Email)
	}
}

// The lexical rules (no DOCTYPE, directive or comment) must apply to the
// LogoutRequest crewjam/saml reads, not to another one: on a POST, SLO
// checks the SAMLRequest of the body, but crewjam's ValidateLogoutRequest
// reads the SAMLRequest of the URL's query first when there is one (as an
// HTTP-Redirect message). A POST whose query carries a signed
// LogoutRequest with a comment in its NameID, and whose body carries any
// clean document, is accepted: the comment rule, and the DOCTYPE rule
// likewise, are bypassed (TestIdPLogoutRequestLexical's claim "with either
// binding"; SECURITY-CHECKLIST SAML-26/53: "both pass round-trip
// validation", ASVS5 1.5.3: parsers of the same data agree).
func TestAuditSAML_SLOPostQueryMessageSkipsLexicalRules(t *testing.T) {
	e := newEnv(t, nil)
	signed := serialize(auditLogoutRequest(e.k, "id-lo-audit"))
	withComment := bytes.Replace(signed, []byte("alice@corp.example"), []byte("alice<!-- x -->@corp.example"), 1)

	var b bytes.Buffer
	w, _ := flate.NewWriter(&b, flate.DefaultCompression)
	w.Write(withComment)
	w.Close()
	query := url.Values{"SAMLRequest": {base64.StdEncoding.EncodeToString(b.Bytes())}}.Encode()
	body := formPost("SAMLRequest", base64.StdEncoding.EncodeToString([]byte(`<x/>`)), "RelayState", "r")
	r := httptest.NewRequest(http.MethodPost, spSLOURL+"?"+query, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")

	res, err := e.p.SLO(t.Context(), tenant, r)
	if err == nil {
		t.Fatalf("a LogoutRequest with a comment in its NameID was accepted (NameID %q); want a rejection", res.Request.NameID)
	}
	wantReason(t, err, ReasonComment)
}

// A LogoutRequest accepted once is refused again for as long as crewjam
// would accept it (SLO's doc: "a LogoutRequest's ID goes into the
// ReplayCache"; SECURITY-CHECKLIST SAML-34: consumed IDs kept until the
// message can no longer be accepted). crewjam accepts a LogoutRequest up
// to and including IssueInstant plus MaxIssueDelay, and records its ID
// until exactly that instant; the ReplayCache contract counts a record
// whose until is at or before now as absent. So at that instant the same
// signed LogoutRequest is accepted twice: the ID is kept for no time at
// all. (The assertion path adds the skew to its until; this one adds
// nothing.)
func TestAuditSAML_LogoutRequestReplayAtIssueDeadline(t *testing.T) {
	e := newEnv(t, nil)
	el := auditLogoutRequest(e.k, "id-lo-deadline")
	e.clock.Set(t0.Add(saml.MaxIssueDelay))
	if _, err := e.p.SLO(t.Context(), tenant, sloPost("SAMLRequest", el.Copy(), "r")); err != nil {
		t.Fatalf("first delivery at IssueInstant+MaxIssueDelay: %v (crewjam accepts it up to and including that instant)", err)
	}
	_, err := e.p.SLO(t.Context(), tenant, sloPost("SAMLRequest", el.Copy(), "r"))
	wantReason(t, err, ReasonReplayed)
}

// auditLogoutRequest is a LogoutRequest from the fixture IdP for alice,
// issued at t0, with an enveloped signature.
func auditLogoutRequest(k testKeys, id string) *etree.Element {
	lr := &saml.LogoutRequest{ID: id, Version: "2.0", IssueInstant: t0, Destination: spSLOURL,
		Issuer: &saml.Issuer{Value: idpEntityID}, NameID: &saml.NameID{Value: "alice@corp.example"}}
	return sign(lr.Element(), &k.idp, dsig.RSASHA256SignatureMethod)
}
