package sso

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Errors returned by the Provider and by stores. Compare with errors.Is.
var (
	// ErrRejected is the one public face of every refused SAML message: a
	// response at the ACS, a LogoutResponse or a LogoutRequest. The error
	// returned is a *RejectError, which says why; show the user only
	// ErrRejected's generic message and put the RejectError's Reason in
	// the audit event.
	ErrRejected = errors.New("sso: single sign-on failed")
	// ErrNotFound: no connection for the tenant, or (from a RequestStore)
	// no such tracked request.
	ErrNotFound = errors.New("sso: not found")
	// ErrDuplicate: a store already holds a request with that ID (a broken
	// Rand).
	ErrDuplicate = errors.New("sso: duplicate id")
	// ErrNoLogout: the IdP's metadata has no single logout endpoint with
	// the HTTP-Redirect binding. Guard's session is ended all the same.
	ErrNoLogout = errors.New("sso: the IdP has no single logout endpoint")
	// ErrOtherIdP: StartLogout was asked to name a subject that another
	// IdP issued (LogoutOptions.IdP) than the tenant's IdP now: nothing
	// is sent to it. Guard's session is ended all the same.
	ErrOtherIdP = errors.New("sso: the subject was issued by another IdP than the tenant's")
	// ErrNoMFAContexts: a login asked the IdP for a multi-factor login
	// (LoginOptions.RequireMFA), and the tenant's connection lists no
	// MFAAuthnContexts, so no answer could count as one.
	ErrNoMFAContexts = errors.New("sso: the connection lists no multi-factor authentication contexts")
	// ErrFull: a store has reached its memory bound and cannot take a new
	// request or replay record. Callers deny (fail closed).
	ErrFull = errors.New("sso: store full")
)

// Reason is the private cause of a rejection, a short stable token for
// audit events (action sso.failed). It is never shown to the user.
type Reason string

// The reasons a message is rejected. Each has a test that builds a
// document failing for exactly that reason.
const (
	// The request and its encoding.
	ReasonBodyTooLarge       Reason = "body_too_large"      // the POST body is over Config.MaxBodyBytes, or a Redirect-binding logout message inflates past 1 MiB
	ReasonMalformed          Reason = "malformed"           // no or duplicate SAMLResponse, bad base64, not well-formed XML
	ReasonUnsupportedBinding Reason = "unsupported_binding" // artifact or SimpleSign: only HTTP-POST is accepted
	ReasonNotConfigured      Reason = "not_configured"      // the tenant has no IdP connection
	ReasonDoctype            Reason = "doctype"             // a DOCTYPE or other <!...> directive
	ReasonComment            Reason = "xml_comment"         // a comment or processing instruction inside the document
	ReasonTooComplex         Reason = "too_complex"         // too deep, too many elements or attributes
	ReasonNotResponse        Reason = "not_response"        // the root is not a samlp:Response
	ReasonIdPStatus          Reason = "idp_status"          // the IdP answered with a status other than Success

	// Structure and signatures.
	ReasonAssertionCount      Reason = "assertion_count"       // not exactly one Assertion or EncryptedAssertion
	ReasonAssertionWrapped    Reason = "assertion_wrapped"     // an Assertion anywhere but directly under the Response (XSW)
	ReasonDuplicateID         Reason = "duplicate_id"          // two elements share an ID value (XSW)
	ReasonAssertionIDMissing  Reason = "assertion_id_missing"  // the assertion has no ID: it cannot be checked for replay
	ReasonUnsigned            Reason = "unsigned"              // neither the Response nor the Assertion is signed
	ReasonSHA1                Reason = "sha1_signature"        // a SHA-1 signature or digest, and SHA-1 is not allowed
	ReasonTransform           Reason = "signature_transform"   // a Transform other than enveloped-signature and C14N
	ReasonWeakEncryption      Reason = "weak_encryption"       // EncryptedAssertion with RSA PKCS#1 v1.5 key transport, or CBC without AllowCBC
	ReasonSignature           Reason = "signature_invalid"     // a signature that does not verify, or not on the element it is in
	ReasonUntrustedCert       Reason = "untrusted_certificate" // signed with a certificate that is not configured for the IdP
	ReasonCertificateExpired  Reason = "certificate_expired"   // a configured certificate outside its validity (RequireValidCertificates)
	ReasonDecryption          Reason = "decryption_failed"     // the EncryptedAssertion cannot be decrypted or is not authenticated
	ReasonMissingElement      Reason = "missing_element"       // no Subject, Conditions, AuthnStatement, bearer confirmation, ...
	ReasonUnsupported         Reason = "unsupported"           // a SAML version other than 2.0, a Condition the SP does not understand, or similar
	ReasonInvalid             Reason = "invalid"               // any other failure of crewjam's checks (see Detail)
	ReasonMetadataExpired     Reason = "metadata_expired"      // the stored IdP metadata's validUntil has passed
	ReasonNameIDInvalid       Reason = "nameid_invalid"        // NameID empty, too long, with control characters or outer spaces
	ReasonSubjectConfirmation Reason = "subject_confirmation"  // a bearer SubjectConfirmation without usable data

	// Addressing, issuer and time.
	ReasonIssuer              Reason = "issuer_mismatch"      // Response or Assertion Issuer is not the IdP's entity ID (an Assertion without a saml:Issuer too)
	ReasonAudienceMissing     Reason = "audience_missing"     // no AudienceRestriction/Audience
	ReasonAudience            Reason = "audience_mismatch"    // an Audience other than the SP entity ID
	ReasonDestinationMissing  Reason = "destination_missing"  // the Response has no Destination
	ReasonDestination         Reason = "destination_mismatch" // Destination is not the ACS URL
	ReasonRecipient           Reason = "recipient_mismatch"   // a bearer SubjectConfirmationData Recipient is not the ACS URL
	ReasonExpired             Reason = "expired"              // IssueInstant too old, or a NotOnOrAfter has passed (with skew)
	ReasonNotYetValid         Reason = "not_yet_valid"        // NotBefore or IssueInstant in the future (beyond skew)
	ReasonRequestMismatch     Reason = "request_mismatch"     // InResponseTo values that disagree with each other
	ReasonRequestUnknown      Reason = "request_unknown"      // InResponseTo names no tracked request (unknown, expired or used)
	ReasonRelayStateMismatch  Reason = "relay_state_mismatch" // RelayState is not the handle sent with the tracked request
	ReasonBindingMismatch     Reason = "binding_mismatch"     // the request was started by another browser
	ReasonUnsolicited         Reason = "unsolicited"          // no InResponseTo, and IdP-initiated login is off
	ReasonReplayed            Reason = "replayed"             // the assertion ID was accepted before
	ReasonEmailMissing        Reason = "email_missing"        // no email attribute, and the NameID is not an email address
	ReasonEmailInvalid        Reason = "email_invalid"        // the email is not a plain address
	ReasonEmailDomain         Reason = "email_domain"         // the email's domain is not in AllowedDomains
	ReasonEmailAmbiguous      Reason = "email_ambiguous"      // the email attribute holds two different addresses
	ReasonLogoutStatus        Reason = "logout_status"        // a LogoutResponse with a status other than Success
	ReasonLogoutNotAddressed  Reason = "logout_not_addressed" // a LogoutRequest for another SP or without NameID
	ReasonMetadataUnavailable Reason = "metadata_invalid"     // the stored IdP metadata cannot be used (see Detail)
)

// RejectError is the private cause of an ErrRejected: errors.Is(err,
// ErrRejected) holds for it. Reason is stable; Detail is a short
// diagnostic for the audit event (at most 200 bytes, without control
// characters), built from the message, never holding a secret. Err, when
// set, is the underlying error (for example from crewjam/saml).
type RejectError struct {
	Reason Reason
	Detail string
	Err    error
}

func (e *RejectError) Error() string {
	if e.Detail == "" {
		return "sso: rejected: " + string(e.Reason)
	}
	return "sso: rejected: " + string(e.Reason) + ": " + e.Detail
}

// Is makes errors.Is(err, ErrRejected) hold.
func (e *RejectError) Is(target error) bool { return target == ErrRejected }

// Unwrap returns Err.
func (e *RejectError) Unwrap() error { return e.Err }

// reject returns a *RejectError with a sanitised detail.
func reject(r Reason, detail string, err error) *RejectError {
	return &RejectError{Reason: r, Detail: clean(detail, 200), Err: err}
}

// clean drops control and formatting characters from s and cuts it to at
// most n bytes on a rune boundary, so that text taken from a message
// cannot forge lines in a log.
func clean(s string, n int) string {
	if s == "" {
		return ""
	}
	var b strings.Builder
	for _, r := range s {
		if r == utf8.RuneError || unicode.IsControl(r) || unicode.Is(unicode.Cf, r) || unicode.In(r, unicode.Zl, unicode.Zp) {
			r = '?'
		}
		if b.Len()+utf8.RuneLen(r) > n {
			break
		}
		b.WriteRune(r)
	}
	return b.String()
}

// ConfigError reports an unacceptable Config field.
type ConfigError struct {
	Field, Reason string
}

func (e *ConfigError) Error() string { return "sso: invalid Config." + e.Field + ": " + e.Reason }

// InputError reports an unacceptable argument or Connection field: a
// tenant, a return path, a metadata document. It names the field and the
// rule and never echoes the value.
type InputError struct {
	Field, Reason string
}

func (e *InputError) Error() string { return "sso: invalid " + e.Field + ": " + e.Reason }

// FetchError reports that the IdP metadata could not be fetched from its
// URL: a transport failure, a status other than 200, or a body over the
// size limit. Status is the HTTP status when there was one.
type FetchError struct {
	Status int
	Err    error
}

func (e *FetchError) Error() string {
	msg := "sso: fetching IdP metadata failed"
	if e.Status != 0 {
		msg += fmt.Sprintf(" (status %d)", e.Status)
	}
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

func (e *FetchError) Unwrap() error { return e.Err }

// storeErr passes this package's sentinel errors through and wraps any
// other store error, so that a failure is never mistaken for a clean
// answer such as ErrNotFound.
func storeErr(op string, err error) error {
	for _, e := range [...]error{ErrNotFound, ErrDuplicate} {
		if errors.Is(err, e) {
			return e
		}
	}
	return fmt.Errorf("sso: store %s: %w", op, err)
}
