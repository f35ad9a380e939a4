// Package sso is Guard's SAML 2.0 service provider: per-tenant connections
// to identity providers (Okta, Entra ID, Google Workspace, ADFS, Keycloak,
// …), SP-initiated login, a hardened assertion consumer service, attribute
// mapping and single logout. It is built on github.com/crewjam/saml, but
// not on its samlsp defaults: there is no JWT cookie session and no
// redirect to a raw RelayState; sessions are Guard's own.
//
// # What is inside
//
//   - Provider (built with New) is what the facade uses. Per tenant:
//     SP and Metadata (the SP's URLs and metadata XML, for the IdP's
//     administrator), StartLogin (an AuthnRequest, signed if the IdP's
//     metadata asks for it, tracked server-side), ACS and ParseResponse
//     (the checks below, returning a
//     Result), StartLogout and SLO (single logout). Administration:
//     PutConnection, Connection, DeleteConnection, FetchMetadata,
//     RefreshMetadata.
//   - Connection is a tenant's IdP connection: metadata (XML, or a URL
//     refreshed by a Refresher that keeps the last good copy), optionally
//     the certificates the metadata must be signed with, extra
//     certificates for key rollover, clock skew, attribute mapping
//     (email, name, groups → role names), just-in-time provisioning and
//     allowed email domains, the AuthnContextClassRefs that mean a
//     multi-factor login at the IdP (none trusted by default),
//     IdP-initiated login (off by default), SHA-1 and CBC-encrypted
//     assertions (both refused by default).
//   - ParseMetadata reads an IdP's metadata, ParseSignedMetadata metadata
//     that must carry a valid signature; SafeRedirect decides whether
//     a return path may be redirected to.
//   - store.go holds the storage contracts (ConnectionStore, RequestStore,
//     ReplayCache, and SubjectStore, which the facade uses for single
//     logout, bundled in Stores). store/memstore implements them in
//     memory, store/sqlitestore and store/pgstore in SQL, store/redisstore
//     the short-lived ones; package ssotest is the conformance suite every
//     backend runs.
//
// # What the ACS checks, beyond crewjam/saml
//
// A body limit (512 KiB); only the HTTP-POST binding; no DOCTYPE or other
// directive, no comment, no processing instruction (exclusive C14N leaves
// comments out of the signed content, so refusing them stops NameID
// comment injection); only qualified names (no empty prefix or local
// part, which parsers read differently); limits of depth, elements and
// attributes per element, the last two counted before parsing; exactly
// one Assertion or
// EncryptedAssertion, directly under the Response (an assertion anywhere
// else, even in an Advice, is refused), and no two elements with the same
// ID (signature wrapping); the Response or the Assertion
// signed, by a certificate configured for the IdP, never one carried in
// the message; no SHA-1, no transform but enveloped-signature and C14N,
// no RSA PKCS#1 v1.5 key transport, and AES-GCM content encryption only
// (AES-CBC with Connection.AllowCBC, and then only in a signed Response);
// the plaintext of an encrypted assertion decrypted and given the same
// checks as the Response (no directive, comment or processing
// instruction, qualified names, limits, one Assertion, IDs unique across
// both, signatures only on the Response or that Assertion);
// Destination required and equal to the ACS URL; Issuer equal to the
// IdP's entity ID; an Audience required, and every Audience equal to the
// SP's entity ID; no Condition but AudienceRestriction, OneTimeUse and
// ProxyRestriction (another makes the assertion Indeterminate, which
// saml-core §2.5.1.1 says must be rejected); every SubjectConfirmation
// bearer, with Recipient equal to the ACS URL; NotBefore, NotOnOrAfter
// and IssueInstant within the connection's skew (crewjam/saml also
// refuses an IssueInstant older than 90 seconds); an assertion ID; a
// NameID without control characters or surrounding space. Then the
// InResponseTo values must name one tracked request, which is consumed
// once (atomically, across replicas), with the same RelayState handle and
// browser binding; the Response's InResponseTo counts only if the
// Response is signed or the assertion carries the same value, so an
// unsigned Response cannot make an unsolicited assertion answer a
// request; without InResponseTo the response is refused unless the tenant
// allows IdP-initiated login. Last, the assertion ID is inserted in the
// ReplayCache until the assertion can no longer be accepted (also when it
// is refused for answering no request): a captured response posted again,
// by anyone, is refused.
//
// # Redirects
//
// The RelayState sent to the IdP is an opaque 128-bit handle; the return
// path stays in the tracked request. After an IdP-initiated login a
// RelayState is followed only if SafeRedirect accepts it (a relative path
// on this site); otherwise Config.DefaultReturnTo.
//
// # NameID and email: the case rule
//
// A NameID is kept and compared exactly as the IdP sent it, byte for
// byte, case included: persistent and transient NameIDs are opaque
// strings, and Result.NameID, the Subject kept for single logout and the
// NameID a LogoutRequest names must be equal to match
// (SubjectStore.SubjectsByNameID). A NameID that is empty, over 512
// bytes, or has control characters (CR and LF included) or surrounding
// white space is refused (nameid_invalid at the ACS, logout_not_addressed
// in a LogoutRequest), never cleaned up. The email a user is found by
// (the email attribute, or an emailAddress NameID) is another thing:
// trimmed, lower-cased and in Unicode NFC (Result.Email, as
// auth.CanonicalEmail makes it), so "Alice@Corp.Example" and
// "alice@corp.example" are one user of the tenant, and so are an address
// sent decomposed ("e" and a combining accent) and composed ("é"). When
// no subject kept from the requesting IdP has a LogoutRequest's NameID
// (or there is no subject store), the facade reads the NameID as an
// email, canonicalised the same way: the tenant's IdP signs users in by email, so it may log
// them out by email.
//
// # What the facade must do
//
// The Provider writes no audit events and creates no sessions. For a
// login: route GET {prefix}/{tenant}/login to StartLogin and redirect (or
// serve Login.Form), rate-limited per client IP, since each call stores a
// tracked request; route POST {prefix}/{tenant}/acs to ACS (exempt from
// CSRF origin checks: the IdP's POST is cross-site; the tracked request
// protects it); serve Metadata at GET {prefix}/{tenant}/metadata and SLO
// at {prefix}/{tenant}/slo. On a *RejectError, show one generic failure (ErrRejected's
// message), audit sso.failed with RejectError.Reason (the facade records
// at most 30 a minute per tenant and reason: anyone can post them); on any other error,
// fail closed. On success, find the tenant's user by Result.Email
// (creating it only if Result.JIT), refuse one whose kept subject from
// the same IdP is another persistent NameID than Result.NameID (another
// person at the IdP with the same email), refuse deactivated users, apply the IP
// allow-list and the session limit as for a password login, audit
// sso.succeeded, keep Result.NameID, NameIDFormat and SessionIndex in
// Stores.Subjects with the IdP that issued them (Result.IdPEntityID as
// Subject.IdP, for single logout), cap the session at
// Result.SessionNotOnOrAfter, count the sign-in as one with a second
// factor only if Result.MFA, and redirect to Result.ReturnTo. For a
// logout, end Guard's session first, then call StartLogout with the kept
// subject's IdP (LogoutOptions.IdP), so that a subject is named only to
// the IdP that issued it. For a LogoutRequest from the IdP
// (SLOResult.Request), end the sessions of the subjects SubjectsByNameID
// finds for IdPLogoutRequest.IdP and its NameID: never those another IdP
// (a replaced one) issued. When the tenant's connection is removed, or put
// again naming another entity ID (IdP.EntityID of ParseMetadata), end the
// sessions the old IdP's sign-ins created, and refuse a sign-in through it
// that completes after the change (the guard facade does both).
//
// # Concurrency
//
// A Provider is safe for concurrent use. It caches parsed connections,
// which it checks against the store on every call; every invariant (a
// request consumed once, an assertion accepted once) is one atomic store
// method.
//
// # Errors
//
// Compare errors with errors.Is and errors.As:
//
//   - ErrRejected, with a *RejectError: a SAML message was refused. The
//     user sees only the generic message; Reason (and Detail) go to the
//     audit event.
//   - ErrNotFound: the tenant has no connection (StartLogin,
//     StartLogout, Connection, DeleteConnection).
//   - ErrNoLogout: the IdP has no single logout endpoint.
//   - ErrOtherIdP: StartLogout was asked to name a subject another IdP
//     issued than the tenant's (LogoutOptions.IdP); nothing was sent.
//   - ErrNoMFAContexts: StartLogin was asked for a multi-factor login
//     (LoginOptions.RequireMFA) and the connection lists no
//     MFAAuthnContexts.
//   - ErrDuplicate, ErrFull: a store refused a request (a broken Rand, a
//     store at its memory bound). Deny.
//   - *InputError: an unacceptable tenant, return path, Connection field
//     or metadata document. It names the field and never echoes the
//     value.
//   - *FetchError: the IdP metadata could not be fetched.
//   - *ConfigError: New was given an unacceptable Config.
//
// Any other error wraps a store failure. It is never ErrRejected, so the
// caller must deny (fail closed).
package sso
