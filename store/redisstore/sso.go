package redisstore

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/guardhq/guard/sso"
)

var (
	_ sso.RequestStore = (*Store)(nil)
	_ sso.ReplayCache  = (*Store)(nil)
	_ sso.SubjectStore = (*Store)(nil)
)

// SSOStores returns the short-lived SAML roles that s keeps: Requests (the
// AuthnRequests and LogoutRequests sent), Replay (the assertion replay
// cache, shared by every replica) and Subjects (who each user signed in
// through SSO is at the IdP, for as long as the session lasts), all s.
// Connections (tenant data that must last) is nil, to be filled from a
// SQL backend's sso.Stores.
func (s *Store) SSOStores() sso.Stores {
	return sso.Stores{Requests: s, Replay: s, Subjects: s}
}

// requestKey is the key of the tracked SAML request (tenant, id). The
// tenant is written with its length first, as in indexKey, so that no two
// (tenant, id) pairs share a key.
func (s *Store) requestKey(tenant, id string) string {
	return s.prefix + "sr:" + strconv.Itoa(len(tenant)) + ":" + tenant + ":" + id
}

// replayKey is the key of the replay record of (tenant, id), with the
// tenant's length first as in requestKey.
func (s *Store) replayKey(tenant, id string) string {
	return s.prefix + "sa:" + strconv.Itoa(len(tenant)) + ":" + tenant + ":" + id
}

// subjectKey is the key of the subject of the user (tenant, userID), with
// the tenant's length first as in requestKey.
func (s *Store) subjectKey(tenant, userID string) string {
	return s.prefix + "su:" + strconv.Itoa(len(tenant)) + ":" + tenant + ":" + userID
}

// nameIDKey is the key of the index of the tenant's users whose subject
// has nameID, with the tenant's length first as in requestKey. The Lua
// function snkey builds the same name.
func (s *Store) nameIDKey(tenant, nameID string) string {
	return s.prefix + "sn:" + strconv.Itoa(len(tenant)) + ":" + tenant + ":" + nameID
}

// RememberRequest implements sso.RequestStore in one script, which makes
// the key expire at r.Expires (by the Redis clock: see the package
// documentation). Times are kept to the microsecond. It returns an
// *InputError, and changes nothing, when r.Expires, or r.CreatedAt unless
// it is the zero time, lies outside the years 1970 to 2255. Redis has no
// bound of its own besides maxmemory, so it never returns sso.ErrFull; a
// server out of memory gives an error.
func (s *Store) RememberRequest(ctx context.Context, r sso.Request) error {
	created := ""
	if !r.CreatedAt.IsZero() {
		us, err := micros("Request.CreatedAt", r.CreatedAt)
		if err != nil {
			return err
		}
		created = itoa(us)
	}
	expires, err := micros("Request.Expires", r.Expires)
	if err != nil {
		return err
	}
	args := []any{
		itoa(expireMillis(expires)),
		"k", r.Kind,
		"r", r.RelayState,
		"p", r.ReturnTo,
		"b", r.Binding,
		"c", created,
		"e", itoa(expires),
	}
	dup, err := rememberRequestScript.Run(ctx, s.rdb, []string{s.requestKey(r.Tenant, r.ID)}, args...).Int64()
	if err != nil {
		return redisErr("remember request", err)
	}
	if dup == 1 {
		return sso.ErrDuplicate
	}
	return nil
}

// Status codes of consumeRequestScript.
const (
	requestFound   = 0
	requestNone    = 1
	requestExpired = 2
	requestMangled = 9
)

// ConsumeRequest implements sso.RequestStore in one script, which removes
// the request and judges its expiry at now (kept to the microsecond): an
// expired request is removed and gives sso.ErrNotFound. It returns an
// *InputError, and changes nothing, when now lies outside the years 1970
// to 2255.
func (s *Store) ConsumeRequest(ctx context.Context, tenant, id string, now time.Time) (sso.Request, error) {
	at, err := micros("now", now)
	if err != nil {
		return sso.Request{}, err
	}
	v, err := consumeRequestScript.Run(ctx, s.rdb, []string{s.requestKey(tenant, id)}, itoa(at)).Slice()
	if err != nil {
		return sso.Request{}, redisErr("consume request", err)
	}
	if len(v) == 0 {
		return sso.Request{}, redisErr("consume request", ErrCorrupt)
	}
	status, ok := v[0].(int64)
	switch {
	case !ok || status == requestMangled:
		return sso.Request{}, redisErr("consume request", ErrCorrupt)
	case status == requestNone || status == requestExpired:
		return sso.Request{}, sso.ErrNotFound
	case status != requestFound || len(v) != 1+len(requestFieldNames):
		return sso.Request{}, redisErr("consume request", ErrCorrupt)
	}
	r, err := decodeRequest(v[1:], tenant, id)
	if err != nil {
		return sso.Request{}, redisErr("consume request", err)
	}
	return r, nil
}

// decodeRequest decodes the fields of a request in the order of
// requestFieldNames.
func decodeRequest(v []any, tenant, id string) (sso.Request, error) {
	var str [6]string
	for i := range str {
		s, ok := v[i].(string)
		if !ok {
			return sso.Request{}, fmt.Errorf("%w: request field %s", ErrCorrupt, requestFieldNames[i])
		}
		str[i] = s
	}
	r := sso.Request{Tenant: tenant, ID: id, Kind: str[0], RelayState: str[1], ReturnTo: str[2], Binding: str[3]}
	if str[4] != "" {
		created, err := strconv.ParseInt(str[4], 10, 64)
		if err != nil {
			return sso.Request{}, fmt.Errorf("%w: request field c", ErrCorrupt)
		}
		r.CreatedAt = fromMicros(created)
	}
	expires, err := strconv.ParseInt(str[5], 10, 64)
	if err != nil {
		return sso.Request{}, fmt.Errorf("%w: request field e", ErrCorrupt)
	}
	r.Expires = fromMicros(expires)
	return r, nil
}

// ReplayGrace is how long a replay record's key outlives its until, by
// the Redis clock: ClockGrace, the grace of every record whose early end
// would let an attacker through. InsertID judges a record by the caller's
// now, but Redis drops the key by its own: without the grace, a host
// whose clock is behind the Redis server's would find the record of an
// assertion still valid by its clock gone, and accept the assertion
// again. With it, a replay is refused on hosts up to ReplayGrace behind
// (pgstore keeps its records as long: SSOGCGrace).
const ReplayGrace = ClockGrace

// InsertID implements sso.ReplayCache in one script: the record of (tenant,
// id) is a key holding its until, replaced only if that until is at or
// before now (kept to the microsecond), and the key expires ReplayGrace
// after until (by the Redis clock: see the package documentation). It returns an
// *InputError, and changes nothing, when until or now lies outside the
// years 1970 to 2255. Redis has no bound of its own besides maxmemory, so
// it never returns sso.ErrFull; a server out of memory gives an error.
func (s *Store) InsertID(ctx context.Context, tenant, id string, until, now time.Time) (bool, error) {
	u, err := micros("until", until)
	if err != nil {
		return false, err
	}
	u = microsUp(u, until) // a record never ends before until
	at, err := micros("now", now)
	if err != nil {
		return false, err
	}
	n, err := insertIDScript.Run(ctx, s.rdb, []string{s.replayKey(tenant, id)}, itoa(at), itoa(u), itoa(expireMillis(u+ReplayGrace.Microseconds()))).Int64()
	if err != nil {
		return false, redisErr("insert replay id", err)
	}
	switch n {
	case 0:
		return false, nil
	case 1:
		return true, nil
	}
	return false, redisErr("insert replay id", ErrCorrupt)
}

// PutSubject implements sso.SubjectStore in one script, which replaces the
// user's subject and moves the user from the index of its previous NameID
// to that of sub.NameID. The subject's key expires at sub.Expires and
// each index with the last of its users (by the Redis clock: see the
// package documentation); users expired at now are dropped from the
// indexes the call changes. Times are kept to the microsecond. It returns
// an *InputError, and changes nothing, when sub.Expires or now lies
// outside the years 1970 to 2255, and an error wrapping ErrCorrupt, and
// changes nothing, when a key it would change holds data this package did
// not write. A Subject that sso.Subject.Validate refuses gives its
// *sso.InputError, and changes nothing.
func (s *Store) PutSubject(ctx context.Context, sub sso.Subject, now time.Time) error {
	if err := sub.Validate(); err != nil {
		return err
	}
	expires, err := micros("Subject.Expires", sub.Expires)
	if err != nil {
		return err
	}
	at, err := micros("now", now)
	if err != nil {
		return err
	}
	keys := []string{s.subjectKey(sub.Tenant, sub.UserID), s.nameIDKey(sub.Tenant, sub.NameID)}
	args := []any{
		s.prefix, sub.Tenant, sub.UserID, itoa(at), itoa(expires), itoa(expireMillis(expires)),
		sub.NameID, sub.NameIDFormat, sub.SessionIndex, sub.IdP,
	}
	n, err := putSubjectScript.Run(ctx, s.rdb, keys, args...).Int64()
	if err != nil {
		return redisErr("put subject", err)
	}
	if n != 0 {
		return redisErr("put subject", ErrCorrupt)
	}
	return nil
}

// Subject implements sso.SubjectStore with one HMGET; expiry is judged at
// now, kept to the microsecond. It returns an *InputError when now lies
// outside the years 1970 to 2255.
func (s *Store) Subject(ctx context.Context, tenant, userID string, now time.Time) (sso.Subject, error) {
	at, err := micros("now", now)
	if err != nil {
		return sso.Subject{}, err
	}
	v, err := s.rdb.HMGet(ctx, s.subjectKey(tenant, userID), subjectFieldNames...).Result()
	if err != nil {
		return sso.Subject{}, redisErr("lookup subject", err)
	}
	if !slices.ContainsFunc(v, func(f any) bool { return f != nil }) {
		return sso.Subject{}, sso.ErrNotFound
	}
	sub, expires, err := decodeSubject(tenant, userID, v)
	if err != nil {
		return sso.Subject{}, redisErr("lookup subject", err)
	}
	if at >= expires {
		return sso.Subject{}, sso.ErrNotFound
	}
	return sub, nil
}

// SubjectsByNameID implements sso.SubjectStore in one script, which reads
// the index of nameID and the subjects of its users, keeping those of idp;
// expiry is judged at now, kept to the microsecond. An empty idp reads
// nothing. It returns an *InputError when now lies outside the years 1970
// to 2255.
func (s *Store) SubjectsByNameID(ctx context.Context, tenant, idp, nameID string, now time.Time) ([]sso.Subject, error) {
	at, err := micros("now", now)
	if err != nil {
		return nil, err
	}
	if idp == "" {
		return nil, nil // a subject without an IdP belongs to none
	}
	v, err := subjectsByNameIDScript.Run(ctx, s.rdb, []string{s.nameIDKey(tenant, nameID)}, s.prefix, tenant, itoa(at), nameID, idp).Slice()
	if err != nil {
		return nil, redisErr("list subjects", err)
	}
	if len(v) == 0 || v[0] != int64(0) {
		return nil, redisErr("list subjects", ErrCorrupt)
	}
	out := make([]sso.Subject, 0, len(v)-1)
	for _, e := range v[1:] {
		// The user ID, then the fields after NameID.
		f, ok := e.([]any)
		if !ok || len(f) != 4 {
			return nil, redisErr("list subjects", ErrCorrupt)
		}
		userID, ok := f[0].(string)
		if !ok {
			return nil, redisErr("list subjects", ErrCorrupt)
		}
		sub, _, err := decodeSubject(tenant, userID, []any{nameID, f[1], f[2], f[3], idp})
		if err != nil {
			return nil, redisErr("list subjects", err)
		}
		out = append(out, sub)
	}
	slices.SortFunc(out, func(a, b sso.Subject) int { return strings.Compare(a.UserID, b.UserID) })
	return out, nil
}

// decodeSubject decodes the subject of (tenant, userID) from its fields
// in the order of subjectFieldNames, and returns it with its Expires in
// microseconds. The IdP, last, may be absent (nil): a subject written
// before this package kept it has none.
func decodeSubject(tenant, userID string, v []any) (sso.Subject, int64, error) {
	if len(v) != len(subjectFieldNames) {
		return sso.Subject{}, 0, ErrCorrupt
	}
	var str [5]string
	for i := range str {
		s, ok := v[i].(string)
		if !ok && !(i == 4 && v[i] == nil) {
			return sso.Subject{}, 0, fmt.Errorf("%w: subject field %s", ErrCorrupt, subjectFieldNames[i])
		}
		str[i] = s
	}
	expires, err := strconv.ParseInt(str[3], 10, 64)
	if err != nil || expires < minMicros || expires > maxMicros {
		return sso.Subject{}, 0, fmt.Errorf("%w: subject field e", ErrCorrupt)
	}
	sub := sso.Subject{
		Tenant: tenant, UserID: userID, IdP: str[4], NameID: str[0],
		NameIDFormat: str[1], SessionIndex: str[2], Expires: fromMicros(expires),
	}
	return sub, expires, nil
}
