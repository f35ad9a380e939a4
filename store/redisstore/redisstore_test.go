package redisstore_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/guardhq/guard/internal/testenv"
	"github.com/guardhq/guard/session/sessiontest"
	"github.com/guardhq/guard/store/redisstore"
)

// newClient returns a client of the test Redis server (GUARD_TEST_REDIS),
// closed when t ends.
func newClient(t testing.TB, hooks ...redis.Hook) *redis.Client {
	t.Helper()
	c := redis.NewClient(&redis.Options{Addr: testenv.Redis(t)})
	for _, h := range hooks {
		c.AddHook(h)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// newPrefix returns a fresh random key prefix whose keys are deleted when
// t ends, so that tests and test packages can share one server.
func newPrefix(t testing.TB, c *redis.Client) string {
	t.Helper()
	return cleanPrefix(t, c, "guardtest:"+randomHex()+":")
}

func randomHex() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// cleanPrefix deletes the keys under prefix when t ends, and returns it.
func cleanPrefix(t testing.TB, c *redis.Client, prefix string) string {
	t.Helper()
	t.Cleanup(func() {
		ctx := context.Background()
		iter := c.Scan(ctx, 0, prefix+"*", 1000).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if err := iter.Err(); err != nil {
			t.Errorf("cleanup: scanning %s*: %v", prefix, err)
			return
		}
		for len(keys) > 0 {
			n := min(len(keys), 1000)
			if err := c.Del(ctx, keys[:n]...).Err(); err != nil {
				t.Errorf("cleanup: deleting %s*: %v", prefix, err)
				return
			}
			keys = keys[n:]
		}
	})
	return prefix
}

// open returns an empty Store under a fresh prefix, with its client.
func open(t testing.TB, hooks ...redis.Hook) (*redisstore.Store, *redis.Client, string) {
	t.Helper()
	c := newClient(t, hooks...)
	prefix := newPrefix(t, c)
	s, err := redisstore.New(t.Context(), c, redisstore.Options{Prefix: prefix})
	if err != nil {
		t.Fatal(err)
	}
	return s, c, prefix
}

func newSessions(t *testing.T) sessiontest.Store {
	s, _, _ := open(t)
	return s
}

func TestSessions(t *testing.T) { sessiontest.Run(t, newSessions) }

func TestSessionsConcurrent(t *testing.T) { sessiontest.RunConcurrent(t, newSessions) }

// TestSessionsHashTagPrefix runs the suite with a prefix holding a hash
// tag, as Redis Cluster needs (see the package documentation).
func TestSessionsHashTagPrefix(t *testing.T) {
	sessiontest.Run(t, func(t *testing.T) sessiontest.Store {
		c := newClient(t)
		s, err := redisstore.New(t.Context(), c, redisstore.Options{Prefix: cleanPrefix(t, c, "{guardtest:"+randomHex()+"}:")})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}
