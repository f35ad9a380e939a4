package redisstore

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/guardhq/guard/session"
)

// encodeSession validates n and returns its CreatedAt and ExpiresAt in
// microseconds and its field/value pairs for HSET.
func encodeSession(n session.Session) (created, expires int64, fields []any, err error) {
	created, err = micros("Session.CreatedAt", n.CreatedAt)
	if err != nil {
		return 0, 0, nil, err
	}
	seen, err := micros("Session.LastSeen", n.LastSeen)
	if err != nil {
		return 0, 0, nil, err
	}
	expires, err = micros("Session.ExpiresAt", n.ExpiresAt)
	if err != nil {
		return 0, 0, nil, err
	}
	fields = []any{
		"t", n.Tenant,
		"u", n.UserID,
		"c", itoa(created),
		"l", itoa(seen),
		"e", itoa(expires),
		"i", itoa(int64(n.IdleTimeout)),
		"ic", itoa(ceilMicros(n.IdleTimeout)),
		"ih", itoa(ceilMicros(n.IdleTimeout / 2)),
		"ip", n.IP,
		"ua", n.UserAgent,
		"f", strconv.FormatUint(uint64(n.Flags), 10),
	}
	return created, expires, fields, nil
}

// decodeSession decodes the fields of a session as the scripts return
// them (in the order of sessionFields, then optionally the hex hash). The
// hash is h if h is not nil, else the hex hash after the fields.
func decodeSession(v []any, h *session.Hash) (session.Session, error) {
	if len(v) < 9 || (h == nil && len(v) < 10) {
		return session.Session{}, ErrCorrupt
	}
	var str [10]string
	n := 9
	if h == nil {
		n = 10
	}
	for i := range n {
		s, ok := v[i].(string)
		if !ok {
			return session.Session{}, ErrCorrupt
		}
		str[i] = s
	}
	var s session.Session
	if h != nil {
		s.Hash = *h
	} else if err := decodeHash(s.Hash[:], str[9]); err != nil {
		return session.Session{}, err
	}
	var nums [4]int64
	for i, f := range [4]string{str[2], str[3], str[4], str[5]} {
		n, err := strconv.ParseInt(f, 10, 64)
		if err != nil {
			return session.Session{}, ErrCorrupt
		}
		nums[i] = n
	}
	flags, err := strconv.ParseUint(str[8], 10, 32)
	if err != nil {
		return session.Session{}, ErrCorrupt
	}
	s.Tenant = str[0]
	s.UserID = str[1]
	s.CreatedAt = fromMicros(nums[0])
	s.LastSeen = fromMicros(nums[1])
	s.ExpiresAt = fromMicros(nums[2])
	s.IdleTimeout = time.Duration(nums[3])
	s.IP = str[6]
	s.UserAgent = str[7]
	s.Flags = uint32(flags)
	return s, nil
}

// decodeSessions decodes a list of sessions, each with its hex hash.
func decodeSessions(v any) ([]session.Session, error) {
	list, ok := v.([]any)
	if !ok {
		return nil, ErrCorrupt
	}
	if len(list) == 0 {
		return nil, nil
	}
	out := make([]session.Session, 0, len(list))
	for _, e := range list {
		f, ok := e.([]any)
		if !ok {
			return nil, ErrCorrupt
		}
		s, err := decodeSession(f, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// Create implements session.Store. It returns an *InputError, and changes
// nothing, when a time of n lies outside the years 1970 to 2255.
func (s *Store) Create(ctx context.Context, n session.Session, lim session.Limit) ([]session.Session, error) {
	keys, args, err := s.createArgs(n, lim)
	if err != nil {
		return nil, err
	}
	res, err := createScript.Run(ctx, s.rdb, keys, args...).Slice()
	if err != nil {
		return nil, redisErr("create session", err)
	}
	if len(res) == 0 {
		return nil, redisErr("create session", ErrCorrupt)
	}
	switch res[0] {
	case int64(0):
	case int64(1):
		return nil, session.ErrDuplicate
	case int64(2):
		return nil, session.ErrLimit
	default:
		return nil, redisErr("create session", ErrCorrupt)
	}
	if len(res) == 1 {
		return nil, nil
	}
	evicted, err := decodeSessions(res[1:])
	if err != nil {
		return nil, redisErr("create session", err)
	}
	return evicted, nil
}

// createArgs returns the keys and arguments of createScript for n.
func (s *Store) createArgs(n session.Session, lim session.Limit) (keys []string, args []any, err error) {
	created, expires, fields, err := encodeSession(n)
	if err != nil {
		return nil, nil, err
	}
	refuse := "0"
	if lim.Policy == session.RefuseNew {
		refuse = "1"
	}
	args = make([]any, 0, 6+len(fields))
	args = append(args, s.prefix, member(n.Hash), itoa(created), strconv.Itoa(max(lim.Max, 0)), refuse, itoa(expireMillis(expires)))
	args = append(args, fields...)
	return []string{s.sessionKey(n.Hash), s.indexKey(n.Tenant, n.UserID), s.tombIndexKey(n.Tenant, n.UserID)}, args, nil
}

// Lookup implements session.Store with one HMGET and, only when it finds
// no session, a GET of the tombstone. (LookupTouch, the per-request check,
// is one command.)
func (s *Store) Lookup(ctx context.Context, h session.Hash) (session.Session, error) {
	v, err := s.rdb.HMGet(ctx, s.sessionKey(h), sessionFieldNames...).Result()
	if err != nil {
		return session.Session{}, redisErr("lookup session", err)
	}
	if len(v) == 0 || v[0] == nil {
		end, err := s.rdb.Get(ctx, s.tombKey(h)).Result()
		if errors.Is(err, redis.Nil) {
			return session.Session{}, session.ErrNotFound
		}
		if err != nil {
			return session.Session{}, redisErr("lookup session", err)
		}
		return session.Session{}, evicted(end)
	}
	out, err := decodeSession(v, &h)
	if err != nil {
		return session.Session{}, redisErr("lookup session", err)
	}
	return out, nil
}

// LookupTouch implements session.LookupToucher: one EVALSHA, which
// returns the session and, when it is live at now, due and (if maxGap > 0)
// last seen less than maxGap before now, sets its LastSeen to now. It
// returns an *InputError when now lies outside the years 1970 to 2255.
func (s *Store) LookupTouch(ctx context.Context, h session.Hash, now time.Time, interval, maxGap time.Duration) (session.Session, error) {
	at, err := micros("now", now)
	if err != nil {
		return session.Session{}, err
	}
	res, err := lookupTouchScript.Run(ctx, s.rdb, []string{s.sessionKey(h)}, itoa(at), itoa(ceilMicros(interval)), itoa(ceilMicros(maxGap))).Result()
	if errors.Is(err, redis.Nil) {
		return session.Session{}, session.ErrNotFound
	}
	if err != nil {
		return session.Session{}, redisErr("lookup session", err)
	}
	if end, ok := res.(string); ok {
		return session.Session{}, evicted(end)
	}
	v, ok := res.([]any)
	if !ok {
		return session.Session{}, redisErr("lookup session", ErrCorrupt)
	}
	out, err := decodeSession(v, &h)
	if err != nil {
		return session.Session{}, redisErr("lookup session", err)
	}
	return out, nil
}

// evicted returns the error that reports a tombstone that holds v: the
// *session.EvictedError of an evicted session's (its end), or the
// *session.RotatedError of a rotated one's (see rotatedTomb).
func evicted(v string) error {
	end, rest, rotated := strings.Cut(v, ",")
	us, err := strconv.ParseInt(end, 10, 64)
	if err != nil {
		return redisErr("lookup session", ErrCorrupt)
	}
	if !rotated {
		return &session.EvictedError{EndsAt: fromMicros(us)}
	}
	re, ok := rotatedTomb(rest)
	if !ok {
		return redisErr("lookup session", ErrCorrupt)
	}
	re.EndsAt = fromMicros(us)
	return re
}

// rotatedTomb parses the rest of a rotated session's tombstone after its
// end: "<hex hash of the successor>,<len(tenant)>:<tenant>:<user>".
func rotatedTomb(v string) (*session.RotatedError, bool) {
	re := &session.RotatedError{}
	succ, user, ok := strings.Cut(v, ",")
	if !ok || len(succ) != hex.EncodedLen(len(re.Successor)) {
		return nil, false
	}
	if _, err := hex.Decode(re.Successor[:], []byte(succ)); err != nil {
		return nil, false
	}
	n, user, ok := strings.Cut(user, ":")
	tl, err := strconv.Atoi(n)
	if !ok || err != nil || tl < 0 || tl >= len(user) || user[tl] != ':' {
		return nil, false
	}
	re.Tenant, re.UserID = user[:tl], user[tl+1:]
	return re, true
}

// Touch implements session.Store. It returns an *InputError when seen lies
// outside the years 1970 to 2255.
func (s *Store) Touch(ctx context.Context, h session.Hash, seen time.Time) error {
	at, err := micros("seen", seen)
	if err != nil {
		return err
	}
	n, err := touchScript.Run(ctx, s.rdb, []string{s.sessionKey(h)}, itoa(at)).Int64()
	if err != nil {
		return redisErr("touch session", err)
	}
	if n == 0 {
		return session.ErrNotFound
	}
	return nil
}

// Untouch implements session.LookupToucher: one EVALSHA, which sets
// LastSeen to prev only while it is touched (compare and set). It returns
// an *InputError when touched or prev lies outside the years 1970 to 2255.
func (s *Store) Untouch(ctx context.Context, h session.Hash, touched, prev time.Time) error {
	at, err := micros("touched", touched)
	if err != nil {
		return err
	}
	back, err := micros("prev", prev)
	if err != nil {
		return err
	}
	if err := untouchScript.Run(ctx, s.rdb, []string{s.sessionKey(h)}, itoa(at), itoa(back)).Err(); err != nil {
		return redisErr("untouch session", err)
	}
	return nil
}

// Delete implements session.Store.
func (s *Store) Delete(ctx context.Context, h session.Hash) (session.Session, error) {
	v, err := deleteScript.Run(ctx, s.rdb, []string{s.sessionKey(h)}, s.prefix, member(h)).Slice()
	if errors.Is(err, redis.Nil) {
		return session.Session{}, session.ErrNotFound
	}
	if err != nil {
		return session.Session{}, redisErr("delete session", err)
	}
	out, err := decodeSession(v, &h)
	if err != nil {
		return session.Session{}, redisErr("delete session", err)
	}
	return out, nil
}

// DeleteLineage implements session.LineageRevoker in one EVALSHA, which
// follows the rotation tombstones from h and deletes the session at the
// chain's end as Delete does; no rotation lands in between. A negative
// maxHops follows no tombstone, like 0.
func (s *Store) DeleteLineage(ctx context.Context, h session.Hash, maxHops int) (session.Session, bool, error) {
	res, err := deleteLineageScript.Run(ctx, s.rdb, []string{s.sessionKey(h)}, s.prefix, member(h), strconv.Itoa(max(maxHops, 0))).Slice()
	if err != nil {
		return session.Session{}, false, redisErr("delete session lineage", err)
	}
	if len(res) == 0 {
		return session.Session{}, false, redisErr("delete session lineage", ErrCorrupt)
	}
	switch res[0] {
	case int64(0):
	case int64(1):
		return session.Session{}, false, session.ErrNotFound
	default:
		return session.Session{}, false, redisErr("delete session lineage", ErrCorrupt)
	}
	if len(res) < 2 {
		return session.Session{}, false, redisErr("delete session lineage", ErrCorrupt)
	}
	out, err := decodeSession(res[2:], nil)
	if err != nil {
		return session.Session{}, false, redisErr("delete session lineage", err)
	}
	return out, res[1] == int64(1), nil
}

// Rotate implements session.Store. It returns an *InputError, and changes
// nothing, when a time of n lies outside the years 1970 to 2255.
func (s *Store) Rotate(ctx context.Context, old session.Hash, n session.Session) error {
	created, expires, fields, err := encodeSession(n)
	if err != nil {
		return err
	}
	args := make([]any, 0, 6+len(fields))
	args = append(args, s.prefix, member(old), member(n.Hash), itoa(created), itoa(expireMillis(expires)), itoa(expires))
	args = append(args, fields...)
	keys := []string{s.sessionKey(old), s.sessionKey(n.Hash), s.indexKey(n.Tenant, n.UserID)}
	code, err := rotateScript.Run(ctx, s.rdb, keys, args...).Int64()
	if err != nil {
		return redisErr("rotate session", err)
	}
	switch code {
	case 0:
		return nil
	case 1:
		return session.ErrNotFound
	case 2:
		return session.ErrDuplicate
	}
	return redisErr("rotate session", fmt.Errorf("%w: script returned %d", ErrCorrupt, code))
}

// ListByUser implements session.UserIndex. It also drops from the user's
// index the sessions that Redis has expired.
func (s *Store) ListByUser(ctx context.Context, tenant, userID string) ([]session.Session, error) {
	v, err := listScript.Run(ctx, s.rdb, []string{s.indexKey(tenant, userID)}, s.prefix).Result()
	if err != nil {
		return nil, redisErr("list sessions", err)
	}
	out, err := decodeSessions(v)
	if err != nil {
		return nil, redisErr("list sessions", err)
	}
	return out, nil
}

// lineageHops is session.MaxLineageHops as an argument of
// deleteByUserScript.
var lineageHops = strconv.Itoa(session.MaxLineageHops)

// DeleteByUser implements session.UserIndex in one EVALSHA, which also
// keeps the rotation tombstones that lead to except. The sessions are
// returned oldest first.
func (s *Store) DeleteByUser(ctx context.Context, tenant, userID string, except session.Hash) ([]session.Session, error) {
	spare := ""
	if !except.IsZero() {
		spare = member(except)
	}
	v, err := deleteByUserScript.Run(ctx, s.rdb, []string{s.indexKey(tenant, userID), s.tombIndexKey(tenant, userID)},
		s.prefix, spare, lineageHops).Result()
	if err != nil {
		return nil, redisErr("delete sessions", err)
	}
	out, err := decodeSessions(v)
	if err != nil {
		return nil, redisErr("delete sessions", err)
	}
	return out, nil
}
