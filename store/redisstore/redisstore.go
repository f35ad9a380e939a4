package redisstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/redis/go-redis/v9"

	guard "github.com/guardhq/guard"
	"github.com/guardhq/guard/auth"
	"github.com/guardhq/guard/session"
)

// DefaultPrefix is the key prefix used when Options.Prefix is empty.
const DefaultPrefix = "guard:"

// MaxPrefixLen is the longest Options.Prefix accepted, in bytes.
const MaxPrefixLen = 64

// Options configures a Store. The zero value is usable.
type Options struct {
	// Prefix starts every key the store writes (default "guard:"), so that
	// several applications, or several Guard deployments, can share one
	// Redis database: give them prefixes neither of which starts with the
	// other. The key's type tag follows the prefix with no separator, so
	// under "guard" and "guards" (or "guard:" and "guard:s") a user's SAML
	// subject of the one is the same user's list of sessions of the other,
	// and that user's sign-ins fail under one or the other (see the
	// package documentation). It is at most MaxPrefixLen bytes of
	// printable ASCII without spaces. With a Redis Cluster or Ring client
	// it must contain a hash tag, such as "{guard}:", that puts every key
	// in one hash slot (see the package documentation).
	Prefix string

	// SkipEvictionCheck, when true, makes New skip its check of the
	// server's maxmemory-policy, and so do no I/O. It is unsafe unless
	// every node of the deployment runs with maxmemory-policy
	// noeviction: a server that may evict keys drops those of the store
	// silently at its maxmemory (every key has an expiry, so volatile-*
	// policies pick them too), and a user's list of sessions gone while
	// the sessions stay ends no session when they are all revoked (see
	// the package documentation).
	SkipEvictionCheck bool
}

// ConfigError reports an unacceptable argument of New.
type ConfigError struct {
	Field, Reason string
}

func (e *ConfigError) Error() string { return "redisstore: invalid " + e.Field + ": " + e.Reason }

// EvictionError reports, from New, a Redis server whose maxmemory-policy
// lets it evict the store's keys: any policy but noeviction.
type EvictionError struct {
	Policy string // the server's maxmemory-policy, such as "volatile-lru"
}

func (e *EvictionError) Error() string {
	return "redisstore: the Redis server's maxmemory-policy is " + strconv.Quote(e.Policy) +
		", which lets it evict the store's keys (a user's list of sessions, which revoking them all relies on; throttle counters; SAML replay records): set maxmemory-policy noeviction"
}

// InputError reports a value that the store cannot keep exactly, such as a
// time outside the years 1970 to 2255 (the store computes with
// microseconds since 1970 in Lua, whose numbers are exact up to 2^53). The
// call that returns it has changed nothing.
type InputError struct {
	Field, Reason string
}

func (e *InputError) Error() string { return "redisstore: invalid " + e.Field + ": " + e.Reason }

// Store keeps sessions, throttle counters and the short-lived MFA and SAML
// records in Redis. It implements session.Store, session.UserIndex,
// session.LookupToucher, session.LineageRevoker, auth.ThrottleStore,
// mfa.CodeStore, mfa.RateStore, mfa.TransactionStore, sso.RequestStore,
// sso.ReplayCache and sso.SubjectStore; use Stores
// (or MFAStores and SSOStores) to plug it into a guard.Stores. It is safe
// for concurrent use, and every method that changes data is one Lua script
// (or one command), so its invariants hold across any number of processes
// sharing the Redis database.
type Store struct {
	rdb    redis.UniversalClient
	prefix string
}

var (
	_ session.Store          = (*Store)(nil)
	_ session.UserIndex      = (*Store)(nil)
	_ session.LookupToucher  = (*Store)(nil)
	_ session.LineageRevoker = (*Store)(nil)
	_ auth.ThrottleStore     = (*Store)(nil)
)

// New returns a Store that keeps its data in client under opts.Prefix.
// Unless opts.SkipEvictionCheck, it asks the server its maxmemory-policy
// (CONFIG GET, each node's with a Cluster or Ring client; within ctx and
// the client's timeouts) and refuses any but noeviction with an
// *EvictionError. A server that refuses CONFIG GET (managed services
// often disable CONFIG, an ACL may deny it) is taken at its operator's
// word: set noeviction there. A server that cannot be reached, or that is
// loading or refuses the client, is an error. The scripts are loaded on
// first use (or by Load). The caller owns client and closes it after the
// last use of the Store.
func New(ctx context.Context, client redis.UniversalClient, opts Options) (*Store, error) {
	if client == nil {
		return nil, &ConfigError{Field: "client", Reason: "is required"}
	}
	p := opts.Prefix
	if p == "" {
		p = DefaultPrefix
	}
	if len(p) > MaxPrefixLen {
		return nil, &ConfigError{Field: "Options.Prefix", Reason: fmt.Sprintf("is longer than %d bytes", MaxPrefixLen)}
	}
	for i := 0; i < len(p); i++ {
		if c := p[i]; c <= ' ' || c >= utf8.RuneSelf {
			return nil, &ConfigError{Field: "Options.Prefix", Reason: "must be printable ASCII without spaces"}
		}
	}
	switch client.(type) {
	case *redis.ClusterClient, *redis.Ring:
		if !hasHashTag(p) {
			return nil, &ConfigError{Field: "Options.Prefix", Reason: `must contain a hash tag such as "{guard}" with a Cluster or Ring client: a user's keys and the keys of their sessions must share one hash slot`}
		}
	}
	if !opts.SkipEvictionCheck {
		if err := checkEviction(ctx, client); err != nil {
			return nil, err
		}
	}
	return &Store{rdb: client, prefix: p}, nil
}

// checkEviction returns an *EvictionError if a server of client may evict
// keys, as its maxmemory-policy says, or the error of a server that did
// not answer. A server that refuses CONFIG GET passes.
func checkEviction(ctx context.Context, client redis.UniversalClient) error {
	var err error
	if shards, ok := client.(interface {
		ForEachShard(context.Context, func(context.Context, *redis.Client) error) error
	}); ok {
		var checked atomic.Int64
		err = shards.ForEachShard(ctx, func(ctx context.Context, c *redis.Client) error {
			checked.Add(1)
			return checkPolicy(ctx, c)
		})
		if err == nil && checked.Load() == 0 {
			err = errors.New("no server answered")
		}
	} else {
		err = checkPolicy(ctx, client)
	}
	if ee := (*EvictionError)(nil); err != nil && !errors.As(err, &ee) {
		return redisErr("checking maxmemory-policy", err)
	}
	return err
}

// checkPolicy is checkEviction for one server.
func checkPolicy(ctx context.Context, c redis.Cmdable) error {
	m, err := c.ConfigGet(ctx, "maxmemory-policy").Result()
	switch {
	case err == nil:
		if p, ok := m["maxmemory-policy"]; ok && p != "noeviction" {
			return &EvictionError{Policy: p}
		}
		return nil
	case refused(err):
		return nil
	default:
		return err
	}
}

// refused reports whether err is a server's refusal of a command, as
// opposed to a failure to reach the server or a server not ready for, or
// not letting in, the client.
func refused(err error) bool {
	var re redis.Error
	return errors.As(err, &re) && !redis.IsLoadingError(err) && !redis.IsAuthError(err) &&
		!redis.IsMasterDownError(err) && !redis.IsTryAgainError(err) &&
		!redis.IsClusterDownError(err) && !redis.IsMaxClientsError(err)
}

// hasHashTag reports whether key's hash slot is decided by a hash tag, as
// Redis Cluster defines it: the bytes between the first "{" and the first
// "}" after it, when there are any.
func hasHashTag(key string) bool {
	i := strings.IndexByte(key, '{')
	if i < 0 {
		return false
	}
	j := strings.IndexByte(key[i+1:], '}')
	return j > 0
}

// Stores returns base with the short-lived stores set to s: Sessions,
// SessionIndex, Throttle, the one-time codes, send limits and pending
// sign-ins of MFA (MFA.Codes, MFA.Rates, MFA.Transactions), and the
// tracked SAML requests, assertion replay cache and the users' subjects
// at the IdP, which last as long as their sessions (SSO.Requests,
// SSO.Replay, SSO.Subjects). For example those in Redis, everything else
// (including SSO.Connections) in PostgreSQL.
func (s *Store) Stores(base guard.Stores) guard.Stores {
	base.Sessions = s
	base.SessionIndex = s
	base.Throttle = s
	base.MFA.Codes, base.MFA.Rates, base.MFA.Transactions = s, s, s
	base.SSO.Requests, base.SSO.Replay, base.SSO.Subjects = s, s, s
	return base
}

// Load loads every script of the store into the Redis script cache, so
// that the first call of each method costs one round trip, not two
// (EVALSHA, then EVAL when the script is missing). Calling it is
// optional, for example at start-up.
func (s *Store) Load(ctx context.Context) error {
	for _, sc := range allScripts {
		if err := sc.Load(ctx, s.rdb).Err(); err != nil {
			return fmt.Errorf("redisstore: loading scripts: %w", err)
		}
	}
	return nil
}

// ClockGrace is how long the key of a record that bounds an attacker
// outlives the end the record's rules give it, by the Redis clock: a
// throttle record (its lock and its count of failures), an MFA send
// counter (its window) and a SAML replay record (ReplayGrace). Every rule
// is judged at the now the caller passes, from the times stored in the
// record; the key's expiry only frees the memory, and Redis applies it by
// its own clock. Without the grace, a host whose clock is behind the
// Redis server's would find such a record gone while it is still in
// force by the host's clock: a lock lifted, failures or sends counted
// from zero again, an assertion accepted twice. With it, those rules hold
// on hosts up to ClockGrace behind the server; each such key takes its
// memory that much longer.
const ClockGrace = 5 * time.Minute

// Times are kept as microseconds since 1970 (Unix time), which Lua's
// float64 numbers hold exactly below 2^53: up to June 2255.
const (
	minMicros = 0
	maxMicros = 1<<53 - 1
)

// micros returns t as microseconds since 1970, truncated, or an
// *InputError naming field if t is outside the range the store keeps.
func micros(field string, t time.Time) (int64, error) {
	if t.Before(time.Unix(0, 0)) || !t.Before(time.UnixMicro(maxMicros+1)) {
		return 0, &InputError{Field: field, Reason: "must lie between 1970 and 2255"}
	}
	return t.UnixMicro(), nil
}

// microsUp returns us, the microseconds of t truncated (micros), rounded
// up: for the time a window or a lock is counted from, which must not end
// early. Compared with a stored time, us is exact: for whole microseconds
// x, us < x exactly when t is before x.
func microsUp(us int64, t time.Time) int64 {
	if t.Nanosecond()%1000 != 0 {
		us++
	}
	return us
}

// fromMicros is the inverse of micros, in UTC.
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// ceilMicros returns d in microseconds, rounded up: for integer microsecond
// times a and b, b-a >= ceilMicros(d) exactly when b >= a+d.
func ceilMicros(d time.Duration) int64 {
	q := int64(d / time.Microsecond)
	if d%time.Microsecond > 0 {
		q++
	}
	return q
}

// expireMillis is the PEXPIREAT argument for a key that must live until
// the instant us (microseconds): the next whole millisecond after it.
func expireMillis(us int64) int64 { return us/1000 + 1 }

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// redisErr wraps an error from Redis for operation op. Errors are never
// swallowed: a caller on the request path denies (fails closed).
func redisErr(op string, err error) error {
	return fmt.Errorf("redisstore: %s: %w", op, err)
}

// ErrCorrupt reports a key holding data that this package did not write
// (another application using the same prefix, or a manual change). The
// store fails closed: the call returns an error wrapping ErrCorrupt.
var ErrCorrupt = errors.New("redisstore: unexpected data in Redis")
