package redisstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/guardhq/guard/auth"
)

var _ auth.BatchThrottleStore = (*Store)(nil)

// lockTable returns the length of lock number 1, 2, … of l in
// microseconds (rounded up), up to and including the first that reaches
// l.MaxLockFor: lock number n lasts entry min(n, len) — LockFor·2^(n-1)
// capped at MaxLockFor, the rule of auth.Limit. l must be valid.
func lockTable(l auth.Limit) []string {
	var out []string
	for d := l.LockFor; ; {
		if d >= l.MaxLockFor {
			return append(out, itoa(ceilMicros(l.MaxLockFor)))
		}
		out = append(out, itoa(ceilMicros(d)))
		if d > l.MaxLockFor/2 {
			d = l.MaxLockFor
		} else {
			d *= 2
		}
	}
}

// Reserve implements auth.ThrottleStore: auth.Limit.Apply in one Lua
// script. now is kept to the microsecond: compared with the stored times
// truncated, which is exact, and rounded up as the time the attempt, and a
// lock it starts, are counted from, as are ResetAfter and the lock
// lengths, so that neither a count nor a lock ends early (each may end up
// to 2 µs late). The rules are judged at now from the record's fields;
// the record's key expires ClockGrace after the record is forgotten
// (auth.Record.ExpiresAt), by the Redis clock, so that a host whose clock
// is behind the server's by up to ClockGrace still finds every lock and
// count in force at its now. It returns lim's
// *auth.InvalidLimitError for a limit that does not validate, and an
// *InputError when now, or the end of a lock starting at now, lies outside
// the years 1970 to 2255; nothing is changed then.
func (s *Store) Reserve(ctx context.Context, key string, now time.Time, lim auth.Limit) (auth.Reservation, error) {
	keys := [1]auth.ThrottleKey{{Key: key, Limit: lim}}
	res, err := s.ReserveAll(ctx, now, keys[:])
	if err != nil {
		return auth.Reservation{}, err
	}
	return res[0], nil
}

// ReserveAll implements auth.BatchThrottleStore: Reserve of each key in
// one Lua script. The keys of one call are in one hash slot, as every key
// of the store is on a Redis Cluster (see the package documentation). It
// returns the errors of Reserve for bad input, and changes nothing then.
func (s *Store) ReserveAll(ctx context.Context, now time.Time, keys []auth.ThrottleKey) ([]auth.Reservation, error) {
	if len(keys) == 0 {
		return []auth.Reservation{}, nil
	}
	at, err := micros("now", now)
	if err != nil {
		return nil, err
	}
	up := microsUp(at, now)
	names := make([]string, len(keys))
	args := make([]any, 2, 2+5*len(keys))
	args[0], args[1] = itoa(at), itoa(up)
	for i, k := range keys {
		lim := k.Limit
		if err := lim.Validate(); err != nil {
			return nil, err
		}
		if up > maxMicros-ceilMicros(lim.MaxLockFor) {
			return nil, &InputError{Field: "lim.MaxLockFor", Reason: "would end a lock after 2255"}
		}
		table := lockTable(lim)
		args = append(args, strconv.Itoa(lim.Max), itoa(ceilMicros(lim.ResetAfter)), strconv.Itoa(lim.PermanentAfter),
			strconv.Itoa(len(table)))
		for _, d := range table {
			args = append(args, d)
		}
		names[i] = s.throttleKey(k.Key)
	}
	v, err := reserveScript.Run(ctx, s.rdb, names, args...).Slice()
	if err != nil {
		return nil, redisErr("reserve", err)
	}
	if len(v) == 0 || len(v) > len(keys) {
		return nil, redisErr("reserve", ErrCorrupt)
	}
	out := make([]auth.Reservation, len(v))
	for i, r := range v {
		rv, ok := r.([]any)
		if !ok {
			return nil, redisErr("reserve", ErrCorrupt)
		}
		if out[i], err = decodeReservation(rv); err != nil {
			return nil, redisErr("reserve", err)
		}
	}
	return out, nil
}

// decodeReservation decodes the reply of reserveScript.
func decodeReservation(v []any) (auth.Reservation, error) {
	if len(v) != 8 {
		return auth.Reservation{}, ErrCorrupt
	}
	var times [2]time.Time
	for i := range times {
		s, ok := v[6+i].(string)
		if !ok {
			return auth.Reservation{}, ErrCorrupt
		}
		t, err := parseTime(s)
		if err != nil {
			return auth.Reservation{}, err
		}
		times[i] = t
	}
	var n [5]int64
	for i, j := range [5]int{0, 1, 2, 4, 5} {
		x, ok := v[j].(int64)
		if !ok {
			return auth.Reservation{}, ErrCorrupt
		}
		n[i] = x
	}
	lu, ok := v[3].(string)
	if !ok {
		return auth.Reservation{}, ErrCorrupt
	}
	until, err := parseTime(lu)
	if err != nil {
		return auth.Reservation{}, err
	}
	return auth.Reservation{
		Allowed:     n[0] == 1,
		Failures:    int(n[1]),
		Locks:       n[2] == 1,
		LockedUntil: until,
		Permanent:   n[3] == 1,
		Lockouts:    int(n[4]),
		Last:        times[0],
		PrevLast:    times[1],
	}, nil
}

// parseTime parses microseconds since 1970; "" is the zero time.
func parseTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	us, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return time.Time{}, ErrCorrupt
	}
	return fromMicros(us), nil
}

// Release implements auth.ThrottleStore with one Lua script. The
// record's expiry stays as its last Reserve set it: auth.Record.GiveBack
// never makes a record forgotten later, so the key may only outlive its
// record by more than ClockGrace; a permanent lock that Release lifts
// leaves the key without an expiry until its next Reserve or Reset.
func (s *Store) Release(ctx context.Context, key string, res auth.Reservation) error {
	if err := settleScript.Run(ctx, s.rdb, []string{s.throttleKey(key)}, settleArgs(nil, false, res)...).Err(); err != nil {
		return redisErr("release", err)
	}
	return nil
}

// settleArgs appends the 9 ARGV of settleScript for one key to args.
func settleArgs(args []any, reset bool, r auth.Reservation) []any {
	b := func(v bool) string {
		if v {
			return "1"
		}
		return "0"
	}
	t := func(v time.Time) string {
		if v.IsZero() {
			return ""
		}
		return itoa(v.UnixMicro())
	}
	return append(args, b(reset), b(r.Allowed), strconv.Itoa(r.Failures), b(r.Locks), strconv.Itoa(r.Lockouts),
		t(r.LockedUntil), b(r.Permanent), t(r.Last), t(r.PrevLast))
}

// Reset implements auth.ThrottleStore with one DEL.
func (s *Store) Reset(ctx context.Context, key string) error {
	if err := s.rdb.Del(ctx, s.throttleKey(key)).Err(); err != nil {
		return redisErr("reset", err)
	}
	return nil
}

// Settle implements auth.BatchThrottleStore: Release or Reset of each key
// in one Lua script, as Release does.
func (s *Store) Settle(ctx context.Context, keys []auth.Settlement) error {
	if len(keys) == 0 {
		return nil
	}
	names := make([]string, len(keys))
	args := make([]any, 0, 9*len(keys))
	for i, k := range keys {
		names[i] = s.throttleKey(k.Key)
		args = settleArgs(args, k.Reset, k.Reservation)
	}
	if err := settleScript.Run(ctx, s.rdb, names, args...).Err(); err != nil {
		return redisErr("settle", err)
	}
	return nil
}

// Peek implements auth.ThrottleStore with one HMGET, judged by
// auth.StateOf at now (kept to the microsecond). It returns an *InputError
// when now lies outside the years 1970 to 2255.
func (s *Store) Peek(ctx context.Context, key string, now time.Time, lim auth.Limit) (auth.State, error) {
	at, err := micros("now", now)
	if err != nil {
		return auth.State{}, err
	}
	v, err := s.rdb.HMGet(ctx, s.throttleKey(key), "f", "l", "lu", "n", "p").Result()
	if err != nil {
		return auth.State{}, redisErr("peek", err)
	}
	if len(v) != 5 {
		return auth.State{}, redisErr("peek", ErrCorrupt)
	}
	if v[1] == nil {
		return auth.State{}, nil
	}
	rec, err := decodeRecord(v)
	if err != nil {
		return auth.State{}, redisErr("peek", err)
	}
	return auth.StateOf(rec, fromMicros(at), lim), nil
}

// decodeRecord decodes the fields f, l, lu, n, p of a throttle record.
func decodeRecord(v []any) (auth.Record, error) {
	var str [5]string
	for i := range str {
		s, ok := v[i].(string)
		if !ok {
			return auth.Record{}, fmt.Errorf("%w: throttle field %d", ErrCorrupt, i)
		}
		str[i] = s
	}
	f, err1 := strconv.Atoi(str[0])
	n, err2 := strconv.Atoi(str[3])
	if err1 != nil || err2 != nil {
		return auth.Record{}, ErrCorrupt
	}
	last, err := parseTime(str[1])
	if err != nil {
		return auth.Record{}, err
	}
	until, err := parseTime(str[2])
	if err != nil {
		return auth.Record{}, err
	}
	return auth.Record{Failures: f, Last: last, LockedUntil: until, Lockouts: n, Permanent: str[4] == "1"}, nil
}
