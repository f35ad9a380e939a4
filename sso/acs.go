package sso

import (
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"io"
	"mime"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
)

// Result is a verified login: who the IdP says the user is, and what the
// facade needs to find or create the user, open the session and
// redirect.
type Result struct {
	Tenant      string
	IdPEntityID string
	// NameID and NameIDFormat identify the user at the IdP, exactly as
	// sent (case preserved). Keep them with the session for single logout.
	NameID       string
	NameIDFormat string
	// SessionIndex is the IdP's session (for single logout), from the
	// first AuthnStatement; "" if none.
	SessionIndex string
	// SessionNotOnOrAfter, if not zero, is when the IdP wants the session
	// to end, the earliest of all the AuthnStatements: Guard's session
	// must not outlive it.
	SessionNotOnOrAfter time.Time
	// AuthnInstant is when the user authenticated at the IdP (the oldest
	// AuthnInstant of all the AuthnStatements, zero if one has none), and
	// AuthnContext how (an AuthnContextClassRef, at most 256 bytes,
	// control characters replaced: for the audit event; the first
	// statement's, or, if MFA is false only because of a later statement,
	// that statement's).
	AuthnInstant time.Time
	AuthnContext string
	// MFA reports whether the AuthnContextClassRef of every AuthnStatement
	// is one of the connection's MFAAuthnContexts: the IdP says the user
	// signed in with more than one factor. It says how the user
	// authenticated, not when (see AuthnInstant).
	MFA         bool
	AssertionID string

	// Email is the canonical email (trimmed, lower case, NFC, a plain
	// addr-spec), always set. Name is the display name, or "" if the IdP
	// sent none that is acceptable.
	Email string
	Name  string
	// Groups are the IdP's group values (at most 1000), and Roles the
	// Guard role names they map to through Connection.GroupRoles (or
	// DefaultRole), sorted, without duplicates.
	Groups []string
	Roles  []string
	// JIT and SyncRoles are copied from the connection.
	JIT       bool
	SyncRoles bool

	// IdPInitiated is true for an unsolicited response (no InResponseTo).
	IdPInitiated bool
	// RequestID is the ID of the AuthnRequest answered, "" for an
	// unsolicited response.
	RequestID string
	// Bound reports whether the AuthnRequest answered was started with a
	// browser binding (LoginOptions.Binding), which the binding given to
	// ACS matched: whatever the host committed in the binding at the
	// start came back from the browser that started the login.
	Bound bool
	// ReturnTo is where to send the browser: the tracked request's return
	// path, or, for an unsolicited response, its RelayState if it passes
	// SafeRedirect, else Config.DefaultReturnTo.
	ReturnTo string
}

// ACS processes a POST to tenant's assertion consumer service: the
// HTTP-POST binding, form fields SAMLResponse and RelayState. The body is
// read up to Config.MaxBodyBytes. binding is the value of the browser
// binding cookie (see LoginOptions.Binding), or "".
//
// See ParseResponse for what is checked. Every rejection is a
// *RejectError (errors.Is(err, ErrRejected)); any other error is a store
// failure, and the login must fail closed.
func (p *Provider) ACS(ctx context.Context, tenant string, r *http.Request, binding string) (*Result, error) {
	if r.Method != http.MethodPost {
		return nil, reject(ReasonMalformed, "method is not POST", nil)
	}
	if ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || ct != "application/x-www-form-urlencoded" {
		return nil, reject(ReasonMalformed, "content type is not a urlencoded form", nil)
	}
	if r.ContentLength > p.cfg.MaxBodyBytes {
		return nil, reject(ReasonBodyTooLarge, "", nil)
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, p.cfg.MaxBodyBytes+1))
	if err != nil {
		return nil, reject(ReasonMalformed, "reading the body failed", err)
	}
	if int64(len(body)) > p.cfg.MaxBodyBytes {
		return nil, reject(ReasonBodyTooLarge, "", nil)
	}
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, reject(ReasonMalformed, "the form cannot be parsed", err)
	}
	if form.Has("SAMLart") || form.Has("SigAlg") || form.Has("Signature") {
		return nil, reject(ReasonUnsupportedBinding, "only the HTTP-POST binding is accepted", nil)
	}
	if len(form["SAMLResponse"]) != 1 || len(form["RelayState"]) > 1 {
		return nil, reject(ReasonMalformed, "expected one SAMLResponse and at most one RelayState", nil)
	}
	return p.ParseResponse(ctx, tenant, form.Get("SAMLResponse"), form.Get("RelayState"), binding)
}

// ParseResponse checks a SAMLResponse (base64, as posted) for tenant and
// returns the verified login. In order:
//
//   - size, base64, no DOCTYPE or other directive, no comment or
//     processing instruction, depth and element limits;
//   - a samlp:Response root with status Success, exactly one Assertion or
//     EncryptedAssertion, directly under the Response, no two elements with
//     the same ID, signatures only on the Response and the Assertion, at
//     least one of them signed, no SHA-1 (unless the connection allows
//     it), no transforms beyond enveloped-signature and C14N, no RSA
//     PKCS#1 v1.5 key transport, no CBC content encryption (unless the
//     connection allows it, and then only in a signed Response);
//   - an EncryptedAssertion decrypted, and its plaintext given the same
//     checks: no directive, comment or processing instruction, the limits,
//     one saml:Assertion with an ID, IDs unique across the Response and
//     the plaintext, a signature only on that assertion, without SHA-1 or
//     other transforms, and the Response or the assertion signed (for a
//     CBC-encrypted assertion, only after crewjam/saml has verified the
//     Response's signature);
//   - Destination present and equal to the ACS URL, Issuer equal to the
//     IdP's entity ID;
//   - crewjam/saml's ParseXMLResponse, with only the connection's IdP
//     certificates (certificates in the message are never trusted),
//     audience required and equal to the SP entity ID;
//   - then, on the verified assertion: an ID, a well-formed NameID, every
//     SubjectConfirmation bearer with Recipient equal to the ACS URL,
//     NotBefore/NotOnOrAfter/IssueInstant within the connection's skew;
//   - attribute mapping: an email (in AllowedDomains, if set), name,
//     groups and roles;
//   - InResponseTo: every non-empty one must name the same tracked request,
//     which is consumed (once, atomically), and whose RelayState and
//     browser binding must match; the Response's counts only if the
//     Response is signed or the assertion's bearer confirmation carries the
//     same value (an unsigned Response's alone is refused); without one,
//     only if the tenant allows IdP-initiated login;
//   - the assertion ID is inserted in the ReplayCache until the assertion
//     can no longer be accepted (NotOnOrAfter plus skew): a second
//     delivery, by anyone, is refused. The ID of an assertion refused
//     because it answers no request (above) is inserted too.
//
// Errors are as for ACS.
func (p *Provider) ParseResponse(ctx context.Context, tenant, samlResponse, relayState, binding string) (*Result, error) {
	if err := checkTenant(tenant); err != nil {
		return nil, reject(ReasonNotConfigured, "unacceptable tenant", err)
	}
	if int64(len(samlResponse)) > p.cfg.MaxBodyBytes {
		return nil, reject(ReasonBodyTooLarge, "", nil)
	}
	data, err := base64.StdEncoding.DecodeString(samlResponse)
	if err != nil || len(data) == 0 {
		return nil, reject(ReasonMalformed, "SAMLResponse is not base64", err)
	}
	comp, err := p.connection(ctx, tenant)
	if errors.Is(err, ErrNotFound) {
		return nil, reject(ReasonNotConfigured, "the tenant has no IdP connection", err)
	}
	if err != nil {
		return nil, err
	}
	now := p.cfg.Now()
	if rej := comp.usable(now); rej != nil {
		return nil, rej
	}
	sc, rej := prescan(data, comp)
	if rej != nil {
		return nil, rej
	}
	sp := comp.spAt(now)
	assertion, err := sp.ParseXMLResponse(data, sc.requestIDs(), comp.acsURL)
	if err != nil {
		return nil, classifySAML(err)
	}
	if sc.pending != nil {
		if rej := sc.decrypted(sc.pending, comp); rej != nil {
			return nil, rej
		}
	}
	res, irts, rej := comp.check(assertion, now)
	if rej != nil {
		return nil, rej
	}
	if rej := comp.mapAttributes(assertion, res); rej != nil {
		return nil, rej
	}

	// InResponseTo: every value carried, in the Response and in the
	// verified assertion, must name one tracked request. The assertion's
	// bearer values are signed (by the assertion or the Response around
	// it), the Response's own only if the Response is: an unsigned
	// Response's InResponseTo counts only as a copy of the assertion's.
	// On its own it would let anyone wrap an unsolicited assertion in a
	// Response naming his own tracked request and sign in as its subject
	// (SAML profiles §4.1.4.2: the bearer SubjectConfirmationData of a
	// response to an AuthnRequest carries the request's ID).
	if irt := sc.responseIRT; irt != "" && !slices.Contains(irts, irt) {
		if !sc.rootSigned {
			return nil, p.spend(ctx, tenant, comp, assertion, now,
				reject(ReasonRequestMismatch, "the unsigned Response's InResponseTo is not the assertion's", nil))
		}
		irts = append(irts, irt)
	}
	switch {
	case len(irts) > 1:
		return nil, reject(ReasonRequestMismatch, "the InResponseTo values differ", nil)
	case len(irts) == 1:
		req, err := p.cfg.Stores.Requests.ConsumeRequest(ctx, tenant, irts[0], now)
		if errors.Is(err, ErrNotFound) {
			return nil, reject(ReasonRequestUnknown, "InResponseTo names no tracked request", nil)
		}
		if err != nil {
			return nil, storeErr("consume request", err)
		}
		if req.Kind != KindLogin {
			return nil, reject(ReasonRequestUnknown, "InResponseTo names a logout request", nil)
		}
		if subtle.ConstantTimeCompare([]byte(req.RelayState), []byte(relayState)) != 1 {
			return nil, reject(ReasonRelayStateMismatch, "", nil)
		}
		if req.Binding != "" && subtle.ConstantTimeCompare([]byte(req.Binding), []byte(bindingHash(binding))) != 1 {
			return nil, reject(ReasonBindingMismatch, "", nil)
		}
		res.RequestID = req.ID
		res.Bound = req.Binding != ""
		res.ReturnTo = req.ReturnTo
		if !SafeRedirect(res.ReturnTo) {
			res.ReturnTo = p.cfg.DefaultReturnTo
		}
	default:
		if !comp.conn.IdPInitiated {
			return nil, p.spend(ctx, tenant, comp, assertion, now,
				reject(ReasonUnsolicited, "no InResponseTo, and IdP-initiated login is off", nil))
		}
		res.IdPInitiated = true
		res.ReturnTo = p.cfg.DefaultReturnTo
		if SafeRedirect(relayState) {
			res.ReturnTo = relayState
		}
	}

	isNew, err := p.cfg.Stores.Replay.InsertID(ctx, tenant, assertion.ID, comp.replayUntil(assertion), now)
	if err != nil {
		return nil, storeErr("insert assertion ID", err)
	}
	if !isNew {
		return nil, reject(ReasonReplayed, "", nil)
	}
	return res, nil
}

// spend records the ID of a verified assertion that is refused for want
// of a request it answers in the ReplayCache, as an accepted one's would
// be, and returns rej: the assertion cannot be accepted later in another
// wrapper, or once the tenant allows IdP-initiated login. Only the IdP
// can make a verified assertion, so a refused one spends no ID but its
// own. A store failure is returned instead of rej (fail closed either
// way).
func (p *Provider) spend(ctx context.Context, tenant string, comp *compiled, a *saml.Assertion, now time.Time, rej *RejectError) error {
	if _, err := p.cfg.Stores.Replay.InsertID(ctx, tenant, a.ID, comp.replayUntil(a), now); err != nil {
		return storeErr("insert assertion ID", err)
	}
	return rej
}

// scan is what prescan read from the raw response (and the plaintext of
// its encrypted assertion).
type scan struct {
	responseIRT string
	scdIRTs     []string

	walk       walker
	rootSigned bool // the Response carries a Signature
	// pending is a CBC-encrypted assertion (Connection.AllowCBC), whose
	// plaintext is checked only once crewjam has verified the Response's
	// signature: see prescan.
	pending *etree.Element
}

// requestIDs are the InResponseTo values of the raw document, handed to
// crewjam as "possible" IDs so that it checks the Response's and the
// assertion's agree; ParseResponse then consumes the request they name.
func (s *scan) requestIDs() []string {
	ids := make([]string, 0, 1+len(s.scdIRTs))
	if s.responseIRT != "" {
		ids = append(ids, s.responseIRT)
	}
	for _, id := range s.scdIRTs {
		if id != "" && !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// check applies Guard's checks to the assertion crewjam verified and
// returns the start of the result and the InResponseTo values of its
// bearer confirmations.
func (comp *compiled) check(a *saml.Assertion, now time.Time) (*Result, []string, *RejectError) {
	skew := comp.skew
	if a.ID == "" {
		return nil, nil, reject(ReasonAssertionIDMissing, "", nil)
	}
	if a.Issuer.Value != comp.idp.EntityID {
		return nil, nil, reject(ReasonIssuer, "assertion Issuer is not the IdP entity ID", nil)
	}
	if a.IssueInstant.Add(-skew).After(now) {
		return nil, nil, reject(ReasonNotYetValid, "assertion IssueInstant is in the future", nil)
	}
	if a.Subject == nil || a.Subject.NameID == nil {
		return nil, nil, reject(ReasonMissingElement, "assertion has no NameID", nil)
	}
	if r := checkNameID(a.Subject.NameID.Value); r != "" {
		return nil, nil, reject(ReasonNameIDInvalid, r, nil)
	}
	var irts []string
	for _, sc := range a.Subject.SubjectConfirmations {
		d := sc.SubjectConfirmationData
		switch {
		case sc.Method != "urn:oasis:names:tc:SAML:2.0:cm:bearer":
			return nil, nil, reject(ReasonSubjectConfirmation, "a SubjectConfirmation is not bearer", nil)
		case d == nil || d.NotOnOrAfter.IsZero():
			return nil, nil, reject(ReasonSubjectConfirmation, "a bearer SubjectConfirmation has no NotOnOrAfter", nil)
		case d.Recipient != comp.urls.ACSURL:
			return nil, nil, reject(ReasonRecipient, "SubjectConfirmationData Recipient is not the ACS URL", nil)
		case !now.Before(d.NotOnOrAfter.Add(skew)):
			return nil, nil, reject(ReasonExpired, "SubjectConfirmationData NotOnOrAfter has passed", nil)
		case d.NotBefore.Add(-skew).After(now):
			return nil, nil, reject(ReasonNotYetValid, "SubjectConfirmationData NotBefore is in the future", nil)
		}
		if d.InResponseTo != "" && !slices.Contains(irts, d.InResponseTo) {
			irts = append(irts, d.InResponseTo)
		}
	}
	c := a.Conditions
	if c == nil {
		return nil, nil, reject(ReasonMissingElement, "assertion has no Conditions", nil)
	}
	if c.NotBefore.Add(-skew).After(now) {
		return nil, nil, reject(ReasonNotYetValid, "Conditions NotBefore is in the future", nil)
	}
	if !c.NotOnOrAfter.IsZero() && !now.Before(c.NotOnOrAfter.Add(skew)) {
		return nil, nil, reject(ReasonExpired, "Conditions NotOnOrAfter has passed", nil)
	}
	res := &Result{
		Tenant:       comp.conn.Tenant,
		IdPEntityID:  comp.idp.EntityID,
		NameID:       a.Subject.NameID.Value,
		NameIDFormat: a.Subject.NameID.Format,
		AssertionID:  a.ID,
		JIT:          comp.conn.JIT,
		SyncRoles:    comp.conn.SyncRoles,
	}
	// Every AuthnStatement counts, each the conservative way: the earliest
	// SessionNotOnOrAfter, the oldest AuthnInstant, and MFA only if every
	// statement names a multi-factor context.
	for i, s := range a.AuthnStatements {
		if i == 0 {
			res.SessionIndex = clean(s.SessionIndex, 256)
		}
		if i == 0 || s.AuthnInstant.Before(res.AuthnInstant) {
			res.AuthnInstant = s.AuthnInstant
		}
		if s.SessionNotOnOrAfter != nil {
			res.SessionNotOnOrAfter = earliest(res.SessionNotOnOrAfter, *s.SessionNotOnOrAfter)
		}
		var ref string
		if s.AuthnContext.AuthnContextClassRef != nil {
			ref = s.AuthnContext.AuthnContextClassRef.Value
		}
		mfa := comp.conn.mfaContext(ref)
		if i == 0 || res.MFA && !mfa {
			res.AuthnContext = clean(ref, 256)
		}
		res.MFA = (i == 0 || res.MFA) && mfa
	}
	return res, irts, nil
}

// replayUntil is how long the assertion's ID is kept: until no check
// would accept the assertion any more, on any replica. That is the
// earliest of IssueInstant plus crewjam's MaxIssueDelay and the
// NotOnOrAfter deadlines, each plus the larger of the two skews, plus the
// skew once more for replicas whose clocks differ.
func (comp *compiled) replayUntil(a *saml.Assertion) time.Time {
	skew := max(comp.skew, saml.MaxClockSkew)
	until := a.IssueInstant.Add(saml.MaxIssueDelay + skew)
	if a.Conditions != nil && !a.Conditions.NotOnOrAfter.IsZero() {
		until = earliest(until, a.Conditions.NotOnOrAfter.Add(skew))
	}
	var scd time.Time
	if a.Subject != nil {
		for _, sc := range a.Subject.SubjectConfirmations {
			if d := sc.SubjectConfirmationData; d != nil && d.NotOnOrAfter.After(scd) {
				scd = d.NotOnOrAfter
			}
		}
	}
	if !scd.IsZero() {
		until = earliest(until, scd.Add(skew))
	}
	return until.Add(comp.skew)
}

// checkNameID returns why a NameID value is unacceptable, or "".
func checkNameID(v string) string {
	switch {
	case v == "":
		return "NameID is empty"
	case len(v) > 512:
		return "NameID is longer than 512 bytes"
	case strings.TrimSpace(v) != v:
		return "NameID has surrounding white space"
	}
	if r := checkText(v, 512); r != "" {
		return "NameID " + r
	}
	return ""
}

// audienceError is returned by the audience hook given to crewjam.
type audienceError struct{ reason Reason }

func (e *audienceError) Error() string { return string(e.reason) }

// strictAudience requires at least one Audience, and every Audience of
// every AudienceRestriction to be entityID: an assertion also meant for
// another SP could be replayed by that SP.
func strictAudience(entityID string) func(*saml.Assertion) error {
	return func(a *saml.Assertion) error {
		n := 0
		for i := range a.Conditions.AudienceRestrictions {
			for _, v := range a.Conditions.AudienceRestrictions[i].AllAudiences() {
				n++
				if v.Value != entityID {
					return &audienceError{ReasonAudience}
				}
			}
		}
		if n == 0 {
			return &audienceError{ReasonAudienceMissing}
		}
		return nil
	}
}

// classifySAML turns an error of crewjam's ParseXMLResponse into a
// rejection with the most precise reason.
func classifySAML(err error) *RejectError {
	detail := err.Error()
	var ire *saml.InvalidResponseError
	if errors.As(err, &ire) && ire.PrivateErr != nil {
		detail = ire.PrivateErr.Error()
	}
	var aud *audienceError
	var status saml.ErrBadStatus
	var r Reason
	switch {
	case errors.As(err, &aud):
		r = aud.reason
	case errors.As(err, &status):
		r = ReasonIdPStatus
	case errors.Is(err, saml.ErrUntrustedCertificate):
		r = ReasonUntrustedCert
	case errors.Is(err, saml.ErrCertificateNotValidNow):
		r = ReasonCertificateExpired
	case errors.Is(err, saml.ErrInvalidSignature) && errors.Is(err, saml.ErrUnsupported):
		r = ReasonSHA1
	case errors.Is(err, saml.ErrDecryptionFailed):
		r = ReasonDecryption
	case errors.Is(err, saml.ErrInvalidSignature):
		if strings.Contains(detail, "RequireSignedResponseForCBC") {
			r = ReasonDecryption
		} else {
			r = ReasonSignature
		}
	case errors.Is(err, saml.ErrIssuerMismatch):
		r = ReasonIssuer
	case errors.Is(err, saml.ErrAudienceMismatch):
		r = ReasonAudience
	case errors.Is(err, saml.ErrDestinationMismatch):
		r = ReasonRecipient
	case errors.Is(err, saml.ErrExpired):
		r = ReasonExpired
	case errors.Is(err, saml.ErrNotYetValid):
		r = ReasonNotYetValid
	case errors.Is(err, saml.ErrRequestIDMismatch):
		r = ReasonRequestMismatch
	case errors.Is(err, saml.ErrMissingElement):
		r = ReasonMissingElement
	case errors.Is(err, saml.ErrUnsupported):
		r = ReasonUnsupported
	case errors.Is(err, saml.ErrMalformedMessage):
		r = ReasonMalformed
	case strings.Contains(detail, "signature element not present"):
		r = ReasonUnsigned
	default:
		r = ReasonInvalid
	}
	return reject(r, detail, err)
}
