package redisstore_test

import (
	"context"
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
	for _, policy := range []string{"allkeys-lru", "volatile-lru", "volatile-ttl"} {
		restore := setPolicy(t, c, policy)
		st, err := redisstore.New(c, redisstore.Options{})
		restore()
		if err == nil || st != nil {
			t.Errorf("New on a server with maxmemory-policy %s = %v, %v; want an error", policy, st, err)
		}
	}
}
