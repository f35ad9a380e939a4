package audit

import (
	"context"
	"time"
)

// Store keeps each tenant's chain of events. Events are never updated; the
// only deletion is Purge, which keeps the chain verifiable through a
// checkpoint.
type Store interface {
	// Append stores events, which all belong to tenant and continue its
	// chain: events[0].Seq must be Head.Seq+1 and events[0].PrevMAC must
	// equal Head.MAC, and each next event must have Seq one higher and
	// PrevMAC equal to the MAC of the one before. All are stored or none:
	// if the chain has moved on (another writer appended first) Append
	// returns ErrConflict and stores nothing. An empty slice is a no-op.
	Append(ctx context.Context, tenant string, events []Event) error
	// Head returns the last link of tenant's chain: the Seq and MAC of its
	// newest event, or of its checkpoint if every event was purged, or the
	// zero Link for a tenant with no events.
	Head(ctx context.Context, tenant string) (Link, error)
	// Query returns tenant's events that match q, in ascending Seq order
	// (descending when q.Desc), at most q.Limit of them, starting strictly
	// after q.After (or before it when q.Desc) if q.After is not zero.
	Query(ctx context.Context, tenant string, q Query) ([]Event, error)
	// Checkpoint returns tenant's checkpoint, the zero Checkpoint if none.
	Checkpoint(ctx context.Context, tenant string) (Checkpoint, error)
	// Purge deletes tenant's events with Seq <= cp.Seq and stores cp as the
	// tenant's checkpoint, in one step. cp.Seq must be above the current
	// checkpoint's Seq (0 for a tenant without one): otherwise it returns
	// ErrConflict and changes nothing, so that of two replicas making the
	// same purge one deletes the events and the other learns it has
	// nothing left to do.
	Purge(ctx context.Context, tenant string, cp Checkpoint) error
}

// Link is the end of a chain: the sequence number and MAC of its last event.
type Link struct {
	Seq uint64
	MAC []byte
}

// Checkpoint stands in for purged events: Seq and MAC are those of the last
// purged event, so the chain of the remaining events can still be verified.
// MAC over the checkpoint itself is CheckpointMAC.
type Checkpoint struct {
	Seq           uint64
	MAC           []byte
	At            time.Time // when the purge happened
	CheckpointMAC []byte    // HMAC binding tenant, Seq, MAC and At
}

// Query filters events. Zero fields do not filter.
type Query struct {
	// From <= Time < To. Log.Query and Log.Export refuse a bound outside
	// the years 1 to 9999 (UTC), so a Store is never asked for one.
	From, To time.Time
	Actor    string // matches Actor.ID or Actor.Email exactly
	Action   string
	Outcome  Outcome
	After    uint64 // cursor: a Seq
	Desc     bool
	Limit    int // 0 means the store's default of 100; stores cap it at 1000
}
