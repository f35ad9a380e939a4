package auth

import (
	"context"
	"time"
)

// ThrottleKey is one key of BatchThrottleStore.ReserveAll and the limit it
// is reserved under.
type ThrottleKey struct {
	Key   string
	Limit Limit
}

// Settlement is one key of BatchThrottleStore.Settle: Reset forgets the
// key (ThrottleStore.Reset), otherwise Reservation, a reservation of the
// key, is given back (ThrottleStore.Release).
type Settlement struct {
	Key         string
	Reset       bool
	Reservation Reservation // given back when Reset is false
}

// BatchThrottle returns ts as a BatchThrottleStore: ts itself when it is
// one, otherwise ts with a ReserveAll and a Settle that call its Reserve,
// Release and Reset once per key, in order. It returns nil for a nil ts.
func BatchThrottle(ts ThrottleStore) BatchThrottleStore {
	switch ts := ts.(type) {
	case nil:
		return nil
	case BatchThrottleStore:
		return ts
	default:
		return throttleLoop{ts}
	}
}

// throttleLoop is a BatchThrottleStore made of a plain ThrottleStore.
type throttleLoop struct{ ThrottleStore }

func (l throttleLoop) ReserveAll(ctx context.Context, now time.Time, keys []ThrottleKey) ([]Reservation, error) {
	return ReserveInOrder(keys, func(k ThrottleKey) (Reservation, error) { return l.Reserve(ctx, k.Key, now, k.Limit) })
}

// ReserveInOrder is the rule of BatchThrottleStore.ReserveAll for a store
// that reserves one key at a time: reserve each key in order, stop after
// the first refused one, and return the reservations made; an error stops
// it and is returned alone.
func ReserveInOrder(keys []ThrottleKey, reserve func(ThrottleKey) (Reservation, error)) ([]Reservation, error) {
	out := make([]Reservation, 0, len(keys))
	for _, k := range keys {
		r, err := reserve(k)
		if err != nil {
			return nil, err
		}
		out = append(out, r)
		if !r.Allowed {
			break
		}
	}
	return out, nil
}

func (l throttleLoop) Settle(ctx context.Context, keys []Settlement) error {
	for _, k := range keys {
		var err error
		if k.Reset {
			err = l.Reset(ctx, k.Key)
		} else {
			err = l.Release(ctx, k.Key, k.Reservation)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
