package auth

import (
	"errors"
	"fmt"
	"time"
)

// ErrThrottleFull is returned by a ThrottleStore that has reached its
// bound on live keys and cannot record an attempt for a new key. Callers
// deny the attempt (fail closed).
var ErrThrottleFull = errors.New("auth: throttle store full")

// Limit is the throttling rule for one kind of key.
//
// A key may fail Max times; the attempt that makes the count reach Max is
// still evaluated, and the key is then locked. The n-th lock of a key (n from
// 1) lasts LockFor·2^(n-1), capped at MaxLockFor. When PermanentAfter is
// above zero, the lock that would be number PermanentAfter+1 is permanent
// instead (until Reset). A key that has not been locked, and has had no
// counted attempt for ResetAfter, is forgotten: its count and lock history
// start again from zero. An attempt that is given back
// (ThrottleStore.Release: it succeeded, or was not a guess) is not a
// counted attempt: it neither adds to the count nor puts off forgetting
// the failures before it, and a lock it started is lifted. Time spent
// locked counts towards ResetAfter: a lock at least as long as ResetAfter
// ends with the key forgotten, so the wait only grows while locks are
// shorter than ResetAfter, and Validate refuses a PermanentAfter whose
// last temporary lock would not be (the permanent lock could never be
// reached).
type Limit struct {
	Max            int
	ResetAfter     time.Duration
	LockFor        time.Duration
	MaxLockFor     time.Duration
	PermanentAfter int
}

// Validate reports whether l is usable, as an *InvalidLimitError.
func (l Limit) Validate() error {
	switch {
	case l.Max < 1:
		return &InvalidLimitError{Field: "Max", Reason: "must be at least 1"}
	case l.ResetAfter <= 0:
		return &InvalidLimitError{Field: "ResetAfter", Reason: "must be positive"}
	case l.LockFor <= 0:
		return &InvalidLimitError{Field: "LockFor", Reason: "must be positive"}
	case l.MaxLockFor < l.LockFor:
		return &InvalidLimitError{Field: "MaxLockFor", Reason: "must be at least LockFor"}
	case l.PermanentAfter < 0:
		return &InvalidLimitError{Field: "PermanentAfter", Reason: "must not be negative"}
	case l.PermanentAfter > 0 && l.lockDuration(l.PermanentAfter) >= l.ResetAfter:
		return &InvalidLimitError{Field: "PermanentAfter", Reason: "is unreachable: lock number PermanentAfter must be shorter than ResetAfter"}
	}
	return nil
}

// InvalidLimitError reports a Limit that cannot be used.
type InvalidLimitError struct {
	Field, Reason string
}

func (e *InvalidLimitError) Error() string {
	return fmt.Sprintf("auth: invalid throttle limit: %s %s", e.Field, e.Reason)
}

// lockDuration is the length of lock number n (from 1) under l.
// Doubling stops at MaxLockFor, so it cannot overflow even when
// MaxLockFor is close to the largest Duration.
func (l Limit) lockDuration(n int) time.Duration {
	d := l.LockFor
	for i := 1; i < n && d < l.MaxLockFor; i++ {
		if d > l.MaxLockFor/2 {
			return l.MaxLockFor
		}
		d *= 2
	}
	return min(d, l.MaxLockFor)
}

// Record is the stored state of one throttle key. Backends that keep the
// record as data (memstore, SQL rows) apply Reserve with Limit.Apply;
// backends that run scripts implement the same rules and run the same
// conformance suite.
//
// Failures may be below zero while a lock is in force: reservations
// counted before the lock and given back during it (GiveBack), which
// the lock's own reservation, if given back too, takes off the count it
// restores. Apply and StateOf count a negative Failures as zero.
type Record struct {
	Failures    int       // reservations since the last lock, reset or forget, less those given back
	Last        time.Time // time of the last counted reservation not given back (see GiveBack)
	LockedUntil time.Time // end of the current temporary lock, if any
	Lockouts    int       // locks so far, for the growing wait
	Permanent   bool      // locked until Reset
}

// Expired reports whether the record is forgotten at now under l.
func (r Record) Expired(now time.Time, l Limit) bool {
	return !r.Permanent && !now.Before(r.Last.Add(l.ResetAfter)) && !now.Before(r.LockedUntil)
}

// ExpiresAt is the time after which r is forgotten (zero if never).
func (r Record) ExpiresAt(l Limit) time.Time {
	if r.Permanent {
		return time.Time{}
	}
	t := r.Last.Add(l.ResetAfter)
	if r.LockedUntil.After(t) {
		t = r.LockedUntil
	}
	return t
}

// Apply is the Reserve rule as a pure function: it returns the record to
// store and the reservation to report. It does not call Validate.
// A counted reservation carries the record's Last before it (PrevLast,
// as stored, even when the record was forgotten) and after it (Last, that
// is now), for GiveBack.
func (l Limit) Apply(r Record, now time.Time) (Record, Reservation) {
	prev := r.Last
	if r.Expired(now, l) {
		r = Record{}
	}
	if r.Permanent {
		return r, Reservation{Allowed: false, Permanent: true, Lockouts: r.Lockouts}
	}
	if now.Before(r.LockedUntil) {
		return r, Reservation{Allowed: false, LockedUntil: r.LockedUntil, Lockouts: r.Lockouts}
	}
	r.Failures = max(r.Failures, 0) + 1
	r.Last = now
	res := Reservation{Allowed: true, Failures: r.Failures, Last: now, PrevLast: prev}
	if r.Failures >= l.Max {
		r.Failures = 0
		r.Lockouts++
		if l.PermanentAfter > 0 && r.Lockouts > l.PermanentAfter {
			r.Permanent = true
			r.LockedUntil = time.Time{} // no stale end of an earlier lock
			res.Permanent = true
		} else {
			r.LockedUntil = now.Add(l.lockDuration(r.Lockouts))
			res.LockedUntil = r.LockedUntil
		}
		res.Locks = true
	}
	res.Lockouts = r.Lockouts
	return r, res
}

// GiveBack is the rule of ThrottleStore.Release as a pure function: it
// returns r with the reservation res given back, as if res had not been
// made, as far as r still shows it:
//
//   - A reservation that was not Allowed counted nothing: r is returned
//     unchanged.
//   - A reservation that started a lock (res.Locks) undoes it if it is
//     still r's current lock, with nothing counted since: r's Lockouts,
//     LockedUntil, Permanent and Last are still those res reported, and
//     its Failures not above zero. Failures are then the res.Failures−1
//     before it, less the reservations given back during the lock
//     (negative Failures), never below zero; Lockouts is one less, the
//     lock and Permanent are cleared, and Last goes back to res.PrevLast.
//     A lock that is no longer current (a reservation was counted after
//     it ended, or it was reset) is left alone.
//   - Any other reservation, counted since r's last lock (r.Lockouts is
//     res.Lockouts), takes one off Failures, never below zero, and gives
//     Last back to res.PrevLast if r is still as res left it: Last is
//     res.Last and Failures res.Failures (a reservation counted after it
//     in the same instant, as a store keeps time, keeps Last). Counted
//     before a lock that is still current (r.Lockouts is res.Lockouts+1
//     and Failures not above zero), it takes one off Failures, which may
//     go below zero (see Record), and leaves Last, the lock's. Counted
//     before anything else (a lock that is over, two locks), it is left
//     alone.
//
// Last never moves later: it goes back to res.PrevLast only when that is
// not after it, so a store may keep the time it forgets a record by as
// it was when the record was last reserved. GiveBack needs no Limit.
func (r Record) GiveBack(res Reservation) Record {
	switch {
	case !res.Allowed:
	case res.Locks:
		if r.Lockouts != res.Lockouts || r.Permanent != res.Permanent || !r.LockedUntil.Equal(res.LockedUntil) ||
			!r.Last.Equal(res.Last) || r.Failures > 0 {
			break
		}
		r.Failures = max(r.Failures+res.Failures-1, 0)
		r.Lockouts--
		r.Permanent, r.LockedUntil = false, time.Time{}
		if !res.PrevLast.After(r.Last) {
			r.Last = res.PrevLast
		}
	case r.Lockouts == res.Lockouts:
		if r.Failures == res.Failures && r.Last.Equal(res.Last) && !res.PrevLast.After(r.Last) {
			r.Last = res.PrevLast
		}
		r.Failures = max(r.Failures-1, 0)
	case r.Lockouts == res.Lockouts+1 && r.Failures <= 0:
		r.Failures--
	}
	return r
}

// Reservation is the result of ThrottleStore.Reserve.
type Reservation struct {
	// Allowed reports whether the attempt was counted and may be evaluated.
	// When false the key is locked and nothing was counted.
	Allowed bool
	// Failures is the count including this attempt (0 when not allowed).
	Failures int
	// Locks reports whether this attempt reached Max and started a lock
	// (the attempt itself is still allowed).
	Locks bool
	// LockedUntil is the end of the temporary lock in force (or just
	// started), zero if none.
	LockedUntil time.Time
	// Permanent reports a permanent lock in force (or just started).
	Permanent bool
	// Lockouts is the number of locks of the key so far.
	Lockouts int
	// Last and PrevLast are the record's Last after and before an
	// allowed reservation, as the store keeps them (to its precision;
	// PrevLast as stored, even when the record was forgotten). They let
	// Release give the reservation back exactly (Record.GiveBack); a
	// caller passes the Reservation back as it got it.
	Last, PrevLast time.Time
}

// State is what Peek reports about a key.
type State struct {
	Failures    int
	LockedUntil time.Time
	Lockouts    int
	Permanent   bool
}

// Locked reports whether the key is locked at now.
func (s State) Locked(now time.Time) bool {
	return s.Permanent || now.Before(s.LockedUntil)
}

// StateOf returns the State that Peek reports for r at now under l.
func StateOf(r Record, now time.Time, l Limit) State {
	if r.Expired(now, l) {
		return State{}
	}
	return State{Failures: max(r.Failures, 0), LockedUntil: r.LockedUntil, Lockouts: r.Lockouts, Permanent: r.Permanent}
}
