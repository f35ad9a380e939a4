package sso

import (
	"bytes"
	"compress/flate"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	dsig "github.com/russellhaering/goxmldsig"
)

func sloPost(field string, el *etree.Element, relay string) *http.Request {
	body := formPost(field, base64.StdEncoding.EncodeToString(serialize(el)), "RelayState", relay)
	r := httptest.NewRequest(http.MethodPost, spSLOURL, strings.NewReader(body))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return r
}

// logoutResponse is the IdP's signed answer to the LogoutRequest id.
func logoutResponse(k testKeys, id, status string, signed bool) *etree.Element {
	r := &saml.LogoutResponse{
		ID: "id-lr-" + id, InResponseTo: id, Version: "2.0", IssueInstant: t0, Destination: spSLOURL,
		Issuer: &saml.Issuer{Value: idpEntityID}, Status: saml.Status{StatusCode: saml.StatusCode{Value: status}},
	}
	el := r.Element()
	if signed {
		el = sign(el, &k.idp, dsig.RSASHA256SignatureMethod)
	}
	return el
}

func TestSPInitiatedLogout(t *testing.T) {
	e := newEnv(t, nil)
	lo, err := e.p.StartLogout(t.Context(), tenant, LogoutOptions{
		NameID: "alice@corp.example", NameIDFormat: string(saml.EmailAddressNameIDFormat), SessionIndex: "session-index-0001", ReturnTo: "/bye"})
	if err != nil {
		t.Fatal(err)
	}
	u, _ := url.Parse(lo.RedirectURL)
	if u.Scheme+"://"+u.Host+u.Path != idpSLOURL || u.Query().Get("RelayState") != lo.RelayState {
		t.Errorf("redirect = %s", lo.RedirectURL)
	}
	verifyQuerySignature(t, u, "SAMLRequest", &e.k.sp.key.PublicKey)
	var lr saml.LogoutRequest
	if err := xml.Unmarshal(inflate(t, u.Query().Get("SAMLRequest")), &lr); err != nil {
		t.Fatal(err)
	}
	if lr.ID != lo.RequestID || lr.NameID == nil || lr.NameID.Value != "alice@corp.example" ||
		lr.NameID.Format != string(saml.EmailAddressNameIDFormat) || lr.SessionIndex == nil ||
		lr.SessionIndex.Value != "session-index-0001" || lr.Destination != idpSLOURL || lr.Issuer.Value != spEntityID {
		t.Errorf("LogoutRequest = %+v", lr)
	}

	// Unsigned and failed answers are refused, and leave the request.
	_, err = e.p.SLO(t.Context(), tenant, sloPost("SAMLResponse", logoutResponse(e.k, lo.RequestID, saml.StatusSuccess, false), lo.RelayState))
	if !errors.Is(err, ErrRejected) {
		t.Errorf("unsigned LogoutResponse: %v", err)
	}
	_, err = e.p.SLO(t.Context(), tenant, sloPost("SAMLResponse", logoutResponse(e.k, lo.RequestID, "urn:oasis:names:tc:SAML:2.0:status:Responder", true), lo.RelayState))
	wantReason(t, err, ReasonLogoutStatus)
	_, err = e.p.SLO(t.Context(), tenant, sloPost("SAMLResponse", logoutResponse(e.k, "id-other", saml.StatusSuccess, true), lo.RelayState))
	wantReason(t, err, ReasonRequestUnknown)

	res, err := e.p.SLO(t.Context(), tenant, sloPost("SAMLResponse", logoutResponse(e.k, lo.RequestID, saml.StatusSuccess, true), lo.RelayState))
	if err != nil {
		t.Fatal(err)
	}
	if res.ReturnTo != "/bye" || res.Request != nil {
		t.Errorf("SLO = %+v", res)
	}
	_, err = e.p.SLO(t.Context(), tenant, sloPost("SAMLResponse", logoutResponse(e.k, lo.RequestID, saml.StatusSuccess, true), lo.RelayState))
	wantReason(t, err, ReasonRequestUnknown)
}

func TestStartLogoutErrors(t *testing.T) {
	e := newEnv(t, func(c *Connection) {
		c.Metadata = strings.Replace(idpMetadata(time.Time{}, keys.idp.cert), "SingleLogoutService", "ManageNameIDService", 2)
	})
	if _, err := e.p.StartLogout(t.Context(), tenant, LogoutOptions{NameID: "a"}); !errors.Is(err, ErrNoLogout) {
		t.Errorf("no SLO endpoint: %v", err)
	}
	var in *InputError
	for _, o := range []LogoutOptions{{}, {NameID: " a"}, {NameID: "a", ReturnTo: "//evil"}, {NameID: "a", SessionIndex: "x\ny"},
		{NameID: "a", IdP: idpEntityID + strings.Repeat("x", MaxEntityIDBytes)}} {
		if _, err := e.p.StartLogout(t.Context(), tenant, o); !errors.As(err, &in) {
			t.Errorf("StartLogout(%+v) = %v, want an *InputError", o, err)
		}
	}
}

// A subject is named only to the IdP that issued it: StartLogout with
// another IdP than the tenant's (one it has replaced) returns ErrOtherIdP
// and no redirect; with the tenant's own, it sends and tracks the
// request.
func TestStartLogoutOtherIdP(t *testing.T) {
	e := newEnv(t, nil)
	for _, other := range []string{"https://old-idp.example/metadata", strings.ToUpper(idpEntityID), idpEntityID + "/"} {
		lo, err := e.p.StartLogout(t.Context(), tenant, LogoutOptions{NameID: "00u-alice", SessionIndex: "_s1", IdP: other})
		if !errors.Is(err, ErrOtherIdP) || lo != nil {
			t.Errorf("StartLogout for a subject of %s = %+v, %v; want ErrOtherIdP", other, lo, err)
		}
	}
	lo, err := e.p.StartLogout(t.Context(), tenant, LogoutOptions{NameID: "00u-alice", SessionIndex: "_s1", IdP: idpEntityID})
	if err != nil || lo.RedirectURL == "" {
		t.Fatalf("StartLogout for a subject of the tenant's IdP = %+v, %v", lo, err)
	}
	if _, err := e.st.ConsumeRequest(t.Context(), tenant, lo.RequestID, t0); err != nil {
		t.Errorf("the LogoutRequest sent is not tracked: %v", err)
	}
}

func TestIdPInitiatedLogout(t *testing.T) {
	e := newEnv(t, nil)
	req := func(id string, signed bool) *etree.Element {
		lr := &saml.LogoutRequest{
			ID: id, Version: "2.0", IssueInstant: t0, Destination: spSLOURL, Issuer: &saml.Issuer{Value: idpEntityID},
			NameID:       &saml.NameID{Value: "alice@corp.example", Format: string(saml.EmailAddressNameIDFormat)},
			SessionIndex: &saml.SessionIndex{Value: "session-index-0001"},
		}
		el := lr.Element()
		if signed {
			el = sign(el, &e.k.idp, dsig.RSASHA256SignatureMethod)
		}
		return el
	}
	_, err := e.p.SLO(t.Context(), tenant, sloPost("SAMLRequest", req("id-lo-1", false), "idp-relay"))
	if !errors.Is(err, ErrRejected) {
		t.Errorf("unsigned LogoutRequest: %v", err)
	}
	res, err := e.p.SLO(t.Context(), tenant, sloPost("SAMLRequest", req("id-lo-1", true), "idp-relay"))
	if err != nil {
		t.Fatal(err)
	}
	if res.Request == nil || res.Request.IdP != idpEntityID || res.Request.NameID != "alice@corp.example" || len(res.Request.SessionIndexes) != 1 ||
		res.Request.SessionIndexes[0] != "session-index-0001" || res.ReturnTo != "" {
		t.Fatalf("SLO = %+v", res)
	}
	u, _ := url.Parse(res.RedirectURL)
	if u.Scheme+"://"+u.Host+u.Path != idpSLOURL || u.Query().Get("RelayState") != "idp-relay" {
		t.Errorf("LogoutResponse redirect = %s", res.RedirectURL)
	}
	verifyQuerySignature(t, u, "SAMLResponse", &e.k.sp.key.PublicKey)
	var resp saml.LogoutResponse
	if err := xml.Unmarshal(inflate(t, u.Query().Get("SAMLResponse")), &resp); err != nil {
		t.Fatal(err)
	}
	if resp.InResponseTo != "id-lo-1" || resp.Status.StatusCode.Value != saml.StatusSuccess {
		t.Errorf("LogoutResponse = %+v", resp)
	}
	_, err = e.p.SLO(t.Context(), tenant, sloPost("SAMLRequest", req("id-lo-1", true), "idp-relay"))
	wantReason(t, err, ReasonReplayed)

	_, err = e.p.SLO(t.Context(), tenant, httptest.NewRequest(http.MethodGet, spSLOURL, nil))
	wantReason(t, err, ReasonMalformed)
	_, err = e.p.SLO(t.Context(), "nobody", httptest.NewRequest(http.MethodGet, spSLOURL, nil))
	wantReason(t, err, ReasonNotConfigured)
}

// An IdP's LogoutRequest meets the lexical rules of every other message
// (SECURITY-CHECKLIST SAML-26, SAML-53): a DOCTYPE, another directive or a
// comment is refused before the XML is parsed, with either binding, even
// in a request signed by the IdP, and its ID is not used up.
func TestIdPLogoutRequestLexical(t *testing.T) {
	e := newEnv(t, nil)
	lr := &saml.LogoutRequest{
		ID: "id-lo-lex", Version: "2.0", IssueInstant: t0, Destination: spSLOURL, Issuer: &saml.Issuer{Value: idpEntityID},
		NameID: &saml.NameID{Value: "alice@corp.example", Format: string(saml.EmailAddressNameIDFormat)},
	}
	signed := serialize(sign(lr.Element(), &e.k.idp, dsig.RSASHA256SignatureMethod))
	post := func(raw []byte) *http.Request {
		body := formPost("SAMLRequest", base64.StdEncoding.EncodeToString(raw), "RelayState", "r")
		r := httptest.NewRequest(http.MethodPost, spSLOURL, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return r
	}
	get := func(raw []byte) *http.Request {
		var b bytes.Buffer
		w, _ := flate.NewWriter(&b, flate.DefaultCompression)
		w.Write(raw)
		w.Close()
		return httptest.NewRequest(http.MethodGet, spSLOURL+"?"+url.Values{"SAMLRequest": {base64.StdEncoding.EncodeToString(b.Bytes())}}.Encode(), nil)
	}
	withComment := bytes.Replace(signed, []byte("alice@corp.example"), []byte("alice<!-- x -->@corp.example"), 1)
	for _, c := range []struct {
		name string
		raw  []byte
		want Reason
	}{
		{"Doctype", append([]byte(`<!DOCTYPE x [<!ENTITY e "y">]>`), signed...), ReasonDoctype},
		{"Comment", withComment, ReasonComment},
	} {
		for bind, build := range map[string]func([]byte) *http.Request{"POST": post, "Redirect": get} {
			t.Run(c.name+"/"+bind, func(t *testing.T) {
				_, err := e.p.SLO(t.Context(), tenant, build(c.raw))
				wantReason(t, err, c.want)
			})
		}
	}
	// The refused messages did not use up the request's ID.
	if _, err := e.p.SLO(t.Context(), tenant, post(signed)); err != nil {
		t.Errorf("the signed LogoutRequest after the refused ones: %v", err)
	}
}

// On a POST, the lexical rules apply to the LogoutResponse crewjam/saml
// verifies, which is the URL query's when the query carries one, and
// not to the form's (TestAuditSAML_SLOPostQueryMessageSkipsLexicalRules
// has the LogoutRequest). A mixed request whose query message is clean
// is read as crewjam reads it, with the query's RelayState.
func TestLogoutResponseLexicalQueryOnPost(t *testing.T) {
	e := newEnv(t, nil)
	lo, err := e.p.StartLogout(t.Context(), tenant, LogoutOptions{NameID: "alice@corp.example", ReturnTo: "/bye"})
	if err != nil {
		t.Fatal(err)
	}
	signed := serialize(logoutResponse(e.k, lo.RequestID, saml.StatusSuccess, true))
	withComment := bytes.Replace(signed, []byte("</saml:Issuer>"), []byte("</saml:Issuer><!-- x -->"), 1)
	if bytes.Equal(withComment, signed) {
		t.Fatal("no Issuer to put the comment after")
	}
	mixed := func(query []byte, relay string) *http.Request {
		var b bytes.Buffer
		w, _ := flate.NewWriter(&b, flate.DefaultCompression)
		w.Write(query)
		w.Close()
		q := url.Values{"SAMLResponse": {base64.StdEncoding.EncodeToString(b.Bytes())}, "RelayState": {relay}}.Encode()
		body := formPost("SAMLResponse", base64.StdEncoding.EncodeToString([]byte(`<x InResponseTo="`+lo.RequestID+`"/>`)), "RelayState", lo.RelayState)
		r := httptest.NewRequest(http.MethodPost, spSLOURL+"?"+q, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return r
	}
	_, err = e.p.SLO(t.Context(), tenant, mixed(withComment, lo.RelayState))
	wantReason(t, err, ReasonComment)
	_, err = e.p.SLO(t.Context(), tenant, mixed(signed, "other"))
	wantReason(t, err, ReasonRelayStateMismatch)
}

// A LogoutRequest's ID is kept one skew past the last instant crewjam
// accepts it (TestAuditSAML_LogoutRequestReplayAtIssueDeadline replays it
// at that instant), as an assertion's is (TestReplayUntil).
func TestLogoutRequestReplayUntil(t *testing.T) {
	e := newEnv(t, nil)
	lr := &saml.LogoutRequest{ID: "id-lo-until", Version: "2.0", IssueInstant: t0, Destination: spSLOURL,
		Issuer: &saml.Issuer{Value: idpEntityID}, NameID: &saml.NameID{Value: "alice@corp.example"}}
	if _, err := e.p.SLO(t.Context(), tenant, sloPost("SAMLRequest", sign(lr.Element(), &e.k.idp, dsig.RSASHA256SignatureMethod), "r")); err != nil {
		t.Fatal(err)
	}
	until, ok := e.st.replay[[2]string{tenant, "LogoutRequest:id-lo-until"}]
	if want := t0.Add(saml.MaxIssueDelay + DefaultClockSkew); !ok || !until.Equal(want) {
		t.Errorf("replay record until %v (recorded %t), want %v", until, ok, want)
	}
}
