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
// attempt for ResetAfter, is forgotten: its count and lock history start
// again from zero. Time spent locked counts towards ResetAfter: a lock at
// least as long as ResetAfter ends with the key forgotten, so the wait only
// grows while locks are shorter than ResetAfter, and Validate refuses a
// PermanentAfter whose last temporary lock would not be (the permanent
// lock could never be reached).
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
type Record struct {
	Failures    int       // reservations since the last lock, reset or forget
	Last        time.Time // time of the last counted reservation
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
func (l Limit) Apply(r Record, now time.Time) (Record, Reservation) {
	if r.Expired(now, l) {
		r = Record{}
	}
	if r.Permanent {
		return r, Reservation{Allowed: false, Permanent: true, Lockouts: r.Lockouts}
	}
	if now.Before(r.LockedUntil) {
		return r, Reservation{Allowed: false, LockedUntil: r.LockedUntil, Lockouts: r.Lockouts}
	}
	r.Failures++
	r.Last = now
	res := Reservation{Allowed: true, Failures: r.Failures}
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
	return State{Failures: r.Failures, LockedUntil: r.LockedUntil, Lockouts: r.Lockouts, Permanent: r.Permanent}
}
