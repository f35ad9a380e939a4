package redisstore_test

import (
	"context"
	"errors"
	"strings"
	"syscall"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/guardhq/guard/store/redisstore"
)

// setPolicy sets the maxmemory-policy of the test server through c, and
// returns a function that puts back the one it had. Every test of the
// package runs on that server, and New refuses one that may evict keys:
// the caller puts it back at once, and the test must not run in parallel
// with others (t.Parallel).
func setPolicy(t *testing.T, c *redis.Client, policy string) (restore func()) {
	t.Helper()
	ctx := context.Background()
	was, err := c.ConfigGet(ctx, "maxmemory-policy").Result()
	if err != nil || was["maxmemory-policy"] == "" {
		t.Skipf("the test server does not tell its maxmemory-policy: %v", err)
	}
	if err := c.ConfigSet(ctx, "maxmemory-policy", policy).Err(); err != nil {
		t.Skipf("the test server refuses CONFIG SET: %v", err)
	}
	done := false
	restore = func() {
		if done {
			return
		}
		done = true
		if err := c.ConfigSet(ctx, "maxmemory-policy", was["maxmemory-policy"]).Err(); err != nil {
			t.Errorf("putting back maxmemory-policy %s: %v", was["maxmemory-policy"], err)
		}
	}
	t.Cleanup(restore)
	return restore
}

// TestNewRefusesEvictingServer: New refuses a Redis server whose
// maxmemory-policy lets it evict the store's keys. Every key the store
// writes has an expiry, so under any policy but noeviction (volatile-lru
// is the default of common managed services) a server at its maxmemory
// drops them silently: a user's index (u:…) gone while their sessions
// stay leaves sessions that still authenticate but that DeleteByUser
// (deactivation, password change or reset, "end all my sessions", IdP
// logout) no longer finds, and an evicted throttle counter or SAML replay
// record forgets attempts and accepted assertions. The store cannot tell
// such a loss afterwards, so it must not run on such a server.
func TestNewRefusesEvictingServer(t *testing.T) {
	c := newClient(t)
	// A Ring (as a Cluster client) asks each of its servers.
	ring := redis.NewRing(&redis.RingOptions{Addrs: map[string]string{"a": c.Options().Addr}})
	t.Cleanup(func() { ring.Close() })
	for _, policy := range []string{"allkeys-lru", "volatile-lru", "volatile-ttl"} {
		restore := setPolicy(t, c, policy)
		st, err := redisstore.New(t.Context(), c, redisstore.Options{})
		skipped, skipErr := redisstore.New(t.Context(), c, redisstore.Options{SkipEvictionCheck: true})
		_, ringErr := redisstore.New(t.Context(), ring, redisstore.Options{Prefix: "{guard}:"})
		restore()
		if ee := (*redisstore.EvictionError)(nil); !errors.As(ringErr, &ee) {
			t.Errorf("New with a Ring on a server with maxmemory-policy %s: %v, want an *EvictionError", policy, ringErr)
		}
		var ee *redisstore.EvictionError
		if !errors.As(err, &ee) || ee.Policy != policy || st != nil {
			t.Errorf("New on a server with maxmemory-policy %s = %v, %v; want an *EvictionError naming it", policy, st, err)
		} else if msg := err.Error(); !strings.Contains(msg, "maxmemory-policy") || !strings.Contains(msg, "noeviction") {
			t.Errorf("the error says %q; want it to name maxmemory-policy and noeviction", msg)
		}
		if skipErr != nil || skipped == nil {
			t.Errorf("New with SkipEvictionCheck on a server with maxmemory-policy %s: %v", policy, skipErr)
		}
	}
	if st, err := redisstore.New(t.Context(), c, redisstore.Options{}); err != nil || st == nil {
		t.Errorf("New on a server with maxmemory-policy noeviction: %v", err)
	}
	if _, err := redisstore.New(t.Context(), ring, redisstore.Options{Prefix: "{guard}:"}); err != nil {
		t.Errorf("New with a Ring on a server with maxmemory-policy noeviction: %v", err)
	}
}

// TestNewEvictionCheckRefused: a server that refuses CONFIG GET (here an
// ACL denies it, NOPERM; managed services often disable CONFIG) cannot be
// checked, and New takes it at its operator's word (the package
// documentation tells them to set noeviction).
func TestNewEvictionCheckRefused(t *testing.T) {
	c := newClient(t)
	ctx := t.Context()
	user, pass := "guardtest-"+randomHex(), randomHex()
	if err := c.Do(ctx, "ACL", "SETUSER", user, "on", ">"+pass, "~*", "&*", "+@all", "-config").Err(); err != nil {
		t.Skipf("the test server refuses ACL SETUSER: %v", err)
	}
	t.Cleanup(func() { c.Do(context.Background(), "ACL", "DELUSER", user) })
	limited := redis.NewClient(&redis.Options{Addr: c.Options().Addr, Username: user, Password: pass})
	t.Cleanup(func() { limited.Close() })
	if err := limited.ConfigGet(ctx, "maxmemory-policy").Err(); !redis.IsPermissionError(err) {
		t.Fatalf("CONFIG GET as %s: %v, want NOPERM", user, err)
	}
	if st, err := redisstore.New(t.Context(), limited, redisstore.Options{}); err != nil || st == nil {
		t.Errorf("New on a server that refuses CONFIG GET: %v", err)
	}
}

// TestNewEvictionCheckUnreachable: New on a server it cannot reach
// cannot check it, and fails closed: an error, prefixed "redisstore:",
// that is not an *EvictionError.
func TestNewEvictionCheckUnreachable(t *testing.T) {
	st, err := redisstore.New(t.Context(), deadClient(t), redisstore.Options{})
	var ee *redisstore.EvictionError
	if err == nil || st != nil || errors.As(err, &ee) || !errors.Is(err, syscall.ECONNREFUSED) ||
		!strings.HasPrefix(err.Error(), "redisstore: ") {
		t.Errorf("New with Redis down = %v, %v; want a redisstore: error wrapping ECONNREFUSED", st, err)
	}
}

// TestNewEvictionCheckContext: New's check runs within its ctx (a
// cancelled one is an error wrapping context.Canceled), and with
// SkipEvictionCheck New does no I/O, so ctx does not matter.
func TestNewEvictionCheckContext(t *testing.T) {
	c := newClient(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if st, err := redisstore.New(ctx, c, redisstore.Options{}); err == nil || st != nil || !errors.Is(err, context.Canceled) {
		t.Errorf("New with a cancelled context = %v, %v; want an error wrapping context.Canceled", st, err)
	}
	if st, err := redisstore.New(ctx, c, redisstore.Options{SkipEvictionCheck: true}); err != nil || st == nil {
		t.Errorf("New with a cancelled context and SkipEvictionCheck: %v", err)
	}
}
