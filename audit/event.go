package audit

import (
	"errors"
	"time"
)

// Event is one audit record.
type Event struct {
	ID        string // random, unique
	Tenant    string
	Seq       uint64 // 1, 2, 3… per tenant, contiguous
	Time      time.Time
	Actor     Actor
	Action    Action
	Target    string // what the action was done to (a user id, a session id…)
	IP        string
	UserAgent string
	Outcome   Outcome
	Reason    string            // machine-readable cause, e.g. "bad_password"
	Meta      map[string]string // extra detail; never a secret
	PrevMAC   []byte
	MAC       []byte
}

// Actor is who did it.
type Actor struct {
	Kind  ActorKind
	ID    string
	Email string
}

// ActorKind says what kind of principal acted.
type ActorKind string

const (
	ActorUser      ActorKind = "user"
	ActorAPIKey    ActorKind = "apikey"
	ActorSystem    ActorKind = "system"
	ActorAnonymous ActorKind = "anonymous"
)

// Outcome of an action.
type Outcome string

const (
	Success Outcome = "success"
	Failure Outcome = "failure"
)

// Errors. Compare with errors.Is.
var (
	ErrConflict = errors.New("audit: chain head moved")
	ErrNotFound = errors.New("audit: not found")
)
