package sso

import (
	"context"
	"time"
)

// Stores are the storage contracts of the package, one field per role. A
// backend usually implements all of them with one value (memstore.SSO
// does); a deployment may also split them, keeping connections in a
// database and requests and the replay cache in a shared cache. Package
// ssotest is the conformance suite of every contract.
type Stores struct {
	Connections ConnectionStore
	Requests    RequestStore
	Replay      ReplayCache
	// Subjects keeps who each user is at the IdP, for single logout. It
	// is not used by this package; the facade (guard) writes it at every
	// SSO sign-in and reads it to log out, and to refuse a sign-in whose
	// persistent NameID is not the one kept for the user found by email.
	// Nil: single logout names the user by email, and only an IdP whose
	// NameIDs are email addresses can match them; sign-ins are matched by
	// email alone.
	Subjects SubjectStore
}

// ConnectionStore keeps each tenant's IdP connection, at most one per
// tenant, with the last good copy of its metadata. The store keeps its own
// copy: changing a Connection after PutConnection, or one it returned,
// changes nothing stored.
type ConnectionStore interface {
	// PutConnection stores c as the connection of c.Tenant, replacing the
	// tenant's connection, if any, whole. Connections of other tenants are
	// left alone.
	PutConnection(ctx context.Context, c Connection) error
	// Connection returns the tenant's connection, or ErrNotFound.
	Connection(ctx context.Context, tenant string) (Connection, error)
	// DeleteConnection removes the tenant's connection, or returns
	// ErrNotFound if it has none.
	DeleteConnection(ctx context.Context, tenant string) error
	// UpdateMetadata sets Metadata to metadata and MetadataFetchedAt to
	// fetchedAt in the tenant's connection, leaving every other field
	// alone, if the stored MetadataURL equals url and the stored
	// MetadataFetchedAt is before fetchedAt (set if newer); it reports
	// whether it changed the connection. Otherwise it changes nothing and
	// reports false, so that a fetch that finishes late never overwrites a
	// newer copy, and a fetch from a URL the administrator has since
	// replaced never lands. A tenant without a connection gives
	// ErrNotFound.
	UpdateMetadata(ctx context.Context, tenant, url, metadata string, fetchedAt time.Time) (bool, error)
}

// RequestStore tracks the AuthnRequests and LogoutRequests the SP has
// sent, so that each response is matched with its request once. Requests
// are named by tenant and ID. Expiry is judged by the now given by the
// caller, never by the store's clock; a store may drop a request once
// its Expires has passed.
type RequestStore interface {
	// RememberRequest stores r until r.Expires. It returns ErrDuplicate,
	// and changes nothing, if the tenant already has a request with r.ID.
	RememberRequest(ctx context.Context, r Request) error
	// ConsumeRequest removes the tenant's request with the given id and
	// returns it if now is before its Expires. A request that has expired
	// gives ErrNotFound (and may be removed); so does one that was never
	// stored or was already consumed. Of concurrent calls for one request,
	// exactly one succeeds.
	ConsumeRequest(ctx context.Context, tenant, id string, now time.Time) (Request, error)
}

// ReplayCache remembers the IDs of the assertions (and IdP
// LogoutRequests) the SP has accepted, so that a captured message posted
// again, by anyone, on any replica, is refused. IDs are named by tenant
// and id. Expiry is judged by the now given by the caller, never by the
// store's clock.
type ReplayCache interface {
	// InsertID records id for tenant until until, if it is not recorded
	// yet, and reports whether it was new. A record whose until is at or
	// before now counts as absent: it is replaced, and the insert is new.
	// Of concurrent inserts of one id for one tenant, exactly one reports
	// true. An insert that is not new changes nothing (the record keeps
	// its until). Tenants are independent: the same id may be recorded
	// for each. A store may drop a record once its until has passed, so its
	// memory is bounded by the rate of logins.
	InsertID(ctx context.Context, tenant, id string, until, now time.Time) (bool, error)
}

// Subject is the identity at the IdP that a user of a tenant last signed in
// with: what single logout needs in both directions, the NameID (and the
// IdP's session) to name in a LogoutRequest the SP sends, and the user
// whose sessions a LogoutRequest from the IdP ends. NameID, NameIDFormat
// and SessionIndex are the assertion's (Result), exactly as sent.
type Subject struct {
	Tenant string
	UserID string
	// IdP is the entity ID of the IdP that issued NameID and SessionIndex
	// (Result.IdPEntityID, the verified assertion's Issuer): a NameID
	// means something only to the IdP that gave it, so a tenant that
	// replaces its IdP must neither name it to the new one nor let the
	// new one's LogoutRequests reach it. At most MaxEntityIDBytes.
	//
	// A record written before Guard kept the IdP has none (""): which IdP
	// issued it is unknown, so it belongs to none: SubjectsByNameID
	// finds it for no IdP, and the facade names it to no IdP. It is gone
	// at its Expires, at the latest the end of the session its sign-in
	// created.
	IdP          string
	NameID       string
	NameIDFormat string
	SessionIndex string
	// Expires is when the record is no longer needed: the end of the
	// session the sign-in created.
	Expires time.Time
}

// MaxEntityIDBytes is the longest IdP entity ID accepted: in metadata
// (ParseMetadata), and so in a Subject.
const MaxEntityIDBytes = 1024

// Validate returns an *InputError for a Subject that no sign-in produces
// and no SubjectStore keeps: an IdP longer than MaxEntityIDBytes. Every
// backend's PutSubject calls it first, and stores nothing when it fails.
func (s Subject) Validate() error {
	if len(s.IdP) > MaxEntityIDBytes {
		return &InputError{Field: "Subject.IdP", Reason: "is longer than 1024 bytes"}
	}
	return nil
}

// SubjectStore keeps at most one Subject per user (tenant and user ID):
// the one of the user's last SSO sign-in. Expiry is judged by the now
// given by the caller, never by the store's clock; a store may drop a
// record once its Expires has passed, so its memory is bounded by the
// users signed in through SSO.
type SubjectStore interface {
	// PutSubject stores s as the subject of (s.Tenant, s.UserID),
	// replacing the user's previous one, if any, whole. now is the
	// caller's time, for dropping expired records. A Subject that
	// Validate refuses gives its *InputError, and nothing changes.
	PutSubject(ctx context.Context, s Subject, now time.Time) error
	// Subject returns the subject of the tenant's user userID if now is
	// before its Expires, or ErrNotFound.
	Subject(ctx context.Context, tenant, userID string, now time.Time) (Subject, error)
	// SubjectsByNameID returns the tenant's subjects whose IdP equals idp
	// and whose NameID equals nameID (both exactly, case included) and
	// whose Expires is after now, sorted by UserID; none is an empty
	// result, not an error. A NameID another IdP issued is another
	// identity: its subjects are not returned. An empty idp matches
	// nothing, not even the subjects without an IdP.
	SubjectsByNameID(ctx context.Context, tenant, idp, nameID string, now time.Time) ([]Subject, error)
}

// Request is an AuthnRequest or LogoutRequest the SP sent and expects an
// answer to.
type Request struct {
	Tenant string
	// ID is the request's ID attribute: "id-" and 40 hex digits (160
	// random bits). The answer's InResponseTo must equal it.
	ID string
	// Kind is KindLogin or KindLogout.
	Kind string
	// RelayState is the opaque handle sent with the request (22
	// base64url characters); the IdP must send it back unchanged.
	RelayState string
	// ReturnTo is the relative path on this site to go to afterwards,
	// already checked with SafeRedirect.
	ReturnTo string
	// Binding is the SHA-256 hex of the browser binding given to
	// StartLogin, or "" for none.
	Binding   string
	CreatedAt time.Time
	Expires   time.Time
}

// Kinds of tracked requests.
const (
	KindLogin  = "login"
	KindLogout = "logout"
)
