package sso

import (
	"bytes"
	"compress/flate"
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
)

// LogoutOptions name the IdP session to end: the NameID, NameIDFormat and
// SessionIndex of the Result of the login.
type LogoutOptions struct {
	NameID       string
	NameIDFormat string
	SessionIndex string
	// IdP is the entity ID of the IdP that issued NameID and
	// SessionIndex (Result.IdPEntityID, Subject.IdP). StartLogout then
	// names them only to that IdP: if the tenant's IdP now has another
	// entity ID (the tenant replaced it), it sends nothing and returns
	// ErrOtherIdP. Leave it empty only for a NameID that is not an IdP's
	// own, such as the email address Guard knows the user by. At most
	// MaxEntityIDBytes.
	IdP string
	// ReturnTo is where to go once the IdP answers; "" means
	// Config.DefaultReturnTo. It must pass SafeRedirect.
	ReturnTo string
}

// Logout is a started SP-initiated single logout: send the browser to
// RedirectURL.
type Logout struct {
	RequestID   string
	RelayState  string
	Expires     time.Time
	RedirectURL string
}

// StartLogout starts an SP-initiated single logout: a LogoutRequest,
// signed with the SP key (HTTP-Redirect binding), for the IdP session
// opts names, tracked like a login request.
//
// The facade must end Guard's own session first, whatever happens next:
// the IdP may never answer. It returns ErrNoLogout if the IdP has no
// single logout endpoint (the local logout is then all there is),
// ErrOtherIdP if opts.IdP is not the tenant's IdP (nothing is sent),
// ErrNotFound if the tenant has no connection, an *InputError for an
// unacceptable argument, a *RejectError if the stored metadata cannot be
// used, and a wrapped error if a store fails.
func (p *Provider) StartLogout(ctx context.Context, tenant string, opts LogoutOptions) (*Logout, error) {
	if err := checkTenant(tenant); err != nil {
		return nil, err
	}
	if r := checkNameID(opts.NameID); r != "" {
		return nil, &InputError{Field: "NameID", Reason: "is empty, too long or has control characters"}
	}
	if checkText(opts.NameIDFormat, 256) != "" || checkText(opts.SessionIndex, 256) != "" {
		return nil, &InputError{Field: "SessionIndex", Reason: "is too long or has control characters"}
	}
	if len(opts.IdP) > MaxEntityIDBytes {
		return nil, &InputError{Field: "IdP", Reason: "is longer than 1024 bytes"}
	}
	returnTo := opts.ReturnTo
	if returnTo == "" {
		returnTo = p.cfg.DefaultReturnTo
	}
	if !SafeRedirect(returnTo) {
		return nil, &InputError{Field: "ReturnTo", Reason: "must be a relative path on this site"}
	}
	comp, err := p.connection(ctx, tenant)
	if err != nil {
		return nil, err
	}
	now := p.cfg.Now()
	if rej := comp.usable(now); rej != nil {
		return nil, rej
	}
	if opts.IdP != "" && opts.IdP != comp.idp.EntityID {
		return nil, ErrOtherIdP
	}
	if comp.idp.SLORedirectURL == "" {
		return nil, ErrNoLogout
	}
	id, err := p.randomID()
	if err != nil {
		return nil, err
	}
	relay, err := p.randomHandle()
	if err != nil {
		return nil, err
	}
	sp := comp.spAt(now)
	sp.LogoutSignatureMethod = "" // sign the query string below, not the XML
	req, err := sp.MakeLogoutRequest(comp.idp.SLORedirectURL, opts.NameID, saml.WithSessionIndex(opts.SessionIndex))
	if err != nil {
		return nil, fmt.Errorf("sso: build LogoutRequest: %w", err)
	}
	req.ID = id
	req.NameID.Format = opts.NameIDFormat
	sp.LogoutSignatureMethod = p.sigAlg
	u, err := sp.RedirectLogoutRequestURL(req, relay)
	if err != nil {
		return nil, fmt.Errorf("sso: encode LogoutRequest: %w", err)
	}
	lo := &Logout{RequestID: id, RelayState: relay, Expires: now.Add(p.cfg.RequestTTL), RedirectURL: u.String()}
	r := Request{Tenant: tenant, ID: id, Kind: KindLogout, RelayState: relay, ReturnTo: returnTo, CreatedAt: now, Expires: lo.Expires}
	if err := p.cfg.Stores.Requests.RememberRequest(ctx, r); err != nil {
		return nil, storeErr("remember request", err)
	}
	return lo, nil
}

// SLOResult is what arrived at a tenant's single logout URL.
type SLOResult struct {
	// ReturnTo is set when the IdP answered a LogoutRequest from
	// StartLogout (successfully): where to send the browser.
	ReturnTo string
	// Request is set when the IdP asks the SP to end a user's sessions
	// (IdP-initiated logout): the facade ends the tenant's sessions of
	// that NameID (and, if SessionIndexes is not empty, only those with
	// one of them), then sends the browser to RedirectURL ("" when the IdP
	// has no HTTP-Redirect logout endpoint to answer at).
	Request     *IdPLogoutRequest
	RedirectURL string
}

// IdPLogoutRequest is a verified LogoutRequest from the IdP.
type IdPLogoutRequest struct {
	ID string
	// IdP is the entity ID of the IdP that sent and signed the request:
	// its Issuer, which must be the entity ID of the tenant's IdP
	// metadata, whose certificates verified the signature. NameID is that
	// IdP's: look its subjects up with SubjectStore.SubjectsByNameID(…,
	// IdP, NameID, …).
	IdP            string
	NameID         string
	NameIDFormat   string
	SessionIndexes []string
}

// SLO processes a request to tenant's single logout URL: a LogoutResponse
// answering StartLogout, or a LogoutRequest from the IdP, with the
// HTTP-Redirect or HTTP-POST binding. Both must be signed by the IdP; a
// LogoutResponse must answer a tracked logout request (consumed once) and
// carry its RelayState; a LogoutRequest's ID goes into the ReplayCache.
// The message is read where crewjam/saml reads it: from the URL query if
// it carries one (even on a POST), else from the posted form; it is held
// to the lexical rules of every other message (no DOCTYPE, directive or
// comment) before it is parsed. Every rejection is a *RejectError (errors.Is(err, ErrRejected)); any
// other error is a store failure.
func (p *Provider) SLO(ctx context.Context, tenant string, r *http.Request) (*SLOResult, error) {
	if err := checkTenant(tenant); err != nil {
		return nil, reject(ReasonNotConfigured, "unacceptable tenant", err)
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
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(nil, r.Body, p.cfg.MaxBodyBytes)
		if err := r.ParseForm(); err != nil {
			return nil, reject(ReasonMalformed, "the form cannot be parsed", err)
		}
	}
	values := r.URL.Query()
	if r.Method == http.MethodPost {
		values = r.PostForm
	}
	sp := comp.spAt(now)
	switch {
	case values.Get("SAMLResponse") != "":
		msg, relay, deflated := message(r, "SAMLResponse")
		irt, relay, rej := peekLogout(msg, deflated, relay)
		if rej != nil {
			return nil, rej
		}
		if _, err := sp.ParseLogoutResponse(r, []string{irt}); err != nil {
			rej := classifySAML(err)
			if rej.Reason == ReasonIdPStatus {
				rej.Reason = ReasonLogoutStatus
			}
			return nil, rej
		}
		req, err := p.cfg.Stores.Requests.ConsumeRequest(ctx, tenant, irt, now)
		if errors.Is(err, ErrNotFound) {
			return nil, reject(ReasonRequestUnknown, "InResponseTo names no tracked logout request", nil)
		}
		if err != nil {
			return nil, storeErr("consume request", err)
		}
		if req.Kind != KindLogout {
			return nil, reject(ReasonRequestUnknown, "InResponseTo names a login request", nil)
		}
		if subtle.ConstantTimeCompare([]byte(req.RelayState), []byte(relay)) != 1 {
			return nil, reject(ReasonRelayStateMismatch, "", nil)
		}
		return &SLOResult{ReturnTo: req.ReturnTo}, nil
	case values.Get("SAMLRequest") != "":
		// The same lexical rules as for every other message (no DOCTYPE,
		// directive or comment), before crewjam parses it.
		msg, relay, deflated := message(r, "SAMLRequest")
		if _, rej := decodeMessage("SAMLRequest", msg, deflated); rej != nil {
			return nil, rej
		}
		var storeFailure error
		sp.ReplayCache = replayAdapter{ctx: ctx, p: p, tenant: tenant, now: now, skew: comp.skew, failed: &storeFailure}
		lr, err := sp.ValidateLogoutRequest(r)
		if storeFailure != nil {
			return nil, storeFailure
		}
		if err != nil {
			if errors.Is(err, saml.ErrAssertionReplayed) {
				return nil, reject(ReasonReplayed, "LogoutRequest ID seen before", err)
			}
			return nil, classifySAML(err)
		}
		if lr.NameID == nil || checkNameID(lr.NameID.Value) != "" {
			return nil, reject(ReasonLogoutNotAddressed, "LogoutRequest without a usable NameID", nil)
		}
		if lr.Issuer == nil || lr.Issuer.Value != comp.idp.EntityID {
			// crewjam checks it too; the IdP the facade matches subjects
			// of must be the one whose key signed the request.
			return nil, reject(ReasonIssuer, "LogoutRequest Issuer is not the IdP entity ID", nil)
		}
		res := &SLOResult{Request: &IdPLogoutRequest{ID: lr.ID, IdP: comp.idp.EntityID, NameID: lr.NameID.Value, NameIDFormat: lr.NameID.Format}}
		for _, si := range lr.AllSessionIndexes() {
			res.Request.SessionIndexes = append(res.Request.SessionIndexes, si.Value)
		}
		if comp.idp.SLORedirectURL != "" {
			if len(relay) > 1024 {
				relay = ""
			}
			u, err := sp.MakeRedirectLogoutResponse(lr.ID, relay)
			if err != nil {
				return nil, fmt.Errorf("sso: build LogoutResponse: %w", err)
			}
			res.RedirectURL = u.String()
		}
		return res, nil
	}
	return nil, reject(ReasonMalformed, "neither SAMLRequest nor SAMLResponse", nil)
}

// replayAdapter is crewjam's AssertionReplayCache on the tenant's
// ReplayCache, for LogoutRequest IDs. A store failure is kept in failed,
// so that SLO reports it as such rather than as a rejection.
type replayAdapter struct {
	ctx    context.Context
	p      *Provider
	tenant string
	now    time.Time
	skew   time.Duration // the connection's, always positive
	failed *error
}

// Consume records id until crewjam's until plus the skew. crewjam gives
// the last instant it accepts the LogoutRequest (IssueInstant plus
// MaxIssueDelay, inclusive), while the ReplayCache counts a record whose
// until is at or before now as absent: recorded until exactly that
// instant, the request would be accepted twice at it. The skew also
// covers replicas whose clocks differ, as replayUntil does for
// assertions.
func (a replayAdapter) Consume(id string, until time.Time) error {
	isNew, err := a.p.cfg.Stores.Replay.InsertID(a.ctx, a.tenant, id, until.Add(a.skew), a.now)
	if err != nil {
		*a.failed = storeErr("insert logout request ID", err)
		return err
	}
	if !isNew {
		return saml.ErrAssertionReplayed
	}
	return nil
}

// message returns the logout message of field (SAMLRequest or
// SAMLResponse), its RelayState and whether it is deflated, taken where
// crewjam/saml's ValidateLogoutRequest and ParseLogoutResponse take them,
// so that the lexical rules apply to the message crewjam verifies: from
// the URL query if it carries the field (the HTTP-Redirect binding, even
// on a POST), else from the posted form (HTTP-POST and
// HTTP-POST-SimpleSign).
func message(r *http.Request, field string) (msg, relay string, deflated bool) {
	if q := r.URL.Query(); q.Get(field) != "" {
		return q.Get(field), q.Get("RelayState"), true
	}
	return r.PostForm.Get(field), r.PostForm.Get("RelayState"), false
}

// peekLogout reads the InResponseTo of an (unverified) LogoutResponse so
// that crewjam can be told which request it must answer; crewjam then
// verifies the signature and that the signed InResponseTo is that value.
func peekLogout(msg string, deflated bool, relay string) (irt, relayState string, rej *RejectError) {
	raw, rej := decodeMessage("SAMLResponse", msg, deflated)
	if rej != nil {
		return "", "", rej
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(raw); err != nil || doc.Root() == nil {
		return "", "", reject(ReasonMalformed, "not well-formed XML", err)
	}
	irt = doc.Root().SelectAttrValue("InResponseTo", "")
	if irt == "" {
		return "", "", reject(ReasonRequestUnknown, "LogoutResponse without InResponseTo", nil)
	}
	return irt, relay, nil
}

// maxInflated is the most a logout message in the HTTP-Redirect binding
// may inflate to, as in crewjam/saml: a real one is a few kilobytes.
const maxInflated = 1 << 20

// decodeMessage decodes the logout message of form field (base64, and
// inflated for the HTTP-Redirect binding) and applies the lexical rules
// (see lexical). A message that inflates past maxInflated is refused
// (body_too_large, SECURITY-CHECKLIST SAML-29) once that much is read:
// never cut short and read on.
func decodeMessage(field, msg string, deflated bool) ([]byte, *RejectError) {
	raw, err := base64.StdEncoding.DecodeString(msg)
	if err != nil {
		return nil, reject(ReasonMalformed, field+" is not base64", err)
	}
	if deflated {
		raw, err = io.ReadAll(io.LimitReader(flate.NewReader(bytes.NewReader(raw)), maxInflated+1))
		if err != nil {
			return nil, reject(ReasonMalformed, field+" cannot be inflated", err)
		}
		if len(raw) > maxInflated {
			return nil, reject(ReasonBodyTooLarge, field+" inflates past 1 MiB", nil)
		}
	}
	if rej := lexical(raw); rej != nil {
		return nil, rej
	}
	return raw, nil
}
